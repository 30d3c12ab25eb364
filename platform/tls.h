// Transport security between services: mutual TLS on the API port of a backend, TLS channels to
// it. In Kubernetes the gateway holds a certificate whose URI SAN is
// spiffe://parcours.fr/service/gateway; a backend serves TLS, requires a client certificate from
// the cluster's CA and accepts only the identities it lists (the gateway), so the
// `x-parcours-principal` metadata it trusts can only come from the gateway.
//
// Certificates and keys are PEM files, re-read by gRPC when they change (checked every
// `refresh_interval`), so a rotated certificate (cert-manager, a renewed Secret) is picked up
// without a restart. Start-up fails fast when a file is missing, unreadable or does not parse, or
// when a key does not match its certificate.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/security/server_credentials.h"
#include "platform/config.h"

namespace parcours {

// ---------------------------------------------------------------------------------------------
// Server side (the API port; the admin and metrics ports always stay plaintext).

struct ServerTlsOptions {
  enum class ClientAuth {
    kNone,      // no client certificate asked for
    kOptional,  // asked for, verified against the client CA when presented (the gateway:
                // end users come with tokens, partner systems with certificates)
    kRequire,   // required and verified (backends)
  };

  std::string cert_file;       // server certificate chain (PEM); TLS is on when set
  std::string key_file;        // its private key (PEM)
  std::string client_ca_file;  // CA bundle client certificates are verified against
  ClientAuth client_auth = ClientAuth::kNone;
  // URI SANs (e.g. "spiffe://parcours.fr/service/gateway") of the only clients accepted; empty
  // accepts any certificate the CA signed. Checked on every call (UNAUTHENTICATED otherwise).
  std::vector<std::string> allowed_client_identities;
  absl::Duration refresh_interval = absl::Minutes(1);

  bool enabled() const { return !cert_file.empty(); }

  // Keys:
  //   server.tls_cert_file, server.tls_key_file        both or neither
  //   server.tls_client_ca_file                        client certificates verified against it
  //   server.tls_client_auth  "require" (default when a client CA is set) | "optional"
  //   server.allowed_client_identities  comma-separated URI SANs; needs a client CA and
  //                                     tls_client_auth=require
  //   server.tls_refresh_interval       how often the files are checked for changes (1m)
  static absl::StatusOr<ServerTlsOptions> FromConfig(const Config& config);
};

// Credentials for a server: TLS when options.enabled(), else plaintext. With allowed identities,
// an AuthMetadataProcessor refuses (UNAUTHENTICATED) every call whose peer certificate carries
// none of them.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsOptions& options);

// The URI SANs of the peer's certificate (as verified by the TLS layer); empty for a plaintext
// peer or a peer without certificate.
std::vector<std::string> PeerUriSans(const grpc::AuthContext& context);
// True when the call came over TLS (GRPC_TRANSPORT_SECURITY_TYPE "ssl" or "tls").
bool IsTlsPeer(const grpc::AuthContext& context);

// ---------------------------------------------------------------------------------------------
// Client side.

struct ChannelOptions {
  std::string address;         // any gRPC target: "host:port", "dns:///svc.ns:8080"
  std::string tls_ca_file;     // TLS is on when set: the server is verified against this CA
  std::string tls_cert_file;   // client certificate (mTLS), with tls_key_file
  std::string tls_key_file;
  std::string tls_server_name; // expected name in the server certificate (default: the target host)
  absl::Duration refresh_interval = absl::Minutes(1);

  // Keys <prefix>.address, <prefix>.tls_ca_file, <prefix>.tls_cert_file, <prefix>.tls_key_file,
  // <prefix>.tls_server_name, <prefix>.tls_refresh_interval. `default_address` is used when
  // <prefix>.address is unset; empty makes the key required.
  static absl::StatusOr<ChannelOptions> FromConfig(const Config& config, std::string_view prefix,
                                                   std::string_view default_address = "");
};

// A channel with round_robin load balancing (a dns:/// target naming a headless Service spreads
// calls over every pod), TLS when a CA is configured. `args`: extra channel arguments (message
// sizes...); their service config is replaced by round_robin's.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelOptions& options,
                                                           grpc::ChannelArguments args = {});
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const Config& config,
                                                           std::string_view prefix,
                                                           std::string_view default_address = "",
                                                           grpc::ChannelArguments args = {});

}  // namespace parcours
