// Password hashes: scrypt's published test vector, round trips, the cost in
// the encoded form, and malformed or hostile stored hashes.
#define CAF_SUITE auth.password
#include "caf/test/unit_test.hpp"

#include <chrono>
#include <string>
#include <vector>

#include "auth/password.hpp"
#include "common/base64url.hpp"

using namespace keymesh;
using auth::scrypt_cost;

namespace {

/// Cheap enough for many checks.
const scrypt_cost fast{10, 8, 1};

std::string hex_decode(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

} // namespace

CAF_TEST(the RFC 7914 test vector verifies) {
  // scrypt("password", "NaCl", N=1024, r=8, p=16): its first 32 bytes.
  auto hash = hex_decode(
    "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162");
  auto encoded = "$scrypt$ln=10,r=8,p=16$" + keymesh::base64url_encode("NaCl")
                 + "$" + keymesh::base64url_encode(hash);
  CAF_CHECK(auth::verify_password("password", encoded));
  CAF_CHECK(!auth::verify_password("Password", encoded));
}

CAF_TEST(hashes round trip and carry their cost) {
  auto a = auth::hash_password("correct horse", fast);
  auto b = auth::hash_password("correct horse", fast);
  CAF_CHECK_NOT_EQUAL(a, b); // fresh salts
  CAF_CHECK_EQUAL(a.rfind("$scrypt$ln=10,r=8,p=1$", 0), 0u);
  CAF_CHECK(auth::verify_password("correct horse", a));
  CAF_CHECK(auth::verify_password("correct horse", b));
  CAF_CHECK(!auth::verify_password("correct horse ", a));
  CAF_CHECK(!auth::verify_password("", a));
  // Odd bytes are just bytes.
  std::string odd{"p\0w\xff\xfe'\";--", 11};
  CAF_CHECK(auth::verify_password(odd, auth::hash_password(odd, fast)));
  CAF_CHECK(!auth::needs_rehash(a, fast));
  CAF_CHECK(auth::needs_rehash(a, scrypt_cost{}));
}

CAF_TEST(the default cost takes real time) {
  auto started = std::chrono::steady_clock::now();
  auto h = auth::hash_password("secret", scrypt_cost{});
  auto took = std::chrono::steady_clock::now() - started;
  CAF_CHECK(auth::verify_password("secret", h));
  CAF_MESSAGE("scrypt ln=15 r=8 p=1: "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took)
                   .count()
              << " ms");
  CAF_CHECK(took > std::chrono::milliseconds{5});
}

CAF_TEST(malformed and hostile stored hashes are refused) {
  auto good = auth::hash_password("x", fast);
  auto h32 = keymesh::base64url_encode(std::string(32, 'a'));
  std::vector<std::string> hostile{"", "$scrypt$", "plain", "$bcrypt$ln=10,r=8,p=1$AAAA$AAAA",
        "$scrypt$ln=10,r=8$AAAAAAAA$" + h32,
        "$scrypt$ln=10,r=8,p=1$AAAAAAAA$short",
        "$scrypt$ln=10,r=8,p=1$!!!!$" + h32,
        "$scrypt$ln=x,r=8,p=1$AAAAAAAA$" + h32,
        // A cost that would need gigabytes is not run.
        "$scrypt$ln=40,r=8,p=1$AAAAAAAA$" + h32,
        "$scrypt$ln=10,r=99999,p=1$AAAAAAAA$" + h32,
        good + "$extra", good.substr(0, good.size() - 2)};
  for (auto& bad : hostile) {
    CAF_CHECK(!auth::verify_password("x", bad));
    CAF_CHECK(auth::needs_rehash(bad, fast));
  }
}
