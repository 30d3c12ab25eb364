// The gateway's authentication: bearer JWTs minted here with OpenSSL (ES256 and RS256 keys
// generated in the test), key files (JWKS, PEM) and their reload, and client certificates over a
// real mTLS gRPC server on 127.0.0.1.
#include "gateway/auth/authenticator.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gateway/auth/json.h"
#include "gateway/auth/jwt_keys.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/test/server_context_test_spouse.h"
#include "gtest/gtest.h"
#include "openssl/bio.h"
#include "openssl/bn.h"
#include "openssl/core_names.h"
#include "openssl/ec.h"
#include "openssl/evp.h"
#include "openssl/hmac.h"
#include "openssl/pem.h"
#include "openssl/sha.h"
#include "parcours/bench/v1/bench.grpc.pb.h"
#include "platform/clock.h"
#include "platform/config.h"
#include "platform/testing/pki.h"
#include "platform/testing/status_macros.h"
#include "platform/tls.h"

namespace parcours::gateway {
namespace {

using ::parcours::bench::v1::BenchService;
using ::parcours::bench::v1::EchoRequest;
using ::parcours::bench::v1::EchoResponse;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kIssuer[] = "https://auth.parcours.test";
constexpr char kAudience[] = "parcours-gateway";
const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z

// ---------------------------------------------------------------------------------------------
// Minting tokens with OpenSSL.

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

PkeyPtr ReadPrivateKey(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return key;
}

// JOSE signature over `input`: ES256 as raw r||s, RS256 as PKCS#1 v1.5.
std::string Sign(const std::string& private_pem, const std::string& input) {
  PkeyPtr key = ReadPrivateKey(private_pem);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key.get());
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (!EVP_PKEY_is_a(key.get(), "EC")) return sig;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(ecdsa);
  return raw;
}

// A token from raw header and payload JSON texts.
std::string MintRaw(const std::string& private_pem, const std::string& header,
                    const std::string& payload) {
  const std::string input = absl::StrCat(Base64UrlEncode(header), ".", Base64UrlEncode(payload));
  return absl::StrCat(input, ".", Base64UrlEncode(Sign(private_pem, input)));
}

// Claims as raw JSON values, keyed by name (an empty map entry is removed by Without()).
struct Claims {
  std::map<std::string, std::string> values;
  Claims& Set(const std::string& k, const std::string& raw_json) {
    values[k] = raw_json;
    return *this;
  }
  Claims& Without(const std::string& k) {
    values.erase(k);
    return *this;
  }
  std::string Json() const {
    std::vector<std::string> members;
    for (const auto& [k, v] : values) members.push_back(absl::StrCat("\"", k, "\":", v));
    return absl::StrCat("{", absl::StrJoin(members, ","), "}");
  }
};

std::string Quote(const std::string& s) { return absl::StrCat("\"", s, "\""); }
std::string Num(absl::Time t) { return absl::StrCat(absl::ToUnixSeconds(t)); }

Claims DefaultClaims() {
  Claims c;
  c.Set("iss", Quote(kIssuer))
      .Set("aud", Quote(kAudience))
      .Set("sub", Quote("user-42"))
      .Set("iat", Num(kNow - absl::Minutes(1)))
      .Set("nbf", Num(kNow - absl::Minutes(1)))
      .Set("exp", Num(kNow + absl::Hours(1)))
      .Set("parcours_principal", Quote("operator:OP-1"));
  return c;
}

std::string Header(const std::string& alg, const std::string& kid) {
  return absl::StrCat("{\"alg\":\"", alg, "\",\"kid\":\"", kid, "\",\"typ\":\"JWT\"}");
}

// ---------------------------------------------------------------------------------------------
// Key files.

std::string BnParam(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(key, name, &bn);
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

// One JWK for the public half of a private key.
std::string Jwk(const std::string& kid, const std::string& private_pem) {
  PkeyPtr key = ReadPrivateKey(private_pem);
  if (EVP_PKEY_is_a(key.get(), "EC")) {
    BIGNUM* x = nullptr;
    BIGNUM* y = nullptr;
    EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x);
    EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y);
    std::string xs(32, '\0'), ys(32, '\0');
    BN_bn2binpad(x, reinterpret_cast<unsigned char*>(xs.data()), 32);
    BN_bn2binpad(y, reinterpret_cast<unsigned char*>(ys.data()), 32);
    BN_free(x);
    BN_free(y);
    return absl::StrCat(R"({"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":")", kid,
                        R"(","x":")", Base64UrlEncode(xs), R"(","y":")", Base64UrlEncode(ys),
                        "\"}");
  }
  return absl::StrCat(R"({"kty":"RSA","kid":")", kid, R"(","n":")",
                      Base64UrlEncode(BnParam(key.get(), OSSL_PKEY_PARAM_RSA_N)), R"(","e":")",
                      Base64UrlEncode(BnParam(key.get(), OSSL_PKEY_PARAM_RSA_E)), "\"}");
}

std::string Jwks(const std::vector<std::string>& jwks) {
  return absl::StrCat("{\"keys\":[", absl::StrJoin(jwks, ","), "]}");
}

// Shared across tests: RSA key generation is slow.
struct Keys {
  std::string ec = testing::NewEcP256KeyPem();
  std::string ec2 = testing::NewEcP256KeyPem();
  std::string rsa = testing::NewRsaKeyPem(2048);
};
const Keys& TestKeys() {
  static const Keys* keys = new Keys;
  return *keys;
}

// ---------------------------------------------------------------------------------------------

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("gateway_auth_test");
    keys_file_ = dir_ + "/jwks.json";
    testing::WriteFile(keys_file_,
                       Jwks({Jwk("ec-1", TestKeys().ec), Jwk("rsa-1", TestKeys().rsa)}));
  }

  AuthConfig Config() const {
    AuthConfig c;
    c.jwt_keys_file = keys_file_;
    c.jwt_issuer = kIssuer;
    c.jwt_audience = kAudience;
    return c;
  }

  std::unique_ptr<Authenticator> New(AuthConfig config) {
    auto a = NewAuthenticator(std::move(config), clock_);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? *std::move(a) : nullptr;
  }
  std::unique_ptr<Authenticator> New() { return New(Config()); }

  std::string Es256(const Claims& claims = DefaultClaims(), const std::string& kid = "ec-1") {
    return MintRaw(TestKeys().ec, Header("ES256", kid), claims.Json());
  }
  std::string Rs256(const Claims& claims = DefaultClaims(), const std::string& kid = "rsa-1") {
    return MintRaw(TestKeys().rsa, Header("RS256", kid), claims.Json());
  }

  // The token is refused with UNAUTHENTICATED, a reason containing `reason`, and nothing of the
  // token in the message.
  void ExpectRefused(Authenticator& auth, const std::string& token, const std::string& reason) {
    SCOPED_TRACE(reason);
    auto caller = auth.VerifyToken(token);
    ASSERT_FALSE(caller.ok());
    EXPECT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated);
    const std::string message(caller.status().message());
    EXPECT_THAT(message, HasSubstr(reason));
    for (const auto& part : absl::StrSplit(token, '.')) {
      if (part.size() >= 8) {
        EXPECT_THAT(message, Not(HasSubstr(std::string(part))));
      }
    }
    EXPECT_LT(message.size(), 80u);
  }

  std::string dir_;
  std::string keys_file_;
  FakeClock clock_{kNow};
};

TEST_F(AuthenticatorTest, Es256TokenGivesItsPrincipal) {
  auto auth = New();
  ASSERT_OK_AND_ASSIGN(Caller caller, auth->VerifyToken(Es256()));
  EXPECT_EQ(caller.principal.ToString(), "operator:OP-1");
  EXPECT_EQ(caller.subject, "user-42");
  EXPECT_EQ(caller.via, Caller::Via::kJwt);
}

TEST_F(AuthenticatorTest, Rs256TokenGivesItsPrincipal) {
  auto auth = New();
  ASSERT_OK_AND_ASSIGN(Caller caller,
                       auth->VerifyToken(Rs256(DefaultClaims().Set(
                           "parcours_principal", Quote("jury-member:J-7")))));
  EXPECT_EQ(caller.principal.ToString(), "jury-member:J-7");
}

// The subject goes to the audit stream: a `sub` that is not a plain id (an e-mail address) is
// replaced by a keyed digest that tells subjects apart without naming them, and that a reader of
// the audit stream cannot recompute from a guessed address (a plain SHA-256 could be).
TEST_F(AuthenticatorTest, SubjectThatIsNotAPlainIdIsWithheld) {
  AuthConfig keyed = Config();
  keyed.subject_digest_key = std::string(32, 'k');
  auto auth = New(keyed);
  ASSERT_OK_AND_ASSIGN(Caller mail, auth->VerifyToken(Es256(DefaultClaims().Set("sub", Quote("jean.dupont@x.fr")))));
  EXPECT_EQ(mail.principal.ToString(), "operator:OP-1");
  EXPECT_THAT(mail.subject, ::testing::StartsWith("sub-hmac:"));
  EXPECT_THAT(mail.subject, Not(HasSubstr("dupont")));
  EXPECT_EQ(mail.subject.size(), std::string("sub-hmac:").size() + 16);
  ASSERT_OK_AND_ASSIGN(Caller other, auth->VerifyToken(Es256(DefaultClaims().Set("sub", Quote("marie.curie@x.fr")))));
  EXPECT_NE(other.subject, mail.subject);
  ASSERT_OK_AND_ASSIGN(Caller again, auth->VerifyToken(Es256(DefaultClaims().Set("sub", Quote("jean.dupont@x.fr")))));
  EXPECT_EQ(again.subject, mail.subject);

  // Not the unkeyed SHA-256 of the address.
  const std::string address = "jean.dupont@x.fr";
  unsigned char sha[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(address.data()), address.size(), sha);
  EXPECT_NE(mail.subject.substr(std::string("sub-hmac:").size()),
            absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(sha), 8)));
  // Another key (another deployment, or a replica without the key file), another digest; the
  // same key, the same digest (the replicas of one deployment agree).
  AuthConfig rekeyed = Config();
  rekeyed.subject_digest_key = std::string(32, 'q');
  ASSERT_OK_AND_ASSIGN(Caller elsewhere,
                       New(rekeyed)->VerifyToken(Es256(DefaultClaims().Set("sub", Quote("jean.dupont@x.fr")))));
  EXPECT_NE(elsewhere.subject, mail.subject);
  ASSERT_OK_AND_ASSIGN(Caller replica,
                       New(keyed)->VerifyToken(Es256(DefaultClaims().Set("sub", Quote("jean.dupont@x.fr")))));
  EXPECT_EQ(replica.subject, mail.subject);
}

TEST_F(AuthenticatorTest, SubjectDigestKeyFileIsReadAndAShortKeyRefused) {
  const std::string dir = ::testing::TempDir();
  std::ofstream(dir + "/subject-key-short") << "too short";
  std::ofstream(dir + "/subject-key-empty") << "";
  auto empty_key = AuthConfig::FromConfig(parcours::Config::FromMap(
      {{"auth.accept_client_certificates", "true"}, {"auth.subject_digest_key_file", dir + "/subject-key-empty"}}));
  EXPECT_FALSE(empty_key.ok()) << "an empty key file would give each replica a random key";
  std::ofstream(dir + "/subject-key") << std::string(40, 'z');
  auto short_key = AuthConfig::FromConfig(parcours::Config::FromMap(
      {{"auth.accept_client_certificates", "true"}, {"auth.subject_digest_key_file", dir + "/subject-key-short"}}));
  EXPECT_EQ(short_key.status().code(), absl::StatusCode::kInvalidArgument) << short_key.status();
  EXPECT_THAT(std::string(short_key.status().message()), HasSubstr("auth.subject_digest_key_file"));
  ASSERT_OK_AND_ASSIGN(AuthConfig read, AuthConfig::FromConfig(parcours::Config::FromMap(
                                            {{"auth.subject_digest_key_file", dir + "/subject-key"}})));
  EXPECT_EQ(read.subject_digest_key, std::string(40, 'z'));
}

TEST_F(AuthenticatorTest, SubjectDefaultsToPrincipalAndAudienceMayBeAnArray) {
  auto auth = New();
  ASSERT_OK_AND_ASSIGN(
      Caller caller,
      auth->VerifyToken(Es256(DefaultClaims().Without("sub").Without("nbf").Set(
          "aud", absl::StrCat("[\"other\",", Quote(kAudience), "]")).Set(
          "parcours_principal", Quote("national")))));
  EXPECT_EQ(caller.principal.ToString(), "national");
  EXPECT_EQ(caller.subject, "national");
}

TEST_F(AuthenticatorTest, BadTokensAreRefused) {
  auto auth = New();
  const Keys& k = TestKeys();
  const std::string good = Es256();
  const std::string header_b64 = good.substr(0, good.find('.'));
  const std::string payload_b64 =
      good.substr(good.find('.') + 1, good.rfind('.') - good.find('.') - 1);
  const std::string sig_b64 = good.substr(good.rfind('.') + 1);

  // Algorithms.
  ExpectRefused(*auth, absl::StrCat(Base64UrlEncode(R"({"alg":"none","kid":"ec-1"})"), ".",
                                    payload_b64, "."),
                "algorithm not accepted");
  ExpectRefused(*auth, absl::StrCat(Base64UrlEncode(R"({"alg":"none","kid":"ec-1"})"), ".",
                                    payload_b64, ".", sig_b64),
                "algorithm not accepted");
  {
    // HS256 with the public key as the HMAC secret: the classic key-confusion attack.
    const std::string input = absl::StrCat(Base64UrlEncode(Header("HS256", "ec-1")), ".", payload_b64);
    const std::string secret = testing::PublicKeyPem(k.ec);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len);
    ExpectRefused(*auth,
                  absl::StrCat(input, ".", Base64UrlEncode(std::string(reinterpret_cast<char*>(mac), mac_len))),
                  "algorithm not accepted");
  }
  ExpectRefused(*auth, MintRaw(k.ec, Header("ES384", "ec-1"), DefaultClaims().Json()),
                "algorithm not accepted");
  ExpectRefused(*auth, MintRaw(k.rsa, Header("PS256", "rsa-1"), DefaultClaims().Json()),
                "algorithm not accepted");
  ExpectRefused(*auth, MintRaw(k.ec, R"({"kid":"ec-1"})", DefaultClaims().Json()), "no alg");

  // Keys.
  ExpectRefused(*auth, Es256(DefaultClaims(), "ec-9"), "key id unknown");
  ExpectRefused(*auth, MintRaw(k.ec, R"({"alg":"ES256"})", DefaultClaims().Json()), "no kid");
  ExpectRefused(*auth, MintRaw(k.ec, Header("ES256", "rsa-1"), DefaultClaims().Json()),
                "does not match its algorithm");
  ExpectRefused(*auth, MintRaw(k.rsa, Header("RS256", "ec-1"), DefaultClaims().Json()),
                "does not match its algorithm");
  ExpectRefused(*auth, MintRaw(k.ec2, Header("ES256", "ec-1"), DefaultClaims().Json()),
                "signature invalid");
  ExpectRefused(*auth,
                MintRaw(k.ec, R"({"alg":"ES256","kid":"ec-1","crit":["exp"]})",
                        DefaultClaims().Json()),
                "critical");

  // Structure and encoding.
  ExpectRefused(*auth, absl::StrCat(header_b64, ".", payload_b64), "malformed");
  ExpectRefused(*auth, absl::StrCat(good, ".", sig_b64), "malformed");
  ExpectRefused(*auth, absl::StrCat(header_b64, "=.", payload_b64, ".", sig_b64), "malformed");
  ExpectRefused(*auth, absl::StrCat(header_b64, ".", payload_b64, ".", sig_b64, "="), "malformed");
  ExpectRefused(*auth, absl::StrCat(header_b64, ".", payload_b64, "+.", sig_b64), "");
  ExpectRefused(*auth, absl::StrCat(Base64UrlEncode("{\"alg\":\"ES256\","), ".", payload_b64, ".",
                                    sig_b64),
                "malformed bearer token header");
  ExpectRefused(*auth, MintRaw(k.ec, Header("ES256", "ec-1"), "{\"iss\":"),
                "malformed bearer token payload");
  ExpectRefused(*auth, MintRaw(k.ec, Header("ES256", "ec-1"), "[1,2]"),
                "malformed bearer token payload");
  ExpectRefused(*auth,
                MintRaw(k.ec, Header("ES256", "ec-1"),
                        absl::StrCat(DefaultClaims().Json().substr(
                                         0, DefaultClaims().Json().size() - 1),
                                     ",\"parcours_principal\":\"national\"}")),
                "malformed bearer token payload");  // duplicate claim
  ExpectRefused(*auth, std::string(9000, 'a'), "too large");

  // Tampering.
  {
    const std::string other_payload = Base64UrlEncode(
        DefaultClaims().Set("parcours_principal", Quote("national")).Json());
    ExpectRefused(*auth, absl::StrCat(header_b64, ".", other_payload, ".", sig_b64),
                  "signature invalid");
    std::string sig;
    ASSERT_TRUE(Base64UrlDecode(sig_b64, &sig));
    sig[10] ^= 0x01;
    ExpectRefused(*auth, absl::StrCat(header_b64, ".", payload_b64, ".", Base64UrlEncode(sig)),
                  "signature invalid");
    ExpectRefused(*auth, absl::StrCat(header_b64, ".", payload_b64, ".", Base64UrlEncode(sig.substr(0, 63))),
                  "signature invalid");
    std::string rsa = Rs256();
    rsa[rsa.size() - 5] = rsa[rsa.size() - 5] == 'A' ? 'B' : 'A';
    ExpectRefused(*auth, rsa, "signature invalid");
  }

  // Claims.
  ExpectRefused(*auth, Es256(DefaultClaims().Set("iss", Quote("https://evil.test"))),
                "issuer not accepted");
  ExpectRefused(*auth, Es256(DefaultClaims().Without("iss")), "issuer not accepted");
  ExpectRefused(*auth, Es256(DefaultClaims().Without("aud")), "audience not accepted");
  ExpectRefused(*auth, Es256(DefaultClaims().Set("aud", Quote("other"))), "audience not accepted");
  ExpectRefused(*auth, Es256(DefaultClaims().Set("aud", "[\"a\",\"b\"]")), "audience not accepted");
  ExpectRefused(*auth, Es256(DefaultClaims().Set("aud", absl::StrCat("[1,", Quote(kAudience), "]"))),
                "audience not accepted");
  ExpectRefused(*auth, Es256(DefaultClaims().Set("aud", "[]")), "audience not accepted");
  ExpectRefused(*auth, Es256(DefaultClaims().Without("exp")), "no exp");
  ExpectRefused(*auth, Es256(DefaultClaims().Set("exp", Quote("tomorrow"))), "malformed");
  ExpectRefused(*auth, Es256(DefaultClaims().Set("exp", Num(kNow - absl::Hours(1)))), "expired");
  ExpectRefused(*auth, Es256(DefaultClaims().Set("nbf", Num(kNow + absl::Hours(1)))),
                "not yet valid");
  ExpectRefused(*auth, Es256(DefaultClaims().Without("parcours_principal")),
                "no parcours_principal");
  ExpectRefused(*auth, Es256(DefaultClaims().Set("parcours_principal", "42")),
                "no parcours_principal");
  for (const char* bad : {"operator:", "admin:1", "national:x", "operator:a/b", ""}) {
    ExpectRefused(*auth, Es256(DefaultClaims().Set("parcours_principal", Quote(bad))),
                  "parcours_principal malformed");
  }
}

TEST_F(AuthenticatorTest, ClockSkewEdges) {
  for (int64_t cache : {10000, 0}) {
    SCOPED_TRACE(cache);
    AuthConfig config = Config();
    config.token_cache_entries = cache;
    auto auth = New(config);
    // exp + skew == now: still valid; one second more: expired.
    EXPECT_OK(auth->VerifyToken(Es256(DefaultClaims().Set("exp", Num(kNow - absl::Seconds(30)))))
                  .status());
    ExpectRefused(*auth, Es256(DefaultClaims().Set("exp", Num(kNow - absl::Seconds(31)))),
                  "expired");
    // nbf - skew == now: valid; one second later: not yet.
    EXPECT_OK(auth->VerifyToken(Es256(DefaultClaims().Set("nbf", Num(kNow + absl::Seconds(30)))))
                  .status());
    ExpectRefused(*auth, Es256(DefaultClaims().Set("nbf", Num(kNow + absl::Seconds(31)))),
                  "not yet valid");
  }
  // Another skew.
  AuthConfig config = Config();
  config.clock_skew = absl::ZeroDuration();
  auto strict = New(config);
  EXPECT_OK(strict->VerifyToken(Es256(DefaultClaims().Set("exp", Num(kNow)))).status());
  ExpectRefused(*strict, Es256(DefaultClaims().Set("exp", Num(kNow - absl::Seconds(1)))),
                "expired");
}

TEST_F(AuthenticatorTest, CachedTokenStillExpires) {
  auto auth = New();
  const std::string token = Es256(DefaultClaims()
                                      .Set("nbf", Num(kNow + absl::Seconds(10)))
                                      .Set("exp", Num(kNow + absl::Minutes(5))));
  ASSERT_OK(auth->VerifyToken(token).status());
  ASSERT_OK(auth->VerifyToken(token).status());  // from the cache
  clock_.Advance(absl::Minutes(5) + absl::Seconds(30));
  ASSERT_OK(auth->VerifyToken(token).status());
  clock_.Advance(absl::Seconds(1));
  ExpectRefused(*auth, token, "expired");
}

TEST_F(AuthenticatorTest, PemKeysFile) {
  const std::string pem_file = dir_ + "/keys.pem";
  testing::WriteFile(pem_file, absl::StrCat("# Parcours token keys\n# kid: ec-pem\n",
                                            testing::PublicKeyPem(TestKeys().ec), "\n",
                                            testing::PublicKeyPem(TestKeys().rsa)));
  AuthConfig config = Config();
  config.jwt_keys_file = pem_file;
  auto auth = New(config);
  ASSERT_OK_AND_ASSIGN(Caller caller, auth->VerifyToken(Es256(DefaultClaims(), "ec-pem")));
  EXPECT_EQ(caller.principal.ToString(), "operator:OP-1");
  EXPECT_OK(auth->VerifyToken(Rs256(DefaultClaims(), "1")).status());  // index in the file
  ExpectRefused(*auth, Es256(DefaultClaims(), "0"), "key id unknown");

  // Without any kid line: "0", "1".
  testing::WriteFile(pem_file, absl::StrCat(testing::PublicKeyPem(TestKeys().ec),
                                            testing::PublicKeyPem(TestKeys().rsa)));
  auto by_index = New(config);
  EXPECT_OK(by_index->VerifyToken(Es256(DefaultClaims(), "0")).status());
  EXPECT_OK(by_index->VerifyToken(Rs256(DefaultClaims(), "1")).status());
}

TEST_F(AuthenticatorTest, KeysFileReloadRotatesKeys) {
  auto auth = New();
  const std::string old_token = Es256(DefaultClaims(), "ec-1");
  const std::string new_token = MintRaw(TestKeys().ec2, Header("ES256", "ec-2"), DefaultClaims().Json());
  ASSERT_OK(auth->VerifyToken(old_token).status());
  ExpectRefused(*auth, new_token, "key id unknown");

  testing::WriteFile(keys_file_, Jwks({Jwk("ec-2", TestKeys().ec2)}));
  // Checked at most once a second.
  EXPECT_OK(auth->VerifyToken(old_token).status());
  clock_.Advance(absl::Milliseconds(1100));
  ExpectRefused(*auth, old_token, "key id unknown");  // even though it was cached
  EXPECT_OK(auth->VerifyToken(new_token).status());

  // A broken file keeps the previous keys.
  testing::WriteFile(keys_file_, "{\"keys\": [");
  clock_.Advance(absl::Seconds(2));
  EXPECT_OK(auth->VerifyToken(new_token).status());
  ::remove(keys_file_.c_str());
  clock_.Advance(absl::Seconds(2));
  EXPECT_OK(auth->VerifyToken(new_token).status());

  // Fixed again: both keys.
  testing::WriteFile(keys_file_, Jwks({Jwk("ec-1", TestKeys().ec), Jwk("ec-2", TestKeys().ec2)}));
  clock_.Advance(absl::Seconds(2));
  EXPECT_OK(auth->VerifyToken(old_token).status());
  EXPECT_OK(auth->VerifyToken(new_token).status());

  // A JWKS listing no key is the explicit revocation of every key: nothing is accepted, the
  // cached verifications included, until keys are listed again.
  testing::WriteFile(keys_file_, "{\"keys\": []}");
  clock_.Advance(absl::Seconds(2));
  ExpectRefused(*auth, old_token, "key id unknown");
  ExpectRefused(*auth, new_token, "key id unknown");
  testing::WriteFile(keys_file_, Jwks({Jwk("ec-2", TestKeys().ec2)}));
  clock_.Advance(absl::Seconds(2));
  EXPECT_OK(auth->VerifyToken(new_token).status());
}

// At start-up an empty key set is a configuration error, not a gateway that refuses everyone.
TEST_F(AuthenticatorTest, NoKeyAtStartIsAnError) {
  testing::WriteFile(keys_file_, "{\"keys\": []}");
  EXPECT_FALSE(NewAuthenticator(Config(), clock_).ok());
}

TEST_F(AuthenticatorTest, AuthorizationMetadata) {
  auto auth = New();
  const std::string token = Es256();
  auto call = [&](std::vector<std::pair<std::string, std::string>> md) {
    grpc::ServerContext context;
    grpc::testing::ServerContextTestSpouse spouse(&context);
    for (auto& [k, v] : md) spouse.AddClientMetadata(k, v);
    return auth->Authenticate(context);
  };
  ASSERT_OK_AND_ASSIGN(Caller caller, call({{"authorization", "Bearer " + token}}));
  EXPECT_EQ(caller.principal.ToString(), "operator:OP-1");
  EXPECT_OK(call({{"authorization", "bearer   " + token}}).status());

  for (const auto& md : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {},
           {{"authorization", "Basic dXNlcjpwYXNz"}},
           {{"authorization", "Bearer"}},
           {{"authorization", "Bearer "}},
           {{"authorization", token}},
           {{"authorization", "Bearer " + token}, {"authorization", "Bearer " + token}},
           {{"x-parcours-principal", "national"}},
       }) {
    auto result = call(md);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(std::string(result.status().message()), Not(HasSubstr(token.substr(0, 20))));
  }
}

// The gate runs before a token not remembered as good is verified, and its refusal is the answer;
// a remembered good token and a token refused before verification (malformed header) skip it.
TEST_F(AuthenticatorTest, BeforeVerifyingGatesOnlyTokensToVerify) {
  auto auth = New();
  const std::string good = Es256();
  int asked = 0;
  bool open = true;
  auto call = [&](const std::string& authorization) {
    grpc::ServerContext context;
    grpc::testing::ServerContextTestSpouse spouse(&context);
    spouse.AddClientMetadata("authorization", authorization);
    return auth->Authenticate(context, [&]() -> absl::Status {
      ++asked;
      return open ? absl::OkStatus() : absl::ResourceExhaustedError("too many failures");
    });
  };
  EXPECT_OK(call("Bearer " + good).status());
  EXPECT_EQ(asked, 1);
  EXPECT_OK(call("Bearer " + good).status());  // remembered: no verification, no question
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(call("Basic dXNlcjpwYXNz").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(asked, 1);
  open = false;
  const std::string forged = MintRaw(TestKeys().ec2, Header("ES256", "ec-1"), DefaultClaims().Json());
  absl::Status refused = call("Bearer " + forged).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.message(), "too many failures");
  EXPECT_EQ(asked, 2);
  EXPECT_OK(call("Bearer " + good).status());
  open = true;
  EXPECT_EQ(call("Bearer " + forged).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(asked, 3);
}

TEST_F(AuthenticatorTest, Config) {
  ASSERT_OK_AND_ASSIGN(
      AuthConfig c,
      AuthConfig::FromConfig(parcours::Config::FromMap({{"auth.jwt_keys_file", keys_file_},
                                                        {"auth.jwt_issuer", kIssuer},
                                                        {"auth.jwt_audience", kAudience},
                                                        {"auth.clock_skew", "10s"},
                                                        {"auth.accept_client_certificates", "false"},
                                                        {"auth.token_cache_entries", "5"}})));
  EXPECT_EQ(c.clock_skew, absl::Seconds(10));
  EXPECT_FALSE(c.accept_client_certificates);
  EXPECT_EQ(c.token_cache_entries, 5);
  ASSERT_OK_AND_ASSIGN(AuthConfig defaults, AuthConfig::FromConfig(parcours::Config::FromMap({})));
  EXPECT_TRUE(defaults.jwt_keys_file.empty());
  EXPECT_TRUE(defaults.accept_client_certificates);

  for (const std::map<std::string, std::string>& bad : std::vector<std::map<std::string, std::string>>{
           {{"auth.jwt_keys_file", keys_file_}, {"auth.jwt_audience", kAudience}},
           {{"auth.jwt_keys_file", keys_file_}, {"auth.jwt_issuer", kIssuer}},
           {{"auth.clock_skew", "-1s"}},
           {{"auth.clock_skew", "1h"}},
           {{"auth.clock_skew", "soon"}},
           {{"auth.accept_client_certificates", "false"}},
           {{"auth.token_cache_entries", "-1"}},
       }) {
    EXPECT_EQ(AuthConfig::FromConfig(parcours::Config::FromMap(bad)).status().code(),
              absl::StatusCode::kInvalidArgument);
  }

  AuthConfig missing = Config();
  missing.jwt_keys_file = dir_ + "/absent.json";
  EXPECT_EQ(NewAuthenticator(missing, clock_).status().code(), absl::StatusCode::kInvalidArgument);
  testing::WriteFile(keys_file_, "not a key");
  EXPECT_EQ(NewAuthenticator(Config(), clock_).status().code(), absl::StatusCode::kInvalidArgument);

  // Bearer tokens disabled.
  AuthConfig certs_only;
  auto auth = New(certs_only);
  ExpectRefused(*auth, Es256(), "not accepted");
}

TEST(KeySetTest, Jwks) {
  const Keys& k = TestKeys();
  std::string encryption_key = Jwk("enc", k.ec);
  encryption_key.replace(encryption_key.find("\"sig\""), 5, "\"enc\"");
  // Keys that are not ours are skipped, the usable one remains.
  ASSERT_OK_AND_ASSIGN(
      auto set,
      KeySet::Parse(Jwks({R"({"kty":"oct","kid":"h","k":"c2VjcmV0"})",
                          R"({"kty":"EC","crv":"P-384","kid":"p384","x":"AA","y":"AA"})",
                          encryption_key,
                          R"({"kty":"RSA","alg":"PS256","kid":"ps","n":"AQAB","e":"AQAB"})",
                          Jwk("ec-1", k.ec)})));
  EXPECT_EQ(set->size(), 1u);
  ASSERT_NE(set->Find("ec-1"), nullptr);
  EXPECT_EQ(set->Find("ec-1")->alg, JwtAlg::kES256);
  EXPECT_EQ(set->Find("enc"), nullptr);

  for (const std::string& bad : std::vector<std::string>{
           "{}",
           "{\"keys\":[]}",
           Jwks({R"({"kty":"oct","kid":"h","k":"c2VjcmV0"})"}),
           Jwks({Jwk("a", k.ec), Jwk("a", k.ec2)}),                       // kid repeats
           Jwks({R"({"kty":"EC","crv":"P-256","kid":"x","x":"AA","y":"AA"})"}),  // short
           Jwks({absl::StrCat(R"({"kty":"EC","crv":"P-256","kid":"c","x":")",
                              Base64UrlEncode(std::string(32, '\x01')), R"(","y":")",
                              Base64UrlEncode(std::string(32, '\x02')), "\"}")}),  // not on curve
           Jwks({absl::StrCat(R"({"kty":"RSA","kid":"r","n":")",
                              Base64UrlEncode(std::string(128, '\xC3')), R"(","e":"AQAB"})")}),  // 1024 bits
           Jwks({R"({"kty":"EC","crv":"P-256","x":"AA","y":"AA"})"}),  // no kid
           "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
           "# kid: a\n",
           absl::StrCat("-----BEGIN CERTIFICATE-----\n", testing::PublicKeyPem(k.ec)),
       }) {
    EXPECT_EQ(KeySet::Parse(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  // A 1024-bit RSA key in PEM is refused too.
  EXPECT_FALSE(KeySet::Parse(testing::PublicKeyPem(testing::NewRsaKeyPem(1024))).ok());
}

TEST(JsonTest, StrictParsing) {
  ASSERT_OK_AND_ASSIGN(json::Value v,
                       json::Parse(R"( {"a":[1,-2.5e3,true,false,null],"b":"\u00e9\ud83d\ude00\n"} )"));
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.Find("a")->array.size(), 5u);
  EXPECT_EQ(v.Find("a")->array[1].number, -2500);
  EXPECT_EQ(v.Find("b")->string, "\xC3\xA9\xF0\x9F\x98\x80\n");
  for (const char* bad : {"", "{", "{\"a\":1,}", "{\"a\":1}x", "{\"a\":1,\"a\":2}", "[01]", "[1.]",
                          "\"\\ud800\"", "\"a\nb\"", "[1e999]", "{'a':1}", "nul", "[-]"}) {
    EXPECT_FALSE(json::Parse(bad).ok()) << bad;
  }
  std::string deep(40, '[');
  deep += std::string(40, ']');
  EXPECT_FALSE(json::Parse(deep).ok());
}

TEST(Base64UrlTest, Strict) {
  std::string out;
  EXPECT_TRUE(Base64UrlDecode("aGVsbG8", &out));
  EXPECT_EQ(out, "hello");
  EXPECT_EQ(Base64UrlEncode("hello"), "aGVsbG8");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(Base64UrlDecode("aGVsbG8=", &out));
  EXPECT_FALSE(Base64UrlDecode("aGVsbG9", &out));  // non-zero unused bits
  EXPECT_FALSE(Base64UrlDecode("a+/b", &out));
  EXPECT_FALSE(Base64UrlDecode("abcde", &out));
  EXPECT_FALSE(Base64UrlDecode("ab cd", &out));
}

TEST(PrincipalFromSpiffeIdTest, Forms) {
  EXPECT_EQ(PrincipalFromSpiffeId("spiffe://parcours.fr/principal/operator/OP-1")->ToString(),
            "operator:OP-1");
  EXPECT_EQ(PrincipalFromSpiffeId("spiffe://parcours.fr/principal/national")->ToString(),
            "national");
  EXPECT_EQ(PrincipalFromSpiffeId("spiffe://parcours.fr/principal/region/53")->ToString(),
            "region:53");
  for (const char* bad :
       {"spiffe://parcours.fr/service/gateway", "spiffe://evil.fr/principal/national",
        "spiffe://parcours.fr/principal/operator", "spiffe://parcours.fr/principal/operator/a/b",
        "spiffe://parcours.fr/principal/national/x", "spiffe://parcours.fr/principal/root/x",
        "spiffe://parcours.fr/principal/operator/OP%2F1", "spiffe://parcours.fr/principal/",
        "spiffe://parcours.fr/principal/operator:OP-1", "spiffe://parcours.fr/principal/certifier:CPNE-IA"}) {
    EXPECT_EQ(PrincipalFromSpiffeId(bad).status().code(), absl::StatusCode::kUnauthenticated)
        << bad;
  }
}

// Measures verification: what a call pays. Prints the figures; fails only when far off.
TEST_F(AuthenticatorTest, VerifyTimeBenchmark) {
  constexpr int kTokens = 2000;
  auto time_per_verify = [&](Authenticator& auth, const std::vector<std::string>& tokens) {
    const absl::Time start = absl::Now();
    for (const auto& t : tokens) {
      auto caller = auth.VerifyToken(t);
      EXPECT_TRUE(caller.ok()) << caller.status();
    }
    return absl::ToDoubleMicroseconds(absl::Now() - start) / static_cast<double>(tokens.size());
  };
  std::vector<std::string> es256, rs256;
  for (int i = 0; i < kTokens; ++i) {
    Claims c = DefaultClaims().Set("jti", Quote(absl::StrCat("t-", i)));
    es256.push_back(Es256(c));
    if (i < kTokens / 4) rs256.push_back(Rs256(c));
  }
  AuthConfig no_cache_config = Config();
  no_cache_config.token_cache_entries = 0;
  auto no_cache = New(no_cache_config);
  auto cached = New();
  time_per_verify(*no_cache, std::vector<std::string>(es256.begin(), es256.begin() + 100));  // warm-up
  const double es_us = time_per_verify(*no_cache, es256);
  const double rs_us = time_per_verify(*no_cache, rs256);
  time_per_verify(*cached, es256);  // fills the cache
  const double hit_us = time_per_verify(*cached, es256);
  // The signature check alone (OpenSSL's share of the above).
  ASSERT_OK_AND_ASSIGN(auto keys, KeySet::Parse(Jwks({Jwk("ec-1", TestKeys().ec)})));
  const VerificationKey* key = keys->Find("ec-1");
  std::vector<std::pair<std::string, std::string>> signed_parts;
  for (const auto& t : es256) {
    std::string sig;
    ASSERT_TRUE(Base64UrlDecode(t.substr(t.rfind('.') + 1), &sig));
    signed_parts.emplace_back(t.substr(0, t.rfind('.')), sig);
  }
  const absl::Time start = absl::Now();
  for (const auto& [data, sig] : signed_parts) ASSERT_TRUE(VerifySignature(*key, data, sig));
  const double sig_us =
      absl::ToDoubleMicroseconds(absl::Now() - start) / static_cast<double>(signed_parts.size());
  std::printf("[ BENCH    ] ES256 verify %.1f us/token (signature alone %.1f), RS256 verify %.1f "
              "us/token, cached %.2f us/token\n",
              es_us, sig_us, rs_us, hit_us);
  RecordProperty("es256_verify_us", absl::StrCat(es_us));
  RecordProperty("rs256_verify_us", absl::StrCat(rs_us));
  RecordProperty("cached_verify_us", absl::StrCat(hit_us));
  EXPECT_LT(es_us, 1000.0);
  EXPECT_LT(hit_us, es_us);
}

// ---------------------------------------------------------------------------------------------
// Client certificates over a real TLS server.

// Answers "principal|subject|via" for the caller, or the authenticator's error.
class WhoAmI final : public BenchService::Service {
 public:
  explicit WhoAmI(Authenticator* auth) : auth_(auth) {}
  grpc::Status Echo(grpc::ServerContext* context, const EchoRequest*,
                    EchoResponse* response) override {
    auto caller = auth_->Authenticate(*context);
    if (!caller.ok()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(caller.status().message()));
    }
    response->set_payload(absl::StrCat(
        caller->principal.ToString(), "|", caller->subject, "|",
        caller->via == Caller::Via::kJwt ? "jwt" : "certificate"));
    return grpc::Status::OK;
  }

 private:
  Authenticator* auth_;
};

class ClientCertificateTest : public AuthenticatorTest {
 protected:
  void SetUp() override {
    AuthenticatorTest::SetUp();
    auto write = [&](const std::string& name, const std::string& content) {
      const std::string path = absl::StrCat(dir_, "/", name);
      testing::WriteFile(path, content);
      return path;
    };
    testing::TestCa ca;
    ca_file_ = write("ca.pem", ca.cert_pem());
    testing::CertSpec server;
    server.dns = {"localhost"};
    server.ips = {"127.0.0.1"};
    auto s = ca.Issue(server);
    server_cert_ = write("server.pem", s.cert_pem);
    server_key_ = write("server.key", s.key_pem);
    server_cert_pem_ = s.cert_pem;
    server_key_pem_ = s.key_pem;
    ca_pem_ = ca.cert_pem();
    auto client = [&](const std::string& name, std::vector<std::string> uris) {
      testing::CertSpec spec;
      spec.common_name = name;
      spec.uris = std::move(uris);
      spec.server_auth = false;
      auto c = ca.Issue(spec);
      write(name + ".pem", c.cert_pem);
      write(name + ".key", c.key_pem);
    };
    client("operator", {"spiffe://parcours.fr/principal/operator/OP-9"});
    client("national", {"spiffe://parcours.fr/principal/national"});
    client("gateway", {"spiffe://parcours.fr/service/gateway"});
    client("two", {"spiffe://parcours.fr/principal/national",
                   "spiffe://parcours.fr/principal/operator/OP-9"});
    client("bad", {"spiffe://parcours.fr/principal/operator/a/b"});
    auth_ = New();
    service_ = std::make_unique<WhoAmI>(auth_.get());
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  void StartServer(std::shared_ptr<grpc::ServerCredentials> credentials) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", credentials, &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }

  // The way the gateway serves: TLS, client certificate optional but verified when presented.
  void StartGatewayLikeServer() {
    ServerTlsOptions tls;
    tls.cert_file = server_cert_;
    tls.key_file = server_key_;
    tls.client_ca_file = ca_file_;
    tls.client_auth = ServerTlsOptions::ClientAuth::kOptional;
    auto credentials = MakeServerCredentials(tls);
    ASSERT_OK(credentials.status());
    StartServer(*credentials);
  }

  grpc::Status Call(const std::string& client, const std::string& token, std::string* payload,
                    bool tls = true) {
    ChannelOptions options;
    options.address = absl::StrCat("127.0.0.1:", port_);
    if (tls) options.tls_ca_file = ca_file_;
    if (!client.empty()) {
      options.tls_cert_file = absl::StrCat(dir_, "/", client, ".pem");
      options.tls_key_file = absl::StrCat(dir_, "/", client, ".key");
    }
    auto channel = MakeChannel(options);
    if (!channel.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "channel");
    auto stub = BenchService::NewStub(*channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    EchoResponse response;
    grpc::Status status = stub->Echo(&context, EchoRequest(), &response);
    *payload = response.payload();
    return status;
  }

  std::string ca_file_, server_cert_, server_key_;
  std::string ca_pem_, server_cert_pem_, server_key_pem_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<WhoAmI> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(ClientCertificateTest, PrincipalFromCertificate) {
  StartGatewayLikeServer();
  std::string payload;
  grpc::Status status = Call("operator", "", &payload);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(payload, "operator:OP-9|spiffe://parcours.fr/principal/operator/OP-9|certificate");
  status = Call("national", "", &payload);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(payload, "national|spiffe://parcours.fr/principal/national|certificate");
}

TEST_F(ClientCertificateTest, TokenWinsOverCertificate) {
  StartGatewayLikeServer();
  std::string payload;
  grpc::Status status = Call("operator", Es256(), &payload);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(payload, "operator:OP-1|user-42|jwt");
  status = Call("", Es256(), &payload);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(payload, "operator:OP-1|user-42|jwt");
  // A bad token is not rescued by a good certificate.
  status = Call("operator", Es256(DefaultClaims().Set("aud", Quote("x"))), &payload);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ClientCertificateTest, CertificatesWithoutOnePrincipalAreRefused) {
  StartGatewayLikeServer();
  std::string payload;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"gateway", "names no principal"},
      {"two", "several principals"},
      {"bad", "principal malformed"},
      {"", "no bearer token and no client certificate"},
  };
  for (const auto& [client, reason] : cases) {
    grpc::Status status = Call(client, "", &payload);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << client;
    EXPECT_THAT(status.error_message(), HasSubstr(reason)) << client;
  }
}

TEST_F(ClientCertificateTest, SslServerCredentialsRequiringClientCertificates) {
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = ca_pem_;
  options.pem_key_cert_pairs.push_back({server_key_pem_, server_cert_pem_});
  StartServer(grpc::SslServerCredentials(options));
  std::string payload;
  grpc::Status status = Call("operator", "", &payload);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(payload, "operator:OP-9|spiffe://parcours.fr/principal/operator/OP-9|certificate");
  EXPECT_FALSE(Call("", "", &payload).ok());  // no certificate: the handshake fails
}

TEST_F(ClientCertificateTest, PlaintextNeverAuthenticatesByCertificate) {
  StartServer(grpc::InsecureServerCredentials());
  std::string payload;
  grpc::Status status = Call("", "", &payload, /*tls=*/false);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  status = Call("", Es256(), &payload, /*tls=*/false);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(payload, "operator:OP-1|user-42|jwt");
}

TEST_F(ClientCertificateTest, CertificatesCanBeTurnedOff) {
  AuthConfig config = Config();
  config.accept_client_certificates = false;
  auth_ = New(config);
  service_ = std::make_unique<WhoAmI>(auth_.get());
  StartGatewayLikeServer();
  std::string payload;
  grpc::Status status = Call("operator", "", &payload);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("no bearer token"));
}

}  // namespace
}  // namespace parcours::gateway
