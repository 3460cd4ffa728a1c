#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace im::store {

struct MySqlOptions {
  std::string host = "127.0.0.1";
  int port = 3306;
  std::string user;
  std::string password;
  std::string database;
  uint32_t pool_size = 8;  // connections, at least 1
  // MySQL counts these in whole seconds: they are rounded up, to 1 s at least. The read timeout
  // bounds how long one statement may wait for the server.
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds read_write_timeout{5000};
  // How long a caller waits for a connection when all pool_size are borrowed.
  std::chrono::milliseconds acquire_timeout{5000};
  // TLS, when the CA file is set: every connection encrypted (refused by the client otherwise)
  // and the server's certificate checked against the CA and the host name. With a certificate and
  // key, the client presents them (for a user created REQUIRE X509).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
};

}  // namespace im::store
