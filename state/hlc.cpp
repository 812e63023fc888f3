#include "state/hlc.hpp"

#include <algorithm>

#include "state/placement.hpp"

namespace keymesh::state {

version hlc::now() {
  auto wall = make_stamp(to_unix_ms(clock_()));
  auto prev = last_.load(std::memory_order_relaxed);
  uint64_t next;
  do {
    next = std::max(wall, prev + 1);
  } while (!last_.compare_exchange_weak(prev, next, std::memory_order_acq_rel,
                                        std::memory_order_relaxed));
  return version{next, node_};
}

bool hlc::observe(uint64_t remote_stamp) {
  auto wall_ms = to_unix_ms(clock_());
  if (stamp_ms(remote_stamp) > wall_ms + max_drift_ms_)
    return false;
  auto prev = last_.load(std::memory_order_relaxed);
  while (prev < remote_stamp
         && !last_.compare_exchange_weak(prev, remote_stamp,
                                         std::memory_order_acq_rel,
                                         std::memory_order_relaxed)) {
  }
  return true;
}

uint32_t node_tag(std::string_view instance_id) {
  return static_cast<uint32_t>(stable_hash(instance_id) >> 32);
}

} // namespace keymesh::state
