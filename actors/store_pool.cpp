#include "actors/store_pool.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include "actors/atoms.hpp"
#include "actors/error.hpp"

namespace keymesh {

void store_status::set_error(std::string text) {
  std::lock_guard<std::mutex> guard{mutex_};
  error_ = std::move(text);
}

std::string store_status::error() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return error_;
}

namespace {

using persistence::store_error;
using persistence::store_failure;

// -- workers ---------------------------------------------------------------------

struct worker_state {
  static inline const char* name = "store_worker";
  std::unique_ptr<persistence::store> conn;
  /// status->outages when conn was opened.
  uint64_t opened_after = 0;
};

store_worker_actor::behavior_type
store_worker(store_worker_actor::stateful_pointer<worker_state> self,
             persistence::store_factory open,
             std::shared_ptr<store_status> status) {
  return {
    [=](atom::run, store_job& job) {
      auto started = std::chrono::steady_clock::now();
      auto finish = [&] {
        status->queued.fetch_sub(1, std::memory_order_relaxed);
        status->busy_ns.fetch_add(
          static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(
              std::chrono::steady_clock::now() - started)
              .count()),
          std::memory_order_relaxed);
      };
      status->jobs.fetch_add(1, std::memory_order_relaxed);
      auto fail = [&](const store_error& e) {
        status->failures.fetch_add(1, std::memory_order_relaxed);
        if (e.failure == store_failure::unavailable) {
          // The connection is suspect: a new one for the next job.
          self->state.conn.reset();
          status->healthy = false;
          status->set_error(e.what());
        }
        finish();
        if (job.failed)
          job.failed(e);
      };
      try {
        auto& st = self->state;
        auto outages = status->outages.load();
        if (st.conn && st.opened_after != outages)
          st.conn.reset(); // opened before the database went away
        if (!st.conn) {
          // While the monitor finds the database gone, fail at once rather
          // than wait out a connect timeout per job.
          if (status->loaded && !status->healthy)
            throw store_error{store_failure::unavailable,
                              "the database is unreachable: "
                                + status->error()};
          st.conn = open();
          st.opened_after = outages;
        }
        job.work(*st.conn);
        finish();
      } catch (const store_error& e) {
        fail(e);
      } catch (const std::exception& e) {
        fail(store_error{store_failure::rejected, e.what()});
      }
    },
    // After the jobs queued before it (an exit message would overtake them).
    [=](atom::leave) { self->quit(); },
  };
}

// -- the monitor -----------------------------------------------------------------

struct monitor_state {
  static inline const char* name = "store_monitor";
  std::unique_ptr<persistence::store> conn;
  bool was_healthy = true; // log the first failure too
  time_point next_prune{};
};

/// Migrates and loads the revocation log once; then pings and prunes.
void check(store_monitor_actor::stateful_pointer<monitor_state> self,
           const store_pool_options& opts,
           const std::shared_ptr<store_status>& status) {
  auto& st = self->state;
  try {
    if (!st.conn)
      st.conn = opts.open();
    if (!status->loaded) {
      st.conn->migrate();
      auto now = to_unix_ms(opts.clock());
      size_t n = 0;
      for (auto& e : st.conn->live_revocations(now)) {
        auto kind = state::parse_deny_kind(e.kind);
        if (!kind || !opts.deny)
          continue;
        opts.deny->add(*kind, e.value, e.revoked_at, e.until, true);
        ++n;
      }
      status->revocations_loaded = n;
      status->loaded = true;
      spdlog::info("store: {} schema version {}, {} live revocation{} loaded",
                   st.conn->backend(), persistence::latest_schema_version(), n,
                   n == 1 ? "" : "s");
    } else {
      st.conn->ping();
    }
    auto now = opts.clock();
    if (now >= st.next_prune) {
      st.next_prune = now + opts.prune_interval;
      auto pruned = st.conn->prune_revocations(to_unix_ms(now));
      status->revocations_pruned.fetch_add(pruned, std::memory_order_relaxed);
      // Ended durable sessions (and markers of revoked ones) go too.
      status->sessions_pruned.fetch_add(
        st.conn->prune_sessions(to_unix_ms(now)), std::memory_order_relaxed);
    }
    status->healthy = true;
    status->set_error({});
    if (!st.was_healthy)
      spdlog::info("store: the database is reachable again");
    st.was_healthy = true;
  } catch (const store_error& e) {
    st.conn.reset();
    status->healthy = false;
    status->set_error(e.what());
    if (st.was_healthy) {
      status->outages.fetch_add(1);
      spdlog::error("store: {}", e.what());
    }
    st.was_healthy = false;
  }
}

store_monitor_actor::behavior_type
store_monitor(store_monitor_actor::stateful_pointer<monitor_state> self,
              store_pool_options opts, std::shared_ptr<store_status> status) {
  self->send(self, atom::tick_v);
  return {
    [=](atom::tick) {
      check(self, opts, status);
      self->delayed_send(self, opts.health_interval, atom::tick_v);
    },
  };
}

} // namespace

// -- batched session writes ----------------------------------------------------

/// Jobs hold it (not the pool), so a job that runs after the pool is gone
/// finds it still there.
struct store_pool::batcher {
  struct pending {
    persistence::session_row row;
    std::function<void(std::string)> done;
  };

  store_pool* pool; // reset by stop(), under mutex
  std::shared_ptr<store_status> status;
  size_t max_running;
  std::mutex mutex;
  std::vector<pending> waiting;
  size_t running = 0;

  std::vector<pending> take() {
    std::lock_guard<std::mutex> guard{mutex};
    auto n = std::min(waiting.size(), store_pool::max_batch);
    std::vector<pending> out(std::make_move_iterator(waiting.begin()),
                             std::make_move_iterator(waiting.begin() + n));
    waiting.erase(waiting.begin(), waiting.begin() + n);
    return out;
  }

  /// Starts a batch job; with the queue full, fails what waits.
  static void launch(const std::shared_ptr<batcher>& self) {
    auto taken = std::make_shared<std::vector<pending>>();
    store_job job;
    job.work = [self, taken](persistence::store& db) {
      *taken = self->take();
      std::vector<persistence::session_row> rows;
      rows.reserve(taken->size());
      for (auto& p : *taken)
        rows.push_back(p.row);
      db.put_sessions(rows);
      self->status->session_rows.fetch_add(rows.size(),
                                           std::memory_order_relaxed);
      self->status->session_batches.fetch_add(1, std::memory_order_relaxed);
      finish(self, *taken, {});
    };
    job.failed = [self, taken](const persistence::store_error& e) {
      if (taken->empty())
        *taken = self->take();
      finish(self, *taken, e.what());
    };
    std::unique_lock<std::mutex> lock{self->mutex};
    if (self->pool != nullptr && self->pool->submit(std::move(job)))
      return;
    std::string why = self->pool ? "the database queue is full"
                                 : "the database pool is stopped";
    auto failed = std::move(self->waiting);
    self->waiting.clear();
    --self->running;
    lock.unlock();
    for (auto& p : failed)
      p.done(why);
  }

  /// Answers a batch; then runs the next one if rows wait.
  static void finish(const std::shared_ptr<batcher>& self,
                     std::vector<pending>& batch, const std::string& error) {
    for (auto& p : batch)
      p.done(error);
    batch.clear();
    {
      std::lock_guard<std::mutex> guard{self->mutex};
      if (self->waiting.empty()) {
        --self->running;
        return;
      }
    }
    launch(self);
  }
};

void store_pool::write_session(persistence::session_row row,
                               std::function<void(std::string)> done) {
  {
    std::lock_guard<std::mutex> guard{batcher_->mutex};
    batcher_->waiting.push_back({std::move(row), std::move(done)});
    if (batcher_->running >= batcher_->max_running)
      return; // a running batch takes it when it ends
    ++batcher_->running;
  }
  batcher::launch(batcher_);
}

caf::expected<store_pool_options>
store_pool_options::from_settings(const config::settings& c) {
  if (c.database.pool_size == 0 || c.database.max_queue == 0)
    return make_error(ec::invalid_argument,
                      "database.pool_size and database.max_queue must be at "
                      "least 1");
  if (c.database.health_interval.count() <= 0)
    return make_error(ec::invalid_argument,
                      "database.health_interval must be positive");
  store_pool_options opts;
  opts.open = [c] { return persistence::open_store(c); };
  opts.workers = c.database.pool_size;
  opts.max_queue = c.database.max_queue;
  opts.health_interval = c.database.health_interval;
  opts.shared = c.database.driver == "mysql";
  return opts;
}

store_pool::store_pool(caf::actor_system& sys, store_pool_options opts,
                       std::shared_ptr<store_status> status)
  : status_(std::move(status)),
    max_queue_(opts.max_queue),
    shared_(opts.shared) {
  for (size_t i = 0; i < std::max<size_t>(opts.workers, 1); ++i)
    workers_.push_back(
      opts.detached ? sys.spawn<caf::detached>(store_worker, opts.open, status_)
                    : sys.spawn(store_worker, opts.open, status_));
  batcher_ = std::make_shared<batcher>();
  batcher_->pool = this;
  batcher_->status = status_;
  // Half the workers at most write session batches: the others stay free
  // for revocations, reads and logins. (Fewer, larger batches also cost
  // the database less than many small ones.)
  batcher_->max_running = std::max<size_t>(1, workers_.size() / 2);
  monitor_ = opts.detached ? sys.spawn<caf::detached>(store_monitor, opts,
                                                      status_)
                           : sys.spawn(store_monitor, opts, status_);
}

store_pool::~store_pool() {
  stop();
}

bool store_pool::submit(store_job job) {
  if (stopped_.load(std::memory_order_acquire))
    return false;
  auto queued = status_->queued.fetch_add(1, std::memory_order_relaxed);
  if (queued >= max_queue_) {
    status_->queued.fetch_sub(1, std::memory_order_relaxed);
    status_->refused.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  auto& target
    = workers_[next_.fetch_add(1, std::memory_order_relaxed) % workers_.size()];
  caf::anon_send(target, atom::run_v, std::move(job));
  return true;
}

void store_pool::stop() {
  if (stopped_.exchange(true))
    return;
  {
    std::lock_guard<std::mutex> guard{batcher_->mutex};
    batcher_->pool = nullptr;
  }
  // The workers stay in the list (submit reads it from any thread): a job
  // sent after this is dropped by a finished actor.
  for (auto& w : workers_)
    caf::anon_send(w, atom::leave_v);
  caf::anon_send_exit(monitor_, caf::exit_reason::user_shutdown);
}

} // namespace keymesh
