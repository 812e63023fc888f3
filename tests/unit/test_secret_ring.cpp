// Secret rings (state/secret_ring.hpp): rotation with an install lead and
// an overlap, DPoP server nonces over time windows, sealed cookies, and
// the stored form.
#define CAF_SUITE secret_ring
#include "caf/test/unit_test.hpp"

#include "common/base64url.hpp"
#include "state/secret_ring.hpp"

using namespace keymesh;
using namespace keymesh::state;

namespace {

constexpr int64_t t0 = 1'700'000'000'000;
constexpr int64_t window = 60'000;

const ring_policy policy{86'400'000, 30'000, 2 * window + 30'000};

// Plain values for the check macros (they keep references to temporaries).
std::string opened(const secret_ring& ring, std::string_view sealed,
                   std::string_view aad, int64_t now) {
  return open_cookie(ring, sealed, aad, now).value_or("<refused>");
}

uint32_t kid_of(std::string_view sealed) {
  return sealed_cookie_kid(sealed).value_or(0);
}

uint32_t signer(const secret_ring& ring, int64_t now) {
  auto k = signing_key(ring, now);
  return k ? k->kid : 0;
}

} // namespace

CAF_TEST(a new key installs before it signs and the old one stays for the overlap) {
  auto ring = new_ring("dpop", t0);
  CAF_REQUIRE_EQUAL(ring.keys.size(), 1u);
  auto first = ring.keys.front().kid;
  CAF_CHECK_EQUAL(signer(ring, t0), first);
  CAF_CHECK(!rotation_due(ring, t0 + policy.rotate_every_ms - 1, policy));
  CAF_CHECK(rotation_due(ring, t0 + policy.rotate_every_ms, policy));
  auto now = t0 + policy.rotate_every_ms;
  auto next = rotated(ring, now, policy);
  CAF_CHECK_EQUAL(next.generation, ring.generation + 1);
  CAF_REQUIRE_EQUAL(next.keys.size(), 2u);
  auto second = next.keys.front().kid;
  CAF_CHECK_NOT_EQUAL(second, first);
  // Installed: it opens at once, but the old key signs until the lead is
  // over.
  CAF_CHECK(find_key(next, second, now) != nullptr);
  CAF_CHECK_EQUAL(signer(next, now), first);
  CAF_CHECK_EQUAL(signer(next, now + policy.install_lead_ms), second);
  // The old key opens until the overlap after the new one took over.
  auto handover = now + policy.install_lead_ms;
  CAF_CHECK(find_key(next, first, handover + policy.overlap_ms) != nullptr);
  CAF_CHECK(find_key(next, first, handover + policy.overlap_ms + 1) == nullptr);
  // The next rotation drops it.
  auto third = rotated(next, handover + policy.overlap_ms + 1, policy);
  CAF_CHECK_EQUAL(third.keys.size(), 2u);
  CAF_CHECK(find_key(third, first, handover) == nullptr);
}

CAF_TEST(rotations in a burst never drop the key that signs) {
  auto ring = new_ring("cookies", t0);
  auto first = ring.keys.front().kid;
  for (int i = 0; i < 40; ++i)
    ring = rotated(ring, t0 + i, policy);
  CAF_CHECK_EQUAL(ring.keys.size(), max_ring_keys);
  // Within the install lead the first key still signs, and is still there.
  CAF_CHECK_EQUAL(signer(ring, t0 + 40), first);
  CAF_CHECK(find_key(ring, first, t0 + 40) != nullptr);
}

CAF_TEST(nonces hold for their window and the next one only) {
  auto ring = new_ring("dpop", t0);
  auto nonce = make_dpop_nonce(ring, t0, window);
  CAF_CHECK_EQUAL(nonce.size(), 38u);
  auto start = t0 / window * window;
  CAF_CHECK(dpop_nonce_valid(ring, nonce, t0, window));
  CAF_CHECK(dpop_nonce_valid(ring, nonce, start + window, window));
  CAF_CHECK(dpop_nonce_valid(ring, nonce, start + 2 * window - 1, window));
  CAF_CHECK(!dpop_nonce_valid(ring, nonce, start + 2 * window, window));
  // Not valid before it was made (a window ahead).
  CAF_CHECK(!dpop_nonce_valid(ring, nonce, start - 1, window));
  // Another cluster's ring, a changed byte, a re-spelling, garbage.
  auto other = new_ring("dpop", t0);
  CAF_CHECK(!dpop_nonce_valid(other, nonce, t0, window));
  auto raw = *base64url_decode(nonce);
  raw[20] ^= 1;
  CAF_CHECK(!dpop_nonce_valid(ring, base64url_encode(raw), t0, window));
  auto respelled = nonce;
  respelled.back() = respelled.back() == 'A' ? 'B' : 'A';
  CAF_CHECK(!dpop_nonce_valid(ring, respelled, t0, window));
  CAF_CHECK(!dpop_nonce_valid(ring, "", t0, window));
  CAF_CHECK(!dpop_nonce_valid(ring, std::string(38, '!'), t0, window));
  // Another purpose's ring with the same keys does not take it.
  auto cookies = ring;
  cookies.purpose = "cookies";
  CAF_CHECK(!dpop_nonce_valid(cookies, nonce, t0, window));
  // Across a rotation: the old key's nonce of the previous window holds.
  auto now = t0 + policy.rotate_every_ms;
  auto before = make_dpop_nonce(ring, now, window);
  auto next = rotated(ring, now, policy);
  auto later = now + policy.install_lead_ms;
  auto after = make_dpop_nonce(next, later, window);
  CAF_CHECK_NOT_EQUAL(before.substr(0, 6), after.substr(0, 6)); // kid
  if ((later / window) - (now / window) <= 1)
    CAF_CHECK(dpop_nonce_valid(next, before, later, window));
  CAF_CHECK(dpop_nonce_valid(next, after, later, window));
}

CAF_TEST(cookies open with every key of the ring and for their aad only) {
  auto ring = new_ring("cookies", t0);
  auto sealed = seal_cookie(ring, "session=abc", "_session", t0);
  CAF_CHECK_EQUAL(sealed.rfind("v1.", 0), 0u);
  CAF_CHECK_EQUAL(opened(ring, sealed, "_session", t0), "session=abc");
  CAF_CHECK_EQUAL("<refused>", opened(ring, sealed, "_other", t0));
  CAF_CHECK_EQUAL("<refused>",
                  opened(new_ring("cookies", t0), sealed, "_session", t0));
  auto changed = sealed;
  changed[10] = changed[10] == 'A' ? 'B' : 'A';
  CAF_CHECK_EQUAL("<refused>", opened(ring, changed, "_session", t0));
  CAF_CHECK_EQUAL("<refused>", opened(ring, "v1.", "_session", t0));
  CAF_CHECK_EQUAL("<refused>",
                  opened(ring, "v2." + sealed.substr(3), "_session", t0));
  CAF_CHECK_EQUAL(kid_of(sealed), ring.keys.front().kid);
  // Sealed before a rotation, opened after it; sealed with the new key
  // once it is active.
  auto now = t0 + policy.rotate_every_ms;
  auto next = rotated(ring, now, policy);
  CAF_CHECK_EQUAL(opened(next, sealed, "_session", now), "session=abc");
  auto fresh = seal_cookie(next, "x", "", now + policy.install_lead_ms);
  CAF_CHECK_EQUAL(kid_of(fresh), next.keys.front().kid);
  // A node that has the new ring opens it; one without it does not.
  CAF_CHECK(open_cookie(next, fresh, "", now + policy.install_lead_ms));
  CAF_CHECK_EQUAL("<refused>",
                  opened(ring, fresh, "", now + policy.install_lead_ms));
  // Empty plaintext and aad are fine.
  CAF_CHECK_EQUAL(opened(ring, seal_cookie(ring, "", "", t0), "", t0), "");
}

CAF_TEST(the stored form round trips and damage is refused) {
  auto ring = rotated(new_ring("cookies", t0), t0 + 1, policy);
  auto again = decode_ring(encode_ring(ring));
  CAF_REQUIRE(again);
  CAF_CHECK_EQUAL(again->purpose, "cookies");
  CAF_CHECK_EQUAL(again->generation, ring.generation);
  CAF_REQUIRE_EQUAL(again->keys.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    CAF_CHECK_EQUAL(again->keys[i].kid, ring.keys[i].kid);
    CAF_CHECK(again->keys[i].secret == ring.keys[i].secret);
    CAF_CHECK_EQUAL(again->keys[i].retire_after, ring.keys[i].retire_after);
  }
  CAF_CHECK(!decode_ring("{}"));
  CAF_CHECK(!decode_ring("not json"));
  CAF_CHECK(!decode_ring(
      R"({"purpose":"x","generation":1,"keys":[{"kid":1,"secret":"AAAA",)"
      R"("created_at":0,"active_from":0,"retire_after":0}]})"));
}
