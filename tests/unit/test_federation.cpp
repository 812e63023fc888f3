// The federation's merge rules without an actor: origins rank (this node,
// then cluster members, then static peers), a kid owned by a higher origin
// is never replaced, a static peer may not publish kids in the namespace of
// this node or of a member, and only the cluster's own keys are "cluster
// keys".
#define CAF_SUITE federation
#include "caf/test/unit_test.hpp"

#include <nlohmann/json.hpp>

#include "actors/federation.hpp"
#include "jose/key.hpp"

using namespace keymesh;

namespace {

jose::key make_key() {
  return jose::key::generate(jose::algorithm::es256);
}

public_key_info info(const std::string& kid, const jose::key& k) {
  public_key_info i;
  i.kid = kid;
  i.alg = "ES256";
  i.jwk = k.public_jwk().dump();
  return i;
}

key_announcement announce(const std::string& origin,
                          std::vector<public_key_info> keys,
                          uint64_t serial = 1) {
  key_announcement a;
  a.origin = origin;
  a.incarnation = origin.rfind("https://", 0) == 0 ? 0 : 7;
  a.serial = serial;
  a.keys = std::move(keys);
  return a;
}

struct fixture {
  federation_state st;
  jose::key own = make_key();
  jose::key member = make_key();
  jose::key evil = make_key();

  fixture() {
    federation_options opts;
    opts.local_origin = "node-a";
    opts.slot = std::make_shared<key_snapshot_slot>();
    st.configure(std::move(opts));
  }

  std::shared_ptr<const key_snapshot> publish() {
    return st.publish(st.now());
  }

  /// The thumbprint of the key published under KID ("" when none).
  std::string owner(const std::shared_ptr<const key_snapshot>& snap,
                    const std::string& kid) {
    auto* k = snap->keys.find(kid);
    return k ? k->thumbprint() : std::string{};
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(federation_tests, fixture)

CAF_TEST(a_static_peer_never_takes_a_kid_of_this_node_or_a_member) {
  // The static peer announces first: the order of arrival does not matter.
  st.apply(announce("https://evil.example",
                    {info("node-a-0", evil), info("node-b-0", evil),
                     info("evil-0", evil)}),
           origin_rank::static_peer, st.now());
  st.apply(announce("node-a", {info("node-a-0", own)}), origin_rank::local,
           st.now());
  st.apply(announce("node-b", {info("node-b-0", member)}), origin_rank::member,
           st.now());
  auto snap = publish();
  CAF_CHECK_EQUAL(owner(snap, "node-a-0"), own.thumbprint());
  CAF_CHECK_EQUAL(owner(snap, "node-b-0"), member.thumbprint());
  CAF_CHECK_EQUAL(owner(snap, "evil-0"), evil.thumbprint());
  // The served JWKS carries this node's key under its kid.
  auto jwks = nlohmann::json::parse(snap->jwks);
  auto own_x = own.public_jwk()["x"].get<std::string>();
  for (auto& k : jwks["keys"])
    if (k["kid"] == "node-a-0")
      CAF_CHECK_EQUAL(k["x"].get<std::string>(), own_x);
  // Only the cluster's keys are cluster keys.
  CAF_CHECK(snap->cluster_keys.find("node-a-0") != nullptr);
  CAF_CHECK(snap->cluster_keys.find("node-b-0") != nullptr);
  CAF_CHECK(snap->cluster_keys.find("evil-0") == nullptr);
  // Two refusals, each counted once however often the set is rebuilt.
  CAF_CHECK_EQUAL(snap->shadowing_refused, 2u);
  CAF_CHECK_EQUAL(publish()->shadowing_refused, 2u);
}

CAF_TEST(a_static_peer_may_not_publish_in_a_cluster_namespace) {
  st.apply(announce("node-a", {info("node-a-0", own)}), origin_rank::local,
           st.now());
  st.apply(announce("node-b", {info("node-b-0", member)}), origin_rank::member,
           st.now());
  // Kids nobody uses yet, in the namespaces of this node and a member: a
  // future key of theirs must not find a forged one in its place.
  st.apply(announce("https://evil.example",
                    {info("node-a-7", evil), info("node-b-7", evil),
                     info("node-bb-0", evil)}),
           origin_rank::static_peer, st.now());
  auto snap = publish();
  CAF_CHECK(snap->keys.find("node-a-7") == nullptr);
  CAF_CHECK(snap->keys.find("node-b-7") == nullptr);
  // "node-bb-0" is not in node-b's namespace ("node-b-").
  CAF_CHECK_EQUAL(owner(snap, "node-bb-0"), evil.thumbprint());
  CAF_CHECK_EQUAL(snap->shadowing_refused, 2u);
}

CAF_TEST(a_member_outranks_a_static_peer_and_this_node_outranks_a_member) {
  st.apply(announce("node-a", {info("node-a-0", own)}), origin_rank::local,
           st.now());
  // A member passing on departed keys cannot replace this node's kid.
  auto relayed = announce("node-a", {info("node-a-0", member)});
  relayed.departed = true;
  relayed.keys[0].expire_at = to_unix_ms(st.now()) + 60'000;
  st.apply(relayed, origin_rank::member, st.now());
  CAF_CHECK_EQUAL(owner(publish(), "node-a-0"), own.thumbprint());
  // A static peer's URL cannot take over a member's origin either.
  st.apply(announce("node-b", {info("node-b-0", member)}), origin_rank::member,
           st.now());
  CAF_CHECK(!st.apply(announce("node-b", {info("node-b-0", evil)}, 9),
                      origin_rank::static_peer, st.now()));
  CAF_CHECK_EQUAL(owner(publish(), "node-b-0"), member.thumbprint());
}

CAF_TEST(a_member_announces_only_its_own_namespace) {
  // What the actor's sender check yields for a member "node-b".
  auto own_keys =
      announce("node-b", {info("node-b-0", member), info("node-a-0", evil)});
  auto rank = st.admit(own_keys, std::string{"node-b"});
  CAF_REQUIRE(rank.has_value());
  CAF_CHECK(*rank == origin_rank::member);
  CAF_REQUIRE_EQUAL(own_keys.keys.size(), 1u);
  CAF_CHECK_EQUAL(own_keys.keys[0].kid, "node-b-0");
  // A live announcement in another origin's name is refused.
  auto other = announce("node-c", {info("node-c-0", evil)});
  CAF_CHECK(!st.admit(other, std::string{"node-b"}).has_value());
  // This node's own actors: its keystore is local, the rest members.
  auto mine = announce("node-a", {info("node-a-0", own)});
  CAF_CHECK(*st.admit(mine, std::nullopt) == origin_rank::local);
}

CAF_TEST_FIXTURE_SCOPE_END()
