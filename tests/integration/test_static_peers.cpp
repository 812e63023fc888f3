// Stoke-style federation: a node polls other JWKS servers
// (cluster.static_peers) and merges their keys, keeping the last good keys
// when a peer goes away or serves garbage.
#define CAF_SUITE static_peers
#include "caf/test/unit_test.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

#include "jose/jws.hpp"
#include "jose/key.hpp"
#include "support/http_client.hpp"
#include "support/ports.hpp"
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
  auto junk_port = std::to_string(free_port_range(1));
  process junk{{"/usr/bin/python3", "-m", "http.server", "--bind",
                "127.0.0.1", "--directory", dir.file("junk"), junk_port},
               {},
               dir.file("junk.log")};
  auto a = start_node(dir, "a", {});
  auto a_url = "http://127.0.0.1:" + std::to_string(a.port);
  auto b = start_node(dir, "b",
                      {{"KEYMESH_CLUSTER_STATIC_PEERS",
                        a_url + ",http://127.0.0.1:" + junk_port},
                       {"KEYMESH_CLUSTER_STATIC_PEERS_INSECURE_HTTP", "true"},
                       {"KEYMESH_CLUSTER_REFRESH_SEC", "1"}});
  auto from_a = issue(a);
  CAF_CHECK(eventually([&] { return verify(b, from_a) == "ok"; }, 10s, 100ms));
  // B's own keys are not in A's set: this is one-way, like Stoke.
  CAF_CHECK_EQUAL(verify(a, issue(b)), "unknown_kid");
  // A goes away: B keeps A's keys.
  a.proc->stop(SIGTERM);
  std::this_thread::sleep_for(2500ms);
  CAF_CHECK_EQUAL(verify(b, from_a), "ok");
  // A comes back (same data directory: its keys too) on the same port.
  auto a2 = start_node(dir, "a", {}, "127.0.0.1:" + std::to_string(a.port));
  auto from_a2 = issue(a2);
  CAF_CHECK(eventually([&] { return verify(b, from_a2) == "ok"; }, 15s, 100ms));
  // Plain http was asked for, and is warned about.
  CAF_CHECK(b.proc->log().find("PLAIN HTTP") != std::string::npos);
  // The garbage peer was reported, and B stayed ready throughout.
  CAF_CHECK(b.proc->log().find("127.0.0.1:" + junk_port)
            != std::string::npos);
  CAF_CHECK_EQUAL(request(b.port, "GET", "/healthz/ready").result_int(), 200u);
  junk.stop(SIGTERM);
}

CAF_TEST(a_static_peer_cannot_take_over_this_nodes_key_ids) {
  temp_dir dir;
  std::filesystem::create_directories(dir.file("evil/api"));
  auto evil_port = std::to_string(free_port_range(1));
  auto evil_url = "http://127.0.0.1:" + evil_port;
  // Until the test writes the hostile JWKS, the peer serves an honest key.
  auto evil = keymesh::jose::key::generate(keymesh::jose::algorithm::es256);
  auto entry = [&](const std::string& kid) {
    auto j = evil.public_jwk();
    j["kid"] = kid;
    j["alg"] = "ES256";
    j["use"] = "sig";
    return j;
  };
  auto serve = [&](const std::vector<json>& keys) {
    std::ofstream{dir.file("evil/api/pkeys.tmp")} << json{{"keys", keys}}.dump();
    std::filesystem::rename(dir.file("evil/api/pkeys.tmp"),
                            dir.file("evil/api/pkeys"));
  };
  serve({entry("evil-0")});
  process peer{{"/usr/bin/python3", "-m", "http.server", "--bind",
                "127.0.0.1", "--directory", dir.file("evil"), evil_port},
               {},
               dir.file("evil.log")};
  auto b = start_node(dir, "b",
                      {{"KEYMESH_CLUSTER_STATIC_PEERS", evil_url},
                       {"KEYMESH_CLUSTER_STATIC_PEERS_INSECURE_HTTP", "true"},
                       {"KEYMESH_CLUSTER_REFRESH_SEC", "1"}});
  auto pkeys = [&] {
    return json::parse(request(b.port, "GET", "/api/pkeys").body());
  };
  auto kids = [&] {
    std::vector<std::string> out;
    auto doc = pkeys(); // alive while the loop runs
    for (auto& k : doc["keys"])
      out.push_back(k["kid"].get<std::string>());
    return out;
  };
  CAF_REQUIRE(eventually(
    [&] {
      auto k = kids();
      return std::find(k.begin(), k.end(), "evil-0") != k.end();
    },
    10s, 100ms));
  // B's own kids (its current and its next key) and their x coordinates.
  std::map<std::string, std::string> own;
  auto before = pkeys();
  for (auto& k : before["keys"])
    if (k["kid"] != "evil-0")
      own[k["kid"].get<std::string>()] = k["x"].get<std::string>();
  CAF_REQUIRE(!own.empty());
  auto first_kid = own.begin()->first;
  auto instance = first_kid.substr(0, first_kid.rfind('-'));
  // The peer now republishes B's kids with its own key, and a kid of B's
  // namespace that B has not used yet.
  std::vector<json> hostile{entry("evil-0"), entry(instance + "-99")};
  for (auto& [kid, x] : own)
    hostile.push_back(entry(kid));
  serve(hostile);
  auto forge = [&](const std::string& kid) {
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
    return keymesh::jose::sign_compact(
      evil, kid,
      json{{"sub", "mallory"}, {"iat", now}, {"exp", now + 300},
           {"iss", "https://keymesh.test"}});
  };
  // Polled a few times: every refusal is logged once.
  CAF_CHECK(eventually(
    [&] {
      return b.proc->log().find(instance + "-99") != std::string::npos;
    },
    10s, 100ms));
  std::this_thread::sleep_for(2500ms);
  // B's tokens verify, tokens the peer signs under B's kids do not, and
  // B's JWKS still carries B's keys.
  CAF_CHECK_EQUAL(verify(b, issue(b)), "ok");
  for (auto& [kid, x] : own) {
    CAF_CHECK_EQUAL(verify(b, forge(kid)), "bad_signature");
    auto log = b.proc->log();
    auto line = "publishes key id " + kid + ",";
    size_t n = 0;
    for (auto at = log.find(line); at != std::string::npos;
         at = log.find(line, at + 1))
      ++n;
    CAF_CHECK_EQUAL(n, 1u);
  }
  CAF_CHECK_EQUAL(verify(b, forge(instance + "-99")), "unknown_kid");
  CAF_CHECK_EQUAL(verify(b, forge("evil-0")), "ok");
  // A static peer's token verifies, but cannot end a session of this
  // cluster: logout trusts the cluster's own keys only.
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  auto with_sid = keymesh::jose::sign_compact(
    evil, "evil-0",
    json{{"sub", "mallory"}, {"sid", "AAAAAAAAAAAAAAAAAAAAAA"}, {"iat", now},
         {"exp", now + 300}, {"iss", "https://keymesh.test"}});
  CAF_CHECK_EQUAL(verify(b, with_sid), "ok");
  auto logout = request(b.port, "POST", "/api/logout",
                        json{{"token", with_sid}}.dump());
  CAF_CHECK_EQUAL(logout.result_int(), 401u);
  CAF_CHECK(b.proc->log().find("revoked sid AAAAAAAAAAAAAAAAAAAAAA")
            == std::string::npos);
  auto after = pkeys();
  for (auto& k : after["keys"])
    if (own.count(k["kid"].get<std::string>()))
      CAF_CHECK_EQUAL(k["x"].get<std::string>(),
                      own[k["kid"].get<std::string>()]);
  auto metrics = request(b.port, "GET", "/metrics").body();
  CAF_CHECK(metrics.find("keymesh_static_peer_keys_refused_total "
                         + std::to_string(own.size() + 1))
            != std::string::npos);
  peer.stop(SIGTERM);
}

CAF_TEST(a_plain_http_static_peer_needs_an_explicit_opt_in) {
  temp_dir dir;
  auto [code, out] = run_command(
    {keymesh_binary(), "serve"},
    {{"KEYMESH_HTTP_LISTEN", "127.0.0.1:0"},
     {"KEYMESH_NODE_DATA_DIR", dir.file("data")},
     {"KEYMESH_CLUSTER_STATIC_PEERS", "http://127.0.0.1:1"}},
    dir.file("refused.log"));
  CAF_CHECK_NOT_EQUAL(code, 0);
  CAF_CHECK(out.find("cluster.static_peers_insecure_http") != std::string::npos);
}
