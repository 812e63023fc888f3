// The local deny set every node checks on token verification, without a
// network hop: revoked session ids, token ids, and subjects (tokens of a
// subject issued before its revocation). Entries leave once the tokens they
// cover would have expired anyway. Written by revocations (local or from
// the bus), read by the HTTP threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <shared_mutex>
#include <string>
#include <vector>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace keymesh::state {

enum class deny_kind : uint8_t { sid = 0, jti = 1, sub = 2 };

/// "sid", "jti" or "sub": the claim a revocation names.
const char* to_string(deny_kind kind);

std::optional<deny_kind> parse_deny_kind(std::string_view text);

class deny_set {
public:
  /// Denies VALUE until UNTIL_MS; for subjects, tokens issued (iat) at or
  /// before REVOKED_AT_MS. Returns false when an equal or wider entry
  /// existed (nothing changed). Every so many additions, entries that ended
  /// before REVOKED_AT_MS are dropped, so the set stays bounded.
  bool add(deny_kind kind, std::string_view value, int64_t revoked_at_ms,
           int64_t until_ms, bool logged = false);

  /// Records that the revocation of VALUE is in the durable revocation log
  /// (this node wrote it, or loaded it from there), so that asking for it
  /// again has nothing left to do.
  void mark_logged(deny_kind kind, std::string_view value);

  /// Whether VALUE is denied at NOW_MS by an entry this node knows to be
  /// logged.
  bool logged(deny_kind kind, std::string_view value, int64_t now_ms) const;

  /// Whether a token with these claims is revoked at NOW_MS. IAT in Unix
  /// seconds (0: unknown, which a subject revocation then covers).
  bool denied(std::string_view sid, std::string_view jti, std::string_view sub,
              int64_t iat_seconds, int64_t now_ms) const;

  /// When a subject was revoked (0: not revoked): sessions created at or
  /// before it are revoked too.
  int64_t subject_revoked_at(std::string_view sub, int64_t now_ms) const;

  bool session_denied(std::string_view sid, int64_t now_ms) const;

  /// Drops entries past their end; returns how many.
  size_t purge(int64_t now_ms);

  /// One revocation this set holds.
  struct held {
    deny_kind kind = deny_kind::sid;
    std::string value;
    int64_t revoked_at = 0;
    int64_t until = 0;
  };

  /// Every entry still in force at NOW_MS: what a node that joins (or comes
  /// back) takes from a peer, so that it enforces revocations whose events
  /// it can no longer get from their origin.
  std::vector<held> snapshot(int64_t now_ms) const;

  /// Cheap check for the hot path: nothing to look up.
  bool empty() const {
    return size_.load(std::memory_order_acquire) == 0;
  }

  size_t size() const {
    return size_.load(std::memory_order_acquire);
  }

private:
  struct entry {
    int64_t revoked_at = 0;
    int64_t until = 0;
    bool logged = false;
  };

  static std::string make_key(deny_kind kind, std::string_view value);

  const entry* find(deny_kind kind, std::string_view value,
                    int64_t now_ms) const;

  size_t purge_locked(int64_t now_ms);

  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, entry> entries_;
  size_t adds_ = 0;
  std::atomic<size_t> size_{0};
};

} // namespace keymesh::state
