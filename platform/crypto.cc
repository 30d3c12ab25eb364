#include "platform/crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>

namespace parcours {

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  // OpenSSL treats a null key as "reuse the key" and wants non-null data: empty ones get a byte.
  static const unsigned char kEmpty = 0;
  const void* key_ptr = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  const unsigned char* data_ptr = data.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(data.data());
  HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()), data_ptr, data.size(), mac, &mac_len);
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

absl::StatusOr<std::string> RandomKey() {
  std::string key(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1) {
    return absl::InternalError("the system's random generator failed");
  }
  return key;
}

std::string HexPrefix(std::string_view bytes, size_t hex_digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::min(hex_digits, 2 * bytes.size()));
  for (unsigned char b : bytes) {
    if (out.size() >= hex_digits) break;
    out.push_back(kHex[b >> 4]);
    if (out.size() < hex_digits) out.push_back(kHex[b & 0x0F]);
  }
  return out;
}

}  // namespace parcours
