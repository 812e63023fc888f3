#include "actors/error.hpp"

#include <caf/make_message.hpp>

namespace keymesh {

const char* to_string(ec x) {
  switch (x) {
    case ec::none:
      return "none";
    case ec::invalid_argument:
      return "invalid_argument";
    case ec::crypto_failure:
      return "crypto_failure";
    case ec::refused:
      return "refused";
    case ec::not_found:
      return "not_found";
    case ec::conflict:
      return "conflict";
    case ec::unavailable:
      return "unavailable";
    case ec::revoked:
      return "revoked";
  }
  return "unknown";
}

caf::error make_error(ec x, std::string context) {
  if (context.empty())
    return caf::error{static_cast<uint8_t>(x), error_category};
  return caf::error{static_cast<uint8_t>(x), error_category,
                    caf::make_message(std::move(context))};
}

bool has_code(const caf::error& err, ec x) {
  return err.category() == error_category
         && err.code() == static_cast<uint8_t>(x);
}

} // namespace keymesh
