// The keyed digests the services share: page tokens (aip), beneficiary pseudonyms (cep-svc),
// audited token subjects (gateway). One HMAC, written once.
#pragma once

#include <string>
#include <string_view>

namespace parcours {

// HMAC-SHA256 of `data` under `key` (32 raw bytes). An empty key is a key (OpenSSL is given a
// non-null pointer for it).
std::string HmacSha256(std::string_view key, std::string_view data);

// The first `hex_digits` lowercase hex digits of `bytes` (all of them when there are fewer).
std::string HexPrefix(std::string_view bytes, size_t hex_digits);

}  // namespace parcours
