#include "store/mysql_connection_pool.h"

#include <algorithm>

#include "fmt/format.h"

namespace im::store {
namespace {

// An idle connection older than this is pinged before use: servers and middleboxes drop idle links.
constexpr std::chrono::seconds kPingIdleAfter{30};

}  // namespace

MySqlConnectionPool::Lease::~Lease() {
  if (connection_ != nullptr) pool_->Release(std::move(connection_));
}

MySqlConnectionPool::MySqlConnectionPool(MySqlOptions options) : options_(std::move(options)) {}

MySqlConnectionPool::~MySqlConnectionPool() = default;

size_t MySqlConnectionPool::open_connections() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return open_;
}

absl::StatusOr<MySqlConnectionPool::Lease> MySqlConnectionPool::Acquire() {
  const size_t capacity = std::max<size_t>(1, options_.pool_size);
  const auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
  for (;;) {
    std::unique_ptr<MySqlConnection> connection;
    bool ping = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!available_.wait_until(lock, deadline,
                                 [&] { return !idle_.empty() || open_ < capacity; })) {
        return absl::UnavailableError(
            fmt::format("mysql {}:{}: all {} connections stayed busy for {} ms", options_.host,
                        options_.port, capacity, options_.acquire_timeout.count()));
      }
      if (idle_.empty()) {
        ++open_;  // this slot is ours while we connect, outside the lock
      } else {
        Idle& idle = idle_.back();
        ping = idle.since <= last_failure_ ||
               std::chrono::steady_clock::now() - idle.since > kPingIdleAfter;
        connection = std::move(idle.connection);
        idle_.pop_back();
      }
    }
    if (connection == nullptr) {
      absl::StatusOr<std::unique_ptr<MySqlConnection>> fresh = MySqlConnection::Connect(options_);
      if (!fresh.ok()) {
        Discard(nullptr);
        return fresh.status();
      }
      return Lease(this, std::move(*fresh));
    }
    if (!ping || connection->Ping()) return Lease(this, std::move(connection));
    Discard(std::move(connection));  // dead while idle: try the next one, or a new one
  }
}

absl::Status MySqlConnectionPool::Run(absl::FunctionRef<absl::Status(MySqlConnection&)> work) {
  absl::StatusOr<Lease> lease = Acquire();
  if (!lease.ok()) return lease.status();
  MySqlConnection& connection = **lease;
  return connection.Guard([&] { return work(connection); });
}

void MySqlConnectionPool::Release(std::unique_ptr<MySqlConnection> connection) {
  connection->RollbackIfOpen();
  if (connection->broken()) {
    Discard(std::move(connection));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.push_back(Idle{std::move(connection), std::chrono::steady_clock::now()});
  }
  available_.notify_one();
}

void MySqlConnectionPool::Discard(std::unique_ptr<MySqlConnection> connection) {
  connection.reset();  // closing may touch the network: not under the lock
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --open_;
    last_failure_ = std::chrono::steady_clock::now();
  }
  available_.notify_one();
}

}  // namespace im::store
