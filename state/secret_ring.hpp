// Cluster-shared secret rings: the keys every node of a cluster holds for
// one purpose (DPoP server nonces, sealed cookies), rotated on a schedule.
// A new key is installed on every node before any node uses it: it enters
// the ring with an activation time `install_lead` ahead, while the ring
// spreads (replicated state, bus); until then it only verifies and opens.
// The key it replaces stays for `overlap` after that, then goes.
//
// Built on that: DPoP server nonces (RFC 9449 §8) that any node issues and
// every node checks without a network hop — a MAC of the time window — and
// cookie payloads sealed with AES-256-GCM. Pure functions; the secrets
// service (services/secrets.hpp) keeps and spreads the rings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keymesh::state {

/// The keyspace the rings are replicated in (key: the purpose). It is not
/// written to the warm-start snapshot file.
inline constexpr const char* secrets_keyspace = "secrets";

/// Bytes of every ring key.
inline constexpr size_t ring_key_bytes = 32;

/// Keys one ring holds at most (older ones are dropped first).
inline constexpr size_t max_ring_keys = 16;

struct ring_key {
  /// Random, unique in its ring; named in every nonce and sealed cookie.
  uint32_t kid = 0;
  std::string secret;
  /// Unix ms.
  int64_t created_at = 0;
  /// From when it signs and seals; before, it only verifies and opens.
  int64_t active_from = 0;
  /// After when it is gone (0: not scheduled yet).
  int64_t retire_after = 0;
};

struct secret_ring {
  std::string purpose;
  /// Bumped by every change: the newer ring wins.
  uint64_t generation = 0;
  /// Newest first.
  std::vector<ring_key> keys;
};

struct ring_policy {
  /// A key older than this is replaced (ms).
  int64_t rotate_every_ms = 0;
  /// How long a new key is installed before it is used (ms).
  int64_t install_lead_ms = 0;
  /// How long a replaced key stays after its successor is active (ms).
  int64_t overlap_ms = 0;
};

/// A first ring for PURPOSE: one key, active at once (nothing was sealed
/// before it, so no node can lack it).
secret_ring new_ring(std::string purpose, int64_t now_ms);

/// Whether RING's newest key is older than the policy allows.
bool rotation_due(const secret_ring& ring, int64_t now_ms,
                  const ring_policy& policy);

/// RING with a new key installed (active after the install lead), the key
/// it replaces scheduled to retire OVERLAP after that, retired keys
/// dropped, and the generation bumped.
secret_ring rotated(secret_ring ring, int64_t now_ms,
                    const ring_policy& policy);

/// The key that signs and seals at NOW: the newest active one.
const ring_key* signing_key(const secret_ring& ring, int64_t now_ms);

/// The key KID if it still verifies and opens at NOW.
const ring_key* find_key(const secret_ring& ring, uint32_t kid, int64_t now_ms);

/// The stored form (compact JSON, secrets in base64url: it is sealed or
/// kept in memory only) and back.
std::string encode_ring(const secret_ring& ring);
std::optional<secret_ring> decode_ring(std::string_view stored);

// -- DPoP server nonces
// --------------------------------------------------------

/// A nonce for the time window of NOW (windows of WINDOW_MS):
/// base64url(kid | window | HMAC-SHA256(key, purpose | kid | window)[0..16]).
/// Empty when the ring has no active key.
std::string make_dpop_nonce(const secret_ring& ring, int64_t now_ms,
                            int64_t window_ms);

/// Whether NONCE was made by a key of RING that still verifies, for the
/// current or the previous window.
bool dpop_nonce_valid(const secret_ring& ring, std::string_view nonce,
                      int64_t now_ms, int64_t window_ms);

// -- sealed cookies
// ------------------------------------------------------------

/// PLAINTEXT sealed with the signing key, bound to AAD (the cookie's name,
/// say): "v1." base64url(kid | AES-256-GCM blob). Empty when the ring has
/// no active key.
std::string seal_cookie(const secret_ring& ring, std::string_view plaintext,
                        std::string_view aad, int64_t now_ms);

/// The key id a sealed cookie names, if it is shaped like one.
std::optional<uint32_t> sealed_cookie_kid(std::string_view sealed);

/// The plaintext of SEALED, or nothing when it was not sealed by a key of
/// RING that still opens, for AAD, or was changed.
std::optional<std::string> open_cookie(const secret_ring& ring,
                                       std::string_view sealed,
                                       std::string_view aad, int64_t now_ms);

} // namespace keymesh::state
