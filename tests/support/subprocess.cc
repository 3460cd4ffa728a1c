#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace im::testing {

namespace {

// Runs in the forked child: only async-signal-safe calls until execve. Never returns.
[[noreturn]] void ExecChild(char* const* argv, char* const* envp, pid_t parent, int stdout_fd,
                            int stdin_fd, const char* stderr_path) {
  // SIGKILL when the starting thread dies, so a killed test leaves no orphan server; a parent
  // already gone before prctl took effect is seen through getppid().
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(127);
  if (::dup2(stdout_fd, STDOUT_FILENO) < 0) ::_exit(127);
  if (stdin_fd < 0) stdin_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (stdin_fd < 0 || ::dup2(stdin_fd, STDIN_FILENO) < 0) ::_exit(127);
  if (stderr_path != nullptr) {
    const int stderr_fd = ::open(stderr_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (stderr_fd < 0 || ::dup2(stderr_fd, STDERR_FILENO) < 0) ::_exit(127);
  }
  ::execve(argv[0], argv, envp);
  ::_exit(127);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
    const SpawnOptions& options) {
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const size_t eq = entry.find('=');
    if (eq != std::string::npos) merged[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [key, value] : env) merged[key] = value;
  std::vector<std::string> env_strings;
  for (const auto& [key, value] : merged) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argvp;
  for (auto& s : args) argvp.push_back(s.data());
  argvp.push_back(nullptr);
  if (::access(argvp[0], X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("spawn ", argv[0], ": ", std::strerror(errno)));
  }

  int stdout_fds[2];
  if (::pipe2(stdout_fds, O_CLOEXEC) != 0) return absl::InternalError(std::strerror(errno));
  int stdin_fds[2] = {-1, -1};
  if (options.pipe_stdin && ::pipe2(stdin_fds, O_CLOEXEC) != 0) {
    ::close(stdout_fds[0]);
    ::close(stdout_fds[1]);
    return absl::InternalError(std::strerror(errno));
  }
  const char* stderr_path = options.stderr_path.empty() ? nullptr : options.stderr_path.c_str();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ExecChild(argvp.data(), envp.data(), parent, stdout_fds[1], stdin_fds[0], stderr_path);
  }
  const int fork_errno = errno;
  ::close(stdout_fds[1]);
  if (stdin_fds[0] >= 0) ::close(stdin_fds[0]);
  if (pid < 0) {
    ::close(stdout_fds[0]);
    if (stdin_fds[1] >= 0) ::close(stdin_fds[1]);
    return absl::InternalError(absl::StrCat("fork for ", argv[0], ": ", std::strerror(fork_errno)));
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid, stdout_fds[0], stdin_fds[1]));
}

Subprocess::~Subprocess() {
  if (!exit_status_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  ::close(stdout_fd_);
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
}

bool Subprocess::WriteStdin(const std::string& text) {
  size_t written = 0;
  while (stdin_fd_ >= 0 && written < text.size()) {
    const ssize_t n = ::write(stdin_fd_, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    written += static_cast<size_t>(n);
  }
  return stdin_fd_ >= 0;
}

std::optional<std::string> Subprocess::ReadLine(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const size_t newline = buffered_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffered_.substr(0, newline);
      buffered_.erase(0, newline + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{stdout_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[4096];
    const ssize_t n = ::read(stdout_fd_, chunk, sizeof(chunk));
    if (n <= 0) return std::nullopt;
    buffered_.append(chunk, static_cast<size_t>(n));
  }
}

std::optional<std::string> Subprocess::ReadLineStartingWith(const std::string& prefix,
                                                            std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    std::optional<std::string> line = ReadLine(left);
    if (!line) return std::nullopt;
    if (line->rfind(prefix, 0) == 0) return line;
  }
}

bool Subprocess::Signal(int signal) { return ::kill(pid_, signal) == 0; }

std::optional<int> Subprocess::Wait(std::chrono::milliseconds timeout) {
  if (exit_status_) return exit_status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

size_t ResidentBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

std::optional<std::string> FieldOf(const std::string& line, const std::string& key) {
  const std::string needle = key + "=";
  size_t at = line.find(needle);
  while (at != std::string::npos && at != 0 && line[at - 1] != ' ') {
    at = line.find(needle, at + 1);
  }
  if (at == std::string::npos) return std::nullopt;
  const size_t start = at + needle.size();
  const size_t end = line.find(' ', start);
  return line.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

}  // namespace im::testing
