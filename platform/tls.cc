#include "platform/tls.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/auth_metadata_processor.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "grpcpp/support/channel_arguments.h"
#include "openssl/bio.h"
#include "openssl/err.h"
#include "openssl/evp.h"
#include "openssl/pem.h"
#include "openssl/x509.h"
#include "platform/log.h"

namespace parcours {
namespace {

constexpr char kRoundRobinServiceConfig[] = R"({"loadBalancingConfig":[{"round_robin":{}}]})";

struct OpenSslFree {
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
template <typename T>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree>;

absl::StatusOr<std::string> ReadPemFile(const std::string& key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(key, ": cannot read ", path));
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(key, ": cannot read ", path));
  return content;
}

// The certificates of a PEM bundle, in file order; INVALID_ARGUMENT when there is none.
absl::StatusOr<std::vector<OpenSslPtr<X509>>> ParseCertificates(const std::string& key,
                                                                const std::string& path) {
  auto pem = ReadPemFile(key, path);
  if (!pem.ok()) return pem.status();
  OpenSslPtr<BIO> bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  std::vector<OpenSslPtr<X509>> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  ERR_clear_error();  // the loop ends on a "no start line" error
  if (certs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": no PEM certificate in ", path));
  }
  return certs;
}

// Certificate chain + private key: both parse and the key is the first certificate's.
absl::Status CheckKeyPair(const std::string& cert_key, const std::string& cert_path,
                          const std::string& key_key, const std::string& key_path) {
  auto certs = ParseCertificates(cert_key, cert_path);
  if (!certs.ok()) return certs.status();
  auto pem = ReadPemFile(key_key, key_path);
  if (!pem.ok()) return pem.status();
  OpenSslPtr<BIO> bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  OpenSslPtr<EVP_PKEY> pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!pkey) {
    return absl::InvalidArgumentError(absl::StrCat(key_key, ": no PEM private key in ", key_path));
  }
  if (X509_check_private_key(certs->front().get(), pkey.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(key_key, ": the key in ", key_path,
                                                   " does not match the certificate in ",
                                                   cert_path));
  }
  return absl::OkStatus();
}

unsigned int RefreshSeconds(absl::Duration d) {
  return static_cast<unsigned int>(std::clamp<int64_t>(absl::ToInt64Seconds(d), 1, 86400));
}

// Refuses every call whose peer certificate has none of the allowed URI SANs. Non-blocking:
// it runs inline in the call's path (a few string comparisons), not on a thread pool.
class AllowedIdentitiesProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit AllowedIdentitiesProcessor(const std::vector<std::string>& allowed)
      : allowed_(allowed.begin(), allowed.end()) {}

  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& /*auth_metadata*/, grpc::AuthContext* context,
                       OutputMetadata* /*consumed*/, OutputMetadata* /*response*/) override {
    const std::vector<std::string> uris = PeerUriSans(*context);
    for (const std::string& uri : uris) {
      if (allowed_.count(uri) != 0) return grpc::Status::OK;
    }
    // One line every 10 s at most: a misconfigured client retrying must not flood the log.
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    int64_t last = last_log_.load(std::memory_order_relaxed);
    if (now - last >= 10 && last_log_.compare_exchange_strong(last, now)) {
      log::Warn("client identity not allowed",
                {{"peer_uri_sans", uris.empty() ? "(none)" : absl::StrJoin(uris, ",")}});
    }
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "client identity not allowed");
  }

 private:
  const std::set<std::string, std::less<>> allowed_;
  std::atomic<int64_t> last_log_{0};
};

}  // namespace

// ---------------------------------------------------------------------------------------------

absl::StatusOr<ServerTlsOptions> ServerTlsOptions::FromConfig(const Config& config) {
  ServerTlsOptions o;
  o.cert_file = config.GetString("server.tls_cert_file");
  o.key_file = config.GetString("server.tls_key_file");
  o.client_ca_file = config.GetString("server.tls_client_ca_file");
  const std::string client_auth =
      absl::AsciiStrToLower(config.GetString("server.tls_client_auth"));
  for (absl::string_view id :
       absl::StrSplit(config.GetString("server.allowed_client_identities"), ',')) {
    id = absl::StripAsciiWhitespace(id);
    if (!id.empty()) o.allowed_client_identities.emplace_back(id);
  }
  auto refresh = config.GetDuration("server.tls_refresh_interval", o.refresh_interval);
  if (!refresh.ok()) return refresh.status();
  o.refresh_interval = *refresh;

  if (o.cert_file.empty() != o.key_file.empty()) {
    return absl::InvalidArgumentError(
        "server.tls_cert_file and server.tls_key_file: set both or neither");
  }
  if (!o.client_ca_file.empty() && !o.enabled()) {
    return absl::InvalidArgumentError(
        "server.tls_client_ca_file: needs server.tls_cert_file and server.tls_key_file");
  }
  if (client_auth.empty()) {
    o.client_auth = o.client_ca_file.empty() ? ClientAuth::kNone : ClientAuth::kRequire;
  } else if (o.client_ca_file.empty()) {
    return absl::InvalidArgumentError("server.tls_client_auth: needs server.tls_client_ca_file");
  } else if (client_auth == "require") {
    o.client_auth = ClientAuth::kRequire;
  } else if (client_auth == "optional") {
    o.client_auth = ClientAuth::kOptional;
  } else {
    return absl::InvalidArgumentError("server.tls_client_auth: must be \"require\" or \"optional\"");
  }
  if (!o.allowed_client_identities.empty() && o.client_auth != ClientAuth::kRequire) {
    return absl::InvalidArgumentError(
        "server.allowed_client_identities: needs server.tls_client_ca_file and "
        "server.tls_client_auth=require");
  }
  if (o.refresh_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("server.tls_refresh_interval: must be positive");
  }
  return o;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsOptions& options) {
  if (!options.enabled()) return grpc::InsecureServerCredentials();
  absl::Status pair = CheckKeyPair("server.tls_cert_file", options.cert_file,
                                   "server.tls_key_file", options.key_file);
  if (!pair.ok()) return pair;
  const bool verify_clients = options.client_auth != ServerTlsOptions::ClientAuth::kNone;
  if (verify_clients) {
    auto ca = ParseCertificates("server.tls_client_ca_file", options.client_ca_file);
    if (!ca.ok()) return ca.status();
  }

  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.key_file, options.cert_file, verify_clients ? options.client_ca_file : "",
      RefreshSeconds(options.refresh_interval));
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (verify_clients) {
    tls.watch_root_certs();
    tls.set_cert_request_type(options.client_auth == ServerTlsOptions::ClientAuth::kRequire
                                  ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                  : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::experimental::TlsServerCredentials(tls);
  if (credentials == nullptr) return absl::InternalError("cannot create TLS server credentials");
  if (!options.allowed_client_identities.empty()) {
    credentials->SetAuthMetadataProcessor(
        std::make_shared<AllowedIdentitiesProcessor>(options.allowed_client_identities));
  }
  return credentials;
}

std::vector<std::string> PeerUriSans(const grpc::AuthContext& context) {
  std::vector<std::string> out;
  if (!IsTlsPeer(context)) return out;
  for (const grpc::string_ref& v : context.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    out.emplace_back(v.data(), v.size());
  }
  return out;
}

bool IsTlsPeer(const grpc::AuthContext& context) {
  for (const grpc::string_ref& v :
       context.FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME)) {
    // "ssl" from SslServerCredentials, "tls" from TlsServerCredentials.
    if (v == GRPC_SSL_TRANSPORT_SECURITY_TYPE || v == "tls") return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------

absl::StatusOr<ChannelOptions> ChannelOptions::FromConfig(const Config& config,
                                                          std::string_view prefix,
                                                          std::string_view default_address) {
  const std::string p(prefix);
  ChannelOptions o;
  o.address = config.GetString(p + ".address", default_address);
  o.tls_ca_file = config.GetString(p + ".tls_ca_file");
  o.tls_cert_file = config.GetString(p + ".tls_cert_file");
  o.tls_key_file = config.GetString(p + ".tls_key_file");
  o.tls_server_name = config.GetString(p + ".tls_server_name");
  auto refresh = config.GetDuration(p + ".tls_refresh_interval", o.refresh_interval);
  if (!refresh.ok()) return refresh.status();
  o.refresh_interval = *refresh;

  if (o.address.empty()) return absl::InvalidArgumentError(absl::StrCat(p, ".address: required"));
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(p, ".tls_cert_file and ", p, ".tls_key_file: set both or neither"));
  }
  if (o.tls_ca_file.empty() && (!o.tls_cert_file.empty() || !o.tls_server_name.empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat(p, ".tls_ca_file: required when ", p, ".tls_cert_file or ", p,
                     ".tls_server_name is set"));
  }
  if (o.refresh_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(p, ".tls_refresh_interval: must be positive"));
  }
  return o;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelOptions& options,
                                                           grpc::ChannelArguments args) {
  args.SetServiceConfigJSON(kRoundRobinServiceConfig);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls_ca_file.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    auto ca = ParseCertificates("tls_ca_file", options.tls_ca_file);
    if (!ca.ok()) return ca.status();
    std::shared_ptr<grpc::experimental::FileWatcherCertificateProvider> provider;
    const unsigned int refresh = RefreshSeconds(options.refresh_interval);
    grpc::experimental::TlsChannelCredentialsOptions tls;
    if (options.tls_cert_file.empty()) {
      provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          options.tls_ca_file, refresh);
    } else {
      absl::Status pair = CheckKeyPair("tls_cert_file", options.tls_cert_file, "tls_key_file",
                                       options.tls_key_file);
      if (!pair.ok()) return pair;
      provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          options.tls_key_file, options.tls_cert_file, options.tls_ca_file, refresh);
      tls.watch_identity_key_cert_pairs();
    }
    tls.set_certificate_provider(provider);
    tls.watch_root_certs();
    // The server certificate is verified against the CA and its name against the target host
    // (or tls_server_name): gRPC's default hostname verifier.
    credentials = grpc::experimental::TlsCredentials(tls);
    if (credentials == nullptr) return absl::InternalError("cannot create TLS channel credentials");
    if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  }
  return grpc::CreateCustomChannel(options.address, credentials, args);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const Config& config,
                                                           std::string_view prefix,
                                                           std::string_view default_address,
                                                           grpc::ChannelArguments args) {
  auto options = ChannelOptions::FromConfig(config, prefix, default_address);
  if (!options.ok()) return options.status();
  return MakeChannel(*options, std::move(args));
}

}  // namespace parcours
