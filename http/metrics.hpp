// Process-wide counters and histograms, rendered in the Prometheus text
// exposition format at GET /metrics. Lock-free: relaxed atomics only, so the
// hot paths (verify, JWKS) pay a few increments per request.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "jose/jwt.hpp"
#include "jose/verify_cache.hpp"

namespace keymesh {
struct key_snapshot;
} // namespace keymesh

#include "actors/cluster_transport.hpp"
#include "actors/node_status.hpp"
#include "actors/shard.hpp"
#include "actors/store_pool.hpp"

namespace keymesh::http {

class metrics {
public:
  /// Latency histogram upper bounds in seconds (+Inf is implicit).
  static constexpr std::array<double, 14> latency_buckets
    = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
       0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   2.5};

  /// ROUTES are the labels requests are counted under; the last index is
  /// used for requests that matched no route.
  explicit metrics(std::vector<std::string> routes);

  void observe_request(size_t route, unsigned status,
                       std::chrono::nanoseconds latency);

  void count_signed(bool ok);

  void count_verified(jose::verify_reason reason);

  /// Back-pressure: why the node refused work it could not take.
  enum class refusal : size_t {
    /// A connection closed at once: http.max_connections were open.
    connections,
    /// A request answered 503 overloaded: a queue was full.
    overloaded,
  };

  void count_refused(refusal why);

  /// The exposition text. SNAPSHOT (may be null) supplies the key gauges.
  std::string render(const key_snapshot* snapshot, time_point started_at,
                     time_point now) const;

private:
  /// Status codes get a slot each; anything else lands in the last slot.
  static constexpr std::array<unsigned, 16> statuses
    = {200, 201, 204, 304, 400, 401, 403, 404,
       405, 409, 413, 415, 431, 500, 503, 504};
  static constexpr size_t status_slots = statuses.size() + 1;
  static constexpr size_t bucket_slots = latency_buckets.size() + 1;

  struct route_stats {
    std::array<std::atomic<uint64_t>, status_slots> by_status{};
    std::array<std::atomic<uint64_t>, bucket_slots> buckets{};
    std::atomic<uint64_t> latency_ns_sum{0};
    std::atomic<uint64_t> count{0};
  };

  std::vector<std::string> routes_;
  std::unique_ptr<route_stats[]> stats_;
  std::atomic<uint64_t> signed_ok_{0};
  std::atomic<uint64_t> signed_failed_{0};
  std::array<std::atomic<uint64_t>, 9> verified_{};
  std::array<std::atomic<uint64_t>, 2> refused_{};
};

/// The readiness checks of GET /healthz/ready, in its "checks" order.
struct readiness {
  bool keys = false;
  bool http = false;
  bool actors = false;
  bool cluster = false;
  bool state = false;
  bool secrets = false;
  bool database = false;
  bool stopping = false;

  bool ready() const {
    return keys && http && actors && cluster && state && secrets && database
           && !stopping;
  }

  /// The checks by name, as GET /healthz/ready and /metrics name them.
  std::array<std::pair<const char*, bool>, 7> checks() const {
    return {{{"keys", keys},
             {"http", http},
             {"actors", actors},
             {"cluster", cluster},
             {"state", state},
             {"secrets", secrets},
             {"database", database}}};
  }
};

/// keymesh_ready and keymesh_ready_check.
std::string render_readiness_metrics(const readiness& r);

/// The cluster members by state, and each member's (null board: none).
std::string render_member_metrics(const member_board& board);

/// Revocations by kind and outcome.
std::string render_revocation_metrics(const revocation_stats& s);

/// The verified-token cache of /api/verify: its size and its hits.
std::string render_verify_cache_metrics(const jose::verify_cache& cache);

/// The database: health, jobs, failures, the revocation log.
std::string render_store_metrics(const store_status& s);

/// The cluster port's counters (cluster_transport).
std::string render_transport_metrics(const transport_stats& s);

/// Back-channel logout: deliveries by outcome, attempts, takeovers, and
/// the deliveries this node holds.
std::string render_logout_metrics(const logout_stats& s);

/// The replicated state's gauges and counters (records and bytes per
/// keyspace, handoffs, anti-entropy, replication) and the deny set size.
std::string render_state_metrics(const state_metrics& m, size_t denied);

} // namespace keymesh::http
