// Starts the real keymesh binary for integration tests and stops it by pid
// (and the kernel stops it if the test dies first: PR_SET_PDEATHSIG).
#pragma once

#include <chrono>
#include <csignal>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace keymesh::test {

/// The binary under test (set by CTest).
inline std::string keymesh_binary() {
  auto p = std::getenv("KEYMESH_BIN");
  if (p == nullptr)
    throw std::runtime_error("KEYMESH_BIN is not set (run through ctest)");
  return p;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& content) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << content;
}

/// A child process with its stdout and stderr captured to a file.
class process {
public:
  /// Runs ARGS (argv[0] is the binary) with ENV added to a clean copy of this
  /// process' environment (minus other KEYMESH_* settings).
  process(std::vector<std::string> args, std::map<std::string, std::string> env,
          std::string log_path)
    : log_path_(std::move(log_path)) {
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry{*e};
      if (entry.rfind("KEYMESH_", 0) == 0)
        continue;
      env_strings.push_back(entry);
    }
    for (auto& [k, v] : env)
      env_strings.push_back(k + "=" + v);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env_strings)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    int log_fd = ::open(log_path_.c_str(),
                        O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0) {
      for (int fd : {log_fd, null_fd})
        if (fd >= 0)
          ::close(fd);
      throw std::runtime_error("cannot open " + log_path_);
    }
    // Closed by a successful exec; an exec that fails writes its errno.
    int exec_pipe[2];
    if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
      ::close(log_fd);
      ::close(null_fd);
      throw std::runtime_error("cannot start " + args[0] + ": no pipe");
    }
    auto parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      // The child of a threaded parent: async-signal-safe calls only. It is
      // killed when the thread that started it ends (the test process
      // crashing or killed by ctest's timeout included), so no node
      // outlives its test; start processes from threads that outlive them.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent)
        ::_exit(127);
      ::dup2(null_fd, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execve(argv[0], argv.data(), envp.data());
      int err = errno;
      [[maybe_unused]] auto n = ::write(exec_pipe[1], &err, sizeof err);
      ::_exit(127);
    }
    ::close(log_fd);
    ::close(null_fd);
    ::close(exec_pipe[1]);
    int err = 0;
    auto got = pid_ > 0 ? ::read(exec_pipe[0], &err, sizeof err) : 0;
    ::close(exec_pipe[0]);
    if (pid_ < 0)
      throw std::runtime_error("cannot start " + args[0] + ": fork failed");
    if (got == static_cast<ssize_t>(sizeof err)) {
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
      throw std::runtime_error("cannot start " + args[0] + ": "
                               + std::strerror(err));
    }
  }

  ~process() {
    if (pid_ > 0 && !exit_code_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  process(const process&) = delete;
  process& operator=(const process&) = delete;

  pid_t pid() const {
    return pid_;
  }

  std::string log() const {
    return read_file(log_path_);
  }

  /// Waits until the log matches RE (returns the first capture group) or the
  /// process exits or the time is up (returns nullopt).
  std::optional<std::string> wait_for_log(const std::string& re,
                                          std::chrono::seconds limit
                                          = std::chrono::seconds{30}) {
    std::regex pattern{re};
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      auto text = log();
      if (std::regex_search(text, m, pattern))
        return m.size() > 1 ? m[1].str() : m[0].str();
      if (poll_exit())
        return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    return std::nullopt;
  }

  /// Sends SIG and waits up to LIMIT for the exit; returns the exit code, or
  /// nullopt if the process did not exit in time (it is then killed).
  std::optional<int> stop(int sig = SIGTERM,
                          std::chrono::seconds limit = std::chrono::seconds{10}) {
    if (exit_code_)
      return exit_code_;
    ::kill(pid_, sig);
    return wait(limit);
  }

  std::optional<int> wait(std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (poll_exit())
        return exit_code_;
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    return std::nullopt;
  }

  bool poll_exit() {
    if (exit_code_)
      return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status)
                                     : 128 + WTERMSIG(status);
      return true;
    }
    return false;
  }

private:
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

/// Runs a command to completion and returns (exit code, output).
inline std::pair<int, std::string>
run_command(std::vector<std::string> args,
            std::map<std::string, std::string> env, const std::string& log) {
  process p{std::move(args), std::move(env), log};
  auto code = p.wait(std::chrono::seconds{30});
  return {code.value_or(-1), p.log()};
}

} // namespace keymesh::test
