// The store pool: database calls never run on CAF's cooperative scheduler or
// an HTTP I/O thread. A fixed number of detached worker actors (each on its
// own thread, with its own connection) run jobs; a bounded queue refuses
// work beyond database.max_queue at once. A monitor actor, also detached,
// migrates the schema, loads the revocation log into the deny set, checks
// the database every database.health_interval and prunes the log. A slow or
// absent database shows in readiness and metrics; token verification and
// the JWKS never wait for it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"

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

/// One unit of work for a worker: WORK runs with the worker's connection
/// and delivers its own result; FAILED runs instead when no connection
/// could be made, or WORK threw. Both run on the worker's thread.
struct store_job {
  std::function<void(persistence::store&)> work;
  std::function<void(const persistence::store_error&)> failed;
};

} // namespace keymesh

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(keymesh::store_job)

namespace keymesh {

/// One worker of the store pool, with its own connection (local only: a
/// job is a closure).
using store_worker_actor = caf::typed_actor<
  // Runs the job with the worker's connection (opened, or opened again
  // after an outage, as needed).
  caf::reacts_to<atom::run, store_job>,
  // Quits after the jobs queued before.
  caf::reacts_to<atom::leave>>;

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

class store_pool {
public:
  store_pool(caf::actor_system& sys, store_pool_options opts,
             std::shared_ptr<store_status> status);
  ~store_pool();

  store_pool(const store_pool&) = delete;
  store_pool& operator=(const store_pool&) = delete;

  /// Thread-safe. False (and the job is dropped, neither callback runs)
  /// when database.max_queue jobs are waiting already.
  bool submit(store_job job);

  /// Writes a durable session. Rows submitted while earlier batches are
  /// being written wait and go together in the next batch (one statement,
  /// one commit, at most max_batch rows); at most half the workers write
  /// batches at once. DONE runs once, on a pool thread (or the caller's, when the
  /// queue is full), with an empty text when the row is written.
  void write_session(persistence::session_row row,
                     std::function<void(std::string)> done);

  /// Whether every node of the cluster shares this database.
  bool shared() const {
    return shared_;
  }

  const std::shared_ptr<store_status>& status() const {
    return status_;
  }

  /// Stops the workers and the monitor; queued jobs are dropped. Idempotent.
  void stop();

  /// Rows in one batch of write_session at most.
  static constexpr size_t max_batch = 128;

private:
  struct batcher;

  std::shared_ptr<store_status> status_;
  std::shared_ptr<batcher> batcher_;
  size_t max_queue_;
  bool shared_;
  std::vector<store_worker_actor> workers_;
  store_monitor_actor monitor_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> stopped_{false};
};

} // namespace keymesh
