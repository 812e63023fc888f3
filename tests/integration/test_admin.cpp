// The admin API over users, groups and claims on one real node (SQLite):
// the whole CRUD, what a user's groups grant, bad input, SQL metacharacters
// in every field, and the directory surviving a restart.
#define CAF_SUITE admin
#include "caf/test/unit_test.hpp"

#include <sqlite3.h>

#include "support/single_node.hpp"

using namespace keymesh::test;

namespace {

struct admin_node : node_fixture {
  admin_node() {
    // Cheap hashes: the cost is not what is tested here.
    restart({{"KEYMESH_AUTH_SCRYPT_LOG2_N", "10"}});
  }

  void restart(std::map<std::string, std::string> env) {
    proc->stop(SIGTERM);
    start(std::move(env));
  }

  json ok(const std::string& method, const std::string& path,
          const std::string& body, unsigned status) {
    auto res = call(method, path, body);
    CAF_CHECK_EQUAL(res.result_int(), status);
    if (res.result_int() != status)
      CAF_MESSAGE(method << " " << path << ": " << res.body());
    return res.body().empty() ? json{} : json::parse(res.body());
  }

  std::string error_of(const response& res) {
    return json::parse(res.body()).value("error", "");
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(admin_tests, admin_node)

CAF_TEST(users_groups_and_claims_round_trip) {
  auto alice = ok("POST", "/api/admin/users",
                  R"({"username":"alice","password":"s3cret!"})", 201);
  CAF_CHECK_EQUAL(at(alice, "username"), "alice");
  CAF_CHECK_EQUAL(at(alice, "enabled"), true);
  CAF_CHECK(!alice.contains("password") && !alice.contains("password_hash"));
  CAF_CHECK_EQUAL(call("POST", "/api/admin/users",
                       R"({"username":"alice","password":"x"})")
                    .result_int(),
                  409u);
  ok("POST", "/api/admin/users",
     R"({"username":"bob","password":"pw","enabled":false})", 201);
  ok("POST", "/api/admin/groups", R"({"name":"admins"})", 201);
  ok("POST", "/api/admin/groups", R"({"name":"readers"})", 201);
  CAF_CHECK_EQUAL(
    call("POST", "/api/admin/groups", R"({"name":"admins"})").result_int(),
    409u);
  auto role = ok("POST", "/api/admin/claims",
                 R"({"name":"role","value":"admin","description":"all"})", 201);
  auto scope = ok("POST", "/api/admin/claims",
                  R"({"name":"scope","value":"read"})", 201);
  auto role_id = std::to_string(at(role, "id").get<int64_t>());
  auto scope_id = std::to_string(at(scope, "id").get<int64_t>());
  ok("PUT", "/api/admin/groups/admins/claims/" + role_id, "", 204);
  ok("PUT", "/api/admin/groups/admins/claims/" + scope_id, "", 204);
  ok("PUT", "/api/admin/groups/readers/claims/" + scope_id, "", 204);
  ok("PUT", "/api/admin/groups/admins/members/alice", "", 204);
  ok("PUT", "/api/admin/groups/readers/members/alice", "", 204);
  ok("PUT", "/api/admin/groups/readers/members/bob", "", 204);
  CAF_CHECK_EQUAL(
    call("PUT", "/api/admin/groups/admins/members/nobody").result_int(), 404u);
  CAF_CHECK_EQUAL(
    call("PUT", "/api/admin/groups/nogroup/claims/" + role_id).result_int(),
    404u);
  // What alice's groups grant, each claim once.
  auto a = ok("GET", "/api/admin/users/alice", "", 200);
  CAF_CHECK_EQUAL(at(a, "groups"), (json{"admins", "readers"}));
  auto claims = at(a, "claims");
  CAF_REQUIRE_EQUAL(claims.size(), 2u);
  CAF_CHECK_EQUAL(at(claims[0], "name"), "role");
  CAF_CHECK_EQUAL(at(claims[1], "value"), "read");
  auto g = ok("GET", "/api/admin/groups/readers", "", 200);
  CAF_CHECK_EQUAL(at(g, "members"), (json{"alice", "bob"}));
  CAF_CHECK_EQUAL(at(ok("GET", "/api/admin/groups", "", 200), "groups").size(),
                  2u);
  CAF_CHECK_EQUAL(at(ok("GET", "/api/admin/claims", "", 200), "claims").size(),
                  2u);
  // Paging through users.
  auto page = ok("GET", "/api/admin/users?limit=1", "", 200);
  CAF_CHECK_EQUAL(at(page, "users").size(), 1u);
  CAF_CHECK_EQUAL(at(page, "next"), "alice");
  page = ok("GET", "/api/admin/users?limit=5&after=alice", "", 200);
  auto users = at(page, "users");
  CAF_REQUIRE_EQUAL(users.size(), 1u);
  CAF_CHECK_EQUAL(at(users[0], "username"), "bob");
  CAF_CHECK(!page.contains("next"));
  // Updates: enable bob, change alice's password.
  auto b = ok("PATCH", "/api/admin/users/bob", R"({"enabled":true})", 200);
  CAF_CHECK_EQUAL(at(b, "enabled"), true);
  ok("PATCH", "/api/admin/users/alice", R"({"password":"n3w"})", 200);
  CAF_CHECK_EQUAL(
    call("PATCH", "/api/admin/users/nobody", R"({"enabled":true})")
      .result_int(),
    404u);
  // Removals.
  ok("DELETE", "/api/admin/groups/readers/claims/" + scope_id, "", 204);
  ok("DELETE", "/api/admin/groups/admins/members/alice", "", 204);
  CAF_CHECK_EQUAL(at(ok("GET", "/api/admin/users/alice", "", 200), "claims")
                    .size(),
                  0u);
  ok("DELETE", "/api/admin/claims/" + role_id, "", 204);
  CAF_CHECK_EQUAL(call("DELETE", "/api/admin/claims/" + role_id).result_int(),
                  404u);
  ok("DELETE", "/api/admin/groups/admins", "", 204);
  ok("DELETE", "/api/admin/users/bob", "", 204);
  CAF_CHECK_EQUAL(call("GET", "/api/admin/users/bob").result_int(), 404u);
  // The directory is in the database: it survives a restart.
  restart({{"KEYMESH_AUTH_SCRYPT_LOG2_N", "10"}});
  CAF_CHECK_EQUAL(call("GET", "/api/admin/users/alice").result_int(), 200u);
  CAF_CHECK_EQUAL(call("GET", "/api/admin/groups/readers").result_int(), 200u);
}

CAF_TEST(passwords_are_stored_as_scrypt_hashes) {
  ok("POST", "/api/admin/users",
     R"({"username":"carol","password":"plain-text-pw"})", 201);
  sqlite3* db = nullptr;
  CAF_REQUIRE_EQUAL(sqlite3_open(dir.file("data/keymesh.db").c_str(), &db),
                    SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT password_hash FROM users", -1, &st, nullptr);
  CAF_REQUIRE_EQUAL(sqlite3_step(st), SQLITE_ROW);
  std::string hash{static_cast<const char*>(sqlite3_column_blob(st, 0)),
                   static_cast<size_t>(sqlite3_column_bytes(st, 0))};
  sqlite3_finalize(st);
  sqlite3_close(db);
  CAF_CHECK_EQUAL(hash.rfind("$scrypt$ln=10,r=8,p=1$", 0), 0u);
  CAF_CHECK(hash.find("plain-text-pw") == std::string::npos);
  CAF_CHECK(proc->log().find("plain-text-pw") == std::string::npos);
}

CAF_TEST(bad_input_gets_clear_errors) {
  auto bad = [&](const std::string& method, const std::string& path,
                 const std::string& body) {
    auto res = call(method, path, body);
    CAF_CHECK_EQUAL(res.result_int(), 400u);
    if (res.result_int() == 400u)
      CAF_CHECK_EQUAL(error_of(res), "invalid_request");
    else
      CAF_MESSAGE(method << " " << path << " " << body << ": " << res.body());
  };
  bad("POST", "/api/admin/users", R"({"username":"","password":"x"})");
  bad("POST", "/api/admin/users", R"({"username":"u"})");
  bad("POST", "/api/admin/users", R"({"username":"u","password":""})");
  bad("POST", "/api/admin/users",
      json{{"username", std::string(256, 'u')}, {"password", "x"}}.dump());
  bad("POST", "/api/admin/users",
      json{{"username", "u"}, {"password", std::string(1025, 'p')}}.dump());
  bad("POST", "/api/admin/users", R"({"username":"a\nb","password":"x"})");
  bad("POST", "/api/admin/users",
      R"({"username":"u","password":"x","enabled":"yes"})");
  bad("POST", "/api/admin/users", R"({"username":"u","password":"x","x":1})");
  bad("POST", "/api/admin/groups", R"({"name":7})");
  bad("POST", "/api/admin/claims", R"({"name":"n"})");
  bad("POST", "/api/admin/claims",
      json{{"name", "n"}, {"value", "v"}, {"description", std::string(1025, 'd')}}
        .dump());
  bad("DELETE", "/api/admin/claims/abc", "");
  bad("DELETE", "/api/admin/claims/-1", "");
  bad("GET", "/api/admin/users?limit=0", "");
  bad("GET", "/api/admin/users?limit=5000", "");
  // Without the admin key nothing is readable.
  CAF_CHECK_EQUAL(request(port, "GET", "/api/admin/users").result_int(), 401u);
  // SQL metacharacters are only data.
  std::string nasty = "x'; DROP TABLE users; --";
  auto created = call("POST", "/api/admin/users",
                      json{{"username", nasty}, {"password", "' OR '1'='1"}}
                        .dump());
  CAF_CHECK_EQUAL(created.result_int(), 201u);
  CAF_CHECK_EQUAL(call("POST", "/api/admin/groups",
                       json{{"name", "\" OR 1=1 --"}}.dump())
                    .result_int(),
                  201u);
  CAF_CHECK_EQUAL(call("PUT", "/api/admin/groups/%22%20OR%201%3D1%20--/members/"
                              "x%27%3B%20DROP%20TABLE%20users%3B%20--")
                    .result_int(),
                  204u);
  auto got = call("GET", "/api/admin/users/x%27%3B%20DROP%20TABLE%20users%3B%20--");
  CAF_REQUIRE_EQUAL(got.result_int(), 200u);
  CAF_CHECK_EQUAL(at(json::parse(got.body()), "groups"), (json{"\" OR 1=1 --"}));
  CAF_CHECK_EQUAL(at(ok("GET", "/api/admin/users", "", 200), "users").size(),
                  1u);
}

CAF_TEST(relying_parties_round_trip_and_survive_a_restart) {
  auto made = ok("PUT", "/api/admin/clients/rp%201",
                 R"({"backchannel_logout_uri":"https://rp.example/bcl",)"
                 R"("backchannel_logout_session_required":true})",
                 200);
  CAF_CHECK_EQUAL(at(made, "client_id"), "rp 1");
  CAF_CHECK_EQUAL(at(made, "backchannel_logout_uri"), "https://rp.example/bcl");
  CAF_CHECK_EQUAL(at(made, "backchannel_logout_session_required"), true);
  ok("PUT", "/api/admin/clients/rp-2", R"({})", 200);
  auto two = ok("GET", "/api/admin/clients/rp-2", "", 200);
  CAF_CHECK_EQUAL(at(two, "backchannel_logout_uri"), "");
  CAF_CHECK_EQUAL(at(two, "backchannel_logout_session_required"), false);
  auto page = ok("GET", "/api/admin/clients?limit=1", "", 200);
  CAF_CHECK_EQUAL(at(page, "clients").size(), 1u);
  CAF_CHECK_EQUAL(at(page, "next"), "rp 1");
  // Bad input: a URI that is not absolute http(s), unknown members, wrong
  // types, a bad limit.
  for (auto body : {R"({"backchannel_logout_uri":"rp.example/x"})",
                    R"({"backchannel_logout_uri":"https://rp.example/#f"})",
                    R"({"backchannel_logout_uri":7})",
                    R"({"backchannel_logout_session_required":"yes"})",
                    R"({"redirect_uris":[]})"}) {
    auto res = call("PUT", "/api/admin/clients/rp-3", body);
    CAF_CHECK_EQUAL(res.result_int(), 400u);
    CAF_CHECK_EQUAL(error_of(res), "invalid_request");
  }
  CAF_CHECK_EQUAL(call("GET", "/api/admin/clients?limit=0", "").result_int(),
                  400u);
  CAF_CHECK_EQUAL(call("GET", "/api/admin/clients/rp-3", "").result_int(),
                  404u);
  // Without the admin key: refused.
  CAF_CHECK_EQUAL(request(port, "GET", "/api/admin/clients").result_int(),
                  401u);
  // Durable: after a restart the registrations are there; then deleted.
  restart({{"KEYMESH_AUTH_SCRYPT_LOG2_N", "10"}});
  auto back = ok("GET", "/api/admin/clients/rp%201", "", 200);
  CAF_CHECK_EQUAL(at(back, "backchannel_logout_session_required"), true);
  ok("DELETE", "/api/admin/clients/rp%201", "", 204);
  CAF_CHECK_EQUAL(call("DELETE", "/api/admin/clients/rp%201", "").result_int(),
                  404u);
}

CAF_TEST_FIXTURE_SCOPE_END()
