// The hash pool: password hashes (scrypt, slow on purpose) on detached
// worker actors, each on its own thread, so they never run on CAF's
// cooperative scheduler or an HTTP I/O thread, and never delay the store
// pool's database requests (a revocation's log write does not wait behind
// logins). The pool lends its workers (hash_worker_actor) in turn and
// refuses requests beyond its queue at once.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"

#include "config/settings.hpp"

namespace keymesh {

class hash_pool {
public:
  /// DETACHED: each worker on a thread of its own. False only under CAF's
  /// deterministic test coordinator, which then runs the hashes in its own
  /// order.
  hash_pool(caf::actor_system& sys, size_t workers, size_t max_queue,
            bool detached = true);
  ~hash_pool();

  hash_pool(const hash_pool&) = delete;
  hash_pool& operator=(const hash_pool&) = delete;

  /// A worker for one request (in turn), counted against the queue until
  /// the worker answers it: send exactly one request to it. Thread-safe.
  /// ec::overloaded when max_queue requests wait already, ec::unavailable
  /// once the pool is stopped.
  caf::expected<hash_worker_actor> worker();

  /// Workers answer the requests queued before, then quit. Idempotent.
  void stop();

  /// The password hash pool of the auth.* settings (auth.hash_workers, 0:
  /// one per CPU; auth.hash_queue).
  static std::unique_ptr<hash_pool>
  for_password_hashes(caf::actor_system& sys, const config::settings& c);

private:
  std::shared_ptr<std::atomic<size_t>> queued_;
  size_t max_queue_;
  std::vector<hash_worker_actor> workers_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> stopped_{false};
};

} // namespace keymesh
