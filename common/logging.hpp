// Logging set-up: spdlog to stderr, as text (default) or JSON lines
// (log.format: json). Nothing in keymesh logs tokens, keys or secrets.
#pragma once

#include <string>

namespace keymesh {

/// Configures the default spdlog logger. LEVEL is a spdlog level name,
/// FORMAT is "text" or "json".
void setup_logging(const std::string& level, const std::string& format);

} // namespace keymesh
