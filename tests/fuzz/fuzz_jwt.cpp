// Fuzz target: JWT parsing and verification (jose::verify_jwt with a node's
// options), and the strict base64url and JSON readers under it.
#include <chrono>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_keys.hpp"
#include "common/base64url.hpp"
#include "jose/jws.hpp"
#include "jose/jwt.hpp"
#include "jose/key_set.hpp"

using namespace keymesh;

namespace {

struct target {
  jose::key_set keys;
  jose::verify_options opts;
  std::chrono::system_clock::time_point now{
      std::chrono::seconds{fuzz::fuzz_now}};

  target() {
    using nlohmann::json;
    keys.add("es", jose::key::from_jwk(json::parse(fuzz::es256_jwk)));
    keys.add("ed", jose::key::from_jwk(json::parse(fuzz::eddsa_jwk)));
    keys.add("rs", jose::key::from_jwk(json::parse(fuzz::rs256_jwk)));
    opts.leeway = std::chrono::seconds{30};
    opts.issuer = "https://issuer.example";
    opts.audience = "api";
  }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto& t = *new target;
  std::string_view input{reinterpret_cast<const char*>(data), size};
  auto v = jose::verify_jwt(input, t.keys, t.opts, t.now);
  if (v.ok() && !v.claims.is_object())
    __builtin_trap(); // a verified token always has an object payload
  keymesh::base64url_decode(input);
  jose::parse_json_object(input);
  return 0;
}
