#include "state/object.hpp"

#include <nlohmann/json.hpp>

#include "common/text.hpp"
#include "state/placement.hpp"

namespace keymesh::state {

using nlohmann::json;

bool valid_object_kind(std::string_view text) {
  if (text.empty() || text.size() > max_object_kind_bytes)
    return false;
  for (unsigned char c : text)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
          || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
      return false;
  return true;
}

bool valid_object_id(std::string_view text) {
  // UTF-8 text: ids, index values and idempotency keys are answered in
  // JSON, which cannot carry other bytes.
  return !text.empty() && text.size() <= max_object_id_bytes
         && is_clean_text(text);
}

std::string object_key(std::string_view kind, std::string_view id) {
  std::string key{kind};
  key += ':';
  key += id;
  return key;
}

std::string object_index_prefix(std::string_view kind, std::string_view field,
                                 std::string_view value) {
  std::string key{kind};
  key += ':';
  key += field;
  key += ':';
  key += value;
  key += partition_key_separator;
  return key;
}

std::string object_index_key(std::string_view kind, std::string_view field,
                             std::string_view value, std::string_view id) {
  auto key = object_index_prefix(kind, field, value);
  key += id;
  return key;
}

std::string_view id_of_object_index_key(std::string_view key) {
  return key_after_partition(key);
}

std::string encode_object(const object& o) {
  json j{{"v", o.value}, {"c", o.created_at}};
  if (!o.indexes.empty())
    j["i"] = o.indexes;
  if (o.consumed()) {
    j["x"] = o.consumed_at;
    j["k"] = o.consume_key;
  }
  return j.dump();
}

std::optional<object> decode_object(std::string_view stored) {
  auto j = json::parse(stored, nullptr, false);
  if (!j.is_object())
    return std::nullopt;
  object o;
  auto v = j.find("v");
  auto c = j.find("c");
  if (v == j.end() || !v->is_string() || c == j.end()
      || !c->is_number_integer())
    return std::nullopt;
  o.value = v->get<std::string>();
  o.created_at = c->get<int64_t>();
  if (auto i = j.find("i"); i != j.end()) {
    if (!i->is_object())
      return std::nullopt;
    for (auto& [field, value] : i->items()) {
      if (!value.is_string())
        return std::nullopt;
      o.indexes[field] = value.get<std::string>();
    }
  }
  if (auto x = j.find("x"); x != j.end()) {
    auto k = j.find("k");
    if (!x->is_number_integer() || k == j.end() || !k->is_string())
      return std::nullopt;
    o.consumed_at = x->get<int64_t>();
    o.consume_key = k->get<std::string>();
  }
  return o;
}

} // namespace keymesh::state
