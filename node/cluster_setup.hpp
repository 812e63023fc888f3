// Cluster set-up around the actor system: loads CAF's network modules and
// configures them from the cluster.* settings (heartbeats; mutual TLS with
// validated copies of the certificate files), and reloads those files on
// SIGHUP. CAF reads the certificate files for every new connection and
// aborts on a bad one, so it only ever sees copies that passed validation.
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "actors/cluster_transport.hpp"
#include "cluster/certs.hpp"
#include "config/settings.hpp"

namespace keymesh {

/// Whether the cluster links use TLS (cluster.tls.* set).
bool cluster_uses_tls(const config::settings& cfg);

/// The address peers dial: cluster.advertise, else cluster.listen.
inline const std::string& cluster_address(const config::settings& cfg) {
  return cfg.cluster.advertise.empty() ? cfg.cluster.listen
                                       : cfg.cluster.advertise;
}

/// Checks the cluster settings that only matter when clustering is on and
/// loads the node's TLS identity; throws std::runtime_error naming the
/// problem. Returns nullopt in plaintext mode.
std::optional<cluster::tls_identity>
load_cluster_identity(const config::settings& cfg);

/// Call before constructing the actor system when cluster.enabled: loads
/// the middleman (and the OpenSSL module), sets heartbeat and connection
/// timeout, and points CAF at validated copies of the TLS files in
/// node.data_dir/tls. Throws std::runtime_error naming the problem.
void prepare_actor_system(caf::actor_system_config& sys_cfg,
                          const config::settings& cfg);

/// The cluster transport's options: the validated copies of the TLS files
/// (none in plaintext), the handshake timeout and the caps.
transport_options cluster_transport_options(const config::settings& cfg);

/// Replaces the copies of the TLS files that CAF reads for new connections.
/// Call only after load_cluster_identity accepted the files (SIGHUP: see
/// node::reload_cluster_tls). Throws on I/O errors.
void install_cluster_tls(const config::settings& cfg);

} // namespace keymesh
