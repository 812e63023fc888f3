// The objects service under the test coordinator, on one shard that owns
// its partition, with a clock the test moves: puts with their conditions
// and limits, expiry, consume exactly once (also when many consumers race
// through several service instances), idempotent retries of the winner,
// index lookups and destroying a grant's objects.
#define CAF_SUITE objects_service
#define FAIL(msg) CAF_FAIL(msg)
#include "caf/test/dsl.hpp"

#include "actors/error.hpp"
#include "actors/shard.hpp"
#include "services/objects.hpp"
#include "state/par.hpp"
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
  std::vector<objects_actor> services;

  fixture() {
    shard = test::spawn_owning_shard(sys, self, clock);
    sched.run();
    config::settings c;
    c.objects.default_ttl = 600s;
    c.objects.max_ttl = 3600s;
    c.objects.max_value_bytes = 128;
    c.objects.kinds = {"Code:60s:64"};
    auto opts = objects_options::from_settings(c);
    CAF_REQUIRE(opts);
    objects_deps deps;
    deps.state.partitions = 1;
    deps.state.shards = {shard};
    deps.clock = clock.fn();
    services = spawn_objects(sys, *opts, deps, 3);
  }

  ~fixture() override {
    for (auto& s : services)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
    sched.run();
  }

  template <class Result, class... Ts>
  caf::expected<Result> ask(Ts... xs) {
    self->send(services.front(), xs...);
    sched.run();
    caf::expected<Result> out{caf::error{}};
    self->receive([&](Result& r) { out = std::move(r); },
                  [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  caf::expected<object_found> put(object_put req) {
    return ask<object_found>(atom::put_v, std::move(req));
  }

  caf::expected<object_found> get(std::string kind, std::string id) {
    return ask<object_found>(atom::get_v, std::move(kind), std::move(id));
  }

  caf::expected<object_found> consume(std::string kind, std::string id,
                                      std::string key = {}) {
    return ask<object_found>(atom::consume_v, std::move(kind), std::move(id),
                             std::move(key));
  }

  static object_put code(std::string id, std::string grant = "g1") {
    object_put p;
    p.kind = "AuthorizationCode";
    p.id = std::move(id);
    p.value = R"({"accountId":"alice"})";
    p.indexes = {{"grant_id", std::move(grant)}};
    return p;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(objects_service_tests, fixture)

CAF_TEST(a put object is read back until it expires) {
  auto written = put(code("c1"));
  CAF_REQUIRE(written);
  CAF_CHECK_EQUAL(written->obj.created_at, clock.ms());
  CAF_CHECK_EQUAL(written->obj.expires_at, clock.ms() + 600'000);
  auto found = get("AuthorizationCode", "c1");
  CAF_REQUIRE(found);
  CAF_CHECK_EQUAL(found->obj.value, R"({"accountId":"alice"})");
  CAF_CHECK_EQUAL(found->obj.indexes.at("grant_id"), "g1");
  CAF_CHECK(!found->obj.consumed());
  CAF_CHECK(found->ver == written->ver);
  // Another kind is another object.
  CAF_CHECK(has_code(get("RefreshToken", "c1").error(), ec::not_found));
  clock.advance(600'001ms);
  CAF_CHECK(has_code(get("AuthorizationCode", "c1").error(), ec::not_found));
}

CAF_TEST(conditions decide once) {
  auto p = code("c2");
  p.condition = object_condition::absent;
  auto first = put(p);
  CAF_REQUIRE(first);
  CAF_CHECK(has_code(put(p).error(), ec::conflict));
  // Compare-and-set: at the version read, then no more.
  p.condition = object_condition::version_is;
  p.expected = first->ver;
  p.value = "v2";
  auto second = put(p);
  CAF_REQUIRE(second);
  CAF_CHECK(has_code(put(p).error(), ec::version_mismatch));
  auto now = get("AuthorizationCode", "c2");
  CAF_REQUIRE(now);
  CAF_CHECK_EQUAL(now->obj.value, "v2");
  // A replace keeps when it was created.
  clock.advance(1000ms);
  p.condition = object_condition::always;
  auto third = put(p);
  CAF_REQUIRE(third);
  CAF_CHECK_EQUAL(third->obj.created_at, first->obj.created_at);
}

CAF_TEST(the first consume wins and the winner may ask again) {
  CAF_REQUIRE(put(code("c3")));
  clock.advance(5ms);
  auto won = consume("AuthorizationCode", "c3", "key-1");
  CAF_REQUIRE(won);
  CAF_CHECK_EQUAL(won->obj.consumed_at, clock.ms());
  auto again = consume("AuthorizationCode", "c3", "key-1");
  CAF_REQUIRE(again);
  CAF_CHECK_EQUAL(again->obj.consumed_at, won->obj.consumed_at);
  auto lost = consume("AuthorizationCode", "c3", "key-2");
  CAF_REQUIRE(!lost);
  CAF_CHECK(has_code(lost.error(), ec::already_consumed));
  CAF_CHECK_EQUAL(context_text(lost.error()),
                  std::to_string(won->obj.consumed_at));
  CAF_CHECK(has_code(consume("AuthorizationCode", "c3").error(),
                     ec::already_consumed));
  // Still readable, as consumed; never live again through a put.
  auto read = get("AuthorizationCode", "c3");
  CAF_REQUIRE(read);
  CAF_CHECK(read->obj.consumed());
  CAF_CHECK(has_code(put(code("c3")).error(), ec::already_consumed));
  CAF_CHECK(has_code(consume("AuthorizationCode", "absent").error(),
                     ec::not_found));
}

CAF_TEST(of many racing consumers exactly one wins) {
  CAF_REQUIRE(put(code("c4")));
  // 60 consumes in flight at once through three service instances, each
  // with its own key: the coordinator interleaves them.
  constexpr int consumers = 60;
  for (int i = 0; i < consumers; ++i)
    self->send(services[i % services.size()], atom::consume_v,
               std::string{"AuthorizationCode"}, std::string{"c4"},
               "key-" + std::to_string(i));
  sched.run();
  int won = 0, consumed = 0, other = 0;
  for (int i = 0; i < consumers; ++i)
    self->receive([&](object_found&) { ++won; },
                  [&](caf::error& err) {
                    if (has_code(err, ec::already_consumed))
                      ++consumed;
                    else
                      ++other;
                  });
  CAF_CHECK_EQUAL(won, 1);
  CAF_CHECK_EQUAL(consumed, consumers - 1);
  CAF_CHECK_EQUAL(other, 0);
}

CAF_TEST(index lookups and destroying a grant) {
  CAF_REQUIRE(put(code("a", "g7")));
  CAF_REQUIRE(put(code("b", "g7")));
  CAF_REQUIRE(put(code("c", "g8")));
  auto g7 = ask<std::vector<object_found>>(
    atom::list_v, object_lookup{"AuthorizationCode", "grant_id", "g7"});
  CAF_REQUIRE(g7);
  CAF_REQUIRE_EQUAL(g7->size(), 2u);
  CAF_CHECK_EQUAL(g7->at(0).obj.id, "a");
  CAF_CHECK_EQUAL(g7->at(1).obj.id, "b");
  // An object whose index value changes leaves the old lookup.
  CAF_REQUIRE(put(code("b", "g8")));
  g7 = ask<std::vector<object_found>>(
    atom::list_v, object_lookup{"AuthorizationCode", "grant_id", "g7"});
  CAF_REQUIRE(g7);
  CAF_CHECK_EQUAL(g7->size(), 1u);
  auto ended = ask<uint64_t>(
    atom::remove_v, object_lookup{"AuthorizationCode", "grant_id", "g8"});
  CAF_REQUIRE(ended);
  CAF_CHECK_EQUAL(*ended, 2u);
  CAF_CHECK(has_code(get("AuthorizationCode", "b").error(), ec::not_found));
  CAF_CHECK(has_code(get("AuthorizationCode", "c").error(), ec::not_found));
  CAF_CHECK(get("AuthorizationCode", "a"));
  // A destroyed object is not created again while its tombstone lives.
  CAF_REQUIRE(ask<atom::ok>(atom::remove_v, std::string{"AuthorizationCode"},
                            std::string{"a"}));
  auto again = code("a", "g7");
  again.condition = object_condition::absent;
  CAF_CHECK(has_code(put(again).error(), ec::conflict));
  again.condition = object_condition::always;
  auto replaced = put(again);
  CAF_REQUIRE(!replaced);
  CAF_CHECK(has_code(replaced.error(), ec::conflict));
  CAF_CHECK_EQUAL(context_text(replaced.error()),
                  "the object was destroyed; its id cannot be used again "
                  "before it would have expired");
  CAF_CHECK(has_code(ask<atom::ok>(atom::remove_v,
                                   std::string{"AuthorizationCode"},
                                   std::string{"a"})
                       .error(),
                     ec::not_found));
}

CAF_TEST(input past the limits is an invalid argument) {
  auto refused = [&](object_put p) {
    auto out = put(std::move(p));
    return !out && has_code(out.error(), ec::invalid_argument);
  };
  auto p = code("x");
  p.kind = "bad kind";
  CAF_CHECK(refused(p));
  p = code(std::string(513, 'i'));
  CAF_CHECK(refused(p));
  p = code(std::string{"a\nb"});
  CAF_CHECK(refused(p));
  p = code("x");
  p.value = std::string(129, 'v');
  CAF_CHECK(refused(p));
  p.value = std::string(128, 'v'); // at the limit
  CAF_CHECK(put(p));
  p = code("y");
  p.ttl_ms = 3'600'001;
  CAF_CHECK(refused(p));
  p.ttl_ms = 3'600'000;
  CAF_CHECK(put(p));
  p.ttl_ms = -1;
  CAF_CHECK(refused(p));
  p = code("z");
  for (int i = 0; i < 9; ++i)
    p.indexes["f" + std::to_string(i)] = "v";
  CAF_CHECK(refused(p));
  p = code("z");
  p.indexes = {{"uid", ""}};
  CAF_CHECK(refused(p));
  CAF_CHECK(has_code(consume("AuthorizationCode", "z", "bad\x01key").error(),
                     ec::invalid_argument));
}

CAF_TEST(the replay registry answers first use once) {
  replay_check c{"client_assertion", "https://client.example", "jti-1",
                 clock.ms() / 1000 + 60};
  auto first = ask<replay_verdict>(atom::check_v, c);
  CAF_REQUIRE(first);
  CAF_CHECK(!first->replayed);
  clock.advance(2000ms);
  auto second = ask<replay_verdict>(atom::check_v, c);
  CAF_REQUIRE(second);
  CAF_CHECK(second->replayed);
  CAF_CHECK_EQUAL(second->first_seen, first->first_seen);
  // Another scope, issuer or jti is another value.
  auto other = c;
  other.scope = "dpop";
  CAF_CHECK(!ask<replay_verdict>(atom::check_v, other)->replayed);
  other = c;
  other.iss = "https://other.example";
  CAF_CHECK(!ask<replay_verdict>(atom::check_v, other)->replayed);
  // Racing registrations through three instances: one first use.
  c.jti = "jti-race";
  for (int i = 0; i < 30; ++i)
    self->send(services[static_cast<size_t>(i) % services.size()],
               atom::check_v, c);
  sched.run();
  int fresh = 0, replayed = 0;
  for (int i = 0; i < 30; ++i)
    self->receive(
      [&](replay_verdict& v) { ++(v.replayed ? replayed : fresh); },
      [&](caf::error&) {});
  CAF_CHECK_EQUAL(fresh, 1);
  CAF_CHECK_EQUAL(replayed, 29);
  // Remembered until exp, then forgotten (the value is expired anyway).
  clock.advance(59'000ms);
  c.jti = "jti-1";
  auto late = ask<replay_verdict>(atom::check_v, c);
  CAF_CHECK(!late); // exp has passed: refused as input
  // Input past the limits; the registry's kind is not the callers'.
  c = {"client_assertion", "iss", "jti-2", clock.ms() / 1000 - 1};
  CAF_CHECK(has_code(ask<replay_verdict>(atom::check_v, c).error(),
                     ec::invalid_argument));
  c = {"bad scope", "iss", "jti-2", clock.ms() / 1000 + 60};
  CAF_CHECK(has_code(ask<replay_verdict>(atom::check_v, c).error(),
                     ec::invalid_argument));
  auto reserved = code("x");
  reserved.kind = "keymesh.jti";
  CAF_CHECK(has_code(put(reserved).error(), ec::invalid_argument));
}

CAF_TEST(a kind with caps of its own is held to them) {
  object_put p;
  p.kind = "Code";
  p.id = "c1";
  p.value = std::string(64, 'v');
  // Without a ttl: the default (600 s) capped at the kind's 60 s.
  auto put_ok = put(p);
  CAF_REQUIRE(put_ok);
  CAF_CHECK_EQUAL(put_ok->obj.expires_at - put_ok->obj.created_at, 60'000);
  p.id = "c2";
  p.value = std::string(65, 'v');
  auto big = put(p);
  CAF_REQUIRE(!big);
  CAF_CHECK(has_code(big.error(), ec::invalid_argument));
  CAF_CHECK_NOT_EQUAL(context_text(big.error()).find("Code"),
                      std::string::npos);
  p.value = "1";
  p.ttl_ms = 60'001;
  CAF_CHECK(has_code(put(p).error(), ec::invalid_argument));
  p.ttl_ms = 60'000;
  CAF_CHECK(put(p));
  // Other kinds keep the general caps.
  p.kind = "Grant";
  p.ttl_ms = 3'600'000;
  p.value = std::string(128, 'v');
  CAF_CHECK(put(p));
  // Caps past the general ones, or malformed, are refused at start.
  config::settings c;
  c.objects.kinds = {"Code:15d:1KiB"};
  CAF_CHECK(!objects_options::from_settings(c));
  c.objects.kinds = {"Code:10m"};
  CAF_CHECK(!objects_options::from_settings(c));
  c.objects.kinds = {"keymesh.jti:10m:1KiB"};
  CAF_CHECK(!objects_options::from_settings(c));
  c.objects.kinds = {"Code:10m:1KiB", "Grant:14d:64KiB"};
  CAF_CHECK(objects_options::from_settings(c));
}

CAF_TEST(a pushed request is redeemed once by its client) {
  auto pushed = ask<par_pushed>(
    atom::push_v, par_push{"client-a", R"({"scope":"openid"})", 0});
  CAF_REQUIRE(pushed);
  CAF_CHECK_EQUAL(pushed->request_uri.rfind(state::request_uri_prefix, 0),
                  0u);
  CAF_CHECK_EQUAL(pushed->expires_at, clock.ms() + 60'000);
  // Only a hash of the request_uri is kept.
  auto id = state::par_id(pushed->request_uri);
  CAF_REQUIRE(id);
  CAF_CHECK(*id != pushed->request_uri);
  // Another client presenting it is refused and does not use it up.
  auto stolen = ask<par_request>(atom::redeem_v,
                                 par_redeem{"client-b", pushed->request_uri});
  CAF_CHECK(has_code(stolen.error(), ec::client_mismatch));
  auto redeemed = ask<par_request>(
    atom::redeem_v, par_redeem{"client-a", pushed->request_uri});
  CAF_REQUIRE(redeemed);
  CAF_CHECK_EQUAL(redeemed->params, R"({"scope":"openid"})");
  auto again = ask<par_request>(atom::redeem_v,
                                par_redeem{"client-a", pushed->request_uri});
  CAF_CHECK(has_code(again.error(), ec::already_consumed));
  // Expired: told so for a while, then forgotten.
  auto short_lived = ask<par_pushed>(
    atom::push_v, par_push{"client-a", "{}", 1'000});
  CAF_REQUIRE(short_lived);
  clock.advance(1'000ms);
  auto late = ask<par_request>(
    atom::redeem_v, par_redeem{"client-a", short_lived->request_uri});
  CAF_CHECK(has_code(late.error(), ec::expired));
  clock.advance(std::chrono::milliseconds{state::par_expired_grace_ms});
  late = ask<par_request>(atom::redeem_v,
                          par_redeem{"client-a", short_lived->request_uri});
  CAF_CHECK(has_code(late.error(), ec::not_found));
  // A request_uri of the right shape never handed out; malformed ones.
  auto unknown = std::string{state::request_uri_prefix} + std::string(43, 'A');
  CAF_CHECK(has_code(ask<par_request>(atom::redeem_v,
                                      par_redeem{"client-a", unknown})
                       .error(),
                     ec::not_found));
  for (auto bad : {std::string{"urn:ietf:params:oauth:request_uri:short"},
                   unknown + "A", "https://example/" + std::string(43, 'A'),
                   std::string{state::request_uri_prefix}
                     + std::string(42, 'A') + "="})
    CAF_CHECK(has_code(
      ask<par_request>(atom::redeem_v, par_redeem{"client-a", bad}).error(),
      ec::invalid_argument));
  // Input past the limits.
  CAF_CHECK(has_code(ask<par_pushed>(atom::push_v,
                                     par_push{"client-a", "{}", 600'001})
                       .error(),
                     ec::invalid_argument));
  CAF_CHECK(has_code(ask<par_pushed>(atom::push_v,
                                     par_push{"", "{}", 0})
                       .error(),
                     ec::invalid_argument));
  CAF_CHECK(has_code(ask<par_pushed>(atom::push_v,
                                     par_push{"client-a",
                                              std::string(129, 'x'), 0})
                       .error(),
                     ec::invalid_argument));
  // The PAR kind is not the object routes'.
  CAF_CHECK(has_code(get(state::par_kind, *id).error(), ec::not_found));
}

CAF_TEST_FIXTURE_SCOPE_END()
