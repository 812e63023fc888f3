// `keymesh genclust`: generates everything a local test cluster needs — a
// cluster CA, one certificate and key per node, and one keymesh.yaml per node
// that points at them — so that N nodes can be started with mutual TLS at
// once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace keymesh::cluster {

struct genclust_options {
  /// 1 to 64.
  size_t nodes = 3;
  /// Created if missing.
  std::string out_dir;
  std::string cluster_name = "keymesh";
  /// Address (IPv4, IPv6 or DNS name) the nodes listen on and reach each
  /// other at; also the certificates' subjectAltName. Not a wildcard.
  std::string host = "127.0.0.1";
  uint16_t http_base_port = 8081;
  uint16_t cluster_base_port = 7401;
  /// Validity of the CA and node certificates.
  int days = 825;
  /// Overwrite files that exist; otherwise an existing file is an error and
  /// nothing is written.
  bool force = false;
};

/// Writes OUT/ca.pem, OUT/ca.key (0600; keep it offline: it signs new nodes),
/// and for i in 1..N OUT/node-i/cert.pem, OUT/node-i/key.pem (0600) and
/// OUT/node-i/keymesh.yaml. Node i has instance id and certificate CN
/// "node-i", http.listen host:(http_base_port+i-1), cluster.listen
/// host:(cluster_base_port+i-1), cluster.seeds every node's cluster address,
/// node.data_dir OUT/node-i/data, and cluster.tls.{ca,cert,key}; all paths are
/// absolute. Returns the files written, in that order. Throws tls_error or
/// std::runtime_error with a message that names the problem.
std::vector<std::string> genclust(const genclust_options& opts);

} // namespace keymesh::cluster
