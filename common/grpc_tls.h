#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"

namespace im::common {

// TLS on the gRPC links between gateways and logic nodes (LogicService, GatewayService), both
// ways: each process serves with its certificate and, calling the other, checks the other's
// against the CA; with `mutual`, servers also require a client certificate the CA signed. Read
// from the `grpc_tls` keys of both binaries; off (plaintext, for a private network) unless
// cert_file is set.
struct GrpcTlsOptions {
  std::string ca_file;    // PEM: the CA that signs every gateway's and logic node's certificate
  std::string cert_file;  // PEM: this process's certificate chain (server and client)
  std::string key_file;   // PEM: its private key
  // The name every peer's certificate must carry; empty: the host of the address called. Pods
  // are called by IP, so a cluster usually names one DNS SAN its certificates share.
  std::string server_name;
  bool mutual = false;  // servers require and verify a client certificate

  bool enabled() const { return !cert_file.empty(); }

  // The grpc_tls.* keys; all of ca_file, cert_file and key_file once any is set, and the files
  // readable, or an error naming the key.
  static absl::StatusOr<GrpcTlsOptions> FromConfig(Config& config);
};

// Credentials for this process's gRPC server and channels, made from GrpcTlsOptions (the files
// read once, at construction). Thread-safe.
class GrpcCredentials {
 public:
  // Plaintext.
  GrpcCredentials() = default;
  static absl::StatusOr<GrpcCredentials> Load(const GrpcTlsOptions& options);

  std::shared_ptr<grpc::ServerCredentials> Server() const;
  // A channel to `target` with `args` (the server name override added when set).
  std::shared_ptr<grpc::Channel> Channel(const std::string& target,
                                         grpc::ChannelArguments args = {}) const;
  bool tls() const { return tls_; }

 private:
  bool tls_ = false;
  bool mutual_ = false;
  std::string ca_;
  std::string cert_;
  std::string key_;
  std::string server_name_;
};

}  // namespace im::common
