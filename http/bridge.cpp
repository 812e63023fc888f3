#include "http/bridge.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/send.hpp>

#include <spdlog/spdlog.h>

#include "actors/atoms.hpp"

namespace keymesh::http {

namespace {

// The index argument is only there because CAF 0.17.6's spawn of a function
// without arguments dereferences a null tuple pointer (UBSan reports it).
bridge_actor::behavior_type bridge(bridge_self self, size_t /*index*/) {
  // An exception ends an actor in CAF (the node would report itself
  // failed): a task that throws is logged and its request answered by the
  // server's response timeout, and the bridge goes on.
  return {
    [=](atom::run, bridge_task& task) {
      try {
        task.run(self);
      } catch (const std::exception& e) {
        spdlog::error("http: a request task failed: {}", e.what());
      }
    },
  };
}

} // namespace

bridge_pool::bridge_pool(caf::actor_system& sys, size_t size) {
  for (size_t i = 0; i < std::max<size_t>(size, 1); ++i)
    actors_.push_back(sys.spawn(bridge, i));
}

bridge_pool::~bridge_pool() {
  stop();
}

void bridge_pool::submit(std::function<void(bridge_self)> task) {
  auto& target = actors_[next_.fetch_add(1, std::memory_order_relaxed)
                         % actors_.size()];
  caf::anon_send(target, atom::run_v, bridge_task{std::move(task)});
}

void bridge_pool::stop() {
  for (auto& a : actors_)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

} // namespace keymesh::http
