// Refresh token families: the record a family keeps in the `refresh`
// keyspace (its session, generation and MAC key), and the token a client
// holds ("<family id>.<generation>.<mac>"). A family's id is its session's
// id, so that everything which ends a session can end its family without
// a lookup.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keymesh::state {

inline constexpr const char* refresh_keyspace = "refresh";

/// The longest refresh token accepted (anything longer is refused unread).
inline constexpr size_t max_refresh_token_bytes = 256;

struct refresh_family {
  std::string sid;
  std::string sub;
  int64_t generation = 0;
  /// base64url of 32 random bytes: the MAC key of the family's tokens.
  std::string key;
  /// Unix ms.
  int64_t expires_at = 0;
};

/// A refresh token as sent: "<family id>.<generation>.<mac>".
struct refresh_token {
  std::string id;
  int64_t generation = 0;
  std::string mac;
};

/// The stored form (compact JSON).
std::string encode_family(const refresh_family& f);

std::optional<refresh_family> decode_family(std::string_view stored);

/// A family for session SID of SUB at generation 1 with a fresh key.
refresh_family new_family(std::string sid, std::string sub, int64_t expires_at);

/// The token of family ID at F's current generation.
std::string make_refresh_token(const std::string& id, const refresh_family& f);

/// Parses TEXT; nullopt for anything that is not shaped like a token.
std::optional<refresh_token> parse_refresh_token(std::string_view text);

/// Whether T's MAC is the one F's key gives (in constant time).
bool mac_matches(const refresh_family& f, const refresh_token& t);

} // namespace keymesh::state
