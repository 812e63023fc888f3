// Secrets at rest: AES-256-GCM sealing (common/aead.hpp, with storage
// errors) and the key file it uses. A sealed blob is "KMS1" | 12-byte random
// nonce | ciphertext | 16-byte tag; the associated data names what the blob
// is, so a blob sealed for one purpose does not open as another.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace keymesh::persistence {

/// Bytes in an encryption key.
inline constexpr size_t encryption_key_bytes = 32;

/// Encrypts and authenticates PLAINTEXT with KEY (32 bytes), bound to AAD.
/// Throws storage_error when OpenSSL fails.
std::string seal(const std::string& key, std::string_view plaintext,
                 std::string_view aad);

/// The plaintext, or nullopt when SEALED was not sealed with KEY and AAD,
/// or was changed (never a partial or unauthenticated result).
std::optional<std::string> unseal(const std::string& key,
                                  std::string_view sealed,
                                  std::string_view aad);

/// The 32-byte key in PATH: 64 hex digits on the first line. Throws
/// storage_error naming the file (never its content) when it cannot be
/// read or holds anything else.
std::string read_encryption_key(const std::string& path);

/// A new key as 64 lowercase hex digits (for `keymesh keygen`).
std::string new_encryption_key_hex();

} // namespace keymesh::persistence
