// An application actor that follows the revocations of a keymesh cluster
// whose other node runs in another process. The program makes a two-node
// cluster with `keymesh genclust` (mutual TLS), starts node 1 as a separate
// `keymesh serve` process, runs node 2 embedded in its own actor system
// (it joins node 1 through the cluster port), and subscribes an actor of
// its own to node 2's bus. A revocation taken by node 1 over its HTTP API
// reaches the actor within milliseconds. Exits 0 when it did; stops node 1
// (by pid) either way.
//
// usage: example_follow_revocations [path to the keymesh program]
// (default: $KEYMESH_BIN). Built and run by `make test` (CTest:
// examples.follow_revocations); docs/embedding.md quotes the marked parts.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/interfaces.hpp"
#include "config/loader.hpp"
#include "node/cluster_setup.hpp"
#include "node/node.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// [follower]
/// Follows the cluster's revocations: subscribes to the bus topic
/// "revocations" of the node it is given (every node's revocations arrive
/// there) and hands each one, as (kind, value), to WATCHER.
caf::behavior revocation_follower(caf::event_based_actor* self,
                                  keymesh::bus_actor bus,
                                  caf::actor watcher) {
  using namespace keymesh;
  self->send(bus, atom::subscribe_v, std::vector<std::string>{"revocations"},
             caf::actor_cast<caf::actor>(self));
  return {
    [=](atom::event, const bus_event& e) {
      // {"type": "sid"|"sub"|"jti", "value": ..., "revoked_at": ..., ...}
      auto j = nlohmann::json::parse(e.payload, nullptr, false);
      if (!j.is_object())
        return;
      std::cout << "revocation from " << e.origin << ": "
                << j.value("type", "") << ' ' << j.value("value", "")
                << '\n';
      self->send(watcher, j.value("type", ""), j.value("value", ""));
    },
  };
}
// [follower]

/// The result of an HTTP request: status (0: no answer) and body.
struct answer {
  unsigned status = 0;
  std::string body;
};

answer http_call(uint16_t port, boost::beast::http::verb method,
                 const std::string& target, const std::string& bearer = {},
                 const std::string& body = {}) {
  namespace http = boost::beast::http;
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket{io};
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!bearer.empty())
      req.set(http::field::authorization, "Bearer " + bearer);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::write(socket, req);
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(socket, buf, res);
    return {res.result_int(), res.body()};
  } catch (const std::exception&) {
    return {};
  }
}

/// Runs ARGS with output to LOG; the child's pid (0 on failure).
pid_t start(const std::vector<std::string>& args, const fs::path& log) {
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 1, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&files, 1, 2);
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], &files, nullptr, argv.data(), environ) != 0)
    pid = 0;
  posix_spawn_file_actions_destroy(&files);
  return pid;
}

/// Waits for PID to end, at most LIMIT; kills it after that.
int finish(pid_t pid, std::chrono::milliseconds limit) {
  int status = 0;
  for (auto waited = 0ms; waited < limit; waited += 50ms) {
    if (waitpid(pid, &status, WNOHANG) == pid)
      return status;
    std::this_thread::sleep_for(50ms);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return status;
}

/// A base port P such that P .. P+3 are free on 127.0.0.1 right now.
uint16_t free_ports() {
  // Below Linux's ephemeral range (32768 and up): there, the local ports of
  // a busy machine's recent connections (TIME_WAIT) can block every window.
  constexpr int first = 20000, last = 32760, step = 7;
  auto start = getpid() % ((last - first) / step);
  for (int n = 0; n < (last - first) / step; ++n) {
    auto base = static_cast<uint16_t>(
      first + ((start + n) % ((last - first) / step)) * step);
    bool all = true;
    for (uint16_t p = base; p < base + 4 && all; ++p) {
      boost::asio::io_context io;
      boost::asio::ip::tcp::acceptor a{io};
      boost::system::error_code ec;
      a.open(boost::asio::ip::tcp::v4(), ec);
      a.bind({boost::asio::ip::make_address("127.0.0.1"), p}, ec);
      all = !ec;
    }
    if (all)
      return base;
  }
  return 0;
}

std::string last_line(const fs::path& file) {
  std::ifstream in{file};
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty() && line[0] != '#')
      last = line;
  return last;
}

int fail(const std::string& what) {
  std::cerr << "follow_revocations: FAILED: " << what << '\n';
  return EXIT_FAILURE;
}

/// Everything after node 1 runs; node 1 is stopped by the caller.
int follow(const fs::path& dir, uint16_t http1) {
  using namespace keymesh;
  auto loaded = config::load((dir / "c/node-2/keymesh.yaml").string(), {});
  if (!loaded.ok())
    return fail("node 2's configuration: " + loaded.errors.front());
  auto settings = loaded.value;
  settings.http.threads = 1;
  // [embed-member]
  caf::actor_system_config cfg;
  add_message_types(cfg);
  prepare_actor_system(cfg, settings); // middleman, TLS copies
  caf::actor_system sys{cfg};
  auto node = node::start(sys, settings); // joins through cluster.seeds
  caf::scoped_actor self{sys};
  auto follower = sys.spawn(revocation_follower, node->bus(),
                            caf::actor_cast<caf::actor>(self));
  // [embed-member]
  int status = EXIT_SUCCESS;
  // Node 1 made an admin key at its first start.
  auto admin_key = last_line(dir / "c/node-1/data/admin.keys");
  // Node 1 lists node 2 as up once the two are linked.
  bool linked = false;
  for (int i = 0; i < 300 && !linked; ++i) {
    auto res = http_call(http1, boost::beast::http::verb::get,
                         "/api/cluster", admin_key);
    auto j = nlohmann::json::parse(res.body, nullptr, false);
    if (j.is_object() && j.contains("members"))
      for (auto& m : j["members"])
        linked = linked
                 || (m.value("instance_id", "") == "node-2"
                     && m.value("state", "") == "up");
    if (!linked)
      std::this_thread::sleep_for(100ms);
  }
  if (!linked)
    status = fail("node 1 never saw node 2 up");
  // Node 1 revokes a subject; the follower in this process hears of it.
  auto took = std::chrono::steady_clock::now();
  if (status == EXIT_SUCCESS) {
    auto res = http_call(http1, boost::beast::http::verb::post,
                         "/api/revocations", admin_key,
                         R"({"sub": "mallory", "reason": "example"})");
    if (res.status != 200)
      status = fail("node 1 did not take the revocation: "
                    + std::to_string(res.status) + " " + res.body);
  }
  bool heard = false;
  while (status == EXIT_SUCCESS && !heard
         && std::chrono::steady_clock::now() - took < 10s)
    self->receive(
      [&](const std::string& kind, const std::string& value) {
        heard = kind == "sub" && value == "mallory";
      },
      caf::after(std::chrono::seconds{1}) >> [] {});
  if (status == EXIT_SUCCESS && !heard)
    status = fail("the follower did not hear of the revocation within 10 s");
  if (heard)
    std::cout << "heard of node 1's revocation after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - took)
                   .count()
              << " ms\n";
  self->send_exit(follower, caf::exit_reason::user_shutdown);
  node->stop();
  return status;
}

} // namespace

int main(int argc, char** argv) {
  std::string keymesh_bin = argc > 1 ? argv[1] : "";
  if (keymesh_bin.empty() && std::getenv("KEYMESH_BIN") != nullptr)
    keymesh_bin = std::getenv("KEYMESH_BIN");
  if (keymesh_bin.empty() || !fs::exists(keymesh_bin))
    return fail("give the keymesh program as the first argument (or "
                "KEYMESH_BIN)");
  std::signal(SIGPIPE, SIG_IGN);
  auto dir = fs::temp_directory_path()
             / ("keymesh-follow-" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto base = free_ports();
  if (base == 0)
    return fail("no four free ports on 127.0.0.1");
  auto http1 = base;
  auto made = start({keymesh_bin, "genclust", "--nodes", "2", "--out",
                     (dir / "c").string(), "--http-port",
                     std::to_string(base), "--cluster-port",
                     std::to_string(base + 2)},
                    dir / "genclust.log");
  int status = EXIT_FAILURE;
  if (made == 0 || finish(made, 30s) != 0) {
    status = fail("keymesh genclust failed: see " + (dir / "genclust.log").string());
  } else {
    auto node1 = start({keymesh_bin, "serve", "--config",
                        (dir / "c/node-1/keymesh.yaml").string()},
                       dir / "node-1.log");
    if (node1 == 0) {
      status = fail("node 1 did not start");
    } else {
      // Ready once its HTTP port answers.
      for (int i = 0; i < 300; ++i) {
        if (http_call(http1, boost::beast::http::verb::get, "/healthz/live")
              .status
            == 200)
          break;
        std::this_thread::sleep_for(100ms);
      }
      try {
        status = follow(dir, http1);
      } catch (const std::exception& e) {
        status = fail(e.what());
      }
      kill(node1, SIGTERM);
      finish(node1, 10s);
    }
  }
  if (status == EXIT_SUCCESS)
    fs::remove_all(dir);
  else
    std::cerr << "logs kept in " << dir << '\n';
  return status;
}
