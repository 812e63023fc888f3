#include "state/object.hpp"

#include <nlohmann/json.hpp>

#include "common/text.hpp"
#include "state/bytes.hpp"
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

namespace {

// The stored form, version 1: the tag byte, then little-endian fixed-width
// fields and length-prefixed strings, the value last and unprefixed:
//   0x01 created_at:i64 consumed_at:i64 key_len:u32 key
//   index_count:u32 { field_len:u32 field value_len:u32 value }* value
// (state/bytes.hpp). Nothing is escaped: a put or consume copies its value
// once. (Before it, objects were stored as compact JSON, which still
// decodes; a JSON text never starts with 0x01.)
constexpr char object_format_v1 = '\x01';

std::optional<object> decode_object_v1(std::string_view stored) {
  le_reader r{stored.substr(1)};
  object o;
  uint32_t count = 0;
  if (!r.number(o.created_at) || !r.number(o.consumed_at)
      || !r.text<uint32_t>(o.consume_key) || !r.number(count))
    return std::nullopt;
  // Each index takes at least 8 bytes: a count past that is damage.
  if (count > r.left() / 8)
    return std::nullopt;
  for (uint32_t i = 0; i < count; ++i) {
    std::string field;
    std::string value;
    if (!r.text<uint32_t>(field) || !r.text<uint32_t>(value))
      return std::nullopt;
    o.indexes[std::move(field)] = std::move(value);
  }
  o.value.assign(r.rest());
  return o;
}

/// The stored form before version 1: compact JSON.
std::optional<object> decode_object_json(std::string_view stored) {
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

} // namespace

std::string encode_object(const object& o) {
  std::string out;
  size_t size = 1 + 8 + 8 + 4 + o.consume_key.size() + 4 + o.value.size();
  for (auto& [field, value] : o.indexes)
    size += 8 + field.size() + value.size();
  out.reserve(size);
  out += object_format_v1;
  append_le(out, o.created_at);
  append_le(out, o.consumed_at);
  append_text<uint32_t>(out, o.consumed() ? std::string_view{o.consume_key}
                                          : std::string_view{});
  append_le(out, static_cast<uint32_t>(o.indexes.size()));
  for (auto& [field, value] : o.indexes) {
    append_text<uint32_t>(out, field);
    append_text<uint32_t>(out, value);
  }
  out += o.value;
  return out;
}

std::optional<object> decode_object(std::string_view stored) {
  if (!stored.empty() && stored.front() == object_format_v1)
    return decode_object_v1(stored);
  return decode_object_json(stored);
}

} // namespace keymesh::state
