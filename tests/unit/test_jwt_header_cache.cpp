// verify_jwt remembers the facts of recent JOSE headers per thread; results
// must be exactly those of a fresh parse, whatever the cache holds.
#define CAF_SUITE jose.header_cache
#include "caf/test/unit_test.hpp"

#include "common/base64url.hpp"
#include "jose/jws.hpp"
#include "jose/jwt.hpp"

using namespace keymesh::jose;
using keymesh::base64url_decode;
using keymesh::base64url_encode;

namespace {

auto now() {
  return std::chrono::system_clock::now();
}

nlohmann::json claims_for(const std::string& sub) {
  auto t = std::chrono::duration_cast<std::chrono::seconds>(
             now().time_since_epoch())
             .count();
  return {{"sub", sub}, {"iat", t}, {"exp", t + 60}};
}

} // namespace

CAF_TEST(more_keys_than_cache_slots_all_verify_correctly) {
  key_set keys;
  std::vector<std::pair<std::string, std::string>> tokens; // kid, token
  for (int i = 0; i < 40; ++i) {
    auto k = key::generate(i % 2 == 0 ? algorithm::es256 : algorithm::eddsa);
    auto kid = "kid-" + std::to_string(i);
    keys.add(kid, k);
    tokens.emplace_back(kid, sign_compact(k, kid, claims_for(kid)));
  }
  verify_options opts;
  for (int round = 0; round < 3; ++round)
    for (auto& [kid, token] : tokens) {
      auto r = verify_jwt(token, keys, opts, now());
      CAF_CHECK(r.ok());
      CAF_CHECK_EQUAL(r.kid, kid);
      CAF_CHECK_EQUAL(r.claims["sub"], kid);
    }
}

CAF_TEST(a_cached_header_does_not_vouch_for_the_rest_of_a_token) {
  auto k = key::generate(algorithm::es256);
  key_set keys;
  keys.add("k", k);
  auto good = sign_compact(k, "k", claims_for("alice"));
  verify_options opts;
  CAF_REQUIRE(verify_jwt(good, keys, opts, now()).ok()); // header now cached
  // Same header, payload swapped: the signature must fail.
  auto first_dot = good.find('.');
  auto second_dot = good.find('.', first_dot + 1);
  auto other = sign_compact(k, "k", claims_for("mallory"));
  auto other_payload = other.substr(other.find('.') + 1,
                                    other.find('.', other.find('.') + 1)
                                      - other.find('.') - 1);
  auto forged = good.substr(0, first_dot + 1) + other_payload
                + good.substr(second_dot);
  CAF_CHECK(verify_jwt(forged, keys, opts, now()).reason
            == verify_reason::bad_signature);
  // Same header, broken payload: still malformed.
  auto broken = good.substr(0, first_dot + 1) + "!!!" + good.substr(second_dot);
  CAF_CHECK(verify_jwt(broken, keys, opts, now()).reason
            == verify_reason::malformed);
  // A cached header with an unknown kid for another key set: unknown_kid.
  key_set empty;
  CAF_CHECK(verify_jwt(good, empty, opts, now()).reason
            == verify_reason::unknown_kid);
  // The key under that kid changed algorithm: alg_not_allowed.
  key_set swapped;
  swapped.add("k", key::generate(algorithm::eddsa));
  CAF_CHECK(verify_jwt(good, swapped, opts, now()).reason
            == verify_reason::alg_not_allowed);
}

CAF_TEST(bad_headers_are_reported_the_same_every_time) {
  auto k = key::generate(algorithm::es256);
  key_set keys;
  keys.add("k", k);
  auto good = sign_compact(k, "k", claims_for("bob"));
  auto rest = good.substr(good.find('.'));
  verify_options opts;
  auto none = base64url_encode(R"({"alg":"none","kid":"k"})") + rest;
  auto crit = base64url_encode(R"({"alg":"ES256","kid":"k","crit":["x"]})")
              + rest;
  auto no_kid = base64url_encode(R"({"alg":"ES256"})") + rest;
  auto not_json = base64url_encode("not json") + rest;
  for (int i = 0; i < 3; ++i) {
    CAF_CHECK(verify_jwt(none, keys, opts, now()).reason
              == verify_reason::alg_not_allowed);
    CAF_CHECK(verify_jwt(crit, keys, opts, now()).reason
              == verify_reason::malformed);
    CAF_CHECK(verify_jwt(no_kid, keys, opts, now()).reason
              == verify_reason::malformed);
    CAF_CHECK(verify_jwt(not_json, keys, opts, now()).reason
              == verify_reason::malformed);
  }
}
