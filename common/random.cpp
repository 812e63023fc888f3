#include "common/random.hpp"

#include <stdexcept>

#include <openssl/rand.h>

namespace keymesh {

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0
      && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                    static_cast<int>(n))
           != 1)
    throw std::runtime_error("the OpenSSL random generator failed");
  return out;
}

} // namespace keymesh
