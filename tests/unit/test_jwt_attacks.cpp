// The JWT attack suite: every known way to make a verifier accept a token
// it should not, each tried against jose::verify_jwt with the options a
// node uses (leeway, issuer, audience). Every case must be refused with the
// reason given in the table; the suite fails when one is accepted or
// refused for another reason. The choices the docs state (high-S ES256 is
// accepted, jku/jwk/x5u/x5c are ignored) are checked as such.
#define CAF_SUITE jwt_attacks
#include "caf/test/unit_test.hpp"

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/base64url.hpp"
#include "jose/jws.hpp"
#include "jose/jwt.hpp"
#include "jose/key_set.hpp"

using namespace keymesh::jose;
using keymesh::base64url_decode;
using keymesh::base64url_encode;
using nlohmann::json;
using std::chrono::seconds;

namespace {

const auto now_s = int64_t{1'700'000'000};
const auto leeway = int64_t{30};

const key& es() {
  static const key k = key::generate(algorithm::es256);
  return k;
}
const key& ed() {
  static const key k = key::generate(algorithm::eddsa);
  return k;
}
const key& rs() {
  static const key k = key::generate(algorithm::rs256);
  return k;
}
const key& attacker() {
  static const key k = key::generate(algorithm::es256);
  return k;
}

std::string b64(const std::string& bytes) {
  return base64url_encode(bytes);
}

json valid_claims() {
  return json{{"sub", "alice"},   {"iss", "https://issuer.example"},
              {"aud", "api"},     {"jti", "j-1"},
              {"iat", now_s - 5}, {"exp", now_s + 600}};
}

/// header.payload.signature with HEADER and PAYLOAD as given (text), signed
/// by K.
std::string signed_with(const key& k, const std::string& header,
                        const std::string& payload) {
  auto input = b64(header) + "." + b64(payload);
  return input + "." + b64(k.sign(input));
}

std::string token(const key& k, const std::string& kid, json claims,
                  json extra_header = json::object()) {
  json header{
      {"alg", std::string{to_string(k.alg())}}, {"kid", kid}, {"typ", "JWT"}};
  for (auto& [name, value] : extra_header.items())
    header[name] = value;
  return signed_with(k, header.dump(), claims.dump());
}

std::string with_claims(json changes) {
  auto c = valid_claims();
  for (auto& [name, value] : changes.items()) {
    if (value.is_null())
      c.erase(name);
    else
      c[name] = value;
  }
  return token(es(), "es", c);
}

/// The three parts of a compact token.
std::vector<std::string> parts(const std::string& t) {
  auto d1 = t.find('.');
  auto d2 = t.find('.', d1 + 1);
  return {t.substr(0, d1), t.substr(d1 + 1, d2 - d1 - 1), t.substr(d2 + 1)};
}

std::string hs256(const std::string& secret, const std::string& kid) {
  json header{{"alg", "HS256"}, {"kid", kid}, {"typ", "JWT"}};
  auto input = b64(header.dump()) + "." + b64(valid_claims().dump());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
       &len);
  return input + "." +
         b64(std::string{reinterpret_cast<const char*>(mac), len});
}

/// An ES256 token's signature (r, s) replaced by (r, n - s).
std::string high_s(const std::string& t) {
  auto p = parts(t);
  auto sig = *base64url_decode(p[2]);
  BIGNUM* n = nullptr;
  BN_hex2bn(&n,
            "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
  auto* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32,
                      32, nullptr);
  auto* flipped = BN_new();
  BN_sub(flipped, n, s);
  unsigned char out[32];
  BN_bn2binpad(flipped, out, 32);
  BN_free(n);
  BN_free(s);
  BN_free(flipped);
  auto changed =
      sig.substr(0, 32) + std::string{reinterpret_cast<char*>(out), 32};
  return p[0] + "." + p[1] + "." + b64(changed);
}

/// An EdDSA token's S replaced by S + L (the same value mod L, not below L).
std::string ed_s_plus_l(const std::string& t) {
  auto p = parts(t);
  auto sig = *base64url_decode(p[2]);
  // S and L little-endian.
  unsigned char l[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
                         0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                         0,    0,    0,    0,    0,    0,    0,    0,
                         0,    0,    0,    0,    0,    0,    0,    0x10};
  unsigned carry = 0;
  for (size_t i = 0; i < 32; ++i) {
    unsigned sum = static_cast<unsigned char>(sig[32 + i]) + l[i] + carry;
    sig[32 + i] = static_cast<char>(sum & 0xff);
    carry = sum >> 8;
  }
  return p[0] + "." + p[1] + "." + b64(sig);
}

struct attack {
  std::string name;
  std::function<std::string()> make;
  verify_reason expected;
};

} // namespace

CAF_TEST(every_attack_is_refused_with_its_reason) {
  key_set keys;
  keys.add("es", es());
  keys.add("ed", ed());
  keys.add("rs", rs());
  verify_options opts;
  opts.leeway = seconds{leeway};
  opts.issuer = "https://issuer.example";
  opts.audience = "api";
  auto now = std::chrono::system_clock::time_point{seconds{now_s}};
  using r = verify_reason;
  auto valid = token(es(), "es", valid_claims());
  auto vp = parts(valid);
  std::vector<attack> attacks{
      // -- algorithms
      // -----------------------------------------------------------
      {"alg none, no signature",
       [&] {
         return b64(R"({"alg":"none","kid":"es"})") + "." +
                b64(valid_claims().dump()) + ".";
       },
       r::alg_not_allowed},
      {"alg none with the original signature",
       [&] {
         return b64(R"({"alg":"none","kid":"es"})") + "." + vp[1] + "." + vp[2];
       },
       r::alg_not_allowed},
      {"alg NONE (case)",
       [&] { return b64(R"({"alg":"NONE","kid":"es"})") + "." + vp[1] + "."; },
       r::alg_not_allowed},
      {"HS256 with the ES256 public JWK as the secret",
       [&] { return hs256(es().public_jwk().dump(), "es"); },
       r::alg_not_allowed},
      {"HS256 with the RSA public JWK as the secret",
       [&] { return hs256(rs().public_jwk().dump(), "rs"); },
       r::alg_not_allowed},
      {"RS256 header under the ES256 key",
       [&] {
         json h{{"alg", "RS256"}, {"kid", "es"}};
         return signed_with(rs(), h.dump(), valid_claims().dump());
       },
       r::alg_not_allowed},
      {"ES256 header under the RSA key",
       [&] {
         json h{{"alg", "ES256"}, {"kid", "rs"}};
         return signed_with(es(), h.dump(), valid_claims().dump());
       },
       r::alg_not_allowed},
      {"EdDSA header under the ES256 key",
       [&] {
         json h{{"alg", "EdDSA"}, {"kid", "es"}};
         return signed_with(ed(), h.dump(), valid_claims().dump());
       },
       r::alg_not_allowed},
      {"ES384 (not allowed)",
       [&] {
         return b64(R"({"alg":"ES384","kid":"es"})") + "." + vp[1] + "." +
                vp[2];
       },
       r::alg_not_allowed},
      {"alg missing",
       [&] { return b64(R"({"kid":"es"})") + "." + vp[1] + "." + vp[2]; },
       r::malformed},
      {"alg not a string",
       [&] {
         return b64(R"({"alg":["ES256"],"kid":"es"})") + "." + vp[1] + "." +
                vp[2];
       },
       r::malformed},
      // -- kid
      // ----------------------------------------------------------------------
      {"kid unknown", [&] { return token(es(), "nobody", valid_claims()); },
       r::unknown_kid},
      {"kid empty", [&] { return token(es(), "", valid_claims()); },
       r::unknown_kid},
      {"kid huge (8 KiB)",
       [&] { return token(es(), std::string(8192, 'k'), valid_claims()); },
       r::unknown_kid},
      {"kid a path",
       [&] { return token(es(), "../../../../etc/passwd", valid_claims()); },
       r::unknown_kid},
      {"kid SQL", [&] { return token(es(), "es' OR '1'='1", valid_claims()); },
       r::unknown_kid},
      {"kid with a NUL",
       [&] { return token(es(), std::string("es\0x", 4), valid_claims()); },
       r::unknown_kid},
      {"kid missing",
       [&] {
         return signed_with(es(), R"({"alg":"ES256"})", valid_claims().dump());
       },
       r::malformed},
      {"kid a number",
       [&] {
         return signed_with(es(), R"({"alg":"ES256","kid":1})",
                            valid_claims().dump());
       },
       r::malformed},
      // -- header extensions
      // --------------------------------------------------------
      {"crit",
       [&] {
         return token(es(), "es", valid_claims(), {{"crit", {"exp"}}});
       },
       r::malformed},
      {"b64 false",
       [&] {
         return token(es(), "es", valid_claims(), {{"b64", false}});
       },
       r::malformed},
      {"jwk header carrying the attacker's key, attacker's kid",
       [&] {
         auto jwk = attacker().public_jwk();
         jwk["kid"] = "evil";
         return token(attacker(), "evil", valid_claims(), {{"jwk", jwk}});
       },
       r::unknown_kid},
      {"jwk header carrying the attacker's key, a real kid",
       [&] {
         return token(attacker(), "es", valid_claims(),
                      {{"jwk", attacker().public_jwk()}});
       },
       r::bad_signature},
      {"jku pointing elsewhere",
       [&] {
         return token(attacker(), "es", valid_claims(),
                      {{"jku", "http://127.0.0.1:1/jwks.json"}});
       },
       r::bad_signature},
      {"x5u and x5c",
       [&] {
         return token(
             attacker(), "es", valid_claims(),
             {{"x5u", "http://127.0.0.1:1/cert.pem"}, {"x5c", {"MIIB"}}});
       },
       r::bad_signature},
      // -- signatures
      // ---------------------------------------------------------------
      {"signature of another key",
       [&] { return token(attacker(), "es", valid_claims()); },
       r::bad_signature},
      {"signature empty", [&] { return vp[0] + "." + vp[1] + "."; },
       r::bad_signature},
      {"signature one byte short",
       [&] {
         auto sig = *base64url_decode(vp[2]);
         return vp[0] + "." + vp[1] + "." + b64(sig.substr(1));
       },
       r::bad_signature},
      {"signature one byte long",
       [&] {
         auto sig = *base64url_decode(vp[2]);
         return vp[0] + "." + vp[1] + "." + b64(sig + "x");
       },
       r::bad_signature},
      {"signature DER instead of raw R||S",
       [&] {
         auto sig = *base64url_decode(vp[2]);
         return vp[0] + "." + vp[1] + "." + b64("\x30\x44\x02\x20" + sig);
       },
       r::bad_signature},
      {"ES256 r and s zero",
       [&] { return vp[0] + "." + vp[1] + "." + b64(std::string(64, '\0')); },
       r::bad_signature},
      {"payload changed under a good signature",
       [&] {
         auto c = valid_claims();
         c["sub"] = "admin";
         return vp[0] + "." + b64(c.dump()) + "." + vp[2];
       },
       r::bad_signature},
      {"EdDSA S + L (non-canonical)",
       [&] { return ed_s_plus_l(token(ed(), "ed", valid_claims())); },
       r::bad_signature},
      {"EdDSA R of small order, S zero",
       [&] {
         auto t = parts(token(ed(), "ed", valid_claims()));
         auto identity = std::string(1, '\x01') + std::string(31, '\0');
         return t[0] + "." + t[1] + "." + b64(identity + std::string(32, '\0'));
       },
       r::bad_signature},
      // -- time claims at the leeway's edges
      // --------------------------------------
      {"exp missing",
       [&] {
         return with_claims({{"exp", nullptr}});
       },
       r::malformed},
      {"exp a string",
       [&] {
         return with_claims({{"exp", "tomorrow"}});
       },
       r::malformed},
      {"exp one second outside the leeway",
       [&] {
         return with_claims({{"exp", now_s - leeway - 1}});
       },
       r::expired},
      {"nbf one second outside the leeway",
       [&] {
         return with_claims({{"nbf", now_s + leeway + 1}});
       },
       r::not_yet_valid},
      {"iat one second outside the leeway",
       [&] {
         return with_claims({{"iat", now_s + leeway + 1}});
       },
       r::not_yet_valid},
      {"nbf not a number",
       [&] {
         return with_claims({{"nbf", "soon"}});
       },
       r::malformed},
      // -- issuer and audience
      // --------------------------------------------------------
      {"iss of another issuer",
       [&] {
         return with_claims({{"iss", "https://evil.example"}});
       },
       r::wrong_issuer},
      {"iss missing",
       [&] {
         return with_claims({{"iss", nullptr}});
       },
       r::wrong_issuer},
      {"iss an array",
       [&] {
         return with_claims({{"iss", {"https://issuer.example"}}});
       },
       r::wrong_issuer},
      {"aud of another API",
       [&] {
         return with_claims({{"aud", "other"}});
       },
       r::wrong_audience},
      {"aud missing",
       [&] {
         return with_claims({{"aud", nullptr}});
       },
       r::wrong_audience},
      {"aud an array without it",
       [&] {
         return with_claims({{"aud", {"a", "b"}}});
       },
       r::wrong_audience},
      // -- structure and encoding
      // ---------------------------------------------------
      {"duplicate claim (sub twice)",
       [&] {
         auto payload = valid_claims().dump();
         payload.insert(1, R"("sub":"admin",)");
         return signed_with(es(), R"({"alg":"ES256","kid":"es"})", payload);
       },
       r::malformed},
      {"duplicate header member (alg twice)",
       [&] {
         return signed_with(es(), R"({"alg":"ES256","alg":"none","kid":"es"})",
                            valid_claims().dump());
       },
       r::malformed},
      {"base64 padding", [&] { return vp[0] + "==." + vp[1] + "." + vp[2]; },
       r::malformed},
      {"base64 standard alphabet",
       [&] {
         auto h = vp[0];
         for (auto& c : h)
           if (c == '-')
             c = '+';
         return h + "/." + vp[1] + "." + vp[2];
       },
       r::malformed},
      {"base64 unused bits set",
       [&] {
         // "e30" is "{}" ; "e31" carries the same bytes with a trailing bit.
         return std::string{"e31."} + vp[1] + "." + vp[2];
       },
       r::malformed},
      {"whitespace in a part",
       [&] { return vp[0] + " ." + vp[1] + "." + vp[2]; }, r::malformed},
      {"two parts only", [&] { return vp[0] + "." + vp[1]; }, r::malformed},
      {"four parts", [&] { return valid + ".x"; }, r::malformed},
      {"payload not an object",
       [&] {
         return signed_with(es(), R"({"alg":"ES256","kid":"es"})", "[1]");
       },
       r::malformed},
      {"payload nested 64 deep",
       [&] {
         std::string deep = std::string(64, '[') + std::string(64, ']');
         return signed_with(es(), R"({"alg":"ES256","kid":"es"})",
                            R"({"x":)" + deep + "}");
       },
       r::malformed},
      {"oversized (17 KiB)",
       [&] {
         return with_claims({{"pad", std::string(17 * 1024, 'p')}});
       },
       r::malformed},
      {"empty", [&] { return std::string{}; }, r::malformed},
      {"dots only", [&] { return std::string{".."}; }, r::malformed},
  };
  size_t accepted = 0;
  for (auto& a : attacks) {
    auto t = a.make();
    auto v = verify_jwt(t, keys, opts, now);
    if (v.ok()) {
      ++accepted;
      CAF_ERROR("ACCEPTED: " << a.name);
    } else if (v.reason != a.expected) {
      CAF_ERROR(a.name << ": refused as " << to_string(v.reason)
                       << ", expected " << to_string(a.expected) << " ("
                       << v.detail << ")");
    }
  }
  CAF_MESSAGE(attacks.size() << " attacks, " << accepted << " accepted");
  CAF_CHECK_EQUAL(accepted, 0u);
}

CAF_TEST(the_edges_of_the_leeway_and_the_documented_choices) {
  key_set keys;
  keys.add("es", es());
  verify_options opts;
  opts.leeway = seconds{leeway};
  opts.issuer = "https://issuer.example";
  opts.audience = "api";
  auto now = std::chrono::system_clock::time_point{seconds{now_s}};
  auto check = [&](const std::string& t) {
    return verify_jwt(t, keys, opts, now).reason;
  };
  // One second inside the leeway is accepted.
  CAF_CHECK_EQUAL(check(with_claims({{"exp", now_s - leeway + 1}})),
                  verify_reason::ok);
  CAF_CHECK_EQUAL(check(with_claims({{"nbf", now_s + leeway - 1}})),
                  verify_reason::ok);
  CAF_CHECK_EQUAL(check(with_claims({{"iat", now_s + leeway - 1}})),
                  verify_reason::ok);
  CAF_CHECK_EQUAL(check(with_claims({{"aud", {"other", "api"}}})),
                  verify_reason::ok);
  // High-S ES256: accepted (docs/api.md), with the same claims and jti.
  auto t = token(es(), "es", valid_claims());
  auto flipped = high_s(t);
  CAF_CHECK_NOT_EQUAL(flipped, t);
  auto v = verify_jwt(flipped, keys, opts, now);
  CAF_CHECK_EQUAL(v.reason, verify_reason::ok);
  CAF_CHECK_EQUAL(v.claims.value("jti", ""), "j-1");
  // jku, jwk, x5u, x5c are ignored: a good token with them still verifies
  // by its kid alone.
  CAF_CHECK_EQUAL(check(token(es(), "es", valid_claims(),
                              {{"jku", "http://127.0.0.1:1/"},
                               {"jwk", attacker().public_jwk()},
                               {"x5u", "http://127.0.0.1:1/"}})),
                  verify_reason::ok);
}
