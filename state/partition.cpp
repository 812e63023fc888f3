#include "state/partition.hpp"

#include <cstring>

#include "state/placement.hpp"

namespace keymesh::state {

uint32_t partition::bucket_of(std::string_view key) {
  return static_cast<uint32_t>(stable_hash(key, 0x6b6d) % digest_buckets);
}

uint64_t partition::entry_hash(std::string_view keyspace, std::string_view key,
                               const record& rec) {
  char tail[13];
  std::memcpy(tail, &rec.ver.stamp, 8);
  std::memcpy(tail + 8, &rec.ver.node, 4);
  tail[12] = rec.tombstone ? 1 : 0;
  auto h = stable_hash(keyspace);
  h = stable_hash(key, h);
  return stable_hash(std::string_view{tail, sizeof tail}, h);
}

void partition::account(std::string_view keyspace, table& tbl,
                        std::string_view key, const record& rec, int sign) {
  digests_[bucket_of(key)] ^= entry_hash(keyspace, key, rec);
  auto& s = tbl.stats;
  auto bytes = key.size() + rec.value.size();
  if (sign > 0) {
    ++s.records;
    s.tombstones += rec.tombstone ? 1 : 0;
    s.bytes += bytes;
  } else {
    --s.records;
    s.tombstones -= rec.tombstone ? 1 : 0;
    s.bytes -= bytes;
  }
}

partition::outcome partition::merge(std::string_view keyspace,
                                    std::string_view key, record rec,
                                    int64_t now_ms) {
  if (rec.expired(now_ms))
    return outcome::expired;
  auto t = tables_.find(keyspace);
  if (t == tables_.end())
    t = tables_.emplace(std::string{keyspace}, table{}).first;
  auto& tbl = t->second;
  auto i = tbl.records.find(key);
  if (i == tbl.records.end()) {
    account(keyspace, tbl, key, rec, +1);
    tbl.records.emplace(std::string{key}, std::move(rec));
    return outcome::inserted;
  }
  auto& current = i->second;
  if (!current.expired(now_ms) && !supersedes(rec, current))
    return outcome::stale;
  // A tombstone must outlive every copy of what it deleted.
  if (rec.tombstone && !current.tombstone && current.expires_at != 0
      && rec.expires_at != 0 && rec.expires_at < current.expires_at)
    rec.expires_at = current.expires_at;
  account(keyspace, tbl, key, current, -1);
  account(keyspace, tbl, key, rec, +1);
  current = std::move(rec);
  return outcome::replaced;
}

const record* partition::find(std::string_view keyspace, std::string_view key,
                              int64_t now_ms) const {
  auto t = tables_.find(keyspace);
  if (t == tables_.end())
    return nullptr;
  auto i = t->second.records.find(key);
  if (i == t->second.records.end() || i->second.expired(now_ms))
    return nullptr;
  return &i->second;
}

std::vector<keyed_record> partition::scan(std::string_view keyspace,
                                          std::string_view prefix,
                                          int64_t now_ms, size_t limit) const {
  std::vector<keyed_record> out;
  auto t = tables_.find(keyspace);
  if (t == tables_.end())
    return out;
  auto& records = t->second.records;
  for (auto i = records.lower_bound(prefix);
       i != records.end() && out.size() < limit; ++i) {
    if (i->first.compare(0, prefix.size(), prefix) != 0)
      break;
    if (!i->second.expired(now_ms))
      out.push_back(keyed_record{std::string{keyspace}, i->first, i->second});
  }
  return out;
}

size_t partition::purge(int64_t now_ms, size_t budget,
                        const expired_fn& on_expired) {
  size_t n = 0;
  // Removes *I when it expired; the iterator after it either way.
  auto sweep = [&](const std::string& keyspace, table& tbl,
                   decltype(tbl.records.begin()) i) {
    if (!i->second.expired(now_ms))
      return std::next(i);
    if (on_expired && !i->second.tombstone)
      on_expired(keyspace, i->first, i->second);
    account(keyspace, tbl, i->first, i->second, -1);
    ++n;
    return tbl.records.erase(i);
  };
  if (budget == SIZE_MAX) {
    for (auto& [keyspace, tbl] : tables_)
      for (auto i = tbl.records.begin(); i != tbl.records.end();)
        i = sweep(keyspace, tbl, i);
    return n;
  }
  if (budget == 0)
    return 0;
  // Round robin over the keyspaces and their keys, BUDGET records a call.
  auto t = tables_.lower_bound(purge_keyspace_);
  size_t seen = 0;
  size_t tables_left = tables_.size() + 1;
  while (seen < budget && tables_left-- > 0 && !tables_.empty()) {
    if (t == tables_.end()) {
      t = tables_.begin();
      purge_after_.clear();
    }
    auto& [keyspace, tbl] = *t;
    auto i = purge_after_.empty() ? tbl.records.begin()
                                  : tbl.records.upper_bound(purge_after_);
    for (; i != tbl.records.end() && seen < budget; ++seen)
      i = sweep(keyspace, tbl, i);
    if (i != tbl.records.end()) {
      // Out of budget in this keyspace: go on after the last key seen.
      purge_keyspace_ = keyspace;
      purge_after_ = i == tbl.records.begin() ? std::string{}
                                              : std::prev(i)->first;
      return n;
    }
    ++t;
    purge_keyspace_ = t == tables_.end() ? std::string{} : t->first;
    purge_after_.clear();
  }
  return n;
}

std::vector<uint32_t> partition::differing(const digest_vector& other) const {
  std::vector<uint32_t> out;
  for (uint32_t b = 0; b < digests_.size(); ++b)
    if (other.size() != digests_.size() || other[b] != digests_[b])
      out.push_back(b);
  return out;
}

std::vector<keyed_record>
partition::export_records(const std::vector<uint32_t>& buckets) const {
  std::vector<bool> wanted(digest_buckets, buckets.empty());
  for (auto b : buckets)
    if (b < digest_buckets)
      wanted[b] = true;
  std::vector<keyed_record> out;
  for (auto& [keyspace, tbl] : tables_)
    for (auto& [key, rec] : tbl.records)
      if (wanted[bucket_of(key)])
        out.push_back(keyed_record{keyspace, key, rec});
  return out;
}

void partition::for_each(
  const std::function<void(const std::string&, const std::string&,
                           const record&)>& f) const {
  for (auto& [keyspace, tbl] : tables_)
    for (auto& [key, rec] : tbl.records)
      f(keyspace, key, rec);
}

std::map<std::string, keyspace_stats> partition::stats() const {
  std::map<std::string, keyspace_stats> out;
  for (auto& [keyspace, tbl] : tables_)
    out[keyspace] = tbl.stats;
  return out;
}

size_t partition::size() const {
  size_t n = 0;
  for (auto& [keyspace, tbl] : tables_)
    n += tbl.records.size();
  return n;
}

void partition::clear() {
  tables_.clear();
  digests_.assign(digest_buckets, 0);
}

} // namespace keymesh::state
