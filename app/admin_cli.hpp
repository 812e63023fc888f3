// keymesh admin: the node's HTTP API from the command line, for operators
// and scripts (tables by default, --json for scripts, exit codes below).
#pragma once

#include <string>
#include <vector>

namespace keymesh::cli {

/// Exit codes of `keymesh admin`.
enum exit_code : int {
  /// Done.
  exit_ok = 0,
  /// The node answered with an error (or, for `status`, is not ready).
  exit_failed = 1,
  /// A usage or configuration error: nothing was sent.
  exit_usage = 2,
  /// What the command names does not exist (404).
  exit_not_found = 3,
  /// The node could not be reached, or did not answer in time.
  exit_unreachable = 4,
  /// The admin key was missing or refused (401, 403).
  exit_unauthorized = 5,
  /// A revocation is in force on the nodes reached, but some were not
  /// (propagation partial; revoking again is harmless).
  exit_partial = 6,
};

extern const char* const admin_help;

/// Runs `keymesh admin ARGS` with the process environment ENVP.
int run_admin(const std::vector<std::string>& args, char** envp);

} // namespace keymesh::cli
