// Login, refresh and logout on one real node (SQLite): tokens carry the
// claims of the user's groups and the session, refresh tokens rotate and
// their reuse revokes the family and the session, failed logins lock a
// username (an unknown one too) with the same answer and about the same
// time, and bad input gets clear errors.
#define CAF_SUITE login
#include "caf/test/unit_test.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "support/single_node.hpp"
#include "support/wait.hpp"

using namespace keymesh::test;
using namespace std::chrono_literals;

namespace {

struct login_node : node_fixture {
  login_node() {
    restart({});
  }

  void restart(std::map<std::string, std::string> env) {
    env.emplace("KEYMESH_AUTH_SCRYPT_LOG2_N", "12");
    env.emplace("KEYMESH_AUTH_MAX_FAILURES", "3");
    env.emplace("KEYMESH_AUTH_LOCKOUT", "2s");
    proc->stop(SIGTERM);
    start(std::move(env));
  }

  void admin(const std::string& method, const std::string& path,
             const std::string& body, unsigned status) {
    auto res = call(method, path, body);
    CAF_REQUIRE_EQUAL(res.result_int(), status);
  }

  /// alice (in admins: role=admin, scope=read and scope=write) and the
  /// disabled bob.
  void directory() {
    admin("POST", "/api/admin/users",
          R"({"username":"alice","password":"alice-pw"})", 201);
    admin("POST", "/api/admin/users",
          R"({"username":"bob","password":"bob-pw","enabled":false})", 201);
    admin("POST", "/api/admin/groups", R"({"name":"admins"})", 201);
    for (auto c : {R"({"name":"role","value":"admin"})",
                   R"({"name":"scope","value":"read"})",
                   R"({"name":"scope","value":"write"})"})
      admin("POST", "/api/admin/claims", c, 201);
    for (auto id : {"1", "2", "3"})
      admin("PUT", std::string{"/api/admin/groups/admins/claims/"} + id, "",
            204);
    admin("PUT", "/api/admin/groups/admins/members/alice", "", 204);
  }

  response post(const std::string& path, const json& body) {
    return request(port, "POST", path, body.dump());
  }

  response login(const std::string& user, const std::string& password) {
    return post("/api/login", {{"username", user}, {"password", password}});
  }

  json verify_token(const std::string& token) {
    return json::parse(post("/api/verify", {{"token", token}}).body());
  }
};

std::string field(const response& res, const char* name) {
  auto j = json::parse(res.body());
  return j.contains(name) && j[name].is_string() ? j[name].get<std::string>()
                                                 : std::string{};
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(login_tests, login_node)

CAF_TEST(login_refresh_reuse_and_logout) {
  directory();
  auto res = login("alice", "alice-pw");
  CAF_REQUIRE_EQUAL(res.result_int(), 200u);
  auto tokens = json::parse(res.body());
  CAF_CHECK_EQUAL(at(tokens, "token_type"), "Bearer");
  CAF_CHECK_EQUAL(at(tokens, "sub"), "alice");
  auto access = at(tokens, "access_token").get<std::string>();
  auto refresh = at(tokens, "refresh_token").get<std::string>();
  auto sid = at(tokens, "sid").get<std::string>();
  // The access token carries the groups' claims and the session.
  auto v = verify_token(access);
  CAF_REQUIRE_EQUAL(at(v, "active"), true);
  auto claims = at(v, "claims");
  CAF_CHECK_EQUAL(at(claims, "sub"), "alice");
  CAF_CHECK_EQUAL(at(claims, "sid"), sid);
  CAF_CHECK_EQUAL(at(claims, "role"), "admin");
  CAF_CHECK_EQUAL(at(claims, "scope"), (json{"read", "write"}));
  CAF_CHECK_EQUAL(at(claims, "groups"), (json{"admins"}));
  // The session is a real one.
  CAF_CHECK_EQUAL(call("GET", "/api/sessions/" + sid).result_int(), 200u);
  // Refresh: new tokens, a rotated refresh token.
  auto r1 = post("/api/refresh", {{"refresh_token", refresh}});
  CAF_REQUIRE_EQUAL(r1.result_int(), 200u);
  auto refresh2 = field(r1, "refresh_token");
  CAF_CHECK_NOT_EQUAL(refresh2, refresh);
  CAF_CHECK_EQUAL(field(r1, "sid"), sid);
  auto r2 = post("/api/refresh", {{"refresh_token", refresh2}});
  CAF_REQUIRE_EQUAL(r2.result_int(), 200u);
  auto access3 = field(r2, "access_token");
  // The first refresh token again: reuse. The family and the session end.
  auto reuse = post("/api/refresh", {{"refresh_token", refresh}});
  CAF_CHECK_EQUAL(reuse.result_int(), 401u);
  CAF_CHECK_EQUAL(field(reuse, "error"), "invalid_grant");
  CAF_CHECK(reuse.body().find("reuse") != std::string::npos);
  CAF_CHECK_EQUAL(at(verify_token(access3), "reason"), "revoked");
  CAF_CHECK_EQUAL(at(verify_token(access), "reason"), "revoked");
  CAF_CHECK_EQUAL(
    post("/api/refresh", {{"refresh_token", field(r2, "refresh_token")}})
      .result_int(),
    401u);
  // Logout with a refresh token, then with an access token.
  auto again = login("alice", "alice-pw");
  CAF_REQUIRE_EQUAL(again.result_int(), 200u);
  auto out = post("/api/logout", {{"refresh_token", field(again, "refresh_token")}});
  CAF_CHECK_EQUAL(out.result_int(), 200u);
  CAF_CHECK_EQUAL(at(verify_token(field(again, "access_token")), "reason"),
                  "revoked");
  CAF_CHECK_EQUAL(
    post("/api/refresh", {{"refresh_token", field(again, "refresh_token")}})
      .result_int(),
    401u);
  auto third = login("alice", "alice-pw");
  CAF_REQUIRE_EQUAL(third.result_int(), 200u);
  CAF_CHECK_EQUAL(
    post("/api/logout", {{"token", field(third, "access_token")}}).result_int(),
    200u);
  CAF_CHECK_EQUAL(at(verify_token(field(third, "access_token")), "reason"),
                  "revoked");
  // A disabled account cannot refresh: it ends the family.
  auto fourth = login("alice", "alice-pw");
  CAF_REQUIRE_EQUAL(fourth.result_int(), 200u);
  admin("PATCH", "/api/admin/users/alice", R"({"enabled":false})", 200);
  auto disabled = post("/api/refresh",
                       {{"refresh_token", field(fourth, "refresh_token")}});
  CAF_CHECK_EQUAL(disabled.result_int(), 401u);
  CAF_CHECK_EQUAL(at(verify_token(field(fourth, "access_token")), "reason"),
                  "revoked");
}

CAF_TEST(failed_logins_lock_known_and_unknown_names_alike) {
  directory();
  auto wrong = login("alice", "nope");
  auto unknown = login("mallory", "nope");
  CAF_CHECK_EQUAL(wrong.result_int(), 401u);
  CAF_CHECK_EQUAL(unknown.result_int(), 401u);
  CAF_CHECK_EQUAL(wrong.body(), unknown.body());
  CAF_CHECK_EQUAL(field(wrong, "error"), "invalid_credentials");
  // A disabled account with its right password.
  auto bob = login("bob", "bob-pw");
  CAF_CHECK_EQUAL(bob.result_int(), 403u);
  CAF_CHECK_EQUAL(field(bob, "error"), "account_disabled");
  // Three failures lock a name for auth.lockout, even for the right
  // password, and an unknown name just the same.
  login("alice", "nope");
  login("alice", "nope");
  login("mallory", "nope");
  login("mallory", "nope");
  auto locked = login("alice", "alice-pw");
  CAF_CHECK_EQUAL(locked.result_int(), 429u);
  CAF_CHECK_EQUAL(field(locked, "error"), "account_locked");
  CAF_CHECK(locked.find(bhttp::field::retry_after) != locked.end());
  auto locked_unknown = login("mallory", "anything");
  CAF_CHECK_EQUAL(locked_unknown.result_int(), 429u);
  CAF_CHECK_EQUAL(locked_unknown.body(), locked.body());
  // The lock ends.
  CAF_CHECK(eventually(
    [&] { return login("alice", "alice-pw").result_int() == 200u; }, 5s,
    250ms));
}

CAF_TEST(a_burst_of_wrong_passwords_gets_at_most_max_failures_checks) {
  restart({{"KEYMESH_AUTH_MAX_FAILURES", "5"},
           {"KEYMESH_AUTH_LOCKOUT", "1h"}});
  directory();
  // Forty wrong passwords at once, for a known and an unknown name: each
  // attempt is counted before its password is checked, so five are
  // checked (401) and the rest are refused unchecked (429).
  for (auto user : {"alice", "mallory"}) {
    std::vector<std::thread> threads;
    std::vector<unsigned> status(40);
    for (size_t i = 0; i < status.size(); ++i)
      threads.emplace_back([&, i] {
        status[i] = request(port, "POST", "/api/login",
                            json{{"username", user}, {"password", "wrong"}}
                              .dump())
                      .result_int();
      });
    for (auto& t : threads)
      t.join();
    auto checked = std::count(status.begin(), status.end(), 401u);
    auto refused = std::count(status.begin(), status.end(), 429u);
    CAF_MESSAGE(user << ": " << checked << " checked, " << refused
                     << " refused");
    CAF_CHECK_EQUAL(checked, 5);
    CAF_CHECK_EQUAL(refused, 35);
    CAF_CHECK_EQUAL(login(user, user == std::string{"alice"} ? "alice-pw"
                                                             : "x")
                      .result_int(),
                    429u);
  }
}

CAF_TEST(unknown_and_known_names_take_the_same_time) {
  restart({{"KEYMESH_AUTH_SCRYPT_LOG2_N", "14"},
           {"KEYMESH_AUTH_MAX_FAILURES", "1000"}});
  admin("POST", "/api/admin/users",
        R"({"username":"carol","password":"carol-pw"})", 201);
  login("nobody", "x"); // the dummy hash is made once
  auto median_ms = [&](const std::string& user) {
    std::vector<double> times;
    for (int i = 0; i < 7; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      auto res = login(user, "wrong");
      times.push_back(std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - t0)
                        .count());
      CAF_CHECK_EQUAL(res.result_int(), 401u);
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
  };
  auto known = median_ms("carol");
  auto unknown = median_ms("dave");
  CAF_MESSAGE("median login time: known name " << known << " ms, unknown "
                                               << unknown << " ms");
  CAF_CHECK_GREATER(unknown, known * 0.6);
  CAF_CHECK_LESS(unknown, known * 1.6);
}

CAF_TEST(a_login_upgrades_a_hash_of_another_cost) {
  admin("POST", "/api/admin/users",
        R"({"username":"erin","password":"erin-pw"})", 201);
  // The cost goes up: erin's next login stores her hash at the new cost,
  // once; the old hash verified, the new one does too.
  restart({{"KEYMESH_AUTH_SCRYPT_LOG2_N", "13"}});
  CAF_CHECK_EQUAL(login("erin", "erin-pw").result_int(), 200u);
  auto upgraded = [&] {
    auto log = proc->log();
    size_t n = 0;
    for (auto at = log.find("upgraded to scrypt ln=13"); at != std::string::npos;
         at = log.find("upgraded to scrypt ln=13", at + 1))
      ++n;
    return n;
  };
  CAF_CHECK(eventually([&] { return upgraded() == 1; }, 5s));
  CAF_CHECK_EQUAL(login("erin", "erin-pw").result_int(), 200u);
  CAF_CHECK_EQUAL(login("erin", "wrong").result_int(), 401u);
  std::this_thread::sleep_for(300ms);
  CAF_CHECK_EQUAL(upgraded(), 1u);
  CAF_CHECK(proc->log().find("erin-pw") == std::string::npos);
}

CAF_TEST(bad_input_gets_clear_errors) {
  directory();
  auto status = [&](const std::string& path, const std::string& body) {
    return request(port, "POST", path, body).result_int();
  };
  CAF_CHECK_EQUAL(status("/api/login", R"({"username":"alice"})"), 400u);
  CAF_CHECK_EQUAL(status("/api/login", R"({"password":"x"})"), 400u);
  CAF_CHECK_EQUAL(status("/api/login", R"({"username":"","password":"x"})"),
                  400u);
  CAF_CHECK_EQUAL(status("/api/login",
                         json{{"username", std::string(256, 'a')},
                              {"password", "x"}}
                           .dump()),
                  400u);
  CAF_CHECK_EQUAL(status("/api/login",
                         json{{"username", "a"},
                              {"password", std::string(1025, 'p')}}
                           .dump()),
                  400u);
  CAF_CHECK_EQUAL(status("/api/login", R"({"username":"a","password":"x","y":1})"),
                  400u);
  CAF_CHECK_EQUAL(status("/api/login", "not json"), 400u);
  // SQL metacharacters are only a wrong name.
  CAF_CHECK_EQUAL(
    login("' OR '1'='1", "' OR '1'='1").result_int(), 401u);
  CAF_CHECK_EQUAL(login("alice'; --", "x").result_int(), 401u);
  CAF_CHECK_EQUAL(login("alice", "alice-pw").result_int(), 200u);
  // Refresh and logout refuse what is not theirs.
  for (auto bad : {"", "x", "a.b.c", "AAAAAAAAAAAAAAAAAAAAAA.1.AAAA",
                   "AAAAAAAAAAAAAAAAAAAAAA.99999999999999.x"}) {
    auto res = post("/api/refresh", {{"refresh_token", bad}});
    CAF_CHECK_EQUAL(res.result_int(), 401u);
    CAF_CHECK_EQUAL(field(res, "error"), "invalid_grant");
  }
  CAF_CHECK_EQUAL(post("/api/logout", json::object()).result_int(), 400u);
  CAF_CHECK_EQUAL(post("/api/logout", {{"token", "a.b.c"}}).result_int(), 401u);
  // A forged generation of a real family is refused without revoking it.
  auto ok = login("alice", "alice-pw");
  auto rt = field(ok, "refresh_token");
  auto forged = rt.substr(0, rt.find('.')) + ".7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  CAF_CHECK_EQUAL(post("/api/refresh", {{"refresh_token", forged}}).result_int(),
                  401u);
  CAF_CHECK_EQUAL(post("/api/refresh", {{"refresh_token", rt}}).result_int(),
                  200u);
}

CAF_TEST_FIXTURE_SCOPE_END()
