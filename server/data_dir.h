#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace im::server {

// The embedded node's data directory, held for the life of the process: created if missing and
// locked (flock on DIR/LOCK), so that a second im-server on the same data fails at start instead
// of handing out the same seqs from counters of its own. The lock goes with the process, even on
// kill -9.
class DataDir {
 public:
  // FAILED_PRECONDITION when another process holds it; UNAVAILABLE when it cannot be created.
  static absl::StatusOr<DataDir> Lock(const std::string& path);
  DataDir(DataDir&& other) noexcept : path_(std::move(other.path_)), lock_fd_(other.lock_fd_) {
    other.lock_fd_ = -1;
  }
  DataDir& operator=(DataDir&&) = delete;
  DataDir(const DataDir&) = delete;
  ~DataDir();

  const std::string& path() const { return path_; }

 private:
  DataDir(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}

  std::string path_;
  int lock_fd_;
};

}  // namespace im::server
