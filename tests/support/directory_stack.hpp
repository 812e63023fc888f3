// The user directory of a unit test: a store pool over the SQLite database
// of CFG (node.data_dir), a hash pool, and a directory service that
// revokes through SESSIONS. Every actor runs on the caller's scheduler
// (not detached), so CAF's test coordinator runs the database calls and
// the hashes in its own order.
#pragma once

#include <memory>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include "services/directory.hpp"
#include "persistence/store.hpp"
#include "support/manual_clock.hpp"

namespace keymesh::test {

struct directory_stack {
  std::shared_ptr<store_pool> store;
  std::unique_ptr<hash_pool> hashing;
  directory_actor directory;

  directory_stack(caf::actor_system& sys, const config::settings& cfg,
                  const manual_clock& clock, sessions_actor sessions,
                  std::shared_ptr<state::deny_set> deny = nullptr,
                  size_t max_queue = 10000) {
    store_pool_options po;
    po.open = [cfg] { return persistence::open_store(cfg); };
    po.workers = 1;
    po.max_queue = max_queue;
    po.clock = clock.fn();
    po.deny = std::move(deny);
    po.detached = false;
    store = std::make_shared<store_pool>(sys, po,
                                         std::make_shared<store_status>());
    hashing = std::make_unique<hash_pool>(sys, 1, 100, false);
    auto opts = directory_options::from_settings(cfg);
    if (!opts)
      throw std::runtime_error(caf::to_string(opts.error()));
    directory_deps deps;
    deps.store = store;
    deps.hashing = hashing.get();
    deps.clock = clock.fn();
    std::vector<sessions_actor> with;
    if (sessions)
      with.push_back(std::move(sessions));
    directory = spawn_directory(sys, *opts, deps, with, 1).front();
  }

  /// Ends the directory and stops the pools (the caller's scheduler then
  /// runs what that leaves).
  void stop() {
    caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
    store->stop();
    hashing->stop();
  }
};

} // namespace keymesh::test
