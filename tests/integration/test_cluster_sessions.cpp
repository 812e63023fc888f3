// Sessions on a real 3-node cluster (mutual TLS, replication factor 2):
// any node answers, a revocation on one node is enforced by every node on
// the next request, killing a node loses no acknowledged session, a paused
// node is brought back in line (its revocations meanwhile reported partial,
// its state shown in /metrics), and a subject revocation racing creates on
// other nodes leaves no earlier session of that subject.
#define CAF_SUITE cluster_sessions
#include "caf/test/unit_test.hpp"

#include <atomic>
#include <csignal>
#include <mutex>
#include <thread>

#include "support/session_cluster.hpp"

using namespace keymesh::test;
using namespace std::chrono_literals;

namespace {

/// Every node holds every partition, and repairs once a second.
struct full_cluster : session_cluster {
  full_cluster()
    : session_cluster({{"KEYMESH_STATE_REPLICATION_FACTOR", "all"},
                       {"KEYMESH_STATE_ANTI_ENTROPY_INTERVAL", "1s"}}) {
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(cluster_session_tests, session_cluster)

CAF_TEST(a_chosen_sid_raced_for_from_every_node_is_created_once) {
  // An OP's replicas derive the sid from their own session id: two of them
  // creating it at once must not both succeed.
  for (int round = 0; round < 5; ++round) {
    auto sid = "race-" + std::to_string(round) + std::string(16, 'x');
    std::atomic<int> created{0};
    std::atomic<int> conflicts{0};
    std::vector<std::thread> racers;
    for (int i = 1; i <= 3; ++i)
      racers.emplace_back([&, i] {
        auto res = call(i, "POST", "/api/sessions",
                        json{{"sub", "racer-" + std::to_string(i)},
                             {"sid", sid}}.dump());
        if (res.result_int() == 201u)
          ++created;
        else if (res.result_int() == 409u)
          ++conflicts;
      });
    for (auto& t : racers)
      t.join();
    CAF_CHECK_EQUAL(created.load(), 1);
    CAF_CHECK_EQUAL(conflicts.load(), 2);
    auto got = json::parse(call(2, "GET", "/api/sessions/" + sid).body());
    CAF_CHECK_EQUAL(at(got, "sid"), sid);
  }
}

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
  CAF_CHECK(eventually(
    [&] { return all_readable(1, acked) && all_readable(2, acked); }, 15s));
  // The restarted node rejoins, takes its partitions back, and serves them.
  start_node(3);
  CAF_REQUIRE(eventually([&] { return all_linked(3) && all_ready(); }, 20s));
  CAF_CHECK(all_readable(3, acked));
}

CAF_TEST(revoking_a_subject_while_other_nodes_create_its_sessions) {
  // Nodes 1 and 3 keep creating sessions of one subject while node 2
  // revokes it. Every session whose creation was acknowledged before the
  // revocation was sent is gone on every node; sessions created after the
  // revocation was acknowledged live.
  using clock = std::chrono::steady_clock;
  struct created {
    std::string sid;
    clock::time_point started;
    clock::time_point acked;
  };
  std::mutex mutex;
  std::vector<created> log;
  std::atomic<bool> stop{false};
  auto load = [&](int node) {
    for (int n = 0; n < 5000 && !stop; ++n) {
      auto started = clock::now();
      auto sid = create(node, "racer");
      if (sid.empty())
        continue;
      std::lock_guard<std::mutex> guard{mutex};
      log.push_back({sid, started, clock::now()});
    }
  };
  std::thread a{load, 1};
  std::thread b{load, 3};
  std::this_thread::sleep_for(300ms);
  auto sent = clock::now();
  auto res = call(2, "DELETE", "/api/subjects/racer/sessions");
  auto answered = clock::now();
  std::this_thread::sleep_for(1500ms);
  stop = true;
  a.join();
  b.join();
  CAF_REQUIRE_EQUAL(res.result_int(), 200u);
  CAF_CHECK_EQUAL(at(json::parse(res.body()), "propagation"), "complete");
  size_t before = 0;
  size_t after = 0;
  for (auto& c : log) {
    if (c.acked < sent) {
      ++before;
      for (int i = 1; i <= 3; ++i)
        CAF_CHECK_EQUAL(call(i, "GET", "/api/sessions/" + c.sid).result_int(),
                        404u);
    } else if (c.started > answered + 1100ms) {
      // Subject revocations cover sessions created up to the revocation
      // instant (whole seconds in the session model): a second later, new
      // sessions are the subject's fresh logins.
      ++after;
      CAF_CHECK_EQUAL(call(2, "GET", "/api/sessions/" + c.sid).result_int(),
                      200u);
    }
  }
  CAF_CHECK_GREATER(before, 5u);
  CAF_CHECK_GREATER(after, 5u);
  CAF_MESSAGE(before << " sessions created before, " << after
                     << " checked after the revocation");
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST_FIXTURE_SCOPE(full_replication_tests, full_cluster)

CAF_TEST(a_paused_node_is_brought_back_in_line) {
  // SIGSTOP node 3 while nodes 1 and 2 take writes; SIGCONT; once it is
  // back, nodes 1 and 2 die, and node 3 alone must serve every write it
  // slept through.
  std::vector<std::string> acked;
  for (int n = 0; n < 10; ++n)
    if (auto sid = create(1 + n % 2, "before-" + std::to_string(n));
        !sid.empty())
      acked.push_back(sid);
  ::kill(node(3).pid(), SIGSTOP);
  auto paused = std::chrono::steady_clock::now();
  // Revocations node 3 cannot confirm (sent at once, before it is found
  // down): in force, reported partial, counted as such for the alert on
  // keymesh_revocations_total, and exit 6 of keymesh admin.
  process cli{{keymesh_binary(), "admin", "--url",
               "http://127.0.0.1:" + std::to_string(http_port(2)),
               "--key-file", dir.file("c/node-2/data/admin.keys"), "revoke",
               "jti", "paused-cli"},
              {},
              dir.file("cli.log")};
  auto revoked = call(1, "POST", "/api/revocations",
                      R"({"jti":"paused-token","reason":"test"})");
  auto cli_code = cli.wait(10s);
  CAF_CHECK_EQUAL(cli_code.value_or(-1), 6);
  CAF_CHECK(cli.log().find("not reached: [\"node-3\"]") != std::string::npos);
  CAF_REQUIRE_EQUAL(revoked.result_int(), 200u);
  auto outcome = json::parse(revoked.body());
  CAF_CHECK_EQUAL(at(outcome, "propagation"), "partial");
  CAF_CHECK_EQUAL(at(outcome, "unreached").dump(), R"(["node-3"])");
  auto counted = call(1, "GET", "/metrics").body();
  CAF_CHECK(counted.find("keymesh_revocations_total{kind=\"jti\","
                         "outcome=\"partial\"} 1\n")
            != std::string::npos);
  int n = 0;
  while (std::chrono::steady_clock::now() - paused < 5s || n < 40) {
    if (auto sid = create(1 + n % 2, "paused-" + std::to_string(n));
        !sid.empty())
      acked.push_back(sid);
    ++n;
  }
  CAF_CHECK_EQUAL(state_of(1, "node-3"), "down");
  // What the "peer down" alert reads.
  auto seen = call(1, "GET", "/metrics").body();
  CAF_CHECK(seen.find("keymesh_cluster_member_up{member=\"node-3\"} 0\n")
            != std::string::npos);
  CAF_CHECK(seen.find("keymesh_cluster_member_up{member=\"node-2\"} 1\n")
            != std::string::npos);
  CAF_CHECK(seen.find("keymesh_cluster_members{state=\"down\"} 1\n")
            != std::string::npos);
  ::kill(node(3).pid(), SIGCONT);
  CAF_REQUIRE(eventually([&] { return all_linked(3) && all_ready(); }, 20s));
  CAF_CHECK_GREATER(acked.size(), 40u);
  // Handoff on rejoin and anti-entropy (every second here) repair it.
  std::this_thread::sleep_for(3s);
  node(1).stop(SIGKILL);
  node(2).stop(SIGKILL);
  CAF_CHECK(eventually([&] { return all_readable(3, acked); }, 10s));
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST_FIXTURE_SCOPE(shared_database_tests, shared_db_cluster)

CAF_TEST(revocations_survive_a_crash_of_the_whole_cluster) {
  auto sid = create(1, "grace");
  CAF_REQUIRE(!sid.empty());
  CAF_REQUIRE_EQUAL(call(2, "DELETE", "/api/sessions/" + sid).result_int(),
                    200u);
  CAF_REQUIRE_EQUAL(call(3, "POST", "/api/revocations",
                         json{{"jti", "jti-before-crash"}}.dump())
                      .result_int(),
                    200u);
  CAF_REQUIRE_EQUAL(call(1, "DELETE", "/api/subjects/grace/sessions")
                      .result_int(),
                    200u);
  // One row per revocation, written by the node that took it.
  CAF_CHECK_EQUAL(trim_line(db.sql("SELECT COUNT(*) FROM keymesh.revocations")),
                  "3");
  // Every node dies at once: no snapshot, no graceful anything.
  for (int i = 1; i <= 3; ++i)
    node(i).stop(SIGKILL);
  for (int i = 1; i <= 3; ++i)
    start_node(i);
  CAF_REQUIRE(eventually([&] { return all_linked(3) && all_ready(); }, 20s));
  for (int i = 1; i <= 3; ++i) {
    CAF_CHECK_EQUAL(metric(i, "keymesh_revocation_log_loaded"), "3");
    CAF_CHECK_EQUAL(metric(i, "keymesh_deny_set_entries"), "3");
    // The session's record is gone with the volatile state, but its
    // revocation is remembered.
    auto gone = call(i, "GET", "/api/sessions/" + sid);
    CAF_CHECK_EQUAL(gone.result_int(), 404u);
    CAF_CHECK(gone.body().find("revoked") != std::string::npos);
  }
}

CAF_TEST(a_user_made_on_one_node_logs_in_and_refreshes_on_the_others) {
  CAF_REQUIRE_EQUAL(call(1, "POST", "/api/admin/users",
                         R"({"username":"ivy","password":"ivy-pw"})")
                      .result_int(),
                    201u);
  CAF_REQUIRE_EQUAL(
    call(1, "POST", "/api/admin/groups", R"({"name":"ops"})").result_int(),
    201u);
  auto claim = call(1, "POST", "/api/admin/claims",
                    R"({"name":"role","value":"operator"})");
  CAF_REQUIRE_EQUAL(claim.result_int(), 201u);
  auto id = std::to_string(json::parse(claim.body())["id"].get<int64_t>());
  CAF_REQUIRE_EQUAL(
    call(1, "PUT", "/api/admin/groups/ops/claims/" + id).result_int(), 204u);
  CAF_REQUIRE_EQUAL(
    call(1, "PUT", "/api/admin/groups/ops/members/ivy").result_int(), 204u);
  auto post = [&](int i, const std::string& path, const json& body) {
    return request(http_port(i), "POST", path, body.dump());
  };
  // Log in on node 2, refresh on node 3.
  auto login = post(2, "/api/login", {{"username", "ivy"}, {"password", "ivy-pw"}});
  CAF_REQUIRE_EQUAL(login.result_int(), 200u);
  auto first = json::parse(login.body());
  auto access = at(first, "access_token").get<std::string>();
  for (int i = 1; i <= 3; ++i)
    CAF_CHECK_EQUAL(at(at(verify(i, access), "claims"), "role"), "operator");
  auto r3 = post(3, "/api/refresh", {{"refresh_token", first["refresh_token"]}});
  CAF_REQUIRE_EQUAL(r3.result_int(), 200u);
  auto second = json::parse(r3.body());
  // Rotated on node 2, then the older token is used on node 1: reuse, the
  // family and the session are revoked everywhere.
  auto r2 = post(2, "/api/refresh", {{"refresh_token", second["refresh_token"]}});
  CAF_REQUIRE_EQUAL(r2.result_int(), 200u);
  auto third = json::parse(r2.body());
  auto reuse = post(1, "/api/refresh", {{"refresh_token", second["refresh_token"]}});
  CAF_CHECK_EQUAL(reuse.result_int(), 401u);
  CAF_CHECK(reuse.body().find("reuse") != std::string::npos);
  for (int i = 1; i <= 3; ++i)
    CAF_CHECK_EQUAL(at(verify(i, at(third, "access_token").get<std::string>()),
                       "reason"),
                    "revoked");
  CAF_CHECK_EQUAL(
    post(3, "/api/refresh", {{"refresh_token", third["refresh_token"]}})
      .result_int(),
    401u);
  // Failed logins count across the nodes: 5 (the default) on three nodes
  // lock the name on all of them.
  for (int n = 0; n < 5; ++n)
    CAF_CHECK_EQUAL(post(1 + n % 3, "/api/login",
                         {{"username", "ivy"}, {"password", "wrong"}})
                      .result_int(),
                    401u);
  for (int i = 1; i <= 3; ++i)
    CAF_CHECK_EQUAL(post(i, "/api/login",
                         {{"username", "ivy"}, {"password", "ivy-pw"}})
                      .result_int(),
                    429u);
}

CAF_TEST(a_burst_of_wrong_passwords_on_every_node_gets_max_failures_checks) {
  CAF_REQUIRE_EQUAL(call(1, "POST", "/api/admin/users",
                         R"({"username":"kim","password":"kim-pw"})")
                      .result_int(),
                    201u);
  // Forty wrong passwords at once, spread over the three nodes: each
  // attempt is reserved by the primary owner of "kim" before its check,
  // so five (auth.max_failures) are checked and the rest refused.
  std::vector<std::thread> threads;
  std::vector<unsigned> status(40);
  for (size_t i = 0; i < status.size(); ++i)
    threads.emplace_back([&, i] {
      status[i] = post(1 + static_cast<int>(i % 3), "/api/login",
                       {{"username", "kim"}, {"password", "wrong"}})
                    .result_int();
    });
  for (auto& t : threads)
    t.join();
  auto checked = std::count(status.begin(), status.end(), 401u);
  auto refused = std::count(status.begin(), status.end(), 429u);
  CAF_MESSAGE(checked << " checked, " << refused << " refused");
  CAF_CHECK_EQUAL(checked, 5);
  CAF_CHECK_EQUAL(refused, 35);
}

CAF_TEST(nodes_keep_verifying_while_the_database_is_down) {
  auto sid = create(1, "henry");
  CAF_REQUIRE(!sid.empty());
  auto token = json::parse(
    call(2, "POST", "/api/sessions/" + sid + "/tokens", "{}").body())["token"]
                 .get<std::string>();
  db.stop();
  CAF_CHECK(eventually([&] { return all_report(503); }, 10s));
  auto ready = request(http_port(1), "GET", "/healthz/ready");
  auto checks = json::parse(ready.body()).at("checks");
  CAF_CHECK(!checks.at("database").get<bool>());
  // Who asks without the admin key learns that the database is down, not
  // the driver's text (which can name the server, its port and the user);
  // the admin key and the log do.
  auto admin_ready = json::parse(call(1, "GET", "/healthz/ready").body());
  auto detail = admin_ready.value("database_error", std::string{});
  CAF_MESSAGE("the database's own text: " << detail);
  CAF_CHECK(detail.find("mysql") != std::string::npos);
  CAF_CHECK_EQUAL(at(json::parse(ready.body()), "database_error"),
                  "database unavailable");
  CAF_CHECK(ready.body().find("mysql") == std::string::npos);
  auto login = post(1, "/api/login",
                    {{"username", "henry"}, {"password", "x"}});
  CAF_CHECK_EQUAL(login.result_int(), 503u);
  CAF_CHECK_EQUAL(at(json::parse(login.body()), "error_description"),
                  "database unavailable");
  CAF_CHECK(login.body().find("mysql") == std::string::npos);
  CAF_CHECK(node(1).log().find(detail) != std::string::npos);
  for (int i = 1; i <= 3; ++i)
    CAF_CHECK_EQUAL(at(verify(i, token), "active"), true);
  // A revocation still takes effect everywhere, but is not acknowledged as
  // durable.
  auto refused = call(3, "DELETE", "/api/sessions/" + sid);
  CAF_CHECK_EQUAL(refused.result_int(), 503u);
  CAF_CHECK(refused.body().find("revocation log") != std::string::npos);
  for (int i = 1; i <= 3; ++i)
    CAF_CHECK_EQUAL(at(verify(i, token), "reason"), "revoked");
  CAF_CHECK_EQUAL(metric(3, "keymesh_database_up{backend=\"mysql\"}"), "0");
  // The database returns: the nodes are ready again and the retry is
  // written.
  db.start();
  CAF_CHECK(eventually([&] { return all_report(200); }, 15s));
  CAF_CHECK_EQUAL(call(3, "DELETE", "/api/sessions/" + sid).result_int(), 200u);
  CAF_CHECK_EQUAL(trim_line(db.sql("SELECT COUNT(*) FROM keymesh.revocations "
                                   "WHERE kind = 'sid'")),
                  "1");
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST_FIXTURE_SCOPE(durable_session_tests, durable_db_cluster)

CAF_TEST(durable_sessions_survive_a_crash_of_the_whole_cluster) {
  // Sessions made on every node; one changed, one revoked, and a subject
  // revoked whole.
  std::vector<std::string> live;
  for (int i = 1; i <= 3; ++i)
    for (int k = 0; k < 2; ++k) {
      auto sid = create(i, "user-" + std::to_string(i));
      CAF_REQUIRE(!sid.empty());
      live.push_back(sid);
    }
  auto changed = live[0];
  CAF_REQUIRE_EQUAL(call(2, "PATCH", "/api/sessions/" + changed,
                         R"({"attributes":{"acr":"mfa"}})")
                      .result_int(),
                    200u);
  auto revoked = live.back();
  live.pop_back();
  CAF_REQUIRE_EQUAL(call(3, "DELETE", "/api/sessions/" + revoked).result_int(),
                    200u);
  std::vector<std::string> subject_gone{create(2, "sam"), create(3, "sam")};
  CAF_REQUIRE(!subject_gone[0].empty() && !subject_gone[1].empty());
  CAF_REQUIRE_EQUAL(call(1, "DELETE", "/api/subjects/sam/sessions")
                      .result_int(),
                    200u);
  // Every acknowledged session is in the database already.
  CAF_CHECK_EQUAL(trim_line(db.sql("SELECT COUNT(*) FROM keymesh.sessions "
                                   "WHERE revoked = 0")),
                  std::to_string(live.size()));
  CAF_CHECK_EQUAL(trim_line(db.sql("SELECT COUNT(*) FROM keymesh.sessions "
                                   "WHERE revoked = 1")),
                  "3");
  // Audit events carry the posture.
  CAF_CHECK(node(1).log().find(R"("posture":"durable")") != std::string::npos);
  CAF_CHECK(node(3).log().find(R"("type":"session.revoked")")
            != std::string::npos);
  for (int i = 1; i <= 3; ++i)
    node(i).stop(SIGKILL);
  for (int i = 1; i <= 3; ++i)
    start_node(i);
  CAF_REQUIRE(eventually([&] { return all_linked(3) && all_ready(); }, 20s));
  // Any node reads any session back, with its last change; the revoked
  // ones stay revoked.
  for (int i = 1; i <= 3; ++i) {
    CAF_CHECK(all_readable(i, live));
    auto got = call(i, "GET", "/api/sessions/" + changed);
    CAF_CHECK_EQUAL(got.result_int(), 200u);
    CAF_CHECK(got.body().find(R"("acr":"mfa")") != std::string::npos);
    for (auto& sid : {revoked, subject_gone[0], subject_gone[1]}) {
      auto gone = call(i, "GET", "/api/sessions/" + sid);
      CAF_CHECK_EQUAL(gone.result_int(), 404u);
      CAF_CHECK(gone.body().find("revoked") != std::string::npos);
    }
  }
  // A subject's list has its recovered sessions; tokens are issued for a
  // recovered session; a change after the restart is kept.
  auto listed = call(2, "GET", "/api/subjects/user-3/sessions");
  CAF_CHECK_EQUAL(listed.result_int(), 200u);
  CAF_CHECK_EQUAL(json::parse(listed.body())["sessions"].size(), 1u);
  CAF_CHECK_EQUAL(call(3, "POST", "/api/sessions/" + live[1] + "/tokens")
                    .result_int(),
                  201u);
  CAF_CHECK_EQUAL(call(1, "PATCH", "/api/sessions/" + live[2],
                       R"({"attributes":{"step":"2"}})")
                    .result_int(),
                  200u);
  auto recovered = 0;
  for (int i = 1; i <= 3; ++i)
    recovered += std::stoi(
      metric(i, "keymesh_durable_sessions_recovered_total"));
  CAF_CHECK_GREATER_OR_EQUAL(recovered, static_cast<int>(live.size()));
  // A revocation of a recovered subject reaches its database rows too.
  CAF_REQUIRE_EQUAL(call(2, "DELETE", "/api/subjects/user-1/sessions")
                      .result_int(),
                    200u);
  CAF_CHECK_EQUAL(trim_line(db.sql("SELECT COUNT(*) FROM keymesh.sessions "
                                   "WHERE sub = 'user-1' AND revoked = 0")),
                  "0");
  CAF_CHECK_EQUAL(call(3, "GET", "/api/sessions/" + changed).result_int(),
                  404u);
}

CAF_TEST(a_durable_create_is_refused_while_the_database_is_down) {
  auto before = create(1, "olga");
  CAF_REQUIRE(!before.empty());
  db.stop();
  CAF_CHECK(eventually([&] { return ready_status(2) == 503; }, 10s));
  // Not acknowledged unless durable: 503, saying why.
  auto refused = call(2, "POST", "/api/sessions", json{{"sub", "olga"}}.dump());
  CAF_CHECK_EQUAL(refused.result_int(), 503u);
  CAF_CHECK(refused.body().find("could not be written to the database")
            != std::string::npos);
  // What memory has is served as before.
  CAF_CHECK_EQUAL(call(3, "GET", "/api/sessions/" + before).result_int(),
                  200u);
  db.start();
  CAF_CHECK(eventually([&] { return all_ready(); }, 15s));
  auto after = create(2, "olga");
  CAF_CHECK(!after.empty());
  CAF_CHECK_EQUAL(trim_line(db.sql("SELECT COUNT(*) FROM keymesh.sessions "
                                   "WHERE sub = 'olga'")),
                  "2");
}

CAF_TEST_FIXTURE_SCOPE_END()
