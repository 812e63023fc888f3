#include "state/snapshot.hpp"

#include <cstring>
#include <stdexcept>

#include "state/bytes.hpp"

namespace keymesh::state {

// The byte layout is cereal's binary archive of earlier versions
// (little-endian integers, 64-bit length prefixes, bools as one byte), so
// warm-start files written before still load. It is read by hand: cereal
// sizes a string or vector from its length prefix before it reads a byte,
// so a corrupt file or a garbled sync answer could make a node allocate
// exabytes. Here every length is checked against the bytes that are left.

namespace {

constexpr char part_magic[] = "KMPART1";
constexpr char file_magic[] = "KMSNAP1";

class writer {
public:
  explicit writer(const char* magic) {
    out_.append(magic, 8);
  }

  template <class T>
  void number(T x) {
    append_le(out_, x);
  }

  void text(std::string_view s) {
    append_text<uint64_t>(out_, s);
  }

  void snapshot(const partition_snapshot& snap) {
    number<uint32_t>(snap.partition);
    number<uint64_t>(snap.records.size());
    for (auto& r : snap.records) {
      text(r.keyspace);
      text(r.key);
      text(r.rec.value);
      number<uint64_t>(r.rec.ver.stamp);
      number<uint32_t>(r.rec.ver.node);
      number<int64_t>(r.rec.expires_at);
      number<uint8_t>(r.rec.tombstone ? 1 : 0);
    }
  }

  std::string done() && {
    return std::move(out_);
  }

private:
  std::string out_;
};

struct corrupt : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class reader {
public:
  explicit reader(std::string_view bytes) : in_(bytes) {
  }

  template <class T>
  T number() {
    T x{};
    if (!in_.number(x))
      throw corrupt{"truncated in a number"};
    return x;
  }

  std::string text() {
    auto n = number<uint64_t>();
    std::string out;
    if (!in_.take(n, out))
      throw corrupt{"truncated in a string"};
    return out;
  }

  void snapshot(partition_snapshot& snap) {
    snap.partition = number<uint32_t>();
    auto n = number<uint64_t>();
    // A record takes at least 45 bytes: a count beyond that is a lie.
    if (n > in_.left() / 45)
      throw corrupt{"more records announced than bytes left"};
    snap.records.clear();
    snap.records.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      keyed_record r;
      r.keyspace = text();
      r.key = text();
      r.rec.value = text();
      r.rec.ver.stamp = number<uint64_t>();
      r.rec.ver.node = number<uint32_t>();
      r.rec.expires_at = number<int64_t>();
      auto tomb = number<uint8_t>();
      if (tomb > 1)
        throw corrupt{"a flag that is neither 0 nor 1"};
      r.rec.tombstone = tomb == 1;
      snap.records.push_back(std::move(r));
    }
  }

  bool empty() const {
    return in_.left() == 0;
  }

  size_t left() const {
    return in_.left();
  }

private:
  le_reader in_;
};

template <class F>
bool decode(std::string_view bytes, const char* magic, std::string& error,
            F&& read) {
  if (bytes.size() < 8 || bytes.substr(0, 8) != std::string_view{magic, 8}) {
    error = "not a keymesh snapshot (bad magic or format version)";
    return false;
  }
  try {
    reader in{bytes.substr(8)};
    read(in);
    if (!in.empty()) {
      error = "trailing bytes after the snapshot";
      return false;
    }
    return true;
  } catch (const corrupt& e) {
    error = std::string{"truncated or corrupt snapshot: "} + e.what();
    return false;
  }
}

} // namespace

std::string encode_snapshot(const partition_snapshot& snap) {
  writer out{part_magic};
  out.snapshot(snap);
  return std::move(out).done();
}

bool decode_snapshot(std::string_view bytes, partition_snapshot& out,
                     std::string& error) {
  return decode(bytes, part_magic, error, [&](reader& in) { in.snapshot(out); });
}

std::string encode_snapshot_file(const std::vector<partition_snapshot>& parts,
                                 uint32_t partitions) {
  writer out{file_magic};
  out.number<uint32_t>(partitions);
  out.number<uint64_t>(parts.size());
  for (auto& p : parts)
    out.snapshot(p);
  return std::move(out).done();
}

bool decode_snapshot_file(std::string_view bytes,
                          std::vector<partition_snapshot>& out,
                          uint32_t& partitions, std::string& error) {
  return decode(bytes, file_magic, error, [&](reader& in) {
    partitions = in.number<uint32_t>();
    auto n = in.number<uint64_t>();
    if (n > in.left() / 12) // a partition takes at least 12 bytes
      throw corrupt{"more partitions announced than bytes left"};
    out.clear();
    out.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      out.emplace_back();
      in.snapshot(out.back());
    }
  });
}

} // namespace keymesh::state
