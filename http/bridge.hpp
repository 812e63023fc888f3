// The bridge between Beast's I/O threads and the actor world: an HTTP handler
// submits a task; a bridge actor runs it with itself as `self`, so the task
// can request(...).then(...) any actor without blocking an I/O thread. The
// task's continuation posts the reply back to the connection's strand.
#pragma once

#include <atomic>
#include <functional>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"

namespace keymesh::http {

struct bridge_task;

/// A bridge actor (local only: a task is a closure).
using bridge_actor = caf::typed_actor<
  // Runs a task submitted from an I/O thread.
  caf::reacts_to<atom::run, bridge_task>>;

/// What a task runs with: the bridge actor, to send requests from.
using bridge_self = bridge_actor::pointer;

/// Work for a bridge actor; runs on a CAF worker thread.
struct bridge_task {
  std::function<void(bridge_self)> run;
};

/// A fixed pool of bridge actors used round-robin.
class bridge_pool {
public:
  bridge_pool(caf::actor_system& sys, size_t size);
  ~bridge_pool();

  bridge_pool(const bridge_pool&) = delete;
  bridge_pool& operator=(const bridge_pool&) = delete;

  /// Thread-safe; TASK runs exactly once unless the pool was stopped.
  void submit(std::function<void(bridge_self)> task);

  /// Terminates every bridge actor. Idempotent.
  void stop();

  const std::vector<bridge_actor>& actors() const {
    return actors_;
  }

private:
  std::vector<bridge_actor> actors_;
  std::atomic<size_t> next_{0};
};

} // namespace keymesh::http

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(keymesh::http::bridge_task)
