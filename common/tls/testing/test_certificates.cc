#include "common/tls/testing/test_certificates.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/tls/tls_context.h"

namespace im::tls::testing {
namespace {

struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertificateDeleter {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyDeleter>;
using CertificatePtr = std::unique_ptr<X509, CertificateDeleter>;

constexpr long kSecondsPerDay = 86'400;

absl::Status AddExtension(X509* certificate, X509* issuer, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
  if (extension == nullptr) return absl::InternalError(absl::StrCat("extension ", value));
  X509_add_ext(certificate, extension, -1);
  X509_EXTENSION_free(extension);
  return absl::OkStatus();
}

// A certificate for `key` named `common_name`, signed by `issuer_key` (itself when `issuer` is
// null), with the extensions given as (nid, value).
absl::StatusOr<CertificatePtr> MakeCertificate(
    EVP_PKEY* key, const std::string& common_name, X509* issuer, EVP_PKEY* issuer_key,
    int valid_days, std::initializer_list<std::pair<int, const char*>> extensions) {
  CertificatePtr certificate(X509_new());
  X509_set_version(certificate.get(), 2);
  uint64_t serial = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof(serial));
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(certificate.get()), serial >> 1);
  const long not_before = valid_days < 0 ? (valid_days - 1) * kSecondsPerDay : -3600;
  X509_gmtime_adj(X509_getm_notBefore(certificate.get()), not_before);
  X509_gmtime_adj(X509_getm_notAfter(certificate.get()), valid_days * kSecondsPerDay);
  X509_set_pubkey(certificate.get(), key);
  X509_NAME* name = X509_get_subject_name(certificate.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509* signer = issuer != nullptr ? issuer : certificate.get();
  X509_set_issuer_name(certificate.get(), X509_get_subject_name(signer));
  for (const auto& [nid, value] : extensions) {
    if (absl::Status added = AddExtension(certificate.get(), signer, nid, value); !added.ok()) {
      return added;
    }
  }
  if (X509_sign(certificate.get(), issuer_key, EVP_sha256()) == 0) {
    return absl::InternalError(absl::StrCat("signing ", common_name, ": ", TakeOpenSslError()));
  }
  return certificate;
}

absl::Status WritePem(const std::string& path, std::initializer_list<X509*> certificates,
                      EVP_PKEY* key) {
  FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) return absl::InternalError(absl::StrCat("cannot write ", path));
  bool ok = true;
  for (X509* certificate : certificates) ok = ok && PEM_write_X509(file, certificate) == 1;
  if (key != nullptr) {
    ok = ok && PEM_write_PrivateKey(file, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  }
  std::fclose(file);
  return ok ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path));
}

}  // namespace

absl::StatusOr<TestCertificates> TestCertificates::Create(const std::string& directory,
                                                          const std::string& common_name,
                                                          int valid_days) {
  std::filesystem::create_directories(directory);
  KeyPtr ca_key(EVP_EC_gen("P-256"));
  KeyPtr server_key(EVP_EC_gen("P-256"));
  if (!ca_key || !server_key) return absl::InternalError("cannot make P-256 keys");
  absl::StatusOr<CertificatePtr> ca = MakeCertificate(
      ca_key.get(), common_name + " CA", nullptr, ca_key.get(), valid_days,
      {{NID_basic_constraints, "critical,CA:TRUE"}, {NID_key_usage, "critical,keyCertSign"}});
  if (!ca.ok()) return ca.status();
  absl::StatusOr<CertificatePtr> server =
      MakeCertificate(server_key.get(), common_name, ca->get(), ca_key.get(), valid_days,
                      {{NID_basic_constraints, "critical,CA:FALSE"},
                       {NID_key_usage, "critical,digitalSignature"},
                       {NID_ext_key_usage, "serverAuth,clientAuth"},
                       {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"}});
  if (!server.ok()) return server.status();

  TestCertificates files;
  files.ca_file = directory + "/ca.pem";
  files.cert_file = directory + "/server.pem";
  files.key_file = directory + "/server.key";
  for (const absl::Status& written :
       {WritePem(files.ca_file, {ca->get()}, nullptr),
        WritePem(files.cert_file, {server->get(), ca->get()}, nullptr),
        WritePem(files.key_file, {}, server_key.get())}) {
    if (!written.ok()) return written;
  }
  absl::StatusOr<std::string> pin = PinOfCertificateFile(files.cert_file);
  if (!pin.ok()) return pin.status();
  files.pin = *pin;
  return files;
}

}  // namespace im::tls::testing
