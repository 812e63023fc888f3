// The objects an OpenID Provider keeps for a short time (its models:
// authorization codes, interactions, grants, device codes ...): how one is
// stored in the `objects` keyspace (a tagged binary form), its secondary index
// entries in the `object_index` keyspace, and the checks on what clients
// send. An object is live, then maybe consumed (once, cluster-wide), then
// destroyed (a tombstone): its state only moves forward.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace keymesh::state {

/// Keys "<kind>:<id>": partitioned by the whole key, so objects spread.
inline constexpr const char* objects_keyspace = "objects";
/// Keys "<kind>:<field>:<value>\x1f<id>": partitioned by kind, field and
/// value, so one partition lists every object of a grant (or uid, ...).
inline constexpr const char* object_index_keyspace = "object_index";

/// The longest kind and index field name (letters, digits, '_', '-', '.').
inline constexpr size_t max_object_kind_bytes = 64;
/// The longest id, index value and consume key (printable, no control
/// characters).
inline constexpr size_t max_object_id_bytes = 512;
/// Index fields on one object at most.
inline constexpr size_t max_object_indexes = 8;

struct object {
  std::string kind;
  std::string id;
  /// The caller's payload, opaque (an OP's model as JSON text).
  std::string value;
  /// Secondary keys by field ("uid", "grant_id", "user_code", "sub" ...).
  std::map<std::string, std::string> indexes;
  /// Unix ms.
  int64_t created_at = 0;
  int64_t expires_at = 0;
  /// Unix ms when it was consumed; 0 while live.
  int64_t consumed_at = 0;
  /// The idempotency key of the consume that won (may be empty).
  std::string consume_key;

  bool consumed() const {
    return consumed_at != 0;
  }
};

/// A kind or an index field: 1 to 64 of [A-Za-z0-9_.-].
bool valid_object_kind(std::string_view text);

/// An id, an index value or a consume key: 1 to 512 bytes of UTF-8, none a
/// control character (a consume key may also be empty).
bool valid_object_id(std::string_view text);

std::string object_key(std::string_view kind, std::string_view id);

std::string object_index_key(std::string_view kind, std::string_view field,
                             std::string_view value, std::string_view id);

/// What every index key of KIND/FIELD/VALUE starts with.
std::string object_index_prefix(std::string_view kind, std::string_view field,
                                 std::string_view value);

/// The id of an index key.
std::string_view id_of_object_index_key(std::string_view key);

/// The stored form (tagged binary, see object.cpp; kind, id and expires_at
/// are the record's key and expiry, not part of it).
std::string encode_object(const object& o);

/// The stored form read back (also the compact JSON of earlier versions,
/// which snapshots written by them hold); KIND and ID and EXPIRES_AT filled
/// in by the caller.
std::optional<object> decode_object(std::string_view stored);

} // namespace keymesh::state
