#include "actors/bus.hpp"

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

bool apply_revocation(state::deny_set& set, const std::string& payload) {
  auto j = json::parse(payload, nullptr, false);
  if (!j.is_object())
    return false;
  auto kind = state::parse_deny_kind(j.value("type", ""));
  auto value = j.value("value", "");
  auto revoked_at = j.value("revoked_at", int64_t{0});
  auto until = j.value("until", int64_t{0});
  if (!kind || value.empty() || until == 0)
    return false;
  set.add(*kind, value, revoked_at, until);
  return true;
}

void bus_state::configure(bus_options opts) {
  opts_ = std::move(opts);
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
    // A new incarnation starts its serials again.
    s.incarnation = e.incarnation;
    s.highest = e.serial;
    return true;
  }
  if (e.serial <= s.highest)
    return false;
  s.highest = e.serial;
  return true;
}

std::vector<caf::actor> bus_state::apply(const bus_event& e) {
  if (e.topic == "revocations" && opts_.deny
      && !apply_revocation(*opts_.deny, e.payload))
    spdlog::warn("bus: malformed revocation event {} dropped", e.id());
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

void handle(bus_pointer self, const bus_event& e) {
  if (!self->state.first_sight(e))
    return;
  for (auto& sub : self->state.apply(e))
    caf::anon_send(sub, atom::event_v, e);
}

void catch_up(bus_pointer self, const std::string& peer, caf::actor peer_bus) {
  auto& st = self->state;
  uint64_t incarnation = 0;
  uint64_t serial = 0;
  if (auto i = st.seen.find(peer); i != st.seen.end()) {
    incarnation = i->second.incarnation;
    serial = i->second.highest;
  }
  self
    ->request(caf::actor_cast<bus_actor>(peer_bus), st.options().peer_timeout,
              atom::replay_v, incarnation, serial)
    .then(
      [=](bus_event_list& missed) {
        for (auto& e : missed)
          handle(self, e);
      },
      [=](caf::error& err) {
        spdlog::debug("bus: catch-up from {} failed: {}", peer,
                      self->system().render(err));
      });
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
    [=](atom::publish, std::string& topic, std::string& payload) {
      auto rp = self->make_response_promise<std::vector<std::string>>();
      auto e = self->state.make_event(std::move(topic), std::move(payload));
      handle(self, e);
      auto peers = self->state.peers;
      if (peers.empty()) {
        rp.deliver(std::vector<std::string>{});
        return rp;
      }
      struct fan_in {
        size_t left;
        std::vector<std::string> unreached;
      };
      auto acc = std::make_shared<fan_in>(fan_in{peers.size(), {}});
      auto settle = [rp, acc]() mutable {
        if (--acc->left == 0)
          rp.deliver(acc->unreached);
      };
      for (auto& [id, peer] : peers)
        self
          ->request(caf::actor_cast<bus_actor>(peer),
                    self->state.options().peer_timeout, atom::deliver_v, e)
          .then([=](atom::ok) mutable { settle(); },
                [=, id = id](caf::error&) mutable {
                  acc->unreached.push_back(id);
                  settle();
                });
      return rp;
    },
    [=](atom::deliver, bus_event& e) {
      handle(self, e);
      return atom::ok_v;
    },
    [=](atom::replay, uint64_t incarnation, uint64_t serial) {
      return self->state.own_after(incarnation, serial);
    },
    [=](atom::subscribe, std::vector<std::string>& topics, caf::actor& who) {
      if (!who)
        return;
      self->monitor(who);
      for (auto& t : topics)
        self->state.subscribers[t].insert(who);
    },
    [=](atom::unsubscr, caf::actor& who) {
      for (auto& [topic, subs] : self->state.subscribers)
        subs.erase(who);
    },
    [=](atom::join, std::string& id, caf::actor& peer) {
      if (!peer)
        return;
      self->state.peers[id] = peer;
      catch_up(self, id, peer);
    },
    [=](atom::leave, std::string& id) { self->state.peers.erase(id); },
  };
}

bus_actor spawn_bus(caf::actor_system& sys, bus_options opts) {
  return sys.spawn(bus, std::move(opts));
}

} // namespace keymesh
