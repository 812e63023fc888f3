// The membership actor's decisions, without a network: which peers a
// handshake refuses (and what the log line says), how a proof binds a
// certificate to an instance id, and who dials whom.
#define CAF_SUITE membership
#include "caf/test/unit_test.hpp"

#include <fstream>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/membership.hpp"
#include "support/temp_dir.hpp"

using namespace keymesh;
using namespace std::chrono_literals;

namespace {

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  cluster::issued ca = cluster::make_ca("test CA", 30);
  cluster::issued other_ca = cluster::make_ca("other CA", 30);
  test::temp_dir dir;
  // Stand-ins for the handles a real hello carries.
  caf::actor dummy;

  fixture() {
    add_message_types(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    dummy = sys->spawn([](caf::event_based_actor*, int) -> caf::behavior {
      return {[](int) {}};
    }, 0);
  }

  ~fixture() {
    caf::anon_send_exit(dummy, caf::exit_reason::user_shutdown);
  }

  cluster::tls_identity identity(const std::string& cn,
                                 const cluster::issued& issuer) {
    auto node = cluster::make_node_cert(issuer, cn, {"127.0.0.1"}, 30);
    auto base = dir.file(cn + "-" + std::to_string(counter++));
    std::ofstream{base + ".ca"} << ca.cert_pem;
    std::ofstream{base + ".crt"} << node.cert_pem;
    std::ofstream{base + ".key"} << node.key_pem;
    // The issuer's own CA file when it is not ours.
    if (&issuer != &ca)
      std::ofstream{base + ".ca"} << issuer.cert_pem;
    return cluster::tls_identity::load(base + ".ca", base + ".crt",
                                       base + ".key");
  }

  membership_state node(const std::string& id, const std::string& address,
                        std::optional<cluster::tls_identity> tls) {
    config::settings s;
    membership_options o;
    o.instance_id = id;
    o.cluster_name = "prod";
    o.address = address;
    o.settings = shared_settings(s);
    o.identity = std::make_shared<identity_slot>(std::move(tls));
    membership_state st;
    st.configure(std::move(o));
    return st;
  }

  node_hello hello_from(const membership_state& st, std::string nonce) {
    auto h = st.make_hello(std::move(nonce), {});
    h.membership = caf::actor_cast<membership_actor>(dummy);
    return h;
  }

  int counter = 0;
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(membership_tests, fixture)

CAF_TEST(a_matching_peer_is_accepted_and_its_proof_verifies) {
  auto a = node("node-1", "127.0.0.1:7401", identity("node-1", ca));
  auto b = node("node-2", "127.0.0.1:7402", identity("node-2", ca));
  auto nonce = a.random_nonce();
  auto hello = hello_from(b, b.random_nonce());
  CAF_CHECK(!a.check_hello(hello));
  // b proves it owns node-2's key by signing a's nonce.
  auto proof = b.sign(nonce, "node-1");
  CAF_CHECK(a.verify(hello, proof, nonce));
  // The proof is bound to the nonce and to both ids.
  CAF_CHECK(!a.verify(hello, proof, a.random_nonce()));
  CAF_CHECK(!a.verify(hello, b.sign(nonce, "node-3"), nonce));
}

CAF_TEST(refusals_name_what_differs) {
  auto a = node("node-1", "127.0.0.1:7401", identity("node-1", ca));
  auto b = node("node-2", "127.0.0.1:7402", identity("node-2", ca));
  auto why = [&](node_hello h) { return a.check_hello(h).value_or("accepted"); };
  auto h = hello_from(b, "n");
  h.cluster_name = "staging";
  CAF_CHECK(why(h).find("cluster.name is \"prod\" here, \"staging\" there")
            != std::string::npos);
  h = hello_from(b, "n");
  h.protocol_version = 99;
  CAF_CHECK(why(h).find("protocol version") != std::string::npos);
  // Different settings: the log names the setting and both values.
  config::settings other;
  other.keys.max_token_ttl = 30min;
  h = hello_from(b, "n");
  h.settings = shared_settings(other);
  h.settings_fingerprint = settings_fingerprint(h.settings);
  CAF_CHECK(why(h).find("keys.max_token_ttl: \"1h\" here, \"30m\" there")
            != std::string::npos);
  // A fingerprint that does not match the settings it came with.
  h = hello_from(b, "n");
  h.settings_fingerprint = "00";
  CAF_CHECK(why(h).find("settings differ") != std::string::npos);
  // Claiming another id than the certificate's CN.
  h = hello_from(b, "n");
  h.instance_id = "node-7";
  CAF_CHECK(why(h).find("CN \"node-2\" does not match its claimed instance "
                        "id \"node-7\"")
            != std::string::npos);
  // A certificate from another CA.
  auto rogue = node("node-2", "127.0.0.1:7402", identity("node-2", other_ca));
  CAF_CHECK(why(hello_from(rogue, "n")).find("certificate is not valid")
            != std::string::npos);
  // No certificate at all, or our own id.
  h = hello_from(b, "n");
  h.certificate_pem.clear();
  CAF_CHECK(why(h).find("no certificate") != std::string::npos);
  h = hello_from(b, "n");
  h.instance_id = "node-1";
  CAF_CHECK(why(h).find("own instance id") != std::string::npos);
}

CAF_TEST(plaintext_nodes_skip_certificates_but_not_settings) {
  auto a = node("node-1", "127.0.0.1:7401", std::nullopt);
  auto b = node("node-2", "127.0.0.1:7402", std::nullopt);
  auto h = hello_from(b, "n");
  CAF_CHECK(!a.check_hello(h));
  CAF_CHECK(a.verify(h, "", "n"));
  h.cluster_name = "x";
  CAF_CHECK(a.check_hello(h).has_value());
}

CAF_TEST(the_smaller_address_dials_and_the_other_waits) {
  auto a = node("node-1", "127.0.0.1:7401", std::nullopt);
  auto b = node("node-2", "127.0.0.1:7402", std::nullopt);
  auto now = std::chrono::steady_clock::now();
  a.learn("127.0.0.1:7402", true, now);
  b.learn("127.0.0.1:7401", true, now);
  b.learn("127.0.0.1:7402", true, now); // a node may list itself
  CAF_CHECK(a.should_dial("127.0.0.1:7402", now));
  CAF_CHECK(!b.should_dial("127.0.0.1:7401", now));
  CAF_CHECK(!b.should_dial("127.0.0.1:7402", now)); // itself
  // Nobody dialled b for longer than failure_timeout: it dials itself.
  CAF_CHECK(b.should_dial("127.0.0.1:7401", now + 5s));
}

CAF_TEST(settings_difference_lists_every_disagreement) {
  auto diff = settings_difference({"a=1", "b=2", "c=3"}, {"a=1", "b=9", "d=4"});
  CAF_CHECK(diff.find("b: \"2\" here, \"9\" there") != std::string::npos);
  CAF_CHECK(diff.find("c: \"3\" here, \"(not set)\" there")
            != std::string::npos);
  CAF_CHECK(diff.find("d: \"(not set)\" here, \"4\" there")
            != std::string::npos);
  CAF_CHECK_EQUAL(settings_difference({"a=1"}, {"a=1"}), "");
}

CAF_TEST(the_issuer_every_node_signs_with_is_a_shared_setting) {
  config::settings a, b;
  auto issuer_of = [](const std::vector<std::string>& shared) {
    for (auto& kv : shared)
      if (kv.rfind("keys.issuer=", 0) == 0)
        return kv.substr(12);
    return std::string{"(none)"};
  };
  // Unset, it is derived from the cluster name, the same on every node.
  CAF_CHECK_EQUAL(issuer_of(shared_settings(a)), "urn:keymesh:keymesh");
  CAF_CHECK_EQUAL(settings_difference(shared_settings(a), shared_settings(b)),
                  "");
  b.keys.issuer = "https://login.example";
  CAF_CHECK(settings_difference(shared_settings(a), shared_settings(b))
              .find("keys.issuer: \"urn:keymesh:keymesh\" here, "
                    "\"https://login.example\" there")
            != std::string::npos);
}

CAF_TEST(the_failure_detector_follows_injected_time) {
  // Heartbeat 1 s, failure timeout 4 s: suspect after two silent
  // heartbeats, down (returned for the caller to declare) once silent for
  // more than 3 s, judged at each heartbeat.
  auto t = std::make_shared<monotonic_time>(monotonic_time{} + 1h);
  auto wall = std::make_shared<time_point>(from_unix_ms(1'700'000'000'000));
  membership_options o;
  o.instance_id = "node-1";
  o.heartbeat = 1000ms;
  o.failure_timeout = 4000ms;
  o.monotonic = [t] { return *t; };
  o.wall = [wall] { return *wall; };
  o.random_seed = 7;
  auto board = std::make_shared<member_board>();
  o.board = board;
  membership_state st;
  st.configure(std::move(o));
  auto& m = st.members["node-2"];
  m.id = "node-2";
  m.st = membership_state::state::up;
  m.last_heard = *t;
  using state = membership_state::state;
  using entries = member_board::entries;
  *t += 2000ms;
  CAF_CHECK(st.judge(*t).empty());
  CAF_CHECK(m.st == state::up);
  *t += 1ms;
  CAF_CHECK(st.judge(*t).empty());
  CAF_CHECK(m.st == state::suspect);
  CAF_CHECK(m.since == *wall);
  // /metrics sees each change of state.
  auto suspect = board->read();
  CAF_CHECK(suspect == (entries{{"node-2", "suspect"}}));
  // An answer to a ping sent 5 ms earlier: up again, round trip measured.
  *wall += 2500ms;
  CAF_CHECK(st.heard("node-2", *t - 5ms, *t));
  CAF_CHECK(m.st == state::up);
  auto up = board->read();
  CAF_CHECK(up == (entries{{"node-2", "up"}}));
  CAF_CHECK_EQUAL(m.rtt.count(), 5000);
  CAF_CHECK(m.since == *wall);
  // Silent again: suspect at 2 s, returned as down once past 3 s.
  *t += 2500ms;
  CAF_CHECK(st.judge(*t).empty());
  CAF_CHECK(m.st == state::suspect);
  *t += 501ms;
  auto silent = st.judge(*t);
  CAF_REQUIRE_EQUAL(silent.size(), 1u);
  CAF_CHECK_EQUAL(silent.front(), "node-2");
  // Once declared down it is no longer judged or heard.
  m.st = state::down;
  *t += 10s;
  CAF_CHECK(st.judge(*t).empty());
  CAF_CHECK(!st.heard("node-2", *t, *t));
  CAF_CHECK(!st.heard("node-3", *t, *t));
}

CAF_TEST(clock_offsets_are_measured_and_warned_about) {
  auto wall = std::make_shared<time_point>(from_unix_ms(1'700'000'000'000));
  membership_options o;
  o.instance_id = "node-1";
  o.wall = [wall] { return *wall; };
  o.clock_warning = 15s;
  membership_state st;
  st.configure(std::move(o));
  auto& m = st.members["node-2"];
  m.id = "node-2";
  m.st = membership_state::state::up;
  auto sent = *wall;
  auto received = sent + 10ms;
  // The peer read its clock 2 s ahead of the midpoint of the round trip.
  CAF_CHECK(!st.clock_sample("node-2", sent, received,
                             1'700'000'002'005));
  CAF_CHECK_EQUAL(m.clock_offset.count(), 2000);
  auto status = st.status();
  CAF_CHECK_EQUAL(status.members.at(0).clock_offset_ms, 2000);
  // 30 s ahead: one warning, not one per heartbeat.
  auto note = st.clock_sample("node-2", sent, received, 1'700'000'030'005);
  CAF_REQUIRE(note);
  CAF_CHECK(note->first);
  CAF_CHECK(note->second.find("30000 ms ahead") != std::string::npos);
  CAF_CHECK(!st.clock_sample("node-2", sent, received, 1'700'000'030'005));
  // Behind counts too; back under half the limit, it says so once.
  CAF_CHECK(!st.clock_sample("node-2", sent, received, 1'699'999'980'005));
  CAF_CHECK_EQUAL(m.clock_offset.count(), -20000);
  note = st.clock_sample("node-2", sent, received, 1'700'000'000'005);
  CAF_REQUIRE(note);
  CAF_CHECK(!note->first);
  // Not a member: nothing measured.
  CAF_CHECK(!st.clock_sample("node-9", sent, received, 0));
}

CAF_TEST_FIXTURE_SCOPE_END()
