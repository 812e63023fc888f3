// Cryptographically random bytes (OpenSSL's generator), for ids, nonces,
// salts and keys everywhere.
#pragma once

#include <cstddef>
#include <string>

namespace keymesh {

/// N random bytes; throws std::runtime_error if the generator fails.
std::string random_bytes(size_t n);

} // namespace keymesh
