#pragma once

#include <atomic>
#include <cstdint>

#include "common/clock.h"
#include "store/restriction_store.h"
#include "store/sqlite_database.h"

namespace im::store {

// RestrictionStore on SQLite, for the embedded single-node mode (table restrictions: see
// store/sqlite_migrations/0004_restrictions.sql, applied when the database opens), so that a
// token revocation outlives a restart. Thread-safe: Put and Remove take turns on the database's
// write connection, each one transaction on disk when the call returns; LoadLive runs beside them
// on a read connection. Calls block on the disk, so they run on the store executor. Put also
// deletes the rows that lapsed by `now_ms`, in its transaction.
//
// Version is a counter in this object, not in the database: the embedded node is one process,
// and this store is the only writer of the table (one instance per database), so every change
// goes through it. It starts at 1, so that a reader that has loaded nothing yet (and holds 0)
// loads what an earlier run left on disk.
class SqliteRestrictionStore final : public RestrictionStore {
 public:
  // `database` must outlive the store.
  explicit SqliteRestrictionStore(SqliteDatabase& database,
                                  common::MillisClock now_ms = common::UnixMillis)
      : database_(database), now_ms_(std::move(now_ms)) {}

  absl::Status Put(const Restriction& restriction) override;
  absl::StatusOr<bool> Remove(RestrictionKind kind, std::string_view subject) override;
  absl::StatusOr<uint64_t> Version() override;
  absl::StatusOr<std::vector<Restriction>> LoadLive(int64_t now_ms) override;

  // Rows LoadLive skipped because their kind is not one this build knows (a newer build wrote
  // them), since construction. Any thread.
  uint64_t skipped_rows() const { return skipped_rows_.load(std::memory_order_relaxed); }

 private:
  SqliteDatabase& database_;
  const common::MillisClock now_ms_;
  // Moved after a change commits, never before: a reader that sees the new version then reads
  // the change (one that reads between the commit and the move reloads once more, harmlessly).
  std::atomic<uint64_t> version_{1};
  std::atomic<uint64_t> skipped_rows_{0};
};

}  // namespace im::store
