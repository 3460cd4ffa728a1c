#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/mysql_connection.h"

namespace im::store {

// Up to options.pool_size MySQL connections, each lent to one thread at a time. Thread-safe; calls
// block (connecting, waiting for a free connection), so they run on the logic tier's store
// executor, never on an event loop. Connections are made on demand; one that failed is discarded
// and the next borrower gets a new one. After any failure, and after a long idle time, an idle
// connection is pinged before it is lent, so that a server restart costs one failed call, not one
// per pooled connection.
class MySqlConnectionPool {
 public:
  // A borrowed connection; going out of scope rolls back an open transaction and returns it (or
  // discards it when broken). Used by the thread that acquired it only.
  class Lease {
   public:
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease();

    MySqlConnection& operator*() const { return *connection_; }
    MySqlConnection* operator->() const { return connection_.get(); }

   private:
    friend class MySqlConnectionPool;
    Lease(MySqlConnectionPool* pool, std::unique_ptr<MySqlConnection> connection)
        : pool_(pool), connection_(std::move(connection)) {}

    MySqlConnectionPool* pool_;
    std::unique_ptr<MySqlConnection> connection_;
  };

  // Connects nothing yet: the first borrower does.
  explicit MySqlConnectionPool(MySqlOptions options);
  // Every Lease must have been returned.
  ~MySqlConnectionPool();
  MySqlConnectionPool(const MySqlConnectionPool&) = delete;
  MySqlConnectionPool& operator=(const MySqlConnectionPool&) = delete;

  // A connection, waiting at most options.acquire_timeout for one to be free. UNAVAILABLE when
  // none frees up in time or a new one cannot connect.
  absl::StatusOr<Lease> Acquire();

  // Borrows a connection and runs `work` on it inside MySqlConnection::Guard, so whatever the
  // connector throws comes back as a status; a transaction `work` leaves open is rolled back.
  absl::Status Run(absl::FunctionRef<absl::Status(MySqlConnection&)> work);
  template <typename T>
  absl::StatusOr<T> Run(absl::FunctionRef<absl::StatusOr<T>(MySqlConnection&)> work) {
    absl::StatusOr<T> result = absl::UnknownError("not run");
    absl::Status status = Run([&](MySqlConnection& connection) {
      result = work(connection);
      return result.status();
    });
    if (!status.ok()) return status;
    return result;
  }

  const MySqlOptions& options() const { return options_; }
  // Connections made and not discarded (idle, lent, or connecting).
  size_t open_connections() const;

 private:
  struct Idle {
    std::unique_ptr<MySqlConnection> connection;
    std::chrono::steady_clock::time_point since;
  };

  void Release(std::unique_ptr<MySqlConnection> connection);
  // `connection` may be null: a slot whose connect failed.
  void Discard(std::unique_ptr<MySqlConnection> connection);

  const MySqlOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable available_;
  std::vector<Idle> idle_;  // most recently returned last: busy connections stay warm
  size_t open_ = 0;
  std::chrono::steady_clock::time_point last_failure_;
};

}  // namespace im::store
