// The one table describing every configuration key: name, type, default,
// environment variable, bounds and description. The loader, the environment
// mapping, the renderers and docs/configuration.md are all driven by it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/settings.hpp"

namespace keymesh::config {

enum class value_type {
  string,
  path,
  boolean,
  integer,
  duration,
  size,
  /// One of key_spec::choices (matched ignoring case, stored as listed).
  choice,
  /// host:port, port 0..65535.
  address,
  /// Empty, or 1..64 characters of [A-Za-z0-9_.-].
  identifier,
  /// http:// or https:// base URLs.
  url_list,
  /// host:port entries, port 1..65535.
  address_list,
  /// DNS names.
  name_list,
  /// "KIND:MAX_TTL:MAX_VALUE_SIZE" entries (objects.kinds).
  kind_limit_list,
};

/// Where a key's value lives inside a `settings`.
using field_ref =
    std::variant<std::string*, bool*, size_t*, unsigned*,
                 std::chrono::milliseconds*, std::chrono::seconds*,
                 std::vector<std::string>*>;

struct key_spec {
  /// Dotted name, e.g. "cluster.tls.ca".
  std::string name;
  value_type type = value_type::string;
  std::string description;
  field_ref (*field)(settings&) = nullptr;
  /// Text of the default, derived from a default-constructed `settings`.
  std::string default_text;
  /// KEYMESH_ + the name upper-cased with '.' replaced by '_'.
  std::string env_name;
  /// Never printed: render_effective and error messages show "<redacted>".
  bool secret = false;
  /// For `address`: the empty string means "not set".
  bool allow_empty = false;
  std::vector<std::string> choices;
  /// Bounds: plain numbers for integers, milliseconds for durations, bytes
  /// for sizes.
  std::optional<int64_t> min;
  std::optional<int64_t> max;

  bool is_list() const;
  /// A duration stored in std::chrono::seconds: sub-second values are refused.
  bool whole_seconds() const;
};

/// Every key, grouped by section in the order of `settings`.
const std::vector<key_spec>& schema();

/// nullptr if no key has that dotted name.
const key_spec* find_key(std::string_view name);

/// nullptr if no key has that KEYMESH_* variable.
const key_spec* find_env(std::string_view env_name);

/// "cluster.tls.ca" -> "KEYMESH_CLUSTER_TLS_CA".
std::string env_name_for(std::string_view name);

/// True for "http" and "cluster.tls": prefixes of keys, not keys.
bool is_section(std::string_view name);

/// Immediate children of a section ("" for the top level): "cluster" gives
/// "cluster.enabled", ..., "cluster.tls", "cluster.srv".
std::vector<std::string> children_of(std::string_view section);

/// Short type name for docs: "duration", "size", "list of URLs", ...
std::string type_name(const key_spec& spec);

/// What a value must look like, including bounds and choices; ends without a
/// period. Used in error messages and in the reference docs.
std::string allowed_text(const key_spec& spec);

/// The current value as text in the same syntax the loader accepts; list
/// items are joined with ", ". Secrets are not redacted here.
std::string format_value(const key_spec& spec, const settings& value);

/// A value refused by assign(): the offending text (a single list item for
/// lists) and what is wrong with it.
struct value_error {
  std::string value;
  std::string problem;
};

/// Parses a scalar (a YAML scalar or an environment variable) and stores it.
/// For list keys, pass assign_list instead.
std::optional<value_error> assign(const key_spec& spec, settings& target,
                                  std::string_view text);

/// One entry of objects.kinds: the caps of one object kind.
struct kind_limit {
  std::string kind;
  std::chrono::seconds max_ttl{0};
  size_t max_value_bytes = 0;
};

/// "KIND:MAX_TTL:MAX_VALUE_SIZE" ("AuthorizationCode:10m:4KiB"), or
/// nothing when ITEM is not one.
std::optional<kind_limit> parse_kind_limit(std::string_view item);

/// Checks every item and stores the list; nothing is stored on error.
std::optional<value_error> assign_list(const key_spec& spec, settings& target,
                                       const std::vector<std::string>& items);

} // namespace keymesh::config
