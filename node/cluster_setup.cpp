#include "node/cluster_setup.hpp"

#include <filesystem>

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <spdlog/spdlog.h>

#include "persistence/data_dir.hpp"

namespace keymesh {

namespace {

std::string tls_copy(const config::settings& cfg, const char* name) {
  return (std::filesystem::path{cfg.node.data_dir} / "tls" / name).string();
}

/// Copies the validated files where CAF reads them, each atomically.
void install_tls_copies(const config::settings& cfg) {
  auto& tls = cfg.cluster.tls;
  auto dir = (std::filesystem::path{cfg.node.data_dir} / "tls").string();
  persistence::ensure_data_dir(cfg.node.data_dir);
  persistence::ensure_data_dir(dir);
  auto key_source = tls.key.empty() ? tls.cert : tls.key;
  persistence::write_file_atomically(tls_copy(cfg, "ca.pem"),
                                     persistence::read_small_file(tls.ca),
                                     0644);
  persistence::write_file_atomically(tls_copy(cfg, "cert.pem"),
                                     persistence::read_small_file(tls.cert),
                                     0644);
  persistence::write_file_atomically(tls_copy(cfg, "key.pem"),
                                     persistence::read_small_file(key_source),
                                     0600);
}

} // namespace

bool cluster_uses_tls(const config::settings& cfg) {
  auto& tls = cfg.cluster.tls;
  return !tls.ca.empty() || !tls.cert.empty() || !tls.key.empty();
}

std::optional<cluster::tls_identity>
load_cluster_identity(const config::settings& cfg) {
  auto& c = cfg.cluster;
  if (c.listen.empty())
    throw std::runtime_error("cluster.enabled needs cluster.listen (the "
                             "host:port this node's cluster endpoint uses)");
  auto listen = config::parse_host_port(c.listen);
  bool wildcard = listen
                  && (listen->host == "0.0.0.0" || listen->host == "::"
                      || listen->host.empty());
  if (wildcard && c.advertise.empty())
    throw std::runtime_error(
      "cluster.listen " + c.listen
      + " is a wildcard: set cluster.advertise to the host:port the other "
        "nodes list in their cluster.seeds");
  if (!cluster_uses_tls(cfg)) {
    if (!c.insecure_plaintext)
      throw std::runtime_error(
        "cluster.enabled needs cluster.tls.ca, cluster.tls.cert and "
        "cluster.tls.key (see keymesh genclust), or cluster.insecure_plaintext: "
        "true to run the cluster without TLS");
    return std::nullopt;
  }
  if (c.tls.ca.empty() || c.tls.cert.empty())
    throw std::runtime_error("cluster TLS needs both cluster.tls.ca and "
                             "cluster.tls.cert (cluster.tls.key may be empty "
                             "when the certificate file also holds the key)");
  try {
    return cluster::tls_identity::load(c.tls.ca, c.tls.cert, c.tls.key,
                                       c.tls.passphrase);
  } catch (const cluster::tls_error& e) {
    throw std::runtime_error(std::string{"cluster TLS: "} + e.what());
  }
}

void prepare_actor_system(caf::actor_system_config& sys_cfg,
                          const config::settings& cfg) {
  if (!cfg.cluster.enabled)
    return;
  auto identity = load_cluster_identity(cfg);
  sys_cfg.load<caf::io::middleman>();
  // Every node sends heartbeats, so that a stopped or cut-off peer is noticed;
  // a link that stays silent past the failure timeout is closed.
  sys_cfg.set("middleman.heartbeat-interval",
              caf::timespan{cfg.cluster.heartbeat});
  sys_cfg.set("middleman.connection-timeout",
              caf::timespan{cfg.cluster.failure_timeout});
  if (!identity) {
    spdlog::warn("cluster links are PLAINTEXT (cluster.insecure_plaintext): "
                 "anyone who can reach cluster.listen can join and read "
                 "cluster traffic");
    return;
  }
  // CAF's OpenSSL module is never loaded: keymesh's own transport runs
  // the TLS links (actors/cluster_transport.hpp).
  install_tls_copies(cfg);
  spdlog::info("cluster TLS: this node is {} (certificate valid until {})",
               identity->common_name(),
               std::chrono::system_clock::to_time_t(identity->not_after()));
}

void install_cluster_tls(const config::settings& cfg) {
  install_tls_copies(cfg);
}

transport_options cluster_transport_options(const config::settings& cfg) {
  transport_options opts;
  if (cluster_uses_tls(cfg)) {
    opts.ca_file = tls_copy(cfg, "ca.pem");
    opts.cert_file = tls_copy(cfg, "cert.pem");
    opts.key_file = tls_copy(cfg, "key.pem");
    opts.passphrase = cfg.cluster.tls.passphrase;
  }
  opts.handshake_timeout = cfg.cluster.handshake_timeout;
  opts.max_pending = cfg.cluster.max_pending_handshakes;
  opts.max_pending_per_address
    = std::max<size_t>(4, cfg.cluster.max_pending_handshakes / 8);
  return opts;
}

} // namespace keymesh
