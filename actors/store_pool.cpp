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
      // Healthy before loaded: a worker refuses at once while the database
      // is loaded but not healthy (gone), so no one may see that in
      // between.
      status->healthy = true;
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

// -- lending workers ---------------------------------------------------------------

struct store_pool::gate {
  std::shared_ptr<store_status> status;
  size_t max_queue = 0;
  std::vector<store_worker_actor> workers;
  std::atomic<size_t> next{0};
  std::atomic<bool> stopped{false};

  caf::expected<store_worker_actor> lend() {
    if (stopped.load(std::memory_order_acquire))
      return make_error(ec::unavailable, "the database pool is stopped");
    auto queued = status->queued.fetch_add(1, std::memory_order_relaxed);
    if (queued >= max_queue) {
      status->queued.fetch_sub(1, std::memory_order_relaxed);
      status->refused.fetch_add(1, std::memory_order_relaxed);
      return make_error(ec::overloaded, "the database queue is full");
    }
    return workers[next.fetch_add(1, std::memory_order_relaxed)
                   % workers.size()];
  }
};

// -- batched session writes ----------------------------------------------------

namespace {

struct writer_state {
  static inline const char* name = "session_writer";
  struct pending {
    persistence::session_row row;
    caf::typed_response_promise<atom::ok> rp;
  };
  std::shared_ptr<store_pool::gate> gate;
  size_t max_running = 1;
  std::vector<pending> waiting;
  size_t running = 0;
};

using writer_pointer = session_writer_actor::stateful_pointer<writer_state>;

/// Writes the next batch of what waits (at most max_batch rows); when it
/// is written, the next.
void launch(writer_pointer self) {
  auto& st = self->state;
  if (st.waiting.empty() || st.running >= st.max_running)
    return;
  auto n = std::min(st.waiting.size(), store_pool::max_batch);
  auto batch = std::make_shared<std::vector<writer_state::pending>>(
    std::make_move_iterator(st.waiting.begin()),
    std::make_move_iterator(st.waiting.begin() + n));
  st.waiting.erase(st.waiting.begin(), st.waiting.begin() + n);
  auto answer = [batch](const caf::error& err) {
    for (auto& p : *batch)
      if (err)
        p.rp.deliver(err);
      else
        p.rp.deliver(atom::ok_v);
  };
  auto worker = st.gate->lend();
  if (!worker) {
    // A full queue: what waits now would meet it too.
    answer(worker.error());
    for (auto& p : st.waiting)
      p.rp.deliver(worker.error());
    st.waiting.clear();
    return;
  }
  session_rows rows;
  rows.reserve(batch->size());
  for (auto& p : *batch)
    rows.push_back(p.row);
  ++st.running;
  self->request(*worker, caf::infinite, atom::put_v, std::move(rows))
    .then(
      [self, answer](atom::ok) {
        answer({});
        --self->state.running;
        launch(self);
      },
      [self, answer](caf::error& err) {
        answer(err);
        --self->state.running;
        launch(self);
      });
}

session_writer_actor::behavior_type
session_writer_behavior(writer_pointer self,
                        std::shared_ptr<store_pool::gate> gate,
                        size_t max_running) {
  self->state.gate = std::move(gate);
  self->state.max_running = max_running;
  return {
    [self](atom::put, persistence::session_row& row) {
      auto rp = self->make_response_promise<atom::ok>();
      self->state.waiting.push_back({std::move(row), rp});
      launch(self);
      return rp;
    },
  };
}

} // namespace

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
    gate_(std::make_shared<gate>()),
    shared_(opts.shared) {
  gate_->status = status_;
  gate_->max_queue = opts.max_queue;
  for (size_t i = 0; i < std::max<size_t>(opts.workers, 1); ++i)
    gate_->workers.push_back(
      spawn_store_worker(sys, opts.open, status_, opts.detached));
  // Half the workers at most write session batches: the others stay free
  // for revocations, reads and logins. (Fewer, larger batches also cost
  // the database less than many small ones.)
  // The writer on a thread of its own too: a finished batch starts the
  // next one at once, without waiting for a turn on CAF's scheduler behind
  // the HTTP front's work.
  auto max_running = std::max<size_t>(1, gate_->workers.size() / 2);
  writer_ = opts.detached ? sys.spawn<caf::detached>(session_writer_behavior,
                                                     gate_, max_running)
                          : sys.spawn(session_writer_behavior, gate_,
                                      max_running);
  monitor_ = opts.detached ? sys.spawn<caf::detached>(store_monitor, opts,
                                                      status_)
                           : sys.spawn(store_monitor, opts, status_);
}

store_pool::~store_pool() {
  stop();
}

caf::expected<store_worker_actor> store_pool::worker() {
  return gate_->lend();
}

void store_pool::stop() {
  if (gate_->stopped.exchange(true))
    return;
  // The workers stay in the list (worker() reads it from any thread): a
  // request sent after this gets an error from a finished actor.
  for (auto& w : gate_->workers)
    caf::anon_send(w, atom::leave_v);
  caf::anon_send_exit(writer_, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(monitor_, caf::exit_reason::user_shutdown);
}

} // namespace keymesh
