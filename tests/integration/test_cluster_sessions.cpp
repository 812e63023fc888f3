// Sessions on a real 3-node cluster (mutual TLS, replication factor 2):
// any node answers, a revocation on one node is enforced by every node on
// the next request, and killing a node loses no acknowledged session.
#define CAF_SUITE cluster_sessions
#include "caf/test/unit_test.hpp"

#include "support/cluster.hpp"
#include "support/wait.hpp"

using namespace keymesh::test;
using namespace std::chrono_literals;

namespace {

struct session_cluster : cluster_fixture {
  session_cluster() {
    for (int i = 1; i <= 3; ++i)
      start(i);
    if (!eventually([&] { return all_linked(3) && all_ready(); }, 20s))
      CAF_FAIL("the cluster did not form");
  }

  bool all_ready() {
    for (int i = 1; i <= 3; ++i)
      if (nodes[static_cast<size_t>(i)]
          && request(http_port(i), "GET", "/healthz/ready").result_int()
               != 200u)
        return false;
    return true;
  }

  response call(int i, const std::string& method, const std::string& path,
                const std::string& body = "") {
    return request(http_port(i), method, path, body,
                   "Authorization: Bearer " + admin_key(i) + "\r\n"
                     + (body.empty() ? ""
                                     : "Content-Type: application/json\r\n"));
  }

  std::string create(int i, const std::string& sub) {
    auto res = call(i, "POST", "/api/sessions", json{{"sub", sub}}.dump());
    if (res.result_int() != 201u)
      return {};
    return json::parse(res.body())["sid"].get<std::string>();
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(cluster_session_tests, session_cluster)

CAF_TEST(any_node_reads_and_revocations_reach_every_node) {
  std::vector<std::string> sids;
  for (int n = 0; n < 30; ++n) {
    auto sid = create(1 + n % 3, "user-" + std::to_string(n));
    CAF_REQUIRE(!sid.empty());
    sids.push_back(sid);
  }
  // Read-your-writes from every node at once: owners answer locally, the
  // others forward.
  for (auto& sid : sids)
    for (int i = 1; i <= 3; ++i)
      CAF_CHECK_EQUAL(call(i, "GET", "/api/sessions/" + sid).result_int(),
                      200u);
  // A token bound to a session, revoked on node 2, is rejected by 1 and 3
  // on the very next request.
  auto sid = sids.front();
  auto tok = json::parse(
    call(1, "POST", "/api/sessions/" + sid + "/tokens", "{}").body());
  auto token = tok["token"].get<std::string>();
  CAF_CHECK_EQUAL(at(verify(3, token), "active"), true);
  auto revoked = call(2, "DELETE", "/api/sessions/" + sid);
  CAF_REQUIRE_EQUAL(revoked.result_int(), 200u);
  CAF_CHECK_EQUAL(at(json::parse(revoked.body()), "propagation"), "complete");
  for (int i = 1; i <= 3; ++i) {
    auto v = verify(i, token);
    CAF_CHECK_EQUAL(at(v, "reason"), "revoked");
    CAF_CHECK_EQUAL(call(i, "GET", "/api/sessions/" + sid).result_int(), 404u);
  }
}

CAF_TEST(killing_a_node_loses_no_acknowledged_session) {
  std::vector<std::string> acked;
  for (int n = 0; n < 60; ++n) {
    auto sid = create(1 + n % 2, "load-" + std::to_string(n));
    if (!sid.empty())
      acked.push_back(sid);
    if (n == 30)
      node(3).stop(SIGKILL);
  }
  CAF_CHECK_GREATER(acked.size(), 50u);
  // Every acknowledged session is readable from both survivors. (With TLS,
  // CAF 0.17.6 may drop the link between the survivors for a second when
  // the third dies; docs/clustering.md "Known issues". Until they re-link
  // and sync, each serves alone, so the check allows that window.)
  auto all_readable = [&](int i) {
    for (auto& sid : acked)
      if (call(i, "GET", "/api/sessions/" + sid).result_int() != 200u)
        return false;
    return true;
  };
  CAF_CHECK(eventually([&] { return all_readable(1) && all_readable(2); },
                       15s));
  // The restarted node rejoins, takes its partitions back, and serves them.
  start(3);
  CAF_REQUIRE(eventually([&] { return all_linked(3) && all_ready(); }, 20s));
  CAF_CHECK(all_readable(3));
}

CAF_TEST_FIXTURE_SCOPE_END()
