#pragma once

#include <memory>
#include <mutex>

#include "absl/status/status.h"
#include "common/tls/tls_context.h"
#include "gateway/gateway_metrics.h"

namespace im::gateway {

// The TLS certificate and key the client TLS port presents, read from their files at start and
// again on each Reload (SIGHUP). A reload that fails (missing file, key not matching) keeps the
// certificate in use. Connections keep the context they were accepted with, so a reload never
// drops one; session tickets issued before a reload still resume after it.
// Thread-safe: the acceptor takes the current context, the main loop reloads.
class ReloadableTlsContext {
 public:
  static absl::StatusOr<std::unique_ptr<ReloadableTlsContext>> Load(tls::ServerTlsFiles files,
                                                                    GatewayMetrics* metrics);

  std::shared_ptr<const tls::ServerContext> current() const;
  // Reads the files again; on success new connections get the new certificate.
  absl::Status Reload();

 private:
  ReloadableTlsContext(tls::ServerTlsFiles files, GatewayMetrics* metrics,
                       std::shared_ptr<const tls::ServerContext> context);
  void Use(std::shared_ptr<const tls::ServerContext> context);

  const tls::ServerTlsFiles files_;
  GatewayMetrics* metrics_;
  mutable std::mutex mutex_;
  std::shared_ptr<const tls::ServerContext> current_;  // guarded by mutex_
};

}  // namespace im::gateway
