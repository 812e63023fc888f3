// Password hashes: scrypt (OpenSSL 3's KDF) in a self-describing text form,
// "$scrypt$ln=15,r=8,p=1$<salt>$<hash>" (base64url, 16-byte salt, 32-byte
// hash), so the cost can change without invalidating stored hashes.
// Hashing is slow on purpose (tens of ms): call it from a blocking pool,
// never on CAF's scheduler or an HTTP I/O thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace keymesh::auth {

struct scrypt_cost {
  /// N = 2^log2_n.
  unsigned log2_n = 15;
  unsigned r = 8;
  unsigned p = 1;

  /// Memory one hash needs: 128 * r * N bytes (32 MiB for the default).
  uint64_t memory_bytes() const {
    return uint64_t{128} * r * (uint64_t{1} << log2_n);
  }
};

/// A new hash of PASSWORD with a fresh random salt. Throws
/// std::runtime_error when OpenSSL fails.
std::string hash_password(std::string_view password, const scrypt_cost& cost);

/// Whether PASSWORD matches ENCODED (constant-time comparison). False for a
/// malformed ENCODED or an unreasonable cost in it, never an exception.
bool verify_password(std::string_view password, std::string_view encoded);

/// Whether ENCODED was made with a cost other than COST (rehash on login).
bool needs_rehash(std::string_view encoded, const scrypt_cost& cost);

} // namespace keymesh::auth
