// Back-channel logout in a 3-node cluster on a shared MariaDB: a session
// ended on one node is delivered by another when the first is killed
// (kill -9) while the relying party answers 503, at least once, each
// attempt with a new jti; and logouts of sessions ended on any node reach
// the relying party from that node.
#define CAF_SUITE cluster_logout
#include "caf/test/unit_test.hpp"

#include <set>

#include "support/bcl_receiver.hpp"
#include "support/session_cluster.hpp"

using namespace keymesh::test;
using namespace std::chrono_literals;

namespace {

std::map<std::string, std::string> logout_env() {
  return {{"KEYMESH_KEYS_ISSUER", "https://keymesh.test"},
          {"KEYMESH_LOGOUT_ALLOW_PRIVATE_ADDRESSES", "true"},
          {"KEYMESH_LOGOUT_TIMEOUT", "1s"},
          {"KEYMESH_LOGOUT_RETRY_INITIAL", "100ms"},
          {"KEYMESH_LOGOUT_RETRY_MAX", "300ms"},
          {"KEYMESH_LOGOUT_LEASE", "2s"},
          {"KEYMESH_LOGOUT_POLL_INTERVAL", "200ms"}};
}

struct logout_cluster : shared_db_cluster {
  // The receiver reads node 3's JWKS: the merged keys of the cluster.
  bcl_receiver rp{dir, http_port(3)};

  logout_cluster() : shared_db_cluster("volatile", logout_env()) {
  }

  void register_client(const std::string& client, const std::string& uri) {
    auto res = call(1, "PUT", "/api/admin/clients/" + client,
                    json{{"backchannel_logout_uri", uri}}.dump());
    CAF_REQUIRE(res.result_int() == 200u || res.result_int() == 201u);
  }

  std::string create_with(int i, const std::string& sub,
                          const json& clients) {
    auto res = call(i, "POST", "/api/sessions",
                    json{{"sub", sub}, {"clients", clients}}.dump());
    CAF_REQUIRE_EQUAL(res.result_int(), 201u);
    return json::parse(res.body()).at("sid").get<std::string>();
  }

  uint64_t counter(int i, const std::string& name) {
    auto v = metric(i, name);
    return v.empty() ? 0 : std::stoull(v);
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(cluster_logout_tests, logout_cluster)

CAF_TEST(sessions_ended_on_any_node_are_logged_out_from_it) {
  register_client("rp-a", rp.uri("rp-a", "ok"));
  std::vector<std::string> sids;
  for (int i = 1; i <= 3; ++i)
    sids.push_back(create_with(i, "u" + std::to_string(i), {{"rp-a", ""}}));
  // Each ended on another node than the one that made it.
  for (int i = 1; i <= 3; ++i)
    CAF_REQUIRE_EQUAL(call(i % 3 + 1, "DELETE",
                           "/api/sessions/" + sids[static_cast<size_t>(i - 1)])
                        .result_int(),
                      200u);
  CAF_REQUIRE(eventually([&] { return rp.accepted("rp-a").size() == 3; }, 10s));
  std::set<std::string> got;
  for (auto& r : rp.accepted("rp-a"))
    got.insert(r.value("sid", ""));
  CAF_CHECK(got == std::set<std::string>(sids.begin(), sids.end()));
  for (int i = 1; i <= 3; ++i)
    CAF_CHECK_EQUAL(counter(i, "keymesh_bcl_attempts_total"), 1u);
}

CAF_TEST(a_node_killed_mid_delivery_hands_it_to_another) {
  register_client("rp-b", rp.uri("rp-b", "flaky"));
  auto sid = create_with(2, "zoe", {{"rp-b", "rp-sid-zoe"}});
  CAF_REQUIRE_EQUAL(call(1, "DELETE", "/api/sessions/" + sid).result_int(),
                    200u);
  // Node 1 owns the delivery and is answered 503 ...
  CAF_REQUIRE(eventually([&] { return rp.received("rp-b") >= 2; }, 5s));
  // ... until it dies; then the receiver recovers.
  node(1).stop(SIGKILL);
  auto before = rp.received("rp-b");
  rp.set_flaky(200);
  CAF_REQUIRE(eventually([&] { return rp.accepted("rp-b").size() == 1; },
                         15s));
  auto last = rp.accepted("rp-b").front();
  CAF_CHECK_EQUAL(at(last, "sid"), "rp-sid-zoe");
  CAF_CHECK_EQUAL(at(last, "sub"), "zoe");
  CAF_CHECK(rp.received("rp-b") > before);
  // Delivered by node 2 or 3, which took it over.
  CAF_CHECK_EQUAL(counter(2, "keymesh_bcl_taken_over_total")
                    + counter(3, "keymesh_bcl_taken_over_total"),
                  1u);
  CAF_CHECK_EQUAL(counter(2, "keymesh_bcl_deliveries_total{outcome=\"delivered\"}")
                    + counter(3, "keymesh_bcl_deliveries_total{outcome=\"delivered\"}"),
                  1u);
  // Every attempt carried a new jti (the receiver refuses a replayed one).
  std::set<std::string> jtis;
  auto all = rp.records();
  for (auto& r : all) {
    CAF_CHECK(r.value("valid", false));
    jtis.insert(r.value("jti", ""));
  }
  CAF_CHECK_EQUAL(jtis.size(), all.size());
  // Nothing is sent again once it was accepted.
  std::this_thread::sleep_for(2500ms);
  CAF_CHECK_EQUAL(rp.accepted("rp-b").size(), 1u);
}

CAF_TEST_FIXTURE_SCOPE_END()
