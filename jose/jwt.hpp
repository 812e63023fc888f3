// Strict JWT verification (RFC 7519) against a key_set: structure, header,
// signature and then the time, issuer and audience claims, with one reason
// for each way a token can fail.
#pragma once

#include "jose/key_set.hpp"

#include <chrono>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace keymesh::jose {

enum class verify_reason {
  ok,
  expired,
  not_yet_valid,
  bad_signature,
  unknown_kid,
  malformed,
  wrong_issuer,
  wrong_audience,
  alg_not_allowed,
};

/// "ok", "expired", "not_yet_valid", ... (the enumerator name).
std::string_view to_string(verify_reason reason);

struct verify_options {
  /// Clock skew tolerated for exp, nbf and iat.
  std::chrono::seconds leeway{30};
  /// Empty: not checked. Otherwise "iss" must equal it.
  std::string issuer;
  /// Empty: not checked. Otherwise "aud" (a string or an array of strings)
  /// must contain it.
  std::string audience;
  /// Longer tokens are rejected before any decoding.
  size_t max_token_bytes = 16 * 1024;
};

struct verify_result {
  verify_reason reason = verify_reason::malformed;
  /// The payload when reason is ok, and for every later failure once the
  /// signature has verified (expired, not_yet_valid, wrong_issuer, ...).
  nlohmann::json claims;
  /// The same payload as the JSON text the token carries (set together with
  /// claims), for callers that pass it on without re-serialising.
  std::string claims_json;
  /// The header's kid when it could be read.
  std::string kid;
  /// Short human text, e.g. "exp is 120 s in the past". Never the token.
  std::string detail;
  bool ok() const {
    return reason == verify_reason::ok;
  }
};

/// Verifies a compact JWS JWT. Checks, in order: size and structure
/// (malformed), header crit/alg/kid (malformed, alg_not_allowed,
/// unknown_kid), the signature (bad_signature), then exp (required),
/// nbf, iat, iss and aud. Never throws for bad input.
verify_result verify_jwt(std::string_view token, const key_set& keys,
                         const verify_options& opts,
                         std::chrono::system_clock::time_point now);

} // namespace keymesh::jose
