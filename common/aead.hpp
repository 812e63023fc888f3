// Authenticated encryption (AES-256-GCM over OpenSSL EVP) for secrets at
// rest and sealed cookies: "KMS1" | 12-byte random nonce | ciphertext |
// 16-byte tag, bound to associated data that names what the blob is, so
// that a blob sealed for one purpose does not open as another.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace keymesh {

/// Bytes in a key.
inline constexpr size_t aead_key_bytes = 32;

/// Bytes a sealed blob has more than its plaintext.
inline constexpr size_t aead_overhead = 4 + 12 + 16;

/// Encrypts and authenticates PLAINTEXT with KEY (32 bytes), bound to AAD.
/// Throws std::runtime_error when the key is not 32 bytes or OpenSSL fails.
std::string aead_seal(std::string_view key, std::string_view plaintext,
                      std::string_view aad);

/// The plaintext, or nullopt when SEALED was not sealed with KEY and AAD,
/// or was changed (never a partial or unauthenticated result).
std::optional<std::string> aead_open(std::string_view key,
                                     std::string_view sealed,
                                     std::string_view aad);

} // namespace keymesh
