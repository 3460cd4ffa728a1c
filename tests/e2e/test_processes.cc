#include "tests/e2e/test_processes.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace im::e2e {
namespace {

using im::testing::Subprocess;

constexpr int kLogLinesShownOnFailure = 40;

}  // namespace

std::string SafeNamePart(const std::string& prefix) {
  std::string part = prefix;
  while (!part.empty() && part.back() == '-') part.pop_back();
  for (char& c : part) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!allowed) c = '_';
  }
  return part.empty() ? "cluster" : part;
}

std::string FileContents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::string LastLines(const std::string& text, int count) {
  size_t at = text.size();
  for (int i = 0; i <= count && at != std::string::npos && at > 0; ++i) {
    at = text.rfind('\n', at - 1);
  }
  return at == std::string::npos ? text : text.substr(at + 1);
}

std::string FindInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  dirs += ":/usr/sbin:/usr/local/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

std::optional<ReadyProcess> StartReadyProcess(const std::vector<std::string>& argv,
                                              const std::map<std::string, std::string>& env,
                                              const std::string& log_path,
                                              const std::string& ready_prefix) {
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(argv, env, {.stderr_path = log_path});
  if (!process.ok()) {
    ADD_FAILURE() << "cannot start " << argv.at(0) << ": " << process.status();
    return std::nullopt;
  }
  const std::optional<std::string> ready =
      (*process)->ReadLineStartingWith(ready_prefix, kStartTimeout);
  if (!ready) {
    // Reported here; the process is not expected to stop cleanly later.
    const std::optional<int> exited = StopProcess(**process, SIGKILL, Millis(5'000));
    ADD_FAILURE() << argv.at(0) << " did not print '" << ready_prefix << "'"
                  << (exited && *exited != 128 + SIGKILL
                          ? absl::StrCat(" (exited with ", *exited, ")")
                          : "")
                  << "; see " << log_path;
    return std::nullopt;
  }
  return ReadyProcess{std::move(*process), *ready};
}

uint16_t PortField(const std::string& line, const std::string& key) {
  const std::optional<std::string> value = im::testing::FieldOf(line, key);
  if (!value) return 0;
  const int port = std::atoi(value->c_str());
  return port > 0 && port <= 65535 ? static_cast<uint16_t>(port) : 0;
}

std::optional<int> StopProcess(Subprocess& process, int signal, Millis timeout) {
  process.Signal(signal);
  std::optional<int> status = process.Wait(timeout);
  if (!status) {
    process.Signal(SIGKILL);
    process.Wait(Millis(10'000));
  }
  return status;
}

std::string TestLogDir(const std::string& prefix) {
  const char* root = std::getenv("IM_TEST_LOG_DIR");
  std::string dir = root != nullptr && *root != '\0'
                        ? std::string(root)
                        : (std::filesystem::current_path() / "e2e-logs").string();
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name =
      test != nullptr ? absl::StrCat(test->test_suite_name(), ".", test->name()) : "no-test";
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  absl::StrAppend(&dir, "/", name, "-", SafeNamePart(prefix));
  return dir;
}

void KeepLogsIfFailed(const std::string& log_dir) {
  if (log_dir.empty()) return;
  std::error_code ignored;
  const char* keep = std::getenv("IM_TEST_KEEP_LOGS");
  if (!::testing::Test::HasFailure()) {
    if (keep == nullptr || *keep == '\0' || *keep == '0')
      std::filesystem::remove_all(log_dir, ignored);
    return;
  }
  std::fprintf(stderr, "the logs are kept in %s\n", log_dir.c_str());
  for (const auto& entry : std::filesystem::directory_iterator(log_dir, ignored)) {
    std::fprintf(stderr, "---- the end of %s\n%s\n", entry.path().c_str(),
                 LastLines(FileContents(entry.path()), kLogLinesShownOnFailure).c_str());
  }
}

}  // namespace im::e2e
