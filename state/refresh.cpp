#include "state/refresh.hpp"

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include "common/base64url.hpp"
#include "common/digest.hpp"
#include "common/json_number.hpp"
#include "state/session.hpp"
#include "common/random.hpp"

namespace keymesh::state {

using nlohmann::json;

namespace {

std::string family_mac(const std::string& key_b64, std::string_view id,
                       int64_t generation) {
  auto key = keymesh::base64url_decode(key_b64).value_or("");
  auto data = std::string{id} + "." + std::to_string(generation);
  auto mac = keymesh::hmac_sha256(key, data);
  return keymesh::base64url_encode(
      std::string_view{reinterpret_cast<const char*>(mac.data()), mac.size()});
}

} // namespace

std::string encode_family(const refresh_family& f) {
  return json{{"sid", f.sid},
              {"sub", f.sub},
              {"g", f.generation},
              {"k", f.key},
              {"x", f.expires_at}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<refresh_family> decode_family(std::string_view stored) {
  auto j = json::parse(stored, nullptr, false);
  if (!j.is_object())
    return std::nullopt;
  try {
    auto generation = exact_int64(j.at("g"), 0);
    auto expires_at = exact_int64(j.at("x"), 0, int64_t{1} << 50);
    if (!generation || !expires_at)
      return std::nullopt;
    return refresh_family{j.at("sid").get<std::string>(),
                          j.at("sub").get<std::string>(), *generation,
                          j.at("k").get<std::string>(), *expires_at};
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

refresh_family new_family(std::string sid, std::string sub,
                          int64_t expires_at) {
  refresh_family f;
  f.sid = std::move(sid);
  f.sub = std::move(sub);
  f.generation = 1;
  f.key = keymesh::base64url_encode(keymesh::random_bytes(32));
  f.expires_at = expires_at;
  return f;
}

std::string make_refresh_token(const std::string& id, const refresh_family& f) {
  return id + "." + std::to_string(f.generation) + "." +
         family_mac(f.key, id, f.generation);
}

std::optional<refresh_token> parse_refresh_token(std::string_view text) {
  if (text.size() > max_refresh_token_bytes)
    return std::nullopt;
  auto d1 = text.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : text.find('.', d1 + 1);
  if (d2 == std::string_view::npos)
    return std::nullopt;
  refresh_token t{std::string{text.substr(0, d1)}, 0,
                  std::string{text.substr(d2 + 1)}};
  auto gen = text.substr(d1 + 1, d2 - d1 - 1);
  if (!valid_session_id(t.id) || gen.empty() || gen.size() > 12 ||
      t.mac.empty())
    return std::nullopt;
  for (char c : gen) {
    if (c < '0' || c > '9')
      return std::nullopt;
    t.generation = t.generation * 10 + (c - '0');
  }
  return t;
}

bool mac_matches(const refresh_family& f, const refresh_token& t) {
  auto expected = family_mac(f.key, t.id, t.generation);
  return expected.size() == t.mac.size() &&
         CRYPTO_memcmp(expected.data(), t.mac.data(), expected.size()) == 0;
}

} // namespace keymesh::state
