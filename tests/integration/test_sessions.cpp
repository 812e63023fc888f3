// Sessions on one real node over HTTP: the whole API, bad input, revocation
// enforced by /api/verify, and sessions and revocations surviving a graceful
// restart through the warm-start snapshot and the revocation log.
#define CAF_SUITE sessions
#include "caf/test/unit_test.hpp"

#include "support/event_stream.hpp"
#include "support/single_node.hpp"
#include "support/wait.hpp"

#include <filesystem>

using namespace keymesh::test;

namespace {

struct session_node : node_fixture {
  json create(const json& body) {
    auto res = call("POST", "/api/sessions", body.dump());
    CAF_REQUIRE_EQUAL(res.result_int(), 201u);
    return json::parse(res.body());
  }

  unsigned status_of(const std::string& sid) {
    return call("GET", "/api/sessions/" + sid).result_int();
  }

  std::string token_for(const std::string& sid) {
    auto res = call("POST", "/api/sessions/" + sid + "/tokens", "{}");
    CAF_REQUIRE_EQUAL(res.result_int(), 201u);
    return json::parse(res.body())["token"].get<std::string>();
  }
};

std::string error_of(const response& res) {
  auto j = json::parse(res.body(), nullptr, false);
  return j.is_object() ? j.value("error", "") : "";
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(session_tests, session_node)

CAF_TEST(create_read_update_and_revoke) {
  auto s = create({{"sub", "alice"},
                   {"client_id", "web"},
                   {"ttl", 600},
                   {"idle_timeout", 300},
                   {"attributes", {{"ip", "10.0.0.1"}, {"acr", "mfa"}}}});
  auto sid = s["sid"].get<std::string>();
  CAF_CHECK_EQUAL(sid.size(), 22u);
  CAF_CHECK_EQUAL(at(s, "sub"), "alice");
  CAF_CHECK_EQUAL(at(s, "client_id"), "web");
  CAF_CHECK_EQUAL(at(s, "expires_at").get<int64_t>()
                    - at(s, "created_at").get<int64_t>(),
                  600);
  auto got = call("GET", "/api/sessions/" + sid);
  CAF_REQUIRE_EQUAL(got.result_int(), 200u);
  auto read = json::parse(got.body());
  CAF_CHECK_EQUAL(at(read, "attributes"), at(s, "attributes"));
  // Attribute merge: null removes, strings set.
  auto patched = call("PATCH", "/api/sessions/" + sid,
                      R"({"attributes":{"ip":null,"step":"2"}})");
  CAF_REQUIRE_EQUAL(patched.result_int(), 200u);
  auto p = json::parse(patched.body());
  CAF_CHECK_EQUAL(at(p, "attributes"), (json{{"acr", "mfa"}, {"step", "2"}}));
  // A token bound to the session carries its sid and verifies...
  auto token = token_for(sid);
  auto v = json::parse(
    request(port, "POST", "/api/verify", json{{"token", token}}.dump()).body());
  CAF_CHECK_EQUAL(at(v, "active"), true);
  CAF_CHECK_EQUAL(at(at(v, "claims"), "sid"), sid);
  // ...until the session is revoked.
  auto revoked = call("DELETE", "/api/sessions/" + sid,
                      R"({"reason":"user logged out"})");
  CAF_REQUIRE_EQUAL(revoked.result_int(), 200u);
  auto r = json::parse(revoked.body());
  CAF_CHECK_EQUAL(at(r, "revoked"), "sid");
  CAF_CHECK_EQUAL(at(r, "reason"), "user logged out");
  v = json::parse(
    request(port, "POST", "/api/verify", json{{"token", token}}.dump()).body());
  CAF_CHECK_EQUAL(at(v, "active"), false);
  CAF_CHECK_EQUAL(at(v, "reason"), "revoked");
  auto gone = call("GET", "/api/sessions/" + sid);
  CAF_CHECK_EQUAL(gone.result_int(), 404u);
  CAF_CHECK(gone.body().find("revoked") != std::string::npos);
  // Revoking again is fine (idempotent); so is PATCH refusing.
  CAF_CHECK_EQUAL(call("DELETE", "/api/sessions/" + sid).result_int(), 200u);
  CAF_CHECK_EQUAL(call("PATCH", "/api/sessions/" + sid, "{}").result_int(),
                  404u);
  CAF_CHECK_EQUAL(
    call("POST", "/api/sessions/" + sid + "/tokens", "{}").result_int(), 404u);
}

CAF_TEST(subject_listing_and_revocation) {
  std::vector<std::string> alice;
  for (int i = 0; i < 3; ++i)
    alice.push_back(create({{"sub", "alice"}})["sid"].get<std::string>());
  auto bob = create({{"sub", "bob"}})["sid"].get<std::string>();
  auto listed = call("GET", "/api/subjects/alice/sessions");
  CAF_REQUIRE_EQUAL(listed.result_int(), 200u);
  CAF_CHECK_EQUAL(at(json::parse(listed.body()), "sessions").size(), 3u);
  auto old_token = token_for(alice[0]);
  auto revoked = call("DELETE", "/api/subjects/alice/sessions");
  CAF_REQUIRE_EQUAL(revoked.result_int(), 200u);
  CAF_CHECK_EQUAL(at(json::parse(revoked.body()), "sessions"), 3);
  for (auto& sid : alice)
    CAF_CHECK_EQUAL(status_of(sid), 404u);
  CAF_CHECK_EQUAL(status_of(bob), 200u);
  auto v = json::parse(
    request(port, "POST", "/api/verify", json{{"token", old_token}}.dump())
      .body());
  CAF_CHECK_EQUAL(at(v, "reason"), "revoked");
  listed = call("GET", "/api/subjects/alice/sessions");
  CAF_CHECK_EQUAL(at(json::parse(listed.body()), "sessions").size(), 0u);
  // Revocation by jti through /api/revocations.
  auto issued = json::parse(
    call("POST", "/api/tokens", R"({"sub":"carol"})").body());
  auto token = issued["token"].get<std::string>();
  auto claims = json::parse(
    request(port, "POST", "/api/verify", json{{"token", token}}.dump()).body());
  auto jti = claims["claims"]["jti"].get<std::string>();
  auto res = call("POST", "/api/revocations", json{{"jti", jti}}.dump());
  CAF_CHECK_EQUAL(res.result_int(), 200u);
  v = json::parse(
    request(port, "POST", "/api/verify", json{{"token", token}}.dump()).body());
  CAF_CHECK_EQUAL(at(v, "reason"), "revoked");
}

CAF_TEST(bad_input_gets_clear_errors) {
  std::string big(5000, 'x');
  auto res = call("POST", "/api/sessions",
                  json{{"sub", "a"}, {"attributes", {{"k", big}}}}.dump());
  CAF_CHECK_EQUAL(res.result_int(), 400u);
  CAF_CHECK(res.body().find("max_attribute_bytes") != std::string::npos);
  CAF_CHECK_EQUAL(call("POST", "/api/sessions", R"({"client_id":"x"})")
                    .result_int(),
                  400u);
  CAF_CHECK_EQUAL(call("POST", "/api/sessions", R"({"sub":"a","ttl":-1})")
                    .result_int(),
                  400u);
  CAF_CHECK_EQUAL(
    call("POST", "/api/sessions", R"({"sub":"a","attributes":{"n":1}})")
      .result_int(),
    400u);
  CAF_CHECK_EQUAL(call("POST", "/api/sessions", R"({"sub":"a","x":1})")
                    .result_int(),
                  400u);
  CAF_CHECK_EQUAL(call("POST", "/api/sessions", "[1,2]").result_int(), 400u);
  for (auto bad : {"short", "AAAAAAAAAAAAAAAAAAAAA!", "..%2F..%2Fetc"}) {
    auto r = call("GET", std::string{"/api/sessions/"} + bad);
    CAF_CHECK_EQUAL(r.result_int(), 400u);
    CAF_CHECK_EQUAL(error_of(r), "invalid_request");
  }
  auto unknown = call("GET", "/api/sessions/AAAAAAAAAAAAAAAAAAAAAA");
  CAF_CHECK_EQUAL(unknown.result_int(), 404u);
  CAF_CHECK_EQUAL(error_of(unknown), "not_found");
  CAF_CHECK_EQUAL(call("POST", "/api/revocations", R"({"sid":"x","sub":"y"})")
                    .result_int(),
                  400u);
  // Without the admin key nothing is readable.
  CAF_CHECK_EQUAL(
    request(port, "GET", "/api/sessions/AAAAAAAAAAAAAAAAAAAAAA").result_int(),
    401u);
  // Growing a session past the limit through PATCH is refused too.
  auto sid = create({{"sub", "a"}})["sid"].get<std::string>();
  auto grow = call("PATCH", "/api/sessions/" + sid,
                   json{{"attributes", {{"k", big}}}}.dump());
  CAF_CHECK_EQUAL(grow.result_int(), 400u);
  CAF_CHECK_EQUAL(status_of(sid), 200u);
}

CAF_TEST(revocations_survive_a_crash_through_the_log) {
  // A single node's tokens outlive a restart (its signing keys are kept
  // sealed), so the deny set must come back with them, for its own tokens,
  // the tokens peers signed and for sessions. Each revocation is in the SQLite log before it is
  // acknowledged, so even kill -9 right after the answers loses none.
  auto sid = create({{"sub", "frank"}})["sid"].get<std::string>();
  auto frank_token = token_for(sid);
  CAF_REQUIRE_EQUAL(call("DELETE", "/api/sessions/" + sid).result_int(), 200u);
  CAF_REQUIRE_EQUAL(
    call("POST", "/api/revocations", json{{"jti", "j-9"}}.dump()).result_int(),
    200u);
  CAF_REQUIRE_EQUAL(
    call("POST", "/api/revocations", json{{"sub", "heidi"}}.dump())
      .result_int(),
    200u);
  proc->stop(SIGKILL);
  start();
  CAF_CHECK(eventually(
    [&] { return request(port, "GET", "/healthz/ready").result_int() == 200; },
    std::chrono::seconds{10}));
  CAF_CHECK(proc->log().find("3 live revocations loaded") != std::string::npos);
  // The token of the revoked session still has a key that verifies it,
  // and is refused as revoked.
  auto v = json::parse(
    request(port, "POST", "/api/verify", json{{"token", frank_token}}.dump())
      .body());
  CAF_CHECK_EQUAL(at(v, "active"), false);
  CAF_CHECK_EQUAL(at(v, "reason"), "revoked");
  auto metrics = request(port, "GET", "/metrics").body();
  CAF_CHECK(metrics.find("keymesh_deny_set_entries 3\n") != std::string::npos);
  CAF_CHECK(metrics.find("keymesh_revocation_log_loaded 3\n")
            != std::string::npos);
  CAF_CHECK(metrics.find("keymesh_database_up{backend=\"sqlite\"} 1\n")
            != std::string::npos);
  // A session of the revoked subject created before the revocation would
  // be hidden; one created now is not.
  auto later = create({{"sub", "heidi"}})["sid"].get<std::string>();
  CAF_CHECK_EQUAL(status_of(later), 200u);
  // A damaged database is never replaced: the node runs, verifies tokens
  // from memory, and reports not ready with the reason.
  CAF_REQUIRE_EQUAL(proc->stop(SIGTERM), 0);
  for (auto suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(dir.file(std::string{"data/keymesh.db"} + suffix));
  write_file(dir.file("data/keymesh.db"), std::string(8192, 'x'));
  start();
  // The reason is for the admin key; anyone else learns only that the
  // database is unavailable.
  auto ready = request(port, "GET", "/healthz/ready");
  CAF_CHECK(eventually(
    [&] {
      ready = call("GET", "/healthz/ready");
      return ready.body().find("not a database") != std::string::npos;
    },
    std::chrono::seconds{10}));
  auto public_ready = request(port, "GET", "/healthz/ready");
  CAF_CHECK_EQUAL(at(json::parse(public_ready.body()), "database_error"),
                  "database unavailable");
  CAF_CHECK_EQUAL(ready.result_int(), 503u);
  auto checks = json::parse(ready.body()).at("checks");
  CAF_CHECK(!checks.at("database").get<bool>());
  auto token = call("POST", "/api/tokens", json{{"sub", "ivan"}}.dump());
  CAF_REQUIRE_EQUAL(token.result_int(), 201u);
  auto verified = request(port, "POST", "/api/verify",
                          json{{"token", json::parse(token.body())["token"]}}.dump());
  auto answer = json::parse(verified.body());
  CAF_CHECK(answer.at("active").get<bool>());
  CAF_CHECK_EQUAL(read_file(dir.file("data/keymesh.db")), std::string(8192, 'x'));
}

CAF_TEST(kept_signing_keys_verify_old_tokens_after_kill_9) {
  // keymesh keygen makes the key file (and refuses to overwrite one).
  auto key_file = dir.file("keys.hex");
  auto [made, made_log] = run_command({keymesh_binary(), "keygen", "--out",
                                       key_file},
                                      {}, dir.file("keygen.log"));
  CAF_REQUIRE_EQUAL(made, 0);
  auto [again, again_log] = run_command({keymesh_binary(), "keygen", "--out",
                                         key_file},
                                        {}, dir.file("keygen2.log"));
  CAF_CHECK_NOT_EQUAL(again, 0);
  // Until now the node sealed its keys with a key of its own, in its data
  // directory; with a key file set, it re-seals them with that once and
  // deletes its own.
  auto own_key = dir.file("data/signing_keys.key");
  CAF_REQUIRE(std::filesystem::exists(own_key));
  auto earlier = issue({{"sub", "kim"}});
  CAF_REQUIRE_EQUAL(proc->stop(SIGTERM), 0);
  std::map<std::string, std::string> kept{
    {"KEYMESH_KEYS_ENCRYPTION_KEY_FILE", key_file}};
  start(kept);
  CAF_CHECK(!std::filesystem::exists(own_key));
  CAF_CHECK(verify(earlier["token"].get<std::string>()).at("active").get<bool>());
  auto token = issue({{"sub", "kim"}});
  auto kid = token["kid"].get<std::string>();
  auto sealed = dir.file("data/signing_keys.sealed");
  CAF_REQUIRE(std::filesystem::exists(sealed));
  CAF_CHECK((std::filesystem::status(sealed).permissions()
             & std::filesystem::perms::group_all)
            == std::filesystem::perms::none);
  CAF_CHECK(read_file(sealed).find(kid) == std::string::npos);
  proc->stop(SIGKILL);
  start(kept);
  // The same key still verifies the token, and is still published.
  auto answer = verify(token["token"].get<std::string>());
  CAF_CHECK(answer.at("active").get<bool>());
  auto jwks = request(port, "GET", "/.well-known/jwks.json").body();
  CAF_CHECK(jwks.find(kid) != std::string::npos);
  CAF_CHECK(proc->log().find("kept signing keys restored") != std::string::npos);
  // No private key material reaches the log.
  CAF_CHECK(proc->log().find("\"d\"") == std::string::npos);
  // The wrong key refuses to start, saying why, and leaves the file alone.
  auto before = read_file(sealed);
  CAF_REQUIRE_EQUAL(proc->stop(SIGTERM), 0);
  auto wrong = dir.file("wrong.hex");
  write_file(wrong, std::string(64, 'a') + "\n");
  auto env = std::map<std::string, std::string>{
    {"KEYMESH_HTTP_LISTEN", "127.0.0.1:0"},
    {"KEYMESH_NODE_DATA_DIR", dir.file("data")},
    {"KEYMESH_KEYS_ENCRYPTION_KEY_FILE", wrong}};
  auto [code, log] = run_command({keymesh_binary(), "serve"}, env,
                                 dir.file("wrong.log"));
  CAF_CHECK_NOT_EQUAL(code, 0);
  CAF_CHECK(log.find("cannot be opened with keys.encryption_key_file")
            != std::string::npos);
  CAF_CHECK(read_file(sealed) == before);
  // A clustered node refuses the setting.
  env["KEYMESH_KEYS_ENCRYPTION_KEY_FILE"] = key_file;
  env["KEYMESH_CLUSTER_ENABLED"] = "true";
  auto [clustered, clustered_log] = run_command({keymesh_binary(), "serve"},
                                                env, dir.file("cluster.log"));
  CAF_CHECK_NOT_EQUAL(clustered, 0);
  CAF_CHECK(clustered_log.find("never persists its private keys")
            != std::string::npos);
  // Without the key file (and the node's own key gone) it refuses to make
  // a new key that could not open them.
  env.erase("KEYMESH_KEYS_ENCRYPTION_KEY_FILE");
  env.erase("KEYMESH_CLUSTER_ENABLED");
  auto [unkeyed, unkeyed_log] = run_command({keymesh_binary(), "serve"}, env,
                                            dir.file("unkeyed.log"));
  CAF_CHECK_NOT_EQUAL(unkeyed, 0);
  CAF_CHECK(unkeyed_log.find("keys.encryption_key_file is not set")
            != std::string::npos);
  CAF_CHECK(!std::filesystem::exists(own_key));
  start(kept);
}

CAF_TEST(durable_sessions_on_one_node_survive_kill_9) {
  CAF_REQUIRE_EQUAL(proc->stop(SIGTERM), 0);
  std::map<std::string, std::string> durable{
    {"KEYMESH_SESSIONS_POSTURE", "durable"}};
  start(durable);
  auto kept = create({{"sub", "lena"}, {"attributes", {{"amr", "pwd"}}}})["sid"]
                .get<std::string>();
  auto revoked = create({{"sub", "lena"}})["sid"].get<std::string>();
  CAF_REQUIRE_EQUAL(call("PATCH", "/api/sessions/" + kept,
                         R"({"attributes":{"acr":"2"}})")
                      .result_int(),
                    200u);
  CAF_REQUIRE_EQUAL(call("DELETE", "/api/sessions/" + revoked).result_int(),
                    200u);
  proc->stop(SIGKILL);
  start(durable);
  auto got = call("GET", "/api/sessions/" + kept);
  CAF_CHECK_EQUAL(got.result_int(), 200u);
  auto attrs = json::parse(got.body()).at("attributes");
  CAF_CHECK_EQUAL(attrs.value("amr", ""), "pwd");
  CAF_CHECK_EQUAL(attrs.value("acr", ""), "2");
  CAF_CHECK_EQUAL(status_of(revoked), 404u);
  auto listed = json::parse(call("GET", "/api/subjects/lena/sessions").body());
  CAF_CHECK_EQUAL(listed.at("sessions").size(), 1u);
  // The audit log says what happened, with the posture.
  auto first_run = read_file(dir.file("node-2.log"));
  CAF_CHECK(first_run.find(R"("type":"session.created")") != std::string::npos);
  CAF_CHECK(first_run.find(R"("posture":"durable")") != std::string::npos);
  CAF_CHECK(first_run.find(R"("type":"session.revoked")") != std::string::npos);
  // With the volatile posture the same restart loses the session (its
  // revocation is still remembered).
  CAF_REQUIRE_EQUAL(proc->stop(SIGTERM), 0);
  start();
  auto lost = create({{"sub", "max"}})["sid"].get<std::string>();
  proc->stop(SIGKILL);
  start();
  CAF_CHECK_EQUAL(status_of(lost), 404u);
  CAF_CHECK_EQUAL(status_of(revoked), 404u);
}

CAF_TEST(event_stream_follows_revocations_and_sessions) {
  // Admin only; topics are checked.
  CAF_CHECK_EQUAL(request(port, "GET", "/api/events").result_int(), 401u);
  CAF_CHECK_EQUAL(call("GET", "/api/events?topics=a%20b").result_int(), 400u);
  CAF_CHECK_EQUAL(call("GET", "/api/events?topics=a,,b").result_int(), 400u);
  {
    // HEAD answers with the header alone.
    connection c{port};
    c.send_raw(make_request("HEAD", "/api/events", {}, bearer()));
    auto res = c.read_response(std::chrono::seconds{5}, true);
    CAF_CHECK_EQUAL(res.result_int(), 200u);
    CAF_CHECK_EQUAL(res[bhttp::field::content_type],
                    "text/event-stream; charset=utf-8");
  }
  event_stream stream{port, "/api/events?topics=revocations,sessions",
                      bearer()};
  CAF_REQUIRE_EQUAL(stream.status, 200u);
  CAF_CHECK(stream.head.find("text/event-stream") != std::string::npos);
  auto sid = create({{"sub", "judy"}, {"client_id", "app"}})["sid"]
               .get<std::string>();
  CAF_REQUIRE(stream.wait_until(
    [](auto& events) { return !events.empty(); }));
  auto created = stream.events.at(0);
  CAF_CHECK_EQUAL(created.event, "sessions");
  auto cj = created.json();
  CAF_CHECK_EQUAL(at(at(cj, "payload"), "type"), "created");
  CAF_CHECK_EQUAL(at(at(cj, "payload"), "sid"), sid);
  CAF_CHECK_EQUAL(at(at(cj, "payload"), "sub"), "judy");
  // The SSE id is the event id plus the node that streamed it.
  CAF_CHECK_EQUAL(created.id.substr(0, created.id.find('@')),
                  at(cj, "id").get<std::string>());
  CAF_REQUIRE_EQUAL(call("DELETE", "/api/sessions/" + sid).result_int(), 200u);
  CAF_REQUIRE_EQUAL(call("POST", "/api/revocations",
                         json{{"jti", "j-1"}, {"reason", "leaked"}}.dump())
                      .result_int(),
                    200u);
  CAF_REQUIRE(stream.wait_until([&](auto&) {
    return stream.of("revocations").size() == 2;
  }));
  auto revocations = stream.of("revocations");
  auto first = at(revocations[0].json(), "payload");
  CAF_CHECK_EQUAL(at(first, "type"), "sid");
  CAF_CHECK_EQUAL(at(first, "value"), sid);
  auto second = at(revocations[1].json(), "payload");
  CAF_CHECK_EQUAL(at(second, "value"), "j-1");
  CAF_CHECK_EQUAL(at(second, "reason"), "leaked");
  CAF_CHECK(stream.wait_until([&](auto&) {
    for (auto& e : stream.of("sessions"))
      if (at(at(e.json(), "payload"), "type") == "revoked")
        return true;
    return false;
  }));
  // Resume after the first revocation: only what followed it, on a stream
  // of revocations alone.
  event_stream resumed{port, "/api/events?topics=revocations",
                       bearer() + "Last-Event-ID: " + revocations[0].id
                         + "\r\n"};
  CAF_REQUIRE(resumed.wait_until([](auto& events) { return !events.empty(); }));
  CAF_CHECK_EQUAL(resumed.events.at(0).id, revocations[1].id);
  CAF_CHECK(!resumed.wait_until([](auto& events) { return events.size() > 1; },
                                std::chrono::milliseconds{300}));
  // An id this node never saw: a gap event, then everything retained.
  event_stream unknown{port, "/api/events?topics=revocations&last_event_id=x.1.1",
                       bearer()};
  CAF_REQUIRE(unknown.wait_until([](auto& events) { return events.size() >= 3; }));
  CAF_CHECK_EQUAL(unknown.events.at(0).event, "gap");
  CAF_CHECK_EQUAL(unknown.events.at(1).id, revocations[0].id);
  // A graceful stop ends every stream.
  CAF_REQUIRE_EQUAL(proc->stop(SIGTERM), 0);
  CAF_CHECK(stream.closed_within(std::chrono::seconds{2}));
  start();
}

CAF_TEST(sessions_and_tombstones_survive_a_graceful_restart) {
  auto kept = create({{"sub", "dave"}, {"attributes", {{"a", "b"}}}});
  auto sid = kept["sid"].get<std::string>();
  auto gone = create({{"sub", "erin"}})["sid"].get<std::string>();
  CAF_REQUIRE_EQUAL(call("DELETE", "/api/sessions/" + gone).result_int(), 200u);
  CAF_REQUIRE_EQUAL(proc->stop(SIGTERM), 0);
  start();
  auto got = call("GET", "/api/sessions/" + sid);
  CAF_REQUIRE_EQUAL(got.result_int(), 200u);
  CAF_CHECK_EQUAL(at(json::parse(got.body()), "attributes"),
                  (json{{"a", "b"}}));
  CAF_CHECK_EQUAL(status_of(gone), 404u);
  auto metrics = request(port, "GET", "/metrics").body();
  CAF_CHECK(metrics.find("keymesh_state_records{keyspace=\"sessions\"}")
            != std::string::npos);
}

CAF_TEST_FIXTURE_SCOPE_END()
