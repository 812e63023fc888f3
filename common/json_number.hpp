// Whole numbers read from JSON that came from elsewhere (a peer's record, a
// token's claims): nlohmann converts a float or an out-of-range integer to
// int64 with undefined behaviour, so every such read goes through here.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

#include <nlohmann/json.hpp>

namespace keymesh {

/// J as an int64 when it is an integer within [MIN, MAX]; nullopt for
/// anything else (a float, a string, an integer out of range).
inline std::optional<int64_t>
exact_int64(const nlohmann::json& j,
            int64_t min = std::numeric_limits<int64_t>::min(),
            int64_t max = std::numeric_limits<int64_t>::max()) {
  int64_t x = 0;
  if (j.is_number_unsigned()) {
    auto u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return std::nullopt;
    x = static_cast<int64_t>(u);
  } else if (j.is_number_integer()) {
    x = j.get<int64_t>();
  } else {
    return std::nullopt;
  }
  if (x < min || x > max)
    return std::nullopt;
  return x;
}

/// A number of seconds (any JSON number) as whole seconds, clamped to
/// +-2^53 (NaN: 0), so that later arithmetic in milliseconds cannot
/// overflow.
inline int64_t clamped_seconds(const nlohmann::json& j) {
  constexpr double limit = 9007199254740992.0; // 2^53
  if (auto x = exact_int64(j, -(int64_t{1} << 53), int64_t{1} << 53))
    return *x;
  if (!j.is_number())
    return 0;
  auto d = j.get<double>();
  if (std::isnan(d))
    return 0;
  return static_cast<int64_t>(std::clamp(d, -limit, limit));
}

} // namespace keymesh
