// The revocation suite: for each way a session can end (delete, subject
// revocation, logout by access or refresh token, refresh reuse, account
// disabled or deleted, absolute and idle expiry), its refresh tokens and
// every access token minted from them are refused on every node of a real
// 3-node cluster (mutual TLS, a shared MariaDB), and still refused once the
// deny entry's lifetime (keys.max_token_ttl + keys.leeway) has passed.
#define CAF_SUITE revocation
#include "caf/test/unit_test.hpp"

#include <thread>

#include "support/session_cluster.hpp"

using namespace keymesh::test;
using namespace std::chrono_literals;

namespace {

/// What one login handed out: the session, every access token minted from
/// it (at login and at each refresh) and the family's newest refresh token.
struct grant {
  std::string user;
  std::string sid;
  std::vector<std::string> access;
  std::string refresh;
  /// A refresh token already rotated (for reuse).
  std::string rotated;
};

struct revocation_cluster : shared_db_cluster {
  explicit revocation_cluster(std::map<std::string, std::string> env)
      : shared_db_cluster("volatile", std::move(env)) {}

  void add_user(const std::string& name) {
    auto res =
        call(1, "POST", "/api/admin/users",
             json{{"username", name}, {"password", name + "-pw"}}.dump());
    CAF_REQUIRE_EQUAL(res.result_int(), 201u);
  }

  /// Logs USER in on node I and refreshes once on the next node.
  grant login(int i, const std::string& user) {
    grant g;
    g.user = user;
    auto res =
        post(i, "/api/login", {{"username", user}, {"password", user + "-pw"}});
    CAF_REQUIRE_EQUAL(res.result_int(), 200u);
    auto first = json::parse(res.body());
    g.sid = first["sid"].get<std::string>();
    g.access.push_back(first["access_token"].get<std::string>());
    g.rotated = first["refresh_token"].get<std::string>();
    refresh(g, 1 + i % 3);
    return g;
  }

  /// Refreshes G on node I, which must answer 200.
  void refresh(grant& g, int i) {
    auto res =
        post(i, "/api/refresh",
             {{"refresh_token", g.refresh.empty() ? g.rotated : g.refresh}});
    CAF_REQUIRE_EQUAL(res.result_int(), 200u);
    auto next = json::parse(res.body());
    CAF_REQUIRE_EQUAL(next["sid"], g.sid);
    g.access.push_back(next["access_token"].get<std::string>());
    if (!g.refresh.empty())
      g.rotated = g.refresh;
    g.refresh = next["refresh_token"].get<std::string>();
  }

  /// Whether every node refuses every access token of G and its newest
  /// refresh token. The tokens are checked first: refusing a refresh must
  /// not be what ends them.
  void check_ended(const grant& g, const std::string& how) {
    CAF_MESSAGE("session ended by " << how);
    // Refused as revoked or expired: a token no node can check at all
    // (unknown_kid) would prove nothing.
    for (int i = 1; i <= 3; ++i)
      for (auto& token : g.access) {
        auto v = verify(i, token);
        if (v["active"] != false
            || (v["reason"] != "revoked" && v["reason"] != "expired"))
          CAF_ERROR(how << ": node " << i << " does not refuse an access "
                        << "token of the ended session as revoked or "
                        << "expired: " << v.dump());
      }
    for (int i = 1; i <= 3; ++i) {
      auto res = post(i, "/api/refresh", {{"refresh_token", g.refresh}});
      if (res.result_int() != 401u)
        CAF_ERROR(how << ": node " << i << " answers a refresh of the ended "
                      << "session with " << res.result_int() << ": "
                      << res.body());
      else
        CAF_CHECK_EQUAL(at(json::parse(res.body()), "error"), "invalid_grant");
    }
  }
};

/// Sessions that outlive the test unless ended; access tokens and deny
/// entries of 5 s.
struct ending_cluster : revocation_cluster {
  ending_cluster()
      : revocation_cluster({{"KEYMESH_KEYS_MAX_TOKEN_TTL", "5s"},
                            {"KEYMESH_KEYS_DEFAULT_TOKEN_TTL", "5s"},
                            {"KEYMESH_KEYS_LEEWAY", "0s"},
                            {"KEYMESH_AUTH_MAX_FAILURES", "1000"}}) {}
};

/// Sessions of 6 s that idle out after 3 s.
struct expiring_cluster : revocation_cluster {
  expiring_cluster()
      : revocation_cluster({{"KEYMESH_SESSIONS_DEFAULT_TTL", "6s"},
                            {"KEYMESH_SESSIONS_IDLE_TIMEOUT", "3s"},
                            {"KEYMESH_KEYS_LEEWAY", "0s"}}) {}
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(ending_tests, ending_cluster)

CAF_TEST(every_way_a_session_ends_ends_its_refresh_tokens_on_every_node) {
  for (auto user : {"del", "sub", "out-at", "out-rt", "reuse", "off", "gone"})
    add_user(user);
  std::vector<std::pair<grant, std::string>> ended;
  auto end = [&](grant g, const std::string& how) {
    check_ended(g, how);
    ended.emplace_back(std::move(g), how);
  };
  {
    auto g = login(1, "del");
    CAF_CHECK_EQUAL(call(2, "DELETE", "/api/sessions/" + g.sid).result_int(),
                    200u);
    end(g, "DELETE /api/sessions/{sid}");
  }
  {
    auto g = login(2, "sub");
    CAF_CHECK_EQUAL(
        call(3, "DELETE", "/api/subjects/sub/sessions").result_int(), 200u);
    end(g, "DELETE /api/subjects/{sub}/sessions");
  }
  {
    auto g = login(3, "out-at");
    CAF_CHECK_EQUAL(
        post(1, "/api/logout", {{"token", g.access.back()}}).result_int(),
        200u);
    end(g, "logout with an access token");
  }
  {
    auto g = login(1, "out-rt");
    CAF_CHECK_EQUAL(
        post(2, "/api/logout", {{"refresh_token", g.refresh}}).result_int(),
        200u);
    end(g, "logout with a refresh token");
  }
  {
    auto g = login(2, "reuse");
    auto res = post(3, "/api/refresh", {{"refresh_token", g.rotated}});
    CAF_CHECK_EQUAL(res.result_int(), 401u);
    CAF_CHECK(res.body().find("reuse") != std::string::npos);
    end(g, "refresh token reuse");
  }
  {
    auto g = login(3, "off");
    CAF_CHECK_EQUAL(
        call(1, "PATCH", "/api/admin/users/off", R"({"enabled":false})")
            .result_int(),
        200u);
    end(g, "account disabled");
  }
  {
    auto g = login(1, "gone");
    CAF_CHECK_EQUAL(call(2, "DELETE", "/api/admin/users/gone").result_int(),
                    204u);
    end(g, "account deleted");
  }
  // The deny entries end with the access tokens they cover; the sessions
  // and their families stay ended.
  std::this_thread::sleep_for(6s);
  for (auto& [g, how] : ended)
    check_ended(g, how + ", after the deny entry's lifetime");
  // A disabled account enabled again logs in afresh; its old family does
  // not come back with it.
  CAF_CHECK_EQUAL(
      call(3, "PATCH", "/api/admin/users/off", R"({"enabled":true})")
          .result_int(),
      200u);
  auto fresh = login(2, "off");
  for (auto& token : fresh.access) {
    auto v = verify(1, token);
    if (v["active"] != true)
      CAF_ERROR("a fresh login's token is not active: " << v.dump());
  }
  for (auto& [g, how] : ended)
    if (g.user == "off")
      check_ended(g, how + ", then enabled again");
}

CAF_TEST(repeated_logouts_are_idempotent_and_cheap) {
  add_user("twice");
  auto g = login(1, "twice");
  auto revocations = [&](int i) {
    size_t n = 0;
    auto log = node(i).log();
    for (auto at = log.find("revoked sid " + g.sid); at != std::string::npos;
         at = log.find("revoked sid " + g.sid, at + 1))
      ++n;
    return n;
  };
  auto logout = [&](int i) {
    auto res = post(i, "/api/logout", {{"token", g.access.front()}});
    CAF_CHECK_EQUAL(res.result_int(), 200u);
    CAF_CHECK_EQUAL(at(json::parse(res.body()), "sid"), g.sid);
  };
  // A node that logged the revocation does nothing more for a replay.
  for (int n = 0; n < 5; ++n)
    logout(1);
  CAF_CHECK_EQUAL(revocations(1), 1u);
  // Another node knows the revocation from the bus, not that it was
  // logged: it revokes (and logs) once more at most, whatever the replays.
  for (int n = 0; n < 5; ++n)
    logout(2);
  CAF_CHECK_LESS_OR_EQUAL(revocations(2), 1u);
  CAF_CHECK_EQUAL(revocations(1), 1u);
  check_ended(g, "repeated logouts");
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST_FIXTURE_SCOPE(expiry_tests, expiring_cluster)

CAF_TEST(idle_and_absolute_expiry_end_the_refresh_tokens) {
  add_user("idle");
  add_user("busy");
  auto idle = login(1, "idle");
  auto busy = login(2, "busy");
  // Refreshing is activity: the busy session outlives its idle timeout
  // until its absolute end.
  auto start = std::chrono::steady_clock::now();
  for (int n = 0; n < 3; ++n) {
    std::this_thread::sleep_for(1500ms);
    refresh(busy, 1 + n % 3);
  }
  CAF_CHECK_GREATER(std::chrono::steady_clock::now() - start, 3s);
  check_ended(idle, "idle expiry");
  std::this_thread::sleep_for(2500ms);
  check_ended(busy, "absolute expiry");
}

CAF_TEST_FIXTURE_SCOPE_END()
