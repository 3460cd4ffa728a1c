#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace im::testing {

// How a Subprocess is wired to its parent.
struct SpawnOptions {
  // stdin is /dev/null, or a pipe fed by WriteStdin() when set.
  bool pipe_stdin = false;
  // stderr goes to this file (created, appended to) when set; else the parent's stderr.
  std::string stderr_path;
};

// A child process for tests: the real binaries, started with extra environment variables, with
// stdout readable line by line. The destructor kills (SIGKILL) and reaps a child still running.
// The child also gets SIGKILL when the thread that started it dies, so a test killed by its
// timeout leaves no server behind: start children from a thread that outlives them (the test's).
class Subprocess {
 public:
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
      const SpawnOptions& options = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // The next line of stdout (without the newline), or nullopt on timeout or EOF.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);
  // The first line starting with `prefix`; earlier lines are dropped.
  std::optional<std::string> ReadLineStartingWith(const std::string& prefix,
                                                  std::chrono::milliseconds timeout);
  // Writes all of `text` to the child's stdin (a pipe_stdin child only); false if it is gone.
  bool WriteStdin(const std::string& text);
  bool Signal(int signal);
  // The exit status (exit code, or 128 + signal) once the child exits within `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }

 private:
  Subprocess(pid_t pid, int stdout_fd, int stdin_fd)
      : pid_(pid), stdout_fd_(stdout_fd), stdin_fd_(stdin_fd) {}

  pid_t pid_;
  int stdout_fd_;
  int stdin_fd_;  // -1 unless pipe_stdin
  std::string buffered_;
  std::optional<int> exit_status_;
};

// Resident set size of a process in bytes (VmRSS in /proc/<pid>/status), or 0 if unknown.
size_t ResidentBytes(pid_t pid);

// Reads "key=value" out of a line such as "im-gateway ready id=gw-1 client_port=41234".
std::optional<std::string> FieldOf(const std::string& line, const std::string& key);

}  // namespace im::testing
