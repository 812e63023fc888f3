// The replicated state of one node: its hybrid logical clock, one shard per
// partition, the router, and the warm-start snapshot file. The node starts
// one and hands its keyspace_client to the HTTP front; an embedding
// application can do the same.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/admission.hpp"
#include "actors/router.hpp"
#include "actors/shard.hpp"
#include "common/clock.hpp"
#include "config/settings.hpp"
#include "state/hlc.hpp"

namespace keymesh {

class state_service {
public:
  /// Spawns the shards and the router. Loads DATA_DIR/state.snapshot when it
  /// exists (a bad file is logged and moved aside, never fatal).
  /// ADMITTED: the cluster members whose shards may talk to these (null:
  /// none, a single node).
  static std::unique_ptr<state_service>
  start(caf::actor_system& sys, const config::settings& cfg,
        const std::string& instance_id, wall_clock clock,
        std::shared_ptr<const admission> admitted = nullptr,
        std::shared_ptr<const std::atomic<bool>> joined = nullptr,
        std::function<void(const std::string&, const std::string&)>
          on_session_expired = nullptr);

  ~state_service();

  /// Writes every partition to the snapshot file (when WRITE_SNAPSHOT), then
  /// stops the actors. Idempotent.
  void stop(bool write_snapshot);

  const keyspace_client& client() const {
    return client_;
  }

  const router_actor& router() const {
    return router_;
  }


  const std::shared_ptr<state_metrics>& metrics() const {
    return metrics_;
  }

  /// True while every partition this node owns is served.
  const std::shared_ptr<std::atomic<bool>>& synced() const {
    return synced_;
  }

  const std::shared_ptr<state::hlc>& clock() const {
    return clock_;
  }

  /// Records loaded from the snapshot file at start.
  size_t warm_records() const {
    return warm_records_;
  }

  /// The peers known from earlier runs (node.data_dir/cluster-members),
  /// as read at start: the members the majorities count before they link.
  const std::set<std::string>& known_at_start() const {
    return known_at_start_;
  }

  static std::string snapshot_path(const std::string& data_dir);

private:
  state_service() = default;

  caf::actor_system* sys_ = nullptr;
  std::string snapshot_file_;
  uint32_t partitions_ = 0;
  std::shared_ptr<state::hlc> clock_;
  std::shared_ptr<state_metrics> metrics_;
  std::shared_ptr<std::atomic<bool>> synced_;
  keyspace_client client_;
  router_actor router_;
  size_t warm_records_ = 0;
  std::set<std::string> known_at_start_;
  bool stopped_ = false;
};

/// Parses state.replication_factor ("all" → 0).
size_t replication_factor(const config::settings& cfg);

write_consistency parse_write_consistency(const std::string& text);

} // namespace keymesh
