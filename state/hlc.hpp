// Hybrid logical clocks: the versions of replicated records. A stamp packs
// wall-clock milliseconds (upper 48 bits) and a logical counter (lower 16
// bits), so stamps compare as plain integers, stay close to real time, and
// still increase when the wall clock stalls or steps back. The node part of a
// version breaks ties between two nodes that wrote in the same instant.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>
#include <tuple>

#include "common/clock.hpp"

namespace keymesh::state {

struct version {
  uint64_t stamp = 0;
  /// Hash of the writing node's instance id.
  uint32_t node = 0;

  friend bool operator<(const version& a, const version& b) {
    return std::tie(a.stamp, a.node) < std::tie(b.stamp, b.node);
  }
  friend bool operator==(const version& a, const version& b) {
    return a.stamp == b.stamp && a.node == b.node;
  }
  friend bool operator!=(const version& a, const version& b) {
    return !(a == b);
  }
  friend bool operator<=(const version& a, const version& b) {
    return !(b < a);
  }
  friend bool operator>(const version& a, const version& b) {
    return b < a;
  }
};

inline constexpr int logical_bits = 16;

inline uint64_t make_stamp(int64_t unix_ms, uint32_t counter = 0) {
  return (static_cast<uint64_t>(unix_ms) << logical_bits) | counter;
}

/// The wall-clock part of a stamp, in Unix ms.
inline int64_t stamp_ms(uint64_t stamp) {
  return static_cast<int64_t>(stamp >> logical_bits);
}

/// One node's clock, shared by every actor of the node (thread-safe, lock
/// free). now() never returns the same stamp twice and never goes back;
/// observe() moves it past a stamp seen from another node, unless that stamp
/// is further ahead of the local wall clock than max_drift (a peer with a
/// broken clock must not drag the cluster into the future).
class hlc {
public:
  explicit hlc(uint32_t node, wall_clock clock = system_wall_clock(),
               int64_t max_drift_ms = 60'000)
    : node_(node), clock_(std::move(clock)), max_drift_ms_(max_drift_ms) {
  }

  version now();

  /// Returns false (and ignores the stamp) when it is too far ahead.
  bool observe(uint64_t remote_stamp);

  uint32_t node() const {
    return node_;
  }

  /// The last stamp handed out or observed.
  uint64_t last() const {
    return last_.load(std::memory_order_acquire);
  }

private:
  uint32_t node_;
  wall_clock clock_;
  int64_t max_drift_ms_;
  std::atomic<uint64_t> last_{0};
};

/// The node part of versions written by INSTANCE_ID.
uint32_t node_tag(std::string_view instance_id);

} // namespace keymesh::state
