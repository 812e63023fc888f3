// Unit tests for the JOSE key layer: base64url, JWK import/export, RFC 7638
// thumbprints and the signature primitives, checked against the published
// RFC 7515, 7517, 7638 and 8037 examples.
#define CAF_SUITE jose
#include "caf/test/unit_test.hpp"

#include "common/base64url.hpp"
#include "jose/jws.hpp"
#include "jose/key.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <thread>
#include <vector>

using namespace keymesh::jose;
using keymesh::base64url_decode;
using keymesh::base64url_encode;
using nlohmann::json;

namespace {

// RFC 7515 Appendix A.2: the RSA key and the complete RS256 JWS.
constexpr const char* rfc7515_a2_jwk = R"({"kty":"RSA",
 "n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
 "e":"AQAB",
 "d":"Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ",
 "p":"4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc",
 "q":"uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc",
 "dp":"BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0",
 "dq":"h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU",
 "qi":"IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"})";

constexpr const char* rfc7515_a2_jws =
    "eyJhbGciOiJSUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlL"
    "mNvbS9pc19yb290Ijp0cnVlfQ"
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHI"
    "m4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB-"
    "-f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383L"
    "cOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEU"
    "ipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

// RFC 7515 Appendix A.3: the P-256 key and the complete ES256 JWS.
constexpr const char* rfc7515_a3_jwk = R"({"kty":"EC","crv":"P-256",
 "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
 "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
 "d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"})";

constexpr const char* rfc7515_a3_jws =
    "eyJhbGciOiJFUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlL"
    "mNvbS9pc19yb290Ijp0cnVlfQ"
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQx"
    "fKTUJqPP3-Kg6NU1Q";

// RFC 7517 Appendix A.1 (public keys) and A.2 (private keys).
constexpr const char* rfc7517_a1 = R"({"keys":[
 {"kty":"EC","crv":"P-256",
  "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
  "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
  "use":"enc","kid":"1"},
 {"kty":"RSA",
  "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
  "e":"AQAB","alg":"RS256","kid":"2011-04-29"}]})";

constexpr const char* rfc7517_a2 = R"({"keys":[
 {"kty":"EC","crv":"P-256",
  "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
  "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
  "d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE",
  "use":"enc","kid":"1"},
 {"kty":"RSA",
  "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
  "e":"AQAB",
  "d":"X4cTteJY_gn4FYPsXB8rdXix5vwsg1FLN5E3EaG6RJoVH-HLLKD9M7dx5oo7GURknchnrRweUkC7hT5fJLM0WbFAKNLWY2vv7B6NqXSzUvxT0_YSfqijwp3RTzlBaCxWp4doFk5N2o8Gy_nHNKroADIkJ46pRUohsXywbReAdYaMwFs9tv8d_cPVY3i07a3t8MN6TNwm0dSawm9v47UiCl3Sk5ZiG7xojPLu4sbg1U2jx4IBTNBznbJSzFHK66jT8bgkuqsk0GjskDJk19Z4qwjwbsnn4j2WBii3RL-Us2lGVkY8fkFzme1z0HbIkfz0Y6mqnOYtqc0X4jfcKoAC8Q",
  "p":"83i-7IvMGXoMXCskv73TKr8637FiO7Z27zv8oj6pbWUQyLPQBQxtPVnwD20R-60eTDmD2ujnMt5PoqMrm8RfmNhVWDtjjMmCMjOpSXicFHj7XOuVIYQyqVWlWEh6dN36GVZYk93N8Bc9vY41xy8B9RzzOGVQzXvNEvn7O0nVbfs",
  "q":"3dfOR9cuYq-0S-mkFLzgItgMEfFzB2q3hWehMuG0oCuqnb3vobLyumqjVZQO1dIrdwgTnCdpYzBcOfW5r370AFXjiWft_NGEiovonizhKpo9VVS78TzFgxkIdrecRezsZ-1kYd_s1qDbxtkDEgfAITAG9LUnADun4vIcb6yelxk",
  "dp":"G4sPXkc6Ya9y8oJW9_ILj4xuppu0lzi_H7VTkS8xj5SdX3coE0oimYwxIi2emTAue0UOa5dpgFGyBJ4c8tQ2VF402XRugKDTP8akYhFo5tAA77Qe_NmtuYZc3C3m3I24G2GvR5sSDxUyAN2zq8Lfn9EUms6rY3Ob8YeiKkTiBj0",
  "dq":"s9lAH9fggBsoFR8Oac2R_E2gw282rT2kGOAhvIllETE1efrA6huUUvMfBcMpn8lqeW6vzznYY5SSQF7pMdC_agI3nG8Ibp1BUb0JUiraRNqUfLhcQb_d9GF4Dh7e74WbRsobRonujTYN1xCaP6TO61jvWrX-L18txXw494Q_cgk",
  "qi":"GyM_p6JrXySiz1toFgKbWV-JdI3jQ4ypu9rbMWx3rQJBfmt0FoYzgUIZEVFEcOqwemRN81zoDAaa-Bk0KWNGDjJHZDdDmFhW3AN7lI-puxk_mHZGJ11rxyR8O55XLSe3SPmRfKwZI6yU24ZxvQKFYItdldUKGzO6Ia6zTKhAVRU",
  "alg":"RS256","kid":"2011-04-29"}]})";

// RFC 8037 Appendix A.1 (private key), A.2 (public key), A.3 (thumbprint)
// and A.4 (the JWS, deterministic).
constexpr const char* rfc8037_private = R"({"kty":"OKP","crv":"Ed25519",
 "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
 "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})";

constexpr const char* rfc8037_public = R"({"kty":"OKP","crv":"Ed25519",
 "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})";

constexpr const char* rfc8037_thumbprint =
    "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

constexpr const char* rfc8037_jws =
    "eyJhbGciOiJFZERTQSJ9"
    ".RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    ".hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt"
    "9g7sVvpAr_MuM0KAg";

/// The JWK without the members that are not key material.
json without_metadata(json jwk) {
  for (const char* name : {"use", "kid", "alg"})
    jwk.erase(name);
  return jwk;
}

/// Splits a compact JWS and decodes its signature.
std::pair<std::string, std::string>
signing_input_and_signature(std::string_view jws) {
  auto parts = split_compact(jws);
  CAF_REQUIRE(parts.has_value());
  auto signature = base64url_decode(parts->signature);
  CAF_REQUIRE(signature.has_value());
  return {std::string{parts->signing_input}, *signature};
}

std::string error_of(void (*fn)(const json&), const json& input) {
  try {
    fn(input);
  } catch (const jose_error& err) {
    return err.what();
  }
  return "";
}

void import_any(const json& jwk) {
  key::from_jwk(jwk);
}

void import_public(const json& jwk) {
  key::from_public_jwk(jwk);
}

} // namespace

CAF_TEST(base64url encodes the RFC 4648 vectors without padding) {
  CAF_CHECK_EQUAL(base64url_encode(""), "");
  CAF_CHECK_EQUAL(base64url_encode("f"), "Zg");
  CAF_CHECK_EQUAL(base64url_encode("fo"), "Zm8");
  CAF_CHECK_EQUAL(base64url_encode("foo"), "Zm9v");
  CAF_CHECK_EQUAL(base64url_encode("foob"), "Zm9vYg");
  CAF_CHECK_EQUAL(base64url_encode("fooba"), "Zm9vYmE");
  CAF_CHECK_EQUAL(base64url_encode("foobar"), "Zm9vYmFy");
  CAF_CHECK_EQUAL(base64url_encode("\xfb\xff\xbf"), "-_-_");
  CAF_CHECK_EQUAL(base64url_decode("Zm9vYmE"),
                  std::optional<std::string>{"fooba"});
  CAF_CHECK_EQUAL(base64url_decode("-_-_"),
                  std::optional<std::string>{"\xfb\xff\xbf"});
  CAF_CHECK_EQUAL(base64url_decode(""), std::optional<std::string>{""});
}

CAF_TEST(base64url decoding is strict) {
  for (const char* text : {"Zg==", "Zm8=", "Zm9v\n", " Zm9v", "Zm 9v", "Z",
                           "Zm9vY", "+/+/", "Zm9v/A", "Zh", "Zm9", "Zm9vYmF"})
    CAF_CHECK(!base64url_decode(text).has_value());
  // "Zg" and "Zh" differ only in unused trailing bits: one spelling only.
  CAF_CHECK(base64url_decode("Zg").has_value());
  CAF_CHECK(base64url_decode("Zm8").has_value());
  std::string all;
  for (int i = 0; i < 256; ++i)
    all += static_cast<char>(i);
  for (size_t len = 0; len <= all.size(); len += 37) {
    auto bytes = all.substr(0, len);
    CAF_CHECK_EQUAL(base64url_decode(base64url_encode(bytes)),
                    std::optional<std::string>{bytes});
  }
}

CAF_TEST(algorithm names are exact) {
  CAF_CHECK_EQUAL(std::string{to_string(algorithm::es256)}, "ES256");
  CAF_CHECK_EQUAL(std::string{to_string(algorithm::eddsa)}, "EdDSA");
  CAF_CHECK_EQUAL(std::string{to_string(algorithm::rs256)}, "RS256");
  CAF_CHECK(parse_algorithm("ES256") == algorithm::es256);
  CAF_CHECK(parse_algorithm("EdDSA") == algorithm::eddsa);
  CAF_CHECK(parse_algorithm("RS256") == algorithm::rs256);
  for (const char* name : {"es256", "EDDSA", "none", "HS256", "ES256 ", ""})
    CAF_CHECK(!parse_algorithm(name).has_value());
}

CAF_TEST(RFC 7515 A .2 RS256 signature is reproduced exactly) {
  auto k = key::from_jwk(json::parse(rfc7515_a2_jwk));
  CAF_CHECK(k.alg() == algorithm::rs256);
  CAF_CHECK(k.has_private());
  auto [input, signature] = signing_input_and_signature(rfc7515_a2_jws);
  CAF_CHECK_EQUAL(base64url_encode(k.sign(input)), base64url_encode(signature));
  CAF_CHECK(k.verify(input, signature));
  CAF_CHECK(k.public_key().verify(input, signature));
}

CAF_TEST(RFC 7515 A .3 ES256 example verifies and the key signs) {
  auto k = key::from_jwk(json::parse(rfc7515_a3_jwk));
  CAF_CHECK(k.alg() == algorithm::es256);
  auto [input, signature] = signing_input_and_signature(rfc7515_a3_jws);
  CAF_CHECK_EQUAL(signature.size(), 64u);
  CAF_CHECK(k.verify(input, signature));
  auto pub = key::from_public_jwk(k.public_jwk());
  CAF_CHECK(!pub.has_private());
  CAF_CHECK(pub.verify(input, signature));
  // ECDSA is randomized: a fresh signature differs but verifies.
  auto fresh = k.sign(input);
  CAF_CHECK_EQUAL(fresh.size(), 64u);
  CAF_CHECK_NOT_EQUAL(fresh, signature);
  CAF_CHECK(pub.verify(input, fresh));
  CAF_CHECK(!pub.verify(input + "x", fresh));
}

CAF_TEST(RFC 7517 A .1 public keys parse and re - export the same members) {
  auto keys = json::parse(rfc7517_a1)["keys"];
  CAF_REQUIRE_EQUAL(keys.size(), 2u);
  for (const auto& jwk : keys) {
    auto k = key::from_public_jwk(jwk);
    CAF_CHECK(!k.has_private());
    CAF_CHECK_EQUAL(k.public_jwk().dump(), without_metadata(jwk).dump());
    CAF_CHECK(k.alg() ==
              (jwk["kty"] == "EC" ? algorithm::es256 : algorithm::rs256));
  }
}

CAF_TEST(RFC 7517 A .2 private keys parse and re - export the same members) {
  auto keys = json::parse(rfc7517_a2)["keys"];
  auto pub = json::parse(rfc7517_a1)["keys"];
  CAF_REQUIRE_EQUAL(keys.size(), 2u);
  for (size_t i = 0; i < keys.size(); ++i) {
    auto k = key::from_jwk(keys[i]);
    CAF_CHECK(k.has_private());
    CAF_CHECK_EQUAL(k.private_jwk().dump(), without_metadata(keys[i]).dump());
    CAF_CHECK_EQUAL(k.public_jwk().dump(), without_metadata(pub[i]).dump());
    auto signature = k.sign("payload");
    CAF_CHECK(key::from_public_jwk(pub[i]).verify("payload", signature));
  }
}

CAF_TEST(RFC 7638 3.1 thumbprint) {
  auto jwk = json::parse(rfc7517_a1)["keys"][1];
  CAF_CHECK_EQUAL(key::from_public_jwk(jwk).thumbprint(),
                  "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

CAF_TEST(RFC 8037 A .1 to A .5 Ed25519) {
  auto k = key::from_jwk(json::parse(rfc8037_private)); // A.1
  CAF_CHECK(k.alg() == algorithm::eddsa);
  CAF_CHECK_EQUAL(k.private_jwk().dump(), json::parse(rfc8037_private).dump());
  CAF_CHECK_EQUAL(k.public_jwk().dump(), json::parse(rfc8037_public).dump());
  auto pub = key::from_public_jwk(json::parse(rfc8037_public)); // A.2
  CAF_CHECK_EQUAL(pub.thumbprint(), rfc8037_thumbprint);        // A.3
  CAF_CHECK_EQUAL(k.thumbprint(), rfc8037_thumbprint);
  auto [input, signature] = signing_input_and_signature(rfc8037_jws);
  CAF_CHECK_EQUAL(input, base64url_encode(R"({"alg":"EdDSA"})") + "." +
                             base64url_encode("Example of Ed25519 signing"));
  CAF_CHECK_EQUAL(base64url_encode(k.sign(input)),
                  base64url_encode(signature)); // A.4
  CAF_CHECK(pub.verify(input, signature));      // A.5
  // Contexts are reused: the same verification must keep succeeding.
  CAF_CHECK(pub.verify(input, signature));
  signature[10] ^= 0x01;
  CAF_CHECK(!pub.verify(input, signature));
}

CAF_TEST(from_public_jwk refuses private members) {
  auto pub = json::parse(rfc8037_public);
  for (const char* name : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    auto jwk = pub;
    jwk[name] = "AQAB";
    CAF_CHECK_NOT_EQUAL(error_of(import_public, jwk), "");
  }
  CAF_CHECK_NOT_EQUAL(error_of(import_public, json::parse(rfc8037_private)),
                      "");
  CAF_CHECK_EQUAL(error_of(import_any, json::parse(rfc8037_private)), "");
}

CAF_TEST(bad JWKs fail with a message naming the problem) {
  auto ec = json::parse(rfc7515_a3_jwk);
  auto rsa = json::parse(rfc7517_a1)["keys"][1];
  auto with = [](json jwk, const char* name, json value) {
    jwk[name] = std::move(value);
    return jwk;
  };
  auto without = [](json jwk, const char* name) {
    jwk.erase(name);
    return jwk;
  };
  auto contains = [](const std::string& msg, const char* part) {
    return msg.find(part) != std::string::npos;
  };
  CAF_CHECK(contains(error_of(import_any, json::array()), "object"));
  CAF_CHECK(contains(error_of(import_any, without(ec, "kty")), "\"kty\""));
  CAF_CHECK(contains(error_of(import_any, with(ec, "kty", "XYZ")), "kty"));
  CAF_CHECK(contains(error_of(import_any, with(ec, "kty", "oct")), "oct"));
  CAF_CHECK(contains(error_of(import_any, with(ec, "crv", "P-384")), "curve"));
  CAF_CHECK(contains(error_of(import_any, with(ec, "x", 7)), "\"x\""));
  CAF_CHECK(contains(error_of(import_any, with(ec, "x", "f83O+3D2")), "\"x\""));
  // 31 bytes instead of 32.
  CAF_CHECK(
      contains(error_of(import_any,
                        with(ec, "y", base64url_encode(std::string(31, 'a')))),
               "32 bytes"));
  // A point that is not on the curve: change one bit of y.
  auto y = *base64url_decode(ec["y"].get<std::string>());
  y[31] ^= 0x01;
  auto off_curve =
      error_of(import_any, with(without(ec, "d"), "y", base64url_encode(y)));
  CAF_CHECK(contains(off_curve, "P-256 point"));
  // d belonging to another key; the message must not echo it.
  auto other_d = key::generate(algorithm::es256).private_jwk()["d"];
  auto mismatch = error_of(import_any, with(ec, "d", other_d));
  CAF_CHECK(contains(mismatch, "\"d\""));
  CAF_CHECK(!contains(mismatch, other_d.get<std::string>().c_str()));
  auto ed = json::parse(rfc8037_private);
  CAF_CHECK(contains(error_of(import_any, with(ed, "d", other_d)), "\"d\""));
  CAF_CHECK(contains(error_of(import_any, with(ed, "crv", "X25519")), "curve"));
  CAF_CHECK(contains(error_of(import_any, with(ec, "alg", "RS256")), "alg"));
  CAF_CHECK_EQUAL(error_of(import_any, with(ec, "alg", "ES256")), "");
  // RSA: short modulus, even exponent, leading zero, unsupported oth.
  auto n = *base64url_decode(rsa["n"].get<std::string>());
  auto short_n = n.substr(0, 128);
  short_n.back() |= 1;
  CAF_CHECK(contains(
      error_of(import_any, with(rsa, "n", base64url_encode(short_n))), "2048"));
  CAF_CHECK(contains(error_of(import_any, with(rsa, "e", "AQAA")), "\"e\""));
  CAF_CHECK(contains(error_of(import_any, with(rsa, "e", "AQ")), "\"e\""));
  CAF_CHECK(
      contains(error_of(import_any, with(rsa, "n", base64url_encode('\0' + n))),
               "\"n\""));
  auto rsa_private = json::parse(rfc7517_a2)["keys"][1];
  CAF_CHECK(contains(error_of(import_any, without(rsa_private, "qi")), "qi"));
  CAF_CHECK(contains(
      error_of(import_any, with(rsa_private, "oth", json::array())), "oth"));
  CAF_CHECK(
      contains(error_of(import_any, with(rsa_private, "p", rsa_private["q"])),
               "inconsistent"));
}

CAF_TEST(generated keys round - trip sign and verify through JWK) {
  for (auto alg : {algorithm::es256, algorithm::eddsa, algorithm::rs256}) {
    CAF_MESSAGE("algorithm " << std::string{to_string(alg)});
    auto k = key::generate(alg);
    CAF_CHECK(k.alg() == alg);
    CAF_CHECK(k.has_private());
    auto signature = k.sign("signing input");
    CAF_CHECK(k.verify("signing input", signature));
    CAF_CHECK(!k.verify("signing inpuT", signature));
    CAF_CHECK(!k.verify("signing input", signature.substr(1)));
    CAF_CHECK(!k.verify("signing input", ""));
    auto imported = key::from_jwk(k.private_jwk());
    CAF_CHECK(imported.has_private());
    CAF_CHECK_EQUAL(imported.thumbprint(), k.thumbprint());
    CAF_CHECK_EQUAL(imported.private_jwk().dump(), k.private_jwk().dump());
    CAF_CHECK(imported.verify("signing input", signature));
    CAF_CHECK(k.verify("other input", imported.sign("other input")));
    auto pub = key::from_public_jwk(k.public_jwk());
    CAF_CHECK(!pub.has_private());
    CAF_CHECK_EQUAL(pub.thumbprint(), k.thumbprint());
    CAF_CHECK(pub.verify("signing input", signature));
    CAF_CHECK(!k.public_key().has_private());
    CAF_CHECK_EQUAL(k.public_key().public_jwk().dump(), k.public_jwk().dump());
    CAF_CHECK_EQUAL(k.private_jwk().count("d"), 1u);
    CAF_CHECK_EQUAL(k.public_jwk().count("d"), 0u);
    bool threw = false;
    try {
      pub.sign("x");
    } catch (const jose_error&) {
      threw = true;
    }
    CAF_CHECK(threw);
    threw = false;
    try {
      pub.private_jwk();
    } catch (const jose_error&) {
      threw = true;
    }
    CAF_CHECK(threw);
    CAF_CHECK_NOT_EQUAL(key::generate(alg).thumbprint(), k.thumbprint());
  }
}

CAF_TEST(ES256 signatures are always 64 bytes) {
  auto k = key::generate(algorithm::es256);
  for (int i = 0; i < 300; ++i) {
    auto input = "input " + std::to_string(i);
    auto signature = k.sign(input);
    CAF_REQUIRE_EQUAL(signature.size(), 64u);
    CAF_REQUIRE(k.verify(input, signature));
  }
  // R = 0 or R, S >= the group order are rejected, not mis-encoded.
  CAF_CHECK(!k.verify("input", std::string(64, '\0')));
  CAF_CHECK(!k.verify("input", std::string(64, '\xff')));
}

CAF_TEST(keys sign and verify from many threads at once) {
  for (auto alg : {algorithm::es256, algorithm::eddsa, algorithm::rs256}) {
    auto k = key::from_jwk(key::generate(alg).private_jwk());
    auto shared_signature = k.sign("shared");
    std::vector<int> failures(4, 0);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < failures.size(); ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 25; ++i) {
          auto input = std::to_string(t) + "/" + std::to_string(i);
          auto copy = k; // copies share the EVP_PKEY
          if (!copy.verify(input, copy.sign(input)) ||
              !k.verify("shared", shared_signature) ||
              k.verify("other", shared_signature))
            ++failures[t];
        }
      });
    for (auto& thread : threads)
      thread.join();
    CAF_CHECK_EQUAL(failures, std::vector<int>(4, 0));
  }
}

CAF_TEST(parse_json_object rejects duplicates and deep nesting) {
  CAF_CHECK(parse_json_object(R"({"a":1,"b":{"c":2}})").has_value());
  CAF_CHECK(!parse_json_object(R"({"a":1,"a":1})").has_value());
  CAF_CHECK(!parse_json_object(R"({"a":{"c":1,"c":2}})").has_value());
  CAF_CHECK(!parse_json_object(R"({"a":[{"c":1,"c":2}]})").has_value());
  CAF_CHECK(parse_json_object(R"({"a":{"c":1},"b":{"c":2}})").has_value());
  CAF_CHECK(!parse_json_object("[1]").has_value());
  CAF_CHECK(!parse_json_object("{").has_value());
  CAF_CHECK(!parse_json_object(R"({"a":1} x)").has_value());
  std::string deep =
      R"({"a":)" + std::string(40, '[') + std::string(40, ']') + "}";
  CAF_CHECK(!parse_json_object(deep).has_value());
}

CAF_TEST(Ed25519 keys and signature points of small order are refused) {
  // The encodings of the eight points of order 1, 2, 4 and 8 (x even and
  // odd), and the non-canonical encodings of 0 and 1: [8]P = O for each,
  // computed from the curve equations for this list.
  std::vector<std::string> small_order_hex{
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"};
  auto bytes = [](const std::string& hex) {
    std::string out;
    for (size_t i = 0; i < hex.size(); i += 2)
      out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
  };
  for (auto& hex : small_order_hex) {
    json jwk{{"kty", "OKP"}, {"crv", "Ed25519"},
             {"x", base64url_encode(bytes(hex))}};
    try {
      key::from_public_jwk(jwk);
      CAF_ERROR("a small-order key was imported: " << hex);
    } catch (const jose_error& e) {
      CAF_CHECK(std::string{e.what()}.find("small order") != std::string::npos);
    }
  }
  // A good key refuses a signature whose R is of small order (here the
  // identity with S = 0, which a small-order key would accept for every
  // message), and still verifies its own signatures.
  auto k = key::generate(algorithm::eddsa);
  auto forged = bytes(small_order_hex[2]) + std::string(32, '\0');
  CAF_CHECK(!k.verify("header.payload", forged));
  CAF_CHECK(k.verify("header.payload", k.sign("header.payload")));
}
