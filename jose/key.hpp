// Signing keys for JOSE: ES256 (P-256), EdDSA (Ed25519) and RS256 (RSA), with
// JWK import/export (RFC 7517/7518/8037), RFC 7638 thumbprints and the raw
// JWS signature operations. Everything runs over OpenSSL 3 EVP.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace keymesh::jose {

/// The JWS algorithms keymesh signs and verifies with.
enum class algorithm { es256, eddsa, rs256 };

/// The JOSE name: "ES256", "EdDSA" or "RS256".
std::string_view to_string(algorithm a);

/// Inverse of to_string; exact and case-sensitive.
std::optional<algorithm> parse_algorithm(std::string_view name);

/// Thrown for bad key input and failed key operations. Messages name the
/// offending JWK member but never contain key material.
struct jose_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// An asymmetric key bound to one JWS algorithm. Immutable: copies share one
/// EVP_PKEY, and sign/verify are safe to call from many threads at once.
/// The RFC 7638 thumbprint of a JWK's required members as they are written
/// (no key is imported, nothing is validated); nullopt when a required
/// member is missing. Equal thumbprints name the same key, so a caller can
/// reuse a key it imported before.
std::optional<std::string> thumbprint_of(const nlohmann::json& jwk);

class key {
public:
  /// A fresh key: P-256 for ES256, Ed25519 for EdDSA, 2048-bit RSA for RS256.
  static key generate(algorithm alg);

  /// Imports a public or private JWK (kty EC/P-256, OKP/Ed25519 or RSA). An
  /// "alg" member, if present, must name the algorithm the key implies.
  static key from_jwk(const nlohmann::json& jwk);

  /// Like from_jwk, but refuses JWKs that carry private members (d, p, q,
  /// dp, dq, qi, oth, k): for keys that arrive from other parties.
  static key from_public_jwk(const nlohmann::json& jwk);

  /// Whether JWK has a private member (d, p, q, dp, dq, qi, oth, k).
  static bool carries_private_members(const nlohmann::json& jwk);

  algorithm alg() const;

  bool has_private() const;

  /// A copy without the private part.
  key public_key() const;

  /// The RFC 7638 required members only, in lexicographic order:
  /// EC {crv,kty,x,y}; OKP {crv,kty,x}; RSA {e,kty,n}.
  nlohmann::json public_jwk() const;

  /// public_jwk() plus d (RSA: also p, q, dp, dq, qi). Throws jose_error for
  /// a public key.
  nlohmann::json private_jwk() const;

  /// The RFC 7638 SHA-256 thumbprint, base64url.
  std::string thumbprint() const;

  /// The JWS signature over `signing_input` (ES256: raw 64-byte R||S).
  /// Throws jose_error without a private key.
  std::string sign(std::string_view signing_input) const;

  /// Checks a JWS signature. False on any mismatch or wrong length; never
  /// throws.
  bool verify(std::string_view signing_input, std::string_view signature) const;

  struct impl;

private:
  explicit key(std::shared_ptr<const impl> ptr);

  std::shared_ptr<const impl> impl_;
};

} // namespace keymesh::jose
