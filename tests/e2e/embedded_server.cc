#include "tests/e2e/embedded_server.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/test_processes.h"

#ifndef IM_SERVER_BINARY
#error "IM_SERVER_BINARY must name the im-server binary"
#endif

namespace im::e2e {
namespace {

constexpr int kDrainTimeoutMs = 2'000;

}  // namespace

EmbeddedServer::EmbeddedServer(std::string prefix, std::map<std::string, std::string> env)
    : prefix_(prefix.empty() ? UniquePrefix() : std::move(prefix)), env_(std::move(env)) {
  char dir[] = "/tmp/im-e2e-server-XXXXXX";
  if (::mkdtemp(dir) != nullptr) data_dir_ = dir;
}

EmbeddedServer::~EmbeddedServer() {
  if (process_) Stop();
  std::error_code ignored;
  if (!data_dir_.empty()) std::filesystem::remove_all(data_dir_, ignored);
  KeepLogsIfFailed(log_dir_);
}

bool EmbeddedServer::Start() {
  if (data_dir_.empty()) {
    ADD_FAILURE() << "no temporary directory for im-server's data";
    return false;
  }
  if (log_dir_.empty()) {
    log_dir_ = TestLogDir(prefix_);
    std::error_code error;
    std::filesystem::create_directories(log_dir_, error);
    if (error) {
      ADD_FAILURE() << "cannot create the log directory " << log_dir_ << ": " << error.message();
      return false;
    }
  }
  std::map<std::string, std::string> env = {
      {"IM_GATEWAY_LISTEN", "127.0.0.1:0"},
      {"IM_GATEWAY_METRICS_LISTEN", "127.0.0.1:0"},
      {"IM_GATEWAY_WORKERS", "2"},
      {"IM_GATEWAY_DRAIN_TIMEOUT_MS", std::to_string(kDrainTimeoutMs)},
      {"IM_LOGIC_TOKEN_SECRET", kTokenSecret},
      {"IM_ADMIN_API_LISTEN", "127.0.0.1:0"},
      {"IM_ADMIN_API_KEY", kAdminKey},
      {"IM_LOG_LEVEL", "info"},
      // As LocalCluster: tests send as fast as they are answered; the limits have their own tests.
      {"IM_LOGIC_SEND_RATE_PER_USER", "0"},
      {"IM_LOGIC_GROUP_SEND_RATE_PER_USER", "0"},
  };
  for (const auto& [key, value] : env_) env[key] = value;
  starts_++;
  std::optional<ReadyProcess> started =
      StartReadyProcess({IM_SERVER_BINARY, "--data", data_dir_}, env,
                        absl::StrCat(log_dir_, "/server-", starts_, ".log"), "im-server ready");
  if (!started) return false;
  process_ = std::move(started->process);
  client_port_ = PortField(started->ready_line, "client_port");
  metrics_port_ = PortField(started->ready_line, "metrics_port");
  admin_api_port_ = PortField(started->ready_line, "admin_api_port");
  ws_port_ = PortField(started->ready_line, "ws_port");
  wss_port_ = PortField(started->ready_line, "wss_port");
  if (client_port_ == 0 || metrics_port_ == 0) {
    ADD_FAILURE() << "no client_port/metrics_port in '" << started->ready_line << "'";
    return false;
  }
  return true;
}

uint16_t EmbeddedServer::client_port(int /*index*/) const {
  return process_ != nullptr && !process_->Wait(Millis(0)).has_value() ? client_port_ : 0;
}

bool EmbeddedServer::Kill() {
  if (!process_) return false;
  process_->Signal(SIGKILL);
  const bool reaped = process_->Wait(Millis(10'000)).has_value();
  process_.reset();
  client_port_ = 0;
  return reaped;
}

bool EmbeddedServer::Stop() {
  if (!process_) return false;
  const std::optional<int> status =
      StopProcess(*process_, SIGTERM, Millis(kDrainTimeoutMs) + kStopTimeout);
  EXPECT_EQ(status, 0) << "im-server after SIGTERM; see " << log_dir_;
  process_.reset();
  client_port_ = 0;
  return status == 0;
}

bool EmbeddedServer::Restart() {
  if (process_) Kill();
  return Start();
}

}  // namespace im::e2e
