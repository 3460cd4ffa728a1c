#include "common/grpc_tls.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/file_contents.h"

namespace im::common {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& key, const std::string& path) {
  std::optional<std::string> text = ReadFileContents(path);
  if (!text) return absl::InvalidArgumentError(absl::StrCat(key, ": cannot read ", path));
  if (text->find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": ", path, " holds no PEM block"));
  }
  return *std::move(text);
}

}  // namespace

absl::StatusOr<GrpcTlsOptions> GrpcTlsOptions::FromConfig(Config& config) {
  GrpcTlsOptions o;
  o.ca_file = config.GetString("grpc_tls.ca_file", "");
  o.cert_file = config.GetString("grpc_tls.cert_file", "");
  o.key_file = config.GetString("grpc_tls.key_file", "");
  o.server_name = config.GetString("grpc_tls.server_name", "");
  o.mutual = config.GetBool("grpc_tls.mutual", false);
  const bool any = !o.ca_file.empty() || !o.cert_file.empty() || !o.key_file.empty();
  if (any && (o.ca_file.empty() || o.cert_file.empty() || o.key_file.empty())) {
    return absl::InvalidArgumentError(
        "grpc_tls needs ca_file, cert_file and key_file together (or none: plaintext)");
  }
  if (!any && (o.mutual || !o.server_name.empty())) {
    return absl::InvalidArgumentError(
        "grpc_tls.mutual and grpc_tls.server_name need grpc_tls.cert_file, key_file and ca_file");
  }
  return o;
}

absl::StatusOr<GrpcCredentials> GrpcCredentials::Load(const GrpcTlsOptions& options) {
  GrpcCredentials credentials;
  if (!options.enabled()) return credentials;
  absl::StatusOr<std::string> ca = ReadPem("grpc_tls.ca_file", options.ca_file);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::string> cert = ReadPem("grpc_tls.cert_file", options.cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem("grpc_tls.key_file", options.key_file);
  if (!key.ok()) return key.status();
  credentials.tls_ = true;
  credentials.mutual_ = options.mutual;
  credentials.ca_ = std::move(*ca);
  credentials.cert_ = std::move(*cert);
  credentials.key_ = std::move(*key);
  credentials.server_name_ = options.server_name;
  return credentials;
}

std::shared_ptr<grpc::ServerCredentials> GrpcCredentials::Server() const {
  if (!tls_) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(
      mutual_ ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
              : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_root_certs = ca_;
  ssl.pem_key_cert_pairs.push_back({key_, cert_});
  return grpc::SslServerCredentials(ssl);
}

std::shared_ptr<grpc::Channel> GrpcCredentials::Channel(const std::string& target,
                                                        grpc::ChannelArguments args) const {
  if (!tls_) return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_;
  // The client certificate goes along always: a server that does not ask ignores it.
  ssl.pem_private_key = key_;
  ssl.pem_cert_chain = cert_;
  if (!server_name_.empty()) args.SetSslTargetNameOverride(server_name_);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args);
}

}  // namespace im::common
