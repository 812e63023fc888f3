// Builds `settings` from defaults, a YAML file and KEYMESH_* environment
// variables (env beats file beats default), validating every value against
// config/schema.hpp. Problems come back as messages, never as exceptions.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/settings.hpp"

namespace keymesh::config {

struct load_result {
  settings value;
  /// Each names where the value came from ("file.yaml:12" or
  /// "env KEYMESH_X"), the key, the bad value and what is allowed.
  std::vector<std::string> errors;

  bool ok() const {
    return errors.empty();
  }
};

/// KEYMESH_* variables that are not configuration keys (set by the test
/// harness or the launcher); the loader ignores them instead of refusing them.
inline constexpr std::array<std::string_view, 5> reserved_environment{
    "KEYMESH_BIN", "KEYMESH_CONFIG", "KEYMESH_SOURCE_DIR",
    // keymesh admin's node and key
    "KEYMESH_URL", "KEYMESH_ADMIN_KEY"};

/// Reads `yaml_path` ("" = no file; a given but missing file is an error) and
/// then applies `env`.
load_result load(const std::string& yaml_path,
                 const std::map<std::string, std::string>& env);

/// As load(), with the YAML given as text; `source_name` prefixes locations.
load_result load_from_string(const std::string& yaml_text,
                             const std::map<std::string, std::string>& env,
                             const std::string& source_name = "<string>");

/// The KEYMESH_* entries of a NAME=VALUE array such as `environ`.
std::map<std::string, std::string> keymesh_environment(char** envp);

/// Optimal string alignment distance (edits, with adjacent transpositions);
/// used for "did you mean" suggestions.
size_t edit_distance(std::string_view lhs, std::string_view rhs);

} // namespace keymesh::config
