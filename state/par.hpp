// Pushed authorization requests (RFC 9126) as keymesh keeps them: the
// request_uri handed to the client is random and only its SHA-256 is
// stored (as the id of an object of the reserved kind "keymesh.par"), with
// the client it is bound to, the request's parameters and when it
// expires. Pure functions: the objects service does the storing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keymesh::state {

/// The kind PAR requests are kept under (not reachable by the object
/// routes: kinds starting with "keymesh." are reserved).
inline constexpr const char* par_kind = "keymesh.par";

/// What every request_uri starts with (RFC 9126 §2.2).
inline constexpr std::string_view request_uri_prefix =
    "urn:ietf:params:oauth:request_uri:";

/// Lifetime of a request pushed without one, and the longest (ms).
inline constexpr int64_t par_default_ttl_ms = 60'000;
inline constexpr int64_t par_max_ttl_ms = 600'000;

/// How long an expired request is kept, so that its redemption is told
/// "expired" rather than "not found" (ms).
inline constexpr int64_t par_expired_grace_ms = 300'000;

/// A new request_uri: the prefix and 32 random bytes, base64url.
std::string new_request_uri();

/// The id a request_uri is stored under (base64url of its SHA-256), or
/// nothing when it is not one keymesh hands out (wrong prefix, length or
/// alphabet).
std::optional<std::string> par_id(std::string_view request_uri);

struct par_record {
  std::string client_id;
  /// The authorization request's parameters (JSON text of an object).
  std::string params;
  /// Unix ms.
  int64_t expires_at = 0;
};

/// The stored form (compact JSON) and back (nothing when damaged).
std::string encode_par(const par_record& r);
std::optional<par_record> decode_par(std::string_view stored);

} // namespace keymesh::state
