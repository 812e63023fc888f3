// The records of one partition, in every keyspace, with the per-bucket
// digests anti-entropy compares. Plain data and methods, no actor: the shard
// actor owns one and the unit tests drive it directly.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "state/record.hpp"

namespace keymesh::state {

/// Digest buckets per partition: anti-entropy transfers only the buckets
/// whose digests differ.
inline constexpr uint32_t digest_buckets = 16;

using digest_vector = std::vector<uint64_t>;

struct keyspace_stats {
  size_t records = 0;
  size_t tombstones = 0;
  /// Keys and values, without container overhead.
  size_t bytes = 0;
};

class partition {
public:
  enum class outcome { inserted, replaced, stale, expired };

  /// Told of each live record (not a tombstone) a purge removes because it
  /// expired: its keyspace, key and record.
  using expired_fn = std::function<void(const std::string&,
                                        const std::string&, const record&)>;

  explicit partition(uint32_t id = 0) : id_(id), digests_(digest_buckets, 0) {
  }

  uint32_t id() const {
    return id_;
  }

  /// Applies REC under the merge rule. Records that expired at NOW_MS are
  /// refused, so a late copy cannot bring back what was purged.
  outcome merge(std::string_view keyspace, std::string_view key, record rec,
                int64_t now_ms);

  /// The record (possibly a tombstone); nullptr when absent or expired.
  const record* find(std::string_view keyspace, std::string_view key,
                     int64_t now_ms) const;

  /// Live (not expired) records of KEYSPACE whose key starts with PREFIX, at
  /// most LIMIT of them.
  std::vector<keyed_record> scan(std::string_view keyspace,
                                 std::string_view prefix, int64_t now_ms,
                                 size_t limit) const;

  /// Removes expired records and tombstones; returns how many. Looks at no
  /// more than BUDGET records per call, going on where the last call
  /// stopped, so that a timer can purge a large partition in slices
  /// (expired records are invisible meanwhile; they only take memory).
  size_t purge(int64_t now_ms, size_t budget = SIZE_MAX,
               const expired_fn& on_expired = nullptr);

  const digest_vector& digests() const {
    return digests_;
  }

  /// The buckets whose digest differs from OTHER's (all when the sizes
  /// differ).
  std::vector<uint32_t> differing(const digest_vector& other) const;

  /// Every record in BUCKETS (all buckets when empty).
  std::vector<keyed_record> export_records(
    const std::vector<uint32_t>& buckets = {}) const;

  /// Calls F for every record.
  void for_each(const std::function<void(const std::string& keyspace,
                                         const std::string& key,
                                         const record&)>& f) const;

  /// Maintained as records come and go: cheap enough for every scrape.
  std::map<std::string, keyspace_stats> stats() const;

  size_t size() const;

  void clear();

  /// The digest bucket of a key.
  static uint32_t bucket_of(std::string_view key);

private:
  struct table {
    std::map<std::string, record, std::less<>> records;
    keyspace_stats stats;
  };

  static uint64_t entry_hash(std::string_view keyspace, std::string_view key,
                             const record& rec);

  /// Adds (SIGN = +1) or removes (-1) a record's share of the digests and
  /// the statistics.
  void account(std::string_view keyspace, table& tbl, std::string_view key,
               const record& rec, int sign);

  uint32_t id_;
  std::map<std::string, table, std::less<>> tables_;
  /// Where a budgeted purge goes on: a keyspace and the key after which it
  /// starts.
  std::string purge_keyspace_;
  std::string purge_after_;
  digest_vector digests_;
};

} // namespace keymesh::state
