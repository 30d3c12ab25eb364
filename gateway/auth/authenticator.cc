#include "gateway/auth/authenticator.h"

#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "gateway/auth/json.h"
#include "gateway/auth/jwt_keys.h"
#include "openssl/sha.h"
#include "platform/crypto.h"
#include "platform/log.h"
#include "platform/service_main.h"
#include "platform/tls.h"

namespace parcours::gateway {
namespace {

constexpr size_t kMaxTokenBytes = 8192;
constexpr absl::Duration kMaxClockSkew = absl::Minutes(10);
constexpr absl::Duration kReloadCheckInterval = absl::Seconds(1);
constexpr char kSpiffePrincipalPrefix[] = "spiffe://parcours.fr/principal/";

absl::Status Unauthenticated(const char* reason) { return absl::UnauthenticatedError(reason); }

absl::Status ValidateConfig(const AuthConfig& c) {
  if (!c.jwt_keys_file.empty() && (c.jwt_issuer.empty() || c.jwt_audience.empty())) {
    return absl::InvalidArgumentError(
        "auth.jwt_issuer and auth.jwt_audience: required with auth.jwt_keys_file");
  }
  if (c.clock_skew < absl::ZeroDuration() || c.clock_skew > kMaxClockSkew) {
    return absl::InvalidArgumentError("auth.clock_skew: must be between 0 and 10m");
  }
  if (c.token_cache_entries < 0) {
    return absl::InvalidArgumentError("auth.token_cache_entries: must not be negative");
  }
  if (!c.subject_digest_key.empty() && c.subject_digest_key.size() < 32) {
    return absl::InvalidArgumentError("auth.subject_digest_key_file: the key is at least 32 bytes");
  }
  if (c.jwt_keys_file.empty() && !c.accept_client_certificates) {
    return absl::InvalidArgumentError(
        "auth: neither auth.jwt_keys_file nor auth.accept_client_certificates: no caller could "
        "authenticate");
  }
  return absl::OkStatus();
}

// What identifies a version of the keys file: a rewrite, a rename over it or a Kubernetes
// Secret update (a symlink swap) changes at least one of these.
struct FileVersion {
  int64_t mtime_ns = -1;
  int64_t size = -1;
  uint64_t inode = 0;
  uint64_t device = 0;
  bool operator==(const FileVersion& o) const {
    return mtime_ns == o.mtime_ns && size == o.size && inode == o.inode && device == o.device;
  }
  bool operator!=(const FileVersion& o) const { return !(*this == o); }
};

bool StatFile(const std::string& path, FileVersion* out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  out->mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  out->size = st.st_size;
  out->inode = st.st_ino;
  out->device = st.st_dev;
  return true;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  return content;
}

// JWT NumericDate: seconds since the epoch, possibly fractional.
bool NumericDate(const json::Value* v, absl::Time* out) {
  if (v == nullptr || !v->is_number()) return false;
  // Beyond year 10000 or before 1970: not a date we accept.
  if (v->number < 0 || v->number > 253402300800.0) return false;
  *out = absl::UnixEpoch() + absl::Seconds(v->number);
  return true;
}

struct CacheEntry {
  Caller caller;
  absl::Time not_before;  // nbf - skew (InfinitePast without nbf)
  absl::Time expires;     // exp + skew
  uint64_t generation;    // keys generation that verified it
};

class AuthenticatorImpl final : public Authenticator {
 public:
  AuthenticatorImpl(AuthConfig config, const Clock& clock) : config_(std::move(config)), clock_(clock) {}

  absl::Status LoadInitialKeys() {
    if (config_.jwt_keys_file.empty()) return absl::OkStatus();
    FileVersion version;
    if (!StatFile(config_.jwt_keys_file, &version)) {
      return absl::InvalidArgumentError(
          absl::StrCat("auth.jwt_keys_file: cannot read ", config_.jwt_keys_file));
    }
    auto content = ReadFile(config_.jwt_keys_file);
    if (!content.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("auth.jwt_keys_file: ", content.status().message()));
    }
    auto keys = KeySet::Parse(*content);
    if (!keys.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("auth.jwt_keys_file ", config_.jwt_keys_file,
                                                     ": ", keys.status().message()));
    }
    keys_ = *std::move(keys);
    loaded_version_ = version;
    next_check_ns_ = absl::ToUnixNanos(clock_.Now() + kReloadCheckInterval);
    return absl::OkStatus();
  }

  using Authenticator::Authenticate;

  absl::StatusOr<Caller> Authenticate(const grpc::ServerContextBase& context,
                                      const BeforeVerifying& before_verifying) override {
    const auto& metadata = context.client_metadata();
    auto [begin, end] = metadata.equal_range("authorization");
    if (begin != end) {
      if (std::next(begin) != end) return Unauthenticated("more than one authorization header");
      const absl::string_view value(begin->second.data(), begin->second.size());
      // RFC 6750: "Bearer" (case-insensitive), one or more spaces, the token.
      const size_t space = value.find(' ');
      if (space == absl::string_view::npos ||
          !absl::EqualsIgnoreCase(value.substr(0, space), "bearer")) {
        return Unauthenticated("unsupported authorization scheme (expected Bearer)");
      }
      const absl::string_view token = absl::StripLeadingAsciiWhitespace(value.substr(space));
      if (token.empty()) return Unauthenticated("empty bearer token");
      return Verified(std::string(token), before_verifying);
    }
    if (config_.accept_client_certificates) {
      std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
      if (auth != nullptr && IsTlsPeer(*auth) && auth->IsPeerAuthenticated()) {
        return FromCertificate(*auth);
      }
    }
    return Unauthenticated(config_.jwt_keys_file.empty()
                               ? "no client certificate"
                               : config_.accept_client_certificates
                                     ? "no bearer token and no client certificate"
                                     : "no bearer token");
  }

  absl::StatusOr<Caller> VerifyToken(const std::string& token) override { return Verified(token, {}); }

 private:
  absl::StatusOr<Caller> Verified(const std::string& token, const BeforeVerifying& before_verifying) {
    if (config_.jwt_keys_file.empty()) return Unauthenticated("bearer tokens are not accepted");
    if (token.size() > kMaxTokenBytes) return Unauthenticated("bearer token too large");
    const absl::Time now = clock_.Now();
    MaybeReloadKeys(now);

    std::shared_ptr<const KeySet> keys;
    uint64_t generation;
    const std::string digest = config_.token_cache_entries > 0 ? Sha256(token) : std::string();
    {
      absl::ReaderMutexLock lock(&mu_);
      keys = keys_;
      generation = generation_;
      if (config_.token_cache_entries > 0) {
        auto it = cache_.find(digest);
        if (it != cache_.end() && it->second.generation == generation) {
          if (now < it->second.not_before) return Unauthenticated("bearer token not yet valid");
          if (now > it->second.expires) return Unauthenticated("bearer token expired");
          return it->second.caller;
        }
      }
    }

    if (before_verifying) {
      if (absl::Status s = before_verifying(); !s.ok()) return s;
    }
    CacheEntry entry;
    absl::Status verified = Verify(*keys, token, now, &entry);
    if (!verified.ok()) return verified;
    if (config_.token_cache_entries > 0) {
      entry.generation = generation;
      absl::MutexLock lock(&mu_);
      if (generation == generation_) {
        if (cache_.size() >= static_cast<size_t>(config_.token_cache_entries)) {
          absl::erase_if(cache_, [&](const auto& kv) { return kv.second.expires < now; });
          if (cache_.size() >= static_cast<size_t>(config_.token_cache_entries)) cache_.clear();
        }
        cache_.insert_or_assign(digest, entry);
      }
    }
    return std::move(entry.caller);
  }

  // The audit subject for a `sub` that is not a plain id (an e-mail address is common): the
  // audit stream must hold no personal data, so a keyed digest that still tells one subject from
  // another, and that nobody without the key can recompute from a guessed address.
  std::string WithheldSubject(const std::string& sub) const {
    return "sub-hmac:" + HexPrefix(HmacSha256(config_.subject_digest_key, sub), 16);
  }

  static std::string Sha256(const std::string& data) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
    return std::string(reinterpret_cast<char*>(md), sizeof(md));
  }

  // Everything a token must satisfy. Reasons are fixed strings: never the token, never a claim.
  absl::Status Verify(const KeySet& keys, const std::string& token, absl::Time now,
                      CacheEntry* entry) const {
    const size_t dot1 = token.find('.');
    const size_t dot2 = dot1 == std::string::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string::npos || token.find('.', dot2 + 1) != std::string::npos) {
      return Unauthenticated("malformed bearer token");
    }
    const std::string_view all(token);
    std::string header_json, payload_json, signature;
    if (!Base64UrlDecode(all.substr(0, dot1), &header_json)) {
      return Unauthenticated("malformed bearer token header");
    }
    auto header = json::Parse(header_json);
    if (!header.ok() || !header->is_object()) return Unauthenticated("malformed bearer token header");

    const json::Value* alg = header->Find("alg");
    if (alg == nullptr || !alg->is_string()) return Unauthenticated("bearer token has no alg");
    JwtAlg want;
    if (alg->string == "ES256") {
      want = JwtAlg::kES256;
    } else if (alg->string == "RS256") {
      want = JwtAlg::kRS256;
    } else {
      return Unauthenticated("bearer token algorithm not accepted");
    }
    if (header->Find("crit") != nullptr) {
      return Unauthenticated("bearer token has critical header parameters");
    }
    const json::Value* kid = header->Find("kid");
    if (kid == nullptr || !kid->is_string()) return Unauthenticated("bearer token has no kid");
    const VerificationKey* key = keys.Find(kid->string);
    if (key == nullptr) return Unauthenticated("bearer token key id unknown");
    if (key->alg != want) return Unauthenticated("bearer token key does not match its algorithm");

    if (!Base64UrlDecode(all.substr(dot2 + 1), &signature)) {
      return Unauthenticated("malformed bearer token signature");
    }
    if (!VerifySignature(*key, all.substr(0, dot2), signature)) {
      return Unauthenticated("bearer token signature invalid");
    }

    // Signed by us: now the claims.
    if (!Base64UrlDecode(all.substr(dot1 + 1, dot2 - dot1 - 1), &payload_json)) {
      return Unauthenticated("malformed bearer token payload");
    }
    auto claims = json::Parse(payload_json);
    if (!claims.ok() || !claims->is_object()) return Unauthenticated("malformed bearer token payload");

    const json::Value* iss = claims->Find("iss");
    if (iss == nullptr || !iss->is_string() || iss->string != config_.jwt_issuer) {
      return Unauthenticated("bearer token issuer not accepted");
    }
    const json::Value* aud = claims->Find("aud");
    bool audience_ok = false;
    if (aud != nullptr && aud->is_string()) {
      audience_ok = aud->string == config_.jwt_audience;
    } else if (aud != nullptr && aud->is_array()) {
      for (const json::Value& a : aud->array) {
        if (!a.is_string()) {
          audience_ok = false;
          break;
        }
        if (a.string == config_.jwt_audience) audience_ok = true;
      }
    }
    if (!audience_ok) return Unauthenticated("bearer token audience not accepted");

    absl::Time exp;
    const json::Value* exp_claim = claims->Find("exp");
    if (exp_claim == nullptr) return Unauthenticated("bearer token has no exp");
    if (!NumericDate(exp_claim, &exp)) return Unauthenticated("malformed bearer token exp");
    entry->expires = exp + config_.clock_skew;
    if (now > entry->expires) return Unauthenticated("bearer token expired");
    entry->not_before = absl::InfinitePast();
    if (const json::Value* nbf_claim = claims->Find("nbf"); nbf_claim != nullptr) {
      absl::Time nbf;
      if (!NumericDate(nbf_claim, &nbf)) return Unauthenticated("malformed bearer token nbf");
      entry->not_before = nbf - config_.clock_skew;
      if (now < entry->not_before) return Unauthenticated("bearer token not yet valid");
    }

    const json::Value* principal_claim = claims->Find("parcours_principal");
    if (principal_claim == nullptr || !principal_claim->is_string()) {
      return Unauthenticated("bearer token has no parcours_principal");
    }
    auto principal = ParsePrincipal(principal_claim->string);
    if (!principal.ok()) return Unauthenticated("bearer token parcours_principal malformed");
    const json::Value* sub = claims->Find("sub");
    if (sub != nullptr && !sub->is_string()) return Unauthenticated("malformed bearer token sub");

    entry->caller.principal = *std::move(principal);
    entry->caller.subject = sub == nullptr || sub->string.empty() ? entry->caller.principal.ToString()
                            : ValidPrincipalId(sub->string)   ? sub->string
                                                              : WithheldSubject(sub->string);
    entry->caller.via = Caller::Via::kJwt;
    return absl::OkStatus();
  }

  absl::StatusOr<Caller> FromCertificate(const grpc::AuthContext& auth) const {
    std::vector<std::string> principals;
    for (const std::string& uri : PeerUriSans(auth)) {
      if (absl::StartsWith(uri, kSpiffePrincipalPrefix)) principals.push_back(uri);
    }
    if (principals.empty()) return Unauthenticated("client certificate names no principal");
    if (principals.size() > 1) return Unauthenticated("client certificate names several principals");
    auto principal = PrincipalFromSpiffeId(principals.front());
    if (!principal.ok()) return principal.status();
    Caller caller;
    caller.principal = *std::move(principal);
    caller.subject = principals.front();
    caller.via = Caller::Via::kClientCertificate;
    return caller;
  }

  // At most once per kReloadCheckInterval of the clock, one caller stats the file; a change
  // loads it. Other callers go on with the keys they have.
  void MaybeReloadKeys(absl::Time now) {
    const int64_t now_ns = absl::ToUnixNanos(now);
    int64_t next = next_check_ns_.load(std::memory_order_relaxed);
    if (now_ns < next) return;
    if (!next_check_ns_.compare_exchange_strong(
            next, absl::ToUnixNanos(now + kReloadCheckInterval), std::memory_order_relaxed)) {
      return;  // another thread is checking
    }
    if (!reload_mu_.TryLock()) return;
    ReloadIfChanged();
    reload_mu_.Unlock();
  }

  void ReloadIfChanged() ABSL_EXCLUSIVE_LOCKS_REQUIRED(reload_mu_) {
    const std::string& path = config_.jwt_keys_file;
    FileVersion version;
    if (!StatFile(path, &version)) {
      if (!missing_logged_) {
        log::Error("jwt keys file unreadable, keeping the previous keys", {{"path", path}});
        missing_logged_ = true;
      }
      return;
    }
    missing_logged_ = false;
    if (version == loaded_version_ || version == failed_version_) return;
    auto content = ReadFile(path);
    absl::StatusOr<std::shared_ptr<const KeySet>> keys =
        content.ok() ? KeySet::Parse(*content, /*allow_revoke_all=*/true) : content.status();
    if (!keys.ok()) {
      failed_version_ = version;  // not retried until the file changes again
      log::Error("jwt keys reload failed, keeping the previous keys",
                 {{"path", path}, {"error", std::string(keys.status().message())}});
      return;
    }
    loaded_version_ = version;
    failed_version_ = FileVersion{};
    const size_t count = (*keys)->size();
    {
      absl::MutexLock lock(&mu_);
      keys_ = *std::move(keys);
      ++generation_;
      cache_.clear();
    }
    log::Info("jwt keys reloaded", {{"path", path}, {"keys", absl::StrCat(count)}});
  }

  const AuthConfig config_;
  const Clock& clock_;

  absl::Mutex mu_;
  std::shared_ptr<const KeySet> keys_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, CacheEntry> cache_ ABSL_GUARDED_BY(mu_);

  std::atomic<int64_t> next_check_ns_{0};
  absl::Mutex reload_mu_;
  FileVersion loaded_version_ ABSL_GUARDED_BY(reload_mu_);
  FileVersion failed_version_ ABSL_GUARDED_BY(reload_mu_);
  bool missing_logged_ ABSL_GUARDED_BY(reload_mu_) = false;
};

}  // namespace

absl::StatusOr<AuthConfig> AuthConfig::FromConfig(const Config& config) {
  AuthConfig c;
  c.jwt_keys_file = config.GetString("auth.jwt_keys_file");
  c.jwt_issuer = config.GetString("auth.jwt_issuer");
  c.jwt_audience = config.GetString("auth.jwt_audience");
  auto skew = config.GetDuration("auth.clock_skew", c.clock_skew);
  if (!skew.ok()) return skew.status();
  c.clock_skew = *skew;
  auto certs = config.GetBool("auth.accept_client_certificates", c.accept_client_certificates);
  if (!certs.ok()) return certs.status();
  c.accept_client_certificates = *certs;
  auto cache = config.GetInt("auth.token_cache_entries", c.token_cache_entries);
  if (!cache.ok()) return cache.status();
  c.token_cache_entries = *cache;
  if (config.Has("auth.subject_digest_key_file")) {
    auto key = SecretKeyOrRandom(config, "auth.subject_digest_key_file");
    if (!key.ok()) return key.status();
    c.subject_digest_key = *std::move(key);
  }
  absl::Status valid = ValidateConfig(c);
  if (!valid.ok()) return valid;
  return c;
}

absl::StatusOr<std::unique_ptr<Authenticator>> NewAuthenticator(AuthConfig config,
                                                                const Clock& clock) {
  absl::Status valid = ValidateConfig(config);
  if (!valid.ok()) return valid;
  if (config.subject_digest_key.empty()) {  // no key configured: random bytes for this process
    absl::StatusOr<std::string> key = RandomKey();
    if (!key.ok()) return key.status();
    config.subject_digest_key = *std::move(key);
  }
  auto authenticator = std::make_unique<AuthenticatorImpl>(std::move(config), clock);
  absl::Status loaded = authenticator->LoadInitialKeys();
  if (!loaded.ok()) return loaded;
  return std::unique_ptr<Authenticator>(std::move(authenticator));
}

absl::StatusOr<Principal> PrincipalFromSpiffeId(const std::string& uri) {
  absl::string_view rest(uri);
  if (!absl::ConsumePrefix(&rest, kSpiffePrincipalPrefix)) {
    return absl::UnauthenticatedError("certificate URI is not a parcours principal");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(rest, '/');
  absl::StatusOr<Principal> principal = absl::UnauthenticatedError("");
  if (parts.size() == 1) {
    // "kind" alone: "kind:id" is spelt "kind/id", one spelling per principal (exact-URI allow lists).
    if (!absl::StrContains(parts[0], ':')) principal = ParsePrincipal(std::string(parts[0]));
  } else if (parts.size() == 2) {
    principal = ParsePrincipal(absl::StrCat(parts[0], ":", parts[1]));
  }
  if (!principal.ok()) {
    return absl::UnauthenticatedError("client certificate principal malformed");
  }
  return principal;
}

}  // namespace parcours::gateway
