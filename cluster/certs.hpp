// The certificates behind mutual TLS between cluster nodes: loading and
// validating a node's identity (CA, certificate, key) before CAF's OpenSSL
// layer sees it, verifying peers' certificates and signatures so a peer can
// prove it holds the key of the certificate whose CN is its instance id, and
// issuing a cluster CA and node certificates. OpenSSL 3 EVP/X509 only.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace keymesh::cluster {

/// A certificate or key that cannot be used. The message names the file (or
/// "peer certificate") and the problem; it never contains key material.
struct tls_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A node's TLS identity as loaded from cluster.tls.{ca,cert,key}: validated
/// at start and on reload. Immutable; copies share the loaded objects and may
/// be used from several threads at once.
class tls_identity {
public:
  /// Loads and validates:
  /// - `ca_path`: one or more PEM certificates, the trust anchors;
  /// - `cert_path`: the node certificate (PEM) first, optionally followed by
  ///   intermediate CA certificates and/or the private key (a combined PEM);
  /// - `key_path`: the private key (PEM, encrypted with `passphrase` or not);
  ///   empty or equal to `cert_path` means the key is in the cert file.
  /// Checks that the files exist and parse, the key matches the certificate,
  /// the certificate is within its validity period now, chains to the CA, may
  /// serve as both TLS client and server certificate, and has a CN.
  static tls_identity load(const std::string& ca_path,
                           const std::string& cert_path,
                           const std::string& key_path,
                           const std::string& passphrase = {});

  /// The CN of the node certificate (the node's instance id).
  const std::string& common_name() const;

  /// The node certificate alone (no chain), PEM.
  std::string certificate_pem() const;

  /// Signs `data` with the node key: ECDSA/SHA-256 (DER), RSA PKCS#1
  /// v1.5/SHA-256 or Ed25519, whichever the key is.
  std::string sign(std::string_view data) const;

  /// Verifies a peer's certificate (PEM; the leaf first, intermediates may
  /// follow) against this identity's CA: chain, validity now and TLS usage.
  /// Returns its CN; throws tls_error naming the problem.
  std::string verify_peer_certificate(std::string_view pem) const;

  /// Verifies `signature` over `data` with the public key of the (already
  /// verified) certificate `cert_pem`, as made by sign(). False for any
  /// mismatch or unreadable input; never throws.
  static bool verify_signature(std::string_view cert_pem, std::string_view data,
                               std::string_view signature) noexcept;

  /// End of the node certificate's validity period.
  std::chrono::system_clock::time_point not_after() const;

private:
  struct state;

  explicit tls_identity(std::shared_ptr<const state> loaded);

  std::shared_ptr<const state> state_;
};

/// A certificate and its private key, both PEM (the key unencrypted PKCS#8).
struct issued {
  std::string cert_pem;
  std::string key_pem;
};

/// A self-signed cluster CA with a new P-256 key, valid from five minutes ago
/// for `days` days (<= 0: already expired, for tests). Throws tls_error for a
/// common name that is empty or longer than 64 bytes.
issued make_ca(const std::string& common_name, int days);

/// A node certificate with a new P-256 key, signed by `ca`, usable as TLS
/// client and server certificate, with a subjectAltName entry per item of
/// `ip_or_dns_sans` (IP: for IPv4/IPv6 addresses, DNS: otherwise). Valid from
/// five minutes ago for `days` days (<= 0: already expired, for tests).
/// Throws tls_error for an unusable CA, common name or SAN entry.
issued make_node_cert(const issued& ca, const std::string& common_name,
                      const std::vector<std::string>& ip_or_dns_sans, int days);

} // namespace keymesh::cluster
