#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace im::store {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::chrono::milliseconds timeout{1000};  // connect and per-command
  // Every connection authenticates (AUTH) first when a password is set: `password` alone for the
  // default user (requirepass), with `username` for an ACL user.
  std::string username;
  std::string password;
  // TLS to Redis (its tls-port), through RedisTlsBridge: the certificate checked against
  // `tls_ca_file` (empty: the system's roots) and named `tls_server_name` (empty: `host`).
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_server_name;
  // Connections the process's one RedisConnection keeps (every Redis-backed store shares it):
  // callers on different threads use different ones instead of queueing on one lock, so as many
  // as the threads that call Redis at once (logic's executor threads).
  size_t connections = 16;
};

}  // namespace im::store
