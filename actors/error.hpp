// keymesh's one error enum, usable as a caf::error across actors and nodes.
#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>

namespace keymesh {

enum class ec : uint8_t {
  none = 0,
  /// A message carried a value the receiver refuses.
  invalid_argument,
  /// Signing or key generation failed (an OpenSSL error, no key, claims that
  /// cannot be encoded).
  crypto_failure,
  /// A cluster peer was refused: its handshake failed, or it is not an
  /// admitted member (the context says why).
  refused,
  /// A record (session, ...) does not exist or has expired.
  not_found,
  /// A conditional write lost: the record changed, or exists already.
  conflict,
  /// Not enough owners of a partition answered in time.
  unavailable,
  /// A session was revoked (by its sid or its subject).
  revoked,
  /// A login's username or password is wrong.
  invalid_credentials,
  /// Too many failed logins for a username: the context is the Unix ms at
  /// which it unlocks.
  locked,
  /// The account exists but is disabled.
  disabled,
  /// A refresh token is unknown, expired, reused or its session ended (the
  /// context says which).
  invalid_grant,
  /// A bounded queue (password hashing) is full: try again later.
  overloaded,
  /// The database refused a statement (a constraint, a bad value).
  rejected,
  /// A single-use object was consumed already (by another caller, or by
  /// this one with another idempotency key); the context says when.
  already_consumed,
  /// A compare-and-set lost: the object is not at the expected version.
  version_mismatch,
  /// A one-time request (a pushed authorization request) outlived its
  /// lifetime; the context says when it expired (Unix ms).
  expired,
  /// A request bound to one client was presented by another.
  client_mismatch,
};

const char* to_string(ec x);

constexpr caf::atom_value error_category = caf::atom("keymesh");

caf::error make_error(ec x, std::string context = {});

/// Whether ERR is keymesh's error X (whatever its context).
bool has_code(const caf::error& err, ec x);

/// The text an error carries (make_error's context), or empty.
std::string context_text(const caf::error& err);

} // namespace keymesh
