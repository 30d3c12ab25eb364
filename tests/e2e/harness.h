// Multi-process end-to-end harness: the four real binaries (referential-svc, evaluation-svc,
// cep-svc, gateway) started as child processes on 127.0.0.1, configured as the Kubernetes
// manifests configure them (k8s/base/config + components/mtls):
//  - a test CA (platform/testing/pki.h) and one certificate per service, URI SAN
//    spiffe://parcours.fr/service/<svc>, DNS SAN <svc>.parcours.svc; backends serve mTLS on their
//    API port (client certificate required, allowed identities: the gateway, plus evaluation-svc
//    for referential-svc); plaintext admin (gRPC health) and metrics ports; drain_grace > 0;
//  - the gateway serves TLS with its own public certificate, client certificates optional
//    (end users come with a bearer JWT), and calls the backends over mTLS with its internal
//    certificate; JWT ES256 keys published to it as a JWKS file; tokens are signed in-test;
//  - a fresh MariaDB database per service (FreshMysqlDatabase: PARCOURS_TEST_MYSQL_DSN, or a
//    private server started in-process), `migrate` run first, the seed CQP loaded with
//    `referential-svc load` before referential-svc starts.
// Each process starts on port 0; its ports are read from its port_file, then pinned in its config
// so a restart comes back on the same ports. Children get SIGKILL if the test process dies
// (PR_SET_PDEATHSIG): start, restart and destroy the cluster from the test's main thread.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "platform/testing/health_client.h"
#include "platform/testing/pki.h"

namespace parcours::e2e {

enum class Svc { kReferential = 0, kEvaluation = 1, kCep = 2, kGateway = 3 };
constexpr std::array<Svc, 4> kAllSvcs = {Svc::kReferential, Svc::kEvaluation, Svc::kCep, Svc::kGateway};
constexpr std::array<Svc, 3> kBackends = {Svc::kReferential, Svc::kEvaluation, Svc::kCep};
const char* SvcName(Svc svc);  // "referential-svc", ..., "gateway"

inline constexpr char kIssuer[] = "https://auth.parcours.fr";
inline constexpr char kAudience[] = "parcours-gateway";
inline constexpr char kKid[] = "e2e-1";
inline constexpr char kSeedVersion[] = "certifications/CQP-TMSA/versions/1";
inline constexpr char kSeedTitle[] = "Technicien de maintenance du secteur alimentaire";

struct Ports {
  int api = 0;
  int admin = 0;
  int metrics = 0;
};

// A certificate and its key, as files.
struct CertFiles {
  std::string cert;
  std::string key;
};

// JWT helpers: base64url, ES256 signing with a PEM private key.
std::string Base64Url(const std::string& in);
std::string SignEs256(const std::string& signing_input, const std::string& key_pem);
// header.claims.signature with the given JSON texts, signed ES256 with `key_pem`.
std::string MakeJwt(const std::string& header_json, const std::string& claims_json, const std::string& key_pem);
// Standard claims for `principal`: iss, aud, sub, iat, nbf, exp = now + ttl.
std::string Claims(const std::string& principal, absl::Duration ttl = absl::Hours(1),
                   const std::string& audience = kAudience, const std::string& issuer = kIssuer);

class Cluster {
 public:
  struct Options {
    absl::Duration drain_grace = absl::Seconds(1);
    absl::Duration drain_timeout = absl::Seconds(5);
    absl::Duration part_deadline = absl::Seconds(1);
  };

  // Everything above, up to SERVING on every admin port.
  static absl::StatusOr<std::unique_ptr<Cluster>> Start(Options options);
  static absl::StatusOr<std::unique_ptr<Cluster>> Start() { return Start(Options()); }
  ~Cluster();  // SIGKILL to whatever still runs, temp dir removed
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // SIGTERM and wait for the exit (up to `timeout`, then SIGKILL); the exit status is returned
  // (`*exit_code`: the code, or 128 + signal).
  absl::Status Stop(Svc svc, absl::Duration timeout = absl::Seconds(30), int* exit_code = nullptr);
  // Sends SIGTERM and returns at once (WaitExit to reap).
  absl::Status Terminate(Svc svc);
  absl::Status WaitExit(Svc svc, absl::Duration timeout, int* exit_code = nullptr);
  // SIGKILL and reap.
  absl::Status Kill(Svc svc);
  // Starts a stopped process again on the same ports and waits for SERVING.
  absl::Status Restart(Svc svc);
  bool Running(Svc svc);

  const Ports& ports(Svc svc) const { return procs_[Index(svc)].ports; }
  std::string ApiAddress(Svc svc) const;
  std::string AdminAddress(Svc svc) const;
  std::string LogTail(Svc svc, int lines = 30) const;

  // The gateway's public port over TLS (verified against the test CA, no client certificate).
  std::shared_ptr<grpc::Channel> GatewayChannel() const;
  // A plaintext channel to an admin port.
  std::shared_ptr<grpc::Channel> AdminChannel(Svc svc) const;
  // A TLS channel to a backend's API port presenting `client` (empty: no certificate).
  std::shared_ptr<grpc::Channel> BackendChannel(Svc svc, const CertFiles& client) const;
  grpc::Status Health(Svc svc, testing::ServingStatus* status,
                      std::chrono::milliseconds timeout = std::chrono::seconds(2)) const;

  // A valid bearer token for `principal` (kid e2e-1, ES256, 1 h).
  std::string Token(const std::string& principal) const;
  const std::string& jwt_key_pem() const { return jwt_key_pem_; }

  // Test credentials: the CA, the service certificates, and issued extra client certificates.
  const std::string& ca_file() const { return ca_file_; }
  const CertFiles& service_cert(Svc svc) const { return procs_[Index(svc)].cert; }
  // A client certificate from the cluster's CA with URI SAN `uri`.
  CertFiles IssueClientCert(const std::string& name, const std::string& uri) const;
  const std::string& dir() const { return dir_; }

 private:
  struct Proc {
    Svc svc;
    std::string binary;
    std::string config_file;
    std::string port_file;
    std::string log_file;
    CertFiles cert;
    std::map<std::string, std::string> config;  // dotted keys
    Ports ports;
    pid_t pid = -1;
  };
  static size_t Index(Svc svc) { return static_cast<size_t>(svc); }

  Cluster() = default;
  absl::Status Init(Options options);
  absl::Status WriteConfig(Proc& p);
  absl::Status RunToCompletion(const Proc& p, const std::vector<std::string>& args);
  absl::Status Launch(Proc& p);  // start serve, read the port file, wait for SERVING
  pid_t Spawn(const Proc& p, const std::vector<std::string>& args);
  Proc& proc(Svc svc) { return procs_[Index(svc)]; }

  Options options_;
  std::string dir_;
  std::string ca_file_;
  std::unique_ptr<testing::TestCa> ca_;
  std::string jwt_key_pem_;
  std::array<Proc, 4> procs_;
};

}  // namespace parcours::e2e
