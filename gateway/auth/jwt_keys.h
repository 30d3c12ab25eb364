// JWT verification keys (internal to parcours_gateway_auth): parsed once into OpenSSL EVP_PKEYs,
// shared read-only by every call.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "openssl/types.h"

namespace parcours::gateway {

enum class JwtAlg { kES256, kRS256 };

struct VerificationKey {
  VerificationKey() = default;
  VerificationKey(const VerificationKey&) = delete;
  VerificationKey& operator=(const VerificationKey&) = delete;
  ~VerificationKey();

  std::string kid;
  JwtAlg alg = JwtAlg::kES256;  // EC P-256 keys verify ES256, RSA keys RS256
  EVP_PKEY* pkey = nullptr;     // owned
  // Owned; initialised once for verification with SHA-256 (and PKCS#1 v1.5 padding for RSA).
  // Each verification works on a copy (EVP_PKEY_CTX_dup): this skips OpenSSL 3's per-call
  // algorithm fetches, several microseconds a call.
  EVP_PKEY_CTX* verify_template = nullptr;
};

class KeySet {
 public:
  // `content` is a JWKS document ({"keys":[...]}: EC P-256 and RSA keys; keys of other types,
  // curves or algorithms, or with "use" other than "sig", are skipped) or PEM public keys
  // (SubjectPublicKeyInfo; kid "0", "1", ... in file order unless a "# kid: <id>" line precedes
  // the key). INVALID_ARGUMENT when malformed, when a kid repeats, when an RSA modulus is under
  // 2048 bits, or when no usable key remains, except that with `allow_revoke_all` a JWKS whose
  // "keys" array is empty is an empty set (every token refused: the explicit way to revoke all).
  static absl::StatusOr<std::shared_ptr<const KeySet>> Parse(std::string_view content,
                                                             bool allow_revoke_all = false);

  const VerificationKey* Find(std::string_view kid) const;
  size_t size() const { return keys_.size(); }

 private:
  std::map<std::string, std::unique_ptr<VerificationKey>, std::less<>> keys_;
};

// Checks a JWS signature in its JOSE encoding (ES256: raw r||s, 64 bytes; RS256: PKCS#1 v1.5)
// over `signed_data` with SHA-256.
bool VerifySignature(const VerificationKey& key, std::string_view signed_data,
                     std::string_view signature);

// base64url without padding (RFC 7515 §2), strict: no '=', no whitespace, unused bits zero.
bool Base64UrlDecode(std::string_view in, std::string* out);
std::string Base64UrlEncode(std::string_view in);

}  // namespace parcours::gateway
