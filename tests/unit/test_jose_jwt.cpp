// Unit tests for JWT production and strict verification: every
// verify_reason from a crafted token, and the JWKS export of a key_set.
#define CAF_SUITE jose.jwt
#include "caf/test/unit_test.hpp"

#include "common/base64url.hpp"
#include "jose/jws.hpp"
#include "jose/jwt.hpp"
#include "jose/key_set.hpp"
#include "jose/verify_cache.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace keymesh::jose;
using keymesh::base64url_decode;
using keymesh::base64url_encode;
using nlohmann::json;
using std::chrono::seconds;

namespace {

const auto epoch_now = seconds{1'700'000'000};

/// One key of each algorithm, generated once for the whole binary (RSA
/// generation is slow).
const key& test_key(algorithm alg) {
  static const key es = key::generate(algorithm::es256);
  static const key ed = key::generate(algorithm::eddsa);
  static const key rs = key::generate(algorithm::rs256);
  switch (alg) {
  case algorithm::es256:
    return es;
  case algorithm::eddsa:
    return ed;
  default:
    return rs;
  }
}

struct fixture {
  fixture() {
    keys.add("es", test_key(algorithm::es256));
    keys.add("ed", test_key(algorithm::eddsa));
    keys.add("rs", test_key(algorithm::rs256));
  }

  /// Claims valid at `now` by default.
  json claims(json extra = json::object()) const {
    json result{{"sub", "alice"},
                {"iss", "https://issuer.example"},
                {"aud", "api"},
                {"exp", epoch_now.count() + 600},
                {"iat", epoch_now.count() - 5}};
    for (auto& [name, value] : extra.items())
      result[name] = value;
    return result;
  }

  /// A token over arbitrary header and payload text, signed with `k`.
  static std::string craft(const key& k, const std::string& header,
                           const std::string& payload) {
    auto input = base64url_encode(header) + "." + base64url_encode(payload);
    return input + "." + base64url_encode(k.sign(input));
  }

  verify_result verify(std::string_view token) const {
    return verify_jwt(token, keys, opts, now);
  }

  std::string reason(std::string_view token) const {
    return std::string{to_string(verify(token).reason)};
  }

  key_set keys;
  verify_options opts;
  std::chrono::system_clock::time_point now{epoch_now};
  const key& es = test_key(algorithm::es256);
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(jwt_tests, fixture)

CAF_TEST(valid tokens of every algorithm verify) {
  for (auto [kid, alg] :
       {std::pair{"es", algorithm::es256}, std::pair{"ed", algorithm::eddsa},
        std::pair{"rs", algorithm::rs256}}) {
    auto token = sign_compact(test_key(alg), kid, claims());
    auto result = verify(token);
    CAF_CHECK(result.ok());
    CAF_CHECK_EQUAL(result.kid, kid);
    CAF_CHECK_EQUAL(result.claims.dump(), claims().dump());
  }
}

CAF_TEST(sign_compact writes the documented header and payload) {
  auto token = sign_compact(es, "k1", claims());
  auto parts = split_compact(token);
  CAF_REQUIRE(parts.has_value());
  CAF_CHECK_EQUAL(base64url_decode(parts->header).value_or(""),
                  R"({"alg":"ES256","kid":"k1","typ":"JWT"})");
  CAF_CHECK_EQUAL(base64url_decode(parts->payload).value_or(""),
                  claims().dump());
  CAF_CHECK(es.verify(parts->signing_input,
                      base64url_decode(parts->signature).value_or("")));
  bool threw = false;
  try {
    sign_compact(es, "k1", json::array());
  } catch (const jose_error&) {
    threw = true;
  }
  CAF_CHECK(threw);
}

CAF_TEST(to_string names every reason) {
  CAF_CHECK_EQUAL(std::string{to_string(verify_reason::ok)}, "ok");
  CAF_CHECK_EQUAL(std::string{to_string(verify_reason::expired)}, "expired");
  CAF_CHECK_EQUAL(std::string{to_string(verify_reason::not_yet_valid)},
                  "not_yet_valid");
  CAF_CHECK_EQUAL(std::string{to_string(verify_reason::bad_signature)},
                  "bad_signature");
  CAF_CHECK_EQUAL(std::string{to_string(verify_reason::unknown_kid)},
                  "unknown_kid");
  CAF_CHECK_EQUAL(std::string{to_string(verify_reason::malformed)},
                  "malformed");
  CAF_CHECK_EQUAL(std::string{to_string(verify_reason::wrong_issuer)},
                  "wrong_issuer");
  CAF_CHECK_EQUAL(std::string{to_string(verify_reason::wrong_audience)},
                  "wrong_audience");
  CAF_CHECK_EQUAL(std::string{to_string(verify_reason::alg_not_allowed)},
                  "alg_not_allowed");
}

CAF_TEST(header alg must be allowed and match the key) {
  auto payload = claims().dump();
  auto unsigned_token = base64url_encode(R"({"alg":"none","kid":"es"})") + "." +
                        base64url_encode(payload) + ".";
  CAF_CHECK_EQUAL(reason(unsigned_token), "alg_not_allowed");
  CAF_CHECK_EQUAL(reason(craft(es, R"({"alg":"HS256","kid":"es"})", payload)),
                  "alg_not_allowed");
  CAF_CHECK_EQUAL(reason(craft(es, R"({"alg":"es256","kid":"es"})", payload)),
                  "alg_not_allowed");
  // Algorithm confusion: an RS256 or EdDSA header naming the ES256 key.
  CAF_CHECK_EQUAL(reason(craft(es, R"({"alg":"RS256","kid":"es"})", payload)),
                  "alg_not_allowed");
  CAF_CHECK_EQUAL(reason(craft(test_key(algorithm::rs256),
                               R"({"alg":"RS256","kid":"es"})", payload)),
                  "alg_not_allowed");
  CAF_CHECK_EQUAL(reason(craft(es, R"({"alg":"EdDSA","kid":"es"})", payload)),
                  "alg_not_allowed");
  CAF_CHECK_EQUAL(reason(craft(es, R"({"kid":"es"})", payload)), "malformed");
  CAF_CHECK_EQUAL(reason(craft(es, R"({"alg":7,"kid":"es"})", payload)),
                  "malformed");
  CAF_CHECK_EQUAL(reason(craft(es, R"({"alg":"ES256","kid":"es"})", payload)),
                  "ok");
}

CAF_TEST(crit and kid problems) {
  auto payload = claims().dump();
  CAF_CHECK_EQUAL(
      reason(craft(es, R"({"alg":"ES256","kid":"es","crit":["exp"],"exp":1})",
                   payload)),
      "malformed");
  CAF_CHECK_EQUAL(reason(craft(es, R"({"alg":"ES256"})", payload)),
                  "malformed");
  CAF_CHECK_EQUAL(reason(craft(es, R"({"alg":"ES256","kid":1})", payload)),
                  "malformed");
  auto result = verify(craft(es, R"({"alg":"ES256","kid":"gone"})", payload));
  CAF_CHECK_EQUAL(std::string{to_string(result.reason)}, "unknown_kid");
  CAF_CHECK_EQUAL(result.kid, "gone");
  CAF_CHECK(result.claims.is_null());
}

CAF_TEST(tampered signatures and payloads are bad_signature) {
  auto token = sign_compact(es, "es", claims());
  auto parts = *split_compact(token);
  auto signature = *base64url_decode(parts.signature);
  auto flipped = signature;
  flipped[17] ^= 0x20;
  auto with_signature = [&](const std::string& sig) {
    return std::string{parts.signing_input} + "." + base64url_encode(sig);
  };
  CAF_CHECK_EQUAL(reason(with_signature(flipped)), "bad_signature");
  CAF_CHECK_EQUAL(reason(with_signature(signature.substr(0, 63))),
                  "bad_signature");
  CAF_CHECK_EQUAL(reason(with_signature(signature + '\0')), "bad_signature");
  CAF_CHECK_EQUAL(reason(with_signature("")), "bad_signature");
  CAF_CHECK_EQUAL(reason(with_signature(std::string(64, '\0'))),
                  "bad_signature");
  // The same signature over a changed payload.
  auto forged = base64url_encode(claims({{"sub", "mallory"}}).dump());
  CAF_CHECK_EQUAL(reason(std::string{parts.header} + "." + forged + "." +
                         std::string{parts.signature}),
                  "bad_signature");
  // A valid signature from a different key under the same kid.
  auto other = key::generate(algorithm::es256);
  CAF_CHECK_EQUAL(reason(sign_compact(other, "es", claims())), "bad_signature");
  // An expired token with a bad signature reports the signature.
  auto expired = sign_compact(other, "es", claims({{"exp", 1}}));
  CAF_CHECK_EQUAL(reason(expired), "bad_signature");
  CAF_CHECK(verify(expired).claims.is_null());
}

CAF_TEST(structurally broken tokens are malformed) {
  auto token = sign_compact(es, "es", claims());
  CAF_CHECK_EQUAL(reason(token), "ok");
  // Dropping one character leaves a signature length of 1 mod 4.
  CAF_CHECK_EQUAL(reason(token.substr(0, token.size() - 1)), "malformed");
  // Dropping two leaves 63 bytes: decodes, but cannot verify.
  CAF_CHECK_EQUAL(reason(token.substr(0, token.size() - 2)), "bad_signature");
  CAF_CHECK_EQUAL(reason(token.substr(0, token.rfind('.'))), "malformed");
  CAF_CHECK_EQUAL(reason(token + ".x"), "malformed");
  CAF_CHECK_EQUAL(reason(""), "malformed");
  CAF_CHECK_EQUAL(reason(".."), "malformed");
  CAF_CHECK_EQUAL(reason(token + "="), "malformed");
  CAF_CHECK_EQUAL(reason(" " + token), "malformed");
  auto payload = claims().dump();
  const auto* header = R"({"alg":"ES256","kid":"es"})";
  CAF_CHECK_EQUAL(reason(craft(es, R"({"alg":"ES256","kid":"es")", payload)),
                  "malformed");
  CAF_CHECK_EQUAL(reason(craft(es, R"(["ES256"])", payload)), "malformed");
  CAF_CHECK_EQUAL(reason(craft(es, header, R"({"exp":)")), "malformed");
  CAF_CHECK_EQUAL(reason(craft(es, header, "[1,2]")), "malformed");
  CAF_CHECK_EQUAL(reason(craft(es, header, "not json")), "malformed");
  // Duplicate member names, in the header and in the payload.
  CAF_CHECK_EQUAL(
      reason(craft(es, R"({"alg":"ES256","kid":"es","kid":"rs"})", payload)),
      "malformed");
  CAF_CHECK_EQUAL(
      reason(craft(es, header, R"({"exp":4102444800,"sub":"a","sub":"b"})")),
      "malformed");
}

CAF_TEST(the size limit applies before anything else) {
  auto big = claims({{"pad", std::string(17 * 1024, 'x')}});
  auto token = sign_compact(es, "es", big);
  CAF_CHECK_GREATER(token.size(), 17u * 1024);
  auto result = verify(token);
  CAF_CHECK_EQUAL(std::string{to_string(result.reason)}, "malformed");
  CAF_CHECK(result.kid.empty());
  CAF_CHECK(result.detail.find("limit") != std::string::npos);
  opts.max_token_bytes = 64 * 1024;
  CAF_CHECK_EQUAL(reason(token), "ok");
}

CAF_TEST(exp is required and honours the leeway) {
  const auto t = epoch_now.count();
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", claims({{"exp", t - 29}}))),
                  "ok");
  auto result = verify(sign_compact(es, "es", claims({{"exp", t - 120}})));
  CAF_CHECK_EQUAL(std::string{to_string(result.reason)}, "expired");
  CAF_CHECK_EQUAL(result.detail, "exp is 120 s in the past");
  CAF_CHECK_EQUAL(result.claims["sub"].get<std::string>(), "alice");
  CAF_CHECK_EQUAL(result.kid, "es");
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", claims({{"exp", t - 31}}))),
                  "expired");
  opts.leeway = seconds{0};
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", claims({{"exp", t - 1}}))),
                  "expired");
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", claims({{"exp", t}}))), "ok");
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", claims({{"exp", t + 0.5}}))),
                  "ok");
  auto no_exp = claims();
  no_exp.erase("exp");
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", no_exp)), "malformed");
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", claims({{"exp", "soon"}}))),
                  "malformed");
}

CAF_TEST(nbf and iat in the future are not_yet_valid) {
  const auto t = epoch_now.count();
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", claims({{"nbf", t + 29}}))),
                  "ok");
  auto result = verify(sign_compact(es, "es", claims({{"nbf", t + 90}})));
  CAF_CHECK_EQUAL(std::string{to_string(result.reason)}, "not_yet_valid");
  CAF_CHECK_EQUAL(result.detail, "nbf is 90 s in the future");
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", claims({{"nbf", "x"}}))),
                  "malformed");
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", claims({{"iat", t + 29}}))),
                  "ok");
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", claims({{"iat", t + 31}}))),
                  "not_yet_valid");
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", claims({{"iat", nullptr}}))),
                  "malformed");
}

CAF_TEST(issuer and audience are checked when configured) {
  auto token = sign_compact(es, "es", claims());
  CAF_CHECK_EQUAL(reason(token), "ok");
  opts.issuer = "https://issuer.example";
  opts.audience = "api";
  CAF_CHECK_EQUAL(reason(token), "ok");
  CAF_CHECK_EQUAL(
      reason(sign_compact(es, "es", claims({{"iss", "https://evil.example"}}))),
      "wrong_issuer");
  auto no_iss = claims();
  no_iss.erase("iss");
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", no_iss)), "wrong_issuer");
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", claims({{"aud", "other"}}))),
                  "wrong_audience");
  CAF_CHECK_EQUAL(
      reason(sign_compact(es, "es", claims({{"aud", json{"other", "api"}}}))),
      "ok");
  CAF_CHECK_EQUAL(
      reason(sign_compact(es, "es", claims({{"aud", json{"other", "apis"}}}))),
      "wrong_audience");
  auto no_aud = claims();
  no_aud.erase("aud");
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", no_aud)), "wrong_audience");
  CAF_CHECK_EQUAL(reason(sign_compact(es, "es", claims({{"aud", 5}}))),
                  "wrong_audience");
}

CAF_TEST(details never contain the token) {
  auto token = sign_compact(es, "es", claims({{"exp", 1}}));
  auto parts = *split_compact(token);
  for (const auto& candidate : {token, token.substr(0, token.size() - 1),
                                std::string{parts.header} + "." +
                                    std::string{parts.payload} + ".AAAA"}) {
    auto result = verify(candidate);
    CAF_CHECK(!result.ok());
    CAF_CHECK(!result.detail.empty());
    CAF_CHECK(result.detail.find(std::string{parts.payload}) ==
              std::string::npos);
    CAF_CHECK(result.detail.find(std::string{parts.signature}) ==
              std::string::npos);
  }
}

CAF_TEST(key_set finds replaces and exports keys) {
  key_set set;
  CAF_CHECK(set.empty());
  CAF_CHECK(set.find("es") == nullptr);
  set.add("zz", test_key(algorithm::rs256));
  set.add("es", test_key(algorithm::eddsa));
  set.add("es", es); // replaces
  set.add("ed", test_key(algorithm::eddsa));
  CAF_CHECK_EQUAL(set.size(), 3u);
  CAF_REQUIRE(set.find("es") != nullptr);
  CAF_CHECK_EQUAL(set.find("es")->thumbprint(), es.thumbprint());
  auto jwks = set.to_jwks();
  CAF_REQUIRE_EQUAL(jwks["keys"].size(), 3u);
  CAF_CHECK_EQUAL(jwks["keys"][0]["kid"].get<std::string>(), "ed");
  CAF_CHECK_EQUAL(jwks["keys"][1]["kid"].get<std::string>(), "es");
  CAF_CHECK_EQUAL(jwks["keys"][2]["kid"].get<std::string>(), "zz");
  auto expected = es.public_jwk();
  expected["kid"] = "es";
  expected["use"] = "sig";
  expected["alg"] = "ES256";
  CAF_CHECK_EQUAL(jwks["keys"][1].dump(), expected.dump());
  CAF_CHECK_EQUAL(jwks["keys"][2]["alg"].get<std::string>(), "RS256");
  CAF_CHECK_EQUAL(jwks["keys"][0]["alg"].get<std::string>(), "EdDSA");
  CAF_CHECK(jwks.dump().find("\"d\"") == std::string::npos);
  auto back = key_set::from_jwks(jwks);
  CAF_CHECK_EQUAL(back.to_jwks().dump(), jwks.dump());
  CAF_CHECK(!back.find("es")->has_private());
  CAF_CHECK(set.remove("zz"));
  CAF_CHECK(!set.remove("zz"));
  CAF_CHECK_EQUAL(set.size(), 2u);
  auto duplicate = jwks;
  duplicate["keys"][1]["kid"] = "ed";
  bool threw = false;
  try {
    key_set::from_jwks(duplicate);
  } catch (const jose_error&) {
    threw = true;
  }
  CAF_CHECK(threw);
}

// -- the verified-token cache --------------------------------------------------

CAF_TEST(the cache answers a token that verified before without a new check) {
  verify_cache cache{100};
  auto owner = std::make_shared<int>(1);
  auto token = sign_compact(es, "es", claims());
  auto first = cache.verify(token, owner, keys, opts, now);
  CAF_CHECK(first->ok());
  CAF_CHECK_EQUAL(cache.hits(), 0u);
  CAF_CHECK_EQUAL(cache.size(), 1u);
  auto second = cache.verify(token, owner, keys, opts, now);
  CAF_CHECK(second == first); // the same result object: no verification ran
  CAF_CHECK_EQUAL(cache.hits(), 1u);
  // Another token of the same claims is another entry.
  auto other = sign_compact(es, "es", claims({{"jti", "x"}}));
  CAF_CHECK(cache.verify(other, owner, keys, opts, now) != first);
  CAF_CHECK_EQUAL(cache.size(), 2u);
}

CAF_TEST(the cache re-checks the time claims on every hit) {
  verify_cache cache{100};
  auto owner = std::make_shared<int>(1);
  const auto t = epoch_now.count();
  auto token = sign_compact(es, "es", claims({{"exp", t + 60}, {"nbf", t - 1}}));
  CAF_CHECK(cache.verify(token, owner, keys, opts, now)->ok());
  // Within exp + leeway: still the cached answer.
  auto later = now + seconds{60 + 30};
  CAF_CHECK(cache.verify(token, owner, keys, opts, later)->ok());
  CAF_CHECK_EQUAL(cache.hits(), 1u);
  // Past it: expired, with the reason a full verification gives.
  auto result = cache.verify(token, owner, keys, opts, later + seconds{1});
  CAF_CHECK_EQUAL(std::string{to_string(result->reason)}, "expired");
  CAF_CHECK_EQUAL(cache.hits(), 1u);
  // Before nbf - leeway (a clock that went back): not_yet_valid.
  result = cache.verify(token, owner, keys, opts, now - seconds{40});
  CAF_CHECK_EQUAL(std::string{to_string(result->reason)}, "not_yet_valid");
  // A token not yet valid is not cached, and verifies once it is.
  auto early = sign_compact(es, "es", claims({{"nbf", t + 100}}));
  CAF_CHECK_EQUAL(std::string{to_string(
                    cache.verify(early, owner, keys, opts, now)->reason)},
                  "not_yet_valid");
  CAF_CHECK(cache.verify(early, owner, keys, opts, now + seconds{100})->ok());
}

CAF_TEST(the cache keeps no failures and forgets everything on a key change) {
  verify_cache cache{100};
  auto owner = std::make_shared<int>(1);
  auto token = sign_compact(es, "es", claims());
  // A character inside the signature (the last one may carry unused bits,
  // and changing those makes the token malformed rather than unsigned).
  auto tampered = token;
  auto& c = tampered[token.rfind('.') + 5];
  c = c == 'A' ? 'B' : 'A';
  for (int i = 0; i < 2; ++i)
    CAF_CHECK_EQUAL(std::string{to_string(
                      cache.verify(tampered, owner, keys, opts, now)->reason)},
                    "bad_signature");
  CAF_CHECK_EQUAL(cache.size(), 0u);
  CAF_CHECK(cache.verify(token, owner, keys, opts, now)->ok());
  CAF_CHECK_EQUAL(cache.size(), 1u);
  // The key is retired: a new key set (a new owner) without it.
  key_set without_es;
  without_es.add("ed", test_key(algorithm::eddsa));
  auto next_owner = std::make_shared<int>(2);
  auto result = cache.verify(token, next_owner, without_es, opts, now);
  CAF_CHECK_EQUAL(std::string{to_string(result->reason)}, "unknown_kid");
  CAF_CHECK_EQUAL(cache.hits(), 0u);
  // The old owner's entries are gone even if the old set comes back.
  auto back = cache.verify(token, owner, keys, opts, now);
  CAF_CHECK(back->ok());
  CAF_CHECK_EQUAL(cache.hits(), 0u);
}

CAF_TEST(the cache is bounded and can be turned off) {
  verify_cache cache{32};
  auto owner = std::make_shared<int>(1);
  std::vector<std::string> tokens;
  for (int i = 0; i < 200; ++i)
    tokens.push_back(sign_compact(es, "es", claims({{"jti", std::to_string(i)}})));
  for (auto& t : tokens)
    CAF_CHECK(cache.verify(t, owner, keys, opts, now)->ok());
  CAF_CHECK_LESS_OR_EQUAL(cache.size(), 32u);
  CAF_CHECK_GREATER(cache.size(), 0u);
  // The newest tokens are the ones kept.
  auto before = cache.hits();
  CAF_CHECK(cache.verify(tokens.back(), owner, keys, opts, now)->ok());
  CAF_CHECK_EQUAL(cache.hits(), before + 1);
  verify_cache off{0};
  for (int i = 0; i < 3; ++i)
    CAF_CHECK(off.verify(tokens[0], owner, keys, opts, now)->ok());
  CAF_CHECK_EQUAL(off.hits(), 0u);
  CAF_CHECK_EQUAL(off.size(), 0u);
}

CAF_TEST(the cache answers correctly from many threads) {
  verify_cache cache{64};
  auto owner = std::make_shared<int>(1);
  std::vector<std::string> good;
  for (int i = 0; i < 100; ++i)
    good.push_back(sign_compact(es, "es", claims({{"jti", std::to_string(i)}})));
  auto bad = good[0];
  auto& c = bad[bad.rfind('.') + 5];
  c = c == 'A' ? 'B' : 'A';
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int w = 0; w < 4; ++w)
    threads.emplace_back([&, w] {
      for (int round = 0; round < 3; ++round)
        for (size_t i = 0; i < good.size(); ++i) {
          auto& t = good[(i * (w + 1)) % good.size()];
          auto r = cache.verify(t, owner, keys, opts, now);
          if (!r->ok() || r->claims["jti"] != json(std::to_string(
                                                  (i * (w + 1)) % good.size())))
            ++wrong[w];
          if (cache.verify(bad, owner, keys, opts, now)->ok())
            ++wrong[w];
        }
    });
  for (auto& t : threads)
    t.join();
  for (auto n : wrong)
    CAF_CHECK_EQUAL(n, 0);
  CAF_CHECK_GREATER(cache.hits(), 0u);
  CAF_CHECK_LESS_OR_EQUAL(cache.size(), 64u);
}

CAF_TEST_FIXTURE_SCOPE_END()
