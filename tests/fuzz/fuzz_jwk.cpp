// Fuzz target: JWK and JWKS import, as a static peer's answer arrives
// (parse_peer_jwks) and as a single JWK (public and private import, RFC
// 7638 thumbprints).
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/peer_fetcher.hpp"
#include "jose/jws.hpp"
#include "jose/key.hpp"

using namespace keymesh;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};
  std::vector<std::string> problems;
  size_t imports = 0;
  auto keys = parse_peer_jwks(input, problems, nullptr, &imports);
  if (keys.size() > 64)
    __builtin_trap(); // the cap per peer
  if (auto doc = jose::parse_json_object(input)) {
    jose::thumbprint_of(*doc);
    try {
      auto k = jose::key::from_public_jwk(*doc);
      k.thumbprint();
      k.public_jwk();
    } catch (const jose::jose_error&) {
    }
    try {
      auto k = jose::key::from_jwk(*doc);
      if (k.has_private())
        k.sign("fuzz");
    } catch (const jose::jose_error&) {
    }
  }
  return 0;
}
