#pragma once

#include <cstdlib>
#include <map>
#include <string>

#include "logic/group/kafka_connection.h"

namespace im::logic::testing {

// How to reach `brokers` as the tests' brokers require (deploy/local/kafka.sh, started by
// scripts/test.sh): logged in with SASL (SCRAM-SHA-512) as IM_TEST_KAFKA_USERNAME with
// IM_TEST_KAFKA_PASSWORD, over TLS checked against IM_TEST_KAFKA_TLS_CA. Each unset: none of it
// (a broker without a login or without TLS).
inline KafkaConnection TestKafkaConnection(std::string brokers) {
  KafkaConnection connection;
  connection.brokers = std::move(brokers);
  const char* username = std::getenv("IM_TEST_KAFKA_USERNAME");
  const char* password = std::getenv("IM_TEST_KAFKA_PASSWORD");
  const char* ca = std::getenv("IM_TEST_KAFKA_TLS_CA");
  const bool sasl = username != nullptr && *username != '\0';
  const bool tls = ca != nullptr && *ca != '\0';
  connection.security_protocol =
      sasl ? (tls ? "sasl_ssl" : "sasl_plaintext") : (tls ? "ssl" : "plaintext");
  if (sasl) {
    connection.username = username;
    connection.password = password != nullptr ? password : "";
  }
  if (tls) connection.tls_ca_file = ca;
  return connection;
}

// The IM_KAFKA_* variables that make im-logic connect as `connection` says.
inline std::map<std::string, std::string> KafkaConnectionEnv(const KafkaConnection& connection) {
  return {{"IM_KAFKA_BROKERS", connection.brokers},
          {"IM_KAFKA_SECURITY_PROTOCOL", connection.security_protocol},
          {"IM_KAFKA_SASL_MECHANISM", connection.sasl_mechanism},
          {"IM_KAFKA_USERNAME", connection.username},
          {"IM_KAFKA_PASSWORD", connection.password},
          {"IM_KAFKA_TLS_CA_FILE", connection.tls_ca_file},
          {"IM_KAFKA_TLS_CERT_FILE", connection.tls_cert_file},
          {"IM_KAFKA_TLS_KEY_FILE", connection.tls_key_file}};
}

}  // namespace im::logic::testing
