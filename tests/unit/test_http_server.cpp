// The Beast server in-process, on a loopback port, so that it also runs under
// AddressSanitizer: chunked bodies, early refusal, 100-continue, connection
// limits, the bridge timeout, and a stop while a reply is still on its way.
#define CAF_SUITE http_server
#include "caf/test/unit_test.hpp"

#include <fstream>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <nlohmann/json.hpp>

#include "actors/federation.hpp"
#include "actors/keystore.hpp"
#include "actors/error.hpp"
#include "common/digest.hpp"
#include "http/server.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

using namespace keymesh;
using nlohmann::json;

namespace {

constexpr const char* admin_key = "server-test-admin-key-0123";

/// A keystore that takes sign requests and answers them only when told to
/// (a tick).
struct silent_state {
  static inline const char* name = "silent_keystore";
  std::vector<caf::typed_response_promise<signed_token>> pending;
};

// (The unused argument avoids CAF 0.17.6's null dereference when spawning a
// function without arguments.)
keystore_actor::behavior_type
silent_keystore(keystore_actor::stateful_pointer<silent_state> self, int) {
  return {
    [=](atom::sign, const token_request&) -> caf::result<signed_token> {
      auto rp = self->make_response_promise<signed_token>();
      self->state.pending.push_back(rp);
      return rp;
    },
    [=](atom::get, atom::keys) { return key_announcement{}; },
    [=](atom::rotate) -> caf::result<std::string, std::string> {
      return make_error(ec::invalid_argument, "silent keystore");
    },
    [=](atom::tick, uint64_t) {
      for (auto& rp : self->state.pending)
        rp.deliver(signed_token{"late.token.here", "late", 0});
      self->state.pending.clear();
    },
  };
}

struct fixture {
  test::temp_dir dir;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<key_snapshot_slot> slot
    = std::make_shared<key_snapshot_slot>();
  federation_actor fed;
  keystore_actor ks;
  std::unique_ptr<http::bridge_pool> bridge;
  std::unique_ptr<http::api> handler;
  std::unique_ptr<http::server> server;
  uint16_t port = 0;

  fixture() {
    add_message_types(cfg);
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    fed = spawn_federation(*sys, "node-s", slot);
  }

  // Starts the server with a real keystore, or a silent one.
  void start(bool silent, http::server_limits limits = {},
             std::chrono::milliseconds request_timeout
             = std::chrono::seconds{5}) {
    config::settings settings;
    settings.http.request_timeout = request_timeout;
    if (silent) {
      ks = sys->spawn(silent_keystore, 0);
    } else {
      auto opts = keystore_options::from_settings(settings, "node-s");
      ks = *spawn_keystore(*sys, *opts, fed);
    }
    for (int i = 0; i < 5000 && !slot->load(); ++i) {
      if (silent) // nothing announces: publish an empty set
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    }
    {
      std::ofstream out{dir.file("admin.keys")};
      out << admin_key << "\n";
    }
    bridge = std::make_unique<http::bridge_pool>(*sys, 1);
    http::api_context ctx;
    ctx.settings = settings;
    ctx.keystore = ks;
    ctx.keys = slot;
    ctx.admin = std::make_shared<http::admin_auth>(
      http::admin_auth::load(dir.file("admin.keys")));
    ctx.status = std::make_shared<node_status>();
    ctx.status->http_listening = true;
    ctx.bridge = bridge.get();
    handler = std::make_unique<http::api>(std::move(ctx));
    limits.response_timeout = request_timeout;
    server = std::make_unique<http::server>(*handler, limits, 2);
    port = server->listen("127.0.0.1", 0);
    server->start();
  }

  ~fixture() {
    if (server)
      server->stop();
    server.reset();
    if (bridge)
      bridge->stop();
    caf::anon_send_exit(ks, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(fed, caf::exit_reason::user_shutdown);
  }

  std::string bearer() const {
    return std::string{"Authorization: Bearer "} + admin_key + "\r\n";
  }

  std::string issue() {
    auto res = test::request(port, "POST", "/api/tokens", R"({"sub":"s"})",
                             bearer());
    CAF_REQUIRE_EQUAL(res.result_int(), 201u);
    return json::parse(res.body())["token"].get<std::string>();
  }
};

std::string chunked(const std::string& body, size_t piece) {
  std::string out;
  for (size_t i = 0; i < body.size(); i += piece) {
    auto part = body.substr(i, piece);
    char size[32];
    std::snprintf(size, sizeof(size), "%zx\r\n", part.size());
    out += size + part + "\r\n";
  }
  return out + "0\r\n\r\n";
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(http_server_tests, fixture)

CAF_TEST(chunked_bodies_are_read_and_limited) {
  start(false);
  auto token = issue();
  auto body = json{{"token", token}}.dump();
  test::connection c{port};
  c.send_raw("POST /api/verify HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: application/json\r\n"
             "Transfer-Encoding: chunked\r\n\r\n"
             + chunked(body, 50));
  auto res = c.read_response();
  CAF_CHECK_EQUAL(res.result_int(), 200u);
  auto verdict = json::parse(res.body());
  CAF_CHECK_EQUAL(verdict["active"], true);
  // The same, over the route's 64 KiB limit.
  test::connection big{port};
  big.send_raw("POST /api/verify HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n"
               + chunked(std::string(70 * 1024, 'x'), 4096));
  CAF_CHECK_EQUAL(big.read_response().result_int(), 413u);
}

CAF_TEST(endless_chunk_extensions_and_trailers_are_refused) {
  start(false);
  {
    test::connection c{port};
    c.send_raw("POST /api/verify HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n5;ext="
               + std::string(200 * 1024, 'a'));
    auto res = c.read_response();
    CAF_CHECK_EQUAL(res.result_int(), 400u);
  }
  {
    std::string trailers;
    for (int i = 0; i < 120; ++i)
      trailers += "X-T" + std::to_string(i) + ": v\r\n";
    test::connection c{port};
    c.send_raw("POST /api/verify HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
               + trailers + "\r\n");
    CAF_CHECK_EQUAL(c.read_response().result_int(), 431u);
  }
  CAF_CHECK_EQUAL(test::request(port, "GET", "/healthz/live").result_int(),
                  200u);
}

CAF_TEST(refusals_come_before_the_body_is_read) {
  start(false);
  test::connection c{port};
  // Announces a 900 KB body but sends none: the missing admin key is
  // answered at once.
  c.send_raw("POST /api/tokens HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: application/json\r\nContent-Length: 900000\r\n\r\n");
  auto res = c.read_response(std::chrono::seconds{3});
  CAF_CHECK_EQUAL(res.result_int(), 401u);
  // A body over the route's limit is refused by its Content-Length alone.
  test::connection d{port};
  d.send_raw("POST /api/verify HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: application/json\r\nContent-Length: 900000\r\n\r\n");
  CAF_CHECK_EQUAL(d.read_response(std::chrono::seconds{3}).result_int(), 413u);
  // GET takes no body.
  test::connection e{port};
  e.send_raw("GET /healthz/live HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
             "\r\n0123456789");
  CAF_CHECK_EQUAL(e.read_response().result_int(), 413u);
}

CAF_TEST(expect_100_continue_is_honoured) {
  start(false);
  auto body = json{{"token", issue()}}.dump();
  test::connection c{port};
  c.send_raw("POST /api/verify HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: application/json\r\nExpect: 100-continue\r\n"
             "Content-Length: "
             + std::to_string(body.size()) + "\r\n\r\n");
  auto interim = c.read_response(std::chrono::seconds{3});
  CAF_CHECK_EQUAL(interim.result_int(), 100u);
  c.send_raw(body);
  auto res = c.read_response();
  CAF_CHECK_EQUAL(res.result_int(), 200u);
}

CAF_TEST(not_modified_has_no_content_length) {
  start(false);
  auto res = test::request(port, "GET", "/api/pkeys");
  auto etag = std::string{res[test::bhttp::field::etag]};
  test::connection c{port};
  c.send_raw("GET /api/pkeys HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + etag
             + "\r\n\r\n");
  auto cached = c.read_response();
  CAF_CHECK_EQUAL(cached.result_int(), 304u);
  CAF_CHECK(cached.find(test::bhttp::field::content_length) == cached.end());
  // The connection goes on.
  c.send_raw(test::make_request("GET", "/healthz/live"));
  CAF_CHECK_EQUAL(c.read_response().result_int(), 200u);
}

CAF_TEST(connections_over_the_limit_are_closed) {
  http::server_limits limits;
  limits.max_connections = 2;
  start(false, limits);
  test::connection a{port};
  test::connection b{port};
  a.send_raw(test::make_request("GET", "/healthz/live"));
  b.send_raw(test::make_request("GET", "/healthz/live"));
  CAF_CHECK_EQUAL(a.read_response().result_int(), 200u);
  CAF_CHECK_EQUAL(b.read_response().result_int(), 200u);
  test::connection third{port};
  CAF_CHECK(third.wait_closed(std::chrono::seconds{3}));
  // Counted as back-pressure (read on a connection of the two).
  a.send_raw(test::make_request("GET", "/metrics"));
  auto metrics = a.read_response().body();
  CAF_CHECK(metrics.find("keymesh_http_refused_total{reason=\"connections\"} 1\n")
            != std::string::npos);
}

CAF_TEST(a_silent_actor_gets_a_504_after_the_request_timeout) {
  start(true, {}, std::chrono::milliseconds{300});
  auto started = std::chrono::steady_clock::now();
  auto res = test::request(port, "POST", "/api/tokens", R"({"sub":"x"})",
                           bearer());
  CAF_CHECK_EQUAL(res.result_int(), 504u);
  CAF_CHECK(std::chrono::steady_clock::now() - started
            >= std::chrono::milliseconds{250});
}

CAF_TEST(stopping_with_a_reply_in_flight_is_safe) {
  start(true, {}, std::chrono::milliseconds{400});
  test::connection c{port};
  c.send_raw(test::make_request("POST", "/api/tokens", R"({"sub":"x"})",
                                bearer()));
  std::this_thread::sleep_for(std::chrono::milliseconds{50});
  // The request waits on the silent keystore; stop and destroy the server.
  server->stop();
  server.reset();
  CAF_CHECK(c.wait_closed(std::chrono::seconds{3}));
  // The keystore answers after the server is gone; the late reply must be
  // dropped without touching freed memory (ASan watches this test).
  caf::anon_send(ks, atom::tick_v, uint64_t{1});
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  handler.reset();
}

CAF_TEST(a_late_answer_after_the_deadline_is_dropped) {
  start(true, {}, std::chrono::milliseconds{300});
  test::connection c{port};
  c.send_raw(test::make_request("POST", "/api/tokens", R"({"sub":"x"})",
                                bearer()));
  auto timed_out = c.read_response();
  CAF_CHECK_EQUAL(timed_out.result_int(), 504u);
  CAF_CHECK(timed_out.body().find("http.request_timeout (300 ms)")
            != std::string::npos);
  // Now the keystore answers: too late, the answer must go nowhere.
  caf::anon_send(ks, atom::tick_v, uint64_t{1});
  std::this_thread::sleep_for(std::chrono::milliseconds{100});
  // The connection goes on, and its next request gets its own answer.
  c.send_raw(test::make_request("GET", "/healthz/live"));
  auto next = c.read_response();
  CAF_CHECK_EQUAL(next.result_int(), 200u);
  CAF_CHECK(next.body().find("alive") != std::string::npos);
  // A request that is answered in time is not cut off by an earlier timer.
  for (int i = 0; i < 3; ++i) {
    c.send_raw(test::make_request("POST", "/api/tokens", R"({"sub":"x"})",
                                  bearer()));
    std::this_thread::sleep_for(std::chrono::milliseconds{150});
    caf::anon_send(ks, atom::tick_v, uint64_t{1});
    auto answered = c.read_response();
    CAF_CHECK_EQUAL(answered.result_int(), 201u);
  }
}

CAF_TEST_FIXTURE_SCOPE_END()
