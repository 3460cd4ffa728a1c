#include "gateway/reloadable_tls_context.h"

#include "common/clock.h"
#include "common/logging.h"

namespace im::gateway {

absl::StatusOr<std::unique_ptr<ReloadableTlsContext>> ReloadableTlsContext::Load(
    tls::ServerTlsFiles files, GatewayMetrics* metrics) {
  absl::StatusOr<std::shared_ptr<const tls::ServerContext>> context =
      tls::ServerContext::Load(files);
  if (!context.ok()) return context.status();
  return std::unique_ptr<ReloadableTlsContext>(
      new ReloadableTlsContext(std::move(files), metrics, std::move(*context)));
}

ReloadableTlsContext::ReloadableTlsContext(tls::ServerTlsFiles files, GatewayMetrics* metrics,
                                           std::shared_ptr<const tls::ServerContext> context)
    : files_(std::move(files)), metrics_(metrics) {
  Use(std::move(context));
}

std::shared_ptr<const tls::ServerContext> ReloadableTlsContext::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_;
}

absl::Status ReloadableTlsContext::Reload() {
  const std::shared_ptr<const tls::ServerContext> previous = current();
  absl::StatusOr<std::shared_ptr<const tls::ServerContext>> context =
      tls::ServerContext::Load(files_, previous.get());
  if (!context.ok()) {
    metrics_->tls_reloads_failed.Increment();
    spdlog::error("TLS certificate reload failed, keeping the one in use ({}): {}",
                  previous->subject(), context.status().ToString());
    return context.status();
  }
  metrics_->tls_reloads_ok.Increment();
  Use(std::move(*context));
  return absl::OkStatus();
}

void ReloadableTlsContext::Use(std::shared_ptr<const tls::ServerContext> context) {
  const int64_t days_left = (context->not_after_unix() - common::UnixMillis() / 1000) / 86'400;
  spdlog::info("TLS certificate {} from {}, expires in {} days", context->subject(),
               files_.cert_file, days_left);
  if (days_left < 14) {
    spdlog::warn("TLS certificate {} expires in {} days", context->subject(), days_left);
  }
  metrics_->tls_certificate_expiry.Set(static_cast<double>(context->not_after_unix()));
  std::lock_guard<std::mutex> lock(mutex_);
  current_ = std::move(context);
}

}  // namespace im::gateway
