// Admin bearer keys: loaded from http.admin_keys_file (one key, or
// "sha256:<hex>" of a key, per line) and checked in constant time.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/digest.hpp"

namespace keymesh::http {

class admin_auth {
public:
  enum class outcome {
    accepted,
    /// No Authorization header, or not of the Bearer scheme.
    missing,
    /// A bearer key that matches none of the configured keys.
    rejected,
  };

  /// Parses the key file; throws persistence::storage_error with the path and
  /// line of any problem.
  static admin_auth load(const std::string& path);

  /// Creates DATA_DIR/admin.keys with one random key if it does not exist.
  /// Returns its path; CREATED tells whether this call wrote it.
  static std::string ensure_default_file(const std::string& data_dir,
                                         bool& created);

  /// Checks an Authorization header value; every configured key is compared,
  /// whatever the outcome, so timing does not depend on which one matched.
  outcome check(std::string_view authorization) const;

  size_t size() const {
    return hashes_.size();
  }

private:
  std::vector<sha256_digest> hashes_;
};

/// The credentials of an "Authorization: Bearer <token>" header, or an empty
/// view when the header is absent or uses another scheme.
std::string_view bearer_token(std::string_view authorization);

} // namespace keymesh::http
