// SHA-256 and hex helpers over OpenSSL, shared by ETags and admin keys.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace keymesh {

using sha256_digest = std::array<unsigned char, 32>;

sha256_digest sha256(std::string_view data);

std::string to_hex(const unsigned char* data, size_t size);

inline std::string to_hex(const sha256_digest& d) {
  return to_hex(d.data(), d.size());
}

/// Parses exactly 64 hex digits into a digest.
bool parse_sha256_hex(std::string_view hex, sha256_digest& out);

/// HMAC-SHA256 of DATA under KEY.
sha256_digest hmac_sha256(std::string_view key, std::string_view data);

/// A strong HTTP entity tag for BODY: a quoted 128-bit hex digest.
std::string make_etag(std::string_view body);

} // namespace keymesh
