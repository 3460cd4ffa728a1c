#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace im::logic {

// How a Kafka client reaches the brokers: where they are and how it proves who it is (the
// kafka.* connection keys). Every client of the brokers (logic's producer and consumers, the
// admin client, the tests' tools) connects through KafkaConnectionProperties, so none of them
// can forget the credentials or the CA.
struct KafkaConnection {
  std::string brokers;  // bootstrap list, host:port[,host:port...]
  // plaintext, ssl, sasl_plaintext or sasl_ssl (librdkafka's security.protocol).
  std::string security_protocol = "plaintext";
  // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; used by the sasl_* protocols.
  std::string sasl_mechanism = "SCRAM-SHA-512";
  std::string username;
  std::string password;
  // TLS (ssl, sasl_ssl): the brokers' certificates are checked against tls_ca_file (the system's
  // roots when empty) and against the host each broker is reached by.
  std::string tls_ca_file;
  // A client certificate, for brokers that require one (ssl.client.auth=required).
  std::string tls_cert_file;
  std::string tls_key_file;

  bool UsesSasl() const;
  bool UsesTls() const;
};

using KafkaProperties = std::vector<std::pair<std::string, std::string>>;

// INVALID_ARGUMENT naming the kafka.* key at fault: an unknown protocol or mechanism, SASL
// without a username or password (or credentials without SASL), TLS files without TLS, a
// certificate without its key.
absl::Status CheckKafkaConnection(const KafkaConnection& connection);

// librdkafka's properties for `connection`: bootstrap.servers, and the security ones it sets.
KafkaProperties KafkaConnectionProperties(const KafkaConnection& connection);

}  // namespace im::logic
