// Text renderings of the configuration: the effective values as YAML (for
// `keymesh config show` and startup logs) and the Markdown key reference that
// docs/configuration.md embeds below its marker line.
#pragma once

#include <string>
#include <string_view>

#include "config/settings.hpp"

namespace keymesh::config {

/// Marker line in docs/configuration.md; everything after it (and its
/// newline) is exactly render_markdown_reference().
inline constexpr std::string_view reference_marker =
    "<!-- generated: do not edit below; regenerate with keymesh config "
    "reference -->";

/// YAML with every key's effective value, loadable again by the loader.
/// Non-empty secrets are shown as "<redacted>".
std::string render_effective(const settings& value);

/// Markdown table: key | type | default | env | description, one row per key,
/// allowed values and bounds included in the description.
std::string render_markdown_reference();

} // namespace keymesh::config
