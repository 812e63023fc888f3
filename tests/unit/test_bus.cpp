// Bus actors of three simulated nodes under the test coordinator: fan-out
// and acknowledgements, de-duplication, catch-up after a (re)join, new
// incarnations, the resume log behind the event stream, membership events
// and revocations applied to the deny set.
#define CAF_SUITE bus
#define FAIL(msg) CAF_FAIL(msg)
#include "caf/test/dsl.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "actors/bus.hpp"
#include "support/actor_config.hpp"
#include "support/manual_clock.hpp"

using namespace keymesh;
using namespace std::chrono_literals;
using keymesh::test::manual_clock;

namespace {

using keymesh::test::actor_config;

struct fixture : test_coordinator_fixture<actor_config> {
  manual_clock clock;
  std::map<std::string, bus_actor> buses;
  std::map<std::string, std::shared_ptr<state::deny_set>> denies;

  bus_actor add_bus(const std::string& id, uint64_t incarnation = 1,
                    bool members = false) {
    bus_options opts;
    opts.instance_id = id;
    opts.incarnation = incarnation;
    opts.clock = clock.fn();
    opts.retention = 100;
    opts.log_events = 1000;
    opts.log_age = 60s;
    opts.publish_members = members;
    opts.deny = denies[id] = std::make_shared<state::deny_set>();
    auto b = spawn_bus(sys, std::move(opts));
    buses[id] = b;
    sched.run();
    return b;
  }

  /// Links A and B both ways, as membership does.
  void link(const std::string& a, const std::string& b) {
    self->send(buses.at(a), atom::join_v, peer_bus{b, buses.at(b)});
    self->send(buses.at(b), atom::join_v, peer_bus{a, buses.at(a)});
    sched.run();
  }

  ~fixture() override {
    for (auto& [id, b] : buses)
      caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
    sched.run();
  }

  /// A subscriber on node ID for TOPICS.
  caf::actor subscriber(const std::string& id,
                        std::vector<std::string> topics) {
    auto events = received_[id + "/" + std::to_string(received_.size())]
      = std::make_shared<std::vector<bus_event>>();
    // The int: CAF 0.17.6 spawns a function without arguments through a
    // null pointer (CAF_NOTES.md).
    auto sub = sys.spawn(
      [events](caf::event_based_actor*, int) -> caf::behavior {
        return {[events](atom::event, bus_event& e) { events->push_back(e); }};
      },
      0);
    subscribers_.push_back(sub);
    self->send(buses.at(id), atom::subscribe_v, std::move(topics), sub);
    sched.run();
    last_events = events;
    return sub;
  }

  std::vector<std::string> publish(const std::string& id, std::string topic,
                                   std::string payload) {
    self->send(buses.at(id), atom::publish_v, std::move(topic),
               std::move(payload));
    sched.run();
    std::vector<std::string> unreached{"(no answer)"};
    self->receive([&](std::vector<std::string>& u) { unreached = u; },
                  [&](caf::error& err) { CAF_FAIL(sys.render(err)); });
    return unreached;
  }

  std::pair<bus_event_list, bool>
  history(const std::string& id, std::string after,
          std::vector<std::string> topics = {"*"}) {
    self->send(buses.at(id), atom::subscribe_v, std::move(topics),
               caf::actor{}, std::move(after));
    sched.run();
    std::pair<bus_event_list, bool> out;
    self->receive(
      [&](bus_event_list& events, bool found) {
        out = {std::move(events), found};
      },
      [&](caf::error& err) { CAF_FAIL(sys.render(err)); });
    return out;
  }

  static std::vector<uint64_t> serials(const std::vector<bus_event>& events) {
    std::vector<uint64_t> out;
    for (auto& e : events)
      out.push_back(e.serial);
    return out;
  }

  /// Whether the answer to a (get, revoke) is in self's mailbox.
  bool answered_ready() {
    bool ready = false;
    self->receive([&](bool ok) { ready = ok; },
                  [&](caf::error& err) { CAF_FAIL(sys.render(err)); },
                  caf::after(std::chrono::seconds{0}) >> [] {});
    return ready;
  }

  std::shared_ptr<std::vector<bus_event>> last_events;

private:
  std::map<std::string, std::shared_ptr<std::vector<bus_event>>> received_;
  std::vector<caf::actor> subscribers_;

public:
  void stop_subscribers() {
    for (auto& s : subscribers_)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    sched.run();
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(bus_tests, fixture)

CAF_TEST(events reach every node once and publish reports acks) {
  add_bus("a");
  add_bus("b");
  add_bus("c");
  link("a", "b");
  link("a", "c");
  subscriber("b", {"t"});
  auto on_b = last_events;
  subscriber("c", {"*"});
  auto on_c = last_events;
  subscriber("a", {"other"});
  auto on_a_other = last_events;
  auto unreached = publish("a", "t", R"({"n":1})");
  CAF_CHECK(unreached.empty());
  CAF_CHECK_EQUAL(on_b->size(), 1u);
  CAF_CHECK_EQUAL(on_c->size(), 1u);
  CAF_CHECK(on_a_other->empty());
  // A duplicate delivery (a retry, a replay) is dropped.
  auto e = on_b->at(0);
  self->send(buses.at("b"), atom::deliver_v, bus_event_list{e, e});
  sched.run();
  self->receive([](atom::ok) {});
  CAF_CHECK_EQUAL(on_b->size(), 1u);
  CAF_CHECK_EQUAL(e.origin, "a");
  CAF_CHECK_EQUAL(e.serial, 1u);
  CAF_CHECK_EQUAL(e.id(), "a.1." + std::to_string(e.serial));
  stop_subscribers();
}

CAF_TEST(a peer that is gone is named as unreached) {
  add_bus("a");
  add_bus("b");
  link("a", "b");
  caf::anon_send_exit(buses.at("b"), caf::exit_reason::kill);
  sched.run();
  auto unreached = publish("a", "t", "{}");
  CAF_REQUIRE_EQUAL(unreached.size(), 1u);
  CAF_CHECK_EQUAL(unreached[0], "b");
  buses.erase("b");
}

CAF_TEST(a node that joins late catches up on missed serials) {
  add_bus("a");
  add_bus("b");
  subscriber("b", {"t"});
  auto on_b = last_events;
  publish("a", "t", R"({"n":1})");
  publish("a", "t", R"({"n":2})");
  publish("a", "t", R"({"n":3})");
  CAF_CHECK(on_b->empty());
  link("a", "b");
  CAF_CHECK_EQUAL(serials(*on_b), (std::vector<uint64_t>{1, 2, 3}));
  // A rejoin (a link flap) replays nothing twice.
  publish("a", "t", R"({"n":4})");
  link("a", "b");
  CAF_CHECK_EQUAL(serials(*on_b), (std::vector<uint64_t>{1, 2, 3, 4}));
  stop_subscribers();
}

CAF_TEST(events missed while a link was down arrive even when newer ones came first) {
  add_bus("a");
  add_bus("b");
  subscriber("b", {"revocations", "t"});
  auto on_b = last_events;
  link("a", "b");
  publish("a", "t", R"({"n":1})");
  // The link goes; a publishes what b does not hear.
  self->send(buses.at("a"), atom::leave_v, std::string{"b"});
  self->send(buses.at("b"), atom::leave_v, std::string{"a"});
  sched.run();
  publish("a", "revocations",
          R"({"type":"sid","value":"missed-while-away","revoked_at":1,"until":9999999999999})");
  publish("a", "t", R"({"n":3})");
  // a sees the link back first and sends its next event at once; b's own
  // catch-up comes after.
  self->send(buses.at("a"), atom::join_v, peer_bus{"b", buses.at("b")});
  sched.run();
  publish("a", "t", R"({"n":4})");
  self->send(buses.at("b"), atom::join_v, peer_bus{"a", buses.at("a")});
  sched.run();
  auto got = serials(*on_b);
  std::sort(got.begin(), got.end());
  CAF_CHECK_EQUAL(got, (std::vector<uint64_t>{1, 2, 3, 4}));
  CAF_CHECK(denies.at("b")->session_denied("missed-while-away", 1000));
  stop_subscribers();
}

CAF_TEST(a node that links takes the revocations its peer holds) {
  add_bus("a");
  add_bus("b");
  // a holds a revocation whose origin (a third node, restarted since) can
  // replay it no more.
  denies.at("a")->add(state::deny_kind::sid, "from-a-gone-node", 1,
                      9'999'999'999'999);
  denies.at("a")->add(state::deny_kind::sub, "mallory", 5,
                      9'999'999'999'999);
  denies.at("a")->add(state::deny_kind::jti, "long-over", 1, 2);
  link("a", "b");
  auto& b = *denies.at("b");
  CAF_CHECK(b.session_denied("from-a-gone-node", 1000));
  CAF_CHECK_EQUAL(b.subject_revoked_at("mallory", 1000), 5);
  CAF_CHECK_EQUAL(b.size(), 2u); // not what had ended
}

CAF_TEST(ready waits until the linked peers deny sets are read) {
  add_bus("a");
  add_bus("b");
  add_bus("c");
  // No link yet: nothing to wait for.
  self->send(buses.at("c"), atom::get_v, atom::revoke_v);
  sched.run();
  CAF_CHECK(answered_ready());
  // c links to a, which holds a revocation c missed, and to a peer that
  // does not answer yet (busy, far away).
  denies.at("a")->add(state::deny_kind::sid, "revoked-while-away", 1,
                      9'999'999'999'999);
  auto silent = sys.spawn(
    [](caf::event_based_actor* self, int) -> caf::behavior {
      self->set_default_handler(caf::skip);
      return {[](atom::tick) {}};
    },
    0);
  self->send(buses.at("c"), atom::join_v, peer_bus{"a", buses.at("a")});
  self->send(buses.at("c"), atom::join_v,
             peer_bus{"slow", caf::actor_cast<bus_actor>(silent)});
  self->send(buses.at("c"), atom::get_v, atom::revoke_v);
  sched.run();
  // a's set is in force, but the slow peer's read is still on its way.
  CAF_CHECK(denies.at("c")->session_denied("revoked-while-away", 1000));
  CAF_CHECK(!answered_ready());
  // Its read times out: c answers (the node reports ready, and the log
  // says which peer's revocations were not read).
  sched.trigger_timeouts();
  sched.run();
  CAF_CHECK(answered_ready());
  caf::anon_send_exit(silent, caf::exit_reason::kill);
  sched.run();
}

CAF_TEST(a gap is filled from its origin without waiting for a rejoin) {
  add_bus("a");
  add_bus("b");
  subscriber("b", {"t"});
  auto on_b = last_events;
  link("a", "b");
  publish("a", "t", R"({"n":1})");
  // Serial 2 is lost on the way (a batch that timed out): b learns of the
  // gap from serial 3 and asks a for what it missed.
  self->send(buses.at("a"), atom::leave_v, std::string{"b"});
  sched.run();
  publish("a", "t", R"({"n":2})");
  self->send(buses.at("a"), atom::join_v, peer_bus{"b", buses.at("b")});
  sched.run();
  // (a's join replays nothing to b: b asks, a only answers.)
  publish("a", "t", R"({"n":3})");
  auto got = serials(*on_b);
  std::sort(got.begin(), got.end());
  CAF_CHECK_EQUAL(got, (std::vector<uint64_t>{1, 2, 3}));
  stop_subscribers();
}

CAF_TEST(a restarted origin starts a new incarnation that is accepted) {
  add_bus("a", 1);
  add_bus("b");
  link("a", "b");
  subscriber("b", {"t"});
  auto on_b = last_events;
  publish("a", "t", "{}");
  publish("a", "t", "{}");
  caf::anon_send_exit(buses.at("a"), caf::exit_reason::user_shutdown);
  sched.run();
  self->send(buses.at("b"), atom::leave_v, std::string{"a"});
  add_bus("a", 2);
  link("a", "b");
  publish("a", "t", "{}");
  CAF_REQUIRE_EQUAL(on_b->size(), 3u);
  CAF_CHECK_EQUAL(on_b->at(2).incarnation, 2u);
  CAF_CHECK_EQUAL(on_b->at(2).serial, 1u);
  stop_subscribers();
}

CAF_TEST(the log resumes after an event id) {
  add_bus("a");
  add_bus("b");
  link("a", "b");
  publish("a", "t", R"({"n":1})");
  clock.advance(5s);
  publish("b", "u", R"({"n":2})");
  publish("a", "t", R"({"n":3})");
  // Nothing to resume from: no backlog.
  auto none = history("b", "");
  CAF_CHECK(none.second);
  CAF_CHECK(none.first.empty());
  // Exact on the node that streamed it.
  auto exact = history("b", "a.1.1@b");
  CAF_CHECK(exact.second);
  CAF_REQUIRE_EQUAL(exact.first.size(), 2u);
  CAF_CHECK_EQUAL(exact.first[0].origin, "b");
  CAF_CHECK_EQUAL(exact.first[1].id(), "a.1.2");
  // Topic filter.
  auto only_t = history("b", "a.1.1", {"t"});
  CAF_REQUIRE_EQUAL(only_t.first.size(), 1u);
  CAF_CHECK_EQUAL(only_t.first[0].id(), "a.1.2");
  // From another node's stream: starts up to a second earlier, so events
  // received here in another order are not missed.
  auto foreign = history("b", "b.1.1@a");
  CAF_CHECK(foreign.second);
  CAF_REQUIRE_EQUAL(foreign.first.size(), 2u);
  CAF_CHECK_EQUAL(foreign.first[0].id(), "b.1.1");
  // Unknown or malformed: everything retained, and not found.
  for (auto id : {"zz.1.1", "garbage", "a.x.1", "a.1.99999999999999999999999"}) {
    auto unknown = history("b", id);
    CAF_CHECK(!unknown.second);
    CAF_CHECK_EQUAL(unknown.first.size(), 3u);
  }
  // Past the age bound: gone from the log.
  clock.advance(61s);
  auto aged = history("b", "a.1.1");
  CAF_CHECK(!aged.second);
  CAF_CHECK(aged.first.empty());
}

CAF_TEST(event ids parse with dotted origins) {
  auto id = parse_event_id("node.example.com.42.7");
  CAF_REQUIRE(id.has_value());
  CAF_CHECK_EQUAL(id->origin, "node.example.com");
  CAF_CHECK_EQUAL(id->incarnation, 42u);
  CAF_CHECK_EQUAL(id->serial, 7u);
  CAF_CHECK(!parse_event_id(".1.2"));
  CAF_CHECK(!parse_event_id("a..2"));
  CAF_CHECK(!parse_event_id("a.1."));
  CAF_CHECK(!parse_event_id("a.1.-2"));
  CAF_CHECK(!parse_event_id("a.18446744073709551616.1"));
  CAF_CHECK(parse_event_id("a.18446744073709551615.1"));
}

CAF_TEST(revocations reach every deny set) {
  add_bus("a");
  add_bus("b");
  link("a", "b");
  auto now = clock.ms();
  publish("a", "revocations",
          revocation_payload(state::deny_kind::sid, "s1", now, now + 60'000,
                             "test"));
  CAF_CHECK(denies.at("a")->session_denied("s1", now));
  CAF_CHECK(denies.at("b")->session_denied("s1", now));
  CAF_CHECK(!denies.at("b")->session_denied("s1", now + 60'000));
  // A malformed one changes nothing and breaks nothing.
  publish("a", "revocations", R"({"type":"sid"})");
  publish("a", "revocations", "not json");
  CAF_CHECK_EQUAL(denies.at("b")->size(), 1u);
}

CAF_TEST(membership changes are published on members) {
  add_bus("a", 1, true);
  add_bus("b", 1, true);
  subscriber("a", {"members"});
  auto on_a = last_events;
  link("a", "b");
  self->send(buses.at("a"), atom::leave_v, std::string{"b"});
  sched.run();
  std::vector<std::string> states;
  for (auto& e : *on_a) {
    auto j = nlohmann::json::parse(e.payload);
    if (e.origin == "a")
      states.push_back(j.at("node").get<std::string>() + " "
                       + j.at("state").get<std::string>());
  }
  CAF_CHECK_EQUAL(states, (std::vector<std::string>{"b up", "b down"}));
  stop_subscribers();
}

CAF_TEST_FIXTURE_SCOPE_END()
