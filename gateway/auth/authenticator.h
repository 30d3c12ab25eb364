// Who is calling the gateway. Two ways in, one principal:
//  - a bearer JWT (ES256 or RS256) in the `authorization` metadata, verified against keys read
//    from a file (JWKS or PEM), reloaded when the file changes; iss, aud, exp, nbf checked with a
//    small clock skew. The principal is the token's `parcours_principal` claim
//    ("national", "region:53", "operator:OP-1", "certifier:CPNE-IA", "jury-member:J-7").
//    The header must name its key (`kid`) and an algorithm matching that key's type (EC P-256:
//    ES256, RSA >= 2048 bits: RS256); `exp` is required, `nbf` optional, `sub` (optional) is the
//    audit subject (a `sub` that is not a plain id, e.g. an e-mail address, is audited as a keyed
//    digest). `alg: none`, HMAC and every other algorithm are refused; `crit` too.
//  - an mTLS client certificate (verified by the TLS layer against the client CA) whose URI SAN
//    is spiffe://parcours.fr/principal/<kind>[/<id>], e.g. spiffe://parcours.fr/principal/operator/OP-1.
// Every failure is UNAUTHENTICATED with a reason that never echoes the token, except a refusal
// of the BeforeVerifying gate, which is answered as it is.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "platform/clock.h"
#include "platform/config.h"
#include "platform/principal.h"

namespace parcours::gateway {

struct AuthConfig {
  // JWKS (JSON) or PEM (one or more public keys; kid = file-order index as "0", "1", ... unless
  // a "# kid: <id>" line precedes the key). Empty disables bearer tokens.
  std::string jwt_keys_file;
  std::string jwt_issuer;    // required `iss`
  std::string jwt_audience;  // required in `aud` (string or array)
  absl::Duration clock_skew = absl::Seconds(30);
  // Accept mTLS client certificates as a way in. The server's TLS layer must verify them
  // (ServerTlsOptions with a client CA, platform/tls.h): a certificate is taken as proof only
  // when the call came over TLS with a peer certificate.
  bool accept_client_certificates = true;
  // Verified tokens are remembered (by SHA-256, never the token itself) until they expire, so a
  // client reusing its token costs a hash and a lookup; 0 disables. Emptied on key reload.
  int64_t token_cache_entries = 10000;
  // HMAC key of the audit subject of a `sub` that is not a plain id ("sub-hmac:" + 16 hex): a
  // plain hash of an e-mail address is reversed by hashing candidate addresses. Shared by the
  // replicas so that one subject has one digest in the whole audit stream; empty: random bytes
  // for this process (digests then compare only within one process's lines).
  std::string subject_digest_key;

  // Keys "auth.jwt_keys_file", "auth.jwt_issuer", "auth.jwt_audience", "auth.clock_skew",
  // "auth.accept_client_certificates", "auth.token_cache_entries", "auth.subject_digest_key_file"
  // (the file's content is the key). INVALID_ARGUMENT when a keys file is set without issuer or
  // audience, when the skew is negative or over 10 minutes, when neither way in is enabled, or
  // when the subject digest key is shorter than 32 bytes.
  static absl::StatusOr<AuthConfig> FromConfig(const Config& config);
};

struct Caller {
  Principal principal;
  // The token's `sub` or the certificate's URI SAN: who, for the audit line.
  std::string subject;
  enum class Via { kJwt, kClientCertificate } via = Via::kJwt;
};

class Authenticator {
 public:
  // Asked before a bearer token that is not a remembered good one is verified (decoded, its
  // signature checked); a refusal is answered instead. The gateway refuses there, before that
  // work, callers whose recent failed authentications used up their allowance.
  using BeforeVerifying = std::function<absl::Status()>;

  virtual ~Authenticator() = default;
  // A bearer token wins over a client certificate when both are present. Thread-safe.
  virtual absl::StatusOr<Caller> Authenticate(const grpc::ServerContextBase& context,
                                              const BeforeVerifying& before_verifying) = 0;
  absl::StatusOr<Caller> Authenticate(const grpc::ServerContextBase& context) { return Authenticate(context, {}); }
  // The bearer-token path alone: `token` is the compact JWT (without "Bearer ").
  virtual absl::StatusOr<Caller> VerifyToken(const std::string& token) = 0;
};

// Reads the keys file once (an unreadable or invalid file is an error here; later reloads that
// fail keep the previous keys and log). The file is checked for changes (mtime, size, inode) at
// most once per second of `clock`, on the call path. `clock` must outlive the authenticator.
absl::StatusOr<std::unique_ptr<Authenticator>> NewAuthenticator(AuthConfig config, const Clock& clock);

// The principal named by a certificate URI SAN spiffe://parcours.fr/principal/<kind>[/<id>];
// UNAUTHENTICATED for any other URI.
absl::StatusOr<Principal> PrincipalFromSpiffeId(const std::string& uri);

}  // namespace parcours::gateway
