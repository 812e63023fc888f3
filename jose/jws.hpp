// JWS Compact Serialization (RFC 7515 §7.1): producing signed tokens and the
// strict structural parsing that verify_jwt builds on.
#pragma once

#include "jose/key.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace keymesh::jose {

/// Signs `claims` (a JSON object) as a compact JWS with the protected header
/// {"alg":<k.alg()>,"kid":<kid>,"typ":<typ>} and payload claims.dump().
/// Throws jose_error for a non-object payload or a key without private part.
std::string sign_compact(const key& k, std::string_view kid,
                         const nlohmann::json& claims,
                         std::string_view typ = "JWT");

/// The three base64url segments of a compact JWS, as views into the token.
struct compact_parts {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
  /// header '.' payload: the bytes the signature covers.
  std::string_view signing_input;
};

/// Splits at exactly two dots; nullopt for any other count. The segments are
/// not decoded.
std::optional<compact_parts> split_compact(std::string_view token);

/// Parses a JSON object strictly: nullopt for invalid JSON, a value that is
/// not an object, a repeated member name in any object (RFC 7515 §5.2 lets
/// a parser reject these and we do), or nesting deeper than 32 levels.
std::optional<nlohmann::json> parse_json_object(std::string_view text);

} // namespace keymesh::jose
