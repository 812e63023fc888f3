#include "state/par.hpp"

#include <nlohmann/json.hpp>

#include "common/base64url.hpp"
#include "common/digest.hpp"
#include "common/random.hpp"

namespace keymesh::state {

using nlohmann::json;

namespace {

/// base64url of 32 bytes, unpadded.
constexpr size_t random_part_chars = 43;

bool base64url_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

} // namespace

std::string new_request_uri() {
  return std::string{request_uri_prefix} + base64url_encode(random_bytes(32));
}

std::optional<std::string> par_id(std::string_view request_uri) {
  if (request_uri.size() != request_uri_prefix.size() + random_part_chars ||
      request_uri.substr(0, request_uri_prefix.size()) != request_uri_prefix)
    return std::nullopt;
  for (auto c : request_uri.substr(request_uri_prefix.size()))
    if (!base64url_char(c))
      return std::nullopt;
  auto digest = sha256(request_uri);
  return base64url_encode(
      {reinterpret_cast<const char*>(digest.data()), digest.size()});
}

std::string encode_par(const par_record& r) {
  return json{{"client_id", r.client_id},
              {"params", r.params},
              {"expires_at", r.expires_at}}
      .dump();
}

std::optional<par_record> decode_par(std::string_view stored) {
  auto j = json::parse(stored, nullptr, false);
  if (!j.is_object())
    return std::nullopt;
  auto client = j.find("client_id");
  auto params = j.find("params");
  auto expires = j.find("expires_at");
  if (client == j.end() || !client->is_string() || params == j.end() ||
      !params->is_string() || expires == j.end() ||
      !expires->is_number_integer())
    return std::nullopt;
  return par_record{client->get<std::string>(), params->get<std::string>(),
                    expires->get<int64_t>()};
}

} // namespace keymesh::state
