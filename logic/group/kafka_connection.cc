#include "logic/group/kafka_connection.h"

#include <algorithm>
#include <array>
#include <string_view>

#include "fmt/format.h"

namespace im::logic {
namespace {

constexpr std::array<std::string_view, 4> kProtocols = {"plaintext", "ssl", "sasl_plaintext",
                                                        "sasl_ssl"};
constexpr std::array<std::string_view, 3> kMechanisms = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};

template <size_t N>
bool OneOf(const std::array<std::string_view, N>& allowed, const std::string& value) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

}  // namespace

bool KafkaConnection::UsesSasl() const { return security_protocol.starts_with("sasl_"); }

bool KafkaConnection::UsesTls() const { return security_protocol.ends_with("ssl"); }

absl::Status CheckKafkaConnection(const KafkaConnection& c) {
  if (!OneOf(kProtocols, c.security_protocol)) {
    return absl::InvalidArgumentError(fmt::format(
        "kafka.security_protocol must be plaintext, ssl, sasl_plaintext or sasl_ssl, got '{}'",
        c.security_protocol));
  }
  if (c.UsesSasl()) {
    if (!OneOf(kMechanisms, c.sasl_mechanism)) {
      return absl::InvalidArgumentError(fmt::format(
          "kafka.sasl_mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got '{}'",
          c.sasl_mechanism));
    }
    if (c.username.empty() || c.password.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("kafka.security_protocol {} logs in: set kafka.username and kafka.password "
                      "(IM_KAFKA_PASSWORD)",
                      c.security_protocol));
    }
  } else if (!c.username.empty() || !c.password.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "kafka.username and kafka.password are set but kafka.security_protocol is {}, which "
        "sends no login: set sasl_ssl (or sasl_plaintext)",
        c.security_protocol));
  }
  const bool any_tls_file =
      !c.tls_ca_file.empty() || !c.tls_cert_file.empty() || !c.tls_key_file.empty();
  if (any_tls_file && !c.UsesTls()) {
    return absl::InvalidArgumentError(fmt::format(
        "kafka.tls_* files are set but kafka.security_protocol is {}: set ssl or sasl_ssl",
        c.security_protocol));
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return absl::InvalidArgumentError("kafka.tls_cert_file and kafka.tls_key_file go together");
  }
  return absl::OkStatus();
}

KafkaProperties KafkaConnectionProperties(const KafkaConnection& c) {
  KafkaProperties properties = {{"bootstrap.servers", c.brokers},
                                {"security.protocol", c.security_protocol}};
  if (c.UsesSasl()) {
    properties.insert(properties.end(), {{"sasl.mechanisms", c.sasl_mechanism},
                                         {"sasl.username", c.username},
                                         {"sasl.password", c.password}});
  }
  if (c.UsesTls()) {
    // librdkafka's default since 2.0, said here so that no older one skips the host check.
    properties.emplace_back("ssl.endpoint.identification.algorithm", "https");
    if (!c.tls_ca_file.empty()) properties.emplace_back("ssl.ca.location", c.tls_ca_file);
    if (!c.tls_cert_file.empty()) {
      properties.emplace_back("ssl.certificate.location", c.tls_cert_file);
      properties.emplace_back("ssl.key.location", c.tls_key_file);
    }
  }
  return properties;
}

}  // namespace im::logic
