// The wall clock every time-dependent part of keymesh reads, injectable so
// that tests can drive a 24-hour key rotation in microseconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace keymesh {

using time_point = std::chrono::system_clock::time_point;
using wall_clock = std::function<time_point()>;

inline wall_clock system_wall_clock() {
  return [] { return std::chrono::system_clock::now(); };
}

/// Monotonic time (timeouts, failure detection, back-off), injectable so
/// that tests can decide when a peer falls silent without sleeping.
using monotonic_time = std::chrono::steady_clock::time_point;
using monotonic_clock = std::function<monotonic_time()>;

inline monotonic_clock system_monotonic_clock() {
  return [] { return std::chrono::steady_clock::now(); };
}

inline int64_t to_unix_ms(time_point t) {
  using namespace std::chrono;
  return duration_cast<milliseconds>(t.time_since_epoch()).count();
}

inline int64_t to_unix_seconds(time_point t) {
  using namespace std::chrono;
  return duration_cast<seconds>(t.time_since_epoch()).count();
}

inline time_point from_unix_ms(int64_t ms) {
  return time_point{std::chrono::milliseconds{ms}};
}

} // namespace keymesh
