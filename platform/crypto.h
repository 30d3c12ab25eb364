// The keyed digests the services share: page tokens (aip), beneficiary pseudonyms (cep-svc),
// audited token subjects (gateway). One HMAC, written once.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace parcours {

// HMAC-SHA256 of `data` under `key` (32 raw bytes). An empty key is a key (OpenSSL is given a
// non-null pointer for it).
std::string HmacSha256(std::string_view key, std::string_view data);

// 32 random bytes from the system's generator: a key for this process alone. StatusOr so that a
// failing generator stops the caller instead of handing it a guessable key.
absl::StatusOr<std::string> RandomKey();

// The first `hex_digits` lowercase hex digits of `bytes` (all of them when there are fewer).
std::string HexPrefix(std::string_view bytes, size_t hex_digits);

}  // namespace parcours
