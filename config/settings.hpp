// keymesh's configuration as a plain struct. The in-class initializers are the
// one place defaults live: a default-constructed `settings` is a working
// single node, and config/schema.cpp derives the documented defaults from it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keymesh::config {

struct settings {
  struct node_section {
    std::string data_dir = "./data";
    /// Added to the system clock (tests of a node whose clock runs ahead).
    std::chrono::milliseconds clock_offset{0};
  } node;

  struct http_section {
    std::string listen = "127.0.0.1:8080";
    /// Empty: generate a keys file in data_dir on first start.
    std::string admin_keys_file;
    size_t max_body_bytes = 1024 * 1024;
    size_t max_header_bytes = 16 * 1024;
    size_t max_header_count = 100;
    std::chrono::milliseconds read_timeout = std::chrono::seconds{10};
    std::chrono::milliseconds idle_timeout = std::chrono::seconds{60};
    /// How long a request may wait for an actor's reply.
    std::chrono::milliseconds request_timeout = std::chrono::seconds{5};
    /// 0: one per CPU.
    unsigned threads = 0;
    size_t max_connections = 10000;
  } http;

  struct keys_section {
    /// One of ES256, EdDSA, RS256 (validated by the loader).
    std::string algorithm = "ES256";
    std::chrono::seconds rotate_every = std::chrono::hours{24};
    std::chrono::seconds max_token_ttl = std::chrono::hours{1};
    std::chrono::seconds default_token_ttl = std::chrono::minutes{15};
    std::chrono::seconds leeway = std::chrono::seconds{30};
    std::string issuer;
    std::string audience;
    /// Tokens /api/verify remembers as verified (0: none).
    size_t verify_cache = 10000;
    /// A single node's signing keys are kept, encrypted with the key in
    /// this file, in node.data_dir/signing_keys.sealed; empty: memory only.
    std::string encryption_key_file;
  } keys;

  struct log_section {
    std::string level = "info";
    std::string format = "text";
  } log;

  struct cluster_section {
    bool enabled = false;
    /// "static" or "srv".
    std::string discovery = "static";
    /// http:// or https:// base URLs of the other nodes.
    std::vector<std::string> static_peers;
    std::chrono::seconds refresh_sec = std::chrono::seconds{30};
    /// CA bundle for https static_peers; empty: the system's.
    std::string static_peers_ca;
    /// Accept http:// static peers (warned about at every start).
    bool static_peers_insecure_http = false;
    /// Empty: generated once into data_dir.
    std::string instance_id;
    std::string name = "keymesh";
    /// host:port for node-to-node traffic; empty: not listening.
    std::string listen;
    /// host:port peers dial; empty: listen.
    std::string advertise;
    /// host:port entries.
    std::vector<std::string> seeds;
    std::chrono::milliseconds heartbeat = std::chrono::seconds{1};
    std::chrono::milliseconds failure_timeout = std::chrono::seconds{4};
    bool insecure_plaintext = false;
    /// Bounds on connections to the cluster port: from TCP connect to a
    /// finished handshake, and how many may be in their handshake at once.
    std::chrono::milliseconds handshake_timeout = std::chrono::seconds{5};
    unsigned max_pending_handshakes = 128;

    struct tls_section {
      std::string ca;
      std::string cert;
      std::string key;
      std::string passphrase;
    } tls;

    struct srv_section {
      std::vector<std::string> names;
      std::chrono::milliseconds poll_interval = std::chrono::seconds{30};
      /// IPv4 "host:port" of the DNS server to ask; empty: the system's.
      std::string nameserver;
    } srv;
  } cluster;

  struct state_section {
    /// Fixed for the life of a cluster: every node must use the same.
    unsigned partitions = 64;
    /// "1".."9" or "all".
    std::string replication_factor = "2";
    /// "all", "quorum" or "one".
    std::string write_consistency = "all";
    std::chrono::milliseconds anti_entropy_interval = std::chrono::seconds{10};
    /// Timeout of each request to a peer's shard.
    std::chrono::milliseconds peer_timeout = std::chrono::seconds{2};
  } state;

  struct sessions_section {
    std::chrono::seconds default_ttl = std::chrono::hours{8};
    std::chrono::seconds max_ttl = std::chrono::hours{24 * 30};
    /// 0: sessions never idle out.
    std::chrono::seconds idle_timeout = std::chrono::hours{1};
    size_t max_attribute_bytes = 4 * 1024;
    /// "volatile" (replicated memory) or "durable" (also written through
    /// to the database before each acknowledgement).
    std::string posture = "volatile";
    /// Sessions that end by expiry (absolute or idle) are logged out of
    /// their relying parties too (back-channel logout).
    bool logout_on_expiry = false;
  } sessions;

  struct logout_section {
    /// Send logout tokens to loopback, private and other non-public
    /// addresses too (off: such a client's deliveries fail at once).
    bool allow_private_addresses = false;
    /// Bound on one delivery attempt (connect, TLS, request, answer).
    std::chrono::milliseconds timeout{5000};
    /// A delivery not done this long after its session ended fails.
    std::chrono::seconds give_up_after = std::chrono::hours{1};
    /// Delay before the first retry; it doubles up to retry_max (each
    /// with +-50% jitter).
    std::chrono::milliseconds retry_initial{1000};
    std::chrono::milliseconds retry_max{std::chrono::minutes{5}};
    /// How long a node owns a delivery without renewing; after that
    /// another node takes it over.
    std::chrono::milliseconds lease{std::chrono::seconds{30}};
    /// How often a node looks for deliveries whose owner stopped.
    std::chrono::milliseconds poll_interval{2000};
    /// Deliveries in flight at once on this node.
    size_t workers = 8;
    /// PEM CAs for https receivers; empty: the system's store.
    std::string ca_file;
  } logout;

  struct objects_section {
    /// Lifetime of an object put without a ttl.
    std::chrono::seconds default_ttl = std::chrono::minutes{10};
    /// Longest lifetime an object may ask for.
    std::chrono::seconds max_ttl = std::chrono::hours{24 * 14};
    /// Largest payload of one object.
    size_t max_value_bytes = 64 * 1024;
    /// Tighter caps of particular kinds: "KIND:MAX_TTL:MAX_VALUE_SIZE".
    std::vector<std::string> kinds;
  } objects;

  struct secrets_section {
    /// 256-bit key (keymesh keygen) that seals the cluster's secret rings
    /// in the database; empty: keys.encryption_key_file, else a key
    /// generated once into data_dir on a single node (a cluster without
    /// one keeps its rings in memory only).
    std::string encryption_key_file;
    /// How long a new ring key is installed on every node before any node
    /// signs or seals with it.
    std::chrono::milliseconds install_lead = std::chrono::seconds{30};
    /// How often a node re-reads the rings (changes also arrive at once
    /// over the bus).
    std::chrono::milliseconds refresh_interval = std::chrono::seconds{5};
  } secrets;

  struct dpop_section {
    /// A server nonce holds for its window and the next.
    std::chrono::milliseconds nonce_window = std::chrono::minutes{5};
    /// Age at which the nonce key is replaced.
    std::chrono::seconds rotate_every = std::chrono::hours{24};
  } dpop;

  struct cookies_section {
    /// Age at which a new cookie key takes over sealing.
    std::chrono::seconds rotate_every = std::chrono::hours{24 * 7};
    /// How long a replaced key still opens cookies (the longest cookie's
    /// lifetime).
    std::chrono::seconds overlap = std::chrono::hours{24 * 30};
  } cookies;

  struct auth_section {
    /// scrypt cost of new password hashes: N = 2^scrypt_log2_n.
    unsigned scrypt_log2_n = 15;
    unsigned scrypt_r = 8;
    unsigned scrypt_p = 1;
    /// Threads that hash passwords (0: one per CPU).
    unsigned hash_workers = 0;
    /// Hash jobs that may wait; more are refused (503).
    size_t hash_queue = 1000;
    /// Failed logins of one username within failure_window that lock it.
    unsigned max_failures = 5;
    std::chrono::seconds failure_window = std::chrono::minutes{15};
    /// How long a locked username stays locked.
    std::chrono::seconds lockout = std::chrono::minutes{15};
    /// Lifetime of a refresh token family (capped by its session's).
    std::chrono::seconds refresh_ttl = std::chrono::hours{24 * 14};
  } auth;

  struct database_section {
    /// "sqlite" (one node, data_dir/keymesh.db) or "mysql" (shared).
    std::string driver = "sqlite";
    /// SQLite file; empty: node.data_dir/keymesh.db.
    std::string path;
    std::string host = "127.0.0.1";
    unsigned port = 3306;
    std::string name = "keymesh";
    std::string user = "keymesh";
    /// File holding the password (first line); empty: no password.
    std::string password_file;
    /// Connections, each used by one blocking worker.
    unsigned pool_size = 4;
    /// Jobs waiting for a worker beyond this are refused at once.
    size_t max_queue = 10000;
    std::chrono::milliseconds connect_timeout = std::chrono::seconds{5};
    /// Read and write timeout of each statement (MySQL), busy wait (SQLite).
    std::chrono::milliseconds query_timeout = std::chrono::seconds{10};
    /// How often the database is checked (and reconnected).
    std::chrono::milliseconds health_interval = std::chrono::seconds{1};

    struct tls_section {
      /// "disabled", "required" (encrypted) or "verify" (and the server's
      /// certificate must chain to ca).
      std::string mode = "disabled";
      std::string ca;
      std::string cert;
      std::string key;
    } tls;
  } database;
};

struct host_port {
  /// Without brackets: "[::1]:8080" gives "::1".
  std::string host;
  uint16_t port = 0;
};

/// Parses "127.0.0.1:8080", "[::1]:0" or "localhost:80". Port 0 is accepted
/// (ephemeral); IPv6 hosts need brackets.
std::optional<host_port> parse_host_port(std::string_view text);

/// The iss of the tokens this node issues: keys.issuer, else
/// "urn:keymesh:<cluster.name>", which every node of a cluster agrees on
/// (cluster.name is checked at every link) and which stays the same
/// whatever address a node listens on.
inline std::string issuer_of(const settings& s) {
  return s.keys.issuer.empty() ? "urn:keymesh:" + s.cluster.name
                               : s.keys.issuer;
}

} // namespace keymesh::config
