// Stoke-style federation: a node polls other JWKS servers
// (cluster.static_peers) and merges their keys, keeping the last good keys
// when a peer goes away or serves garbage.
#define CAF_SUITE static_peers
#include "caf/test/unit_test.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace keymesh::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

struct node_proc {
  std::unique_ptr<process> proc;
  uint16_t port = 0;
  std::string admin;
};

node_proc start_node(temp_dir& dir, const std::string& name,
                     std::map<std::string, std::string> env,
                     const std::string& listen = "127.0.0.1:0") {
  env["KEYMESH_HTTP_LISTEN"] = listen;
  env["KEYMESH_NODE_DATA_DIR"] = dir.file(name);
  node_proc n;
  static int run = 0;
  n.proc = std::make_unique<process>(
    std::vector<std::string>{keymesh_binary(), "serve"}, env,
    dir.file(name + "-" + std::to_string(++run) + ".log"));
  auto port = n.proc->wait_for_log(R"(ready: http://127\.0\.0\.1:(\d+))");
  if (!port)
    CAF_FAIL("node " << name << " did not start:\n" << n.proc->log());
  n.port = static_cast<uint16_t>(std::stoi(*port));
  auto keys = read_file(dir.file(name + "/admin.keys"));
  n.admin = keys.substr(keys.rfind('\n', keys.size() - 2) + 1);
  n.admin.pop_back();
  return n;
}

std::string issue(const node_proc& n) {
  auto res = request(n.port, "POST", "/api/tokens", R"({"sub":"s"})",
                     "Authorization: Bearer " + n.admin + "\r\n");
  CAF_REQUIRE_EQUAL(res.result_int(), 201u);
  return json::parse(res.body())["token"].get<std::string>();
}

std::string verify(const node_proc& n, const std::string& token) {
  auto res = request(n.port, "POST", "/api/verify",
                     json{{"token", token}}.dump());
  auto body = json::parse(res.body());
  return body.value("reason", std::string{"ok"});
}

} // namespace

CAF_TEST(keys_of_static_peers_are_merged_and_kept) {
  temp_dir dir;
  // A peer that serves garbage where a JWKS belongs.
  std::filesystem::create_directories(dir.file("junk/api"));
  std::ofstream{dir.file("junk/api/pkeys")} << "<html>not a jwks</html>";
  auto junk_port = std::to_string(40000 + (::getpid() % 20000));
  process junk{{"/usr/bin/python3", "-m", "http.server", "--bind",
                "127.0.0.1", "--directory", dir.file("junk"), junk_port},
               {},
               dir.file("junk.log")};
  auto a = start_node(dir, "a", {});
  auto a_url = "http://127.0.0.1:" + std::to_string(a.port);
  auto b = start_node(dir, "b",
                      {{"KEYMESH_CLUSTER_STATIC_PEERS",
                        a_url + ",http://127.0.0.1:" + junk_port},
                       {"KEYMESH_CLUSTER_REFRESH_SEC", "1"}});
  auto from_a = issue(a);
  CAF_CHECK(eventually([&] { return verify(b, from_a) == "ok"; }, 10s, 100ms));
  // B's own keys are not in A's set: this is one-way, like Stoke.
  CAF_CHECK_EQUAL(verify(a, issue(b)), "unknown_kid");
  // A goes away: B keeps A's keys.
  a.proc->stop(SIGTERM);
  std::this_thread::sleep_for(2500ms);
  CAF_CHECK_EQUAL(verify(b, from_a), "ok");
  // A comes back (same data directory, new keys) on the same port.
  auto a2 = start_node(dir, "a", {}, "127.0.0.1:" + std::to_string(a.port));
  auto from_a2 = issue(a2);
  CAF_CHECK(eventually([&] { return verify(b, from_a2) == "ok"; }, 15s, 100ms));
  // The garbage peer was reported, and B stayed ready throughout.
  CAF_CHECK(b.proc->log().find("127.0.0.1:" + junk_port)
            != std::string::npos);
  CAF_CHECK_EQUAL(request(b.port, "GET", "/healthz/ready").result_int(), 200u);
  junk.stop(SIGTERM);
}
