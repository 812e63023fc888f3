#include "actors/bus.hpp"

#include "actors/error.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace keymesh {

using nlohmann::json;

std::string revocation_payload(state::deny_kind kind, const std::string& value,
                               int64_t revoked_at_ms, int64_t until_ms,
                               const std::string& reason) {
  json j{{"type", state::to_string(kind)},
         {"value", value},
         {"revoked_at", revoked_at_ms},
         {"until", until_ms}};
  if (!reason.empty())
    j["reason"] = reason;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string keys_payload(const key_announcement& a) {
  json keys = json::array();
  for (auto& k : a.keys)
    keys.push_back({{"kid", k.kid},
                    {"alg", k.alg},
                    {"sign_from", k.sign_from / 1000},
                    {"retire_at", k.retire_at / 1000},
                    {"expire_at", k.expire_at / 1000}});
  return json{{"origin", a.origin},
              {"incarnation", a.incarnation},
              {"serial", a.serial},
              {"keys", std::move(keys)}}
    .dump();
}

std::optional<persistence::revocation_entry>
parse_revocation(const std::string& payload) {
  auto j = json::parse(payload, nullptr, false);
  if (!j.is_object())
    return std::nullopt;
  try {
    persistence::revocation_entry e;
    e.kind = j.value("type", "");
    e.value = j.value("value", "");
    e.revoked_at = j.value("revoked_at", int64_t{0});
    e.until = j.value("until", int64_t{0});
    e.reason = j.value("reason", "");
    if (!state::parse_deny_kind(e.kind) || e.value.empty() || e.until == 0)
      return std::nullopt;
    return e;
  } catch (const json::exception&) { // a member of the wrong type
    return std::nullopt;
  }
}

void bus_state::configure(bus_options opts) {
  opts_ = std::move(opts);
}

std::optional<event_id> parse_event_id(std::string_view id) {
  auto parse_number = [](std::string_view digits) -> std::optional<uint64_t> {
    if (digits.empty() || digits.size() > 20)
      return std::nullopt;
    uint64_t n = 0;
    for (char c : digits) {
      if (c < '0' || c > '9')
        return std::nullopt;
      auto next = n * 10 + static_cast<uint64_t>(c - '0');
      if (next / 10 != n)
        return std::nullopt; // overflow
      n = next;
    }
    return n;
  };
  auto last = id.rfind('.');
  if (last == std::string_view::npos || last == 0)
    return std::nullopt;
  auto middle = id.rfind('.', last - 1);
  if (middle == std::string_view::npos || middle == 0)
    return std::nullopt;
  auto incarnation = parse_number(id.substr(middle + 1, last - middle - 1));
  auto serial = parse_number(id.substr(last + 1));
  if (!incarnation || !serial)
    return std::nullopt;
  return event_id{std::string{id.substr(0, middle)}, *incarnation, *serial};
}

bus_event bus_state::make_event(std::string topic, std::string payload) {
  bus_event e;
  e.topic = std::move(topic);
  e.origin = opts_.instance_id;
  e.incarnation = opts_.incarnation;
  e.serial = ++serial_;
  e.at = to_unix_ms(opts_.clock());
  e.payload = std::move(payload);
  own_.push_back(e);
  if (own_.size() > opts_.retention)
    own_.pop_front();
  return e;
}

bool bus_state::first_sight(const bus_event& e) {
  auto& s = seen[e.origin];
  if (s.incarnation != e.incarnation) {
    // A new incarnation starts its serials again (a catch-up asks for the
    // ones before this).
    s.incarnation = e.incarnation;
    s.contiguous = 0;
    s.ahead.clear();
  }
  if (e.serial <= s.contiguous || !s.ahead.insert(e.serial).second)
    return false;
  auto advance = [&s] {
    while (!s.ahead.empty() && *s.ahead.begin() == s.contiguous + 1) {
      s.ahead.erase(s.ahead.begin());
      ++s.contiguous;
    }
  };
  advance();
  if (s.ahead.size() > max_ahead) {
    // Too far behind to fill: what is missing is past the origin's
    // retention anyway, so the watermark jumps to the gap's end.
    s.contiguous = *s.ahead.begin() - 1;
    advance();
  }
  return true;
}

std::vector<caf::actor> bus_state::apply(const bus_event& e) {
  log_.push_back(logged{e, to_unix_ms(opts_.clock())});
  trim_log();
  if (e.topic == "revocations") {
    auto entry = parse_revocation(e.payload);
    if (!entry) {
      spdlog::warn("bus: malformed revocation event {} dropped", e.id());
    } else {
      if (opts_.deny)
        opts_.deny->add(*state::parse_deny_kind(entry->kind), entry->value,
                        entry->revoked_at, entry->until);
      if (opts_.on_revocation && e.origin != opts_.instance_id) {
        entry->origin = e.origin;
        opts_.on_revocation(*entry);
      }
    }
  }
  std::vector<caf::actor> out;
  for (auto& topic : {e.topic, std::string{"*"}})
    if (auto i = subscribers.find(topic); i != subscribers.end())
      out.insert(out.end(), i->second.begin(), i->second.end());
  return out;
}

bus_event_list bus_state::own_after(uint64_t incarnation,
                                    uint64_t serial) const {
  bus_event_list out;
  for (auto& e : own_)
    if (incarnation != opts_.incarnation || e.serial > serial)
      out.push_back(e);
  return out;
}

namespace {

/// How much earlier a resume on another node starts.
constexpr int64_t resume_overlap_ms = 1000;

} // namespace

void bus_state::trim_log() {
  auto oldest = to_unix_ms(opts_.clock()) - opts_.log_age.count();
  while (!log_.empty()
         && (log_.size() > opts_.log_events
             || log_.front().received_ms < oldest))
    log_.pop_front();
}

std::pair<bus_event_list, bool>
bus_state::history(const std::string& after,
                   const std::vector<std::string>& topics) {
  trim_log();
  auto wanted = [&](const bus_event& e) {
    for (auto& t : topics)
      if (t == "*" || t == e.topic)
        return true;
    return false;
  };
  bus_event_list out;
  if (after.empty())
    return {out, true};
  // "<event id>@<node>": the node that streamed it. Another node received
  // events in a slightly different order, so it resumes a little earlier
  // (duplicates carry the same id; nothing is missed).
  auto at = after.rfind('@');
  auto anchor = parse_event_id(std::string_view{after}.substr(0, at));
  bool exact = at == std::string::npos
               || after.compare(at + 1, std::string::npos, opts_.instance_id)
                    == 0;
  // Newest first: a resuming client is usually close to the end.
  size_t begin = 0;
  bool found = false;
  for (size_t n = log_.size(); anchor && n > 0 && !found; --n) {
    auto& e = log_[n - 1].event;
    if (e.serial == anchor->serial && e.incarnation == anchor->incarnation
        && e.origin == anchor->origin) {
      begin = n;
      found = true;
    }
  }
  if (found && !exact) {
    auto from = log_[begin - 1].received_ms - resume_overlap_ms;
    while (begin > 0 && log_[begin - 1].received_ms >= from)
      --begin;
  }
  for (size_t n = begin; n < log_.size(); ++n)
    if (wanted(log_[n].event))
      out.push_back(log_[n].event);
  return {std::move(out), found};
}

namespace {

void handle(bus_pointer self, const bus_event& e) {
  if (!self->state.first_sight(e))
    return;
  for (auto& sub : self->state.apply(e))
    caf::anon_send(sub, atom::event_v, e);
}

/// Asks PEER for every event of its own after the last one this node has
/// without a gap.
void catch_up(bus_pointer self, const std::string& peer, bus_actor peer_bus) {
  auto& st = self->state;
  auto& s = st.seen[peer];
  s.catching_up = true;
  self
    ->request(peer_bus, st.options().peer_timeout, atom::replay_v,
              s.incarnation, s.contiguous)
    .then(
      [=](bus_event_list& missed) {
        self->state.seen[peer].catching_up = false;
        for (auto& e : missed)
          handle(self, e);
      },
      [=](caf::error& err) {
        self->state.seen[peer].catching_up = false;
        spdlog::debug("bus: catch-up from {} failed: {}", peer,
                      self->system().render(err));
      });
}

/// One read of a peer's deny set ended: when none is left, whoever waits
/// for them ((get, revoke)) is answered.
void deny_read_done(bus_pointer self) {
  auto& st = self->state;
  if (st.deny_reads > 0 && --st.deny_reads > 0)
    return;
  for (auto& waiter : st.deny_waiters)
    waiter.deliver(true);
  st.deny_waiters.clear();
}

/// Takes PEER's deny set: revocations in force there that this node may
/// have missed for good (their origin restarted, or its retention let
/// them go) are enforced here from now on.
void take_revocations(bus_pointer self, const std::string& peer,
                      bus_actor peer_bus) {
  auto& st = self->state;
  if (!st.options().deny)
    return;
  ++st.deny_reads;
  self
    ->request(peer_bus, st.options().peer_timeout, atom::replay_v,
              atom::revoke_v)
    .then(
      [=](bus_event_list& held) {
        deny_read_done(self);
        auto& opts = self->state.options();
        size_t taken = 0;
        for (auto& e : held) {
          auto entry = parse_revocation(e.payload);
          if (!entry)
            continue;
          if (!opts.deny->add(*state::parse_deny_kind(entry->kind),
                              entry->value, entry->revoked_at, entry->until))
            continue;
          ++taken;
          if (opts.on_revocation) {
            entry->origin = peer;
            opts.on_revocation(*entry);
          }
        }
        if (taken > 0)
          spdlog::info("bus: {} revocation(s) this node had missed taken "
                       "from {}",
                       taken, peer);
      },
      [=](caf::error& err) {
        deny_read_done(self);
        spdlog::warn("bus: the revocations of {} were not read: {}", peer,
                     self->system().render(err));
      });
}

/// Fills the gaps EVENTS revealed: a catch-up from each linked origin
/// that has one (at most one on its way per origin).
void fill_gaps(bus_pointer self, const bus_event_list& events) {
  auto& st = self->state;
  std::set<std::string> origins;
  for (auto& e : events)
    origins.insert(e.origin);
  for (auto& origin : origins) {
    auto s = st.seen.find(origin);
    auto link = st.peers.find(origin);
    if (s == st.seen.end() || s->second.ahead.empty()
        || s->second.catching_up || link == st.peers.end())
      continue;
    catch_up(self, origin, link->second.handle);
  }
}

/// Sends what waits for peer ID, in batches, while fewer than
/// max_in_flight batches are unacknowledged.
void flush(bus_pointer self, const std::string& id) {
  auto i = self->state.peers.find(id);
  if (i == self->state.peers.end())
    return;
  auto& link = i->second;
  auto& opts = self->state.options();
  while (link.in_flight < opts.max_in_flight && !link.queue.empty()) {
    bus_event_list batch;
    auto callbacks = std::make_shared<std::vector<std::function<void(bool)>>>();
    while (!link.queue.empty() && batch.size() < opts.max_batch) {
      batch.push_back(std::move(link.queue.front().first));
      callbacks->push_back(std::move(link.queue.front().second));
      link.queue.pop_front();
    }
    ++link.in_flight;
    auto generation = link.generation;
    auto settle = [self, id, generation, callbacks](bool ok) {
      for (auto& cb : *callbacks)
        cb(ok);
      auto j = self->state.peers.find(id);
      if (j != self->state.peers.end() && j->second.generation == generation) {
        --j->second.in_flight;
        flush(self, id);
      }
    };
    self
      ->request(link.handle, opts.peer_timeout, atom::deliver_v,
                std::move(batch))
      .then([settle](atom::ok) { settle(true); },
            [settle](caf::error&) { settle(false); });
  }
}

/// Numbers, applies and fans out a new event of this node; DONE gets the
/// peers that did not acknowledge it within the peer timeout.
void publish_event(bus_pointer self, std::string topic, std::string payload,
                   std::function<void(std::vector<std::string>)> done) {
  auto e = self->state.make_event(std::move(topic), std::move(payload));
  handle(self, e);
  auto& peers = self->state.peers;
  if (peers.empty())
    return done({});
  struct fan_in {
    size_t left;
    std::vector<std::string> unreached;
    std::function<void(std::vector<std::string>)> done;
  };
  auto acc = std::make_shared<fan_in>(fan_in{peers.size(), {}, std::move(done)});
  for (auto& [id, link] : peers) {
    auto settle = [acc, id = id](bool ok) {
      if (!ok)
        acc->unreached.push_back(id);
      if (--acc->left == 0)
        acc->done(std::move(acc->unreached));
    };
    if (link.queue.size() >= self->state.options().max_queued) {
      settle(false);
      continue;
    }
    link.queue.emplace_back(e, std::move(settle));
  }
  // Settles run in response handlers only: flushing leaves PEERS as is.
  for (auto& [id, link] : peers)
    flush(self, id);
}

void publish_member(bus_pointer self, const std::string& id,
                    const char* what) {
  if (!self->state.options().publish_members)
    return;
  nlohmann::json j{{"node", id}, {"state", what}};
  publish_event(self, "members", j.dump(), [](std::vector<std::string>) {});
}

} // namespace

namespace {

/// From this node's own actors (subscriptions, publishing, links).
bool here(bus_pointer self) {
  return classify_sender(self, nullptr) == sender_kind::local;
}

/// From this node or an admitted member's bus (deliveries, replays).
bool member_or_here(bus_pointer self) {
  return classify_sender(self, self->state.options().admitted.get())
         != sender_kind::stranger;
}

caf::error refused() {
  return make_error(ec::refused, "not an admitted cluster member");
}

} // namespace

bus_actor::behavior_type bus(bus_pointer self, bus_options opts) {
  self->state.configure(std::move(opts));
  self->set_default_handler(caf::print_and_drop);
  self->set_down_handler([=](caf::down_msg& dm) {
    for (auto& [topic, subs] : self->state.subscribers)
      for (auto i = subs.begin(); i != subs.end();)
        i = i->address() == dm.source ? subs.erase(i) : std::next(i);
  });
  return {
    [=](atom::publish, std::string& topic,
        std::string& payload) -> caf::result<std::vector<std::string>> {
      if (!here(self))
        return refused();
      auto rp = self->make_response_promise<std::vector<std::string>>();
      publish_event(self, std::move(topic), std::move(payload),
              [rp](std::vector<std::string> unreached) mutable {
                rp.deliver(std::move(unreached));
              });
      return rp;
    },
    [=](atom::deliver, bus_event_list& events) -> caf::result<atom::ok> {
      if (!member_or_here(self))
        return refused();
      for (auto& e : events)
        handle(self, e);
      fill_gaps(self, events);
      return atom::ok_v;
    },
    [=](atom::replay, uint64_t incarnation,
        uint64_t serial) -> caf::result<bus_event_list> {
      if (!member_or_here(self))
        return refused();
      return self->state.own_after(incarnation, serial);
    },
    [=](atom::replay, atom::revoke) -> caf::result<bus_event_list> {
      if (!member_or_here(self))
        return refused();
      auto& opts = self->state.options();
      bus_event_list out;
      if (!opts.deny)
        return out;
      for (auto& h : opts.deny->snapshot(to_unix_ms(opts.clock()))) {
        bus_event e;
        e.topic = "revocations";
        e.origin = opts.instance_id;
        e.incarnation = opts.incarnation;
        e.payload = revocation_payload(h.kind, h.value, h.revoked_at,
                                       h.until, "");
        out.push_back(std::move(e));
      }
      return out;
    },
    [=](atom::get, atom::revoke) -> caf::result<bool> {
      if (!here(self))
        return refused();
      auto& st = self->state;
      if (st.deny_reads == 0)
        return true;
      st.deny_waiters.push_back(self->make_response_promise());
      return st.deny_waiters.back();
    },
    [=](atom::subscribe, std::vector<std::string>& topics, caf::actor& who) {
      if (!who || !here(self))
        return;
      self->monitor(who);
      for (auto& t : topics)
        self->state.subscribers[t].insert(who);
    },
    [=](atom::subscribe, std::vector<std::string>& topics, caf::actor& who,
        std::string& after) -> caf::result<bus_event_list, bool> {
      if (!here(self))
        return refused();
      auto [backlog, found] = self->state.history(after, topics);
      if (who) {
        self->monitor(who);
        for (auto& t : topics)
          self->state.subscribers[t].insert(who);
      }
      return {std::move(backlog), found};
    },
    [=](atom::unsubscr, caf::actor& who) {
      if (!here(self))
        return;
      for (auto& [topic, subs] : self->state.subscribers)
        subs.erase(who);
    },
    [=](atom::join, peer_bus& joined) {
      auto& id = joined.instance_id;
      auto& peer = joined.handle;
      if (!peer || !here(self))
        return;
      auto& peers = self->state.peers;
      auto i = peers.find(id);
      bool fresh = i == peers.end();
      if (fresh || i->second.handle != peer) {
        // A new link: what waited for the old one goes out on it.
        auto& link = peers[id];
        link.handle = peer;
        link.generation = ++self->state.generations;
        link.in_flight = 0;
      }
      catch_up(self, id, peer);
      take_revocations(self, id, peer);
      if (fresh)
        publish_member(self, id, "up");
      flush(self, id);
    },
    [=](atom::leave, std::string& id) {
      if (!here(self))
        return;
      auto i = self->state.peers.find(id);
      if (i == self->state.peers.end())
        return;
      auto waiting = std::move(i->second.queue);
      self->state.peers.erase(i);
      for (auto& [e, settle] : waiting)
        settle(false);
      publish_member(self, id, "down");
    },
  };
}

bus_actor spawn_bus(caf::actor_system& sys, bus_options opts) {
  return sys.spawn(bus, std::move(opts));
}

caf::expected<bus_options> bus_options::from_settings(const config::settings& c) {
  if (c.state.peer_timeout.count() <= 0)
    return make_error(ec::invalid_argument,
                      "state.peer_timeout must be positive");
  bus_options opts;
  opts.peer_timeout = c.state.peer_timeout;
  return opts;
}

} // namespace keymesh
