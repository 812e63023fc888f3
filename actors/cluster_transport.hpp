// keymesh's own transport for CAF's middleman (BASP) between cluster nodes,
// in place of CAF 0.17.6's OpenSSL module, whose flaws let anyone who can
// reach a cluster port disturb the cluster (see docs/clustering.md,
// "The cluster transport"):
// - TLS handshakes run on a thread of their own, never on the multiplexer,
//   each with a deadline, and at most so many at once (in all and per
//   address); only an established session reaches BASP, which must then
//   finish its own handshake within the same deadline;
// - one SSL_CTX, built and validated at start (and again on reload), and
//   OpenSSL's per-thread error queue cleared before every call, so one
//   connection's failure is never read as another's;
// - every BASP header is checked before BASP sees it: a routed or anonymous
//   message, one addressed by name, or one to an actor this node does not
//   expose to peers closes the link. A message from a peer therefore always
//   names its sender on the node at the other end of the link, which is
//   what the admission checks of the actors rely on.
// Plaintext clusters (cluster.insecure_plaintext) use the same transport
// without TLS.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

namespace keymesh {

/// Dials peers for the membership actor: the one request of CAF's
/// middleman actor keymesh uses. Answers once BASP's handshake is done.
using connector_actor = caf::typed_actor<
    caf::replies_to<caf::connect_atom, std::string, uint16_t>::with<
        caf::node_id, caf::strong_actor_ptr, std::set<std::string>>>;

struct transport_options {
  /// TLS files (PEM; the key may be in the certificate file). All empty:
  /// plaintext links.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string passphrase;
  /// How long a connection may take from TCP connect to a finished BASP
  /// handshake.
  std::chrono::milliseconds handshake_timeout{5000};
  /// Accepted connections still in their handshake, in all and from one
  /// address; more are closed at once.
  size_t max_pending = 128;
  size_t max_pending_per_address = 16;

  bool tls() const {
    return !ca_file.empty();
  }
};

/// Counters for /metrics, written by the transport's threads.
struct transport_stats {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> established{0};
  std::atomic<uint64_t> handshake_timeouts{0};
  std::atomic<uint64_t> handshake_failures{0};
  /// Connections closed at once: too many pending handshakes.
  std::atomic<uint64_t> over_capacity{0};
  /// Links closed because a peer sent a message the filter refuses.
  std::atomic<uint64_t> refused_messages{0};
  std::atomic<uint64_t> pending{0};
};

class cluster_transport {
public:
  /// Builds the TLS context from OPTS (throws std::runtime_error naming the
  /// problem) and starts the thread that runs accepted handshakes.
  cluster_transport(caf::actor_system& sys, transport_options opts);

  ~cluster_transport();

  cluster_transport(const cluster_transport&) = delete;
  cluster_transport& operator=(const cluster_transport&) = delete;

  /// The actors peers may address; a message to any other actor of this
  /// node closes the link it came on. Call before publish and before the
  /// first dial.
  void expose(const std::vector<caf::strong_actor_ptr>& actors);

  /// Listens on HOST:PORT; each peer that completes the handshakes talks
  /// to WHOM (with interface SIGS) first. Returns the bound port.
  caf::expected<uint16_t> publish(caf::strong_actor_ptr whom,
                                  std::set<std::string> sigs,
                                  const std::string& host, uint16_t port);

  /// Stops listening (already accepted links stay).
  void unpublish();

  /// The actor that dials peers (see connector_actor).
  connector_actor connector() const {
    return connector_;
  }

  /// New TLS files (SIGHUP), for every connection from now on. Throws
  /// std::runtime_error naming the problem; the old context then stays.
  void reload(const transport_options& opts);

  std::shared_ptr<const transport_stats> stats() const {
    return stats_;
  }

  struct shared; // what the threads, the connector and the links share

private:
  void accept_loop();

  caf::actor_system& sys_;
  std::shared_ptr<shared> shared_;
  std::shared_ptr<transport_stats> stats_;
  connector_actor connector_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  caf::strong_actor_ptr whom_;
  std::set<std::string> sigs_;
  std::thread acceptor_;
};

} // namespace keymesh
