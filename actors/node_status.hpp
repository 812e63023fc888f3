// The node's status board: what /healthz/ready and /metrics report about
// the node as a whole. The composition root (node/) creates it and flips its
// flags as the node starts and stops; the actors that watch a part of the
// node write their part (membership: cluster_ready; router: state_synced;
// the secrets service: secrets_ready; the store pool: store; the cluster
// transport: transport); the HTTP front only reads it.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "actors/cluster_transport.hpp"
#include "actors/store_pool.hpp"
#include "common/clock.hpp"

namespace keymesh {

struct node_status {
  std::string instance_id;
  time_point started_at = std::chrono::system_clock::now();
  std::atomic<bool> http_listening{false};
  std::atomic<bool> stopping{false};
  /// Cleared when an actor the node needs has terminated unexpectedly.
  std::atomic<bool> actors_alive{true};
  /// False until a clustered node has tried every seed once.
  std::atomic<bool> cluster_ready{true};
  /// False until the secrets service holds every secret ring.
  std::atomic<bool> secrets_ready{true};
  /// Whether every partition this node owns is served (null: no state).
  std::shared_ptr<std::atomic<bool>> state_synced;
  /// The database (null: none, as in tests without a store).
  std::shared_ptr<store_status> store;
  /// The cluster port's counters (null without clustering).
  std::shared_ptr<const transport_stats> transport;
};

} // namespace keymesh
