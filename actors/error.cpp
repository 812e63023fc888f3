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
    case ec::invalid_credentials:
      return "invalid_credentials";
    case ec::locked:
      return "locked";
    case ec::disabled:
      return "disabled";
    case ec::invalid_grant:
      return "invalid_grant";
    case ec::overloaded:
      return "overloaded";
    case ec::rejected:
      return "rejected";
    case ec::already_consumed:
      return "already_consumed";
    case ec::version_mismatch:
      return "version_mismatch";
    case ec::expired:
      return "expired";
    case ec::client_mismatch:
      return "client_mismatch";
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

std::string context_text(const caf::error& err) {
  auto& ctx = err.context();
  return ctx.match_elements<std::string>() ? ctx.get_as<std::string>(0)
                                           : std::string{};
}

} // namespace keymesh
