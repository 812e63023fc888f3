#include "jose/jws.hpp"

#include "common/base64url.hpp"

#include <vector>

namespace keymesh::jose {

namespace {

constexpr int max_json_depth = 32;

/// Thrown from the parser callback to abort a parse.
struct reject_json {};

} // namespace

std::string sign_compact(const key& k, std::string_view kid,
                         const nlohmann::json& claims, std::string_view typ) {
  if (!claims.is_object())
    throw jose_error("JWT claims must be a JSON object");
  nlohmann::json header{
      {"alg", to_string(k.alg())},
      {"kid", kid},
      {"typ", typ},
  };
  std::string token;
  try {
    token = base64url_encode(header.dump());
    token += '.';
    token += base64url_encode(claims.dump());
  } catch (const nlohmann::json::exception&) {
    // dump() throws on strings that are not valid UTF-8.
    throw jose_error("JWT header or claims contain invalid UTF-8");
  }
  auto signature = base64url_encode(k.sign(token));
  token += '.';
  token += signature;
  return token;
}

std::optional<compact_parts> split_compact(std::string_view token) {
  auto first = token.find('.');
  if (first == std::string_view::npos)
    return std::nullopt;
  auto second = token.find('.', first + 1);
  if (second == std::string_view::npos ||
      token.find('.', second + 1) != std::string_view::npos)
    return std::nullopt;
  compact_parts parts;
  parts.header = token.substr(0, first);
  parts.payload = token.substr(first + 1, second - first - 1);
  parts.signature = token.substr(second + 1);
  parts.signing_input = token.substr(0, second);
  return parts;
}

std::optional<nlohmann::json> parse_json_object(std::string_view text) {
  using json = nlohmann::json;
  // Member names counted per open object: nlohmann keeps one entry per
  // name, so an object that ends with fewer entries than names repeated one.
  std::vector<size_t> names_seen;
  auto check = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
    case json::parse_event_t::object_start:
      if (depth >= max_json_depth)
        throw reject_json{};
      names_seen.push_back(0);
      break;
    case json::parse_event_t::array_start:
      if (depth >= max_json_depth)
        throw reject_json{};
      break;
    case json::parse_event_t::key:
      ++names_seen.back();
      break;
    case json::parse_event_t::object_end:
      if (parsed.size() != names_seen.back())
        throw reject_json{};
      names_seen.pop_back();
      break;
    default:
      break;
    }
    return true;
  };
  try {
    auto result = json::parse(text.begin(), text.end(), check);
    if (!result.is_object())
      return std::nullopt;
    return result;
  } catch (const reject_json&) {
    return std::nullopt;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

} // namespace keymesh::jose
