#include "config/schema.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <utility>

#include "config/duration.hpp"

namespace keymesh::config {

namespace {

constexpr int64_t kib = 1024;
constexpr int64_t mib = 1024 * kib;
constexpr int64_t second = 1000;
constexpr int64_t minute = 60 * second;
constexpr int64_t hour = 60 * minute;
constexpr int64_t day = 24 * hour;

/// Builds one table row; the chained setters keep the table readable.
class entry {
public:
  entry(std::string name, value_type type, field_ref (*field)(settings&),
        std::string description) {
    spec_.name = std::move(name);
    spec_.type = type;
    spec_.field = field;
    spec_.description = std::move(description);
  }

  entry& range(std::optional<int64_t> min, std::optional<int64_t> max) {
    spec_.min = min;
    spec_.max = max;
    return *this;
  }

  entry& one_of(std::vector<std::string> choices) {
    spec_.choices = std::move(choices);
    return *this;
  }

  entry& secret() {
    spec_.secret = true;
    return *this;
  }

  entry& may_be_empty() {
    spec_.allow_empty = true;
    return *this;
  }

  operator key_spec() const {
    return spec_;
  }

private:
  key_spec spec_;
};

#define KEYMESH_FIELD(member) [](settings& s) -> field_ref { return &s.member; }

std::vector<key_spec> make_table() {
  using t = value_type;
  std::vector<key_spec> table{
      entry("node.data_dir", t::path, KEYMESH_FIELD(node.data_dir),
            "Directory for the instance id, the key-id sequence, the generated "
            "admin key file, the SQLite database and other state. Private "
            "keys stay in memory unless keys.encryption_key_file is set "
            "(then sealed in signing_keys.sealed)."),
      entry("node.clock_offset", t::duration,
            KEYMESH_FIELD(node.clock_offset),
            "Added to the system clock wherever this node reads the time: "
            "for fault tests of a node whose clock runs ahead (peers log a "
            "warning and show the offset in /api/cluster). Keep 0s; fix "
            "clocks with NTP.")
          .range(0, 1 * day),
      entry("http.listen", t::address, KEYMESH_FIELD(http.listen),
            "Address the HTTP API listens on."),
      entry("http.admin_keys_file", t::path,
            KEYMESH_FIELD(http.admin_keys_file),
            "File with the admin API keys; empty: one is generated in "
            "node.data_dir on first start."),
      entry("http.max_body_bytes", t::size, KEYMESH_FIELD(http.max_body_bytes),
            "Largest request body accepted.")
          .range(1 * kib, 64 * mib),
      entry("http.max_header_bytes", t::size,
            KEYMESH_FIELD(http.max_header_bytes),
            "Largest total size of a request's headers.")
          .range(1 * kib, 1 * mib),
      entry("http.max_header_count", t::integer,
            KEYMESH_FIELD(http.max_header_count),
            "Most header fields one request may carry.")
          .range(1, 1000),
      entry("http.read_timeout", t::duration, KEYMESH_FIELD(http.read_timeout),
            "How long one request may take to arrive (also the wait for a "
            "connection's first request, and for writing each response).")
          .range(1, 1 * hour),
      entry("http.idle_timeout", t::duration, KEYMESH_FIELD(http.idle_timeout),
            "How long an idle keep-alive connection stays open.")
          .range(1, 24 * hour),
      entry("http.request_timeout", t::duration,
            KEYMESH_FIELD(http.request_timeout),
            "How long a request may wait for its answer; then it gets a 504 "
            "(a later answer is dropped).")
          .range(1, 10 * minute),
      entry("http.threads", t::integer, KEYMESH_FIELD(http.threads),
            "Threads serving HTTP; 0: one per CPU.")
          .range(0, 64),
      entry("http.max_connections", t::integer,
            KEYMESH_FIELD(http.max_connections),
            "Most open connections; further ones are refused.")
          .range(1, 1'000'000),
      entry("keys.algorithm", t::choice, KEYMESH_FIELD(keys.algorithm),
            "Signature algorithm of newly generated signing keys.")
          .one_of({"ES256", "EdDSA", "RS256"}),
      entry("keys.rotate_every", t::duration, KEYMESH_FIELD(keys.rotate_every),
            "How often a new signing key is generated.")
          .range(1 * second, 365 * day),
      entry("keys.max_token_ttl", t::duration,
            KEYMESH_FIELD(keys.max_token_ttl),
            "Longest lifetime a client may request for a token.")
          .range(1 * second, 30 * day),
      entry("keys.default_token_ttl", t::duration,
            KEYMESH_FIELD(keys.default_token_ttl),
            "Token lifetime when the client asks for none; must not exceed "
            "keys.max_token_ttl.")
          .range(1 * second, 30 * day),
      entry("keys.leeway", t::duration, KEYMESH_FIELD(keys.leeway),
            "Clock skew tolerated when checking exp, nbf and iat.")
          .range(0, 10 * minute),
      entry("keys.issuer", t::string, KEYMESH_FIELD(keys.issuer),
            "Value of the iss claim of issued tokens and of the issuer in "
            "the discovery metadata, and the iss that /api/verify requires "
            "of every token. Empty: urn:keymesh:<cluster.name>, which every "
            "node of a cluster agrees on; /api/verify then requires it of "
            "the cluster's own tokens only (a static peer's tokens carry "
            "their own). Set it to the public https URL of the service for "
            "relying-party libraries that check the metadata's issuer "
            "against the URL they fetched it from."),
      entry("keys.audience", t::string, KEYMESH_FIELD(keys.audience),
            "Default aud claim of issued tokens, and an audience that "
            "/api/verify requires; empty: none, not checked."),
      entry("keys.verify_cache", t::integer, KEYMESH_FIELD(keys.verify_cache),
            "Tokens /api/verify remembers as verified, so that verifying one "
            "again skips its signature check (exp, nbf, iat and revocations "
            "are checked every time; a change of the published keys empties "
            "it); 0: none.")
          .range(0, 10'000'000),
      entry("keys.encryption_key_file", t::path,
            KEYMESH_FIELD(keys.encryption_key_file),
            "File holding a 256-bit key (64 hex digits; make one with "
            "`keymesh keygen`) that a single node (clustering off) seals "
            "its signing keys with, in node.data_dir/signing_keys.sealed "
            "(AES-256-GCM), so tokens it issued keep verifying across a "
            "restart. Empty: the node makes such a key in "
            "node.data_dir/signing_keys.key (mode 0600) on first start; a "
            "key kept apart from the data directory (and its backups) is "
            "better in production. A clustered node keeps its keys in "
            "memory only and refuses this setting."),
      entry("log.level", t::choice, KEYMESH_FIELD(log.level),
            "Least severe log messages written.")
          .one_of(
              {"trace", "debug", "info", "warn", "error", "critical", "off"}),
      entry("log.format", t::choice, KEYMESH_FIELD(log.format),
            "Log line format: human-readable text or one JSON object per line.")
          .one_of({"text", "json"}),
      entry("cluster.enabled", t::boolean, KEYMESH_FIELD(cluster.enabled),
            "Run as part of a cluster; false: a single node."),
      entry("cluster.discovery", t::choice, KEYMESH_FIELD(cluster.discovery),
            "How cluster nodes are found: the addresses in cluster.seeds, or "
            "the DNS SRV records in cluster.srv.names.")
          .one_of({"static", "srv"}),
      entry("cluster.static_peers", t::url_list,
            KEYMESH_FIELD(cluster.static_peers),
            "HTTP(S) base URLs of JWKS servers (keymesh nodes, Stoke, any "
            "server of /api/pkeys?local=true) whose keys are polled and "
            "merged, with or without the cluster mesh."),
      entry("cluster.refresh_sec", t::duration,
            KEYMESH_FIELD(cluster.refresh_sec),
            "How often each of cluster.static_peers is polled.")
          .range(1 * second, 1 * day),
      entry("cluster.static_peers_ca", t::path,
            KEYMESH_FIELD(cluster.static_peers_ca),
            "CA bundle (PEM) that https static_peers must chain to; empty: "
            "the system's trusted CAs."),
      entry("cluster.static_peers_insecure_http", t::boolean,
            KEYMESH_FIELD(cluster.static_peers_insecure_http),
            "Accept static_peers with plain http:// URLs (their keys can be "
            "replaced by anyone on the path; a warning is logged at every "
            "start). Off: only https static peers."),
      entry("cluster.instance_id", t::identifier,
            KEYMESH_FIELD(cluster.instance_id),
            "This node's id in the cluster; empty: generated once into "
            "node.data_dir."),
      entry("cluster.name", t::string, KEYMESH_FIELD(cluster.name),
            "Name of the cluster this node belongs to."),
      entry("cluster.listen", t::address, KEYMESH_FIELD(cluster.listen),
            "Address for node-to-node traffic; empty: not listening.")
          .may_be_empty(),
      entry("cluster.advertise", t::address,
            KEYMESH_FIELD(cluster.advertise),
            "The address other nodes dial to reach this one, as it appears "
            "in their cluster.seeds; empty: cluster.listen. Required when "
            "cluster.listen is a wildcard such as 0.0.0.0.")
          .may_be_empty(),
      entry("cluster.seeds", t::address_list, KEYMESH_FIELD(cluster.seeds),
            "Nodes to contact first when joining."),
      entry("cluster.heartbeat", t::duration, KEYMESH_FIELD(cluster.heartbeat),
            "Interval between heartbeats sent to peers.")
          .range(1, 1 * minute),
      entry("cluster.failure_timeout", t::duration,
            KEYMESH_FIELD(cluster.failure_timeout),
            "Silence after which a peer counts as failed; must exceed "
            "cluster.heartbeat.")
          .range(1, 10 * minute),
      entry("cluster.insecure_plaintext", t::boolean,
            KEYMESH_FIELD(cluster.insecure_plaintext),
            "Allow node-to-node traffic without TLS."),
      entry("cluster.handshake_timeout", t::duration,
            KEYMESH_FIELD(cluster.handshake_timeout),
            "How long a connection to or from the cluster port may take "
            "from TCP connect to a finished TLS and cluster-protocol "
            "handshake; slower ones are closed.")
          .range(100, 1 * minute),
      entry("cluster.max_pending_handshakes", t::integer,
            KEYMESH_FIELD(cluster.max_pending_handshakes),
            "Connections to the cluster port that may be in their handshake "
            "at once (an eighth of it, at least 4, from one address); more "
            "are closed at once.")
          .range(1, 100'000),
      entry("cluster.tls.ca", t::path, KEYMESH_FIELD(cluster.tls.ca),
            "CA certificate (PEM) that peer certificates must chain to."),
      entry("cluster.tls.cert", t::path, KEYMESH_FIELD(cluster.tls.cert),
            "This node's certificate (PEM)."),
      entry("cluster.tls.key", t::path, KEYMESH_FIELD(cluster.tls.key),
            "This node's private key (PEM)."),
      entry("cluster.tls.passphrase", t::string,
            KEYMESH_FIELD(cluster.tls.passphrase),
            "Passphrase of cluster.tls.key if it is encrypted.")
          .secret(),
      entry("cluster.srv.names", t::name_list, KEYMESH_FIELD(cluster.srv.names),
            "DNS SRV names queried for peers when discovery is srv."),
      entry("cluster.srv.poll_interval", t::duration,
            KEYMESH_FIELD(cluster.srv.poll_interval),
            "How often the SRV names are queried.")
          .range(1 * second, 1 * day),
      entry("cluster.srv.nameserver", t::string,
            KEYMESH_FIELD(cluster.srv.nameserver),
            "IPv4 address (with an optional :port) of the DNS server to ask "
            "for the SRV records; empty: the system resolver."),
      entry("state.partitions", t::integer, KEYMESH_FIELD(state.partitions),
            "Number of partitions of the replicated state; must be the same "
            "on every node and cannot change while the cluster holds data.")
          .range(1, 4096),
      entry("state.replication_factor", t::choice,
            KEYMESH_FIELD(state.replication_factor),
            "How many nodes hold each partition (all: every node).")
          .one_of({"1", "2", "3", "4", "5", "6", "7", "8", "9", "all"}),
      entry("state.write_consistency", t::choice,
            KEYMESH_FIELD(state.write_consistency),
            "When a write is acknowledged: once all live owners applied it, "
            "a majority of the owners, or the coordinating owner alone.")
          .one_of({"all", "quorum", "one"}),
      entry("state.anti_entropy_interval", t::duration,
            KEYMESH_FIELD(state.anti_entropy_interval),
            "How often the owners of a partition compare digests and repair "
            "differences.")
          .range(100, 1 * hour),
      entry("state.peer_timeout", t::duration,
            KEYMESH_FIELD(state.peer_timeout),
            "Timeout of each replication, forwarding or transfer request to "
            "another node.")
          .range(10, 1 * minute),
      entry("sessions.default_ttl", t::duration,
            KEYMESH_FIELD(sessions.default_ttl),
            "Absolute lifetime of a session created without a ttl.")
          .range(1 * second, 365 * day),
      entry("sessions.max_ttl", t::duration, KEYMESH_FIELD(sessions.max_ttl),
            "Longest absolute lifetime a session may ask for.")
          .range(1 * second, 365 * day),
      entry("sessions.idle_timeout", t::duration,
            KEYMESH_FIELD(sessions.idle_timeout),
            "A session not touched for this long ends; 0: never.")
          .range(0, 365 * day),
      entry("sessions.max_attribute_bytes", t::size,
            KEYMESH_FIELD(sessions.max_attribute_bytes),
            "Largest total size of a session's attributes (names and "
            "values).")
          .range(64, 64 * kib),
      entry("sessions.posture", t::choice, KEYMESH_FIELD(sessions.posture),
            "volatile: sessions live in the replicated memory of the "
            "cluster; durable: each create and update is also written to "
            "the database before it is acknowledged, and a session memory "
            "lost (a whole-cluster restart) is read back from there. A "
            "cluster needs database.driver mysql for durable.")
          .one_of({"volatile", "durable"}),
      entry("sessions.logout_on_expiry", t::boolean,
            KEYMESH_FIELD(sessions.logout_on_expiry),
            "Send back-channel logout tokens for sessions that end by "
            "expiry (absolute or idle) too, from the node that owns the "
            "session's partition when it purges the session (within about "
            "a second of its end; later with very many records). Off: only "
            "sessions that are ended (deleted, revoked, logged out) are."),
      entry("logout.allow_private_addresses", t::boolean,
            KEYMESH_FIELD(logout.allow_private_addresses),
            "Send back-channel logout tokens to loopback, private, "
            "link-local and other non-public addresses too. Off, a client "
            "whose URI resolves only to such addresses gets none (the "
            "delivery fails at once with bcl.failed)."),
      entry("logout.timeout", t::duration, KEYMESH_FIELD(logout.timeout),
            "Bound on one delivery attempt: resolve, connect, TLS, send "
            "and read the answer.")
          .range(100, 1 * minute),
      entry("logout.give_up_after", t::duration,
            KEYMESH_FIELD(logout.give_up_after),
            "A delivery still not done this long after its session ended "
            "fails (bcl.failed).")
          .range(1 * second, 30 * day),
      entry("logout.retry_initial", t::duration,
            KEYMESH_FIELD(logout.retry_initial),
            "Delay before the first retry of a delivery; each further "
            "retry waits twice as long, up to logout.retry_max, with +-50% "
            "jitter.")
          .range(10, 1 * hour),
      entry("logout.retry_max", t::duration, KEYMESH_FIELD(logout.retry_max),
            "Longest delay between two attempts of a delivery.")
          .range(10, 1 * day),
      entry("logout.lease", t::duration, KEYMESH_FIELD(logout.lease),
            "How long a node owns a delivery without renewing it; a "
            "delivery whose owner stopped (crashed) is taken over by "
            "another node after this.")
          .range(1 * second, 1 * hour),
      entry("logout.poll_interval", t::duration,
            KEYMESH_FIELD(logout.poll_interval),
            "How often a node looks in the outbox for deliveries whose "
            "lease ended.")
          .range(100, 1 * hour),
      entry("logout.workers", t::integer, KEYMESH_FIELD(logout.workers),
            "Deliveries this node sends at once (each blocks one thread "
            "for up to logout.timeout).")
          .range(1, 64),
      entry("logout.ca_file", t::path, KEYMESH_FIELD(logout.ca_file),
            "PEM file of CAs trusted for https back-channel logout URIs; "
            "empty: the system's store."),
      entry("objects.default_ttl", t::duration,
            KEYMESH_FIELD(objects.default_ttl),
            "Lifetime of an object (an OpenID Provider's model) put without "
            "a ttl.")
          .range(1 * second, 365 * day),
      entry("objects.max_ttl", t::duration, KEYMESH_FIELD(objects.max_ttl),
            "Longest lifetime an object may ask for.")
          .range(1 * second, 365 * day),
      entry("objects.max_value_bytes", t::size,
            KEYMESH_FIELD(objects.max_value_bytes),
            "Largest payload of one object.")
          .range(64, 1024 * kib),
      entry("secrets.encryption_key_file", t::path,
            KEYMESH_FIELD(secrets.encryption_key_file),
            "File holding a 256-bit key (64 hex digits; `keymesh keygen`, "
            "or the one `keymesh genclust` writes for every node) that "
            "seals the cluster's secret rings (DPoP nonce keys, cookie "
            "keys) in the database, so that they survive a restart of "
            "every node. Every node of a cluster needs the same. Empty: "
            "keys.encryption_key_file; failing that a single node makes "
            "one in node.data_dir/secrets.key, and a cluster keeps its "
            "rings in memory only."),
      entry("secrets.install_lead", t::duration,
            KEYMESH_FIELD(secrets.install_lead),
            "How long a new ring key is installed on every node (it opens "
            "and verifies) before any node seals or signs with it; at "
            "least twice secrets.refresh_interval, so that a node that "
            "missed the bus event has re-read the ring by then.")
          .range(100, 1 * hour),
      entry("secrets.refresh_interval", t::duration,
            KEYMESH_FIELD(secrets.refresh_interval),
            "How often a node re-reads the secret rings and rotates them "
            "when due (changes also arrive at once over the bus).")
          .range(100, 10 * minute),
      entry("dpop.nonce_window", t::duration,
            KEYMESH_FIELD(dpop.nonce_window),
            "Time window of a DPoP server nonce: a nonce holds for the "
            "window it was made in and the next one.")
          .range(1 * second, 1 * hour),
      entry("dpop.rotate_every", t::duration, KEYMESH_FIELD(dpop.rotate_every),
            "Age at which the DPoP nonce key is replaced.")
          .range(1 * minute, 365 * day),
      entry("cookies.rotate_every", t::duration,
            KEYMESH_FIELD(cookies.rotate_every),
            "Age at which a new cookie key takes over sealing.")
          .range(1 * minute, 365 * day),
      entry("cookies.overlap", t::duration, KEYMESH_FIELD(cookies.overlap),
            "How long a replaced cookie key still opens cookies: the "
            "lifetime of the longest cookie sealed with it.")
          .range(1 * minute, 365 * day),
      entry("objects.kinds", t::kind_limit_list, KEYMESH_FIELD(objects.kinds),
            "Caps of particular object kinds, tighter than objects.max_ttl "
            "and objects.max_value_bytes (an authorization code lives "
            "minutes and is small, a session-bound grant lives longer)."),
      entry("auth.scrypt_log2_n", t::integer, KEYMESH_FIELD(auth.scrypt_log2_n),
            "scrypt cost of new password hashes: N = 2^this (15: 32 MiB "
            "with r = 8; stored hashes keep the cost they were made with).")
          .range(10, 20),
      entry("auth.scrypt_r", t::integer, KEYMESH_FIELD(auth.scrypt_r),
            "scrypt block size r of new password hashes.")
          .range(1, 32),
      entry("auth.scrypt_p", t::integer, KEYMESH_FIELD(auth.scrypt_p),
            "scrypt parallelism p of new password hashes.")
          .range(1, 16),
      entry("auth.hash_workers", t::integer, KEYMESH_FIELD(auth.hash_workers),
            "Threads that hash and check passwords; 0: one per CPU.")
          .range(0, 64),
      entry("auth.hash_queue", t::integer, KEYMESH_FIELD(auth.hash_queue),
            "Password hash jobs that may wait for a thread; more are "
            "refused (503).")
          .range(1, 100'000),
      entry("auth.max_failures", t::integer, KEYMESH_FIELD(auth.max_failures),
            "Failed logins of one username within auth.failure_window that "
            "lock it (counted cluster-wide, for unknown usernames too).")
          .range(1, 1000),
      entry("auth.failure_window", t::duration,
            KEYMESH_FIELD(auth.failure_window),
            "The window in which failed logins are counted.")
          .range(1 * second, 1 * day),
      entry("auth.lockout", t::duration, KEYMESH_FIELD(auth.lockout),
            "How long a locked username stays locked.")
          .range(1 * second, 30 * day),
      entry("auth.refresh_ttl", t::duration, KEYMESH_FIELD(auth.refresh_ttl),
            "Lifetime of a refresh token family, at most its session's.")
          .range(1 * second, 365 * day),
      entry("database.driver", t::choice, KEYMESH_FIELD(database.driver),
            "Where durable state lives: sqlite (a file in the data directory, "
            "for one node) or mysql (MySQL or MariaDB, shared by a cluster).")
          .one_of({"sqlite", "mysql"}),
      entry("database.path", t::path, KEYMESH_FIELD(database.path),
            "The SQLite file; empty: keymesh.db in node.data_dir."),
      entry("database.host", t::string, KEYMESH_FIELD(database.host),
            "MySQL server host name or address."),
      entry("database.port", t::integer, KEYMESH_FIELD(database.port),
            "MySQL server port.")
          .range(1, 65535),
      entry("database.name", t::identifier, KEYMESH_FIELD(database.name),
            "MySQL database (schema) name; it must exist."),
      entry("database.user", t::string, KEYMESH_FIELD(database.user),
            "MySQL user name."),
      entry("database.password_file", t::path,
            KEYMESH_FIELD(database.password_file),
            "File whose first line is the MySQL password; empty: none."),
      entry("database.pool_size", t::integer, KEYMESH_FIELD(database.pool_size),
            "Database connections, each used by one blocking worker thread.")
          .range(1, 64),
      entry("database.max_queue", t::integer, KEYMESH_FIELD(database.max_queue),
            "Database jobs that may wait for a worker; more are refused at "
            "once (503).")
          .range(1, 1'000'000),
      entry("database.connect_timeout", t::duration,
            KEYMESH_FIELD(database.connect_timeout),
            "Timeout of connecting to the database.")
          .range(100, 10 * minute),
      entry("database.query_timeout", t::duration,
            KEYMESH_FIELD(database.query_timeout),
            "Timeout of one statement (MySQL read and write timeouts; how long "
            "SQLite waits for a lock).")
          .range(100, 10 * minute),
      entry("database.health_interval", t::duration,
            KEYMESH_FIELD(database.health_interval),
            "How often the database is checked, and reconnected when it was "
            "lost.")
          .range(100, 10 * minute),
      entry("database.tls.mode", t::choice, KEYMESH_FIELD(database.tls.mode),
            "TLS to MySQL: disabled, required (encrypted), or verify (and the "
            "server certificate must chain to database.tls.ca).")
          .one_of({"disabled", "required", "verify"}),
      entry("database.tls.ca", t::path, KEYMESH_FIELD(database.tls.ca),
            "CA certificate (PEM) for database.tls.mode verify."),
      entry("database.tls.cert", t::path, KEYMESH_FIELD(database.tls.cert),
            "Client certificate (PEM) for MySQL, if the server asks for one."),
      entry("database.tls.key", t::path, KEYMESH_FIELD(database.tls.key),
            "Private key (PEM) of database.tls.cert."),
  };
  const settings defaults{};
  for (auto& spec : table) {
    spec.env_name = env_name_for(spec.name);
    spec.default_text = format_value(spec, defaults);
  }
  return table;
}

#undef KEYMESH_FIELD

field_ref field_of(const key_spec& spec, settings& target) {
  return spec.field(target);
}

std::string format_bound(const key_spec& spec, int64_t bound) {
  if (spec.type == value_type::duration)
    return format_duration(std::chrono::milliseconds{bound});
  if (spec.type == value_type::size)
    return format_size(static_cast<size_t>(bound));
  return std::to_string(bound);
}

std::string bounds_text(const key_spec& spec) {
  if (spec.min && spec.max)
    return " from " + format_bound(spec, *spec.min) + " to " +
           format_bound(spec, *spec.max);
  if (spec.max)
    return " of at most " + format_bound(spec, *spec.max);
  if (spec.min && *spec.min > 0)
    return " of at least " + format_bound(spec, *spec.min);
  return "";
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string result;
  for (const auto& item : items) {
    if (!result.empty())
      result += sep;
    result += item;
  }
  return result;
}

bool equal_ignoring_case(std::string_view lhs, std::string_view rhs) {
  return lhs.size() == rhs.size() &&
         std::equal(lhs.begin(), lhs.end(), rhs.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

bool is_identifier(std::string_view text) {
  if (text.size() > 64)
    return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
           c == '.' || c == '-';
  });
}

/// Checks a number against the bounds and stores it into an integer field.
std::optional<std::string> store_number(const key_spec& spec, field_ref field,
                                        int64_t number) {
  if ((spec.min && number < *spec.min) || (spec.max && number > *spec.max))
    return std::string{"out of range"};
  if (auto ms = std::get_if<std::chrono::milliseconds*>(&field)) {
    **ms = std::chrono::milliseconds{number};
  } else if (auto secs = std::get_if<std::chrono::seconds*>(&field)) {
    if (number % 1000 != 0)
      return std::string{"not a whole number of seconds"};
    **secs = std::chrono::seconds{number / 1000};
  } else if (auto size = std::get_if<size_t*>(&field)) {
    **size = static_cast<size_t>(number);
  } else if (auto count = std::get_if<unsigned*>(&field)) {
    **count = static_cast<unsigned>(number);
  }
  return std::nullopt;
}

/// Checks one item of a list key; returns the problem or nothing.
std::optional<std::string> check_item(value_type type, std::string_view item) {
  switch (type) {
  case value_type::url_list:
    if (!is_base_url(item))
      return "not an http:// or https:// base URL";
    break;
  case value_type::address_list: {
    auto parsed = parse_host_port(item);
    if (!parsed || parsed->port == 0)
      return "not a host:port with a port from 1 to 65535";
    break;
  }
  case value_type::kind_limit_list:
    if (!parse_kind_limit(item))
      return "not KIND:MAX_TTL:MAX_VALUE_SIZE (a kind of A-Z a-z 0-9 _ - ., "
             "a duration from 1s, a size from 64B)";
    break;
  default:
    if (!is_dns_name(item))
      return "not a DNS name";
  }
  return std::nullopt;
}

} // namespace

bool key_spec::is_list() const {
  return type == value_type::url_list || type == value_type::address_list ||
         type == value_type::name_list || type == value_type::kind_limit_list;
}

std::optional<kind_limit> parse_kind_limit(std::string_view item) {
  auto first = item.find(':');
  auto second = first == std::string_view::npos
                  ? std::string_view::npos
                  : item.find(':', first + 1);
  if (second == std::string_view::npos)
    return std::nullopt;
  auto kind = item.substr(0, first);
  if (kind.empty() || !is_identifier(kind))
    return std::nullopt;
  auto ttl = parse_duration(item.substr(first + 1, second - first - 1));
  auto size = parse_size(item.substr(second + 1));
  if (!ttl || *ttl < std::chrono::seconds{1} || !size || *size < 64)
    return std::nullopt;
  return kind_limit{std::string{kind},
                    std::chrono::duration_cast<std::chrono::seconds>(*ttl),
                    *size};
}

bool key_spec::whole_seconds() const {
  settings scratch;
  return std::holds_alternative<std::chrono::seconds*>(field(scratch));
}

const std::vector<key_spec>& schema() {
  static const std::vector<key_spec> table = make_table();
  return table;
}

const key_spec* find_key(std::string_view name) {
  for (const auto& spec : schema())
    if (spec.name == name)
      return &spec;
  return nullptr;
}

const key_spec* find_env(std::string_view env_name) {
  for (const auto& spec : schema())
    if (spec.env_name == env_name)
      return &spec;
  return nullptr;
}

std::string env_name_for(std::string_view name) {
  std::string result = "KEYMESH_";
  for (char c : name)
    result +=
        c == '.'
            ? '_'
            : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return result;
}

bool is_section(std::string_view name) {
  for (const auto& spec : schema())
    if (spec.name.size() > name.size() &&
        spec.name.compare(0, name.size(), name) == 0 &&
        spec.name[name.size()] == '.')
      return true;
  return false;
}

std::vector<std::string> children_of(std::string_view section) {
  std::vector<std::string> result;
  auto prefix = section.empty() ? std::string{} : std::string{section} + '.';
  for (const auto& spec : schema()) {
    if (spec.name.compare(0, prefix.size(), prefix) != 0)
      continue;
    auto dot = spec.name.find('.', prefix.size());
    auto child = spec.name.substr(0, dot);
    if (std::find(result.begin(), result.end(), child) == result.end())
      result.push_back(child);
  }
  return result;
}

std::string type_name(const key_spec& spec) {
  switch (spec.type) {
  case value_type::string:
  case value_type::identifier:
    return "string";
  case value_type::path:
    return "path";
  case value_type::boolean:
    return "bool";
  case value_type::integer:
    return "integer";
  case value_type::duration:
    return "duration";
  case value_type::size:
    return "size";
  case value_type::choice:
    return "enum";
  case value_type::address:
    return "host:port";
  case value_type::url_list:
    return "list of URLs";
  case value_type::address_list:
    return "list of host:port";
  case value_type::name_list:
    return "list of DNS names";
  case value_type::kind_limit_list:
    return "list of KIND:TTL:SIZE";
  }
  return "string";
}

std::string allowed_text(const key_spec& spec) {
  static constexpr std::string_view list_note =
      " (a YAML list, or comma-separated in the environment)";
  switch (spec.type) {
  case value_type::string:
    return "any string";
  case value_type::path:
    return "a file system path";
  case value_type::boolean:
    return "true or false";
  case value_type::integer:
    return "an integer" + bounds_text(spec);
  case value_type::duration:
    return "a duration such as 500ms, 30s, 15m, 24h or 7d (a plain integer "
           "means seconds)" +
           bounds_text(spec) +
           (spec.whole_seconds() ? ", in whole seconds" : "");
  case value_type::size:
    return "a size such as 512B, 16KiB or 1MiB (a plain integer means bytes)" +
           bounds_text(spec);
  case value_type::choice:
    return "one of " + join(spec.choices, ", ");
  case value_type::address:
    return std::string{spec.allow_empty ? "empty, or " : ""} +
           "host:port with a port from 0 to 65535 (0: any free port), "
           "IPv6 in brackets as in [::1]:8080";
  case value_type::identifier:
    return "empty, or 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'";
  case value_type::url_list:
    return "a list of http:// or https:// base URLs" + std::string{list_note};
  case value_type::address_list:
    return "a list of host:port with a port from 1 to 65535" +
           std::string{list_note};
  case value_type::name_list:
    return "a list of DNS names" + std::string{list_note};
  case value_type::kind_limit_list:
    return "a list of KIND:MAX_TTL:MAX_VALUE_SIZE such as "
           "AuthorizationCode:10m:4KiB, each cap at most objects.max_ttl and "
           "objects.max_value_bytes" +
           std::string{list_note};
  }
  return "";
}

std::string format_value(const key_spec& spec, const settings& value) {
  settings copy = value;
  return std::visit(
      [&](auto* field) -> std::string {
        using type = std::decay_t<decltype(*field)>;
        if constexpr (std::is_same_v<type, std::string>)
          return *field;
        else if constexpr (std::is_same_v<type, bool>)
          return *field ? "true" : "false";
        else if constexpr (std::is_same_v<type, std::vector<std::string>>)
          return join(*field, ", ");
        else if constexpr (std::is_same_v<type, std::chrono::milliseconds> ||
                           std::is_same_v<type, std::chrono::seconds>)
          return format_duration(*field);
        else if (spec.type == value_type::size)
          return format_size(*field);
        else
          return std::to_string(*field);
      },
      field_of(spec, copy));
}

std::optional<value_error> assign(const key_spec& spec, settings& target,
                                  std::string_view text) {
  auto fail = [&](std::string problem) {
    return value_error{std::string{text}, std::move(problem)};
  };
  auto field = field_of(spec, target);
  constexpr auto int_max = std::numeric_limits<int64_t>::max();
  switch (spec.type) {
  case value_type::string:
  case value_type::path:
    break;
  case value_type::identifier:
    if (!is_identifier(text))
      return fail("not a valid identifier");
    break;
  case value_type::address:
    if (!(spec.allow_empty && text.empty()) && !parse_host_port(text))
      return fail("not a host:port");
    break;
  case value_type::boolean: {
    auto flag = parse_bool(text);
    if (!flag)
      return fail("not a boolean");
    *std::get<bool*>(field) = *flag;
    return std::nullopt;
  }
  case value_type::choice: {
    for (const auto& choice : spec.choices) {
      if (equal_ignoring_case(choice, text)) {
        *std::get<std::string*>(field) = choice;
        return std::nullopt;
      }
    }
    return fail("not an allowed value");
  }
  case value_type::integer:
  case value_type::duration:
  case value_type::size: {
    std::optional<int64_t> number;
    if (spec.type == value_type::integer) {
      if (auto parsed = parse_unsigned(text); parsed && *parsed <= int_max)
        number = static_cast<int64_t>(*parsed);
      else if (!text.empty() && text.front() == '-' &&
               parse_unsigned(text.substr(1)))
        return fail("out of range");
    } else if (spec.type == value_type::duration) {
      if (auto parsed = parse_duration(text))
        number = parsed->count();
    } else if (auto parsed = parse_size(text); parsed && *parsed <= int_max) {
      number = static_cast<int64_t>(*parsed);
    }
    if (!number)
      return fail(spec.type == value_type::integer    ? "not an integer"
                  : spec.type == value_type::duration ? "not a duration"
                                                      : "not a size");
    if (auto problem = store_number(spec, field, *number))
      return fail(std::move(*problem));
    return std::nullopt;
  }
  case value_type::url_list:
  case value_type::address_list:
  case value_type::name_list:
  case value_type::kind_limit_list:
    return fail("a list was expected");
  }
  *std::get<std::string*>(field) = std::string{text};
  return std::nullopt;
}

std::optional<value_error> assign_list(const key_spec& spec, settings& target,
                                       const std::vector<std::string>& items) {
  if (!spec.is_list())
    return value_error{join(items, ", "), "a single value was expected"};
  for (const auto& item : items)
    if (auto problem = check_item(spec.type, item))
      return value_error{item, std::move(*problem)};
  *std::get<std::vector<std::string>*>(field_of(spec, target)) = items;
  return std::nullopt;
}

} // namespace keymesh::config
