// Test-only keys and X.509 certificates made with OpenSSL in the test process: a CA, server
// certificates for 127.0.0.1/localhost, client certificates carrying URI SANs (SPIFFE ids).
// Nothing here is for production: keys are kept in memory as PEM strings.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace parcours::testing {

// PKCS#8 PEM private keys.
std::string NewEcP256KeyPem();
std::string NewRsaKeyPem(int bits = 2048);
// The SubjectPublicKeyInfo PEM of a private key PEM.
std::string PublicKeyPem(const std::string& private_key_pem);

struct CertSpec {
  std::string common_name = "test";
  std::vector<std::string> dns;   // DNS SANs
  std::vector<std::string> ips;   // IP SANs ("127.0.0.1")
  std::vector<std::string> uris;  // URI SANs ("spiffe://parcours.fr/service/gateway")
  bool server_auth = true;        // extendedKeyUsage
  bool client_auth = true;
  absl::Duration not_before = absl::Hours(-1);  // relative to now
  absl::Duration not_after = absl::Hours(24);
};

struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8, EC P-256
};

class TestCa {
 public:
  explicit TestCa(const std::string& name = "Parcours Test CA");
  const std::string& cert_pem() const { return ca_.cert_pem; }
  const std::string& key_pem() const { return ca_.key_pem; }
  CertAndKey Issue(const CertSpec& spec) const;

 private:
  CertAndKey ca_;
};

// A fresh directory under the test temp dir; WriteFile replaces a file's content.
std::string MakeTempDir(const std::string& prefix);
void WriteFile(const std::string& path, const std::string& content);

}  // namespace parcours::testing
