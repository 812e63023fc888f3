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
};

const char* to_string(ec x);

constexpr caf::atom_value error_category = caf::atom("keymesh");

caf::error make_error(ec x, std::string context = {});

/// Whether ERR is keymesh's error X (whatever its context).
bool has_code(const caf::error& err, ec x);

} // namespace keymesh
