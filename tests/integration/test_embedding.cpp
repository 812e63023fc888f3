// keymesh as a library inside another CAF application: the application owns
// the actor system, spawns keymesh's actors (or a whole node) in it, and
// talks to them from its own actors.
#define CAF_SUITE embedding
#include "caf/test/unit_test.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/federation.hpp"
#include "actors/interfaces.hpp"
#include "actors/keystore.hpp"
#include "node/node.hpp"
#include <future>

#include "actors/bus.hpp"
#include "actors/error.hpp"
#include "node/cluster_setup.hpp"
#include "config/loader.hpp"
#include "jose/jwt.hpp"
#include "support/cluster.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace keymesh;

namespace {

// The embedding application's own configuration: its types plus keymesh's.
struct app_config : caf::actor_system_config {
  app_config() {
    keymesh::add_message_types(*this);
    set("scheduler.max-threads", 2);
  }
};

// An application actor that asks the keystore for a token and reports the
// result to whoever asked it.
caf::behavior token_client(caf::event_based_actor* self, keystore_actor ks) {
  return {
    [=](const std::string& sub) {
      auto rp = self->make_response_promise<signed_token>();
      self->request(ks, std::chrono::seconds{5}, atom::sign_v,
                    token_request{sub, {"embedded-app"}, 60, ""})
        .then([=](signed_token& t) mutable { rp.deliver(std::move(t)); },
              [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
  };
}

/// A single node on loopback with its data under DIR.
config::settings single_node_settings(const test::temp_dir& dir) {
  config::settings settings;
  settings.node.data_dir = dir.file("data");
  settings.http.listen = "127.0.0.1:0";
  settings.http.threads = 1;
  return settings;
}

} // namespace

CAF_TEST(an_application_spawns_keymesh_actors_in_its_own_system) {
  app_config cfg;
  caf::actor_system sys{cfg};
  auto slot = std::make_shared<key_snapshot_slot>();
  auto fed = spawn_federation(sys, "embedded", slot);
  keystore_options opts;
  opts.instance_id = "embedded";
  opts.algorithm = jose::algorithm::eddsa;
  auto ks = spawn_keystore(sys, opts, fed);
  CAF_REQUIRE(ks);
  auto client = sys.spawn(token_client, *ks);
  caf::scoped_actor self{sys};
  signed_token token;
  self->request(client, std::chrono::seconds{10}, std::string{"app-user"})
    .receive([&](signed_token& t) { token = std::move(t); },
             [&](caf::error& err) { CAF_FAIL(sys.render(err)); });
  CAF_CHECK_EQUAL(token.kid, "embedded-0");
  // The federation's snapshot verifies what the keystore signed.
  for (int i = 0; i < 1000 && !slot->load(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  auto snap = slot->load();
  CAF_REQUIRE(snap != nullptr);
  jose::verify_options vo;
  vo.audience = "embedded-app";
  auto result = jose::verify_jwt(token.token, snap->keys, vo,
                                 std::chrono::system_clock::now());
  CAF_CHECK(result.ok());
  CAF_CHECK_EQUAL(result.claims["sub"], "app-user");
  // And the JWKS is there for the application to serve.
  std::string jwks;
  self->request(fed, std::chrono::seconds{5}, atom::get_v, atom::jwks_v)
    .receive([&](std::string& doc) { jwks = std::move(doc); },
             [&](caf::error& err) { CAF_FAIL(sys.render(err)); });
  auto doc = nlohmann::json::parse(jwks);
  CAF_CHECK_EQUAL(doc["keys"].size(), 2u);
  CAF_CHECK_EQUAL(doc["keys"][0]["crv"], "Ed25519");
  self->send_exit(client, caf::exit_reason::user_shutdown);
  self->send_exit(*ks, caf::exit_reason::user_shutdown);
  self->send_exit(fed, caf::exit_reason::user_shutdown);
}

CAF_TEST(an_application_runs_a_whole_node_in_its_own_system) {
  test::temp_dir dir;
  app_config cfg;
  caf::actor_system sys{cfg};
  auto n = node::start(sys, single_node_settings(dir));
  CAF_REQUIRE(n->http_port() != 0);
  // The application's actor signs through the node's keystore...
  auto client = sys.spawn(token_client, n->keystore());
  caf::scoped_actor self{sys};
  signed_token token;
  self->request(client, std::chrono::seconds{10}, std::string{"node-user"})
    .receive([&](signed_token& t) { token = std::move(t); },
             [&](caf::error& err) { CAF_FAIL(sys.render(err)); });
  // ...and the node's HTTP front verifies it.
  auto res = test::request(n->http_port(), "POST", "/api/verify",
                           nlohmann::json{{"token", token.token}}.dump());
  CAF_REQUIRE_EQUAL(res.result_int(), 200u);
  auto body = nlohmann::json::parse(res.body());
  CAF_CHECK_EQUAL(body["active"], true);
  CAF_CHECK_EQUAL(body["kid"], token.kid);
  self->send_exit(client, caf::exit_reason::user_shutdown);
  n->stop();
}

CAF_TEST(objects_an_application_writes_are_served_over_http) {
  test::temp_dir dir;
  app_config cfg;
  caf::actor_system sys{cfg};
  auto n = node::start(sys, single_node_settings(dir));
  auto keys = test::read_file(dir.file("data/admin.keys"));
  auto admin = keys.substr(keys.rfind('\n', keys.size() - 2) + 1);
  admin.pop_back();
  auto auth = "Authorization: Bearer " + admin + "\r\n";
  // The application stores values that are JSON and text that is not; an
  // OP in another language reads them. Bytes that are not UTF-8 cannot be
  // answered in JSON: refused with a clear error, and the service goes on.
  caf::scoped_actor self{sys};
  auto put = [&](std::string id, std::string value) {
    object_put p;
    p.kind = "App";
    p.id = std::move(id);
    p.value = std::move(value);
    p.ttl_ms = 60000;
    caf::error failed;
    self->request(n->objects(), std::chrono::seconds{10}, atom::put_v, p)
      .receive([](object_found&) {},
               [&](caf::error& err) { failed = std::move(err); });
    return failed;
  };
  CAF_CHECK_EQUAL(put("json", R"({"a":[1,2]})"), caf::error{});
  CAF_CHECK_EQUAL(put("text", "plain \"text\"\n"), caf::error{});
  auto bytes = put("bytes", std::string{"ok\xff\xfe"});
  CAF_CHECK(has_code(bytes, ec::invalid_argument));
  CAF_CHECK(context_text(bytes).find("UTF-8") != std::string::npos);
  CAF_CHECK(has_code(put(std::string{"id\xc0\xaf"}, "1"), ec::invalid_argument));
  auto get = [&](const std::string& id) {
    auto res = test::request(n->http_port(), "GET", "/api/objects/App/" + id,
                             {}, auth);
    CAF_REQUIRE_EQUAL(res.result_int(), 200u);
    return nlohmann::json::parse(res.body());
  };
  // (copies: CAF's check macros keep references to their arguments)
  auto json_value = get("json")["value"];
  auto text_value = get("text")["value"];
  CAF_CHECK_EQUAL(json_value, nlohmann::json::parse(R"({"a":[1,2]})"));
  CAF_CHECK_EQUAL(text_value, "plain \"text\"\n");
  auto missing = test::request(n->http_port(), "GET", "/api/objects/App/bytes",
                               {}, auth);
  CAF_CHECK_EQUAL(missing.result_int(), 404u);
  // The node is (or becomes, once its secrets are in) ready: no actor of it
  // ended.
  CAF_CHECK(test::eventually(
    [&] {
      return test::request(n->http_port(), "GET", "/healthz/ready")
               .result_int()
             == 200u;
    },
    std::chrono::seconds{10}));
  n->stop();
}

CAF_TEST(a cookie an application sealed opens over http whatever its bytes) {
  test::temp_dir dir;
  app_config cfg;
  caf::actor_system sys{cfg};
  auto n = node::start(sys, single_node_settings(dir));
  CAF_REQUIRE(test::eventually(
    [&] { return n->cookies().seal("x", "").has_value(); },
    std::chrono::seconds{10}));
  auto keys = test::read_file(dir.file("data/admin.keys"));
  auto admin = keys.substr(keys.rfind('\n', keys.size() - 2) + 1);
  admin.pop_back();
  // Text comes back as it was; bytes that are not UTF-8 come back with
  // U+FFFD in their place (the answer is JSON), not as an internal error.
  auto open = [&](const std::string& plain) {
    auto sealed = n->cookies().seal(plain, "page");
    CAF_REQUIRE(sealed);
    auto res = test::request(
      n->http_port(), "POST", "/api/cookies/open",
      nlohmann::json{{"sealed", *sealed}, {"aad", "page"}}.dump(),
      "Authorization: Bearer " + admin + "\r\n");
    CAF_REQUIRE_EQUAL(res.result_int(), 200u);
    return nlohmann::json::parse(res.body()).at("plaintext").get<std::string>();
  };
  CAF_CHECK_EQUAL(open("session=42"), "session=42");
  CAF_CHECK_EQUAL(open(std::string{"a\xff"}), "a\xef\xbf\xbd");
  n->stop();
}

CAF_TEST(an_application_actor_follows_revocations_from_another_process) {
  // The application embeds node-1 of a genclust cluster (mutual TLS); node-2
  // is a separate keymesh process.
  test::cluster_fixture c;
  auto loaded = config::load(c.config(1),
                             {{"KEYMESH_CLUSTER_HEARTBEAT", "500ms"},
                              {"KEYMESH_CLUSTER_FAILURE_TIMEOUT", "2s"}});
  CAF_REQUIRE(loaded.ok());
  app_config cfg;
  prepare_actor_system(cfg, loaded.value);
  caf::actor_system sys{cfg};
  auto n = node::start(sys, loaded.value);
  // The application's own actor, subscribed through the public interface.
  auto got = std::make_shared<std::promise<bus_event>>();
  // The int: CAF 0.17.6 spawns a function without arguments through a null
  // pointer (CAF_NOTES.md).
  auto follower = sys.spawn([got](caf::event_based_actor*, int) -> caf::behavior {
    auto done = std::make_shared<bool>(false);
    return {
      [got, done](atom::event, bus_event& e) {
        if (e.origin == "node-2" && !*done) {
          *done = true;
          got->set_value(std::move(e));
        }
      },
    };
  }, 0);
  caf::anon_send(n->bus(), atom::subscribe_v,
                 std::vector<std::string>{"revocations"}, follower);
  c.start(2);
  CAF_REQUIRE(test::eventually([&] { return c.state_of(2, "node-1") == "up"; },
                               std::chrono::seconds{20}));
  auto res = test::request(c.http_port(2), "POST", "/api/revocations",
                           R"({"jti":"stolen-token","reason":"leak"})",
                           "Authorization: Bearer " + c.admin_key(2) + "\r\n");
  CAF_REQUIRE_EQUAL(res.result_int(), 200u);
  auto answer = nlohmann::json::parse(res.body());
  CAF_CHECK_EQUAL(answer["propagation"], "complete");
  auto event = got->get_future();
  CAF_REQUIRE(event.wait_for(std::chrono::seconds{10})
              == std::future_status::ready);
  auto e = event.get();
  CAF_CHECK_EQUAL(e.topic, "revocations");
  auto payload = nlohmann::json::parse(e.payload);
  CAF_CHECK_EQUAL(payload["type"], "jti");
  CAF_CHECK_EQUAL(payload["value"], "stolen-token");
  // The embedded node's deny set has it too, before the answer went out.
  CAF_CHECK(n->deny_set()->denied("", "stolen-token", "", 0,
                                  to_unix_ms(std::chrono::system_clock::now())));
  caf::anon_send_exit(follower, caf::exit_reason::user_shutdown);
  n->stop();
}
