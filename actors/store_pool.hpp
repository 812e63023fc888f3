// The store pool: database calls never run on CAF's cooperative scheduler or
// an HTTP I/O thread. A fixed number of detached worker actors (each on its
// own thread, with its own connection) answer named requests
// (store_worker_actor); the pool lends them in turn and refuses requests
// beyond database.max_queue at once. A session writer batches durable
// session rows. A monitor actor, also detached,
// migrates the schema, loads the revocation log into the deny set, checks
// the database every database.health_interval and prunes the log. A slow or
// absent database shows in readiness and metrics; token verification and
// the JWKS never wait for it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "actors/interfaces.hpp"

#include "common/clock.hpp"
#include "config/settings.hpp"
#include "persistence/store.hpp"
#include "state/deny_set.hpp"

namespace keymesh {

/// What the node, /healthz/ready and /metrics know about the database.
/// Written by the pool's threads, read by any thread.
class store_status {
public:
  std::string backend;
  /// The last check (or call) reached the database.
  std::atomic<bool> healthy{false};
  /// The schema is migrated and the revocation log is in the deny set.
  std::atomic<bool> loaded{false};
  std::atomic<uint64_t> jobs{0};
  std::atomic<uint64_t> failures{0};
  /// Jobs refused because the queue was full.
  std::atomic<uint64_t> refused{0};
  /// Jobs submitted and not yet finished.
  std::atomic<uint64_t> queued{0};
  std::atomic<uint64_t> busy_ns{0};
  std::atomic<uint64_t> revocations_loaded{0};
  /// Times the monitor found the database gone: a worker whose connection
  /// is older than the last outage opens a new one before its next job.
  std::atomic<uint64_t> outages{0};
  std::atomic<uint64_t> revocations_pruned{0};
  std::atomic<uint64_t> sessions_pruned{0};
  /// Durable session rows written, in how many batches (statements).
  std::atomic<uint64_t> session_rows{0};
  std::atomic<uint64_t> session_batches{0};
  /// Sessions read back from the database into memory.
  std::atomic<uint64_t> sessions_recovered{0};

  void set_error(std::string text);
  std::string error() const;

private:
  mutable std::mutex mutex_;
  std::string error_;
};

/// The store pool's monitor: migrates and loads the revocation log once,
/// then checks the database and prunes, on its own timer.
using store_monitor_actor = caf::typed_actor<caf::reacts_to<atom::tick>>;

struct store_pool_options {
  persistence::store_factory open;
  size_t workers = 4;
  size_t max_queue = 10000;
  std::chrono::milliseconds health_interval{1000};
  /// How often ended revocations are deleted from the log.
  std::chrono::milliseconds prune_interval{std::chrono::minutes{1}};
  wall_clock clock = system_wall_clock();
  /// The revocation log is loaded into it.
  std::shared_ptr<state::deny_set> deny;
  /// Every node of the cluster uses this database (MySQL).
  bool shared = false;
  /// Each worker and the monitor on a thread of its own. False only under
  /// CAF's deterministic test coordinator, which then runs the database
  /// calls in its own order, on its own thread.
  bool detached = true;

  /// The database.* settings (OPEN connects as they say; CLOCK and DENY are
  /// the caller's); an error names a setting the pool cannot use.
  static caf::expected<store_pool_options>
  from_settings(const config::settings& c);
};

/// A store worker on its own thread (DETACHED) with connections from OPEN;
/// it counts its requests in STATUS (actors/store_worker.cpp).
store_worker_actor spawn_store_worker(caf::actor_system& sys,
                                      persistence::store_factory open,
                                      std::shared_ptr<store_status> status,
                                      bool detached);

class store_pool {
public:
  store_pool(caf::actor_system& sys, store_pool_options opts,
             std::shared_ptr<store_status> status);
  ~store_pool();

  store_pool(const store_pool&) = delete;
  store_pool& operator=(const store_pool&) = delete;

  /// A worker for one request (in turn), counted against
  /// database.max_queue until the worker answers it: send exactly one
  /// request to it. Thread-safe. ec::overloaded when database.max_queue
  /// requests wait already, ec::unavailable once the pool is stopped.
  caf::expected<store_worker_actor> worker();

  /// Writes durable sessions in batches (at most max_batch rows each).
  const session_writer_actor& session_writer() const {
    return writer_;
  }

  /// Whether every node of the cluster shares this database.
  bool shared() const {
    return shared_;
  }

  const std::shared_ptr<store_status>& status() const {
    return status_;
  }

  /// Stops the workers, the writer and the monitor; requests queued at the
  /// workers are answered first, the writer's waiting rows fail.
  /// Idempotent.
  void stop();

  /// Rows in one batch of the session writer at most.
  static constexpr size_t max_batch = 128;

  /// Hands out workers (shared with the session writer, which outlives no
  /// pool but may finish a batch after stop()).
  struct gate;

private:
  std::shared_ptr<store_status> status_;
  std::shared_ptr<gate> gate_;
  bool shared_;
  session_writer_actor writer_;
  store_monitor_actor monitor_;
};

} // namespace keymesh
