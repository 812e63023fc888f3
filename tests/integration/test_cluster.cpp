// A real cluster: keymesh processes on loopback with mutual TLS from
// `keymesh genclust`. Tokens signed anywhere verify everywhere, through a
// crash, a restart, a stopped process and key rotation; peers that do not
// belong are refused.
#define CAF_SUITE cluster
#include "caf/test/unit_test.hpp"

#include <fstream>
#include <random>

#include <netinet/in.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include "support/cluster.hpp"
#include "support/http_client.hpp"
#include "support/ports.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace keymesh::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

} // namespace

CAF_TEST_FIXTURE_SCOPE(cluster_tests, cluster_fixture)

CAF_TEST(tokens_from_every_node_verify_on_every_node) {
  for (int i = 1; i <= 3; ++i)
    start(i);
  if (!eventually([&] { return all_linked(3); }, 15s))
    for (int i = 1; i <= 3; ++i)
      CAF_MESSAGE("cluster view of node " << i << ": " << get_cluster(i).dump()
                                          << "\nlog:\n" << node(i).log());
  CAF_REQUIRE(all_linked(3));
  std::vector<json> issued;
  for (int i = 1; i <= 3; ++i)
    issued.push_back(issue(i, "user-" + std::to_string(i)));
  for (int i = 1; i <= 3; ++i) {
    auto jwks = kids(i);
    for (auto& t : issued) {
      CAF_CHECK(contains(jwks, t["kid"].get<std::string>()));
      auto v = verify(i, t["token"]);
      CAF_CHECK_EQUAL(at(v, "active"), true);
    }
  }
  // The JWKS with ?local=true holds only the node's own keys.
  auto local = request(http_port(2), "GET", "/api/pkeys?local=true");
  auto local_jwks = json::parse(local.body());
  for (auto& k : local_jwks["keys"])
    CAF_CHECK(k["kid"].get<std::string>().rfind("node-2-", 0) == 0);
}

CAF_TEST(gossip_links_nodes_that_were_only_seeded_with_one_peer) {
  // Nodes 2 and 3 know only node 1; they learn about each other from it.
  auto only_first = "127.0.0.1:" + std::to_string(cluster_base);
  start(1, {{"KEYMESH_CLUSTER_SEEDS", only_first}});
  start(2, {{"KEYMESH_CLUSTER_SEEDS", only_first}});
  start(3, {{"KEYMESH_CLUSTER_SEEDS", only_first}});
  CAF_CHECK(eventually([&] { return all_linked(3); }, 20s));
  auto t = issue(3, "gossip");
  CAF_CHECK_EQUAL(at(verify(2, t["token"]), "active"), true);
}

CAF_TEST(a_killed_node_keeps_its_tokens_valid_and_rejoins_after_restart) {
  for (int i = 1; i <= 3; ++i)
    start(i);
  CAF_REQUIRE(eventually([&] { return all_linked(3); }, 15s));
  auto before = issue(3, "carol");
  node(3).stop(SIGKILL);
  CAF_CHECK(eventually([&] { return state_of(1, "node-3") == "down"; }, 4s));
  for (int i : {1, 2})
    CAF_CHECK_EQUAL(at(verify(i, before["token"]), "active"), true);
  start(3);
  CAF_REQUIRE(eventually([&] { return all_linked(3); }, 15s));
  auto after = issue(3, "carol");
  auto seq = [](const json& t) {
    auto kid = t["kid"].get<std::string>();
    return std::stoull(kid.substr(kid.rfind('-') + 1));
  };
  CAF_CHECK(seq(after) > seq(before));
  // Every node, the restarted one included, verifies both generations.
  for (int i = 1; i <= 3; ++i) {
    CAF_CHECK_EQUAL(at(verify(i, before["token"]), "active"), true);
    CAF_CHECK_EQUAL(at(verify(i, after["token"]), "active"), true);
  }
}

CAF_TEST(a_stopped_node_is_marked_down_and_comes_back) {
  for (int i = 1; i <= 3; ++i)
    start(i);
  CAF_REQUIRE(eventually([&] { return all_linked(3); }, 15s));
  ::kill(node(2).pid(), SIGSTOP);
  auto stopped = std::chrono::steady_clock::now();
  CAF_CHECK(eventually([&] { return state_of(1, "node-2") == "down"; }, 4s));
  auto took = std::chrono::steady_clock::now() - stopped;
  CAF_MESSAGE("marked down after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took)
                   .count()
              << " ms (failure_timeout 2s)");
  CAF_CHECK(took <= 2s + 250ms); // failure_timeout, plus polling slack
  ::kill(node(2).pid(), SIGCONT);
  // Node 3 may still count node 2 as up (its pings are answered again at
  // once) while node 2, waking up, judges node 3 silent: node 3 must take
  // node 2's new handshake instead of refusing it.
  auto resumed = std::chrono::steady_clock::now();
  bool relinked = eventually([&] { return all_linked(3); }, 20s);
  if (!relinked)
    for (int i = 1; i <= 3; ++i)
      CAF_MESSAGE("not linked again; node " << i << " sees "
                                            << get_cluster(i).dump());
  CAF_CHECK(relinked);
  CAF_MESSAGE("linked again after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - resumed)
                   .count()
              << " ms");
}

CAF_TEST(peers_with_other_settings_or_another_ca_are_refused) {
  start(1);
  // Node 2 disagrees on a setting that must agree: refused, with the setting
  // named in the log.
  start(2, {{"KEYMESH_KEYS_MAX_TOKEN_TTL", "30m"}});
  CAF_CHECK(node(1).wait_for_log(
    R"(refusing peer node-2 .*keys\.max_token_ttl)", 10s));
  CAF_CHECK(state_of(1, "node-2") != "up");
  // The same with another cluster name.
  node(2).stop(SIGKILL);
  start(2, {{"KEYMESH_CLUSTER_NAME", "staging"}});
  CAF_CHECK(node(1).wait_for_log(
    R"(refusing peer node-2 .*cluster\.name is "keymesh" here, "staging")",
    10s));
  CAF_CHECK(state_of(1, "node-2") != "up");
  // Node 3 uses a certificate from another cluster's CA: no link.
  temp_dir other;
  auto [code, out] = run_command({keymesh_binary(), "genclust", "--nodes", "3",
                                  "--out", other.file("c"), "--force"},
                                 {}, other.file("g.log"));
  CAF_REQUIRE_EQUAL(code, 0);
  auto rogue_dir = other.file("c/node-3/");
  start(3, {{"KEYMESH_CLUSTER_TLS_CA", other.file("c/ca.pem")},
            {"KEYMESH_CLUSTER_TLS_CERT", rogue_dir + "cert.pem"},
            {"KEYMESH_CLUSTER_TLS_KEY", rogue_dir + "key.pem"}});
  std::this_thread::sleep_for(3s);
  CAF_CHECK(state_of(1, "node-3") != "up");
  CAF_CHECK(node(3).log().find("is up") == std::string::npos);
  // A node whose certificate names someone else does not even start.
  auto mismatch = dir.file("mismatch.log");
  auto [m_code, m_out] = run_command(
    {keymesh_binary(), "serve", "--config", config(2)},
    {{"KEYMESH_CLUSTER_INSTANCE_ID", "node-9"},
     {"KEYMESH_NODE_DATA_DIR", dir.file("mismatch-data")},
     {"KEYMESH_HTTP_LISTEN", "127.0.0.1:0"}},
    mismatch);
  CAF_CHECK_EQUAL(m_code, 1);
  CAF_CHECK(m_out.find("CN \"node-2\" is not this node's instance id "
                       "\"node-9\"")
            != std::string::npos);
}

CAF_TEST(sighup_reloads_good_tls_files_and_keeps_the_old_ones_on_bad) {
  for (int i = 1; i <= 2; ++i)
    start(i);
  CAF_REQUIRE(eventually([&] { return all_linked(2); }, 15s));
  auto key = dir.file("c/node-1/key.pem");
  auto good = read_file(key);
  ::kill(node(1).pid(), SIGHUP);
  CAF_CHECK(node(1).wait_for_log("SIGHUP: cluster TLS files validated", 5s));
  { std::ofstream{key} << "garbage"; }
  ::kill(node(1).pid(), SIGHUP);
  CAF_CHECK(node(1).wait_for_log("SIGHUP: the cluster TLS files are not "
                                 "usable",
                                 5s));
  // The node keeps running on the validated copies, and new links work.
  { std::ofstream{key} << good; }
  node(2).stop(SIGKILL);
  start(2);
  CAF_CHECK(eventually([&] { return all_linked(2); }, 15s));
}

CAF_TEST(nodes_find_each_other_through_dns_srv) {
  // A real DNS server on loopback serves one SRV record per node.
  auto dns_port = free_port_range(1);
  std::vector<std::string> args{
    "/usr/sbin/dnsmasq", "--no-daemon", "--port=" + std::to_string(dns_port),
    "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
    "--no-hosts", "--conf-file=/dev/null", "--pid-file=", "--log-facility=-",
    "--local=/cluster.test/"};
  for (int i = 1; i <= 3; ++i)
    args.push_back("--srv-host=_keymesh._tcp.cluster.test,127.0.0.1,"
                   + std::to_string(cluster_base + i - 1) + ",10,10");
  if (::geteuid() == 0)
    args.push_back("--user=root");
  process dns{args, {}, dir.file("dnsmasq.log")};
  std::map<std::string, std::string> srv{
    {"KEYMESH_CLUSTER_DISCOVERY", "srv"},
    {"KEYMESH_CLUSTER_SEEDS", ""},
    {"KEYMESH_CLUSTER_SRV_NAMES", "_keymesh._tcp.cluster.test"},
    {"KEYMESH_CLUSTER_SRV_NAMESERVER",
     "127.0.0.1:" + std::to_string(dns_port)},
    {"KEYMESH_CLUSTER_SRV_POLL_INTERVAL", "1s"}};
  for (int i = 1; i <= 3; ++i)
    start(i, srv);
  CAF_CHECK(eventually([&] { return all_linked(3); }, 20s));
  CAF_CHECK(node(1).log().find("discovered 127.0.0.1:") != std::string::npos);
  // Readiness waited for the first DNS answer (and follows the links).
  auto ready = request(http_port(2), "GET", "/healthz/ready");
  CAF_CHECK(eventually(
    [&] {
      ready = request(http_port(2), "GET", "/healthz/ready");
      return ready.result_int() == 200u;
    },
    5s));
  if (ready.result_int() != 200u)
    CAF_MESSAGE("not ready: " << ready.body());
  dns.stop(SIGTERM);
}

CAF_TEST(rotation_on_every_node_never_shows_an_unknown_kid) {
  std::map<std::string, std::string> fast{
    {"KEYMESH_KEYS_ROTATE_EVERY", "2s"},
    {"KEYMESH_KEYS_MAX_TOKEN_TTL", "3s"},
    {"KEYMESH_KEYS_DEFAULT_TOKEN_TTL", "3s"},
    {"KEYMESH_KEYS_LEEWAY", "0"}};
  for (int i = 1; i <= 3; ++i)
    start(i, fast);
  CAF_REQUIRE(eventually([&] { return all_linked(3); }, 15s));
  std::map<std::string, int> reasons;
  std::set<std::string> kids_seen;
  auto deadline = std::chrono::steady_clock::now() + 7s;
  int round = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    int signer = round % 3 + 1;
    auto res = request(http_port(signer), "POST", "/api/tokens",
                       R"({"sub":"r"})",
                       "Authorization: Bearer " + admin_key(signer) + "\r\n");
    CAF_REQUIRE_EQUAL(res.result_int(), 201u);
    auto t = json::parse(res.body());
    kids_seen.insert(t["kid"].get<std::string>());
    for (int i = 1; i <= 3; ++i) {
      auto v = verify(i, t["token"]);
      reasons[v.value("reason", std::string{"ok"})]++;
    }
    ++round;
  }
  CAF_MESSAGE(round << " tokens, " << kids_seen.size() << " kids, "
                    << reasons["ok"] << " verified ok");
  CAF_CHECK_EQUAL(reasons["unknown_kid"], 0);
  CAF_CHECK_EQUAL(reasons["ok"], round * 3);
  CAF_CHECK(kids_seen.size() >= 6); // every node rotated at least once
}

CAF_TEST_FIXTURE_SCOPE_END()
