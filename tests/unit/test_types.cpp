// Every registered message type survives serialization inside a caf::message,
// the way BASP ships it between nodes. An unregistered type would fail here
// instead of arriving as an empty message on a peer.
#define CAF_SUITE types
#include "caf/test/unit_test.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/message.hpp>

#include "actors/interfaces.hpp"

using namespace keymesh;

namespace {

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  fixture() {
    add_message_types(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
  }

  // Serializes X inside a message and reads it back.
  template <class T>
  T round_trip(const T& x) {
    auto msg = caf::make_message(x);
    std::vector<char> buf;
    caf::binary_serializer sink{*sys, buf};
    auto err = sink(msg);
    CAF_REQUIRE(!err);
    caf::message copy;
    caf::binary_deserializer source{*sys, buf};
    err = source(copy);
    CAF_REQUIRE(!err);
    CAF_REQUIRE(copy.match_elements<T>());
    return copy.get_as<T>(0);
  }

  template <class T>
  std::vector<char> bytes_of(const T& x) {
    std::vector<char> buf;
    caf::binary_serializer sink{*sys, buf};
    auto err = sink(caf::make_message(x));
    CAF_REQUIRE(!err);
    return buf;
  }

  /// The type with ID I (of keymesh's block): registered under its name
  /// (what BASP looks up), and a value of it comes back from the wire as
  /// the same bytes.
  template <caf::type_id_t I>
  void check_registered_type() {
    using type = typename caf::type_by_id<I>::type;
    const char* name = caf::type_name_by_id<I>::value;
    CAF_MESSAGE("type " << name);
    CAF_CHECK(sys->types().make_value(name) != nullptr);
    type x{};
    CAF_CHECK(bytes_of(round_trip(x)) == bytes_of(x));
  }

  template <caf::type_id_t... Is>
  void check_block(std::integer_sequence<caf::type_id_t, Is...>) {
    (check_registered_type<caf::id_block::keymesh::begin + Is>(), ...);
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(types_tests, fixture)

CAF_TEST(token_request_round_trips) {
  token_request x{"alice", {"api", "web"}, 600, R"({"role":"admin"})"};
  auto y = round_trip(x);
  CAF_CHECK_EQUAL(y.sub, "alice");
  CAF_CHECK_EQUAL(y.aud.size(), 2u);
  CAF_CHECK_EQUAL(y.aud[1], "web");
  CAF_CHECK_EQUAL(y.ttl_seconds, 600);
  CAF_CHECK_EQUAL(y.extra_claims_json, R"({"role":"admin"})");
}

CAF_TEST(signed_token_round_trips) {
  signed_token x{"a.b.c", "km-1-0", 1700000000};
  auto y = round_trip(x);
  CAF_CHECK_EQUAL(y.token, "a.b.c");
  CAF_CHECK_EQUAL(y.kid, "km-1-0");
  CAF_CHECK_EQUAL(y.expires_at, 1700000000);
}

CAF_TEST(key_announcement_round_trips) {
  key_announcement x{"node-a", 42, 7, {}};
  x.keys.push_back(public_key_info{"node-a-0", "ES256", R"({"kty":"EC"})", 1,
                                   2, 3, 4});
  x.keys.push_back(public_key_info{"node-a-1", "EdDSA", R"({"kty":"OKP"})",
                                   5, 6, 0, 0});
  auto y = round_trip(x);
  CAF_CHECK_EQUAL(y.origin, "node-a");
  CAF_CHECK_EQUAL(y.incarnation, 42u);
  CAF_CHECK_EQUAL(y.serial, 7u);
  CAF_REQUIRE_EQUAL(y.keys.size(), 2u);
  CAF_CHECK_EQUAL(y.keys[0].kid, "node-a-0");
  CAF_CHECK_EQUAL(y.keys[0].expire_at, 4);
  CAF_CHECK_EQUAL(y.keys[1].alg, "EdDSA");
  CAF_CHECK_EQUAL(y.keys[1].jwk, R"({"kty":"OKP"})");
  auto info = round_trip(x.keys[0]);
  CAF_CHECK_EQUAL(info.sign_from, 2);
  CAF_CHECK_EQUAL(info.retire_at, 3);
}

CAF_TEST(node_hello_round_trips) {
  node_hello x;
  x.instance_id = "node-1";
  x.cluster_name = "prod";
  x.protocol_version = 1;
  x.settings_fingerprint = "abc";
  x.settings = {"keys.algorithm=ES256", "keys.max_token_ttl=3600"};
  x.address = "127.0.0.1:7401";
  x.incarnation = 99;
  x.certificate_pem = "-----BEGIN CERTIFICATE-----";
  x.nonce = std::string("\0\1\2", 3);
  x.proof = "sig";
  auto y = round_trip(x);
  CAF_CHECK_EQUAL(y.instance_id, "node-1");
  CAF_CHECK_EQUAL(y.cluster_name, "prod");
  CAF_CHECK_EQUAL(y.protocol_version, 1u);
  CAF_CHECK_EQUAL(y.settings.size(), 2u);
  CAF_CHECK_EQUAL(y.address, "127.0.0.1:7401");
  CAF_CHECK_EQUAL(y.incarnation, 99u);
  CAF_CHECK_EQUAL(y.nonce, std::string("\0\1\2", 3));
  CAF_CHECK_EQUAL(y.proof, "sig");
  CAF_CHECK(!y.membership);
}

CAF_TEST(node_services_round_trip) {
  node_services x;
  x.shards.resize(3);
  auto y = round_trip(x);
  CAF_CHECK(!y.federation);
  CAF_CHECK_EQUAL(y.shards.size(), 3u);
  CAF_CHECK(!y.bus);
}

CAF_TEST(cluster_status_round_trips) {
  cluster_status x;
  x.self = member_info{"node-1", "127.0.0.1:7401", "up", 5, 0, 1, 7};
  x.cluster_name = "prod";
  x.members.push_back(
    member_info{"node-2", "127.0.0.1:7402", "suspect", 6, 250, 1, 8});
  auto y = round_trip(x);
  CAF_CHECK_EQUAL(y.self.instance_id, "node-1");
  CAF_REQUIRE_EQUAL(y.members.size(), 1u);
  CAF_CHECK_EQUAL(y.members[0].state, "suspect");
  CAF_CHECK_EQUAL(y.members[0].rtt_us, 250);
  auto m = round_trip(x.members[0]);
  CAF_CHECK_EQUAL(m.incarnation, 8u);
  auto gossip = round_trip(x.members); // sent alone in gossip messages
  CAF_CHECK_EQUAL(gossip.size(), 1u);
}

CAF_TEST(replicated_state_messages_round_trip) {
  state::record rec;
  rec.value = std::string("v\0w", 3);
  rec.ver = state::version{state::make_stamp(1'700'000'000'000, 3), 9};
  rec.expires_at = 1'700'000'060'000;
  rec.tombstone = true;
  write_request w{"sessions", "sid-1", "{}", 5, false,
                  write_condition::version_is, rec.ver, true, 1};
  auto wy = round_trip(w);
  CAF_CHECK(wy.condition == write_condition::version_is);
  CAF_CHECK(wy.decide);
  CAF_CHECK(wy.expected == rec.ver);
  CAF_CHECK_EQUAL(wy.hops, 1u);
  auto ry = round_trip(read_result{true, rec});
  CAF_CHECK(ry.found);
  CAF_CHECK_EQUAL(ry.rec.value, std::string("v\0w", 3));
  CAF_CHECK(ry.rec.ver == rec.ver);
  CAF_CHECK(ry.rec.tombstone);
  CAF_CHECK_EQUAL(round_trip(read_request{"subjects", "a", 2}).hops, 2u);
  CAF_CHECK_EQUAL(round_trip(scan_request{"subjects", "a\x1f", 10, 0}).limit,
                  10u);
  auto wr = round_trip(write_result{rec.ver, 2, 3});
  CAF_CHECK_EQUAL(wr.copies, 2u);
  CAF_CHECK_EQUAL(wr.owners, 3u);
  auto list = round_trip(record_list{{"sessions", "k", rec}});
  CAF_REQUIRE_EQUAL(list.size(), 1u);
  CAF_CHECK_EQUAL(list[0].key, "k");
  auto digests = round_trip(state::digest_vector{1, 2, 3});
  CAF_CHECK_EQUAL(digests.size(), 3u);
  auto sync = round_trip(sync_reply{"snap", {7, 8}, true});
  CAF_CHECK(sync.more);
  CAF_CHECK_EQUAL(sync.digests.size(), 2u);
  ownership o{4, {"a", "b"}, {"a", "b", "c"}, {}, 2, 5};
  auto oy = round_trip(o);
  CAF_CHECK_EQUAL(oy.epoch, 4u);
  CAF_CHECK_EQUAL(oy.members.size(), 3u);
  CAF_CHECK_EQUAL(oy.replicas, 2u);
  CAF_CHECK_EQUAL(oy.known, 5u);
  auto dy = round_trip(decide_request{"objects", "code:1",
                                      write_condition::version_is, rec.ver,
                                      rec});
  CAF_CHECK(dy.condition == write_condition::version_is);
  CAF_CHECK(dy.expected == rec.ver);
  CAF_CHECK_EQUAL(dy.rec.value, std::string("v\0w", 3));
  auto refused = round_trip(decide_reply{false, true, rec});
  CAF_CHECK(!refused.accepted && refused.found);
  CAF_CHECK(refused.current.ver == rec.ver);
  auto peer = round_trip(peer_actors{"node-2", 11, {}});
  CAF_CHECK_EQUAL(peer.incarnation, 11u);
}

CAF_TEST(bus_messages_round_trip) {
  bus_event e{"revocations", "node-1", 5, 42, 1'700'000'000'000,
              R"({"type":"sid"})"};
  auto y = round_trip(e);
  CAF_CHECK_EQUAL(y.id(), "node-1.5.42");
  CAF_CHECK_EQUAL(y.payload, R"({"type":"sid"})");
  auto list = round_trip(bus_event_list{e, e});
  CAF_CHECK_EQUAL(list.size(), 2u);
  auto unreached = round_trip(std::vector<std::string>{"node-3"});
  CAF_CHECK_EQUAL(unreached.at(0), "node-3");
}

CAF_TEST(attempt_messages_round_trip) {
  auto req = round_trip(
    attempt_request{"login_failures", "alice", 5, 60'000, 300'000, 1});
  CAF_CHECK_EQUAL(req.key, "alice");
  CAF_CHECK_EQUAL(req.limit, 5);
  CAF_CHECK_EQUAL(req.lockout_ms, 300'000);
  CAF_CHECK_EQUAL(req.hops, 1u);
  auto res = round_trip(attempt_result{true, 3, 1'700'000'000'000});
  CAF_CHECK(res.granted);
  CAF_CHECK_EQUAL(res.count, 3);
  CAF_CHECK_EQUAL(res.locked_until, 1'700'000'000'000);
}

CAF_TEST(session_service_messages_round_trip) {
  state::session s;
  s.sid = "AAAAAAAAAAAAAAAAAAAAAA";
  s.sub = "alice";
  s.client_id = "app";
  s.created_at = 1;
  s.expires_at = 2;
  s.last_seen = 3;
  s.idle_timeout = 4;
  s.attributes = {{"ip", "10.0.0.1"}};
  auto found = round_trip(session_found{s, state::version{7, 8}});
  CAF_CHECK_EQUAL(found.s.sub, "alice");
  CAF_CHECK_EQUAL(found.s.client_id, "app");
  CAF_CHECK_EQUAL(found.s.idle_timeout, 4);
  CAF_CHECK_EQUAL(found.s.attributes.at("ip"), "10.0.0.1");
  CAF_CHECK(found.ver == (state::version{7, 8}));
  auto spec = round_trip(
    session_spec{"bob", "app", 60, -1, {{"a", "b"}}, {{"rp", "x"}}});
  CAF_CHECK_EQUAL(spec.ttl, 60);
  CAF_CHECK_EQUAL(spec.clients.at("rp"), "x");
  CAF_CHECK_EQUAL(spec.idle_timeout, -1);
  auto patch
    = round_trip(session_patch{{{"a", "1"}}, {"b"}, false, {{"rp", ""}}});
  CAF_CHECK_EQUAL(patch.remove.at(0), "b");
  CAF_CHECK_EQUAL(patch.clients.count("rp"), 1u);
  CAF_CHECK(!patch.touch);
  auto out = round_trip(
    revocation_outcome{{"sub", "alice", "left"}, 2, {"node-2"}, "", ""});
  CAF_CHECK_EQUAL(out.order.reason, "left");
  CAF_CHECK_EQUAL(out.sessions, 2u);
  CAF_CHECK_EQUAL(out.unreached.at(0), "node-2");
}

CAF_TEST(every_type_in_the_block_is_registered_and_round_trips) {
  // Generated from the type-ID block: a type added to it is checked here
  // without anyone listing it.
  constexpr auto count = caf::id_block::keymesh::end
                         - caf::id_block::keymesh::begin;
  check_block(std::make_integer_sequence<caf::type_id_t, count>{});
  // An unknown name is not silently accepted either.
  CAF_CHECK(sys->types().make_value("keymesh::no_such_type") == nullptr);
}

CAF_TEST_FIXTURE_SCOPE_END()
