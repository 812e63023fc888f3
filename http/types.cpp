#include "http/types.hpp"

#include <nlohmann/json.hpp>

namespace keymesh::http {

response json_response(bhttp::status status, std::string body) {
  response res{status, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set(bhttp::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

response error_response(bhttp::status status, std::string_view code,
                        std::string_view description) {
  nlohmann::json body{{"error", code}, {"error_description", description}};
  return json_response(status,
                       body.dump(-1, ' ', false,
                                 nlohmann::json::error_handler_t::replace));
}

std::string_view error_code_for(bhttp::status status) {
  switch (status) {
    case bhttp::status::bad_request:
      return "invalid_request";
    case bhttp::status::unauthorized:
      return "unauthorized";
    case bhttp::status::forbidden:
      return "forbidden";
    case bhttp::status::not_found:
      return "not_found";
    case bhttp::status::method_not_allowed:
      return "method_not_allowed";
    case bhttp::status::payload_too_large:
      return "payload_too_large";
    case bhttp::status::unsupported_media_type:
      return "unsupported_media_type";
    case bhttp::status::request_header_fields_too_large:
      return "request_header_fields_too_large";
    case bhttp::status::service_unavailable:
      return "unavailable";
    case bhttp::status::gateway_timeout:
      return "timeout";
    default:
      return "server_error";
  }
}

response error_response(bhttp::status status, std::string_view description) {
  return error_response(status, error_code_for(status), description);
}

} // namespace keymesh::http
