#include "node/node.hpp"

#include <filesystem>

#include <thread>
#include <tuple>

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
#include "config/duration.hpp"

namespace keymesh {

namespace {

unsigned resolve_threads(unsigned configured) {
  if (configured > 0)
    return configured;
  return std::max(1u, std::thread::hardware_concurrency());
}

/// Waits (polling) until READY() holds: true, or false at once when an
/// actor the node needs has terminated, or after LIMIT.
template <class Ready>
bool wait_until(Ready ready, const node_status& status,
                std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!ready()) {
    if (!status.actors_alive.load()
        || std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  return true;
}

/// As wait_until, but throws STOPPED when an actor terminated, LATE after
/// LIMIT.
template <class Ready>
void await_start(Ready ready, const node_status& status,
                 std::chrono::seconds limit, const char* stopped,
                 const std::string& late) {
  if (wait_until(ready, status, limit))
    return;
  throw std::runtime_error(status.actors_alive.load() ? late : stopped);
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

/// The value of a component's options (from_settings) or spawn; throws
/// naming the setting or the failure otherwise.
template <class T>
T required(caf::actor_system& sys, caf::expected<T> x) {
  if (!x)
    throw std::runtime_error(sys.render(x.error()));
  return std::move(*x);
}

/// The key a single node seals its signing keys with, and where it comes
/// from (for messages): keys.encryption_key_file, else a key the node makes
/// in its data directory on first start. A node that moves from its own key
/// to a key file re-seals the kept keys with the file's key once and
/// deletes its own.
std::pair<std::string, std::string> sealing_key(const config::settings& c,
                                                const std::string& instance_id) {
  namespace fs = std::filesystem;
  auto dir = fs::path{c.node.data_dir};
  auto sealed = (dir / "signing_keys.sealed").string();
  auto own = (dir / "signing_keys.key").string();
  std::error_code err;
  if (!c.keys.encryption_key_file.empty()) {
    auto secret = persistence::read_encryption_key(c.keys.encryption_key_file);
    if (fs::exists(own, err) && fs::exists(sealed, err)) {
      try {
        auto keys = load_signing_keys(sealed, persistence::read_encryption_key(own),
                                      instance_id, own);
        save_signing_keys(sealed, secret, instance_id, keys);
        fs::remove(own, err);
        spdlog::info("keystore: the kept signing keys are sealed with "
                     "keys.encryption_key_file from now on; {} is deleted",
                     own);
      } catch (const persistence::storage_error&) {
        // Not sealed with the node's own key (already moved, say): the
        // load with the key file decides.
      }
    }
    return {secret, "keys.encryption_key_file"};
  }
  if (!fs::exists(own, err) && fs::exists(sealed, err))
    throw persistence::storage_error(
      sealed + " holds signing keys, but keys.encryption_key_file is not set "
               "and " + own + " is missing: set keys.encryption_key_file to "
               "the key they were sealed with (or move the file away to start "
               "with new keys: tokens they signed stop verifying)");
  bool created = false;
  auto secret = persistence::load_or_create_signing_key(c.node.data_dir,
                                                        &created);
  if (created)
    spdlog::info("keystore: made {} (mode 0600); this node's signing keys "
                 "are sealed with it in signing_keys.sealed, so its tokens "
                 "verify across restarts. In production, keep the key "
                 "elsewhere: keys.encryption_key_file",
                 own);
  return {secret, own};
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
  self->clock_ = clock;
  if (auto offset = self->cfg_.node.clock_offset; offset.count() != 0) {
    spdlog::warn("node.clock_offset: this node's clock runs {} ahead of "
                 "the system clock (for tests)",
                 config::format_duration(offset));
    self->clock_ = [clock, offset] { return clock() + offset; };
  }
  warn_about_cluster_settings(self->cfg_);
  // In order: each step uses what the ones before it started, and a throw
  // destroys the half-built node, which stops what was started.
  self->open_data_dir();
  auto identity = self->check_cluster_identity(sys);
  self->start_store(sys);
  self->start_bus(sys);
  self->start_keys(sys);
  self->start_logout(sys);
  self->start_state(sys);
  if (self->cfg_.cluster.enabled)
    self->start_cluster(sys, std::move(identity));
  self->start_static_peers(sys);
  auto threads = resolve_threads(self->cfg_.http.threads);
  self->start_services(sys, threads);
  self->start_secrets(sys);
  auto listen = self->start_http(sys, threads);
  // A single node owns every partition as soon as its router has told the
  // shards: wait for that, so sessions work the moment start returns. (A
  // cluster node's partitions follow the members it finds; readiness
  // reports them.)
  if (!self->cfg_.cluster.enabled)
    await_start([&synced = *self->state_->synced()] { return synced.load(); },
                *self->status_, std::chrono::seconds{60},
                "the state actors stopped before they owned their "
                "partitions: see the errors above",
                "the shards did not own their partitions after 60 s");
  // A single node also holds its secret rings within moments (they are
  // read from its own database); "ready" in the log then means what
  // /healthz/ready says. (A database that does not answer leaves the node
  // started but not ready: it says so, and readiness reports it.)
  // (The rings live in the database: without one that loaded, waiting
  // is pointless.)
  bool rings = true;
  if (!self->cfg_.cluster.enabled) {
    auto& status = *self->status_;
    auto& db = status.store;
    rings = (!db || db->loaded.load())
              ? wait_until([&] { return status.secrets_ready.load(); }, status,
                           std::chrono::seconds{10})
              : status.secrets_ready.load();
  }
  auto algorithm
    = jose::to_string(*jose::parse_algorithm(self->cfg_.keys.algorithm));
  if (rings)
    spdlog::info("keymesh node {} ready: http://{}:{} ({} keys, {} HTTP "
                 "threads)",
                 self->instance_id_, listen, self->http_port_, algorithm,
                 threads);
  else
    spdlog::warn("keymesh node {} listening on http://{}:{} ({} keys, {} "
                 "HTTP threads) but not ready: its DPoP nonce and cookie "
                 "rings are not loaded yet (see GET /healthz/ready)",
                 self->instance_id_, listen, self->http_port_, algorithm,
                 threads);
  return self;
}

void node::open_data_dir() {
  auto& c = cfg_;
  persistence::ensure_data_dir(c.node.data_dir);
  instance_id_ = c.cluster.instance_id.empty()
                   ? persistence::load_or_create_instance_id(c.node.data_dir)
                   : c.cluster.instance_id;
  admin_keys_file_ = c.http.admin_keys_file;
  if (admin_keys_file_.empty()) {
    bool created = false;
    admin_keys_file_ = http::admin_auth::ensure_default_file(c.node.data_dir,
                                                             created);
    if (created)
      spdlog::info("wrote a new admin key to {} (use it as Authorization: "
                   "Bearer <key>; it is never logged)",
                   admin_keys_file_);
  }
  admin_ = std::make_shared<http::admin_auth>(
    http::admin_auth::load(admin_keys_file_));
  status_ = std::make_shared<node_status>();
  status_->instance_id = instance_id_;
  status_->started_at = clock_();
  incarnation_ = [] {
    uint64_t x = 0;
    auto bytes = keymesh::random_bytes(sizeof(x));
    std::memcpy(&x, bytes.data(), sizeof(x));
    return x;
  }();
  deny_ = std::make_shared<state::deny_set>();
}

std::optional<cluster::tls_identity>
node::check_cluster_identity(caf::actor_system& sys) {
  auto& c = cfg_;
  if (!c.cluster.enabled)
    return std::nullopt;
  auto identity = load_cluster_identity(c);
  if (!sys.has_middleman())
    throw std::runtime_error("cluster.enabled, but the actor system has no "
                             "middleman: call "
                             "keymesh::prepare_actor_system first");
  if (identity && identity->common_name() != instance_id_)
    throw std::runtime_error(
      "the cluster certificate's CN \"" + identity->common_name()
      + "\" is not this node's instance id \"" + instance_id_
      + "\" (set cluster.instance_id, or use the certificate genclust "
        "made for this node)");
  status_->cluster_ready = false;
  return identity;
}

void node::start_store(caf::actor_system& sys) {
  auto& c = cfg_;
  // The store: its monitor migrates the schema and loads the revocation log
  // into the deny set; the node is not ready before it did.
  auto opts = required(sys, store_pool_options::from_settings(c));
  opts.clock = clock_;
  opts.deny = deny_;
  auto db_status = std::make_shared<store_status>();
  db_status->backend = c.database.driver;
  store_ = std::make_shared<store_pool>(sys, std::move(opts), db_status);
  status_->store = db_status;
  // The first check runs now: wait for it (briefly), so that a node whose
  // database answers is ready once it says so. One that does not answer
  // starts anyway, not ready, and the monitor keeps trying.
  auto deadline = std::chrono::steady_clock::now()
                  + c.database.connect_timeout + std::chrono::seconds{1};
  while (!db_status->loaded && db_status->error().empty()
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  hashing_ = hash_pool::for_password_hashes(sys, c);
}

void node::start_bus(caf::actor_system& sys) {
  auto opts = required(sys, bus_options::from_settings(cfg_));
  opts.instance_id = instance_id_;
  opts.incarnation = incarnation_;
  opts.clock = clock_;
  opts.deny = deny_;
  if (!store_->shared()) {
    // Each node keeps its own log: it records what it learns from peers
    // too. (A shared database has the entry from the node that took it.)
    opts.on_revocation = [pool = store_, sys = &sys](
                           const persistence::revocation_entry& entry) {
      auto failed = [](const caf::error& err) {
        spdlog::error("store: a revocation from a peer was not written to "
                      "the log: {}",
                      context_text(err));
      };
      auto worker = pool->worker();
      if (!worker)
        return failed(worker.error());
      // The bus must not wait: a short-lived actor takes the answer. (It
      // takes its inputs as arguments: CAF 0.17 dereferences a null
      // argument tuple for a function-based actor without any.)
      sys->spawn(
        [failed](caf::event_based_actor* self, store_worker_actor worker,
                 persistence::revocation_entry entry) {
          self->request(worker, caf::infinite, atom::put_v, std::move(entry))
            .then([](atom::ok) {},
                  [failed](caf::error& err) { failed(err); });
        },
        *worker, entry);
    };
  }
  opts.admitted = admitted_;
  bus_ = spawn_bus(sys, std::move(opts));
  watch(caf::actor_cast<caf::strong_actor_ptr>(bus_), "bus", status_);
}

void node::start_keys(caf::actor_system& sys) {
  auto& c = cfg_;
  // The federation first, so the keystore's first announcement has
  // somewhere to go.
  keys_ = std::make_shared<key_snapshot_slot>();
  auto fed_opts = required(sys, federation_options::from_settings(c));
  fed_opts.local_origin = instance_id_;
  fed_opts.slot = keys_;
  fed_opts.clock = clock_;
  fed_opts.admitted = admitted_;
  federation_ = spawn_federation(sys, std::move(fed_opts));
  auto opts = required(sys, keystore_options::from_settings(c, instance_id_));
  opts.clock = clock_;
  if (c.cluster.enabled) // a due key waits this long for peers' acks
    opts.ack_wait = c.cluster.failure_timeout;
  opts.first_sequence = persistence::read_key_sequence(c.node.data_dir);
  opts.persist_sequence = [dir = c.node.data_dir](uint64_t n) {
    persistence::write_key_sequence(dir, n);
  };
  if (!c.cluster.enabled) {
    // A single node keeps its keys, sealed, so its tokens outlive a restart.
    // (Not a structured binding: clang's C++17 cannot capture one.)
    std::string secret, source;
    std::tie(secret, source) = sealing_key(c, instance_id_);
    auto path = (std::filesystem::path{c.node.data_dir} / "signing_keys.sealed")
                  .string();
    opts.restored_keys = load_signing_keys(path, secret, instance_id_, source);
    opts.save_keys = [path, secret, id = instance_id_](
                       const std::deque<managed_key>& keys) {
      save_signing_keys(path, secret, id, keys);
    };
  }
  opts.on_announce = [bus = bus_](const key_announcement& a) {
    caf::anon_send(bus, atom::publish_v, std::string{"keys"},
                   keys_payload(a));
  };
  keystore_ = required(sys, spawn_keystore(sys, std::move(opts), federation_));
  watch(caf::actor_cast<caf::strong_actor_ptr>(federation_), "federation",
        status_);
  watch(caf::actor_cast<caf::strong_actor_ptr>(keystore_), "keystore",
        status_);
  // The federation published its first snapshot.
  await_start([&slot = *keys_] { return slot.load() != nullptr; }, *status_,
              std::chrono::seconds{60},
              "the key actors stopped before the first key was published: "
              "see the errors above",
              "no signing key after 60 s: see the keystore errors above");
}

void node::start_logout(caf::actor_system& sys) {
  logout_deps with;
  with.keystore = keystore_;
  with.store = store_;
  with.bus = bus_;
  with.status = status_;
  with.clock = clock_;
  logout_ = spawn_logout(sys,
                         required(sys, logout_options::from_settings(cfg_)),
                         with);
  watch(caf::actor_cast<caf::strong_actor_ptr>(logout_), "logout", status_);
}

void node::start_state(caf::actor_system& sys) {
  // Decisions wait until a clustered node has tried its seeds (aliasing
  // the status board's flag, which membership sets).
  std::shared_ptr<const std::atomic<bool>> joined{status_,
                                                  &status_->cluster_ready};
  // sessions.logout_on_expiry: the primary owner of a session's partition
  // tells the logout service when it purges the session as expired.
  std::function<void(const std::string&, const std::string&)> expired;
  if (cfg_.sessions.logout_on_expiry)
    expired = [logout = logout_](const std::string& sid,
                                 const std::string& value) {
      auto s = state::decode_session(value);
      if (!s)
        return;
      s->sid = sid;
      auto parts = s->participants();
      if (!parts.empty())
        caf::anon_send(logout, atom::logout_v,
                       session_endings{session_ending{sid, s->sub, "expired",
                                                      std::move(parts)}});
    };
  state_ = state_service::start(sys, cfg_, instance_id_, clock_, admitted_,
                                std::move(joined), std::move(expired));
  status_->state_synced = state_->synced();
  watch(caf::actor_cast<caf::strong_actor_ptr>(state_->router()), "router",
        status_);
  for (auto& s : state_->client().shards)
    watch(caf::actor_cast<caf::strong_actor_ptr>(s), "shard", status_);
}

void node::start_static_peers(caf::actor_system& sys) {
  auto& c = cfg_;
  // Stoke-style federation: poll every static peer's JWKS.
  for (auto& url : c.cluster.static_peers) {
    peer_fetcher_options fo;
    fo.base_url = url;
    fo.refresh = c.cluster.refresh_sec;
    fo.fetch.ca_file = c.cluster.static_peers_ca;
    if (auto why = validate(fo); !why.empty())
      throw std::runtime_error("cluster.static_peers: " + why);
    peer_fetchers_.push_back(spawn_peer_fetcher(sys, std::move(fo),
                                                federation_));
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
}

void node::start_services(caf::actor_system& sys, unsigned threads) {
  auto& c = cfg_;
  using caf::actor_cast;
  using caf::strong_actor_ptr;
  sessions_deps sessions_with{state_->client(), deny_,   bus_,
                              store_,           status_, clock_, logout_};
  sessions_ = spawn_sessions(sys, required(sys,
                                           sessions_options::from_settings(c)),
                             sessions_with, threads);
  for (auto& s : sessions_)
    watch(actor_cast<strong_actor_ptr>(s), "sessions", status_);
  directory_deps directory_with;
  directory_with.store = store_;
  directory_with.hashing = hashing_.get();
  directory_with.clock = clock_;
  directory_ = spawn_directory(sys,
                               required(sys,
                                        directory_options::from_settings(c)),
                               directory_with, sessions_, threads);
  for (auto& d : directory_)
    watch(actor_cast<strong_actor_ptr>(d), "directory", status_);
  auth_deps auth_with;
  auth_with.state = state_->client();
  auth_with.keystore = keystore_;
  auth_with.hashing = hashing_.get();
  auth_with.deny = deny_;
  auth_with.clock = clock_;
  auth_ = spawn_auth(sys, required(sys, auth_options::from_settings(c)),
                     auth_with, sessions_, directory_);
  for (auto& a : auth_)
    watch(actor_cast<strong_actor_ptr>(a), "auth", status_);
  objects_deps objects_with;
  objects_with.state = state_->client();
  objects_with.clock = clock_;
  objects_ = spawn_objects(sys,
                           required(sys, objects_options::from_settings(c)),
                           objects_with, threads);
  for (auto& o : objects_)
    watch(actor_cast<strong_actor_ptr>(o), "objects", status_);
}

void node::start_secrets(caf::actor_system& sys) {
  auto& c = cfg_;
  auto opts = required(sys, secrets_options::from_settings(c));
  // The key that seals the rings in the database: the configured one
  // (every node of a cluster has the same: genclust writes it), else a
  // single node's own.
  if (!c.secrets.encryption_key_file.empty())
    opts.encryption_key
      = persistence::read_encryption_key(c.secrets.encryption_key_file);
  else if (!c.keys.encryption_key_file.empty())
    opts.encryption_key
      = persistence::read_encryption_key(c.keys.encryption_key_file);
  else if (!c.cluster.enabled)
    opts.encryption_key = persistence::load_or_create_secrets_key(
      c.node.data_dir);
  else
    spdlog::warn("secrets.encryption_key_file is not set: the cluster's DPoP "
                 "nonce and cookie keys live in memory only, and a restart "
                 "of every node replaces them");
  secrets_deps with;
  with.state = state_->client();
  with.board = secret_board_;
  with.bus = bus_;
  with.store = store_;
  with.status = status_;
  with.clock = clock_;
  secrets_ = spawn_secrets(sys, opts, with);
  watch(caf::actor_cast<caf::strong_actor_ptr>(secrets_), "secrets",
        status_);
  dpop_ = std::make_unique<dpop_nonces>(secret_board_, clock_,
                                        c.dpop.nonce_window);
  cookies_ = std::make_unique<cookie_sealer>(secret_board_, clock_);
}

std::string node::start_http(caf::actor_system& sys, unsigned threads) {
  auto& c = cfg_;
  auto limits = required(sys, http::server_limits::from_settings(c));
  auto listen = config::parse_host_port(c.http.listen);
  if (!listen)
    throw std::runtime_error("http.listen: not a host:port: " + c.http.listen);
  bridge_ = std::make_unique<http::bridge_pool>(sys, threads);
  for (auto& b : bridge_->actors())
    watch(caf::actor_cast<caf::strong_actor_ptr>(b), "bridge", status_);
  http::api_context ctx;
  ctx.settings = c;
  ctx.keystore = keystore_;
  ctx.keys = keys_;
  ctx.admin = admin_;
  ctx.status = status_;
  ctx.bridge = bridge_.get();
  ctx.clock = clock_;
  ctx.membership = membership_;
  ctx.state = state_->client();
  ctx.state_stats = state_->metrics();
  ctx.deny = deny_;
  ctx.store = store_;
  ctx.hashing = hashing_.get();
  ctx.bus = bus_;
  ctx.sessions = sessions_;
  ctx.auth = auth_;
  ctx.directory = directory_;
  ctx.objects = objects_;
  ctx.secrets = secrets_;
  ctx.dpop = dpop_.get();
  ctx.cookies = cookies_.get();
  ctx.rings = secret_board_;
  api_ = std::make_unique<http::api>(std::move(ctx));
  server_ = std::make_unique<http::server>(*api_, limits, threads);
  http_port_ = server_->listen(listen->host, listen->port);
  server_->start();
  status_->http_listening = true;
  return listen->host;
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
  status_->members = std::make_shared<member_board>();
  // Down until linked: the members the state's majorities count.
  auto& known = state_->known_at_start();
  status_->members->set_known({known.begin(), known.end()});
  opts.board = status_->members;
  opts.on_seeds_tried = [status = status_] { status->cluster_ready = true; };
  opts.wall = clock_;
  opts.clock_warning = std::chrono::duration_cast<std::chrono::milliseconds>(
                         c.keys.leeway)
                       / 2;
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
  if (logout_)
    caf::anon_send_exit(logout_, caf::exit_reason::user_shutdown);
  for (auto& o : objects_)
    caf::anon_send_exit(o, caf::exit_reason::user_shutdown);
  // Its timer would keep it (and the actor system) alive.
  if (secrets_)
    caf::anon_send_exit(secrets_, caf::exit_reason::user_shutdown);
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
