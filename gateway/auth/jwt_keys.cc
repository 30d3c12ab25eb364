#include "gateway/auth/jwt_keys.h"

#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "gateway/auth/json.h"
#include "openssl/bio.h"
#include "openssl/bn.h"
#include "openssl/core_names.h"
#include "openssl/ec.h"
#include "openssl/err.h"
#include "openssl/evp.h"
#include "openssl/param_build.h"
#include "openssl/pem.h"
#include "openssl/rsa.h"
#include "openssl/sha.h"

namespace parcours::gateway {
namespace {

struct OpenSslFree {
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
template <typename T>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree>;

constexpr int kMinRsaBits = 2048;

absl::Status Invalid(const std::string& what) {
  ERR_clear_error();
  return absl::InvalidArgumentError(what);
}

// SHA-256, fetched once (an implicit fetch on every verification costs a lookup each time).
const EVP_MD* Sha256() {
  static const EVP_MD* md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

// EC keys must be on P-256, RSA keys at least 2048 bits; anything else is not ours.
absl::Status CheckKeyType(EVP_PKEY* pkey, JwtAlg* alg) {
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[64] = {0};
    size_t len = 0;
    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        &len) ||
        (std::strcmp(group, "prime256v1") != 0 && std::strcmp(group, "P-256") != 0)) {
      return Invalid("EC key is not on curve P-256");
    }
    *alg = JwtAlg::kES256;
    return absl::OkStatus();
  }
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    if (EVP_PKEY_get_bits(pkey) < kMinRsaBits) return Invalid("RSA key shorter than 2048 bits");
    *alg = JwtAlg::kRS256;
    return absl::OkStatus();
  }
  return Invalid("key is neither EC P-256 nor RSA");
}

absl::StatusOr<OpenSslPtr<EVP_PKEY>> KeyFromParams(const char* type, OSSL_PARAM_BLD* bld) {
  OpenSslPtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld));
  OpenSslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return Invalid(absl::StrCat("invalid ", type, " public key"));
  }
  OpenSslPtr<EVP_PKEY> pkey(raw);
  OpenSslPtr<EVP_PKEY_CTX> check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return Invalid(absl::StrCat("invalid ", type, " public key"));
  }
  return pkey;
}

absl::StatusOr<std::string> Member64(const json::Value& jwk, const char* name) {
  const json::Value* v = jwk.Find(name);
  std::string out;
  if (v == nullptr || !v->is_string() || !Base64UrlDecode(v->string, &out) || out.empty()) {
    return Invalid(absl::StrCat("JWK member \"", name, "\" missing or not base64url"));
  }
  return out;
}

absl::StatusOr<OpenSslPtr<EVP_PKEY>> EcKeyFromJwk(const json::Value& jwk) {
  auto x = Member64(jwk, "x");
  if (!x.ok()) return x.status();
  auto y = Member64(jwk, "y");
  if (!y.ok()) return y.status();
  if (x->size() != 32 || y->size() != 32) return Invalid("P-256 JWK coordinates are not 32 bytes");
  const std::string point = absl::StrCat("\x04", *x, *y);
  OpenSslPtr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size())) {
    return Invalid("cannot build EC key");
  }
  return KeyFromParams("EC", bld.get());
}

absl::StatusOr<OpenSslPtr<EVP_PKEY>> RsaKeyFromJwk(const json::Value& jwk) {
  auto n = Member64(jwk, "n");
  if (!n.ok()) return n.status();
  auto e = Member64(jwk, "e");
  if (!e.ok()) return e.status();
  OpenSslPtr<BIGNUM> bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()),
                                    static_cast<int>(n->size()), nullptr));
  OpenSslPtr<BIGNUM> bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()),
                                    static_cast<int>(e->size()), nullptr));
  OpenSslPtr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
    return Invalid("cannot build RSA key");
  }
  return KeyFromParams("RSA", bld.get());
}

}  // namespace

VerificationKey::~VerificationKey() {
  EVP_PKEY_CTX_free(verify_template);
  EVP_PKEY_free(pkey);
}

// ---------------------------------------------------------------------------------------------
// base64url

namespace {
int Base64UrlValue(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}
}  // namespace

bool Base64UrlDecode(std::string_view in, std::string* out) {
  out->clear();
  if (in.size() % 4 == 1) return false;
  out->reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    const int v = Base64UrlValue(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits (2 or 4) must be zero: one encoding per byte string.
  return (acc & ((1u << bits) - 1)) == 0;
}

std::string Base64UrlEncode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3F]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Key sets

absl::StatusOr<std::shared_ptr<const KeySet>> KeySet::Parse(std::string_view content, bool allow_revoke_all) {
  auto set = std::make_shared<KeySet>();
  bool revoke_all = false;  // a JWKS listing no key at all
  auto add = [&](std::string kid, OpenSslPtr<EVP_PKEY> pkey) -> absl::Status {
    auto key = std::make_unique<VerificationKey>();
    absl::Status type = CheckKeyType(pkey.get(), &key->alg);
    if (!type.ok()) return Invalid(absl::StrCat("key \"", kid, "\": ", type.message()));
    if (set->keys_.count(kid) != 0) return Invalid(absl::StrCat("key id \"", kid, "\" repeats"));
    OpenSslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx.get(), Sha256()) != 1 ||
        (key->alg == JwtAlg::kRS256 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1)) {
      return Invalid(absl::StrCat("key \"", kid, "\": cannot set up verification"));
    }
    key->kid = kid;
    key->pkey = pkey.release();
    key->verify_template = ctx.release();
    set->keys_.emplace(std::move(kid), std::move(key));
    return absl::OkStatus();
  };

  const absl::string_view text(content.data(), content.size());
  if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(text), "{")) {
    // JWKS.
    auto doc = json::Parse(content);
    if (!doc.ok()) return Invalid(absl::StrCat("JWKS: ", doc.status().message()));
    const json::Value* keys = doc->Find("keys");
    if (keys == nullptr || !keys->is_array()) return Invalid("JWKS: no \"keys\" array");
    revoke_all = keys->array.empty();
    for (const json::Value& jwk : keys->array) {
      if (!jwk.is_object()) return Invalid("JWKS: a key is not an object");
      const json::Value* kty = jwk.Find("kty");
      const json::Value* kid = jwk.Find("kid");
      const json::Value* use = jwk.Find("use");
      const json::Value* alg = jwk.Find("alg");
      const json::Value* crv = jwk.Find("crv");
      if (kty == nullptr || !kty->is_string()) return Invalid("JWKS: a key has no \"kty\"");
      if (use != nullptr && (!use->is_string() || use->string != "sig")) continue;
      absl::StatusOr<OpenSslPtr<EVP_PKEY>> pkey;
      if (kty->string == "EC") {
        if (crv == nullptr || !crv->is_string() || crv->string != "P-256") continue;
        if (alg != nullptr && (!alg->is_string() || alg->string != "ES256")) continue;
        if (kid == nullptr || !kid->is_string() || kid->string.empty()) {
          return Invalid("JWKS: an EC key has no \"kid\"");
        }
        pkey = EcKeyFromJwk(jwk);
      } else if (kty->string == "RSA") {
        if (alg != nullptr && (!alg->is_string() || alg->string != "RS256")) continue;
        if (kid == nullptr || !kid->is_string() || kid->string.empty()) {
          return Invalid("JWKS: an RSA key has no \"kid\"");
        }
        pkey = RsaKeyFromJwk(jwk);
      } else {
        continue;  // "oct" (HMAC secrets have no place here), OKP, ...
      }
      if (!pkey.ok()) {
        return Invalid(absl::StrCat("JWKS key \"", kid->string, "\": ", pkey.status().message()));
      }
      absl::Status added = add(kid->string, *std::move(pkey));
      if (!added.ok()) return added;
    }
  } else {
    // PEM public keys, optionally each preceded by "# kid: <id>".
    std::string pending_kid;
    int index = 0;
    std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
    for (size_t i = 0; i < lines.size(); ++i) {
      const absl::string_view line = absl::StripAsciiWhitespace(lines[i]);
      if (line.empty()) continue;
      if (absl::StartsWith(line, "#")) {
        absl::string_view rest = absl::StripAsciiWhitespace(line.substr(1));
        if (absl::ConsumePrefix(&rest, "kid:")) {
          pending_kid = std::string(absl::StripAsciiWhitespace(rest));
          if (pending_kid.empty()) return Invalid("PEM: empty \"# kid:\" line");
        }
        continue;
      }
      if (line != "-----BEGIN PUBLIC KEY-----") {
        return Invalid(absl::StrCat("PEM: line ", i + 1,
                                    ": expected \"-----BEGIN PUBLIC KEY-----\" or a comment"));
      }
      std::string block = "-----BEGIN PUBLIC KEY-----\n";
      size_t j = i + 1;
      for (; j < lines.size(); ++j) {
        const absl::string_view l = absl::StripAsciiWhitespace(lines[j]);
        absl::StrAppend(&block, l, "\n");
        if (l == "-----END PUBLIC KEY-----") break;
      }
      if (j >= lines.size()) return Invalid("PEM: unterminated public key");
      OpenSslPtr<BIO> bio(BIO_new_mem_buf(block.data(), static_cast<int>(block.size())));
      OpenSslPtr<EVP_PKEY> pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
      if (!pkey) return Invalid(absl::StrCat("PEM: public key at line ", i + 1, " does not parse"));
      std::string kid = pending_kid.empty() ? absl::StrCat(index) : pending_kid;
      pending_kid.clear();
      ++index;
      absl::Status added = add(std::move(kid), std::move(pkey));
      if (!added.ok()) return added;
      i = j;
    }
  }
  if (set->keys_.empty() && !(allow_revoke_all && revoke_all)) return Invalid("no usable ES256 or RS256 key");
  return std::shared_ptr<const KeySet>(std::move(set));
}

const VerificationKey* KeySet::Find(std::string_view kid) const {
  auto it = keys_.find(kid);
  return it == keys_.end() ? nullptr : it->second.get();
}

// ---------------------------------------------------------------------------------------------
// Signatures

bool VerifySignature(const VerificationKey& key, std::string_view signed_data,
                     std::string_view signature) {
  std::string der_storage;
  const unsigned char* sig = reinterpret_cast<const unsigned char*>(signature.data());
  size_t sig_len = signature.size();
  if (key.alg == JwtAlg::kES256) {
    // JOSE: r || s, 32 bytes each, big-endian. OpenSSL wants an ASN.1 DER ECDSA-Sig-Value.
    if (signature.size() != 64) return false;
    OpenSslPtr<ECDSA_SIG> ecdsa(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(sig, 32, nullptr);
    BIGNUM* s = BN_bin2bn(sig + 32, 32, nullptr);
    if (!ecdsa || r == nullptr || s == nullptr || ECDSA_SIG_set0(ecdsa.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      return false;
    }
    unsigned char* der = nullptr;
    const int der_len = i2d_ECDSA_SIG(ecdsa.get(), &der);
    if (der_len <= 0) return false;
    der_storage.assign(reinterpret_cast<char*>(der), static_cast<size_t>(der_len));
    OPENSSL_free(der);
    sig = reinterpret_cast<const unsigned char*>(der_storage.data());
    sig_len = der_storage.size();
  } else if (static_cast<int>(signature.size()) != EVP_PKEY_get_size(key.pkey)) {
    return false;
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(signed_data.data()), signed_data.size(), digest);
  OpenSslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_dup(key.verify_template));
  const bool ok = ctx && EVP_PKEY_verify(ctx.get(), sig, sig_len, digest, sizeof(digest)) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace parcours::gateway
