// A whole keymesh node inside an actor system: the data directory and
// identity, the federation and keystore actors, the bridge pool and the HTTP
// front, started in order and stopped in reverse. The app's `serve` command
// is a thin wrapper around it; an embedding application can start one in its
// own actor system, or spawn just the actors it needs (actors/keystore.hpp,
// actors/federation.hpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/bus.hpp"
#include "actors/federation.hpp"
#include "actors/interfaces.hpp"
#include "actors/membership.hpp"
#include "actors/node_status.hpp"
#include "actors/peer_fetcher.hpp"
#include "actors/srv_resolver.hpp"
#include "services/auth_service.hpp"
#include "services/directory.hpp"
#include "services/logout.hpp"
#include "services/objects.hpp"
#include "services/secrets.hpp"
#include "services/sessions.hpp"
#include "actors/state_service.hpp"
#include "actors/store_pool.hpp"
#include "actors/hash_pool.hpp"
#include "state/deny_set.hpp"
#include "common/clock.hpp"
#include "cluster/certs.hpp"
#include "config/settings.hpp"

namespace keymesh {

class cluster_transport;

namespace http {
class admin_auth;
class api;
class bridge_pool;
class server;
} // namespace http

class node {
public:
  /// Starts a node in SYS; returns once it is ready (keys published, HTTP
  /// listening). Throws std::runtime_error with a clear message on failure.
  /// SYS must have keymesh's message types (keymesh::add_message_types)
  /// and, with cluster.enabled, a config prepared by
  /// keymesh::prepare_actor_system (node/cluster_setup.hpp).
  static std::unique_ptr<node> start(caf::actor_system& sys,
                                     config::settings cfg,
                                     wall_clock clock = system_wall_clock());

  ~node();

  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Stops HTTP, then the actors. Idempotent.
  void stop();

  /// SIGHUP: validates the cluster TLS files again; when they are good, new
  /// links use them and the handshake uses the new certificate. Returns an
  /// empty string, or what is wrong (the old files stay in use).
  std::string reload_cluster_tls();

  uint16_t http_port() const {
    return http_port_;
  }

  const std::string& instance_id() const {
    return instance_id_;
  }

  const std::string& admin_keys_file() const {
    return admin_keys_file_;
  }

  const keystore_actor& keystore() const {
    return keystore_;
  }

  const federation_actor& federation() const {
    return federation_;
  }

  /// Null when clustering is off.
  const membership_actor& membership() const {
    return membership_;
  }

  /// The bound cluster port (0 when clustering is off).
  uint16_t cluster_port() const {
    return cluster_port_;
  }

  const std::shared_ptr<key_snapshot_slot>& keys() const {
    return keys_;
  }

  const std::shared_ptr<state::deny_set>& deny_set() const {
    return deny_;
  }

  /// The bus: subscribe with (atom::subscribe, topics, actor).
  const bus_actor& bus() const {
    return bus_;
  }

  /// The replicated state (shards, router, keyspace client).
  const state_service& state() const {
    return *state_;
  }

  /// The sessions service: create, read, touch, list and revoke sessions
  /// without HTTP (equivalent instances; any one will do).
  const sessions_actor& sessions() const {
    return sessions_.front();
  }

  /// The revocations of the sessions service alone (the same actor, a
  /// narrower handle): revoke by sid, subject or token id.
  revocation_actor revocations() const {
    return sessions_.front();
  }

  /// The auth service: log a user in, rotate a refresh token, log out,
  /// without HTTP (equivalent instances; any one will do).
  const auth_actor& auth() const {
    return auth_.front();
  }

  /// The directory service: users, groups and claims without HTTP
  /// (equivalent instances; any one will do).
  const directory_actor& directory() const {
    return directory_.front();
  }

  /// The objects service: an OpenID Provider's short-lived models (put,
  /// get, consume once, destroy, index lookups) without HTTP (equivalent
  /// instances; any one will do).
  const objects_actor& objects() const {
    return objects_.front();
  }

  /// The secrets service: re-read or rotate the cluster's secret rings.
  const secrets_actor& secrets() const {
    return secrets_;
  }

  /// DPoP server nonces: issue and check in-process, on any thread, with
  /// no message and no network hop (the cluster's dpop ring).
  const dpop_nonces& dpop() const {
    return *dpop_;
  }

  /// Cookie payloads sealed with the cluster's cookie ring, in-process.
  const cookie_sealer& cookies() const {
    return *cookies_;
  }

private:
  node() = default;

  // The steps of start, in their order; each throws std::runtime_error
  // naming the problem.

  /// The data directory, the instance id, the admin keys, the status.
  void open_data_dir();
  /// With cluster.enabled: the TLS identity, checked against the instance
  /// id and the actor system.
  std::optional<cluster::tls_identity>
  check_cluster_identity(caf::actor_system& sys);
  /// The store pool (waiting briefly for its first check) and the hash pool.
  void start_store(caf::actor_system& sys);
  void start_bus(caf::actor_system& sys);
  /// The federation and the keystore; returns once the first key is
  /// published.
  void start_keys(caf::actor_system& sys);
  /// The shards and the router.
  void start_logout(caf::actor_system& sys);
  void start_state(caf::actor_system& sys);
  void start_cluster(caf::actor_system& sys,
                     std::optional<cluster::tls_identity> identity);
  void start_static_peers(caf::actor_system& sys);
  /// The sessions, directory and auth services (THREADS instances each).
  void start_services(caf::actor_system& sys, unsigned threads);
  /// The secrets service and the in-process users of its rings.
  void start_secrets(caf::actor_system& sys);
  /// The bridge pool, the api and the HTTP server; returns the host it
  /// listens on.
  std::string start_http(caf::actor_system& sys, unsigned threads);

  config::settings cfg_;
  wall_clock clock_ = system_wall_clock();
  std::string instance_id_;
  std::string admin_keys_file_;
  std::shared_ptr<http::admin_auth> admin_;
  uint16_t http_port_ = 0;
  uint16_t cluster_port_ = 0;
  bool cluster_tls_ = false;
  std::shared_ptr<key_snapshot_slot> keys_;
  /// Peers whose handshake proof verified; every actor peers reach checks
  /// senders against it.
  std::shared_ptr<admission> admitted_ = std::make_shared<admission>();
  std::unique_ptr<state_service> state_;
  std::shared_ptr<state::deny_set> deny_;
  /// Shared: jobs still queued on other pools may hold it after the node.
  std::shared_ptr<store_pool> store_;
  std::unique_ptr<hash_pool> hashing_;
  bus_actor bus_;
  uint64_t incarnation_ = 0;
  federation_actor federation_;
  keystore_actor keystore_;
  membership_actor membership_;
  std::vector<sessions_actor> sessions_;
  logout_actor logout_;
  std::vector<auth_actor> auth_;
  std::vector<directory_actor> directory_;
  std::vector<objects_actor> objects_;
  std::shared_ptr<secret_board> secret_board_
    = std::make_shared<secret_board>();
  secrets_actor secrets_;
  std::unique_ptr<dpop_nonces> dpop_;
  std::unique_ptr<cookie_sealer> cookies_;
  std::shared_ptr<identity_slot> identity_;
  /// The links to peers (null without clustering).
  std::unique_ptr<cluster_transport> transport_;
  /// One per cluster.static_peers URL.
  std::vector<peer_fetcher_actor> peer_fetchers_;
  srv_resolver_actor srv_resolver_;
  std::shared_ptr<node_status> status_;
  std::unique_ptr<http::bridge_pool> bridge_;
  std::unique_ptr<http::api> api_;
  std::unique_ptr<http::server> server_;
  bool stopped_ = false;
};

} // namespace keymesh
