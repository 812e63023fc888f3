#include "http/metrics.hpp"

#include <algorithm>
#include <cstdio>

#include "actors/federation.hpp"
#include "state/deny_set.hpp"

namespace keymesh::http {

namespace {

constexpr jose::verify_reason all_reasons[]
  = {jose::verify_reason::ok,           jose::verify_reason::expired,
     jose::verify_reason::not_yet_valid, jose::verify_reason::bad_signature,
     jose::verify_reason::unknown_kid,  jose::verify_reason::malformed,
     jose::verify_reason::wrong_issuer, jose::verify_reason::wrong_audience,
     jose::verify_reason::alg_not_allowed};

uint64_t load(const std::atomic<uint64_t>& x) {
  return x.load(std::memory_order_relaxed);
}

void bump(std::atomic<uint64_t>& x, uint64_t n = 1) {
  x.fetch_add(n, std::memory_order_relaxed);
}

std::string format_double(double x) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", x);
  return buf;
}

/// A label value in the exposition format: backslash, double quote and
/// newline escaped.
std::string label_value(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::string& out, const char* name, const char* type,
            const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

/// HELP, TYPE and one unlabelled sample.
void metric_line(std::string& out, const char* name, const char* type,
                 const char* help, uint64_t value) {
  header(out, name, type, help);
  out += name;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

} // namespace

metrics::metrics(std::vector<std::string> routes)
  : routes_(std::move(routes)), stats_(new route_stats[routes_.size()]) {
  static_assert(std::size(all_reasons) == std::tuple_size_v<decltype(verified_)>);
}

void metrics::observe_request(size_t route, unsigned status,
                              std::chrono::nanoseconds latency) {
  if (route >= routes_.size())
    route = routes_.size() - 1;
  auto& s = stats_[route];
  size_t slot = statuses.size();
  for (size_t i = 0; i < statuses.size(); ++i)
    if (statuses[i] == status) {
      slot = i;
      break;
    }
  bump(s.by_status[slot]);
  auto seconds = std::chrono::duration<double>(latency).count();
  size_t bucket = latency_buckets.size();
  for (size_t i = 0; i < latency_buckets.size(); ++i)
    if (seconds <= latency_buckets[i]) {
      bucket = i;
      break;
    }
  bump(s.buckets[bucket]);
  bump(s.latency_ns_sum, static_cast<uint64_t>(latency.count()));
  bump(s.count);
}

void metrics::count_signed(bool ok) {
  bump(ok ? signed_ok_ : signed_failed_);
}

void metrics::count_verified(jose::verify_reason reason) {
  bump(verified_[static_cast<size_t>(reason)]);
}

void metrics::count_refused(refusal why) {
  bump(refused_[static_cast<size_t>(why)]);
}

std::string render_readiness_metrics(const readiness& r) {
  std::string out;
  header(out, "keymesh_ready", "gauge",
         "1 when GET /healthz/ready answers 200, else 0.");
  out += "keymesh_ready ";
  out += r.ready() ? "1\n" : "0\n";
  header(out, "keymesh_ready_check", "gauge",
         "Each readiness check of GET /healthz/ready: 1 passed, 0 not yet or "
         "no longer.");
  for (auto& [name, ok] : r.checks()) {
    out += "keymesh_ready_check{check=\"";
    out += name;
    out += ok ? "\"} 1\n" : "\"} 0\n";
  }
  return out;
}

std::string render_member_metrics(const member_board& board) {
  static constexpr std::array<const char*, 3> states = {"up", "suspect", "down"};
  auto members = board.read();
  std::string out;
  header(out, "keymesh_cluster_members", "gauge",
         "The other cluster members this node knows, by state.");
  for (auto* state : states) {
    auto n = std::count_if(members.begin(), members.end(),
                           [&](auto& m) { return m.second == state; });
    out += "keymesh_cluster_members{state=\"";
    out += state;
    out += "\"} " + std::to_string(n) + '\n';
  }
  header(out, "keymesh_cluster_member_up", "gauge",
         "1 when this node sees the member up, 0 when suspect or down.");
  for (auto& [id, state] : members) {
    out += "keymesh_cluster_member_up{member=\"" + label_value(id) + "\"} ";
    out += state == "up" ? "1\n" : "0\n";
  }
  return out;
}

std::string render_revocation_metrics(const revocation_stats& s) {
  std::string out;
  header(out, "keymesh_revocations_total", "counter",
         "Revocations this node carried out, by what they name and their "
         "outcome: complete, partial (members unreached), log_failed (not "
         "in the revocation log).");
  for (size_t k = 0; k < s.counts.size(); ++k)
    for (size_t o = 0; o < revocation_stats::outcome_names.size(); ++o) {
      out += "keymesh_revocations_total{kind=\"";
      out += state::to_string(static_cast<state::deny_kind>(k));
      out += "\",outcome=\"";
      out += revocation_stats::outcome_names[o];
      out += "\"} " + std::to_string(s.counts[k][o].load()) + '\n';
    }
  return out;
}

std::string metrics::render(const key_snapshot* snapshot,
                            time_point started_at, time_point now) const {
  std::string out;
  out.reserve(8192);
  header(out, "keymesh_http_requests_total", "counter",
         "HTTP requests by route and status.");
  for (size_t r = 0; r < routes_.size(); ++r)
    for (size_t i = 0; i < status_slots; ++i) {
      auto n = load(stats_[r].by_status[i]);
      if (n == 0)
        continue;
      auto status = i < statuses.size() ? std::to_string(statuses[i])
                                        : std::string{"other"};
      out += "keymesh_http_requests_total{route=\"" + routes_[r]
             + "\",status=\"" + status + "\"} " + std::to_string(n) + '\n';
    }
  header(out, "keymesh_http_request_duration_seconds", "histogram",
         "Time from a parsed request to its response, by route.");
  for (size_t r = 0; r < routes_.size(); ++r) {
    auto& s = stats_[r];
    auto count = load(s.count);
    if (count == 0)
      continue;
    auto label = "route=\"" + routes_[r] + "\"";
    uint64_t cumulative = 0;
    for (size_t b = 0; b < bucket_slots; ++b) {
      cumulative += load(s.buckets[b]);
      auto le = b < latency_buckets.size() ? format_double(latency_buckets[b])
                                           : std::string{"+Inf"};
      out += "keymesh_http_request_duration_seconds_bucket{" + label
             + ",le=\"" + le + "\"} " + std::to_string(cumulative) + '\n';
    }
    out += "keymesh_http_request_duration_seconds_sum{" + label + "} "
           + format_double(static_cast<double>(load(s.latency_ns_sum)) / 1e9)
           + '\n';
    out += "keymesh_http_request_duration_seconds_count{" + label + "} "
           + std::to_string(cumulative) + '\n';
  }
  header(out, "keymesh_tokens_signed_total", "counter",
         "Tokens signed, by result.");
  out += "keymesh_tokens_signed_total{result=\"ok\"} "
         + std::to_string(load(signed_ok_)) + '\n';
  out += "keymesh_tokens_signed_total{result=\"error\"} "
         + std::to_string(load(signed_failed_)) + '\n';
  header(out, "keymesh_tokens_verified_total", "counter",
         "Tokens verified, by result (ok or the reason for rejection).");
  for (auto reason : all_reasons)
    out += "keymesh_tokens_verified_total{result=\""
           + std::string{jose::to_string(reason)} + "\"} "
           + std::to_string(load(verified_[static_cast<size_t>(reason)]))
           + '\n';
  header(out, "keymesh_keys_published", "gauge",
         "Public keys in the served JWKS, by origin.");
  auto total = snapshot ? snapshot->key_count : 0;
  auto local = snapshot ? snapshot->local_key_count : 0;
  out += "keymesh_keys_published{origin=\"local\"} " + std::to_string(local)
         + '\n';
  out += "keymesh_keys_published{origin=\"peers\"} "
         + std::to_string(total - local) + '\n';
  header(out, "keymesh_static_peer_keys_refused_total", "counter",
         "Keys of static peers refused because they named a key id of this "
         "node or a cluster member, or one in their namespace (each peer "
         "and key id once).");
  out += "keymesh_static_peer_keys_refused_total "
         + std::to_string(snapshot ? snapshot->shadowing_refused : 0) + '\n';
  header(out, "keymesh_http_refused_total", "counter",
         "Back-pressure: connections closed at once over "
         "http.max_connections, and requests answered 503 overloaded "
         "because a queue was full.");
  out += "keymesh_http_refused_total{reason=\"connections\"} "
         + std::to_string(refused_[0].load()) + '\n';
  out += "keymesh_http_refused_total{reason=\"overloaded\"} "
         + std::to_string(refused_[1].load()) + '\n';
  header(out, "keymesh_uptime_seconds", "gauge",
         "Seconds since this node started.");
  out += "keymesh_uptime_seconds "
         + format_double(std::chrono::duration<double>(now - started_at).count())
         + '\n';
  return out;
}

std::string render_verify_cache_metrics(const jose::verify_cache& cache) {
  std::string out;
  header(out, "keymesh_verify_cache_entries", "gauge",
         "Tokens /api/verify remembers as verified (keys.verify_cache).");
  out += "keymesh_verify_cache_entries " + std::to_string(cache.size()) + '\n';
  header(out, "keymesh_verify_cache_hits_total", "counter",
         "Verifications answered from the cache, without a signature check.");
  out += "keymesh_verify_cache_hits_total " + std::to_string(cache.hits())
         + '\n';
  return out;
}

std::string render_transport_metrics(const transport_stats& s) {
  std::string out;
  auto line = [&](const char* name, const char* type, const char* help,
                  uint64_t value) { metric_line(out, name, type, help, value); };
  line("keymesh_cluster_connections_accepted_total", "counter",
       "TCP connections accepted on the cluster port.", s.accepted.load());
  line("keymesh_cluster_links_established_total", "counter",
       "Connections (accepted or dialled) that completed the TLS and BASP "
       "handshakes.",
       s.established.load());
  line("keymesh_cluster_pending_handshakes", "gauge",
       "Accepted connections in their TLS handshake now.", s.pending.load());
  line("keymesh_cluster_handshake_timeouts_total", "counter",
       "Connections closed because their handshake took longer than "
       "cluster.handshake_timeout.",
       s.handshake_timeouts.load());
  line("keymesh_cluster_handshake_failures_total", "counter",
       "TLS handshakes that failed (no or a foreign certificate, garbage, "
       "a peer that hung up).",
       s.handshake_failures.load());
  line("keymesh_cluster_handshakes_over_capacity_total", "counter",
       "Connections closed at once because cluster.max_pending_handshakes "
       "(or its share for one address) were pending.",
       s.over_capacity.load());
  line("keymesh_cluster_refused_messages_total", "counter",
       "Links closed because the peer sent a message the transport refuses "
       "(routed, anonymous, by name, or to an actor not exposed).",
       s.refused_messages.load());
  return out;
}

std::string render_logout_metrics(const logout_stats& s) {
  std::string out;
  header(out, "keymesh_bcl_deliveries_total", "counter",
         "Back-channel logout deliveries that ended, by outcome (delivered: "
         "200 or 204; failed: a final answer, a refused address, or given "
         "up; skipped: the client has no registered URI).");
  auto outcome = [&](const char* name, const std::atomic<uint64_t>& n) {
    out += "keymesh_bcl_deliveries_total{outcome=\"";
    out += name;
    out += "\"} " + std::to_string(n.load()) + '\n';
  };
  outcome("delivered", s.delivered);
  outcome("failed", s.failed);
  outcome("skipped", s.skipped);
  auto line = [&](const char* name, const char* type, const char* help,
                  uint64_t value) { metric_line(out, name, type, help, value); };
  line("keymesh_bcl_no_sessions_for_subject_total", "counter",
       "Subject revocations that found no session whose relying parties "
       "could be told.",
       s.no_sessions.load());
  line("keymesh_bcl_attempts_total", "counter",
       "Logout tokens POSTed (every attempt of every delivery).",
       s.attempts.load());
  line("keymesh_bcl_taken_over_total", "counter",
       "Deliveries this node took over from a node that stopped renewing "
       "its lease.",
       s.taken_over.load());
  line("keymesh_bcl_pending", "gauge",
       "Deliveries this node holds now (queued, in flight or waiting to be "
       "retried).",
       static_cast<uint64_t>(std::max<int64_t>(0, s.pending.load())));
  return out;
}

std::string render_store_metrics(const store_status& s) {
  std::string out;
  auto line = [&](const char* name, const char* type, const char* help,
                  uint64_t value) { metric_line(out, name, type, help, value); };
  header(out, "keymesh_database_up", "gauge",
         "1 when the last check or call reached the database.");
  out += "keymesh_database_up{backend=\"" + s.backend + "\"} "
         + (s.healthy.load() ? "1" : "0") + '\n';
  line("keymesh_database_jobs_total", "counter",
       "Database jobs the pool ran.", s.jobs.load());
  line("keymesh_database_failures_total", "counter",
       "Database jobs that failed (no connection, or the statement).",
       s.failures.load());
  line("keymesh_database_refused_total", "counter",
       "Database jobs refused because database.max_queue were waiting.",
       s.refused.load());
  line("keymesh_database_queued", "gauge",
       "Database jobs submitted and not finished.", s.queued.load());
  header(out, "keymesh_database_busy_seconds_total", "counter",
         "Time the pool's workers spent on jobs.");
  out += "keymesh_database_busy_seconds_total "
         + format_double(static_cast<double>(s.busy_ns.load()) / 1e9) + '\n';
  line("keymesh_revocation_log_loaded", "gauge",
       "Revocations loaded from the log at start.",
       s.revocations_loaded.load());
  line("keymesh_revocation_log_pruned_total", "counter",
       "Ended revocations deleted from the log.",
       s.revocations_pruned.load());
  line("keymesh_durable_session_rows_total", "counter",
       "Durable session rows written (sessions.posture: durable).",
       s.session_rows.load());
  line("keymesh_durable_session_batches_total", "counter",
       "Statements that wrote them (several rows share one commit).",
       s.session_batches.load());
  line("keymesh_durable_sessions_recovered_total", "counter",
       "Sessions read back from the database after memory lost them.",
       s.sessions_recovered.load());
  line("keymesh_durable_sessions_pruned_total", "counter",
       "Ended durable sessions deleted from the database.",
       s.sessions_pruned.load());
  return out;
}

std::string render_state_metrics(const state_metrics& m, size_t denied) {
  std::string out;
  auto totals = m.totals();
  header(out, "keymesh_state_records", "gauge",
         "Records held on this node (all copies it owns), by keyspace.");
  for (auto& [keyspace, s] : totals)
    out += "keymesh_state_records{keyspace=\"" + keyspace + "\"} "
           + std::to_string(s.records) + '\n';
  header(out, "keymesh_state_tombstones", "gauge",
         "Tombstones (deleted or revoked records) held, by keyspace.");
  for (auto& [keyspace, s] : totals)
    out += "keymesh_state_tombstones{keyspace=\"" + keyspace + "\"} "
           + std::to_string(s.tombstones) + '\n';
  header(out, "keymesh_state_bytes", "gauge",
         "Key and value bytes held, by keyspace (without overhead).");
  for (auto& [keyspace, s] : totals)
    out += "keymesh_state_bytes{keyspace=\"" + keyspace + "\"} "
           + std::to_string(s.bytes) + '\n';
  auto counter = [&](const char* name, const char* help,
                     const std::atomic<uint64_t>& value) {
    header(out, name, "counter", help);
    out += name;
    out += ' ' + std::to_string(value.load(std::memory_order_relaxed)) + '\n';
  };
  counter("keymesh_state_handoffs_total",
          "Partitions this node pulled after an ownership change.", m.handoffs);
  counter("keymesh_state_handoff_records_total",
          "Records received in handoffs.", m.handoff_records);
  counter("keymesh_state_handoff_failures_total",
          "Handoffs that did not complete (served anyway, repaired later).",
          m.handoff_failures);
  counter("keymesh_state_anti_entropy_rounds_total",
          "Anti-entropy rounds started (one per partition and interval).",
          m.anti_entropy_rounds);
  counter("keymesh_state_anti_entropy_repairs_total",
          "Records anti-entropy brought in that this node lacked.",
          m.anti_entropy_repairs);
  counter("keymesh_state_replication_cutoffs_total",
          "Replications skipped because a peer had too many in flight.",
          m.replication_cutoffs);
  counter("keymesh_state_replication_failures_total",
          "Replication requests that failed or timed out.",
          m.replication_failures);
  counter("keymesh_state_forwarded_total",
          "Operations forwarded to the owner of their partition.",
          m.forwarded);
  counter("keymesh_state_purged_total", "Expired records removed.",
          m.purged);
  counter("keymesh_state_decisions_fenced_total",
          "Decisions (consumes, creates if absent, compare-and-sets) this "
          "node refused to make: minority view, too few owners, not joined.",
          m.decisions_fenced);
  counter("keymesh_state_decisions_outdated_total",
          "Decisions another owner refused with a newer copy.",
          m.decisions_outdated);
  header(out, "keymesh_deny_set_entries", "gauge",
         "Revoked sids, subjects and token ids this node enforces.");
  out += "keymesh_deny_set_entries " + std::to_string(denied) + '\n';
  return out;
}

} // namespace keymesh::http
