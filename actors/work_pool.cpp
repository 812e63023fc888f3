#include "actors/work_pool.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/send.hpp>

#include <thread>

#include "actors/atoms.hpp"

namespace keymesh {

namespace {

pool_worker_actor::behavior_type
pool_worker(pool_worker_actor::pointer self,
            std::shared_ptr<std::atomic<size_t>> queued) {
  return {
    [=](atom::run, work_job& job) {
      job.run();
      queued->fetch_sub(1, std::memory_order_relaxed);
    },
    // After the jobs queued before it (an exit message would overtake them).
    [=](atom::leave) { self->quit(); },
  };
}

} // namespace

work_pool::work_pool(caf::actor_system& sys, size_t workers, size_t max_queue,
                     bool detached)
  : queued_(std::make_shared<std::atomic<size_t>>(0)), max_queue_(max_queue) {
  for (size_t i = 0; i < std::max<size_t>(workers, 1); ++i)
    workers_.push_back(detached
                         ? sys.spawn<caf::detached>(pool_worker, queued_)
                         : sys.spawn(pool_worker, queued_));
}

work_pool::~work_pool() {
  stop();
}

bool work_pool::submit(std::function<void()> job) {
  if (stopped_.load(std::memory_order_acquire))
    return false;
  if (queued_->fetch_add(1, std::memory_order_relaxed) >= max_queue_) {
    queued_->fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  auto& target
    = workers_[next_.fetch_add(1, std::memory_order_relaxed) % workers_.size()];
  caf::anon_send(target, atom::run_v, work_job{std::move(job)});
  return true;
}

std::unique_ptr<work_pool>
work_pool::for_password_hashes(caf::actor_system& sys,
                               const config::settings& c) {
  auto workers = c.auth.hash_workers > 0
                   ? c.auth.hash_workers
                   : std::max(1u, std::thread::hardware_concurrency());
  return std::make_unique<work_pool>(sys, workers,
                                     std::max<size_t>(c.auth.hash_queue, 1));
}

void work_pool::stop() {
  if (stopped_.exchange(true))
    return;
  for (auto& w : workers_)
    caf::anon_send(w, atom::leave_v);
}

} // namespace keymesh
