#include "actors/node.hpp"

#include <thread>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/keystore.hpp"
#include "http/admin_auth.hpp"
#include "http/api.hpp"
#include "http/bridge.hpp"
#include "http/server.hpp"
#include "persistence/data_dir.hpp"

namespace keymesh {

namespace {

unsigned resolve_threads(unsigned configured) {
  if (configured > 0)
    return configured;
  return std::max(1u, std::thread::hardware_concurrency());
}

/// Waits until the federation published its first snapshot; gives up at
/// once when an actor the node needs has terminated.
void await_first_keys(const key_snapshot_slot& slot,
                      const http::node_status& status,
                      std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!slot.load()) {
    if (!status.actors_alive.load())
      throw std::runtime_error("the key actors stopped before the first key "
                               "was published: see the errors above");
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("no signing key after "
                               + std::to_string(limit.count())
                               + " s: see the keystore errors above");
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
}

/// Calls FUN when the actor terminates unexpectedly: readiness fails and the
/// log says why.
void watch(const caf::strong_actor_ptr& actor, std::string name,
           std::shared_ptr<http::node_status> status) {
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
  if (c.cluster.enabled || !c.cluster.static_peers.empty()
      || !c.cluster.seeds.empty() || !c.cluster.listen.empty())
    spdlog::warn("cluster settings are set, but this build runs single nodes "
                 "only: they are validated and otherwise ignored");
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
  self->status_ = std::make_shared<http::node_status>();
  self->status_->instance_id = self->instance_id_;
  self->status_->started_at = clock();
  // Actors: the federation first, so the keystore's first announcement has
  // somewhere to go.
  self->keys_ = std::make_shared<key_snapshot_slot>();
  self->federation_ = spawn_federation(sys, self->instance_id_, self->keys_,
                                       clock);
  auto opts = keystore_options::from_settings(c, self->instance_id_);
  if (!opts)
    throw std::runtime_error(sys.render(opts.error()));
  opts->clock = clock;
  opts->first_sequence = persistence::read_key_sequence(c.node.data_dir);
  opts->persist_sequence = [dir = c.node.data_dir](uint64_t n) {
    persistence::write_key_sequence(dir, n);
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
  await_first_keys(*self->keys_, *self->status_, std::chrono::seconds{60});
  // HTTP front.
  auto threads = resolve_threads(c.http.threads);
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
  self->api_ = std::make_unique<http::api>(std::move(ctx));
  http::server_limits limits;
  limits.max_body_bytes = c.http.max_body_bytes;
  limits.max_header_bytes = c.http.max_header_bytes;
  limits.max_header_count = c.http.max_header_count;
  limits.max_connections = c.http.max_connections;
  limits.read_timeout = c.http.read_timeout;
  limits.idle_timeout = c.http.idle_timeout;
  self->server_ = std::make_unique<http::server>(*self->api_, limits, threads);
  auto listen = config::parse_host_port(c.http.listen);
  if (!listen)
    throw std::runtime_error("http.listen: not a host:port: " + c.http.listen);
  self->http_port_ = self->server_->listen(listen->host, listen->port);
  self->server_->start();
  self->status_->http_listening = true;
  spdlog::info("keymesh node {} ready: http://{}:{} ({} keys, {} HTTP "
               "threads)",
               self->instance_id_, listen->host, self->http_port_,
               jose::to_string(*jose::parse_algorithm(c.keys.algorithm)),
               threads);
  return self;
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
  if (keystore_)
    caf::anon_send_exit(keystore_, caf::exit_reason::user_shutdown);
  if (federation_)
    caf::anon_send_exit(federation_, caf::exit_reason::user_shutdown);
}

} // namespace keymesh
