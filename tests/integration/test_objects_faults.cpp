// Consume under faults, on a real 3-node cluster (mutual TLS, replication
// factor 2): 100 consumers spread over all nodes race for one object while
// its partition's primary owner is killed (kill -9) or frozen (SIGSTOP).
// Consumers behave like OP replicas: on a 503 or a dead connection they
// retry, with the same idempotency key, through the next node. Never two
// winners; the consumed state stays consumed after the primary's restart
// or SIGCONT and after anti-entropy.
#define CAF_SUITE objects_faults
#include "caf/test/unit_test.hpp"

#include <algorithm>
#include <csignal>
#include <mutex>
#include <set>
#include <thread>

#include "state/object.hpp"
#include "state/placement.hpp"
#include "support/session_cluster.hpp"

using namespace keymesh;
using namespace keymesh::test;
using namespace std::chrono_literals;

namespace {

constexpr int consumers = 100;

struct faults_cluster : session_cluster {
  faults_cluster()
    : session_cluster(std::map<std::string, std::string>{
        {"KEYMESH_STATE_ANTI_ENTROPY_INTERVAL", "1s"}}) {
  }

  /// The node (1..3) that is the primary owner of KIND/ID while all three
  /// are up (genclust's default of 64 partitions, two copies).
  static int primary_of(const std::string& kind, const std::string& id) {
    auto key = state::object_key(kind, id);
    auto owners = state::owners_of(
      state::partition_of(state::partition_key(key), 64),
      {"node-1", "node-2", "node-3"}, 2);
    return owners.front().back() - '0';
  }

  /// Puts KIND/ID (for ten minutes) through a node that is not its
  /// primary owner; returns the primary.
  int put_once(const std::string& kind, const std::string& id) {
    auto primary = primary_of(kind, id);
    CAF_MESSAGE("the primary owner is node " << primary);
    CAF_REQUIRE_EQUAL(call(1 + primary % 3, "PUT",
                           "/api/objects/" + kind + "/" + id,
                           json{{"value", "once"}, {"ttl", 600}}.dump())
                        .result_int(),
                      200u);
    return primary;
  }

  /// One consume through node I; 0 when the node does not answer in time.
  unsigned consume_once(int i, const std::string& path,
                        const std::string& key) {
    try {
      connection c{http_port(i)};
      c.send_raw(make_request(
        "POST", "/api/objects/" + path + "/consume",
        json{{"idempotency_key", key}}.dump(),
        "Authorization: Bearer " + admin_key(i) + "\r\n"));
      return c.read_response(3s).result_int();
    } catch (const std::exception&) {
      return 0;
    }
  }

  /// Consumer C: starts on node 1 + C % 3 after START plus a delay that
  /// spreads the storm over 300 ms, then retries through the next node on 503 or no
  /// answer, for up to 30 s. Returns its last status.
  unsigned consumer(int c, const std::string& path,
                    std::chrono::milliseconds start) {
    std::this_thread::sleep_for(start + std::chrono::milliseconds{3 * c});
    auto key = "consumer-" + std::to_string(c);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    unsigned status = 0;
    for (int attempt = 0; std::chrono::steady_clock::now() < deadline;
         ++attempt) {
      status = consume_once(1 + (c + attempt) % 3, path, key);
      if (status != 0 && status != 503u)
        return status;
      std::this_thread::sleep_for(200ms);
    }
    return status;
  }

  /// Runs the storm on KIND/ID from START on, hitting its primary with
  /// FAULT at FAULT_AT; returns the consumers that won.
  std::set<int> storm(const std::string& kind, const std::string& id,
                      int primary, int fault, std::chrono::milliseconds start,
                      std::chrono::milliseconds fault_at) {
    auto path = kind + "/" + id;
    std::vector<unsigned> status(consumers);
    std::vector<std::thread> threads;
    for (int c = 0; c < consumers; ++c)
      threads.emplace_back([&, c] {
        status[static_cast<size_t>(c)] = consumer(c, path, start);
      });
    std::this_thread::sleep_for(fault_at);
    ::kill(node(primary).pid(), fault);
    for (auto& t : threads)
      t.join();
    std::set<int> won;
    std::map<unsigned, int> seen;
    for (int c = 0; c < consumers; ++c) {
      auto s = status[static_cast<size_t>(c)];
      ++seen[s];
      if (s == 200u)
        won.insert(c);
    }
    for (auto& [s, n] : seen)
      CAF_MESSAGE(n << " consumer(s) ended with " << s);
    // Every consumer got a final answer: won or already consumed.
    CAF_CHECK_EQUAL(seen[200u] + seen[409u], consumers);
    return won;
  }

  /// After the faulty node is back: every node answers that the object is
  /// consumed, to a newcomer and to the winner.
  void check_consumed_everywhere(const std::string& path, int winner) {
    CAF_REQUIRE(eventually([&] { return all_linked(3) && all_ready(); }, 30s));
    // Two anti-entropy rounds (1 s each) and the handoffs of the rejoin.
    std::this_thread::sleep_for(3s);
    for (int i = 1; i <= 3; ++i) {
      auto got = call(i, "GET", "/api/objects/" + path);
      CAF_REQUIRE_EQUAL(got.result_int(), 200u);
      CAF_CHECK(json::parse(got.body()).contains("consumed_at"));
      CAF_CHECK_EQUAL(consume_once(i, path, "late-" + std::to_string(i)),
                      409u);
      CAF_CHECK_EQUAL(
        consume_once(i, path, "consumer-" + std::to_string(winner)), 200u);
    }
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(objects_fault_tests, faults_cluster)

CAF_TEST(a_primary_killed_during_the_storm_never_makes_two_winners) {
  const std::string kind = "AuthorizationCode";
  const std::string id = "storm-kill";
  auto primary = put_once(kind, id);
  // Killed 60 ms into a storm of 300 ms.
  auto won = storm(kind, id, primary, SIGKILL, 0ms, 60ms);
  CAF_REQUIRE_EQUAL(won.size(), 1u);
  node(primary).wait(10s);
  start_node(primary);
  check_consumed_everywhere(kind + "/" + id, *won.begin());
}

CAF_TEST(a_frozen_primary_never_makes_two_winners) {
  const std::string kind = "AuthorizationCode";
  const std::string id = "storm-stop";
  auto primary = put_once(kind, id);
  // Frozen before the first consume: the other two decide without it,
  // while it keeps the object live in its copy.
  auto won = storm(kind, id, primary, SIGSTOP, 100ms, 0ms);
  CAF_REQUIRE_EQUAL(won.size(), 1u);
  // Thawed, the old primary still believes in its old view, where it
  // decides and its copy is live: a consume through it right away must
  // not win (without the fence, it did).
  ::kill(node(primary).pid(), SIGCONT);
  auto thawed = consume_once(primary, kind + "/" + id, "thawed");
  CAF_MESSAGE("a consume through the thawed node: " << thawed);
  CAF_CHECK(thawed != 200u);
  // It was refused as a minority or by the owner with the newer copy.
  auto metrics = request(http_port(primary), "GET", "/metrics").body();
  auto counted = [&](const std::string& name) {
    auto at = metrics.find("\n" + name + " ");
    return at != std::string::npos && metrics[at + name.size() + 2] != '0';
  };
  CAF_CHECK(counted("keymesh_state_decisions_fenced_total")
            || counted("keymesh_state_decisions_outdated_total"));
  check_consumed_everywhere(kind + "/" + id, *won.begin());
}

CAF_TEST(a_node_restarted_where_no_peer_answers_decides_nothing) {
  const std::string kind = "AuthorizationCode";
  // An object that node 1 holds a copy of (it is one of its two owners).
  std::string id;
  for (int n = 0; id.empty(); ++n) {
    auto candidate = "alone-" + std::to_string(n);
    auto key = state::object_key(kind, candidate);
    auto owners = state::owners_of(
      state::partition_of(state::partition_key(key), 64),
      {"node-1", "node-2", "node-3"}, 2);
    if (std::find(owners.begin(), owners.end(), "node-1") != owners.end())
      id = candidate;
  }
  auto path = kind + "/" + id;
  CAF_REQUIRE_EQUAL(call(1, "PUT", "/api/objects/" + path,
                         json{{"value", "once"}, {"ttl", 600}}.dump())
                      .result_int(),
                    200u);
  // Node 1 stops (its snapshot keeps the object), then the other two die;
  // node 1 comes back where neither answers.
  CAF_REQUIRE(node(1).stop(SIGTERM));
  node(2).stop(SIGKILL);
  node(3).stop(SIGKILL);
  start_node(1);
  CAF_REQUIRE_EQUAL(call(1, "GET", "/api/objects/" + path).result_int(),
                    200u);
  // Alone, it is a minority of the three members it has known: it must
  // not decide (without the recorded members it counted only itself and
  // let this consume win, while the others might decide it too).
  CAF_CHECK_EQUAL(consume_once(1, path, "alone"), 503u);
  // With the others back, the consume is decided once.
  start_node(2);
  start_node(3);
  CAF_REQUIRE(eventually([&] { return all_linked(3) && all_ready(); }, 30s));
  CAF_CHECK(eventually([&] { return consume_once(1, path, "alone") == 200u; },
                       20s));
  CAF_CHECK_EQUAL(consume_once(2, path, "other"), 409u);
}

CAF_TEST_FIXTURE_SCOPE_END()
