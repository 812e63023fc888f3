// Checks on text that arrives as raw bytes (URL path segments, header
// values): JSON output refuses invalid UTF-8 (nlohmann throws), and control
// characters have no place in names, so both are refused where they enter.
#pragma once

#include <cstdint>
#include <string_view>

namespace keymesh {

namespace detail {

inline bool check_utf8(std::string_view s, bool allow_controls) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      if (!allow_controls && (c < 0x20 || c == 0x7f))
        return false;
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size())
        return false;
      auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

} // namespace detail

/// Whether S is well-formed UTF-8 (no overlong forms, no surrogates, at
/// most U+10FFFF) without C0 control characters or DEL.
inline bool is_clean_text(std::string_view s) {
  return detail::check_utf8(s, false);
}

/// Whether S is well-formed UTF-8, control characters allowed (a stored
/// value that JSON output carries escaped).
inline bool is_utf8(std::string_view s) {
  return detail::check_utf8(s, true);
}

} // namespace keymesh
