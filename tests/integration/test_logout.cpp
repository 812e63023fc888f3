// Back-channel logout on one real node (SQLite) with a real relying-party
// receiver (tests/integration/bcl_receiver.py, which validates every
// logout token with PyJWT against the node's JWKS as an RP library would):
// every way a session ends tells exactly the clients that took part; a
// receiver that fails, redirects, never answers or is not there, and a
// client without a URI, each end as the audit events say; a delivery
// survives a kill -9 of its node; a subject revocation that finds no
// session says so.
#define CAF_SUITE logout
#include "caf/test/unit_test.hpp"

#include <algorithm>
#include <chrono>
#include <set>
#include <sstream>

#include "support/bcl_receiver.hpp"
#include "support/single_node.hpp"
#include "support/wait.hpp"

using namespace keymesh::test;
using namespace std::chrono_literals;

namespace {

struct logout_node : node_fixture {
  std::unique_ptr<bcl_receiver> rp;

  logout_node() {
    restart();
    rp = std::make_unique<bcl_receiver>(dir, port);
  }

  void restart(std::map<std::string, std::string> env = {}) {
    env.emplace("KEYMESH_LOGOUT_ALLOW_PRIVATE_ADDRESSES", "true");
    env.emplace("KEYMESH_LOGOUT_TIMEOUT", "1s");
    env.emplace("KEYMESH_LOGOUT_RETRY_INITIAL", "100ms");
    env.emplace("KEYMESH_LOGOUT_RETRY_MAX", "400ms");
    env.emplace("KEYMESH_LOGOUT_GIVE_UP_AFTER", "5s");
    env.emplace("KEYMESH_LOGOUT_LEASE", "2s");
    env.emplace("KEYMESH_LOGOUT_POLL_INTERVAL", "200ms");
    env.emplace("KEYMESH_AUTH_SCRYPT_LOG2_N", "12");
    if (proc)
      proc->stop(SIGTERM);
    start(std::move(env));
  }

  std::string uri(const std::string& client, const std::string& mode) const {
    return rp->uri(client, mode);
  }

  void register_client(const std::string& client, const std::string& uri) {
    auto res = call("PUT", "/api/admin/clients/" + client,
                    json{{"backchannel_logout_uri", uri}}.dump());
    CAF_REQUIRE(res.result_int() == 200u || res.result_int() == 201u);
  }

  std::string create(const json& body) {
    auto res = call("POST", "/api/sessions", body.dump());
    CAF_REQUIRE_EQUAL(res.result_int(), 201u);
    return json::parse(res.body()).at("sid").get<std::string>();
  }

  std::vector<json> records() const {
    return rp->records();
  }

  std::vector<json> valid_for(const std::string& client) const {
    return rp->accepted(client);
  }

  /// The audit events of TYPE in the node's log (every run's).
  std::vector<json> audits(const std::string& type) const {
    std::vector<json> out;
    for (int run = 1; run <= runs; ++run) {
      std::istringstream in{read_file(
        dir.file("node-" + std::to_string(run) + ".log"))};
      for (std::string line; std::getline(in, line);) {
        auto at = line.find("audit: ");
        if (at == std::string::npos)
          continue;
        auto j = json::parse(line.substr(at + 7), nullptr, false);
        if (j.is_object() && j.value("type", "") == type)
          out.push_back(j);
      }
    }
    return out;
  }

  bool has_audit(const std::string& type, const std::string& client,
                 size_t count = 1) const {
    auto all = audits(type);
    return static_cast<size_t>(std::count_if(
             all.begin(), all.end(),
             [&](const json& j) { return j.value("client_id", "") == client; }))
           >= count;
  }

  json post(const std::string& path, const json& body) {
    auto res = request(port, "POST", path, body.dump());
    return json::parse(res.body(), nullptr, false);
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(logout_tests, logout_node)

CAF_TEST(every_way_a_session_ends_tells_the_clients_that_took_part) {
  register_client("rp-a", uri("rp-a", "ok"));
  register_client("rp-b", uri("rp-b", "ok204"));
  register_client("rp-quiet", ""); // registered without a URI
  // A deleted session: rp-a with its own sid, rp-b with the session's.
  auto s1 = create({{"sub", "alice"},
                    {"clients", {{"rp-a", "rp-sid-1"}, {"rp-b", ""}}}});
  CAF_REQUIRE_EQUAL(call("DELETE", "/api/sessions/" + s1).result_int(), 200u);
  CAF_REQUIRE(eventually(
    [&] { return valid_for("rp-a").size() == 1 && valid_for("rp-b").size() == 1; },
    10s));
  auto a = valid_for("rp-a").front();
  auto b = valid_for("rp-b").front();
  CAF_CHECK_EQUAL(at(a, "sid"), "rp-sid-1");
  CAF_CHECK_EQUAL(at(a, "sub"), "alice");
  CAF_CHECK_EQUAL(at(b, "sid"), s1);
  CAF_CHECK_EQUAL(at(a, "content_type"), "application/x-www-form-urlencoded");
  // Deleting it again tells nobody again.
  call("DELETE", "/api/sessions/" + s1);
  // A participant added by a PATCH; a subject revocation ends both of
  // bob's sessions.
  auto s2 = create({{"sub", "bob"}, {"client_id", "rp-a"}});
  auto s3 = create({{"sub", "bob"}});
  CAF_REQUIRE_EQUAL(call("PATCH", "/api/sessions/" + s3,
                         R"({"clients":{"rp-b":"","rp-quiet":"","rp-unknown":""}})")
                      .result_int(),
                    200u);
  CAF_REQUIRE_EQUAL(call("DELETE", "/api/subjects/bob/sessions").result_int(),
                    200u);
  CAF_REQUIRE(eventually(
    [&] { return valid_for("rp-a").size() == 2 && valid_for("rp-b").size() == 2; },
    10s));
  CAF_CHECK_EQUAL(at(valid_for("rp-a").back(), "sid"), s2);
  CAF_CHECK_EQUAL(at(valid_for("rp-b").back(), "sid"), s3);
  // Login (for rp-a), then logout; a refresh token used twice; a user
  // disabled: each ends a session and rp-a hears of each.
  CAF_REQUIRE_EQUAL(call("POST", "/api/admin/users",
                         R"({"username":"carol","password":"carol-pw"})")
                      .result_int(),
                    201u);
  auto login = [&] {
    auto t = post("/api/login", {{"username", "carol"},
                                 {"password", "carol-pw"},
                                 {"client_id", "rp-a"}});
    CAF_REQUIRE(t.contains("refresh_token"));
    return t;
  };
  auto t1 = login();
  post("/api/logout", {{"refresh_token", t1["refresh_token"]}});
  CAF_REQUIRE(eventually([&] { return valid_for("rp-a").size() == 3; }, 10s));
  CAF_CHECK_EQUAL(at(valid_for("rp-a").back(), "sid"), at(t1, "sid"));
  auto t2 = login();
  auto rotated = post("/api/refresh", {{"refresh_token", t2["refresh_token"]}});
  CAF_REQUIRE(rotated.contains("refresh_token"));
  post("/api/refresh", {{"refresh_token", t2["refresh_token"]}}); // reuse
  CAF_REQUIRE(eventually([&] { return valid_for("rp-a").size() == 4; }, 10s));
  CAF_CHECK_EQUAL(at(valid_for("rp-a").back(), "sid"), at(t2, "sid"));
  auto t3 = login();
  CAF_REQUIRE_EQUAL(call("PATCH", "/api/admin/users/carol",
                         R"({"enabled":false})")
                      .result_int(),
                    200u);
  CAF_REQUIRE(eventually([&] { return valid_for("rp-a").size() == 5; }, 10s));
  CAF_CHECK_EQUAL(at(valid_for("rp-a").back(), "sid"), at(t3, "sid"));
  // Nothing else arrived, and every token was valid (fresh jti each).
  std::this_thread::sleep_for(500ms);
  auto all = records();
  CAF_CHECK_EQUAL(all.size(), 7u);
  std::set<std::string> jtis;
  for (auto& r : all) {
    CAF_CHECK(r.value("valid", false));
    jtis.insert(r.value("jti", ""));
  }
  CAF_CHECK_EQUAL(jtis.size(), all.size());
  // The audit events say so, with the posture.
  CAF_CHECK(eventually([&] { return has_audit("bcl.delivered", "rp-a", 5); },
                       5s));
  auto delivered = audits("bcl.delivered");
  CAF_REQUIRE(!delivered.empty());
  CAF_CHECK_EQUAL(at(delivered.front(), "posture"), "volatile");
  CAF_CHECK_EQUAL(at(delivered.front(), "attempts"), 1);
  CAF_CHECK(has_audit("bcl.skipped", "rp-quiet"));
  CAF_CHECK(has_audit("bcl.skipped", "rp-unknown"));
  auto metrics = request(port, "GET", "/metrics").body();
  CAF_CHECK(metrics.find(R"(keymesh_bcl_deliveries_total{outcome="delivered"} 7)")
            != std::string::npos);
}

CAF_TEST(one_client_is_logged_out_of_a_session_that_goes_on) {
  register_client("rp-a", uri("rp-a", "ok"));
  register_client("rp-b", uri("rp-b", "ok"));
  auto sid = create({{"sub", "hana"},
                     {"clients", {{"rp-a", "sid-a"}, {"rp-b", "sid-b"}}}});
  auto res = call("DELETE", "/api/sessions/" + sid + "/clients/rp-a");
  CAF_REQUIRE_EQUAL(res.result_int(), 200u);
  auto body = json::parse(res.body());
  CAF_CHECK_EQUAL(at(body, "clients"), (json{{"rp-b", "sid-b"}}));
  CAF_REQUIRE(eventually([&] { return valid_for("rp-a").size() == 1; }, 10s));
  CAF_CHECK_EQUAL(at(valid_for("rp-a").front(), "sid"), "sid-a");
  // The session goes on; rp-a is not told again when it ends, rp-b is.
  CAF_CHECK_EQUAL(call("GET", "/api/sessions/" + sid).result_int(), 200u);
  CAF_CHECK_EQUAL(
    call("DELETE", "/api/sessions/" + sid + "/clients/rp-a").result_int(),
    404u);
  CAF_REQUIRE_EQUAL(call("DELETE", "/api/sessions/" + sid).result_int(), 200u);
  CAF_REQUIRE(eventually([&] { return valid_for("rp-b").size() == 1; }, 10s));
  std::this_thread::sleep_for(300ms);
  CAF_CHECK_EQUAL(valid_for("rp-a").size(), 1u);
  CAF_CHECK_EQUAL(rp->records().size(), 2u);
}

CAF_TEST(failing_receivers_are_retried_or_given_up_and_nothing_hangs) {
  register_client("rp-flaky", uri("rp-flaky", "flaky"));
  register_client("rp-redirect", uri("rp-redirect", "redirect"));
  register_client("rp-hang", uri("rp-hang", "hang"));
  register_client("rp-gone", "http://127.0.0.1:1/logout"); // refused
  auto sid = create({{"sub", "dave"},
                     {"clients",
                      {{"rp-flaky", ""},
                       {"rp-redirect", ""},
                       {"rp-hang", ""},
                       {"rp-gone", ""}}}});
  // The end is acknowledged at once, however the receivers behave.
  auto started = std::chrono::steady_clock::now();
  CAF_REQUIRE_EQUAL(call("DELETE", "/api/sessions/" + sid).result_int(), 200u);
  CAF_CHECK(std::chrono::steady_clock::now() - started < 2s);
  // 503s are retried; once the receiver recovers the logout arrives.
  CAF_REQUIRE(eventually([&] { return rp->received("rp-flaky") >= 2; }, 5s));
  rp->set_flaky(200);
  CAF_REQUIRE(eventually([&] { return has_audit("bcl.delivered", "rp-flaky"); },
                         5s));
  auto flaky = audits("bcl.delivered");
  CAF_CHECK(at(flaky.back(), "attempts").get<int>() >= 3);
  CAF_CHECK_EQUAL(valid_for("rp-flaky").size(), 1u);
  // A redirect is not followed: failed at once.
  CAF_CHECK(eventually([&] { return has_audit("bcl.failed", "rp-redirect"); },
                       5s));
  CAF_CHECK(valid_for("rp-redirect").empty());
  // No answer, and nobody listening: retried until logout.give_up_after.
  CAF_REQUIRE(eventually(
    [&] {
      return has_audit("bcl.failed", "rp-hang")
             && has_audit("bcl.failed", "rp-gone");
    },
    15s));
  for (auto& f : audits("bcl.failed")) {
    CAF_MESSAGE(f.dump());
    CAF_CHECK_EQUAL(at(f, "posture"), "volatile");
    auto reason = f.value("reason", "");
    auto client = f.value("client_id", "");
    if (client == "rp-redirect")
      CAF_CHECK(reason.find("redirects are not followed") != std::string::npos);
    if (client == "rp-hang" || client == "rp-gone")
      CAF_CHECK(reason.find("gave up") != std::string::npos);
    if (client == "rp-hang")
      CAF_CHECK(f.at("attempts").get<int>() >= 2);
  }
  // Not allowed, a loopback URI is refused outright.
  restart({{"KEYMESH_LOGOUT_ALLOW_PRIVATE_ADDRESSES", "false"}});
  register_client("rp-private", uri("rp-private", "ok"));
  auto s2 = create({{"sub", "erin"}, {"clients", {{"rp-private", ""}}}});
  CAF_REQUIRE_EQUAL(call("DELETE", "/api/sessions/" + s2).result_int(), 200u);
  CAF_REQUIRE(eventually([&] { return has_audit("bcl.failed", "rp-private"); },
                         5s));
  auto refused = audits("bcl.failed").back();
  CAF_CHECK(refused.value("reason", "").find("no public address")
            != std::string::npos);
  CAF_CHECK(valid_for("rp-private").empty());
}

CAF_TEST(a_delivery_survives_a_kill_of_its_node) {
  register_client("rp-later", uri("rp-later", "flaky"));
  auto sid = create({{"sub", "frank"}, {"clients", {{"rp-later", ""}}}});
  CAF_REQUIRE_EQUAL(call("DELETE", "/api/sessions/" + sid).result_int(), 200u);
  // It was answered 503 at least once, then the node dies.
  CAF_REQUIRE(eventually([&] { return !records().empty(); }, 5s));
  proc->stop(SIGKILL);
  rp->set_flaky(200);
  // The restarted node (on the same port: the receiver reads its JWKS
  // there) finds it in the outbox once the lease ends.
  restart({{"KEYMESH_HTTP_LISTEN", "127.0.0.1:" + std::to_string(port)}});
  if (!eventually([&] { return valid_for("rp-later").size() == 1; }, 10s))
    CAF_FAIL("not delivered after the restart:\n"
             << read_file(dir.file("node-2.log")) << "\n---\n"
             << proc->log());
  auto last = valid_for("rp-later").back();
  CAF_CHECK_EQUAL(at(last, "sid"), sid);
  CAF_CHECK_EQUAL(at(last, "answered"), 200);
  auto metrics = request(port, "GET", "/metrics").body();
  CAF_CHECK(metrics.find("keymesh_bcl_taken_over_total 1") != std::string::npos);
}

CAF_TEST(expired_sessions_are_logged_out_only_when_asked) {
  register_client("rp-e", uri("rp-e", "ok"));
  // By default a session that merely expires tells nobody.
  create({{"sub", "gus"}, {"ttl", 1}, {"clients", {{"rp-e", "quiet"}}}});
  std::this_thread::sleep_for(2500ms);
  CAF_CHECK(rp->records().empty());
  // With sessions.logout_on_expiry, an absolute and an idle expiry do.
  restart({{"KEYMESH_HTTP_LISTEN", "127.0.0.1:" + std::to_string(port)},
           {"KEYMESH_SESSIONS_LOGOUT_ON_EXPIRY", "true"}});
  create({{"sub", "gus"}, {"ttl", 1}, {"clients", {{"rp-e", "absolute"}}}});
  create({{"sub", "gus"},
          {"ttl", 3600},
          {"idle_timeout", 1},
          {"clients", {{"rp-e", "idle"}}}});
  auto kept = create(
    {{"sub", "gus"}, {"ttl", 3600}, {"clients", {{"rp-e", "kept"}}}});
  CAF_REQUIRE(eventually([&] { return valid_for("rp-e").size() == 2; }, 10s));
  std::set<std::string> sids;
  for (auto& r : valid_for("rp-e"))
    sids.insert(r.value("sid", ""));
  CAF_CHECK(sids == (std::set<std::string>{"absolute", "idle"}));
  auto expired = audits("bcl.delivered");
  CAF_REQUIRE(!expired.empty());
  // The live session is untouched.
  CAF_CHECK_EQUAL(call("GET", "/api/sessions/" + kept).result_int(), 200u);
}

CAF_TEST(a_subject_without_sessions_is_reported_with_the_posture) {
  CAF_REQUIRE_EQUAL(call("DELETE", "/api/subjects/nobody/sessions")
                      .result_int(),
                    200u);
  CAF_REQUIRE(eventually(
    [&] { return !audits("bcl.no_sessions_for_subject").empty(); }, 5s));
  auto e = audits("bcl.no_sessions_for_subject").front();
  CAF_CHECK_EQUAL(at(e, "sub"), "nobody");
  CAF_CHECK_EQUAL(at(e, "posture"), "volatile");
}

CAF_TEST_FIXTURE_SCOPE_END()
