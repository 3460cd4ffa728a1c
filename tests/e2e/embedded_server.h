#pragma once

#include <map>
#include <memory>
#include <string>

#include "tests/e2e/chat_deployment.h"
#include "tests/support/subprocess.h"

namespace im::e2e {

// One im-server (the embedded node: gateway and logic in one process, SQLite) started for a
// test, every port 0, its data in a temporary directory removed at the end. Logs like a
// LocalCluster (<log root>/<Suite.Test>-<prefix>/server.log, kept when the test failed). The
// destructor stops it with SIGTERM and expects exit code 0, which catches crashes and sanitizer
// reports at exit.
class EmbeddedServer final : public ChatDeployment {
 public:
  // `prefix` empty: a UniquePrefix(). `env`: extra IM_* variables, over the harness's.
  explicit EmbeddedServer(std::string prefix = "", std::map<std::string, std::string> env = {});
  ~EmbeddedServer() override;
  EmbeddedServer(const EmbeddedServer&) = delete;
  EmbeddedServer& operator=(const EmbeddedServer&) = delete;

  bool Start() override;
  const std::string& prefix() const override { return prefix_; }
  uint16_t client_port(int index) const override;
  uint16_t logic_metrics_port(int /*index*/) const override { return metrics_port_; }
  uint16_t admin_api_port(int /*index*/) const override { return admin_api_port_; }
  // The WebSocket ports, when `env` opens them (IM_GATEWAY_WS_LISTEN, IM_GATEWAY_WSS_LISTEN; port 0
  // picks one); else 0.
  uint16_t ws_port() const { return ws_port_; }
  uint16_t wss_port() const { return wss_port_; }

  // SIGKILL, reaped: what was acknowledged must be on disk.
  bool Kill();
  // SIGTERM; expects exit code 0 (the drain, then logic's work in hand).
  bool Stop();
  // Starts it again on the same data directory (after Kill or Stop), on a new port.
  bool Restart();
  const std::string& data_dir() const { return data_dir_; }

 private:
  std::string prefix_;
  std::map<std::string, std::string> env_;
  std::string data_dir_;
  std::string log_dir_;
  int starts_ = 0;
  std::unique_ptr<im::testing::Subprocess> process_;
  uint16_t client_port_ = 0;
  uint16_t metrics_port_ = 0;
  uint16_t admin_api_port_ = 0;
  uint16_t ws_port_ = 0;
  uint16_t wss_port_ = 0;
};

}  // namespace im::e2e
