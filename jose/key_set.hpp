// A set of verification keys by kid: what verify_jwt looks keys up in and
// what the JWKS endpoint (RFC 7517 §5) publishes.
#pragma once

#include "jose/key.hpp"

#include <cstddef>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace keymesh::jose {

class key_set {
public:
  /// Adds `k` under `kid`, replacing any key already there.
  void add(std::string kid, key k);

  /// Removes the key under `kid`; false when there was none.
  bool remove(std::string_view kid);

  /// The key under `kid`, or nullptr. The pointer stays valid until the set
  /// is next modified.
  const key* find(std::string_view kid) const;

  size_t size() const;

  bool empty() const;

  /// {"keys":[...]}: each key's public JWK plus "kid", "use":"sig" and
  /// "alg", in kid order. Never contains private members.
  nlohmann::json to_jwks() const;

  /// Reads a JWKS as to_jwks writes it (public keys only; every entry needs
  /// a string "kid"). Throws jose_error naming the offending entry.
  static key_set from_jwks(const nlohmann::json& jwks);

private:
  std::map<std::string, key, std::less<>> keys_;
};

} // namespace keymesh::jose
