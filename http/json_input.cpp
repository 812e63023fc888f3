#include "http/json_input.hpp"

#include <algorithm>

#include "http/api.hpp"
#include "jose/jws.hpp"

namespace keymesh::http {

using nlohmann::json;

namespace {

constexpr size_t max_audiences = 16;
constexpr size_t max_extra_claims_bytes = 8 * 1024;
constexpr int64_t max_ttl_request = 10LL * 365 * 24 * 3600;

constexpr const char* reserved_claims[]
  = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"};

} // namespace

response bad_request(std::string_view why) {
  return error_response(bhttp::status::bad_request, why);
}

/// Parses a JSON object body, or explains why not.
std::optional<json> parse_object(const request& req, response& error) {
  if (!is_json_content_type(req)) {
    error = error_response(bhttp::status::unsupported_media_type,
                           "the body must be application/json");
    return std::nullopt;
  }
  // The JOSE parser: nesting at most 32 deep and no duplicate members, so a
  // hostile body can neither exhaust the stack nor say two things at once.
  auto body = jose::parse_json_object(req.body());
  if (!body) {
    auto first = req.body().find_first_not_of(" \t\r\n");
    bool object = first != std::string::npos && req.body()[first] == '{';
    error = bad_request(object ? "the body is not valid JSON (or nests deeper "
                                 "than 32 levels, or repeats a member)"
                               : "the body must be a JSON object");
    return std::nullopt;
  }
  return body;
}

/// Checks that OBJ only has members from ALLOWED.
bool only_members(const json& obj, std::initializer_list<const char*> allowed,
                  response& error) {
  for (auto& item : obj.items()) {
    const auto& name = item.key(); // (a lambda may not capture a binding)
    if (std::none_of(allowed.begin(), allowed.end(),
                     [&](const char* a) { return name == a; })) {
      std::string list;
      for (auto a : allowed)
        list += list.empty() ? a : std::string{", "} + a;
      error = bad_request("unknown member \"" + name.substr(0, 64)
                          + "\" (allowed: " + list + ")");
      return false;
    }
  }
  return true;
}

bool valid_short_string(const json& v) {
  return v.is_string() && !v.get_ref<const std::string&>().empty()
         && v.get_ref<const std::string&>().size() <= max_subject_bytes;
}

std::optional<std::string> string_member(const nlohmann::json& body,
                                         const char* name, size_t max) {
  auto v = body.find(name);
  if (v == body.end() || !v->is_string()
      || v->get_ref<const std::string&>().empty()
      || v->get_ref<const std::string&>().size() > max)
    return std::nullopt;
  return v->get<std::string>();
}

/// Builds the keystore's request from a POST /api/tokens body.
std::optional<token_request> parse_token_request(const json& body,
                                                 response& error) {
  if (!only_members(body, {"sub", "aud", "ttl", "claims"}, error))
    return std::nullopt;
  token_request tr;
  auto sub = body.find("sub");
  if (sub == body.end() || !valid_short_string(*sub)) {
    error = bad_request("\"sub\" is required: a string of 1 to 256 bytes");
    return std::nullopt;
  }
  tr.sub = sub->get<std::string>();
  if (auto aud = body.find("aud"); aud != body.end()) {
    auto bad_aud = [&] {
      error = bad_request("\"aud\" must be a string of 1 to 256 bytes or an "
                          "array of 1 to 16 such strings");
      return std::nullopt;
    };
    if (aud->is_string()) {
      if (!valid_short_string(*aud))
        return bad_aud();
      tr.aud.push_back(aud->get<std::string>());
    } else if (aud->is_array()) {
      if (aud->empty() || aud->size() > max_audiences)
        return bad_aud();
      for (auto& a : *aud) {
        if (!valid_short_string(a))
          return bad_aud();
        tr.aud.push_back(a.get<std::string>());
      }
    } else {
      return bad_aud();
    }
  }
  if (auto ttl = body.find("ttl"); ttl != body.end()) {
    if (!ttl->is_number_integer() || ttl->get<int64_t>() <= 0
        || ttl->get<int64_t>() > max_ttl_request) {
      error = bad_request("\"ttl\" must be a positive whole number of "
                          "seconds (it is capped by keys.max_token_ttl)");
      return std::nullopt;
    }
    tr.ttl_seconds = ttl->get<int64_t>();
  }
  if (auto claims = body.find("claims"); claims != body.end()) {
    if (!claims->is_object()) {
      error = bad_request("\"claims\" must be a JSON object");
      return std::nullopt;
    }
    for (auto name : reserved_claims)
      if (claims->contains(name)) {
        error = bad_request(std::string{"\"claims\" may not set the "
                                        "registered claim \""}
                            + name + "\"");
        return std::nullopt;
      }
    tr.extra_claims_json = claims->dump();
    if (tr.extra_claims_json.size() > max_extra_claims_bytes) {
      error = bad_request("\"claims\" is larger than 8 KiB");
      return std::nullopt;
    }
  }
  return tr;
}

} // namespace keymesh::http
