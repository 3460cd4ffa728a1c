// The grpc_tls.* settings: all three files or none, clear errors naming the key, and the files read
// at start-up (the credentials hold their contents).
#include "common/grpc_tls.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include "common/tls/testing/test_certificates.h"

namespace im::common {
namespace {

absl::StatusOr<GrpcCredentials> Load(std::map<std::string, std::string> env) {
  absl::StatusOr<Config> config = Config::FromYamlString("", std::move(env));
  EXPECT_TRUE(config.ok());
  absl::StatusOr<GrpcTlsOptions> options = GrpcTlsOptions::FromConfig(*config);
  if (!options.ok()) return options.status();
  return GrpcCredentials::Load(*options);
}

TEST(GrpcTlsTest, NoFilesIsPlaintext) {
  absl::StatusOr<GrpcCredentials> credentials = Load({});
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_FALSE(credentials->tls());
}

TEST(GrpcTlsTest, PartialSettingsAreRefusedWithWhatIsMissing) {
  absl::StatusOr<GrpcCredentials> cert_only = Load({{"IM_GRPC_TLS_CERT_FILE", "/x/server.pem"}});
  ASSERT_FALSE(cert_only.ok());
  EXPECT_NE(cert_only.status().message().find("ca_file, cert_file and key_file together"),
            std::string::npos);
  absl::StatusOr<GrpcCredentials> mutual_only = Load({{"IM_GRPC_TLS_MUTUAL", "true"}});
  ASSERT_FALSE(mutual_only.ok());
  EXPECT_NE(mutual_only.status().message().find("grpc_tls.mutual"), std::string::npos);
}

TEST(GrpcTlsTest, FilesAreReadAtStartAndAMissingOneIsNamed) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("im-grpc-tls-" + std::to_string(::getpid()));
  absl::StatusOr<tls::testing::TestCertificates> files =
      tls::testing::TestCertificates::Create(dir);
  ASSERT_TRUE(files.ok()) << files.status();
  std::map<std::string, std::string> env = {{"IM_GRPC_TLS_CA_FILE", files->ca_file},
                                            {"IM_GRPC_TLS_CERT_FILE", files->cert_file},
                                            {"IM_GRPC_TLS_KEY_FILE", files->key_file},
                                            {"IM_GRPC_TLS_MUTUAL", "true"}};
  absl::StatusOr<GrpcCredentials> credentials = Load(env);
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_TRUE(credentials->tls());
  EXPECT_NE(credentials->Server(), nullptr);

  env["IM_GRPC_TLS_KEY_FILE"] = dir + "/missing.key";
  absl::StatusOr<GrpcCredentials> missing = Load(env);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("grpc_tls.key_file: cannot read"), std::string::npos)
      << missing.status();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace im::common
