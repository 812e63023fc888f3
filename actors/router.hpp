// The router actor: turns the live member view into partition owners
// (rendezvous hashing, state.replication_factor of them) and tells every
// local shard when the owners of its partition change. It also knows when
// this node serves every partition it owns (handoffs done), which
// /healthz/ready reports. Clients do not go through the router: they send
// to the local shard of a key's partition (keyspace_client), which serves or
// forwards.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"

namespace keymesh {

struct router_options {
  std::string instance_id;
  uint32_t partitions = 64;
  /// 0: every member owns every partition.
  size_t replicas = 2;
  /// This node's shards, index = partition.
  std::vector<shard_actor> shards;
  /// Set while every partition this node owns is served (may be null).
  std::shared_ptr<std::atomic<bool>> synced;
  /// The peers this node knew before it started (its data directory's
  /// record): counted as known from the start, so that a node restarted
  /// where none of them answers does not take itself for the cluster.
  std::set<std::string> known;
  /// Called with every peer known whenever a new one joins (may be empty):
  /// the caller keeps the record.
  std::function<void(const std::set<std::string>&)> on_known;
};

class router_state {
public:
  static inline const char* name = "router";

  void configure(router_options opts);

  const router_options& options() const {
    return opts_;
  }

  /// The sorted live member ids, this node included.
  std::vector<std::string> members() const;

  /// The ownership message for PARTITION in the current view.
  ownership make_ownership(uint32_t partition) const;

  /// Whether every owned partition reported for the current epoch.
  bool all_synced() const;

  std::map<std::string, peer_actors> peers;
  /// Every peer that joined in this node's life, or in an earlier one
  /// (router_options::known), down ones too: the members decisions count a
  /// majority of.
  std::set<std::string> known;
  uint64_t epoch = 0;
  /// Per partition: the epoch its shard last reported as served, and
  /// whether this node owns it in the current epoch (every shard is told
  /// every epoch).
  std::vector<uint64_t> reported;
  std::vector<bool> owned;

private:
  router_options opts_;
};

using router_pointer = router_actor::stateful_pointer<router_state>;

router_actor::behavior_type router(router_pointer self, router_options opts);

router_actor spawn_router(caf::actor_system& sys, router_options opts);

/// How the HTTP front and embedding code reach a key: the local shard of its
/// partition (which serves or forwards). Immutable after start, so any
/// thread may use it.
struct keyspace_client {
  uint32_t partitions = 0;
  std::vector<shard_actor> shards;

  /// The local shard of KEY's partition (see state::partition_key).
  const shard_actor& shard_for(std::string_view key) const;
};

} // namespace keymesh
