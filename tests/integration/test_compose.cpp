// The deployment files: docker-compose.yml validates (with Debian's
// docker-compose, which needs no Docker engine for `config`), the configs and
// the nginx.conf in deploy/ are valid, and scripts/local-cluster starts three
// nodes (plus an nginx round-robin load balancer when nginx is installed) on
// loopback, reports them ready and stops every process it started.
#define CAF_SUITE compose
#include "caf/test/unit_test.hpp"

#include <random>
#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

using namespace keymesh::test;
using nlohmann::json;

namespace {

namespace fs = std::filesystem;

std::string source_dir() {
  auto p = std::getenv("KEYMESH_SOURCE_DIR");
  if (p == nullptr)
    throw std::runtime_error("KEYMESH_SOURCE_DIR is not set (run through ctest)");
  return p;
}

std::string source_file(const std::string& relative) {
  return (fs::path{source_dir()} / relative).string();
}

/// The absolute path of NAME on PATH, or "" if it is not installed.
std::string find_program(const std::string& name) {
  auto path = std::getenv("PATH");
  std::istringstream dirs{path != nullptr ? path : "/usr/bin:/bin"};
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty())
      continue;
    auto candidate = (fs::path{dir} / name).string();
    if (::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// A socket bound to 127.0.0.1:PORT (0: any free port), closed on
/// destruction. Holding it reserves the port until the test lets go.
class bound_port {
public:
  explicit bound_port(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0
        || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
        || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      return;
    port_ = ntohs(addr.sin_port);
  }

  ~bound_port() {
    if (fd_ >= 0)
      ::close(fd_);
  }

  bound_port(const bound_port&) = delete;
  bound_port& operator=(const bound_port&) = delete;

  /// 0 if the bind failed.
  uint16_t port() const {
    return port_;
  }

private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

/// COUNT consecutive free loopback ports below Linux's ephemeral range (so
/// that other tests' outgoing connections never take them meanwhile); the
/// sockets stay bound in HELD until the caller releases them, so later picks
/// never overlap earlier ones.
uint16_t free_ports(size_t count,
                    std::vector<std::unique_ptr<bound_port>>& held) {
  std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int> pick{20000, 30000};
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto base = static_cast<uint16_t>(pick(rng));
    auto first = std::make_unique<bound_port>(base);
    if (first->port() != base)
      continue;
    std::vector<std::unique_ptr<bound_port>> run;
    run.push_back(std::move(first));
    for (size_t i = 1; i < count; ++i) {
      auto next = std::make_unique<bound_port>(static_cast<uint16_t>(base + i));
      if (next->port() == 0)
        break;
      run.push_back(std::move(next));
    }
    if (run.size() == count) {
      for (auto& p : run)
        held.push_back(std::move(p));
      return base;
    }
  }
  throw std::runtime_error("no run of free loopback ports found");
}

/// PID still runs: it exists and is not a zombie (our grandchildren are
/// reparented to init, which may be slow to reap them, or never do so).
bool running(pid_t pid) {
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH))
    return false;
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty())
    return ::kill(pid, 0) == 0;
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= stat.size())
    return true;
  auto state = stat[close_paren + 2];
  return state != 'Z' && state != 'X';
}

pid_t read_pid(const std::string& file) {
  auto text = read_file(file);
  try {
    return static_cast<pid_t>(std::stol(text));
  } catch (const std::exception&) {
    return -1;
  }
}

bool accepts_connections(uint16_t port) {
  try {
    connection c{port};
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

/// `scripts/local-cluster ARGS...`, its exit code and output.
std::pair<int, std::string> local_cluster(std::vector<std::string> args,
                                          const temp_dir& dir,
                                          const std::string& log_name) {
  args.insert(args.begin(), {"/bin/bash", source_file("scripts/local-cluster")});
  return run_command(std::move(args), {}, dir.file(log_name));
}

/// Whatever happens in the test, stops what scripts/local-cluster started in
/// DIR: first through the script, then SIGKILL to any pid left in its pid
/// files (they name only processes the script started).
struct cluster_guard {
  const temp_dir& tmp;
  std::string dir;
  size_t nodes;

  ~cluster_guard() {
    try {
      local_cluster({"stop", dir}, tmp, "guard-stop.log");
    } catch (const std::exception&) {
      // fall through to the pid files
    }
    std::vector<std::string> files{dir + "/lb/pid"};
    for (size_t i = 1; i <= nodes; ++i)
      files.push_back(dir + "/node-" + std::to_string(i) + "/pid");
    for (auto& file : files) {
      auto pid = read_pid(file);
      if (running(pid)) {
        auto cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
        if (cmdline.empty() || contains(cmdline, dir))
          ::kill(pid, SIGKILL);
      }
    }
  }
};

std::string instance_of(const response& res) {
  try {
    return json::parse(res.body()).value("instance_id", "");
  } catch (const std::exception&) {
    return {};
  }
}

} // namespace

CAF_TEST(compose_file_validates_and_names_the_nodes_and_the_load_balancer) {
  temp_dir dir;
  auto compose = find_program("docker-compose");
  CAF_CHECK(!compose.empty());
  if (compose.empty()) {
    CAF_MESSAGE("docker-compose is not installed (Debian package "
                "docker-compose; scripts/setup installs it)");
    return;
  }
  auto file = source_file("docker-compose.yml");
  auto [code, out] = run_command({compose, "-f", file, "config"}, {},
                                 dir.file("config.log"));
  CAF_CHECK_EQUAL(code, 0);
  if (code != 0)
    CAF_MESSAGE("docker-compose config:\n" << out);
  for (auto name : {"node-1:", "node-2:", "node-3:", "lb:", "mariadb:"})
    CAF_CHECK(contains(out, name));
  CAF_CHECK(contains(out, "image: nginx"));
  CAF_CHECK(contains(out, "/healthz/ready") || contains(out, "keymesh-healthcheck"));
  CAF_CHECK(contains(out, "service_healthy"));
  auto [s_code, s_out] = run_command({compose, "-f", file, "config",
                                      "--services"},
                                     {}, dir.file("services.log"));
  CAF_CHECK_EQUAL(s_code, 0);
  std::set<std::string> services;
  std::istringstream lines{s_out};
  for (std::string line; std::getline(lines, line);)
    if (!line.empty())
      services.insert(line);
  CAF_CHECK_EQUAL(services,
                  (std::set<std::string>{"lb", "mariadb", "node-1", "node-2",
                                         "node-3"}));
  CAF_CHECK(contains(out, "image: mariadb:10.11"));
  CAF_CHECK(contains(out, "MARIADB_PASSWORD_FILE"));
}

CAF_TEST(deploy_configs_are_valid) {
  temp_dir dir;
  auto bin = keymesh_binary();
  auto [d_code, d_out] = run_command(
    {bin, "config", "check", source_file("deploy/keymesh.yaml")}, {},
    dir.file("default.log"));
  CAF_CHECK_EQUAL(d_code, 0);
  CAF_CHECK(contains(d_out, "listen: 0.0.0.0:8080"));
  for (int i = 1; i <= 3; ++i) {
    auto node = "node-" + std::to_string(i);
    auto [code, out] = run_command(
      {bin, "config", "check", source_file("deploy/config/" + node + ".yaml")},
      {}, dir.file(node + ".log"));
    CAF_CHECK_EQUAL(code, 0);
    if (code != 0)
      CAF_MESSAGE(out);
    CAF_CHECK(contains(out, "instance_id: " + node));
    CAF_CHECK(contains(out, "enabled: true"));
    for (auto seed : {"- node-1:7401", "- node-2:7401", "- node-3:7401"})
      CAF_CHECK(contains(out, seed));
    CAF_CHECK(contains(out, "ca: /etc/keymesh/tls/ca.pem"));
    CAF_CHECK(contains(out, "driver: mysql"));
    CAF_CHECK(contains(out, "host: mariadb"));
  }
  // Executable in a checkout: the image copies the healthcheck and compose
  // bind-mounts it into the nginx container.
  CAF_CHECK_EQUAL(::access(source_file("scripts/local-cluster").c_str(), X_OK),
                  0);
  CAF_CHECK_EQUAL(
    ::access(source_file("deploy/keymesh-healthcheck").c_str(), X_OK), 0);
  auto nginx = find_program("nginx");
  if (nginx.empty()) {
    CAF_MESSAGE("nginx is not installed: deploy/nginx.conf not checked");
    return;
  }
  // nginx -t resolves the upstream names: point them at loopback, and the
  // log and pid files at the temp dir.
  auto conf = read_file(source_file("deploy/nginx.conf"));
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (size_t at = conf.find(from); at != std::string::npos;
         at = conf.find(from, at + to.size()))
      conf.replace(at, from.size(), to);
  };
  for (auto node : {"node-1:", "node-2:", "node-3:"})
    replace_all(node, "127.0.0.1:");
  replace_all("/var/log/nginx/", dir.path() + "/");
  replace_all("/var/run/nginx.pid", dir.file("nginx.pid"));
  replace_all("listen 80;", "listen 127.0.0.1:1;");
  {
    std::ofstream out{dir.file("nginx.conf")};
    out << conf;
  }
  auto [n_code, n_out] = run_command({nginx, "-t", "-q", "-p", dir.path(), "-e",
                                      dir.file("error.log"), "-c",
                                      dir.file("nginx.conf")},
                                     {}, dir.file("nginx-t.log"));
  CAF_CHECK_EQUAL(n_code, 0);
  if (n_code != 0)
    CAF_MESSAGE("nginx -t:\n" << n_out);
}

// CAF 0.17 aborts on CAF_FAIL and CAF_REQUIRE and does not catch exceptions,
// so no destructor would run: while processes run, this test only uses
// CAF_CHECK and catches what the HTTP client throws, so that the guard always
// stops them.
CAF_TEST(local_cluster_starts_three_ready_nodes_and_stops_them) {
  temp_dir tmp;
  auto dir = tmp.file("cluster");
  bool with_lb = !find_program("nginx").empty();
  if (!with_lb)
    CAF_MESSAGE("nginx is not installed: no load balancer checks");
  uint16_t http_base = 0;
  uint16_t cluster_base = 0;
  uint16_t lb_port = 0;
  {
    std::vector<std::unique_ptr<bound_port>> held;
    http_base = free_ports(3, held);
    cluster_base = free_ports(3, held);
    lb_port = free_ports(1, held);
  } // released just before the script binds them
  cluster_guard guard{tmp, dir, 3};
  std::vector<std::string> args{"start",
                                "3",
                                dir,
                                "--bin",
                                keymesh_binary(),
                                "--base-http",
                                std::to_string(http_base),
                                "--base-cluster",
                                std::to_string(cluster_base)};
  if (with_lb) {
    args.emplace_back("--lb");
    args.emplace_back(std::to_string(lb_port));
  }
  auto [code, out] = local_cluster(args, tmp, "start.log");
  CAF_CHECK_EQUAL(code, 0);
  if (code != 0) {
    CAF_MESSAGE("local-cluster start:\n" << out);
    return;
  }
  std::vector<pid_t> pids;
  std::string error;
  try {
    for (int i = 1; i <= 3; ++i) {
      auto node = "node-" + std::to_string(i);
      auto port = static_cast<uint16_t>(http_base + i - 1);
      CAF_CHECK(
        contains(out, node + " http://127.0.0.1:" + std::to_string(port)));
      auto ready = request(port, "GET", "/healthz/ready");
      CAF_CHECK_EQUAL(ready.result_int(), 200u);
      CAF_CHECK_EQUAL(instance_of(ready), node);
      auto pid = read_pid(dir + "/" + node + "/pid");
      CAF_CHECK(running(pid));
      pids.push_back(pid);
      CAF_CHECK(fs::exists(dir + "/" + node + "/log"));
    }
    if (with_lb) {
      auto pid = read_pid(dir + "/lb/pid");
      CAF_CHECK(running(pid));
      pids.push_back(pid);
      // Round-robin: six requests on fresh connections visit every node, and
      // two in a row never go to the same one.
      std::vector<std::string> seen;
      for (int i = 0; i < 6; ++i) {
        auto res = request(lb_port, "GET", "/healthz/ready");
        CAF_CHECK_EQUAL(res.result_int(), 200u);
        seen.push_back(instance_of(res));
      }
      std::set<std::string> distinct(seen.begin(), seen.end());
      CAF_CHECK_EQUAL(distinct,
                      (std::set<std::string>{"node-1", "node-2", "node-3"}));
      for (size_t i = 1; i < seen.size(); ++i)
        CAF_CHECK_NOT_EQUAL(seen[i], seen[i - 1]);
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  CAF_CHECK_EQUAL(error, "");
  auto [st_code, st_out] = local_cluster({"status", dir}, tmp, "status.log");
  CAF_CHECK_EQUAL(st_code, 0);
  CAF_CHECK(contains(st_out, "node-3 http://127.0.0.1:"));
  // A second start refuses while the first cluster runs.
  auto [again_code, again_out] = local_cluster({"start", "3", dir, "--bin",
                                                keymesh_binary()},
                                               tmp, "again.log");
  CAF_CHECK_EQUAL(again_code, 1);
  CAF_CHECK(contains(again_out, "already runs"));

  auto [stop_code, stop_out] = local_cluster({"stop", dir}, tmp, "stop.log");
  CAF_CHECK_EQUAL(stop_code, 0);
  for (int i = 1; i <= 3; ++i)
    CAF_CHECK(contains(stop_out, "stopped node-" + std::to_string(i)));
  if (with_lb)
    CAF_CHECK(contains(stop_out, "stopped lb"));
  CAF_CHECK_EQUAL(pids.size(), with_lb ? 4u : 3u);
  for (auto pid : pids)
    CAF_CHECK(!running(pid));
  for (int i = 0; i < 3; ++i)
    CAF_CHECK(!accepts_connections(static_cast<uint16_t>(http_base + i)));
  if (with_lb)
    CAF_CHECK(!accepts_connections(lb_port));
  for (int i = 1; i <= 3; ++i)
    CAF_CHECK(!fs::exists(dir + "/node-" + std::to_string(i) + "/pid"));
  // The nodes stopped cleanly on SIGTERM.
  CAF_CHECK(contains(read_file(dir + "/node-1/log"), "stopped"));
  auto [after_code, after_out] = local_cluster({"status", dir}, tmp,
                                               "status2.log");
  CAF_CHECK_NOT_EQUAL(after_code, 0);
  CAF_CHECK(contains(after_out, "node-1 http://127.0.0.1:"
                                  + std::to_string(http_base) + " stopped"));
}
