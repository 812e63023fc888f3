// The shard actor: one partition of every keyspace on this node. When this
// node owns the partition it serves reads locally, coordinates writes as the
// primary owner (conditions, versions, replication to the other owners,
// acknowledgement per write consistency) and keeps the replicas in line:
// on an ownership change it pulls what it may lack before serving
// (handoff), and periodically compares bucket digests with the other owners
// and repairs differences (anti-entropy). When it does not own the partition
// it forwards to an owner. What it sends each peer is bounded: a peer that
// cannot keep up is skipped and repaired by anti-entropy later.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/admission.hpp"
#include "actors/error.hpp"
#include "actors/interfaces.hpp"
#include "common/clock.hpp"
#include "state/hlc.hpp"
#include "state/partition.hpp"
#include "state/snapshot.hpp"

namespace keymesh {

enum class write_consistency { all, quorum, one };

/// Counters and per-partition statistics of every shard of a node, read by
/// /metrics on any thread.
class state_metrics {
public:
  explicit state_metrics(uint32_t partitions = 0) : per_partition_(partitions) {
  }

  void publish(uint32_t partition,
               std::map<std::string, state::keyspace_stats> stats);

  /// Sums over partitions, by keyspace.
  std::map<std::string, state::keyspace_stats> totals() const;

  std::atomic<uint64_t> handoffs{0};
  std::atomic<uint64_t> handoff_records{0};
  std::atomic<uint64_t> handoff_failures{0};
  std::atomic<uint64_t> anti_entropy_rounds{0};
  std::atomic<uint64_t> anti_entropy_repairs{0};
  std::atomic<uint64_t> replication_cutoffs{0};
  std::atomic<uint64_t> replication_failures{0};
  std::atomic<uint64_t> forwarded{0};
  std::atomic<uint64_t> purged{0};
  /// Decisions refused by the fence (minority view, too few owners, not
  /// yet joined) and lost to a newer copy at another owner.
  std::atomic<uint64_t> decisions_fenced{0};
  std::atomic<uint64_t> decisions_outdated{0};

private:
  mutable std::mutex mutex_;
  std::vector<std::map<std::string, state::keyspace_stats>> per_partition_;
};

struct shard_options {
  uint32_t partition = 0;
  std::string instance_id;
  std::shared_ptr<state::hlc> clock;
  wall_clock wall = system_wall_clock();
  /// Monotonic time for anti-entropy rounds and releases of data.
  monotonic_clock monotonic = system_monotonic_clock();
  /// Seed of the spread of the first tick and anti-entropy round (0:
  /// random).
  uint32_t random_seed = 0;
  write_consistency consistency = write_consistency::all;
  /// Timeout of every request to a peer's shard.
  std::chrono::milliseconds peer_timeout{2000};
  std::chrono::milliseconds anti_entropy_interval{10000};
  /// Cadence of expiry purges and statistics.
  std::chrono::milliseconds tick_interval{1000};
  /// Records an expiry purge looks at per tick (it goes on where it stopped
  /// next time). Walking a large tree misses the cache on every node, so a
  /// node scans only 64 × 512 records a second: 180,000 records take about
  /// 6 s, a million sessions about a minute (expired records are invisible
  /// meanwhile; they only take memory).
  size_t purge_budget = 512;
  /// Told, on the partition's primary owner only, of each session (key and
  /// stored value in the `sessions` keyspace) a purge removes because it
  /// expired (null: nobody): how sessions.logout_on_expiry learns of them.
  std::function<void(const std::string&, const std::string&)>
    on_session_expired;
  /// How long data of a partition this node no longer owns is kept (the new
  /// owners pull it meanwhile).
  std::chrono::milliseconds release_after{60000};
  /// Replication requests in flight to one peer before it is cut off.
  size_t max_inflight = 512;
  /// Bound of one sync answer; larger differences take several rounds.
  size_t max_transfer_bytes = 4 * 1024 * 1024;
  std::shared_ptr<state_metrics> metrics;
  /// The cluster members whose shards may replicate, sync and forward to
  /// this one (null: this node's actors only).
  std::shared_ptr<const admission> admitted;
  /// Records to start with (warm start from the snapshot file).
  std::vector<state::keyed_record> initial;
  /// Set once a clustered node has tried every seed (null: not
  /// clustered): before, it decides nothing, since it may be alone only
  /// because it has not reached its cluster yet.
  std::shared_ptr<const std::atomic<bool>> joined;
};

class shard_state {
public:
  static inline const char* name = "shard";

  struct pending_write {
    /// Runs once with the outcome (the write's promise, or a reservation's).
    std::function<void(caf::expected<write_result>)> done;
    write_result result;
    std::set<std::string> waiting;
    uint32_t needed = 0;
  };

  void configure(shard_options opts);

  const shard_options& options() const {
    return opts_;
  }

  int64_t now_ms() const {
    return to_unix_ms(opts_.wall());
  }

  bool is_owner() const;

  bool is_primary() const;

  /// The other owners of the partition.
  std::vector<std::string> co_owners() const;

  /// A live member's shard of this partition (null when unknown).
  shard_actor shard_of(const std::string& id) const;

  /// Why WRITE may not apply to the current record, or ec::none.
  ec check(const write_request& write) const;

  /// Why this node may not decide a conditional write of this partition
  /// now (none: it may): it has not tried its seeds yet, its view holds
  /// at most half of the members it knows, or fewer owners are live than
  /// the replication factor asks for.
  caf::error decision_fence() const;

  /// Whether this owner's copy CURRENT (null: none) lets DECISION apply:
  /// it holds the same record, or the condition holds, a copy older than
  /// the expected version counting as one that missed writes.
  static bool admits(const decide_request& decision,
                     const state::record* current);

  /// Merges REMOTE records; returns how many changed something.
  size_t merge_all(std::vector<state::keyed_record> records);

  /// Records of the buckets that differ from THEIRS, within the transfer
  /// bound.
  sync_reply answer_sync(const state::digest_vector& theirs) const;

  state::partition data;
  ownership view;
  bool ready = false;
  /// Client operations waiting for the handoff of this epoch.
  std::vector<std::function<void()>> parked;
  /// Sources the handoff of this epoch still waits for.
  std::set<std::string> syncing;
  std::map<std::string, size_t> inflight;
  std::map<uint64_t, pending_write> writes;
  /// Keys (keyspace NUL key) with a decision of this node in flight, and
  /// the requests waiting for it to settle.
  std::map<std::string, std::vector<std::function<void()>>> deciding;
  uint64_t next_write = 0;
  uint64_t timer_id = 0;
  /// Whoever sent the last ownership (the router): told when this shard
  /// serves the partition for that epoch.
  caf::strong_actor_ptr router;
  std::chrono::steady_clock::time_point next_anti_entropy;
  /// Set while this node does not own the partition and still holds data.
  std::optional<std::chrono::steady_clock::time_point> release_at;

private:
  shard_options opts_;
};

using shard_pointer = shard_actor::stateful_pointer<shard_state>;

shard_actor::behavior_type shard(shard_pointer self, shard_options opts);

shard_actor spawn_shard(caf::actor_system& sys, shard_options opts);

} // namespace keymesh
