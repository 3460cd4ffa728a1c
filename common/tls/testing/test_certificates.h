#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace im::tls::testing {

// A CA and a server certificate it signed, written as PEM files into a directory: what tests give
// a TLS server (cert_file, key_file) and its clients (ca_file). The server certificate names
// "localhost", 127.0.0.1 and ::1. Keys are P-256 (quick to make).
struct TestCertificates {
  std::string ca_file;
  std::string cert_file;  // the server's certificate, then the CA's (a chain)
  std::string key_file;
  std::string pin;  // "sha256/..." of the server's key

  // Makes a new CA and server certificate in `directory` (created if missing). `common_name`
  // tells certificates of one set apart; `valid_days` may be negative (an expired certificate).
  static absl::StatusOr<TestCertificates> Create(const std::string& directory,
                                                 const std::string& common_name = "im-test",
                                                 int valid_days = 30);
};

}  // namespace im::tls::testing
