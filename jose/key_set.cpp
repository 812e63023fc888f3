#include "jose/key_set.hpp"

#include <nlohmann/json.hpp>

namespace keymesh::jose {

void key_set::add(std::string kid, key k) {
  keys_.insert_or_assign(std::move(kid), std::move(k));
}

bool key_set::remove(std::string_view kid) {
  auto it = keys_.find(kid);
  if (it == keys_.end())
    return false;
  keys_.erase(it);
  return true;
}

const key* key_set::find(std::string_view kid) const {
  auto it = keys_.find(kid);
  return it == keys_.end() ? nullptr : &it->second;
}

size_t key_set::size() const {
  return keys_.size();
}

bool key_set::empty() const {
  return keys_.empty();
}

nlohmann::json key_set::to_jwks() const {
  auto keys = nlohmann::json::array();
  for (const auto& [kid, k] : keys_) {
    auto jwk = k.public_jwk();
    jwk["kid"] = kid;
    jwk["use"] = "sig";
    jwk["alg"] = to_string(k.alg());
    keys.push_back(std::move(jwk));
  }
  return nlohmann::json{{"keys", std::move(keys)}};
}

key_set key_set::from_jwks(const nlohmann::json& jwks) {
  auto it = jwks.is_object() ? jwks.find("keys") : jwks.end();
  if (it == jwks.end() || !it->is_array())
    throw jose_error("JWKS must be an object with a \"keys\" array");
  key_set result;
  size_t index = 0;
  for (const auto& jwk : *it) {
    auto where = "JWKS entry " + std::to_string(index++) + ": ";
    auto kid = jwk.is_object() ? jwk.find("kid") : jwk.end();
    if (kid == jwk.end() || !kid->is_string())
      throw jose_error(where + "\"kid\" is missing or not a string");
    if (auto use = jwk.find("use"); use != jwk.end() && *use != "sig")
      throw jose_error(where + "\"use\" is not \"sig\"");
    if (result.find(kid->get_ref<const std::string&>()))
      throw jose_error(where + "duplicate \"kid\"");
    try {
      result.add(kid->get<std::string>(), key::from_public_jwk(jwk));
    } catch (const jose_error& err) {
      throw jose_error(where + err.what());
    }
  }
  return result;
}

} // namespace keymesh::jose
