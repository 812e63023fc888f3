// Plain data types that travel in keymesh messages, with their inspect()
// overloads. Everything here may cross nodes, so every type is registered in
// the type-ID block of actors/interfaces.hpp and round-trips in a unit test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace keymesh {

/// Asks the keystore to sign a token. The HTTP layer has validated the input.
struct token_request {
  std::string sub;
  /// Audiences; empty means "use keys.audience if configured, else none".
  std::vector<std::string> aud;
  /// Requested lifetime in seconds; 0 means keys.default_token_ttl. Capped by
  /// keys.max_token_ttl.
  int64_t ttl_seconds = 0;
  /// Extra claims as the text of a JSON object (may be empty). Registered
  /// claims (iss, sub, aud, exp, nbf, iat, jti) in here are ignored.
  std::string extra_claims_json;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_request& x) {
  return f(caf::meta::type_name("token_request"), x.sub, x.aud, x.ttl_seconds,
           x.extra_claims_json);
}

/// A signed compact JWS and what a caller needs to know about it.
struct signed_token {
  std::string token;
  std::string kid;
  /// Unix seconds.
  int64_t expires_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, signed_token& x) {
  return f(caf::meta::type_name("signed_token"), x.token, x.kid, x.expires_at);
}

/// One published public key with its schedule (all times in Unix ms).
struct public_key_info {
  std::string kid;
  /// "ES256", "EdDSA" or "RS256".
  std::string alg;
  /// The public JWK as JSON text (no private members, no kid/alg/use).
  std::string jwk;
  int64_t created_at = 0;
  /// The key signs from this instant...
  int64_t sign_from = 0;
  /// ...until this one (0 = not yet scheduled: it is the current key and its
  /// successor has not been created).
  int64_t retire_at = 0;
  /// The key leaves the JWKS at this instant (0 = not yet scheduled).
  int64_t expire_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, public_key_info& x) {
  return f(caf::meta::type_name("public_key_info"), x.kid, x.alg, x.jwk,
           x.created_at, x.sign_from, x.retire_at, x.expire_at);
}

using public_key_list = std::vector<public_key_info>;

/// The keys one origin (this node, a peer) currently publishes.
struct key_announcement {
  /// instance id of the node (or URL of the HTTP peer) that owns the keys.
  std::string origin;
  /// Increases with every change at the origin; stale announcements lose.
  uint64_t serial = 0;
  public_key_list keys;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, key_announcement& x) {
  return f(caf::meta::type_name("key_announcement"), x.origin, x.serial,
           x.keys);
}

} // namespace keymesh
