// Counting attempts before they are made (failed logins): a counter per key
// in a window, reserved by the partition's primary owner before the
// attempt's expensive check runs, so that no burst on any number of nodes
// gets more than `limit` checks per window. The record's value is compact
// JSON ({"n", "w", "l"}); a success clears it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keymesh::state {

struct attempt_counter {
  /// Attempts reserved in the current window.
  int64_t count = 0;
  /// Unix ms.
  int64_t window_start = 0;
  /// Unix ms; 0: not locked.
  int64_t locked_until = 0;
};

/// The rules of one kind of attempt.
struct attempt_policy {
  int64_t limit = 5;
  int64_t window_ms = 0;
  int64_t lockout_ms = 0;
};

std::string encode_attempts(const attempt_counter& c);

/// The counter of a stored value; a zero counter for anything unreadable.
attempt_counter decode_attempts(std::string_view stored);

/// What a reservation decided.
struct attempt_decision {
  bool granted = false;
  /// The counter to store (granted), or as it is (refused).
  attempt_counter next;
  /// When the stored counter may be dropped (Unix ms).
  int64_t expires_at = 0;
};

/// Reserves one attempt at NOW_MS under POLICY: refused while locked;
/// otherwise counted, and the attempt that reaches the limit locks the key
/// until NOW_MS + lockout (a success clears it). A window or a lock that
/// ended starts a fresh count.
attempt_decision reserve_attempt(attempt_counter current,
                                 const attempt_policy& policy, int64_t now_ms);

} // namespace keymesh::state
