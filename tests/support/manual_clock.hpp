// A wall clock the test moves by hand, for actors that take a wall_clock.
#pragma once

#include <chrono>
#include <memory>

#include "common/clock.hpp"

namespace keymesh::test {

struct manual_clock {
  std::shared_ptr<time_point> now
    = std::make_shared<time_point>(from_unix_ms(1'700'000'000'000));

  wall_clock fn() const {
    return [p = now] { return *p; };
  }

  void advance(std::chrono::milliseconds d) {
    *now += d;
  }

  int64_t ms() const {
    return to_unix_ms(*now);
  }
};

} // namespace keymesh::test
