#include "actors/hash_pool.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <spdlog/spdlog.h>

#include <thread>

#include "actors/error.hpp"
#include "auth/password.hpp"
#include "common/base64url.hpp"
#include "common/random.hpp"

namespace keymesh {

namespace {

struct hash_worker_state {
  static inline const char* name = "hash_worker";
  std::shared_ptr<std::atomic<size_t>> queued;
  /// A hash no password matches, at DUMMY_COST: an unknown user's login is
  /// checked against it, so that it costs the same as a known one's.
  std::string dummy;
  auth::scrypt_cost dummy_cost;

  const std::string& dummy_hash(const auth::scrypt_cost& cost) {
    if (dummy.empty() || dummy_cost.log2_n != cost.log2_n
        || dummy_cost.r != cost.r || dummy_cost.p != cost.p) {
      dummy = auth::hash_password(base64url_encode(random_bytes(16)), cost);
      dummy_cost = cost;
    }
    return dummy;
  }

  /// Runs WORK() for one request the pool counted; an exception (OpenSSL
  /// failed) becomes ec::crypto_failure.
  template <class Work>
  auto run(Work work) -> caf::result<decltype(work())> {
    struct uncount {
      std::atomic<size_t>& n;
      ~uncount() {
        n.fetch_sub(1, std::memory_order_relaxed);
      }
    } guard{*queued};
    try {
      return work();
    } catch (const std::exception& e) {
      spdlog::error("hash pool: a password hash failed: {}", e.what());
      return make_error(ec::crypto_failure,
                        "the password could not be hashed");
    }
  }
};

hash_worker_actor::behavior_type
hash_worker(hash_worker_actor::stateful_pointer<hash_worker_state> self,
            std::shared_ptr<std::atomic<size_t>> queued) {
  auto& st = self->state;
  st.queued = std::move(queued);
  return {
    [&st](atom::hash, password_text& password,
          auth::scrypt_cost cost) -> caf::result<std::string> {
      return st.run(
        [&] { return auth::hash_password(password.value, cost); });
    },
    [&st](atom::check, password_text& password, std::string& hash,
          auth::scrypt_cost cost) -> caf::result<bool> {
      return st.run([&] {
        if (!hash.empty())
          return auth::verify_password(password.value, hash);
        // The same work for an unknown user: a check against a dummy.
        auth::verify_password(password.value, st.dummy_hash(cost));
        return false;
      });
    },
    // After the requests queued before it (an exit message would overtake
    // them).
    [self](atom::leave) { self->quit(); },
  };
}

} // namespace

hash_pool::hash_pool(caf::actor_system& sys, size_t workers, size_t max_queue,
                     bool detached)
  : queued_(std::make_shared<std::atomic<size_t>>(0)), max_queue_(max_queue) {
  for (size_t i = 0; i < std::max<size_t>(workers, 1); ++i)
    workers_.push_back(detached
                         ? sys.spawn<caf::detached>(hash_worker, queued_)
                         : sys.spawn(hash_worker, queued_));
}

hash_pool::~hash_pool() {
  stop();
}

caf::expected<hash_worker_actor> hash_pool::worker() {
  if (stopped_.load(std::memory_order_acquire))
    return make_error(ec::unavailable, "the hash pool is stopped");
  if (queued_->fetch_add(1, std::memory_order_relaxed) >= max_queue_) {
    queued_->fetch_sub(1, std::memory_order_relaxed);
    return make_error(ec::overloaded, "too many password hashes waiting");
  }
  return workers_[next_.fetch_add(1, std::memory_order_relaxed)
                  % workers_.size()];
}

std::unique_ptr<hash_pool>
hash_pool::for_password_hashes(caf::actor_system& sys,
                               const config::settings& c) {
  auto workers = c.auth.hash_workers > 0
                   ? c.auth.hash_workers
                   : std::max(1u, std::thread::hardware_concurrency());
  return std::make_unique<hash_pool>(sys, workers,
                                     std::max<size_t>(c.auth.hash_queue, 1));
}

void hash_pool::stop() {
  if (stopped_.exchange(true))
    return;
  for (auto& w : workers_)
    caf::anon_send(w, atom::leave_v);
}

} // namespace keymesh
