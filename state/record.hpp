// A replicated record and the rule that decides between two copies of it.
// Every replica applies the same rule, in any order, and ends with the same
// record: that is what lets writes, handoffs and anti-entropy repairs all be
// plain merges.
#pragma once

#include <cstdint>
#include <string>

#include "state/hlc.hpp"

namespace keymesh::state {

struct record {
  std::string value;
  version ver;
  /// Unix ms after which the record is gone (0: never). A tombstone keeps the
  /// expiry of the record it deleted, or later, so it outlives every copy.
  int64_t expires_at = 0;
  bool tombstone = false;

  bool expired(int64_t now_ms) const {
    return expires_at != 0 && expires_at <= now_ms;
  }
};

/// Whether INCOMING replaces CURRENT: the higher version wins, and a
/// tombstone also beats a live record of equal version. Between equal
/// versions of the same kind nothing changes, so repeated merges are no-ops.
inline bool supersedes(const record& incoming, const record& current) {
  if (incoming.tombstone != current.tombstone)
    return incoming.tombstone ? current.ver <= incoming.ver
                              : current.ver < incoming.ver;
  return current.ver < incoming.ver;
}

/// A record with its address, as it travels between nodes.
struct keyed_record {
  std::string keyspace;
  std::string key;
  record rec;
};

// inspect() overloads for CAF's serializers (found by ADL), so records can
// travel in actor messages without this header including CAF.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, version& x) {
  return f(x.stamp, x.node);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, record& x) {
  return f(x.value, x.ver, x.expires_at, x.tombstone);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, keyed_record& x) {
  return f(x.keyspace, x.key, x.rec);
}

} // namespace keymesh::state
