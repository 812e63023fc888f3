// Base64url (RFC 4648 §5) without padding, as JOSE uses it (RFC 7515 §2).
// Decoding is strict so that every token has exactly one accepted spelling.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace keymesh {

/// Encodes `bytes` as base64url with no '=' padding.
std::string base64url_encode(std::string_view bytes);

/// Decodes unpadded base64url. Returns nullopt for any character outside
/// A-Z a-z 0-9 '-' '_' (so also for padding and whitespace), for a length
/// with remainder 1 modulo 4, and for non-zero unused trailing bits.
std::optional<std::string> base64url_decode(std::string_view text);

} // namespace keymesh
