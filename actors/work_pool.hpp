// A pool of detached actors for CPU-heavy or blocking work that is not a
// database call (password hashing): each worker has its own thread, so the
// work never runs on CAF's cooperative scheduler or an HTTP I/O thread, and
// it never delays the store pool's database jobs (a revocation's log write
// does not wait behind logins). A bounded queue refuses work beyond
// max_queue at once.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"

#include "config/settings.hpp"

namespace keymesh {

struct work_job {
  std::function<void()> run;
};

} // namespace keymesh

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(keymesh::work_job)

namespace keymesh {

/// One worker of a work pool (local only: a job is a closure).
using pool_worker_actor = caf::typed_actor<
  // Runs the job on the worker's thread.
  caf::reacts_to<atom::run, work_job>,
  // Quits after the jobs queued before (an exit message would overtake
  // them).
  caf::reacts_to<atom::leave>>;

class work_pool {
public:
  /// DETACHED: each worker on a thread of its own. False only under CAF's
  /// deterministic test coordinator, which then runs the work in its own
  /// order.
  work_pool(caf::actor_system& sys, size_t workers, size_t max_queue,
            bool detached = true);
  ~work_pool();

  work_pool(const work_pool&) = delete;
  work_pool& operator=(const work_pool&) = delete;

  /// Thread-safe. False (the job is dropped) when max_queue jobs wait.
  bool submit(std::function<void()> job);

  /// Workers finish the jobs queued before, then quit. Idempotent.
  void stop();

  /// The password hash pool of the auth.* settings (auth.hash_workers, 0:
  /// one per CPU; auth.hash_queue).
  static std::unique_ptr<work_pool>
  for_password_hashes(caf::actor_system& sys, const config::settings& c);

private:
  std::shared_ptr<std::atomic<size_t>> queued_;
  size_t max_queue_;
  std::vector<pool_worker_actor> workers_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> stopped_{false};
};

} // namespace keymesh
