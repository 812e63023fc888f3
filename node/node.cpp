#include "node/node.hpp"

#include <filesystem>

#include <thread>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <cstring>

#include <caf/io/middleman.hpp>

#include "node/cluster_setup.hpp"
#include "actors/cluster_transport.hpp"
#include "actors/keystore.hpp"
#include "persistence/sealed.hpp"
#include "actors/membership.hpp"
#include "actors/peer_fetcher.hpp"
#include "actors/srv_resolver.hpp"
#include "http/admin_auth.hpp"
#include "http/api.hpp"
#include "http/bridge.hpp"
#include "http/server.hpp"
#include "persistence/data_dir.hpp"
#include "common/random.hpp"

namespace keymesh {

namespace {

unsigned resolve_threads(unsigned configured) {
  if (configured > 0)
    return configured;
  return std::max(1u, std::thread::hardware_concurrency());
}

/// Waits (polling) until READY() holds; throws STOPPED at once when an
/// actor the node needs has terminated, or LATE after LIMIT.
template <class Ready>
void await_start(Ready ready, const node_status& status,
                 std::chrono::seconds limit, const char* stopped,
                 const std::string& late) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!ready()) {
    if (!status.actors_alive.load())
      throw std::runtime_error(stopped);
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error(late);
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
}

/// Calls FUN when the actor terminates unexpectedly: readiness fails and the
/// log says why.
void watch(const caf::strong_actor_ptr& actor, std::string name,
           std::shared_ptr<node_status> status) {
  if (!actor)
    return;
  actor->get()->attach_functor(
    [status = std::move(status), name = std::move(name)](
      const caf::error& reason) {
      if (status->stopping.load())
        return;
      status->actors_alive = false;
      spdlog::critical("the {} actor terminated: {}; the node is not ready",
                       name, caf::to_string(reason));
    });
}

void warn_about_cluster_settings(const config::settings& c) {
  if (!c.cluster.enabled
      && (!c.cluster.seeds.empty() || !c.cluster.listen.empty()))
    spdlog::warn("cluster.seeds / cluster.listen are set but cluster.enabled "
                 "is false: this node runs alone");
}

} // namespace

std::unique_ptr<node> node::start(caf::actor_system& sys,
                                  config::settings cfg, wall_clock clock) {
  std::unique_ptr<node> self{new node};
  self->cfg_ = std::move(cfg);
  auto& c = self->cfg_;
  warn_about_cluster_settings(c);
  // Data directory and identity.
  persistence::ensure_data_dir(c.node.data_dir);
  self->instance_id_ = c.cluster.instance_id.empty()
                         ? persistence::load_or_create_instance_id(
                           c.node.data_dir)
                         : c.cluster.instance_id;
  // Admin keys.
  self->admin_keys_file_ = c.http.admin_keys_file;
  if (self->admin_keys_file_.empty()) {
    bool created = false;
    self->admin_keys_file_ = http::admin_auth::ensure_default_file(
      c.node.data_dir, created);
    if (created)
      spdlog::info("wrote a new admin key to {} (use it as Authorization: "
                   "Bearer <key>; it is never logged)",
                   self->admin_keys_file_);
  }
  auto admin = std::make_shared<http::admin_auth>(
    http::admin_auth::load(self->admin_keys_file_));
  self->status_ = std::make_shared<node_status>();
  self->status_->instance_id = self->instance_id_;
  self->status_->started_at = clock();
  self->clock_ = clock;
  // Actors: the federation first, so the keystore's first announcement has
  // somewhere to go.
  std::optional<cluster::tls_identity> identity;
  if (c.cluster.enabled) {
    identity = load_cluster_identity(c);
    if (!sys.has_middleman())
      throw std::runtime_error("cluster.enabled, but the actor system has no "
                               "middleman: call "
                               "keymesh::prepare_actor_system first");
    if (identity && identity->common_name() != self->instance_id_)
      throw std::runtime_error(
        "the cluster certificate's CN \"" + identity->common_name()
        + "\" is not this node's instance id \"" + self->instance_id_
        + "\" (set cluster.instance_id, or use the certificate genclust "
          "made for this node)");
    self->status_->cluster_ready = false;
  }
  // The bus first: the keystore publishes its key sets on it.
  self->deny_ = std::make_shared<state::deny_set>();
  // The store: its monitor migrates the schema and loads the revocation log
  // into the deny set; the node is not ready before it did.
  auto db_status = std::make_shared<store_status>();
  db_status->backend = c.database.driver;
  store_pool_options sopts;
  sopts.open = [c] { return persistence::open_store(c); };
  sopts.workers = c.database.pool_size;
  sopts.max_queue = c.database.max_queue;
  sopts.health_interval = c.database.health_interval;
  sopts.clock = clock;
  sopts.deny = self->deny_;
  sopts.shared = c.database.driver == "mysql";
  self->store_ = std::make_shared<store_pool>(sys, std::move(sopts),
                                              db_status);
  self->status_->store = db_status;
  // The first check runs now: wait for it (briefly), so that a node whose
  // database answers is ready once it says so. One that does not answer
  // starts anyway, not ready, and the monitor keeps trying.
  {
    auto deadline = std::chrono::steady_clock::now() + c.database.connect_timeout
                    + std::chrono::seconds{1};
    while (!db_status->loaded && db_status->error().empty()
           && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  self->hashing_ = std::make_unique<work_pool>(
    sys,
    c.auth.hash_workers > 0 ? c.auth.hash_workers
                            : std::max(1u, std::thread::hardware_concurrency()),
    c.auth.hash_queue);
  self->incarnation_ = [] {
    uint64_t x = 0;
    auto bytes = keymesh::random_bytes(sizeof(x));
    std::memcpy(&x, bytes.data(), sizeof(x));
    return x;
  }();
  bus_options bopts;
  bopts.instance_id = self->instance_id_;
  bopts.incarnation = self->incarnation_;
  bopts.clock = clock;
  bopts.peer_timeout = c.state.peer_timeout;
  bopts.deny = self->deny_;
  if (!self->store_->shared()) {
    // Each node keeps its own log: it records what it learns from peers
    // too. (A shared database has the entry from the node that took it.)
    bopts.on_revocation = [pool = self->store_](
                            const persistence::revocation_entry& entry) {
      pool->submit({[entry](persistence::store& db) {
                      db.put_revocation(entry);
                    },
                    [](const persistence::store_error& err) {
                      spdlog::error("store: a revocation from a peer was not "
                                    "written to the log: {}",
                                    err.what());
                    }});
    };
  }
  bopts.admitted = self->admitted_;
  self->bus_ = spawn_bus(sys, std::move(bopts));
  self->keys_ = std::make_shared<key_snapshot_slot>();
  federation_options fed_opts;
  fed_opts.local_origin = self->instance_id_;
  fed_opts.slot = self->keys_;
  fed_opts.clock = clock;
  fed_opts.departed_retention = std::chrono::duration_cast<
    std::chrono::milliseconds>(c.keys.max_token_ttl + c.keys.leeway);
  fed_opts.peer_ack_timeout = c.cluster.failure_timeout;
  fed_opts.admitted = self->admitted_;
  self->federation_ = spawn_federation(sys, std::move(fed_opts));
  auto opts = keystore_options::from_settings(c, self->instance_id_);
  if (!opts)
    throw std::runtime_error(sys.render(opts.error()));
  opts->clock = clock;
  if (c.cluster.enabled) // a due key waits this long for peers' acks
    opts->ack_wait = c.cluster.failure_timeout;
  opts->first_sequence = persistence::read_key_sequence(c.node.data_dir);
  opts->persist_sequence = [dir = c.node.data_dir](uint64_t n) {
    persistence::write_key_sequence(dir, n);
  };
  if (!c.keys.encryption_key_file.empty()) {
    // A single node keeps its keys, sealed, so its tokens outlive a restart.
    auto secret = persistence::read_encryption_key(c.keys.encryption_key_file);
    auto path = (std::filesystem::path{c.node.data_dir} / "signing_keys.sealed")
                  .string();
    opts->restored_keys = load_signing_keys(path, secret, self->instance_id_);
    opts->save_keys = [path, secret, id = self->instance_id_](
                        const std::deque<managed_key>& keys) {
      save_signing_keys(path, secret, id, keys);
    };
  }
  opts->on_announce = [bus = self->bus_](const key_announcement& a) {
    caf::anon_send(bus, atom::publish_v, std::string{"keys"},
                   keys_payload(a));
  };
  auto ks = spawn_keystore(sys, std::move(*opts), self->federation_);
  if (!ks)
    throw std::runtime_error(sys.render(ks.error()));
  self->keystore_ = std::move(*ks);
  using caf::actor_cast;
  using caf::strong_actor_ptr;
  watch(actor_cast<strong_actor_ptr>(self->federation_), "federation",
        self->status_);
  watch(actor_cast<strong_actor_ptr>(self->keystore_), "keystore",
        self->status_);
  watch(actor_cast<strong_actor_ptr>(self->bus_), "bus", self->status_);
  // The federation published its first snapshot.
  await_start([&slot = *self->keys_] { return slot.load() != nullptr; },
              *self->status_, std::chrono::seconds{60},
              "the key actors stopped before the first key was published: "
              "see the errors above",
              "no signing key after 60 s: see the keystore errors above");
  self->state_ = state_service::start(sys, c, self->instance_id_, clock,
                                      self->admitted_);
  self->status_->state_synced = self->state_->synced();
  watch(actor_cast<strong_actor_ptr>(self->state_->router()), "router",
        self->status_);
  for (auto& s : self->state_->client().shards)
    watch(actor_cast<strong_actor_ptr>(s), "shard", self->status_);
  if (c.cluster.enabled)
    self->start_cluster(sys, std::move(identity));
  // Stoke-style federation: poll every static peer's JWKS.
  for (auto& url : c.cluster.static_peers) {
    peer_fetcher_options fo;
    fo.base_url = url;
    fo.refresh = c.cluster.refresh_sec;
    fo.fetch.ca_file = c.cluster.static_peers_ca;
    if (auto why = validate(fo); !why.empty())
      throw std::runtime_error("cluster.static_peers: " + why);
    self->peer_fetchers_.push_back(
      spawn_peer_fetcher(sys, std::move(fo), self->federation_));
  }
  if (!c.cluster.static_peers.empty())
    spdlog::info("polling {} static peer(s) every {} s",
                 c.cluster.static_peers.size(), c.cluster.refresh_sec.count());
  for (auto& url : c.cluster.static_peers)
    if (url.compare(0, 7, "http://") == 0)
      spdlog::warn("static peer {} is polled over PLAIN HTTP "
                   "(cluster.static_peers_insecure_http): anyone on the path "
                   "can replace its keys",
                   url);
  // The services.
  auto threads = resolve_threads(c.http.threads);
  auto sessions_opts = sessions_options::from_settings(c);
  if (!sessions_opts)
    throw std::runtime_error(sys.render(sessions_opts.error()));
  sessions_deps sessions_with{self->state_->client(), self->deny_,
                              self->bus_,             self->store_,
                              self->status_,          clock};
  self->sessions_ = spawn_sessions(sys, *sessions_opts, sessions_with,
                                   threads);
  for (auto& s : self->sessions_)
    watch(actor_cast<strong_actor_ptr>(s), "sessions", self->status_);
  auto auth_opts = auth_options::from_settings(c);
  if (!auth_opts)
    throw std::runtime_error(sys.render(auth_opts.error()));
  auto directory_opts = directory_options::from_settings(c);
  if (!directory_opts)
    throw std::runtime_error(sys.render(directory_opts.error()));
  directory_deps directory_with;
  directory_with.store = self->store_;
  directory_with.hashing = self->hashing_.get();
  directory_with.clock = clock;
  self->directory_ = spawn_directory(sys, *directory_opts, directory_with,
                                     self->sessions_, threads);
  for (auto& d : self->directory_)
    watch(actor_cast<strong_actor_ptr>(d), "directory", self->status_);
  auth_deps auth_with;
  auth_with.state = self->state_->client();
  auth_with.keystore = self->keystore_;
  auth_with.hashing = self->hashing_.get();
  auth_with.deny = self->deny_;
  auth_with.clock = clock;
  self->auth_ = spawn_auth(sys, *auth_opts, auth_with, self->sessions_,
                           self->directory_);
  for (auto& a : self->auth_)
    watch(actor_cast<strong_actor_ptr>(a), "auth", self->status_);
  // HTTP front.
  self->bridge_ = std::make_unique<http::bridge_pool>(sys, threads);
  for (auto& b : self->bridge_->actors())
    watch(actor_cast<strong_actor_ptr>(b), "bridge", self->status_);
  http::api_context ctx;
  ctx.settings = c;
  ctx.keystore = self->keystore_;
  ctx.keys = self->keys_;
  ctx.admin = admin;
  ctx.status = self->status_;
  ctx.bridge = self->bridge_.get();
  ctx.clock = clock;
  ctx.membership = self->membership_;
  ctx.state = self->state_->client();
  ctx.state_stats = self->state_->metrics();
  ctx.deny = self->deny_;
  ctx.store = self->store_;
  ctx.hashing = self->hashing_.get();
  ctx.bus = self->bus_;
  ctx.sessions = self->sessions_;
  ctx.auth = self->auth_;
  ctx.directory = self->directory_;
  self->api_ = std::make_unique<http::api>(std::move(ctx));
  http::server_limits limits;
  limits.max_body_bytes = c.http.max_body_bytes;
  limits.max_header_bytes = c.http.max_header_bytes;
  limits.max_header_count = c.http.max_header_count;
  limits.max_connections = c.http.max_connections;
  limits.read_timeout = c.http.read_timeout;
  limits.idle_timeout = c.http.idle_timeout;
  limits.response_timeout = c.http.request_timeout;
  self->server_ = std::make_unique<http::server>(*self->api_, limits, threads);
  auto listen = config::parse_host_port(c.http.listen);
  if (!listen)
    throw std::runtime_error("http.listen: not a host:port: " + c.http.listen);
  self->http_port_ = self->server_->listen(listen->host, listen->port);
  self->server_->start();
  self->status_->http_listening = true;
  // A single node owns every partition as soon as its router has told the
  // shards: wait for that, so sessions work the moment start returns. (A
  // cluster node's partitions follow the members it finds; readiness
  // reports them.)
  if (!c.cluster.enabled)
    await_start([&synced = *self->state_->synced()] { return synced.load(); },
                *self->status_, std::chrono::seconds{60},
                "the state actors stopped before they owned their "
                "partitions: see the errors above",
                "the shards did not own their partitions after 60 s");
  spdlog::info("keymesh node {} ready: http://{}:{} ({} keys, {} HTTP "
               "threads)",
               self->instance_id_, listen->host, self->http_port_,
               jose::to_string(*jose::parse_algorithm(c.keys.algorithm)),
               threads);
  return self;
}

void node::start_cluster(caf::actor_system& sys,
                         std::optional<cluster::tls_identity> identity) {
  auto& c = cfg_;
  auto listen = config::parse_host_port(c.cluster.listen);
  if (!listen)
    throw std::runtime_error("cluster.listen: not a host:port: "
                             + c.cluster.listen);
  cluster_tls_ = identity.has_value();
  membership_options opts;
  opts.instance_id = instance_id_;
  opts.cluster_name = c.cluster.name;
  opts.seeds = c.cluster.seeds;
  opts.heartbeat = c.cluster.heartbeat;
  opts.failure_timeout = c.cluster.failure_timeout;
  opts.settings = shared_settings(c);
  identity_ = std::make_shared<identity_slot>(std::move(identity));
  opts.identity = identity_;
  opts.incarnation = incarnation_;
  transport_ = std::make_unique<cluster_transport>(
    sys, cluster_transport_options(c));
  opts.connector = transport_->connector();
  status_->transport = transport_->stats();
  opts.federation = federation_;
  opts.router = state_->router();
  opts.shards = state_->client().shards;
  opts.bus = bus_;
  opts.admitted = admitted_;
  opts.on_seeds_tried = [status = status_] { status->cluster_ready = true; };
  opts.await_discovery = c.cluster.discovery == "srv";
  // Peers dial the configured address, so it needs a fixed port.
  if (listen->port == 0)
    throw std::runtime_error("cluster.listen needs a fixed port: peers dial "
                             "it");
  opts.address = cluster_address(c);
  membership_ = spawn_membership(sys, std::move(opts));
  // What peers may address; any other actor of this node is unreachable.
  using caf::actor_cast;
  using caf::strong_actor_ptr;
  std::vector<strong_actor_ptr> exposed{actor_cast<strong_actor_ptr>(membership_),
                                        actor_cast<strong_actor_ptr>(federation_),
                                        actor_cast<strong_actor_ptr>(bus_)};
  for (auto& s : state_->client().shards)
    exposed.push_back(actor_cast<strong_actor_ptr>(s));
  transport_->expose(exposed);
  auto port = transport_->publish(actor_cast<strong_actor_ptr>(membership_),
                                  sys.message_types(membership_),
                                  listen->host, listen->port);
  if (!port) {
    caf::anon_send_exit(membership_, caf::exit_reason::user_shutdown);
    membership_ = nullptr;
    throw std::runtime_error("cannot listen for the cluster on "
                             + c.cluster.listen + ": "
                             + sys.render(port.error()));
  }
  cluster_port_ = *port;
  caf::anon_send(membership_, atom::tick_v, uint64_t{0}); // first round
  if (c.cluster.discovery == "srv") {
    if (c.cluster.srv.names.empty())
      throw std::runtime_error("cluster.discovery: srv needs cluster.srv.names");
    srv_resolver_ = spawn_srv_resolver(
      sys, c.cluster.srv.names, c.cluster.srv.nameserver,
      c.cluster.srv.poll_interval,
      [membership = membership_](std::vector<std::string> found) {
        caf::anon_send(membership, atom::seeds_v, std::move(found));
      });
  }
  watch(caf::actor_cast<caf::strong_actor_ptr>(membership_), "membership",
        status_);
  spdlog::info("cluster \"{}\": listening on {} ({}), {} seed(s)",
               c.cluster.name, c.cluster.listen,
               cluster_tls_ ? "mutual TLS" : "PLAINTEXT",
               c.cluster.seeds.size());
}

std::string node::reload_cluster_tls() {
  if (!cfg_.cluster.enabled || !identity_ || !identity_->get())
    return {};
  try {
    // Validate first; only files that pass reach CAF and the handshake.
    auto fresh = load_cluster_identity(cfg_);
    if (fresh && fresh->common_name() != instance_id_)
      return "the new certificate's CN \"" + fresh->common_name()
             + "\" is not this node's instance id \"" + instance_id_ + "\"";
    install_cluster_tls(cfg_);
    if (transport_)
      transport_->reload(cluster_transport_options(cfg_));
    identity_->set(std::move(fresh));
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

node::~node() {
  stop();
}

void node::stop() {
  if (stopped_)
    return;
  stopped_ = true;
  if (status_)
    status_->stopping = true;
  if (server_)
    server_->stop();
  if (bridge_)
    bridge_->stop();
  for (auto& a : auth_)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  for (auto& d : directory_)
    caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
  for (auto& s : sessions_)
    caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
  if (membership_)
    caf::anon_send_exit(membership_, caf::exit_reason::user_shutdown);
  // Close the cluster port; links already up end with the actor system.
  if (transport_)
    transport_->unpublish();
  // After HTTP stopped taking writes, before the actors go: the partitions
  // go to the warm-start file.
  if (state_)
    state_->stop(true);
  // Jobs already queued (a revocation from a peer) still run.
  if (store_)
    store_->stop();
  if (hashing_)
    hashing_->stop();
  for (auto& f : peer_fetchers_)
    caf::anon_send_exit(f, caf::exit_reason::user_shutdown);
  if (srv_resolver_)
    caf::anon_send_exit(srv_resolver_, caf::exit_reason::user_shutdown);
  if (bus_)
    caf::anon_send_exit(bus_, caf::exit_reason::user_shutdown);
  if (keystore_)
    caf::anon_send_exit(keystore_, caf::exit_reason::user_shutdown);
  if (federation_)
    caf::anon_send_exit(federation_, caf::exit_reason::user_shutdown);
  transport_.reset(); // waits for dials in flight (their deadline at most)
}

} // namespace keymesh
