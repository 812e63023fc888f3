#include "actors/membership.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/error.hpp"
#include "common/digest.hpp"
#include "config/duration.hpp"
#include "common/random.hpp"

namespace keymesh {

namespace {

using steady = std::chrono::steady_clock;

const char* to_text(membership_state::state s) {
  switch (s) {
    case membership_state::state::up:
      return "up";
    case membership_state::state::suspect:
      return "suspect";
    case membership_state::state::down:
      return "down";
  }
  return "down";
}

std::map<std::string, std::string> as_map(const std::vector<std::string>& kv) {
  std::map<std::string, std::string> out;
  for (auto& line : kv) {
    auto eq = line.find('=');
    out[line.substr(0, eq)] = eq == std::string::npos ? "" : line.substr(eq + 1);
  }
  return out;
}

} // namespace

std::vector<std::string> shared_settings(const config::settings& cfg) {
  using config::format_duration;
  auto ms = [](auto d) {
    return format_duration(
      std::chrono::duration_cast<std::chrono::milliseconds>(d));
  };
  return {
    "keys.algorithm=" + cfg.keys.algorithm,
    "keys.rotate_every=" + ms(cfg.keys.rotate_every),
    "keys.max_token_ttl=" + ms(cfg.keys.max_token_ttl),
    "keys.default_token_ttl=" + ms(cfg.keys.default_token_ttl),
    "keys.leeway=" + ms(cfg.keys.leeway),
    "keys.issuer=" + config::issuer_of(cfg),
    "keys.audience=" + cfg.keys.audience,
    "state.partitions=" + std::to_string(cfg.state.partitions),
    "state.replication_factor=" + cfg.state.replication_factor,
    "state.write_consistency=" + cfg.state.write_consistency,
    "sessions.max_ttl=" + ms(cfg.sessions.max_ttl),
  };
}

std::string settings_fingerprint(const std::vector<std::string>& settings) {
  std::string text;
  for (auto& line : settings) {
    text += line;
    text += '\n';
  }
  return to_hex(sha256(text));
}

std::string settings_difference(const std::vector<std::string>& here,
                                const std::vector<std::string>& there) {
  auto a = as_map(here);
  auto b = as_map(there);
  std::string out;
  auto note = [&](const std::string& key, const std::string& mine,
                  const std::string& theirs) {
    if (!out.empty())
      out += "; ";
    out += key + ": \"" + mine + "\" here, \"" + theirs + "\" there";
  };
  for (auto& [key, value] : a) {
    auto i = b.find(key);
    if (i == b.end())
      note(key, value, "(not set)");
    else if (i->second != value)
      note(key, value, i->second);
  }
  for (auto& [key, value] : b)
    if (a.count(key) == 0)
      note(key, "(not set)", value);
  return out;
}

// -- state ----------------------------------------------------------------------

void membership_state::configure(membership_options opts) {
  opts_ = std::move(opts);
  if (opts_.random_seed != 0)
    rng.seed(opts_.random_seed);
  auto now = this->now();
  for (auto& seed : opts_.seeds)
    learn(seed, true, now);
}

void membership_state::learn(const std::string& address, bool is_seed,
                             steady::time_point now) {
  if (address.empty())
    return;
  auto [i, added] = addresses.try_emplace(address);
  auto& e = i->second;
  if (added) {
    e.is_self = address == opts_.address;
    e.next_attempt = now;
    e.unlinked_since = now;
  }
  e.is_seed = e.is_seed || is_seed;
}

std::vector<std::string> membership_state::judge(monotonic_time now) {
  std::vector<std::string> silent;
  bool changed = false;
  auto down_after = opts_.failure_timeout > 2 * opts_.heartbeat
                      ? opts_.failure_timeout - opts_.heartbeat
                      : opts_.failure_timeout;
  for (auto& [id, m] : members) {
    if (m.st == state::down)
      continue;
    auto quiet = now - m.last_heard;
    if (quiet > down_after) {
      silent.push_back(id);
      continue;
    }
    if (quiet > 2 * opts_.heartbeat && m.st == state::up) {
      m.st = state::suspect;
      m.since = opts_.wall();
      spdlog::info("membership: peer {} is suspect (silent for {} ms)", id,
                   std::chrono::duration_cast<std::chrono::milliseconds>(quiet)
                     .count());
      changed = true;
    }
  }
  if (changed)
    publish();
  return silent;
}

void membership_state::publish() const {
  if (!opts_.board)
    return;
  member_board::entries out;
  out.reserve(members.size());
  for (auto& [id, m] : members)
    out.emplace_back(id, to_text(m.st));
  opts_.board->publish(std::move(out));
}

bool membership_state::heard(const std::string& id, monotonic_time sent,
                             monotonic_time now) {
  auto i = members.find(id);
  if (i == members.end() || i->second.st == state::down)
    return false;
  auto& peer = i->second;
  peer.last_heard = now;
  peer.rtt = std::chrono::duration_cast<std::chrono::microseconds>(now - sent);
  if (peer.st == state::suspect) {
    peer.st = state::up;
    peer.since = opts_.wall();
    publish();
  }
  return true;
}

std::optional<std::pair<bool, std::string>>
membership_state::clock_sample(const std::string& id, time_point sent,
                               time_point received, int64_t peer_ms) {
  using std::chrono::milliseconds;
  auto i = members.find(id);
  if (i == members.end() || i->second.st == state::down)
    return std::nullopt;
  auto& m = i->second;
  auto midpoint = to_unix_ms(sent) + (to_unix_ms(received) - to_unix_ms(sent)) / 2;
  m.clock_offset = milliseconds{peer_ms - midpoint};
  auto limit = opts_.clock_warning;
  if (limit.count() <= 0)
    return std::nullopt;
  auto size = milliseconds{std::abs(m.clock_offset.count())};
  auto describe = [&] {
    return fmt::format("{} ms {}", size.count(),
                       m.clock_offset.count() >= 0 ? "ahead of this node's"
                                                   : "behind this node's");
  };
  if (!m.clock_warned && size > limit) {
    m.clock_warned = true;
    return std::make_pair(
      true, fmt::format("membership: peer {}'s clock is {}: tokens and "
                        "expiry times it sets are off by as much (tolerated: "
                        "keys.leeway); check NTP on both",
                        id, describe()));
  }
  if (m.clock_warned && size <= limit / 2) {
    m.clock_warned = false;
    return std::make_pair(false,
                          fmt::format("membership: peer {}'s clock is back "
                                      "in line ({})",
                                      id, describe()));
  }
  return std::nullopt;
}

std::string membership_state::random_nonce() {
  return keymesh::random_bytes(32);
}

std::string membership_state::proof_input(const std::string& nonce,
                                          const std::string& signer,
                                          const std::string& verifier) {
  return "keymesh-handshake-v1|" + to_hex(sha256(nonce)) + "|" + signer + "|"
         + verifier;
}

std::string membership_state::sign(const std::string& nonce,
                                   const std::string& verifier) const {
  auto id = identity();
  if (!id)
    return {};
  return id->sign(proof_input(nonce, opts_.instance_id, verifier));
}

bool membership_state::verify(const node_hello& peer, const std::string& proof,
                              const std::string& my_nonce) const {
  if (!identity())
    return true; // plaintext: nothing to bind
  return cluster::tls_identity::verify_signature(
    peer.certificate_pem,
    proof_input(my_nonce, peer.instance_id, opts_.instance_id), proof);
}

node_hello membership_state::make_hello(std::string nonce,
                                        std::string proof) const {
  node_hello h;
  h.instance_id = opts_.instance_id;
  h.cluster_name = opts_.cluster_name;
  h.protocol_version = cluster_protocol_version;
  h.settings = opts_.settings;
  h.settings_fingerprint = settings_fingerprint(opts_.settings);
  h.address = opts_.address;
  h.incarnation = opts_.incarnation;
  if (auto id = identity())
    h.certificate_pem = id->certificate_pem();
  h.nonce = std::move(nonce);
  h.proof = std::move(proof);
  return h;
}

node_services membership_state::services() const {
  return node_services{opts_.federation, opts_.shards, opts_.bus};
}

std::optional<std::string>
membership_state::check_hello(const node_hello& peer) const {
  if (peer.instance_id.empty())
    return "it sent no instance id";
  if (peer.instance_id == opts_.instance_id)
    return "it claims this node's own instance id " + peer.instance_id;
  if (peer.cluster_name != opts_.cluster_name)
    return "cluster.name is \"" + opts_.cluster_name + "\" here, \""
           + peer.cluster_name + "\" there";
  if (peer.protocol_version != cluster_protocol_version)
    return "protocol version " + std::to_string(cluster_protocol_version)
           + " here, " + std::to_string(peer.protocol_version) + " there";
  if (peer.settings_fingerprint != settings_fingerprint(opts_.settings)
      || peer.settings_fingerprint != settings_fingerprint(peer.settings)) {
    auto diff = settings_difference(opts_.settings, peer.settings);
    return "settings differ: "
           + (diff.empty() ? std::string{"fingerprint mismatch"} : diff);
  }
  if (!peer.membership)
    return "it sent no membership handle";
  auto id = identity();
  if (!id)
    return std::nullopt;
  if (peer.certificate_pem.empty())
    return "it sent no certificate";
  try {
    auto cn = id->verify_peer_certificate(peer.certificate_pem);
    if (cn != peer.instance_id)
      return "its certificate's CN \"" + cn
             + "\" does not match its claimed instance id \""
             + peer.instance_id + "\"";
  } catch (const cluster::tls_error& e) {
    return std::string{"its certificate is not valid: "} + e.what();
  }
  return std::nullopt;
}

bool membership_state::should_dial(const std::string& address,
                                   steady::time_point now) const {
  auto i = addresses.find(address);
  if (i == addresses.end())
    return false;
  auto& e = i->second;
  if (e.is_self || e.dialing || now < e.next_attempt)
    return false;
  if (!e.id.empty()) {
    auto m = members.find(e.id);
    if (m != members.end() && m->second.st != state::down)
      return false;
  }
  // The node with the smaller address dials; the other waits to be dialled
  // and steps in only when that does not happen.
  if (opts_.address < address)
    return true;
  return now - e.unlinked_since >= opts_.failure_timeout;
}

cluster_status membership_state::status() const {
  cluster_status out;
  out.cluster_name = opts_.cluster_name;
  out.self = member_info{opts_.instance_id,  opts_.address, "up", 0, 0,
                         cluster_protocol_version, opts_.incarnation};
  for (auto& [id, m] : members)
    out.members.push_back(
      member_info{id, m.address, to_text(m.st), to_unix_ms(m.since),
                  static_cast<int64_t>(m.rtt.count()), m.protocol,
                  m.incarnation, m.clock_offset.count()});
  // Addresses known but never linked (e.g. seeds that are not up).
  for (auto& [address, e] : addresses) {
    if (e.is_self || !e.id.empty())
      continue;
    out.members.push_back(
      member_info{"", address, "down", 0, 0, 0, 0});
  }
  return out;
}

// -- actor ----------------------------------------------------------------------

namespace {

void schedule_tick(membership_pointer self) {
  self->delayed_send(self, self->state.options().heartbeat, atom::tick_v,
                     ++self->state.timer_id);
}

void report_seeds_if_tried(membership_pointer self) {
  auto& st = self->state;
  if (st.seeds_reported
      || (st.options().await_discovery && !st.discovery_answered))
    return;
  for (auto& [address, e] : st.addresses)
    if (e.is_seed && !e.is_self && !e.tried)
      return;
  st.seeds_reported = true;
  spdlog::info("membership: every seed has been tried once");
  if (!st.options().on_seeds_tried)
    return;
  if (!st.options().bus)
    return st.options().on_seeds_tried();
  // Ready only once the revocations the linked peers hold are enforced
  // here too (a node back from a restart has missed some).
  self
    ->request(st.options().bus, st.options().failure_timeout * 4,
              atom::get_v, atom::revoke_v)
    .then(
      [=](bool) { self->state.options().on_seeds_tried(); },
      [=](caf::error& err) {
        spdlog::warn("membership: the peers' revocations were not all read "
                     "({}); reporting ready anyway",
                     self->system().render(err));
        self->state.options().on_seeds_tried();
      });
}

std::chrono::milliseconds backoff(membership_state& st, unsigned failures) {
  using std::chrono::milliseconds;
  // heartbeat, 2x, 4x, 8x (at most 30 s), plus up to a quarter of jitter:
  // a link cut for long comes back within about 8 heartbeats of the heal.
  auto base = st.options().heartbeat.count()
              << std::min(failures > 0 ? failures - 1 : 0u, 3u);
  auto capped = std::min<int64_t>(base, 30'000);
  std::uniform_int_distribution<int64_t> jitter{0, capped / 4};
  return milliseconds{capped + jitter(st.rng)};
}

void send_gossip(membership_pointer self) {
  auto& st = self->state;
  std::vector<member_info> view;
  view.push_back(member_info{st.options().instance_id, st.options().address,
                             "up", 0, 0, cluster_protocol_version,
                             st.options().incarnation});
  for (auto& [id, m] : st.members)
    if (m.st == membership_state::state::up)
      view.push_back(member_info{id, m.address, "up", 0, 0, m.protocol,
                                 m.incarnation});
  for (auto& [id, m] : st.members)
    if (m.st != membership_state::state::down && m.handle)
      self->send(m.handle, atom::gossip_v, view);
}

void mark_down(membership_pointer self, const std::string& id,
               const std::string& why) {
  auto& st = self->state;
  auto i = st.members.find(id);
  if (i == st.members.end() || i->second.st == membership_state::state::down)
    return;
  auto& m = i->second;
  spdlog::warn("membership: peer {} at {} is down: {}", id, m.address, why);
  if (m.handle)
    self->demonitor(m.handle.address());
  if (st.options().admitted)
    st.options().admitted->revoke(m.node);
  m.st = membership_state::state::down;
  m.since = self->state.options().wall();
  m.handle = nullptr;
  st.publish();
  auto now = self->state.now();
  if (auto a = st.addresses.find(m.address); a != st.addresses.end()) {
    a->second.unlinked_since = now;
    a->second.next_attempt = now + backoff(st, 0);
  }
  self->send(st.options().federation, atom::leave_v, id,
             to_unix_ms(m.since));
  if (st.options().router)
    self->send(st.options().router, atom::leave_v, id);
  if (st.options().bus)
    self->send(st.options().bus, atom::leave_v, id);
}

/// Records that the peer on NODE proved to be ID, at once, so that its
/// first messages to this node's actors are taken.
void admit(membership_pointer self, const caf::node_id& node,
           const std::string& id) {
  if (auto& admitted = self->state.options().admitted)
    admitted->admit(node, id);
}

void link_up(membership_pointer self, const node_hello& peer,
             const node_services& services,
             const std::string& dialled_address) {
  auto& st = self->state;
  auto& handle = peer.membership;
  auto& m = st.members[peer.instance_id];
  if (m.handle && m.handle != handle) {
    self->demonitor(m.handle.address());
    if (st.options().admitted && m.node != handle.node())
      st.options().admitted->revoke(m.node);
  }
  bool was_down = m.st == membership_state::state::down;
  m.id = peer.instance_id;
  m.address = peer.address;
  m.st = membership_state::state::up;
  m.since = self->state.options().wall();
  m.protocol = peer.protocol_version;
  m.incarnation = peer.incarnation;
  m.handle = handle;
  m.node = handle.node();
  m.last_heard = self->state.now();
  self->monitor(handle);
  st.publish();
  for (auto* address : {&peer.address, &dialled_address}) {
    if (address->empty())
      continue;
    st.learn(*address, false, self->state.now());
    auto& e = st.addresses[*address];
    e.id = peer.instance_id;
    e.dialing = false;
    e.tried = true;
    e.failures = 0;
  }
  if (was_down)
    spdlog::info("membership: peer {} at {} is up (incarnation {})",
                 peer.instance_id, peer.address, peer.incarnation);
  self->send(st.options().federation, atom::join_v,
             peer_federation{peer.instance_id, services.federation});
  if (st.options().router)
    self->send(st.options().router, atom::join_v,
               peer_actors{peer.instance_id, peer.incarnation,
                           services.shards});
  if (st.options().bus && services.bus)
    self->send(st.options().bus, atom::join_v,
               peer_bus{peer.instance_id, services.bus});
  send_gossip(self);
  report_seeds_if_tried(self);
}

void dial_failed(membership_pointer self, const std::string& address,
                 const std::string& why) {
  auto& st = self->state;
  auto& e = st.addresses[address];
  e.dialing = false;
  e.tried = true;
  if (e.failures++ == 0)
    spdlog::info("membership: cannot link to {}: {} (retrying with back-off)",
                 address, why);
  else
    spdlog::debug("membership: cannot link to {}: {}", address, why);
  e.next_attempt = self->state.now() + backoff(st, e.failures);
  report_seeds_if_tried(self);
}

void dial(membership_pointer self, const std::string& address) {
  auto& st = self->state;
  auto hp = config::parse_host_port(address);
  if (!hp || hp->port == 0) {
    st.addresses[address].is_self = true; // never dial it again
    spdlog::warn("membership: ignoring unusable address {}", address);
    return;
  }
  st.addresses[address].dialing = true;
  auto timeout = st.options().failure_timeout + std::chrono::seconds{2};
  self
    ->request(st.options().connector, timeout, caf::connect_atom_v, hp->host,
              hp->port)
    .then(
      [=](caf::node_id&, caf::strong_actor_ptr& ptr,
          std::set<std::string>&) {
        if (!ptr)
          return dial_failed(self, address, "nothing published there");
        auto peer = caf::actor_cast<membership_actor>(ptr);
        auto nonce = self->state.random_nonce();
        auto hello = self->state.make_hello(nonce, {});
        hello.membership = self;
        self->request(peer, timeout, atom::hello_v, std::move(hello))
          .then(
            [=](node_hello& reply) {
              auto& st = self->state;
              if (reply.instance_id == st.options().instance_id) {
                st.addresses[address].is_self = true;
                st.addresses[address].dialing = false;
                st.addresses[address].tried = true;
                report_seeds_if_tried(self);
                return;
              }
              auto why = st.check_hello(reply);
              if (!why && !st.verify(reply, reply.proof, nonce))
                why = "its proof of owning its certificate's key is invalid";
              if (why) {
                spdlog::warn("membership: refusing peer {} at {}: {}",
                             reply.instance_id, address, *why);
                return dial_failed(self, address, "refused: " + *why);
              }
              reply.membership = peer;
              // The peer proved who it is: its first messages to this
              // node's actors may arrive before its answer below.
              admit(self, peer.node(), reply.instance_id);
              auto proof = st.sign(reply.nonce, reply.instance_id);
              self
                ->request(peer, timeout, atom::prove_v,
                          st.options().instance_id, std::move(proof),
                          st.services())
                .then(
                  [=](node_services& theirs) {
                    link_up(self, reply, theirs, address);
                  },
                  [=](caf::error& err) {
                    auto& st = self->state;
                    auto m = st.members.find(reply.instance_id);
                    if (st.options().admitted
                        && (m == st.members.end()
                            || m->second.node != peer.node()))
                      st.options().admitted->revoke(peer.node());
                    dial_failed(self, address, self->system().render(err));
                  });
            },
            [=](caf::error& err) {
              // A refusal carries the peer's reason, told from its side.
              dial_failed(self, address,
                          "the peer answered: " + self->system().render(err));
            });
      },
      [=](caf::error& err) {
        dial_failed(self, address, self->system().render(err));
      });
}

void heartbeat(membership_pointer self) {
  auto& st = self->state;
  auto now = st.now();
  auto& opts = st.options();
  auto silent = st.judge(now);
  for (auto& [id, m] : st.members) {
    if (m.st == membership_state::state::down
        || std::find(silent.begin(), silent.end(), id) != silent.end())
      continue;
    auto sent = now;
    auto sent_wall = opts.wall();
    self->request(m.handle, opts.failure_timeout, atom::ping_v, ++st.ping_seq)
      .then(
        [=, id = id](uint64_t, int64_t peer_ms) {
          auto& st = self->state;
          if (auto note = st.clock_sample(id, sent_wall, st.options().wall(),
                                          peer_ms)) {
            if (note->first)
              spdlog::warn("{}", note->second);
            else
              spdlog::info("{}", note->second);
          }
          auto i = st.members.find(id);
          auto was_suspect = i != st.members.end()
                             && i->second.st
                                  == membership_state::state::suspect;
          if (st.heard(id, sent, st.now()) && was_suspect)
            spdlog::info("membership: peer {} answers again", id);
        },
        [](caf::error&) {
          // Silence is judged by last_heard on the next ticks.
        });
  }
  for (auto& id : silent)
    mark_down(self, id,
              "no heartbeat answer for "
                + config::format_duration(opts.failure_timeout));
  // Handshakes that never completed.
  for (auto i = st.pending.begin(); i != st.pending.end();)
    i = now - i->second.started > opts.failure_timeout ? st.pending.erase(i)
                                                       : std::next(i);
  send_gossip(self);
  std::vector<std::string> to_dial;
  for (auto& [address, e] : st.addresses)
    if (st.should_dial(address, now))
      to_dial.push_back(address);
  for (auto& address : to_dial)
    dial(self, address);
  report_seeds_if_tried(self);
}

/// Whether the message being handled comes from this node or an admitted
/// member (handshake messages aside, peers talk to members only).
bool from_member(membership_pointer self) {
  return classify_sender(self, self->state.options().admitted.get())
         != sender_kind::stranger;
}

} // namespace

membership_actor::behavior_type membership(membership_pointer self,
                                           membership_options opts) {
  self->state.configure(std::move(opts));
  // Messages from peers that this node cannot read (another version, a bug)
  // are logged and dropped; they never terminate the actor.
  self->set_default_handler(caf::print_and_drop);
  self->set_down_handler([=](caf::down_msg& dm) {
    for (auto& [id, m] : self->state.members)
      if (m.handle && m.handle.address() == dm.source) {
        auto id_copy = id;
        mark_down(self, id_copy, "link lost (" + caf::to_string(dm.reason)
                                   + ")");
        break;
      }
  });
  // The first round starts when the node has published this actor and sends
  // (tick, 0): then peers can dial back at once.
  return {
    [=](atom::hello, node_hello& peer) -> caf::result<node_hello> {
      auto& st = self->state;
      if (peer.instance_id == st.options().instance_id) // dialled itself
        return st.make_hello(st.random_nonce(), {});
      if (auto why = st.check_hello(peer)) {
        spdlog::warn("membership: refusing peer {} at {}: {}",
                     peer.instance_id, peer.address, *why);
        return make_error(ec::refused, *why);
      }
      // A peer this node still counts as up dials again: it lost the link
      // on its side (it was paused, say, and judged this node silent).
      // Refusing would leave the two views disagreeing for good, since the
      // peer still answers this node's pings; the handshake goes ahead and
      // link_up refreshes the link.
      auto m = st.members.find(peer.instance_id);
      if (m != st.members.end()
          && m->second.st != membership_state::state::down
          && m->second.incarnation == peer.incarnation)
        spdlog::info("membership: peer {} links again (it lost the link)",
                     peer.instance_id);
      auto nonce = st.random_nonce();
      auto proof = st.sign(peer.nonce, peer.instance_id);
      auto reply = st.make_hello(nonce, std::move(proof));
      reply.membership = self;
      st.pending[peer.instance_id]
        = membership_state::pending_handshake{peer, nonce, self->state.now()};
      return reply;
    },
    [=](atom::prove, std::string& id, std::string& proof,
        node_services& theirs) -> caf::result<node_services> {
      auto& st = self->state;
      auto i = st.pending.find(id);
      if (i == st.pending.end())
        return make_error(ec::refused, "no handshake is pending for " + id);
      auto hello = std::move(i->second.hello);
      auto nonce = std::move(i->second.nonce);
      st.pending.erase(i);
      // The proof comes from the node that said hello, or it is no proof.
      auto& sender = self->current_sender();
      auto node = hello.membership.node();
      if (!sender || sender->node() != node || !st.verify(hello, proof, nonce)) {
        spdlog::warn("membership: refusing peer {} at {}: its proof of "
                     "owning its certificate's key is invalid",
                     id, hello.address);
        return make_error(ec::refused, "invalid proof");
      }
      admit(self, node, id);
      link_up(self, hello, theirs, {});
      return st.services();
    },
    [=](atom::ping, uint64_t seq) -> caf::result<uint64_t, int64_t> {
      if (!from_member(self))
        return make_error(ec::refused, "not an admitted cluster member");
      return {seq, to_unix_ms(self->state.options().wall())};
    },
    [=](atom::gossip, std::vector<member_info>& view) {
      if (!from_member(self))
        return;
      auto now = self->state.now();
      for (auto& info : view)
        if (info.instance_id != self->state.options().instance_id)
          self->state.learn(info.address, false, now);
    },
    [=](atom::seeds, std::vector<std::string>& found) {
      auto& st = self->state;
      if (classify_sender(self, nullptr) != sender_kind::local)
        return;
      auto now = self->state.now();
      for (auto& address : found)
        if (st.addresses.count(address) == 0) {
          spdlog::info("membership: discovered {}", address);
          st.learn(address, true, now);
        }
      st.discovery_answered = true;
      report_seeds_if_tried(self);
    },
    [=](atom::get, atom::members) -> caf::result<cluster_status> {
      if (!from_member(self))
        return make_error(ec::refused, "not an admitted cluster member");
      return self->state.status();
    },
    [=](atom::tick, uint64_t id) {
      if (id != self->state.timer_id
          || classify_sender(self, nullptr) != sender_kind::local)
        return;
      heartbeat(self);
      schedule_tick(self);
    },
  };
}

membership_actor spawn_membership(caf::actor_system& sys,
                                  membership_options opts) {
  return sys.spawn(membership, std::move(opts));
}

} // namespace keymesh
