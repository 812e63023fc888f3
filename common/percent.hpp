// Percent-encoding (RFC 3986) for URL path segments, query values and
// application/x-www-form-urlencoded bodies.
#pragma once

#include <string>
#include <string_view>

namespace keymesh {

/// TEXT with every byte but the unreserved characters (letters, digits,
/// "-", "_", ".", "~") written as %XX.
std::string percent_encode(std::string_view text);

} // namespace keymesh
