// Key rotation under an injected clock: a full 24-hour cycle runs in
// microseconds, deterministically.
#define CAF_SUITE keystore
#define FAIL(msg) CAF_FAIL(msg)
#include "caf/test/dsl.hpp"

#include "actors/federation.hpp"
#include "actors/keystore.hpp"
#include "jose/jwt.hpp"
#include "support/actor_config.hpp"
#include "persistence/data_dir.hpp"
#include "persistence/sealed.hpp"
#include "support/manual_clock.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

using namespace keymesh;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

namespace {

using keymesh::test::manual_clock;

/// Whether F throws persistence::storage_error.
template <class F>
bool refused(F f) {
  try {
    f();
  } catch (const persistence::storage_error&) {
    return true;
  }
  return false;
}

keystore_options test_options(const manual_clock& clock,
                              std::vector<uint64_t>* persisted = nullptr) {
  keystore_options opts;
  opts.algorithm = jose::algorithm::es256;
  opts.rotate_every = 24h;
  opts.max_token_ttl = 1h;
  opts.default_token_ttl = 15min;
  opts.leeway = 30s;
  opts.issuer = "https://issuer.test";
  opts.instance_id = "node-a";
  opts.first_sequence = 5;
  opts.clock = clock.fn();
  opts.own_thread = false; // run under the deterministic test coordinator
  if (persisted != nullptr)
    opts.persist_sequence = [persisted](uint64_t n) {
      persisted->push_back(n);
    };
  return opts;
}

jose::key_set published_keys(const keystore_state& st) {
  jose::key_set keys;
  for (auto& k : st.keys())
    keys.add(k.kid, k.key);
  return keys;
}

jose::verify_result check(const std::string& token, const jose::key_set& keys,
                          time_point now) {
  jose::verify_options opts;
  opts.issuer = "https://issuer.test";
  return jose::verify_jwt(token, keys, opts, now);
}

} // namespace

CAF_TEST(first_advance_publishes_current_and_next_key) {
  manual_clock clock;
  std::vector<uint64_t> persisted;
  keystore_state st;
  st.configure(test_options(clock, &persisted));
  auto t0 = *clock.now;
  CAF_CHECK(st.signing_key(t0) == nullptr);
  CAF_CHECK(st.advance(t0));
  CAF_REQUIRE_EQUAL(st.keys().size(), 2u);
  CAF_CHECK_EQUAL(st.keys()[0].kid, "node-a-5");
  CAF_CHECK_EQUAL(st.keys()[1].kid, "node-a-6");
  CAF_CHECK_EQUAL(st.signing_key(t0)->kid, "node-a-5");
  // The next key is published a whole rotation before it signs.
  CAF_CHECK(st.keys()[1].sign_from == t0 + 24h);
  CAF_CHECK(st.keys()[0].retire_at == t0 + 24h);
  CAF_CHECK(st.keys()[0].expire_at == t0 + 24h + 1h + 30s);
  CAF_CHECK(st.next_event() == t0 + 24h);
  CAF_CHECK_EQUAL(persisted, std::vector<uint64_t>({6, 7}));
  // Nothing changes until the next event.
  CAF_CHECK(!st.advance(t0 + 24h - 1ms));
}

CAF_TEST(full_rotation_cycle_keeps_every_issued_token_verifiable) {
  manual_clock clock;
  keystore_state st;
  st.configure(test_options(clock));
  auto t0 = *clock.now;
  st.advance(t0);
  // A token signed one second before the rotation, with the longest ttl.
  auto late = t0 + 24h - 1s;
  auto old_token = st.sign(token_request{"alice", {}, 7200, ""}, late);
  CAF_CHECK_EQUAL(old_token.kid, "node-a-5");
  CAF_CHECK_EQUAL(old_token.expires_at,
                  to_unix_seconds(late) + 3600); // ttl capped at 1h
  // Rotation: the pre-published key signs, a successor is published.
  auto t1 = t0 + 24h;
  CAF_CHECK(st.advance(t1));
  CAF_CHECK_EQUAL(st.signing_key(t1)->kid, "node-a-6");
  CAF_REQUIRE_EQUAL(st.keys().size(), 3u);
  CAF_CHECK_EQUAL(st.keys()[2].kid, "node-a-7");
  CAF_CHECK(st.keys()[2].sign_from == t0 + 48h);
  auto new_token = st.sign(token_request{"bob", {"api"}, 0, ""}, t1);
  CAF_CHECK_EQUAL(new_token.kid, "node-a-6");
  CAF_CHECK_EQUAL(new_token.expires_at, to_unix_seconds(t1) + 15 * 60);
  // The retired key stays published while its tokens live...
  auto just_before_exp = t1 + 1h - 2s;
  CAF_CHECK(!st.advance(just_before_exp));
  CAF_CHECK(check(old_token.token, published_keys(st), just_before_exp).ok());
  CAF_CHECK(check(new_token.token, published_keys(st), t1 + 10min).ok());
  // ...and leaves once they have expired (plus leeway).
  CAF_CHECK(st.next_event() == t0 + 24h + 1h + 30s);
  auto gone = t0 + 24h + 1h + 30s;
  CAF_CHECK(st.advance(gone));
  CAF_REQUIRE_EQUAL(st.keys().size(), 2u);
  CAF_CHECK_EQUAL(st.keys()[0].kid, "node-a-6");
  auto r = check(old_token.token, published_keys(st), gone);
  CAF_CHECK(r.reason == jose::verify_reason::unknown_kid);
  // The second rotation works the same way.
  auto t2 = t0 + 48h;
  CAF_CHECK(st.advance(t2));
  CAF_CHECK_EQUAL(st.signing_key(t2)->kid, "node-a-7");
  CAF_CHECK_EQUAL(st.keys().back().kid, "node-a-8");
}

CAF_TEST(a_long_sleep_never_lets_an_unpublished_key_sign) {
  manual_clock clock;
  keystore_state st;
  st.configure(test_options(clock));
  auto t0 = *clock.now;
  st.advance(t0);
  auto later = t0 + 24h * 100;
  CAF_CHECK(st.advance(later));
  // The key published at t0 signs now; its successor is one rotation ahead.
  CAF_CHECK_EQUAL(st.signing_key(later)->kid, "node-a-6");
  CAF_CHECK(st.keys().back().sign_from == later + 24h);
  CAF_CHECK_EQUAL(st.keys().size(), 2u);
}

CAF_TEST(registered_claims_cannot_be_overridden_by_extra_claims) {
  manual_clock clock;
  keystore_state st;
  st.configure(test_options(clock));
  auto t0 = *clock.now;
  st.advance(t0);
  auto t = st.sign(token_request{"carol", {"a", "b"}, 60,
                                 R"({"role":"admin","sub":"mallory"})"},
                   t0);
  auto r = check(t.token, published_keys(st), t0);
  CAF_REQUIRE(r.ok());
  CAF_CHECK_EQUAL(r.claims["sub"], "carol");
  CAF_CHECK_EQUAL(r.claims["role"], "admin");
  CAF_CHECK_EQUAL(r.claims["iss"], "https://issuer.test");
  CAF_CHECK_EQUAL(r.claims["aud"].size(), 2u);
  CAF_CHECK(r.claims["jti"].is_string());
  CAF_CHECK_EQUAL(r.claims["exp"].get<int64_t>()
                    - r.claims["iat"].get<int64_t>(),
                  60);
}

CAF_TEST(every_algorithm_rotates_and_signs) {
  for (auto alg : {jose::algorithm::eddsa, jose::algorithm::rs256}) {
    manual_clock clock;
    keystore_state st;
    auto opts = test_options(clock);
    opts.algorithm = alg;
    st.configure(opts);
    auto t0 = *clock.now;
    st.advance(t0);
    auto t = st.sign(token_request{"dave", {}, 0, ""}, t0);
    auto r = check(t.token, published_keys(st), t0);
    CAF_CHECK(r.ok());
    auto ann = st.announcement();
    CAF_REQUIRE_EQUAL(ann.keys.size(), 2u);
    CAF_CHECK_EQUAL(ann.keys[0].alg, jose::to_string(alg));
    CAF_CHECK(ann.keys[0].jwk.find("\"d\"") == std::string::npos);
  }
}

namespace {

using keymesh::test::actor_config;

struct fixture : test_coordinator_fixture<actor_config> {
  manual_clock clock;
  std::shared_ptr<key_snapshot_slot> slot
    = std::make_shared<key_snapshot_slot>();
  federation_actor fed;
  keystore_actor ks;

  fixture() {
    fed = spawn_federation(sys, "node-a", slot, clock.fn());
    auto spawned = spawn_keystore(sys, test_options(clock), fed);
    CAF_REQUIRE(spawned);
    ks = *spawned;
    consume_messages();
  }

  ~fixture() override {
    caf::anon_send_exit(ks, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(fed, caf::exit_reason::user_shutdown);
    consume_messages();
  }

  // Moves the wall clock and fires the actors' timers.
  void advance_wall_clock(milliseconds d) {
    clock.advance(d);
    trigger_timeouts();
    consume_messages();
  }

  // Signs through the actor (the reply waits in the test's mailbox).
  signed_token sign(std::string sub) {
    self->send(ks, atom::sign_v, token_request{std::move(sub), {}, 0, ""});
    consume_messages();
    signed_token result;
    self->receive([&](signed_token& t) { result = std::move(t); },
                  [&](caf::error& err) {
                    CAF_FAIL("sign failed: " << sys.render(err));
                  });
    return result;
  }

  jose::verify_reason verify(const std::string& token) {
    return check(token, slot->load()->keys, *clock.now).reason;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(keystore_actor_tests, fixture)

CAF_TEST(the_snapshot_follows_the_rotation_schedule) {
  auto snap = slot->load();
  CAF_REQUIRE(snap != nullptr);
  CAF_CHECK_EQUAL(snap->key_count, 2u);
  CAF_CHECK_EQUAL(snap->local_key_count, 2u);
  CAF_CHECK(snap->jwks.find("\"node-a-5\"") != std::string::npos);
  CAF_CHECK(snap->jwks.find("\"node-a-6\"") != std::string::npos);
  CAF_CHECK(snap->next_change == *clock.now + 24h);
  auto first_etag = snap->etag;
  auto first = sign("erin");
  CAF_CHECK_EQUAL(first.kid, "node-a-5");
  CAF_CHECK(verify(first.token) == jose::verify_reason::ok);
  // Twenty-four hours later the pre-published key signs, and the snapshot
  // holds three keys: retired, current, next.
  advance_wall_clock(24h);
  snap = slot->load();
  CAF_CHECK_EQUAL(snap->key_count, 3u);
  CAF_CHECK(snap->etag != first_etag);
  auto second = sign("frank");
  CAF_CHECK_EQUAL(second.kid, "node-a-6");
  CAF_CHECK(verify(second.token) == jose::verify_reason::ok);
  // Once the retired key's tokens have all expired, it is unpublished.
  advance_wall_clock(1h + 31s);
  snap = slot->load();
  CAF_CHECK_EQUAL(snap->key_count, 2u);
  CAF_CHECK(snap->jwks.find("\"node-a-5\"") == std::string::npos);
  CAF_CHECK(verify(first.token) == jose::verify_reason::unknown_kid);
  // The second token (15 min default ttl) has expired by now; a fresh one
  // from the same, still current key verifies.
  CAF_CHECK(verify(second.token) == jose::verify_reason::expired);
  auto third = sign("grace");
  CAF_CHECK_EQUAL(third.kid, "node-a-6");
  CAF_CHECK(verify(third.token) == jose::verify_reason::ok);
}

CAF_TEST(the_keystore_answers_with_its_announcement) {
  self->send(ks, atom::get_v, atom::keys_v);
  consume_messages();
  self->receive([&](key_announcement& ann) {
    CAF_CHECK_EQUAL(ann.origin, "node-a");
    CAF_CHECK_EQUAL(ann.keys.size(), 2u);
  });
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST(a_failed_rotation_leaves_the_current_key_signing) {
  manual_clock clock;
  keystore_state st;
  auto opts = test_options(clock);
  int writes = 0;
  bool disk_full = false;
  opts.persist_sequence = [&](uint64_t) {
    ++writes;
    if (disk_full)
      throw std::runtime_error("disk full");
  };
  st.configure(opts);
  auto t0 = *clock.now;
  st.advance(t0);
  CAF_REQUIRE_EQUAL(st.keys().size(), 2u);
  // At the rotation the data directory cannot be written.
  disk_full = true;
  auto t1 = t0 + 24h;
  bool threw = false;
  try {
    st.advance(t1);
  } catch (const std::runtime_error&) {
    threw = true;
  }
  CAF_CHECK(threw);
  // The schedule is as it was: the pre-published key signs, nothing retired
  // early, nothing half-made.
  CAF_CHECK_EQUAL(st.keys().size(), 2u);
  CAF_CHECK(st.keys()[1].retire_at == time_point::max());
  auto t = st.sign(token_request{"ivan", {}, 0, ""}, t1);
  CAF_CHECK_EQUAL(t.kid, "node-a-6");
  // Once the disk is back, the next attempt completes the rotation.
  disk_full = false;
  CAF_CHECK(st.advance(t1 + 1s));
  CAF_CHECK_EQUAL(st.keys().size(), 3u);
  CAF_CHECK(st.keys()[1].retire_at == t1 + 24h); // the schedule keeps its rhythm
  CAF_CHECK(writes >= 4);
}

CAF_TEST(rotate_now_promotes_the_published_key_and_publishes_a_new_one) {
  manual_clock clock;
  keystore_state st;
  st.configure(test_options(clock));
  auto t0 = *clock.now;
  st.advance(t0);
  auto t1 = t0 + 5h;
  auto old_token = st.sign(token_request{"judy", {}, 3600, ""}, t1 - 10min);
  auto [signing, next] = st.rotate_now(t1);
  CAF_CHECK_EQUAL(signing, "node-a-6");
  CAF_CHECK_EQUAL(next, "node-a-7");
  CAF_CHECK_EQUAL(st.signing_key(t1)->kid, "node-a-6");
  CAF_CHECK(st.keys().back().sign_from == t1 + 24h);
  // The retired key stays published until its tokens have expired.
  CAF_CHECK(st.keys()[0].retire_at == t1);
  CAF_CHECK(st.keys()[0].expire_at == t1 + 1h + 30s);
  CAF_CHECK(check(old_token.token, published_keys(st), t1 + 50min).ok());
}

CAF_TEST(a_due_key_waits_for_acknowledgement_at_most_ack_wait) {
  manual_clock clock;
  keystore_state st;
  auto opts = test_options(clock);
  opts.ack_wait = 2s;
  st.configure(opts);
  auto t0 = *clock.now;
  st.advance(t0);
  // The very first key signs at once: there is nothing older to fall back to.
  CAF_CHECK_EQUAL(st.signing_key(t0)->kid, "node-a-5");
  // At the rotation, the next key is not acknowledged yet: the current key
  // goes on signing for at most ack_wait, and its publication lasts that
  // much longer.
  auto t1 = t0 + 24h;
  CAF_CHECK(st.keys()[0].expire_at == t1 + 1h + 30s + 2s);
  CAF_CHECK_EQUAL(st.signing_key(t1)->kid, "node-a-5");
  CAF_CHECK_EQUAL(st.signing_key(t1 + 1999ms)->kid, "node-a-5");
  CAF_CHECK_EQUAL(st.signing_key(t1 + 2s)->kid, "node-a-6");
  // Once acknowledged, it signs on time.
  st.acknowledge(st.serial());
  CAF_CHECK_EQUAL(st.signing_key(t1)->kid, "node-a-6");
}

// -- kept keys (a single node with keys.encryption_key_file) -------------------

CAF_TEST(sealed_blobs_open_only_with_their_key_and_purpose) {
  auto key = std::string(32, '\x07');
  auto other = std::string(32, '\x08');
  auto sealed = persistence::seal(key, "secret text", "purpose-a");
  CAF_CHECK(sealed.find("secret text") == std::string::npos);
  auto opened = persistence::unseal(key, sealed, "purpose-a");
  CAF_REQUIRE(opened.has_value());
  CAF_CHECK_EQUAL(*opened, "secret text");
  CAF_CHECK(!persistence::unseal(other, sealed, "purpose-a"));
  CAF_CHECK(!persistence::unseal(key, sealed, "purpose-b"));
  // Any changed byte (header, nonce, ciphertext or tag) is refused.
  for (size_t i = 0; i < sealed.size(); ++i) {
    auto changed = sealed;
    changed[i] ^= 0x01;
    CAF_CHECK(!persistence::unseal(key, changed, "purpose-a"));
  }
  CAF_CHECK(!persistence::unseal(key, sealed.substr(0, sealed.size() - 1),
                                 "purpose-a"));
  CAF_CHECK(!persistence::unseal(key, "", "purpose-a"));
  // Two seals of the same text differ (a fresh nonce each).
  CAF_CHECK(persistence::seal(key, "x", "p") != persistence::seal(key, "x", "p"));
}

CAF_TEST(encryption_key_files_hold_64_hex_digits) {
  test::temp_dir dir;
  auto hex = persistence::new_encryption_key_hex();
  CAF_CHECK_EQUAL(hex.size(), 64u);
  test::write_file(dir.file("good"), hex + "\n");
  CAF_CHECK_EQUAL(persistence::read_encryption_key(dir.file("good")).size(),
                  32u);
  for (auto bad : {std::string{"abc\n"}, std::string(64, 'g'),
                   hex.substr(0, 62), hex + "00"}) {
    test::write_file(dir.file("bad"), bad);
    try {
      persistence::read_encryption_key(dir.file("bad"));
      CAF_FAIL("a bad key file was accepted");
    } catch (const persistence::storage_error& e) {
      // The message names the file, never its content.
      std::string what = e.what();
      CAF_CHECK(what.find(dir.file("bad")) != std::string::npos);
      CAF_CHECK(bad.size() < 8 || what.find(bad) == std::string::npos);
    }
  }
  CAF_CHECK(refused([&] { persistence::read_encryption_key(dir.file("missing")); }));
}

CAF_TEST(kept_keys_come_back_and_keep_their_tokens_verifying) {
  test::temp_dir dir;
  auto secret = std::string(32, '\x2a');
  auto path = dir.file("signing_keys.sealed");
  manual_clock clock;
  std::string token;
  std::vector<std::string> kids;
  {
    keystore_state st;
    auto opts = test_options(clock);
    opts.save_keys = [&](const std::deque<managed_key>& keys) {
      save_signing_keys(path, secret, "node-a", keys);
    };
    st.configure(std::move(opts));
    CAF_REQUIRE(st.advance(*clock.now));
    token_request req;
    req.sub = "alice";
    token = st.sign(req, *clock.now).token;
    for (auto& k : st.keys())
      kids.push_back(k.kid);
  }
  // The file holds no private key in the clear, and is the owner's alone.
  auto sealed = test::read_file(path);
  CAF_CHECK(sealed.find("\"d\"") == std::string::npos);
  CAF_CHECK(sealed.find("node-a-5") == std::string::npos);
  CAF_CHECK_EQUAL(std::filesystem::status(path).permissions()
                    & std::filesystem::perms::all,
                  std::filesystem::perms::owner_read
                    | std::filesystem::perms::owner_write);
  // A restart ten minutes later: the same keys publish, the old token
  // verifies, and the schedule goes on where it was.
  *clock.now += 10min;
  keystore_state again;
  auto opts = test_options(clock);
  opts.first_sequence = 7;
  opts.restored_keys = load_signing_keys(path, secret, "node-a", "k");
  CAF_REQUIRE_EQUAL(opts.restored_keys.size(), 2u);
  again.configure(std::move(opts));
  CAF_CHECK(again.advance(*clock.now)); // announced once
  CAF_REQUIRE_EQUAL(again.keys().size(), 2u);
  CAF_CHECK_EQUAL(again.keys()[0].kid, kids[0]);
  CAF_CHECK_EQUAL(again.keys()[1].kid, kids[1]);
  CAF_CHECK_EQUAL(again.signing_key(*clock.now)->kid, kids[0]);
  CAF_CHECK_EQUAL(again.announcement().keys.size(), 2u);
  auto result = check(token, published_keys(again), *clock.now);
  CAF_CHECK(result.ok());
  CAF_CHECK(!again.advance(*clock.now));
  // Keys whose tokens have all expired are not brought back.
  *clock.now += 48h;
  keystore_state later;
  auto late_opts = test_options(clock);
  late_opts.first_sequence = 7;
  late_opts.restored_keys = load_signing_keys(path, secret, "node-a", "k");
  CAF_CHECK_EQUAL(late_opts.restored_keys.size(), 2u);
  later.configure(std::move(late_opts));
  CAF_CHECK(later.advance(*clock.now));
  CAF_REQUIRE_EQUAL(later.keys().size(), 2u);
  CAF_CHECK_EQUAL(later.keys()[0].kid, kids[1]); // signs now
  CAF_CHECK_EQUAL(later.keys()[1].kid, "node-a-7");
  // Another key, another instance id, or a changed file: refused clearly.
  CAF_CHECK(refused([&] { load_signing_keys(path, std::string(32, '\x01'),
                                        "node-a", "k"); }));
  CAF_CHECK(refused([&] { load_signing_keys(path, secret, "node-b", "k"); }));
  auto damaged = sealed;
  damaged[damaged.size() / 2] ^= 0x10;
  test::write_file(path, damaged);
  CAF_CHECK(refused([&] { load_signing_keys(path, secret, "node-a", "k"); }));
  CAF_CHECK(load_signing_keys(dir.file("none"), secret, "node-a", "k").empty());
}

CAF_TEST(a_failed_save_is_retried_until_it_works) {
  manual_clock clock;
  keystore_state st;
  auto opts = test_options(clock);
  int calls = 0;
  bool fail = true;
  opts.save_keys = [&](const std::deque<managed_key>&) {
    ++calls;
    if (fail)
      throw persistence::storage_error("disk full");
  };
  st.configure(std::move(opts));
  CAF_CHECK(st.advance(*clock.now)); // the keys sign although not stored
  CAF_CHECK(st.signing_key(*clock.now) != nullptr);
  CAF_CHECK(st.save_pending());
  CAF_CHECK(!st.advance(*clock.now + 1s));
  CAF_CHECK(st.save_pending());
  fail = false;
  CAF_CHECK(!st.advance(*clock.now + 2s));
  CAF_CHECK(!st.save_pending());
  CAF_CHECK_EQUAL(calls, 3);
  CAF_CHECK(!st.advance(*clock.now + 3s));
  CAF_CHECK_EQUAL(calls, 3);
}
