// Database calls from a bridge task: the work runs on a store worker's
// thread, and its outcome comes back as a bridge task on the same bridge
// actor, so the continuation may touch the task's state without locks.
#pragma once

#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/atoms.hpp"
#include "actors/store_pool.hpp"
#include "http/bridge.hpp"

namespace keymesh::http {

/// What a store call ended with: a value, or why not.
template <class T>
struct store_outcome {
  std::optional<T> value;
  std::string error;
  persistence::store_failure failure = persistence::store_failure::unavailable;
  bool ok() const {
    return value.has_value();
  }
};

/// Runs WORK(store&) -> T on a store worker, then THEN(store_outcome<T>) on
/// SELF, a bridge actor. A full queue is an outcome too (unavailable), so
/// THEN always runs exactly once.
template <class Work, class Then>
void store_call(caf::event_based_actor* self, store_pool& pool, Work work,
                Then then) {
  using value_type = std::invoke_result_t<Work&, persistence::store&>;
  using outcome = store_outcome<value_type>;
  auto back = caf::actor_cast<caf::actor>(self);
  auto deliver = [back, then](outcome out) {
    caf::anon_send(back, atom::run_v,
                   bridge_task{[then, out = std::move(out)](
                                 caf::event_based_actor*) mutable {
                     then(std::move(out));
                   }});
  };
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

} // namespace keymesh::http
