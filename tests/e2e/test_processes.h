#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace im::e2e {

using Millis = std::chrono::milliseconds;

// Generous for a Debug build with ASan on two shared cores; logic applies migrations first.
inline constexpr Millis kStartTimeout{60'000};
inline constexpr Millis kStopTimeout{30'000};

// A server binary of ours started for a test, once it printed its ready line ("<name> ready
// key=value ...", the ports it bound among them).
struct ReadyProcess {
  std::unique_ptr<im::testing::Subprocess> process;
  std::string ready_line;
};

// Starts `argv` with `env`, its stderr (its log) in `log_path`, and waits for the line starting
// with `ready_prefix`. A failure is reported (ADD_FAILURE, naming the log) and the process killed:
// nullopt then.
std::optional<ReadyProcess> StartReadyProcess(const std::vector<std::string>& argv,
                                              const std::map<std::string, std::string>& env,
                                              const std::string& log_path,
                                              const std::string& ready_prefix);

// The absolute path of the executable `name` on $PATH (or in /usr/sbin, /usr/local/sbin); empty
// when there is none.
std::string FindInPath(const std::string& name);

// The port `key`=N of a ready line, 0 when absent or not a port.
uint16_t PortField(const std::string& line, const std::string& key);

// Stops `process` with `signal` and returns its exit status (nullopt: still running after
// `timeout`, then killed).
std::optional<int> StopProcess(im::testing::Subprocess& process, int signal, Millis timeout);

// The whole of a (log) file; empty when it cannot be read.
std::string FileContents(const std::string& path);
// The last `count` lines of `text`.
std::string LastLines(const std::string& text, int count);

// `prefix` with every character outside [A-Za-z0-9._-] replaced by '_' and trailing '-' dropped
// ("cluster" if nothing is left): usable in file names and in Kafka topic names.
std::string SafeNamePart(const std::string& prefix);

// Where a test's servers log: one directory per cluster (or embedded node) under
// $IM_TEST_LOG_DIR or ./e2e-logs, named after the running test and `prefix`.
std::string TestLogDir(const std::string& prefix);

// Removes `log_dir` when the running test passed (unless IM_TEST_KEEP_LOGS=1); else prints where
// it is and the end of each log in it.
void KeepLogsIfFailed(const std::string& log_dir);

}  // namespace im::e2e
