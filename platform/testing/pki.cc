#include "platform/testing/pki.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "openssl/bio.h"
#include "openssl/bn.h"
#include "openssl/evp.h"
#include "openssl/pem.h"
#include "openssl/rand.h"
#include "openssl/x509.h"
#include "openssl/x509v3.h"

namespace parcours::testing {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Free>;

[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error("test pki: " + what); }

std::string BioString(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string PrivatePem(EVP_PKEY* key) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    Fail("PEM_write_bio_PrivateKey");
  }
  return BioString(bio.get());
}

Ptr<EVP_PKEY> ReadPrivate(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Ptr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) Fail("cannot read private key");
  return key;
}

Ptr<X509> ReadCert(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Ptr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) Fail("cannot read certificate");
  return cert;
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ptr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext) Fail(absl::StrCat("extension ", nid, " = ", value));
  if (!X509_add_ext(cert, ext.get(), -1)) Fail("X509_add_ext");
}

// Builds and signs a certificate. issuer == nullptr: self-signed with `key`.
std::string MakeCert(const CertSpec& spec, bool is_ca, EVP_PKEY* key, X509* issuer,
                     EVP_PKEY* issuer_key) {
  Ptr<X509> cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial_bytes[16];
  RAND_bytes(serial_bytes, sizeof(serial_bytes));
  serial_bytes[0] &= 0x7f;
  Ptr<BIGNUM> serial(BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr));
  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), absl::ToInt64Seconds(spec.not_before));
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), absl::ToInt64Seconds(spec.not_after));
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Parcours tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                             -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));

  AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  if (is_ca) {
    AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    std::vector<std::string> eku;
    if (spec.server_auth) eku.push_back("serverAuth");
    if (spec.client_auth) eku.push_back("clientAuth");
    if (!eku.empty()) AddExtension(cert.get(), signer, NID_ext_key_usage, absl::StrJoin(eku, ","));
    std::vector<std::string> sans;
    for (const auto& d : spec.dns) sans.push_back("DNS:" + d);
    for (const auto& ip : spec.ips) sans.push_back("IP:" + ip);
    for (const auto& u : spec.uris) sans.push_back("URI:" + u);
    if (!sans.empty()) {
      AddExtension(cert.get(), signer, NID_subject_alt_name, absl::StrJoin(sans, ","));
    }
  }
  if (!X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256())) {
    Fail("X509_sign");
  }
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert.get());
  return BioString(bio.get());
}

}  // namespace

std::string NewEcP256KeyPem() {
  Ptr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!key) Fail("EVP_EC_gen");
  return PrivatePem(key.get());
}

std::string NewRsaKeyPem(int bits) {
  Ptr<EVP_PKEY> key(EVP_RSA_gen(static_cast<unsigned int>(bits)));
  if (!key) Fail("EVP_RSA_gen");
  return PrivatePem(key.get());
}

std::string PublicKeyPem(const std::string& private_key_pem) {
  Ptr<EVP_PKEY> key = ReadPrivate(private_key_pem);
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PUBKEY(bio.get(), key.get())) Fail("PEM_write_bio_PUBKEY");
  return BioString(bio.get());
}

TestCa::TestCa(const std::string& name) {
  ca_.key_pem = NewEcP256KeyPem();
  Ptr<EVP_PKEY> key = ReadPrivate(ca_.key_pem);
  CertSpec spec;
  spec.common_name = name;
  ca_.cert_pem = MakeCert(spec, /*is_ca=*/true, key.get(), nullptr, nullptr);
}

CertAndKey TestCa::Issue(const CertSpec& spec) const {
  CertAndKey out;
  out.key_pem = NewEcP256KeyPem();
  Ptr<EVP_PKEY> key = ReadPrivate(out.key_pem);
  Ptr<EVP_PKEY> ca_key = ReadPrivate(ca_.key_pem);
  Ptr<X509> ca_cert = ReadCert(ca_.cert_pem);
  out.cert_pem = MakeCert(spec, /*is_ca=*/false, key.get(), ca_cert.get(), ca_key.get());
  return out;
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp", "/", prefix,
                                   "_XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr) Fail("mkdtemp " + templ);
  return templ;
}

void WriteFile(const std::string& path, const std::string& content) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) Fail("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) Fail("cannot rename " + tmp);
}

}  // namespace parcours::testing
