// The auth service under the test coordinator, with the directory service
// over a real SQLite database, real scrypt and a real keystore, every
// actor (the store and hash workers too) scheduled by the coordinator, and
// a clock the test moves: logins and what their tokens carry, wrong
// passwords, unknown and disabled users, lockout and its end, hash upgrades, a full hash queue,
// refresh rotation and reuse, a refresh after its session ended, and
// logouts by refresh token and by sid.
#define CAF_SUITE auth_service
#define FAIL(msg) CAF_FAIL(msg)
#include "caf/test/dsl.hpp"

#include <nlohmann/json.hpp>

#include "services/auth_service.hpp"
#include "services/directory.hpp"
#include "actors/error.hpp"
#include "actors/keystore.hpp"
#include "services/sessions.hpp"
#include "actors/shard.hpp"
#include "common/base64url.hpp"
#include "persistence/store.hpp"
#include "state/refresh.hpp"
#include "state/session.hpp"
#include "support/actor_config.hpp"
#include "support/directory_stack.hpp"
#include "support/manual_clock.hpp"
#include "support/owning_shard.hpp"
#include "support/temp_dir.hpp"

using namespace keymesh;
using namespace std::chrono_literals;
using keymesh::test::manual_clock;
using nlohmann::json;

namespace {

using keymesh::test::actor_config;

/// A cheap scrypt cost for the test's hashes (the default takes ~100 ms).
constexpr auth::scrypt_cost test_cost{10, 8, 1};

/// The claims of a compact JWS (not verified: the keystore made it).
json payload_of(const std::string& token) {
  auto first = token.find('.');
  auto second = token.find('.', first + 1);
  auto text = base64url_decode(token.substr(first + 1, second - first - 1));
  return text ? json::parse(*text) : json{};
}

struct fixture : test_coordinator_fixture<actor_config> {
  manual_clock clock;
  test::temp_dir dir;
  config::settings cfg;
  shard_actor shard;
  std::shared_ptr<state::deny_set> deny = std::make_shared<state::deny_set>();
  keystore_actor keystore;
  sessions_actor sessions;
  std::unique_ptr<test::directory_stack> stack;
  std::unique_ptr<persistence::store> db;
  auth_actor auth;

  fixture() {
    shard = test::spawn_owning_shard(sys, self, clock);
    cfg.node.data_dir = dir.path();
    cfg.sessions.default_ttl = 3600s;
    cfg.sessions.max_ttl = 7200s;
    cfg.sessions.idle_timeout = 600s;
    cfg.keys.max_token_ttl = 300s;
    cfg.keys.default_token_ttl = 120s;
    cfg.keys.leeway = 0s;
    cfg.keys.issuer = "https://issuer.test";
    cfg.auth.max_failures = 3;
    cfg.auth.failure_window = 60s;
    cfg.auth.lockout = 120s;
    cfg.auth.refresh_ttl = 1800s;
    cfg.auth.scrypt_log2_n = test_cost.log2_n;
    cfg.auth.scrypt_r = test_cost.r;
    cfg.auth.scrypt_p = test_cost.p;
    auto ko = keystore_options::from_settings(cfg, "node-1");
    CAF_REQUIRE(ko);
    ko->clock = clock.fn();
    ko->own_thread = false;
    keystore = *spawn_keystore(sys, *ko, federation_actor{});
    auto so2 = sessions_options::from_settings(cfg);
    CAF_REQUIRE(so2);
    sessions_deps sd;
    sd.state.partitions = 1;
    sd.state.shards = {shard};
    sd.deny = deny;
    sd.clock = clock.fn();
    sessions = spawn_sessions(sys, *so2, sd, 1).front();
    stack = std::make_unique<test::directory_stack>(sys, cfg, clock,
                                                    sessions, deny);
    sched.run(); // the keystore's first key, the schema
    db = persistence::open_store(cfg);
    auth = spawn(make_auth(stack->hashing.get()));
  }

  auth_deps make_auth(hash_pool* pool) {
    auth_deps deps;
    deps.state.partitions = 1;
    deps.state.shards = {shard};
    deps.sessions = sessions;
    deps.keystore = keystore;
    deps.directory = stack->directory;
    deps.hashing = pool;
    deps.deny = deny;
    deps.clock = clock.fn();
    return deps;
  }

  auth_actor spawn(auth_deps deps) {
    auto opts = auth_options::from_settings(cfg);
    CAF_REQUIRE(opts);
    return spawn_auth(sys, *opts, deps, {}).front();
  }

  ~fixture() override {
    for (auto a : std::vector<caf::actor>{
           caf::actor_cast<caf::actor>(auth),
           caf::actor_cast<caf::actor>(sessions),
           caf::actor_cast<caf::actor>(keystore),
           caf::actor_cast<caf::actor>(shard)})
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    stack->stop();
    sched.run();
  }

  template <class Result, class... Ts>
  caf::expected<Result> ask(const auth_actor& who, Ts... xs) {
    self->send(who, xs...);
    sched.run();
    caf::expected<Result> out{caf::error{}};
    self->receive([&](Result& r) { out = std::move(r); },
                  [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  void add_user(const std::string& name, const std::string& password,
                bool enabled = true, auth::scrypt_cost cost = test_cost) {
    db->create_user(name, auth::hash_password(password, cost), enabled,
                    clock.ms());
  }

  caf::expected<token_grant> login(const std::string& user,
                                   const std::string& password,
                                   const auth_actor* via = nullptr) {
    return ask<token_grant>(via ? *via : auth, atom::login_v,
                            credentials{user, password, "app"});
  }

  caf::expected<token_grant> refresh(const std::string& token) {
    return ask<token_grant>(auth, atom::refresh_v, token);
  }

  caf::expected<revocation_outcome> logout(logout_request req) {
    return ask<revocation_outcome>(auth, atom::logout_v, std::move(req));
  }

  /// Whether the sessions service still has session SID live.
  bool live(const std::string& sid) {
    self->send(sessions, atom::get_v, sid);
    sched.run();
    bool found = false;
    self->receive([&](session_found&) { found = true; },
                  [&](caf::error&) { found = false; });
    return found;
  }
};

/// Whether RESULT failed with CODE.
template <class T>
bool failed_with(const caf::expected<T>& result, ec code) {
  return !result && has_code(result.error(), code);
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(auth_service_tests, fixture)

CAF_TEST(a login makes a session and tokens with the claims of the groups) {
  add_user("alice", "correct horse");
  db->create_group("admins", clock.ms());
  db->add_member("admins", "alice");
  auto role = db->create_claim("role", "admin", "");
  db->grant_claim("admins", role.id);
  auto g = login("alice", "correct horse");
  CAF_REQUIRE(g);
  CAF_CHECK_EQUAL(g->sub, "alice");
  CAF_CHECK(state::valid_session_id(g->sid));
  CAF_CHECK_EQUAL(g->expires_in, 120);
  CAF_CHECK(state::parse_refresh_token(g->refresh_token));
  auto claims = payload_of(g->access_token);
  CAF_CHECK_EQUAL(claims.value("sid", ""), g->sid);
  CAF_CHECK_EQUAL(claims.value("sub", ""), "alice");
  CAF_CHECK_EQUAL(claims.value("role", ""), "admin");
  CAF_CHECK(claims["groups"] == json::array({"admins"}));
  CAF_CHECK(live(g->sid));
}

CAF_TEST(wrong passwords unknown users and disabled accounts are refused) {
  add_user("alice", "correct horse");
  add_user("bob", "battery staple", false);
  CAF_CHECK(failed_with(login("alice", "wrong"), ec::invalid_credentials));
  CAF_CHECK(failed_with(login("nobody", "wrong"), ec::invalid_credentials));
  CAF_CHECK(failed_with(login("bob", "battery staple"), ec::disabled));
}

CAF_TEST(failures lock a username until the lockout ends) {
  add_user("alice", "correct horse");
  for (int i = 0; i < 3; ++i)
    CAF_CHECK(failed_with(login("alice", "wrong"), ec::invalid_credentials));
  // The right password does not help while the name is locked.
  auto locked = login("alice", "correct horse");
  CAF_REQUIRE(failed_with(locked, ec::locked));
  auto until = std::stoll(context_text(locked.error()));
  CAF_CHECK_GREATER(until, clock.ms());
  CAF_CHECK_LESS_OR_EQUAL(until, clock.ms() + 120'000);
  clock.advance(121s);
  CAF_CHECK(login("alice", "correct horse"));
  // A success clears the count: three more failures are allowed.
  CAF_CHECK(failed_with(login("alice", "wrong"), ec::invalid_credentials));
  CAF_CHECK(failed_with(login("alice", "wrong"), ec::invalid_credentials));
  CAF_CHECK(login("alice", "correct horse"));
}

CAF_TEST(a hash of another cost is upgraded at the next login) {
  add_user("alice", "correct horse", true, auth::scrypt_cost{11, 8, 1});
  auto before = db->find_user("alice")->password_hash;
  CAF_CHECK(auth::needs_rehash(before, test_cost));
  CAF_CHECK(login("alice", "correct horse"));
  sched.run(); // the upgrade runs after the answer
  auto after = db->find_user("alice")->password_hash;
  CAF_CHECK_NOT_EQUAL(after, before);
  CAF_CHECK(!auth::needs_rehash(after, test_cost));
  CAF_CHECK(auth::verify_password("correct horse", after));
}

CAF_TEST(a full hash queue answers overloaded) {
  add_user("alice", "correct horse");
  hash_pool full{sys, 1, 0, false};
  auto busy = spawn(make_auth(&full));
  CAF_CHECK(failed_with(login("alice", "correct horse", &busy),
                        ec::overloaded));
  full.stop();
  caf::anon_send_exit(busy, caf::exit_reason::user_shutdown);
}

CAF_TEST(a full database queue answers overloaded not unavailable) {
  add_user("alice", "correct horse");
  // A directory whose database queue takes nothing: back-pressure, which
  // the HTTP front answers 503 overloaded and counts as such.
  test::directory_stack full{sys, cfg, clock, sessions, deny, 0};
  auto deps = make_auth(stack->hashing.get());
  deps.directory = full.directory;
  auto busy = spawn(deps);
  auto refused = login("alice", "correct horse", &busy);
  CAF_CHECK(failed_with(refused, ec::overloaded));
  caf::anon_send_exit(busy, caf::exit_reason::user_shutdown);
  full.stop();
  sched.run();
}

CAF_TEST(a refresh rotates and an older generation is reuse) {
  add_user("alice", "correct horse");
  auto g = login("alice", "correct horse");
  CAF_REQUIRE(g);
  auto first = g->refresh_token;
  auto next = refresh(first);
  CAF_REQUIRE(next);
  CAF_CHECK_EQUAL(next->sid, g->sid);
  CAF_CHECK_NOT_EQUAL(next->refresh_token, first);
  auto again = refresh(next->refresh_token);
  CAF_REQUIRE(again);
  // The first token again: reuse ends the family and its session.
  auto reuse = refresh(first);
  CAF_REQUIRE(failed_with(reuse, ec::invalid_grant));
  CAF_CHECK_NOT_EQUAL(context_text(reuse.error()).find("reuse"),
                      std::string::npos);
  CAF_CHECK(!live(g->sid));
  CAF_CHECK(failed_with(refresh(again->refresh_token), ec::invalid_grant));
  CAF_CHECK(failed_with(refresh("not-a-token"), ec::invalid_grant));
}

CAF_TEST(a refresh never outlives its session) {
  add_user("alice", "correct horse");
  auto g = login("alice", "correct horse");
  CAF_REQUIRE(g);
  clock.advance(601s); // idle past sessions.idle_timeout
  auto late = refresh(g->refresh_token);
  CAF_REQUIRE(failed_with(late, ec::invalid_grant));
  CAF_CHECK_EQUAL(context_text(late.error()), "the session has ended");
  auto h = login("alice", "correct horse");
  CAF_REQUIRE(h);
  self->send(sessions, atom::revoke_v,
             revocation_order{"sub", "alice", "test"});
  sched.run();
  self->receive([](revocation_outcome&) {}, [](caf::error&) {});
  CAF_CHECK(failed_with(refresh(h->refresh_token), ec::invalid_grant));
}

CAF_TEST(a disabled account ends its family at the next refresh) {
  add_user("alice", "correct horse");
  auto g = login("alice", "correct horse");
  CAF_REQUIRE(g);
  db->update_user("alice", std::nullopt, false, clock.ms());
  CAF_CHECK(failed_with(refresh(g->refresh_token), ec::invalid_grant));
  CAF_CHECK(!live(g->sid));
}

CAF_TEST(logout by refresh token or by sid ends the session) {
  add_user("alice", "correct horse");
  auto g = login("alice", "correct horse");
  CAF_REQUIRE(g);
  auto out = logout(logout_request{g->refresh_token, {}});
  CAF_REQUIRE(out);
  CAF_CHECK_EQUAL(out->order.value, g->sid);
  CAF_CHECK_EQUAL(out->sessions, 1u);
  CAF_CHECK(!live(g->sid));
  CAF_CHECK(failed_with(refresh(g->refresh_token), ec::invalid_grant));
  auto h = login("alice", "correct horse");
  CAF_REQUIRE(h);
  auto by_sid = logout(logout_request{{}, h->sid});
  CAF_REQUIRE(by_sid);
  CAF_CHECK_EQUAL(by_sid->sessions, 1u);
  // Logged out already: nothing left to do.
  auto twice = logout(logout_request{{}, h->sid});
  CAF_REQUIRE(twice);
  CAF_CHECK_EQUAL(twice->sessions, 0u);
  CAF_CHECK(failed_with(logout(logout_request{{}, "bogus"}),
                        ec::invalid_grant));
}

CAF_TEST_FIXTURE_SCOPE_END()
