// The sessions service under the test coordinator, on one shard that owns
// its partition, with a clock the test moves: what a create makes, reads,
// idle and absolute expiry, touches, attribute updates and their limits,
// listing by subject, and revocations by sid, subject and token id.
#define CAF_SUITE sessions_service
#define FAIL(msg) CAF_FAIL(msg)
#include "caf/test/dsl.hpp"

#include "actors/error.hpp"
#include "services/sessions.hpp"
#include "actors/shard.hpp"
#include "state/session.hpp"
#include "support/actor_config.hpp"
#include "support/manual_clock.hpp"
#include "support/owning_shard.hpp"

using namespace keymesh;
using namespace std::chrono_literals;
using keymesh::test::manual_clock;

namespace {

using keymesh::test::actor_config;

struct fixture : test_coordinator_fixture<actor_config> {
  manual_clock clock;
  shard_actor shard;
  std::shared_ptr<state::deny_set> deny = std::make_shared<state::deny_set>();
  sessions_actor service;

  fixture() {
    shard = test::spawn_owning_shard(sys, self, clock);
    sched.run();
    config::settings c;
    c.sessions.default_ttl = 3600s;
    c.sessions.max_ttl = 7200s;
    c.sessions.idle_timeout = 600s;
    c.sessions.max_attribute_bytes = 64;
    c.keys.max_token_ttl = 300s;
    c.keys.leeway = 0s;
    auto opts = sessions_options::from_settings(c);
    CAF_REQUIRE(opts);
    sessions_deps deps;
    deps.state.partitions = 1;
    deps.state.shards = {shard};
    deps.deny = deny;
    deps.clock = clock.fn();
    service = spawn_sessions(sys, *opts, deps, 1).front();
  }

  ~fixture() override {
    caf::anon_send_exit(service, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
    sched.run();
  }

  template <class Result, class... Ts>
  caf::expected<Result> ask(Ts... xs) {
    self->send(service, xs...);
    sched.run();
    caf::expected<Result> out{caf::error{}};
    self->receive([&](Result& r) { out = std::move(r); },
                  [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  state::session create(std::string sub, session_spec spec = {}) {
    spec.sub = std::move(sub);
    auto s = ask<state::session>(atom::create_v, spec);
    CAF_REQUIRE(s);
    return *s;
  }

  caf::expected<session_found> get(const std::string& sid) {
    return ask<session_found>(atom::get_v, sid);
  }

  caf::expected<revocation_outcome> revoke(std::string kind,
                                           std::string value) {
    return ask<revocation_outcome>(
      atom::revoke_v, revocation_order{std::move(kind), std::move(value),
                                       "test"});
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(sessions_service_tests, fixture)

CAF_TEST(a created session is read back with the times of the clock) {
  session_spec spec;
  spec.client_id = "app";
  spec.attributes = {{"ip", "10.0.0.1"}};
  auto s = create("alice", spec);
  CAF_CHECK(state::valid_session_id(s.sid));
  CAF_CHECK_EQUAL(s.created_at, clock.ms());
  CAF_CHECK_EQUAL(s.expires_at, clock.ms() + 3'600'000);
  CAF_CHECK_EQUAL(s.idle_timeout, 600);
  auto found = get(s.sid);
  CAF_REQUIRE(found);
  CAF_CHECK_EQUAL(found->s.sub, "alice");
  CAF_CHECK_EQUAL(found->s.client_id, "app");
  CAF_CHECK_EQUAL(found->s.attributes.at("ip"), "10.0.0.1");
  auto absent = get(state::new_session_id());
  CAF_REQUIRE(!absent);
  CAF_CHECK(has_code(absent.error(), ec::not_found));
}

CAF_TEST(a spec the settings refuse is an invalid argument) {
  session_spec spec;
  spec.sub = std::string{"a\x1f" "b"};
  auto bad = ask<state::session>(atom::create_v, spec);
  CAF_REQUIRE(!bad);
  CAF_CHECK(has_code(bad.error(), ec::invalid_argument));
  spec.sub = "alice";
  spec.ttl = 7201;
  bad = ask<state::session>(atom::create_v, spec);
  CAF_REQUIRE(!bad);
  CAF_CHECK(has_code(bad.error(), ec::invalid_argument));
  spec.ttl = 0;
  spec.attributes = {{"big", std::string(100, 'x')}};
  bad = ask<state::session>(atom::create_v, spec);
  CAF_REQUIRE(!bad);
  CAF_CHECK(has_code(bad.error(), ec::invalid_argument));
}

CAF_TEST(an idle session ends and a touch moves its deadline) {
  auto s = create("alice");
  clock.advance(500s);
  auto found = get(s.sid);
  CAF_REQUIRE(found);
  auto touched = ask<touch_result>(atom::touch_v, *found);
  CAF_REQUIRE(touched);
  CAF_CHECK(touched->live);
  CAF_CHECK_EQUAL(touched->ends_at, clock.ms() + 600'000);
  clock.advance(500s); // 1,000 s after the start, 500 s after the touch
  CAF_CHECK(get(s.sid));
  clock.advance(101s); // idle for more than 600 s
  auto gone = get(s.sid);
  CAF_REQUIRE(!gone);
  CAF_CHECK(has_code(gone.error(), ec::not_found));
}

CAF_TEST(a session ends at its absolute expiry however active) {
  session_spec spec;
  spec.ttl = 900;
  auto s = create("alice", spec);
  for (int i = 0; i < 3; ++i) {
    clock.advance(299s);
    auto found = get(s.sid);
    CAF_REQUIRE(found);
    auto touched = ask<touch_result>(atom::touch_v, *found);
    CAF_REQUIRE(touched);
    CAF_CHECK(touched->live);
  }
  clock.advance(4s); // 901 s
  CAF_CHECK(!get(s.sid));
}

CAF_TEST(text that is not utf8 is refused and the service goes on) {
  // An embedding application can send any bytes; the stored form and the
  // HTTP answers are JSON, which cannot carry them.
  const std::string bad{"ok\xff"};
  for (int field = 0; field < 4; ++field) {
    session_spec spec;
    spec.sub = field == 0 ? bad : "alice";
    spec.client_id = field == 1 ? bad : "app";
    if (field == 2)
      spec.attributes = {{bad, "v"}};
    if (field == 3)
      spec.attributes = {{"k", bad}};
    auto refused = ask<state::session>(atom::create_v, spec);
    CAF_REQUIRE(!refused);
    CAF_CHECK(has_code(refused.error(), ec::invalid_argument));
  }
  auto s = create("alice");
  session_patch patch;
  patch.set = {{"k", bad}};
  auto refused = ask<state::session>(atom::update_v, s.sid, patch);
  CAF_REQUIRE(!refused);
  CAF_CHECK(has_code(refused.error(), ec::invalid_argument));
  // Still answering, and the session unchanged.
  auto stored = get(s.sid);
  CAF_REQUIRE(stored);
  CAF_CHECK(stored->s.attributes.empty());
}

CAF_TEST(updates change attributes within their limit) {
  auto s = create("alice");
  session_patch patch;
  patch.set = {{"a", "1"}, {"b", "2"}};
  auto changed = ask<state::session>(atom::update_v, s.sid, patch);
  CAF_REQUIRE(changed);
  CAF_CHECK_EQUAL(changed->attributes.size(), 2u);
  patch = session_patch{};
  patch.remove = {"a"};
  changed = ask<state::session>(atom::update_v, s.sid, patch);
  CAF_REQUIRE(changed);
  CAF_CHECK_EQUAL(changed->attributes.count("a"), 0u);
  auto stored = get(s.sid); // (CAF's checks keep references: no temporaries)
  CAF_REQUIRE(stored);
  CAF_CHECK_EQUAL(stored->s.attributes.at("b"), "2");
  patch = session_patch{};
  patch.set = {{"c", std::string(100, 'x')}};
  auto refused = ask<state::session>(atom::update_v, s.sid, patch);
  CAF_REQUIRE(!refused);
  CAF_CHECK(has_code(refused.error(), ec::invalid_argument));
}

CAF_TEST(participating clients are recorded at create and merged by updates) {
  session_spec spec;
  spec.client_id = "portal";
  spec.clients = {{"app", "rp-sid-1"}};
  auto s = create("alice", spec);
  session_patch patch;
  patch.clients = {{"mail", ""}, {"app", "rp-sid-2"}};
  auto changed = ask<state::session>(atom::update_v, s.sid, patch);
  CAF_REQUIRE(changed);
  auto stored = get(s.sid);
  CAF_REQUIRE(stored);
  auto parts = stored->s.participants();
  CAF_CHECK_EQUAL(parts.size(), 3u);
  CAF_CHECK_EQUAL(parts.at("app"), "rp-sid-2");
  // A client given no sid of its own gets the session's, as does the
  // client the session was made for.
  CAF_CHECK_EQUAL(parts.at("mail"), s.sid);
  CAF_CHECK_EQUAL(parts.at("portal"), s.sid);
  // The stored form keeps them; a record from before participants has none.
  auto again = state::decode_session(state::encode_session(stored->s));
  CAF_REQUIRE(again);
  CAF_CHECK_EQUAL(again->clients.size(), 2u);
  patch = session_patch{};
  for (int i = 0; i < 70; ++i)
    patch.clients["c" + std::to_string(i)] = "";
  auto refused = ask<state::session>(atom::update_v, s.sid, patch);
  CAF_REQUIRE(!refused);
  CAF_CHECK(has_code(refused.error(), ec::invalid_argument));
  spec.clients = {{"", "x"}};
  spec.sub = "alice";
  auto bad = ask<state::session>(atom::create_v, spec);
  CAF_REQUIRE(!bad);
  CAF_CHECK(has_code(bad.error(), ec::invalid_argument));
}

CAF_TEST(a client is logged out of a session that goes on) {
  session_spec spec;
  spec.client_id = "portal";
  spec.clients = {{"app", "rp-sid"}, {"mail", ""}};
  auto s = create("alice", spec);
  auto left = ask<state::session>(atom::remove_v, atom::client_v, s.sid,
                                  std::string{"app"});
  CAF_REQUIRE(left);
  CAF_CHECK_EQUAL(left->clients.count("app"), 0u);
  // The client the session was made for can leave too.
  left = ask<state::session>(atom::remove_v, atom::client_v, s.sid,
                             std::string{"portal"});
  CAF_REQUIRE(left);
  auto stored = get(s.sid);
  CAF_REQUIRE(stored);
  auto parts = stored->s.participants();
  CAF_CHECK_EQUAL(parts.size(), 1u);
  CAF_CHECK_EQUAL(parts.count("mail"), 1u);
  // A client that does not take part, and an unknown session: not found.
  auto absent = ask<state::session>(atom::remove_v, atom::client_v, s.sid,
                                    std::string{"app"});
  CAF_REQUIRE(!absent);
  CAF_CHECK(has_code(absent.error(), ec::not_found));
  auto unknown = ask<state::session>(atom::remove_v, atom::client_v,
                                     state::new_session_id(),
                                     std::string{"mail"});
  CAF_REQUIRE(!unknown);
  CAF_CHECK(has_code(unknown.error(), ec::not_found));
}

CAF_TEST(a session is created once under a sid its caller chose) {
  session_spec spec;
  spec.sid = "op-session-uid-digest_";
  auto s = create("alice", spec);
  CAF_CHECK_EQUAL(s.sid, "op-session-uid-digest_");
  CAF_REQUIRE(get(s.sid));
  auto again = ask<state::session>(atom::create_v, [&] {
    auto other = spec;
    other.sub = "mallory";
    return other;
  }());
  CAF_REQUIRE(!again);
  CAF_CHECK(has_code(again.error(), ec::conflict));
  // The refused create left no index entry: a revocation of its subject
  // does not reach alice's session.
  CAF_REQUIRE(revoke("sub", "mallory"));
  CAF_CHECK(get(s.sid));
  // A revoked sid is not created again.
  CAF_REQUIRE(revoke("sid", s.sid));
  spec.sub = "alice";
  again = ask<state::session>(atom::create_v, spec);
  CAF_REQUIRE(!again);
  CAF_CHECK(has_code(again.error(), ec::conflict));
  spec.sid = "too-short";
  again = ask<state::session>(atom::create_v, spec);
  CAF_REQUIRE(!again);
  CAF_CHECK(has_code(again.error(), ec::invalid_argument));
}

CAF_TEST(a revoked session reads as revoked and its subject lists without it) {
  auto a = create("alice");
  auto b = create("alice");
  create("bob");
  auto listed = ask<std::vector<state::session>>(atom::list_v,
                                                 std::string{"alice"});
  CAF_REQUIRE(listed);
  CAF_CHECK_EQUAL(listed->size(), 2u);
  auto out = revoke("sid", a.sid);
  CAF_REQUIRE(out);
  CAF_CHECK_EQUAL(out->sessions, 1u);
  CAF_CHECK(out->unreached.empty());
  CAF_CHECK_EQUAL(out->log_error, "");
  auto gone = get(a.sid);
  CAF_REQUIRE(!gone);
  CAF_CHECK(has_code(gone.error(), ec::revoked));
  CAF_CHECK(deny->session_denied(a.sid, clock.ms()));
  listed = ask<std::vector<state::session>>(atom::list_v,
                                            std::string{"alice"});
  CAF_REQUIRE(listed);
  CAF_REQUIRE_EQUAL(listed->size(), 1u);
  CAF_CHECK_EQUAL(listed->front().sid, b.sid);
}

CAF_TEST(a subject revocation ends every session of the subject) {
  create("alice");
  create("alice");
  auto bob = create("bob");
  auto out = revoke("sub", "alice");
  CAF_REQUIRE(out);
  CAF_CHECK_EQUAL(out->sessions, 2u);
  auto listed = ask<std::vector<state::session>>(atom::list_v,
                                                 std::string{"alice"});
  CAF_REQUIRE(listed);
  CAF_CHECK(listed->empty());
  CAF_CHECK(get(bob.sid));
  // A session made after the revocation is not covered by it.
  clock.advance(1s);
  auto later = create("alice");
  CAF_CHECK(get(later.sid));
}

CAF_TEST(a token id revocation is denied and ends no session) {
  auto s = create("alice");
  auto out = revoke("jti", "token-1");
  CAF_REQUIRE(out);
  CAF_CHECK_EQUAL(out->sessions, 0u);
  CAF_CHECK(deny->denied("", "token-1", "", clock.ms() / 1000, clock.ms()));
  CAF_CHECK(get(s.sid));
  auto bad = revoke("kid", "x");
  CAF_REQUIRE(!bad);
  CAF_CHECK(has_code(bad.error(), ec::invalid_argument));
  bad = revoke("sid", "not-a-sid");
  CAF_REQUIRE(!bad);
  CAF_CHECK(has_code(bad.error(), ec::invalid_argument));
}

CAF_TEST_FIXTURE_SCOPE_END()
