// Shard actors of one partition on three simulated nodes, under the test
// coordinator: routing to owners, replication and write consistency,
// conditional writes, handoff on an ownership change, anti-entropy repair.
#define CAF_SUITE shard
#define FAIL(msg) CAF_FAIL(msg)
#include "caf/test/dsl.hpp"

#include "actors/shard.hpp"
#include "state/attempts.hpp"
#include "support/actor_config.hpp"
#include "support/manual_clock.hpp"

using namespace keymesh;
using namespace std::chrono_literals;
using keymesh::test::manual_clock;

namespace {

using keymesh::test::actor_config;

struct fixture : test_coordinator_fixture<actor_config> {
  manual_clock clock;
  std::shared_ptr<monotonic_time> mono
    = std::make_shared<monotonic_time>(monotonic_time{} + 1h);
  std::shared_ptr<state_metrics> metrics = std::make_shared<state_metrics>(1);
  std::map<std::string, shard_actor> nodes;
  uint64_t epoch = 0;

  shard_actor add_node(const std::string& id,
                       write_consistency c = write_consistency::all,
                       std::chrono::milliseconds anti_entropy = 0ms,
                       bool manual_monotonic = false) {
    shard_options opts;
    opts.partition = 0;
    opts.instance_id = id;
    opts.clock = std::make_shared<state::hlc>(state::node_tag(id), clock.fn());
    opts.wall = clock.fn();
    opts.consistency = c;
    opts.anti_entropy_interval = anti_entropy; // 0: every tick
    if (manual_monotonic)
      opts.monotonic = [t = mono] { return *t; };
    opts.metrics = metrics;
    auto s = spawn_shard(sys, std::move(opts));
    nodes[id] = s;
    return s;
  }

  /// Tells the nodes of TOLD (empty: every live one) that OWNERS own the
  /// partition in a view of LIVE, of KNOWN members known, with REPLICAS
  /// copies (0: every member).
  void set_view(std::vector<std::string> live, std::vector<std::string> owners,
                uint32_t known = 1, uint32_t replicas = 0,
                std::vector<std::string> told = {}) {
    ownership o;
    o.epoch = ++epoch;
    o.owners = std::move(owners);
    o.members = live;
    o.known = known;
    o.replicas = replicas;
    for (auto& id : live)
      o.shards.push_back(nodes.at(id));
    for (auto& id : told.empty() ? live : told)
      self->send(nodes.at(id), atom::owners_v, o);
    sched.run();
  }

  ~fixture() override {
    for (auto& [id, s] : nodes)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    sched.run();
  }

  template <class Result, class... Ts>
  caf::expected<Result> ask(const std::string& node, Ts... xs) {
    self->send(nodes.at(node), xs...);
    sched.run();
    caf::expected<Result> out{caf::error{}};
    self->receive([&](Result& r) { out = std::move(r); },
                  [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  /// A write of KEY in the sessions keyspace, valid for a minute.
  write_request make_write(std::string key, std::string value = {}) const {
    write_request w;
    w.keyspace = "sessions";
    w.key = std::move(key);
    w.value = std::move(value);
    w.expires_at = clock.ms() + 60'000;
    return w;
  }

  caf::expected<write_result> put(const std::string& node, std::string key,
                                  std::string value,
                                  write_condition cond = write_condition::always,
                                  state::version expected = {}) {
    auto w = make_write(std::move(key), std::move(value));
    w.condition = cond;
    w.expected = expected;
    return ask<write_result>(node, atom::put_v, w);
  }

  /// A decision: fenced, and checked by every owner.
  caf::expected<write_result> decide(const std::string& node, std::string key,
                                     std::string value, write_condition cond,
                                     state::version expected = {}) {
    auto w = make_write(std::move(key), std::move(value));
    w.condition = cond;
    w.expected = expected;
    w.decide = true;
    return ask<write_result>(node, atom::put_v, w);
  }

  /// Three nodes, a and b owning the partition; "code" written live. Then
  /// b and c lose a (a partition): their view makes b the primary and c,
  /// which pulls the record from b, the other owner; a keeps its old view.
  /// Returns the live record's write.
  write_result split_from_a() {
    for (auto id : {"a", "b", "c"})
      add_node(id);
    set_view({"a", "b", "c"}, {"a", "b"}, 3, 2);
    auto live = put("a", "code", "live");
    CAF_REQUIRE(live);
    set_view({"b", "c"}, {"b", "c"}, 3, 2);
    return *live;
  }

  caf::expected<write_result> remove(const std::string& node, std::string key) {
    auto w = make_write(std::move(key));
    w.tombstone = true;
    w.expires_at = clock.ms() + 1'000;
    return ask<write_result>(node, atom::put_v, w);
  }

  /// The value at NODE ("<absent>", "<tombstone>" or the value).
  std::string get(const std::string& node, std::string key) {
    auto r = ask<read_result>(node, atom::get_v,
                              read_request{"sessions", std::move(key), 0});
    if (!r)
      return "<error " + sys.render(r.error()) + ">";
    if (!r->found)
      return "<absent>";
    return r->rec.tombstone ? "<tombstone>" : r->rec.value;
  }

  size_t local_size(const std::string& node) {
    auto snap = ask<std::string>(node, atom::snapshot_v);
    state::partition_snapshot out;
    std::string error;
    CAF_REQUIRE(snap && state::decode_snapshot(*snap, out, error));
    return out.records.size();
  }

  void tick() {
    sched.trigger_timeouts();
    sched.run();
  }

  /// A record with VALUE, stamped MS after now, valid for a minute.
  state::record record_of(std::string value, uint64_t ms) const {
    state::record r;
    r.value = std::move(value);
    r.ver = state::version{state::make_stamp(clock.ms() + ms), 1};
    r.expires_at = clock.ms() + 60'000;
    return r;
  }
};

bool is(const caf::error& err, ec code) {
  return err.category() == error_category
         && err.code() == static_cast<uint8_t>(code);
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(shard_tests, fixture)

CAF_TEST(a single owner serves reads and writes and checks conditions) {
  add_node("a");
  set_view({"a"}, {"a"});
  auto w = put("a", "s1", "v1", write_condition::absent);
  CAF_REQUIRE(w);
  CAF_CHECK_EQUAL(w->copies, 1u);
  CAF_CHECK_EQUAL(get("a", "s1"), "v1");
  auto dup = put("a", "s1", "v2", write_condition::absent);
  CAF_REQUIRE(!dup);
  CAF_CHECK(is(dup.error(), ec::conflict));
  auto missing = put("a", "nope", "x", write_condition::exists);
  CAF_REQUIRE(!missing);
  CAF_CHECK(is(missing.error(), ec::not_found));
  // Read-modify-write: the first writer with the current version wins.
  auto v = w->ver;
  CAF_CHECK(put("a", "s1", "v3", write_condition::version_is, v));
  auto lost = put("a", "s1", "v4", write_condition::version_is, v);
  CAF_REQUIRE(!lost);
  CAF_CHECK(is(lost.error(), ec::conflict));
  CAF_CHECK_EQUAL(get("a", "s1"), "v3");
  // A deleted key answers as a tombstone and cannot be created again.
  CAF_CHECK(remove("a", "s1"));
  CAF_CHECK_EQUAL(get("a", "s1"), "<tombstone>");
  CAF_CHECK(!put("a", "s1", "again", write_condition::absent));
  CAF_CHECK(!put("a", "s1", "again", write_condition::exists));
  // Expiry: the record disappears when its time is up.
  CAF_CHECK(put("a", "short", "x"));
  clock.advance(61s);
  CAF_CHECK_EQUAL(get("a", "short"), "<absent>");
  tick();
  CAF_CHECK_EQUAL(local_size("a"), 0u);
}

CAF_TEST(the primary reserves attempts and replicates each count) {
  for (auto id : {"a", "b", "c"})
    add_node(id);
  set_view({"a", "b", "c"}, {"a", "b"});
  attempt_request req{"login_failures", "alice", 3, 60'000, 600'000, 0};
  // From every node in turn, owner or not: one count, decided by a.
  for (int n = 1; n <= 3; ++n) {
    auto node = std::string(1, static_cast<char>('a' + (n - 1) % 3));
    auto r = ask<attempt_result>(node, atom::reserve_v, req);
    CAF_REQUIRE(r);
    CAF_CHECK(r->granted);
    CAF_CHECK_EQUAL(r->count, n);
    // The replica holds the count before the answer.
    CAF_CHECK_EQUAL(
      state::decode_attempts(
        ask<read_result>("b", atom::get_v,
                         read_request{"login_failures", "alice", 0})
          ->rec.value)
        .count,
      n);
  }
  // The third locked the key: the next is refused, uncounted.
  auto refused = ask<attempt_result>("c", atom::reserve_v, req);
  CAF_REQUIRE(refused);
  CAF_CHECK(!refused->granted);
  CAF_CHECK_EQUAL(refused->locked_until, clock.ms() + 600'000);
  // Another key is counted on its own.
  req.key = "bob";
  CAF_CHECK(ask<attempt_result>("a", atom::reserve_v, req)->granted);
}

CAF_TEST(any node answers and writes reach every owner before the ack) {
  for (auto id : {"a", "b", "c"})
    add_node(id);
  set_view({"a", "b", "c"}, {"a", "b"});
  // c owns nothing: it forwards the write to the primary a.
  auto w = put("c", "s1", "hello");
  CAF_REQUIRE(w);
  CAF_CHECK_EQUAL(w->copies, 2u);
  CAF_CHECK_EQUAL(w->owners, 2u);
  CAF_CHECK_EQUAL(local_size("a"), 1u);
  CAF_CHECK_EQUAL(local_size("b"), 1u);
  CAF_CHECK_EQUAL(local_size("c"), 0u);
  for (auto id : {"a", "b", "c"})
    CAF_CHECK_EQUAL(get(id, "s1"), "hello");
  // b is an owner but not the primary: its writes go to a too.
  CAF_CHECK(put("b", "s1", "update", write_condition::exists));
  CAF_CHECK_EQUAL(get("a", "s1"), "update");
  CAF_CHECK_EQUAL(get("b", "s1"), "update");
  CAF_CHECK(metrics->forwarded.load() >= 2u);
}

CAF_TEST(a forward to an owner that is gone is unavailable not an internal error) {
  for (auto id : {"a", "b", "c"})
    add_node(id);
  set_view({"a", "b", "c"}, {"a", "b"});
  // a and b die (a killed node's proxies end like this) before c's view
  // changes: c forwards to an actor that is no more.
  for (auto id : {"a", "b"})
    caf::anon_send_exit(nodes.at(id), caf::exit_reason::kill);
  sched.run();
  auto r = ask<read_result>("c", atom::get_v,
                            read_request{"sessions", "s1", 0});
  CAF_REQUIRE(!r);
  CAF_MESSAGE(sys.render(r.error()));
  CAF_CHECK(is(r.error(), ec::unavailable));
  auto w = put("c", "s1", "v");
  CAF_REQUIRE(!w);
  CAF_MESSAGE(sys.render(w.error()));
  CAF_CHECK(is(w.error(), ec::unavailable));
  nodes.erase("a");
  nodes.erase("b");
}

CAF_TEST(a write waits for live owners only) {
  for (auto id : {"a", "b"})
    add_node(id);
  set_view({"a", "b"}, {"a", "b"});
  self->send(nodes.at("a"), atom::put_v, make_write("s1", "v"));
  // Deliver the write to a only: b's replication request waits in its
  // mailbox.
  sched.run_once();
  CAF_CHECK(sched.has_job());
  // b leaves the view before it answers: the write is acknowledged with
  // the one copy the live owners hold.
  caf::anon_send_exit(nodes.at("b"), caf::exit_reason::kill);
  nodes.erase("b");
  set_view({"a"}, {"a"});
  write_result result;
  self->receive([&](write_result& r) { result = r; },
                [&](caf::error& err) { CAF_FAIL(sys.render(err)); });
  CAF_CHECK_EQUAL(result.copies, 1u);
}

CAF_TEST(write consistency one acknowledges before replicas answer) {
  add_node("a", write_consistency::one);
  add_node("b", write_consistency::one);
  set_view({"a", "b"}, {"a", "b"});
  self->send(nodes.at("a"), atom::put_v, make_write("s1", "v"));
  sched.run_once(); // a handles the write; b has not seen it
  bool acked = false;
  self->receive([&](write_result& r) { acked = r.copies == 1; },
                caf::after(std::chrono::seconds(0)) >> [] {});
  CAF_CHECK(acked);
  sched.run();
  CAF_CHECK_EQUAL(local_size("b"), 1u);
}

CAF_TEST(a new owner pulls the partition before it serves) {
  for (auto id : {"a", "b", "c"})
    add_node(id);
  set_view({"a", "b", "c"}, {"a", "b"});
  for (int i = 0; i < 50; ++i)
    CAF_REQUIRE(put("a", "k" + std::to_string(i), "v" + std::to_string(i)));
  CAF_CHECK(remove("a", "k7"));
  CAF_CHECK_EQUAL(local_size("c"), 0u);
  // b goes away; c takes its place.
  caf::anon_send_exit(nodes.at("b"), caf::exit_reason::kill);
  nodes.erase("b");
  ownership o;
  o.epoch = ++epoch;
  o.owners = {"c", "a"};
  o.members = {"a", "c"};
  o.shards = {nodes.at("a"), nodes.at("c")};
  self->send(nodes.at("c"), atom::owners_v, o);
  self->send(nodes.at("a"), atom::owners_v, o);
  // A read reaches c before its handoff completes: it is parked, then
  // answered from the pulled data.
  self->send(nodes.at("c"), atom::get_v, read_request{"sessions", "k3", 0});
  sched.run();
  std::string seen;
  self->receive(
    [&](read_result& r) { seen = r.found ? r.rec.value : "<absent>"; },
    [&](caf::error& err) { CAF_FAIL(sys.render(err)); });
  // The router's synced notices for both shards arrive in the mailbox.
  CAF_CHECK_EQUAL(seen, "v3");
  CAF_CHECK_EQUAL(local_size("c"), 50u);
  CAF_CHECK_EQUAL(get("c", "k7"), "<tombstone>");
  CAF_CHECK(metrics->handoffs.load() >= 1u);
  CAF_CHECK_EQUAL(metrics->handoff_records.load(), 50u);
}

CAF_TEST(owners exchange at once when a member comes back) {
  for (auto id : {"a", "b", "c"})
    add_node(id);
  set_view({"a", "b", "c"}, {"a", "b"}, 3, 2);
  // c is cut off (a and b own the partition on their side, as before).
  set_view({"a", "b"}, {"a", "b"}, 3, 2);
  // a holds a write that b lacks: one c took while it was alone and a got
  // from c when the cut healed (a's link to c came up before b's).
  CAF_REQUIRE(ask<atom::ok>(
    "a", atom::replicate_v,
    record_list{{"sessions", "made-alone", record_of("x", 5)}}));
  CAF_REQUIRE_EQUAL(local_size("b"), 0u);
  // c is back. The owners did not change, but b exchanges with a now, with
  // no anti-entropy round (no tick) in between.
  set_view({"a", "b", "c"}, {"a", "b"}, 3, 2);
  CAF_CHECK_EQUAL(local_size("b"), 1u);
  CAF_CHECK_EQUAL(get("b", "made-alone"), "x");
}

CAF_TEST(one more round follows a tick after a member comes back) {
  // Anti-entropy every hour: only the round after the view change runs.
  for (auto id : {"a", "b", "c"})
    add_node(id, write_consistency::all, 1h, true);
  set_view({"a", "b"}, {"a", "b"}, 3, 2);
  tick();
  auto rounds = metrics->anti_entropy_rounds.load();
  set_view({"a", "b", "c"}, {"a", "b"}, 3, 2); // c is back
  // A write coordinated under an older view reaches a only after the
  // exchange the view change made.
  CAF_REQUIRE(ask<atom::ok>(
    "a", atom::replicate_v,
    record_list{{"sessions", "late", record_of("late", 5)}}));
  CAF_CHECK_EQUAL(local_size("b"), 0u);
  *mono += 1s;
  tick();
  CAF_CHECK(metrics->anti_entropy_rounds.load() > rounds);
  CAF_CHECK_EQUAL(local_size("b"), 1u);
}

CAF_TEST(anti entropy repairs a replica that missed writes) {
  for (auto id : {"a", "b"})
    add_node(id);
  set_view({"a", "b"}, {"a", "b"});
  for (int i = 0; i < 20; ++i)
    CAF_REQUIRE(put("a", "k" + std::to_string(i), "v"));
  // Writes that only a has (as if b had been cut off) and one only b has.
  CAF_CHECK(ask<atom::ok>("a", atom::replicate_v,
                          record_list{{"sessions", "only-a", record_of("x", 5)},
                                      {"sessions", "k1", record_of("newer", 6)}}));
  CAF_CHECK(ask<atom::ok>("b", atom::replicate_v,
                          record_list{{"sessions", "only-b", record_of("y", 7)}}));
  CAF_CHECK_EQUAL(local_size("a"), 21u);
  CAF_CHECK_EQUAL(local_size("b"), 21u);
  tick(); // both run an anti-entropy round
  CAF_CHECK_EQUAL(local_size("a"), 22u);
  CAF_CHECK_EQUAL(local_size("b"), 22u);
  CAF_CHECK_EQUAL(get("b", "k1"), "newer");
  CAF_CHECK_EQUAL(get("a", "only-b"), "y");
  CAF_CHECK(metrics->anti_entropy_rounds.load() >= 1u);
  CAF_CHECK(metrics->anti_entropy_repairs.load() >= 2u);
}

CAF_TEST(a node in a minority or short of owners decides nothing) {
  for (auto id : {"a", "b", "c"})
    add_node(id);
  // a sees itself only, of the three members it knows: it goes on taking
  // plain writes, but decides nothing.
  set_view({"a"}, {"a"}, 3, 2, {"a"});
  auto lone = decide("a", "code", "x", write_condition::absent);
  CAF_REQUIRE(!lone);
  CAF_CHECK(is(lone.error(), ec::unavailable));
  CAF_CHECK(put("a", "plain", "x"));
  CAF_CHECK_EQUAL(metrics->decisions_fenced.load(), 1u);
  // Two of three with both owners live: a majority that decides.
  set_view({"a", "b"}, {"a", "b"}, 3, 2);
  auto won = decide("a", "code", "x", write_condition::absent);
  CAF_REQUIRE(won);
  CAF_CHECK_EQUAL(won->copies, 2u);
  CAF_CHECK_EQUAL(get("b", "code"), "x");
  // A majority with fewer owners than the replication factor asks for.
  set_view({"a", "b", "c"}, {"a"}, 3, 2);
  auto short_of = decide("a", "code2", "x", write_condition::absent);
  CAF_REQUIRE(!short_of);
  CAF_CHECK(is(short_of.error(), ec::unavailable));
}

CAF_TEST(an owner with a newer copy refuses a stale primary) {
  auto live = split_from_a();
  CAF_CHECK_EQUAL(get("c", "code"), "live");
  auto first = decide("c", "code", "consumed by 1", write_condition::version_is,
                      live.ver);
  CAF_REQUIRE(first);
  // a still believes it is the primary, and its copy is the old one: b,
  // an owner in both views, refuses, and a learns b's copy.
  auto second = decide("a", "code", "consumed by 2",
                       write_condition::version_is, live.ver);
  CAF_REQUIRE(!second);
  CAF_CHECK(is(second.error(), ec::conflict));
  CAF_CHECK_EQUAL(get("a", "code"), "consumed by 1");
  CAF_CHECK_EQUAL(metrics->decisions_outdated.load(), 1u);
  // Anti-entropy cannot bring the loser back anywhere.
  set_view({"a", "b", "c"}, {"a", "b"}, 3, 2);
  tick();
  for (auto id : {"a", "b", "c"})
    CAF_CHECK_EQUAL(get(id, "code"), "consumed by 1");
}

CAF_TEST(a stale primary that decides first wins and the new one loses) {
  auto live = split_from_a();
  auto first = decide("a", "code", "consumed by 1", write_condition::version_is,
                      live.ver);
  CAF_REQUIRE(first);
  auto second = decide("c", "code", "consumed by 2",
                       write_condition::version_is, live.ver);
  CAF_REQUIRE(!second);
  CAF_CHECK(is(second.error(), ec::conflict));
  // c forwarded to its primary b, which refused; c learns of it from b in
  // the next anti-entropy round.
  tick();
  for (auto id : {"a", "b", "c"})
    CAF_CHECK_EQUAL(get(id, "code"), "consumed by 1");
}

CAF_TEST(an owner that missed writes takes a decision on a newer version) {
  for (auto id : {"a", "b"})
    add_node(id);
  set_view({"a", "b"}, {"a", "b"}, 2, 2);
  CAF_REQUIRE(put("a", "code", "v1"));
  // A newer version reaches a only (b's replication was cut off).
  state::record newer;
  newer.value = "v2";
  newer.ver = state::version{state::make_stamp(clock.ms() + 1000, 0), 1};
  newer.expires_at = clock.ms() + 60'000;
  CAF_REQUIRE(ask<atom::ok>("a", atom::replicate_v,
                            record_list{{"sessions", "code", newer}}));
  CAF_CHECK_EQUAL(get("b", "code"), "v1");
  auto w = decide("a", "code", "v3", write_condition::version_is, newer.ver);
  CAF_REQUIRE(w);
  CAF_CHECK_EQUAL(get("b", "code"), "v3");
}

CAF_TEST(decisions on one key at one primary run one after the other) {
  for (auto id : {"a", "b"})
    add_node(id);
  set_view({"a", "b"}, {"a", "b"}, 2, 2);
  // Two creates of the same key, sent before either is decided.
  auto w = make_write("code", "first");
  w.condition = write_condition::absent;
  w.decide = true;
  self->send(nodes.at("a"), atom::put_v, w);
  w.value = "second";
  self->send(nodes.at("a"), atom::put_v, w);
  sched.run();
  int won = 0;
  int lost = 0;
  for (int i = 0; i < 2; ++i)
    self->receive([&](write_result&) { ++won; },
                  [&](caf::error& err) {
                    CAF_CHECK(is(err, ec::conflict));
                    ++lost;
                  });
  CAF_CHECK_EQUAL(won, 1);
  CAF_CHECK_EQUAL(lost, 1);
  CAF_CHECK_EQUAL(get("a", "code"), get("b", "code"));
}

CAF_TEST_FIXTURE_SCOPE_END()
