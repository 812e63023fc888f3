// Database calls and other blocking work (password hashing) from an actor:
// the work runs on a pool worker's thread, and its outcome comes back to
// the same actor as a continuation, (atom::run, continuation), so the
// continuation may touch the actor's state without locks. Every actor that
// uses these handles that message (the sessions, auth and directory
// services).
#pragma once

#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/atoms.hpp"
#include "actors/continuation.hpp"
#include "actors/store_pool.hpp"
#include "actors/work_pool.hpp"

namespace keymesh {

/// What a store call ended with: a value, or why not.
template <class T>
struct store_outcome {
  std::optional<T> value;
  std::string error;
  /// Why, when there is no value (a full queue: unavailable).
  persistence::store_failure failure = persistence::store_failure::unavailable;
  bool ok() const {
    return value.has_value();
  }
};

/// A function that runs THEN(value) on SELF from any thread.
template <class T, class Self, class Then>
auto back_to(Self* self, Then then) {
  return [back = caf::actor_cast<caf::actor>(self), then](T value) {
    caf::anon_send(back, atom::run_v,
                   continuation{[then, value = std::move(value)]() mutable {
                     then(std::move(value));
                   }});
  };
}

/// Runs WORK() -> T on a work pool thread, then THEN(std::optional<T>) on
/// SELF; nullopt when the pool's queue was full or WORK threw.
template <class Self, class Work, class Then>
void work_call(Self* self, work_pool& pool, Work work, Then then) {
  using value_type = std::invoke_result_t<Work&>;
  auto deliver = back_to<std::optional<value_type>>(self, then);
  auto job = [work, deliver]() mutable {
    try {
      deliver(std::optional<value_type>{work()});
    } catch (const std::exception&) {
      deliver(std::nullopt);
    }
  };
  if (!pool.submit(std::move(job)))
    then(std::optional<value_type>{});
}

/// Runs WORK(store&) -> T on a store worker, then THEN(store_outcome<T>) on
/// SELF. A full queue is an outcome too (unavailable), so THEN always runs
/// exactly once.
template <class Self, class Work, class Then>
void store_call(Self* self, store_pool& pool, Work work, Then then) {
  using value_type = std::invoke_result_t<Work&, persistence::store&>;
  using outcome = store_outcome<value_type>;
  auto deliver = back_to<outcome>(self, then);
  store_job job;
  job.work = [work, deliver](persistence::store& db) mutable {
    outcome out;
    out.value.emplace(work(db));
    deliver(std::move(out));
  };
  job.failed = [deliver](const persistence::store_error& e) {
    outcome out;
    out.error = e.what();
    out.failure = e.failure;
    deliver(std::move(out));
  };
  if (!pool.submit(std::move(job))) {
    outcome out;
    out.error = "the database queue is full";
    then(std::move(out));
  }
}

} // namespace keymesh
