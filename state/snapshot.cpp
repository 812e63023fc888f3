#include "state/snapshot.hpp"

#include <sstream>

#include <cereal/archives/binary.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

namespace keymesh::state {

template <class Archive>
void serialize(Archive& ar, version& v) {
  ar(v.stamp, v.node);
}

template <class Archive>
void serialize(Archive& ar, record& r) {
  ar(r.value, r.ver, r.expires_at, r.tombstone);
}

template <class Archive>
void serialize(Archive& ar, keyed_record& r) {
  ar(r.keyspace, r.key, r.rec);
}

template <class Archive>
void serialize(Archive& ar, partition_snapshot& s) {
  ar(s.partition, s.records);
}

namespace {

constexpr char part_magic[] = "KMPART1";
constexpr char file_magic[] = "KMSNAP1";

template <class... Ts>
std::string encode(const char* magic, const Ts&... body) {
  std::ostringstream out{std::ios::binary};
  out.write(magic, 8);
  {
    cereal::BinaryOutputArchive ar{out};
    ar(body...);
  }
  return std::move(out).str();
}

template <class F>
bool decode(std::string_view bytes, const char* magic, std::string& error,
            F&& read) {
  if (bytes.size() < 8 || bytes.substr(0, 8) != std::string_view{magic, 8}) {
    error = "not a keymesh snapshot (bad magic or format version)";
    return false;
  }
  try {
    std::istringstream in{std::string{bytes.substr(8)}, std::ios::binary};
    cereal::BinaryInputArchive ar{in};
    read(ar);
    if (in.peek() != std::char_traits<char>::eof()) {
      error = "trailing bytes after the snapshot";
      return false;
    }
    return true;
  } catch (const std::exception& e) {
    error = std::string{"truncated or corrupt snapshot: "} + e.what();
    return false;
  }
}

} // namespace

std::string encode_snapshot(const partition_snapshot& snap) {
  return encode(part_magic, snap);
}

bool decode_snapshot(std::string_view bytes, partition_snapshot& out,
                     std::string& error) {
  return decode(bytes, part_magic, error, [&](auto& ar) { ar(out); });
}

std::string encode_snapshot_file(const std::vector<partition_snapshot>& parts,
                                 uint32_t partitions) {
  return encode(file_magic, partitions, parts);
}

bool decode_snapshot_file(std::string_view bytes,
                          std::vector<partition_snapshot>& out,
                          uint32_t& partitions, std::string& error) {
  return decode(bytes, file_magic, error,
                [&](auto& ar) { ar(partitions, out); });
}

} // namespace keymesh::state
