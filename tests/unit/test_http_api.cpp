// The HTTP API without sockets: requests go straight into http::api, replies
// come back through the responder, with real actors behind the bridge.
#define CAF_SUITE http_api
#include "caf/test/unit_test.hpp"

#include <fstream>
#include <future>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <nlohmann/json.hpp>

#include "actors/federation.hpp"
#include "actors/keystore.hpp"
#include "common/digest.hpp"
#include "common/text.hpp"
#include "http/api.hpp"
#include "support/temp_dir.hpp"

using namespace keymesh;
using namespace keymesh::http;
using nlohmann::json;

namespace {

/// A copy of J[KEY] (CAF's check macros keep references to temporaries).
json at(const json& j, const char* key) {
  return j.contains(key) ? j.at(key) : json{};
}

constexpr const char* admin_key = "test-admin-key-0123456789";
constexpr const char* hashed_admin_key = "second-admin-key-abcdefghij";

struct fixture {
  test::temp_dir dir;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<key_snapshot_slot> slot
    = std::make_shared<key_snapshot_slot>();
  federation_actor fed;
  keystore_actor ks;
  std::unique_ptr<bridge_pool> bridge;
  std::shared_ptr<node_status> status = std::make_shared<node_status>();
  std::unique_ptr<api> handler;

  explicit fixture(std::string issuer = "https://issuer.test") {
    add_message_types(cfg);
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    config::settings settings;
    settings.keys.issuer = std::move(issuer);
    settings.keys.max_token_ttl = std::chrono::seconds{600};
    settings.keys.default_token_ttl = std::chrono::seconds{60};
    fed = spawn_federation(*sys, "node-a", slot);
    auto opts = keystore_options::from_settings(settings, "node-a");
    CAF_REQUIRE(opts);
    ks = *spawn_keystore(*sys, *opts, fed);
    for (int i = 0; i < 5000 && !slot->load(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    CAF_REQUIRE(slot->load() != nullptr);
    {
      std::ofstream out{dir.file("admin.keys")};
      out << "# comment\n\n" << admin_key << "\nsha256:"
          << to_hex(sha256(hashed_admin_key)) << "\n";
    }
    bridge = std::make_unique<bridge_pool>(*sys, 1);
    status->instance_id = "node-a";
    status->http_listening = true;
    api_context ctx;
    ctx.settings = settings;
    ctx.keystore = ks;
    ctx.keys = slot;
    ctx.admin = std::make_shared<admin_auth>(
      admin_auth::load(dir.file("admin.keys")));
    ctx.status = status;
    ctx.bridge = bridge.get();
    handler = std::make_unique<api>(std::move(ctx));
  }

  ~fixture() {
    bridge->stop();
    caf::anon_send_exit(ks, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(fed, caf::exit_reason::user_shutdown);
  }

  response call(request req) {
    std::promise<response> p;
    auto f = p.get_future();
    handler->handle(std::move(req),
                    [&p](response res) { p.set_value(std::move(res)); });
    CAF_REQUIRE(f.wait_for(std::chrono::seconds{10})
                == std::future_status::ready);
    return f.get();
  }

  response get(std::string target, std::string if_none_match = {}) {
    request req{bhttp::verb::get, target, 11};
    if (!if_none_match.empty())
      req.set(bhttp::field::if_none_match, if_none_match);
    return call(std::move(req));
  }

  response post(std::string target, std::string body,
                std::string authorization = {},
                std::string content_type = "application/json") {
    request req{bhttp::verb::post, target, 11};
    if (!content_type.empty())
      req.set(bhttp::field::content_type, content_type);
    if (!authorization.empty())
      req.set(bhttp::field::authorization, authorization);
    req.body() = std::move(body);
    req.prepare_payload();
    return call(std::move(req));
  }

  std::string bearer() const {
    return std::string{"Bearer "} + admin_key;
  }

  static json body_of(const response& res) {
    return json::parse(res.body());
  }

  static std::string error_of(const response& res) {
    auto j = body_of(res);
    CAF_CHECK(j.contains("error_description"));
    return j.value("error", "");
  }

  std::string issue(json body) {
    auto res = post("/api/tokens", body.dump(), bearer());
    CAF_REQUIRE_EQUAL(res.result_int(), 201u);
    return at(body_of(res), "token").get<std::string>();
  }

  json verify(const std::string& token) {
    auto res = post("/api/verify", json{{"token", token}}.dump());
    CAF_REQUIRE_EQUAL(res.result_int(), 200u);
    return body_of(res);
  }
};

/// A node with keys.issuer unset.
struct default_issuer_fixture : fixture {
  default_issuer_fixture() : fixture("") {
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(http_api_default_issuer_tests, default_issuer_fixture)

CAF_TEST(without_keys_issuer_tokens_carry_the_clusters_own) {
  // Relying-party libraries that require an issuer can check one.
  auto v = verify(issue({{"sub", "alice"}}));
  CAF_CHECK_EQUAL(v["active"], true);
  CAF_CHECK_EQUAL(v["claims"]["iss"], "urn:keymesh:keymesh");
}

CAF_TEST(a_cluster_key_token_with_another_issuer_is_refused) {
  // A keystore of this node that was told another issuer (a node of this
  // cluster configured differently would be refused at the handshake; the
  // check here is the last line): its tokens do not verify.
  config::settings other;
  other.keys.issuer = "https://elsewhere.test";
  auto opts = keystore_options::from_settings(other, "node-a");
  CAF_REQUIRE(opts);
  opts->first_sequence = 100; // kids of its own
  auto stray = *spawn_keystore(*sys, *opts, fed);
  caf::scoped_actor self{*sys};
  std::string token;
  for (int i = 0; i < 100 && token.empty(); ++i)
    self->request(stray, std::chrono::seconds{5}, atom::sign_v,
                  token_request{"mallory", {}, 60, {}})
      .receive([&](signed_token& t) { token = t.token; },
               [&](caf::error&) {
                 std::this_thread::sleep_for(std::chrono::milliseconds{10});
               });
  CAF_REQUIRE(!token.empty());
  for (int i = 0; i < 500 && verify(token)["reason"] == "unknown_kid"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  auto v = verify(token);
  CAF_CHECK_EQUAL(v["active"], false);
  CAF_CHECK_EQUAL(v["reason"], "wrong_issuer");
  caf::anon_send_exit(stray, caf::exit_reason::user_shutdown);
}

CAF_TEST(discovery_names_the_keys_under_the_address_asked) {
  auto with_host = [&](std::string path, std::string host) {
    request req{bhttp::verb::get, path, 11};
    if (!host.empty())
      req.set(bhttp::field::host, host);
    return call(std::move(req));
  };
  for (auto path : {"/.well-known/openid-configuration",
                    "/.well-known/oauth-authorization-server"}) {
    auto res = with_host(path, "127.0.0.1:8080");
    CAF_REQUIRE_EQUAL(res.result_int(), 200u);
    auto meta = body_of(res);
    CAF_CHECK_EQUAL(meta["issuer"], "urn:keymesh:keymesh");
    CAF_CHECK_EQUAL(meta["jwks_uri"],
                    "http://127.0.0.1:8080/.well-known/jwks.json");
    CAF_CHECK_EQUAL(meta["id_token_signing_alg_values_supported"],
                    json::array({"ES256"}));
    // Without a usable Host there is no URL to give.
    CAF_CHECK_EQUAL(with_host(path, "").result_int(), 400u);
    CAF_CHECK_EQUAL(with_host(path, "evil.test/x?").result_int(), 400u);
  }
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST_FIXTURE_SCOPE(http_api_tests, fixture)

CAF_TEST(jwks_is_served_with_etag_and_cache_control) {
  auto res = get("/api/pkeys");
  CAF_REQUIRE_EQUAL(res.result_int(), 200u);
  auto jwks = body_of(res);
  CAF_REQUIRE_EQUAL(jwks["keys"].size(), 2u);
  for (auto& k : jwks["keys"]) {
    CAF_CHECK_EQUAL(k["kty"], "EC");
    CAF_CHECK_EQUAL(k["crv"], "P-256");
    CAF_CHECK_EQUAL(k["use"], "sig");
    CAF_CHECK_EQUAL(k["alg"], "ES256");
    CAF_CHECK(k.contains("x") && k.contains("y") && k.contains("kid"));
    CAF_CHECK(!k.contains("d"));
  }
  auto etag = std::string{res[bhttp::field::etag]};
  CAF_CHECK(etag.size() > 2 && etag.front() == '"');
  auto cc = std::string{res[bhttp::field::cache_control]};
  CAF_CHECK(cc.find("max-age=300") != std::string::npos);
  auto well_known = get("/.well-known/jwks.json");
  CAF_CHECK_EQUAL(well_known.body(), res.body());
  auto not_modified = get("/api/pkeys", etag);
  CAF_CHECK_EQUAL(not_modified.result_int(), 304u);
  CAF_CHECK(not_modified.body().empty());
  CAF_CHECK_EQUAL(get("/api/pkeys", "\"other\", W/" + etag).result_int(),
                  304u);
  CAF_CHECK_EQUAL(get("/api/pkeys", "\"other\"").result_int(), 200u);
  auto local = get("/api/pkeys?local=true");
  CAF_CHECK_EQUAL(at(body_of(local), "keys").size(), 2u);
}

CAF_TEST(discovery_names_the_issuer_and_the_keys_under_it) {
  auto res = get("/.well-known/openid-configuration");
  CAF_REQUIRE_EQUAL(res.result_int(), 200u);
  auto meta = body_of(res);
  CAF_CHECK_EQUAL(meta["issuer"], "https://issuer.test");
  CAF_CHECK_EQUAL(meta["jwks_uri"], "https://issuer.test/.well-known/jwks.json");
  auto oauth = get("/.well-known/oauth-authorization-server");
  CAF_CHECK_EQUAL(oauth.body(), res.body());
}

CAF_TEST(issued_tokens_verify) {
  auto token = issue({{"sub", "alice"},
                      {"aud", "api"},
                      {"ttl", 120},
                      {"claims", {{"role", "admin"}}}});
  auto v = verify(token);
  CAF_CHECK_EQUAL(v["active"], true);
  CAF_CHECK_EQUAL(v["claims"]["sub"], "alice");
  CAF_CHECK_EQUAL(v["claims"]["aud"], "api");
  CAF_CHECK_EQUAL(v["claims"]["role"], "admin");
  CAF_CHECK_EQUAL(v["claims"]["iss"], "https://issuer.test");
  CAF_CHECK(v["kid"].get<std::string>().rfind("node-a-", 0) == 0);
  // The same through Authorization: Bearer.
  auto res = post("/api/verify", "", "Bearer " + token, "");
  CAF_MESSAGE("bearer verify: " << res.body());
  CAF_CHECK_EQUAL(at(body_of(res), "active"), true);
}

CAF_TEST(token_ttl_is_capped_by_max_token_ttl) {
  auto res = post("/api/tokens", R"({"sub":"bob","ttl":999999})", bearer());
  CAF_REQUIRE_EQUAL(res.result_int(), 201u);
  auto out = body_of(res);
  auto v = verify(out["token"]);
  CAF_CHECK_EQUAL(v["claims"]["exp"].get<int64_t>()
                    - v["claims"]["iat"].get<int64_t>(),
                  600);
  CAF_CHECK_EQUAL(out["expires_at"], v["claims"]["exp"]);
  CAF_CHECK_EQUAL(std::string{res[bhttp::field::cache_control]}, "no-store");
}

CAF_TEST(admin_endpoints_need_a_valid_bearer_key) {
  auto body = R"({"sub":"carol"})";
  auto missing = post("/api/tokens", body);
  CAF_CHECK_EQUAL(missing.result_int(), 401u);
  CAF_CHECK_EQUAL(error_of(missing), "unauthorized");
  CAF_CHECK(missing.find(bhttp::field::www_authenticate) != missing.end());
  CAF_CHECK_EQUAL(post("/api/tokens", body, "Basic abc").result_int(), 401u);
  auto wrong = post("/api/tokens", body, "Bearer not-the-admin-key-at-all");
  CAF_CHECK_EQUAL(wrong.result_int(), 403u);
  CAF_CHECK_EQUAL(error_of(wrong), "forbidden");
  // A key listed by its SHA-256 works too; the scheme is case-insensitive.
  CAF_CHECK_EQUAL(post("/api/tokens", body,
                       std::string{"bearer "} + hashed_admin_key)
                    .result_int(),
                  201u);
}

CAF_TEST(bad_token_requests_get_clear_errors) {
  auto b = bearer();
  auto check_400 = [&](const std::string& body, const std::string& needle) {
    auto res = post("/api/tokens", body, b);
    CAF_CHECK_EQUAL(res.result_int(), 400u);
    CAF_CHECK_EQUAL(error_of(res), "invalid_request");
    auto text = at(body_of(res), "error_description").get<std::string>();
    CAF_MESSAGE("body " << body << " -> " << text);
    CAF_CHECK(text.find(needle) != std::string::npos);
  };
  check_400("{not json", "not valid JSON");
  check_400("[1,2]", "JSON object");
  check_400("{}", "\"sub\" is required");
  check_400(R"({"sub":""})", "\"sub\" is required");
  check_400(R"({"sub":7})", "\"sub\" is required");
  check_400(R"({"sub":")" + std::string(300, 'x') + "\"}", "1 to 256");
  check_400(R"({"sub":"a","ttl":-5})", "\"ttl\"");
  check_400(R"({"sub":"a","ttl":1.5})", "\"ttl\"");
  check_400(R"({"sub":"a","ttl":"60"})", "\"ttl\"");
  check_400(R"({"sub":"a","aud":[]})", "\"aud\"");
  check_400(R"({"sub":"a","aud":[1]})", "\"aud\"");
  check_400(R"({"sub":"a","claims":{"exp":1}})", "registered claim \"exp\"");
  check_400(R"({"sub":"a","claims":[]})", "\"claims\" must be");
  check_400(R"({"sub":"a","claims":{"big":")" + std::string(9000, 'x')
              + "\"}}",
            "8 KiB");
  check_400(R"({"sub":"a","subject":"b"})", "unknown member \"subject\"");
  // Nesting that would exhaust a recursive parser or serialiser, and a member
  // given twice, are refused, never crash the node.
  check_400(R"({"sub":"a","claims":{"x":)" + std::string(100000, '[')
              + std::string(100000, ']') + "}}",
            "deeper than 32 levels");
  check_400(R"({"sub":"a","sub":"b"})", "repeats a member");
  auto wrong_type = post("/api/tokens", R"({"sub":"a"})", b, "text/plain");
  CAF_CHECK_EQUAL(wrong_type.result_int(), 415u);
  CAF_CHECK_EQUAL(error_of(wrong_type), "unsupported_media_type");
  auto with_charset = post("/api/tokens", R"({"sub":"a"})", b,
                           "Application/JSON; charset=utf-8");
  CAF_CHECK_EQUAL(with_charset.result_int(), 201u);
}

CAF_TEST(rotation_on_request_switches_the_signing_key) {
  auto before = post("/api/tokens", R"({"sub":"r"})", bearer());
  auto before_kid = at(body_of(before), "kid").get<std::string>();
  auto rotated = post("/api/keys/rotate", "", bearer(), "");
  CAF_REQUIRE_EQUAL(rotated.result_int(), 200u);
  auto kids = body_of(rotated);
  CAF_CHECK(kids["signing_kid"] != before_kid);
  auto after = post("/api/tokens", R"({"sub":"r"})", bearer());
  CAF_CHECK_EQUAL(at(body_of(after), "kid"), kids["signing_kid"]);
  // Both generations verify; the new next key is published.
  CAF_CHECK_EQUAL(at(verify(at(body_of(before), "token")), "active"), true);
  CAF_CHECK_EQUAL(at(verify(at(body_of(after), "token")), "active"), true);
  auto jwks = get("/api/pkeys");
  CAF_CHECK(jwks.body().find(kids["next_kid"].get<std::string>())
            != std::string::npos);
  CAF_CHECK_EQUAL(post("/api/keys/rotate", "", "", "").result_int(), 401u);
}

CAF_TEST(verify_reports_why_a_token_is_inactive) {
  auto token = issue({{"sub", "dave"}});
  auto forged = token;
  forged[forged.size() - 5] = forged[forged.size() - 5] == 'A' ? 'B' : 'A';
  CAF_CHECK_EQUAL(at(verify(forged), "reason"), "bad_signature");
  CAF_CHECK_EQUAL(at(verify(forged), "active"), false);
  CAF_CHECK_EQUAL(at(verify(token.substr(0, token.size() / 2)), "reason"),
                  "malformed");
  CAF_CHECK_EQUAL(at(verify("garbage"), "reason"), "malformed");
  CAF_CHECK_EQUAL(at(verify(std::string(20000, 'a')), "reason"), "malformed");
  auto missing = post("/api/verify", "{}");
  CAF_CHECK_EQUAL(missing.result_int(), 400u);
  auto none = post("/api/verify", "", "", "");
  CAF_CHECK_EQUAL(none.result_int(), 400u);
  CAF_CHECK_EQUAL(post("/api/verify", R"({"token":5})").result_int(), 400u);
}

CAF_TEST(unknown_paths_and_methods) {
  auto res = get("/api/nothing");
  CAF_CHECK_EQUAL(res.result_int(), 404u);
  CAF_CHECK_EQUAL(error_of(res), "not_found");
  request del{bhttp::verb::delete_, "/api/pkeys", 11};
  auto not_allowed = call(std::move(del));
  CAF_CHECK_EQUAL(not_allowed.result_int(), 405u);
  CAF_CHECK_EQUAL(std::string{not_allowed[bhttp::field::allow]}, "GET, HEAD");
  CAF_CHECK_EQUAL(error_of(not_allowed), "method_not_allowed");
  auto get_tokens = get("/api/tokens");
  CAF_CHECK_EQUAL(get_tokens.result_int(), 405u);
  CAF_CHECK_EQUAL(std::string{get_tokens[bhttp::field::allow]}, "POST");
}

CAF_TEST(path_parameters_must_be_clean_text) {
  // Found by fuzz_http: a subject that is not UTF-8 reached a JSON answer,
  // whose dump threw inside the bridge actor, and the request was never
  // answered. Such a parameter is refused before any handler runs.
  for (auto target : {"/api/subjects/bob%D3/sessions",
                      "/api/subjects/%FF%FE/sessions",
                      "/api/subjects/a%0Ab/sessions",
                      "/api/subjects/%C0%AF/sessions",
                      "/api/subjects/%ED%A0%80/sessions"}) {
    request req{bhttp::verb::get, target, 11};
    req.set(bhttp::field::authorization, bearer());
    auto res = call(std::move(req));
    CAF_CHECK_EQUAL(res.result_int(), 400u);
    CAF_CHECK(res.body().find("UTF-8") != std::string::npos);
  }
  CAF_CHECK(keymesh::is_clean_text("alice"));
  CAF_CHECK(keymesh::is_clean_text("j\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x94\x91"));
  CAF_CHECK(!keymesh::is_clean_text("\xf4\x90\x80\x80")); // > U+10FFFF
  CAF_CHECK(!keymesh::is_clean_text("\xe2\x82"));          // truncated
  CAF_CHECK(!keymesh::is_clean_text(std::string("a\0b", 3)));
}

CAF_TEST(health_reflects_readiness) {
  CAF_CHECK_EQUAL(get("/healthz/live").result_int(), 200u);
  auto ready = get("/healthz/ready");
  CAF_CHECK_EQUAL(ready.result_int(), 200u);
  CAF_CHECK_EQUAL(at(body_of(ready), "status"), "ready");
  status->http_listening = false;
  auto starting = get("/healthz/ready");
  CAF_CHECK_EQUAL(starting.result_int(), 503u);
  CAF_CHECK_EQUAL(at(at(body_of(starting), "checks"), "http"), false);
  status->http_listening = true;
  status->stopping = true;
  CAF_CHECK_EQUAL(get("/healthz/ready").result_int(), 503u);
}

CAF_TEST(metrics_count_requests_tokens_and_keys) {
  issue({{"sub", "erin"}});
  verify("garbage");
  get("/api/nothing");
  auto res = get("/metrics");
  CAF_REQUIRE_EQUAL(res.result_int(), 200u);
  auto text = res.body();
  CAF_CHECK(text.find("keymesh_http_requests_total{route=\"POST /api/tokens\","
                      "status=\"201\"} 1")
            != std::string::npos);
  CAF_CHECK(text.find("keymesh_http_requests_total{route=\"unmatched\","
                      "status=\"404\"} 1")
            != std::string::npos);
  CAF_CHECK(text.find("keymesh_tokens_signed_total{result=\"ok\"} 1")
            != std::string::npos);
  CAF_CHECK(text.find("keymesh_tokens_verified_total{result=\"malformed\"} 1")
            != std::string::npos);
  CAF_CHECK(text.find("keymesh_keys_published{origin=\"local\"} 2")
            != std::string::npos);
  CAF_CHECK(text.find("keymesh_http_request_duration_seconds_bucket{route="
                      "\"POST /api/verify\",le=\"+Inf\"} 1")
            != std::string::npos);
  CAF_CHECK(text.find("keymesh_uptime_seconds ") != std::string::npos);
}

CAF_TEST(metrics_show_readiness_members_and_revocations) {
  auto before = get("/metrics").body();
  CAF_CHECK(before.find("keymesh_ready 1\n") != std::string::npos);
  CAF_CHECK(before.find("keymesh_ready_check{check=\"http\"} 1\n")
            != std::string::npos);
  // No membership board: a single node writes no member series.
  CAF_CHECK(before.find("keymesh_cluster_members") == std::string::npos);
  CAF_CHECK(before.find("keymesh_revocations_total{kind=\"sub\","
                        "outcome=\"partial\"} 0\n")
            != std::string::npos);
  CAF_CHECK(before.find("keymesh_http_refused_total{reason=\"overloaded\"} 0\n")
            != std::string::npos);
  status->http_listening = false;
  status->members = std::make_shared<keymesh::member_board>();
  status->members->publish({{"node-2", "up"}, {"node-3", "suspect"},
                            {"no\"de-4", "down"}});
  // Known from an earlier run and not linked since: down.
  status->members->set_known({"node-3", "node-9"});
  status->revocations->counts[2][1] += 3; // sub, partial
  auto after = get("/metrics").body();
  status->http_listening = true;
  CAF_CHECK(after.find("keymesh_ready 0\n") != std::string::npos);
  CAF_CHECK(after.find("keymesh_ready_check{check=\"http\"} 0\n")
            != std::string::npos);
  CAF_CHECK(after.find("keymesh_ready_check{check=\"keys\"} 1\n")
            != std::string::npos);
  for (auto* line : {"keymesh_cluster_members{state=\"up\"} 1\n",
                     "keymesh_cluster_members{state=\"suspect\"} 1\n",
                     "keymesh_cluster_members{state=\"down\"} 2\n",
                     "keymesh_cluster_member_up{member=\"node-9\"} 0\n",
                     "keymesh_cluster_member_up{member=\"node-2\"} 1\n",
                     "keymesh_cluster_member_up{member=\"node-3\"} 0\n",
                     "keymesh_cluster_member_up{member=\"no\\\"de-4\"} 0\n",
                     "keymesh_revocations_total{kind=\"sub\","
                     "outcome=\"partial\"} 3\n"})
    if (after.find(line) == std::string::npos)
      CAF_FAIL("missing in /metrics: " << line);
}

CAF_TEST(the_openapi_document_is_served_as_json) {
  auto res = get("/api/openapi.json");
  CAF_REQUIRE_EQUAL(res.result_int(), 200u);
  CAF_CHECK_EQUAL(std::string{res[bhttp::field::content_type]},
                  "application/json");
  auto doc = body_of(res);
  auto version = at(doc, "openapi").get<std::string>();
  CAF_CHECK_EQUAL(version.rfind("3.1", 0), 0u);
  // It documents itself, and the routes of this test.
  auto paths = at(doc, "paths");
  for (auto* path : {"/api/openapi.json", "/api/pkeys", "/api/verify",
                     "/metrics", "/api/sessions/{sid}"})
    if (!paths.contains(path))
      CAF_FAIL("not documented: " << path);
}

CAF_TEST(max_age_never_outlasts_the_next_change_of_the_key_set) {
  auto fixed_now = std::chrono::system_clock::now();
  auto near = std::make_shared<key_snapshot_slot>();
  auto snap = std::make_shared<key_snapshot>();
  snap->jwks = R"({"keys":[]})";
  snap->etag = "\"near\"";
  snap->next_change = fixed_now + std::chrono::seconds{42};
  near->store(snap);
  api_context ctx;
  ctx.keys = near;
  ctx.status = status;
  ctx.clock = [fixed_now] { return fixed_now; };
  api local{std::move(ctx)};
  std::promise<response> p;
  local.handle(request{bhttp::verb::get, "/api/pkeys", 11},
               [&p](response res) { p.set_value(std::move(res)); });
  auto res = p.get_future().get();
  CAF_CHECK_EQUAL(std::string{res[bhttp::field::cache_control]},
                  "public, max-age=42");
}

CAF_TEST(query_parameters_are_decoded) {
  CAF_CHECK_EQUAL(query_param("/x?local=true", "local").value_or(""), "true");
  CAF_CHECK_EQUAL(query_param("/x?a=1&lo%63al=t%72ue", "local").value_or(""),
                  "true");
  CAF_CHECK(!query_param("/x?a=1", "local"));
  CAF_CHECK(!query_param("/x", "local"));
}

CAF_TEST_FIXTURE_SCOPE_END()
