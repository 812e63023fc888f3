#include "services/logout.hpp"

#include <algorithm>
#include <set>
#include <string_view>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/error.hpp"
#include "actors/local_request.hpp"
#include "common/base64url.hpp"
#include "common/percent.hpp"
#include "common/random.hpp"
#include "net/http_client.hpp"
#include "services/audit.hpp"

namespace keymesh {

namespace {

using nlohmann::json;
using persistence::outbox_row;

constexpr const char* backchannel_logout_event
  = "http://schemas.openid.net/event/backchannel-logout";

/// Deliveries taken over per poll, and held in memory at most (a node
/// does not take over more than it can hold).
constexpr uint64_t takeover_batch = 100;
constexpr size_t max_pending = 100'000;

/// Stored texts are bounded (reasons and errors come from elsewhere).
std::string bounded(std::string text, size_t max = 500) {
  if (text.size() > max)
    text.resize(max);
  return text;
}

/// A blocking POST per request, on a thread of its own.
poster_actor::behavior_type poster(net::fetch_options opts) {
  return {
    [opts](atom::post, const std::string& uri,
           const std::string& body) -> post_result {
      auto r = net::http_post(uri, "application/x-www-form-urlencoded", body,
                              opts);
      return post_result{r.status, std::move(r.error), r.refused,
                         std::move(r.location)};
    },
  };
}

} // namespace

// -- pure parts -----------------------------------------------------------------------

caf::expected<logout_options>
logout_options::from_settings(const config::settings& c) {
  logout_options opts;
  opts.limits = c.logout;
  opts.posture = c.sessions.posture;
  if (opts.limits.workers == 0)
    return make_error(ec::invalid_argument, "logout.workers must be at least 1");
  if (opts.limits.lease <= opts.limits.timeout)
    return make_error(ec::invalid_argument,
                      "logout.lease must be longer than logout.timeout");
  return opts;
}

delivery_verdict judge_delivery(const post_result& r, std::string& why) {
  if (r.status == 200 || r.status == 204) {
    why = "HTTP " + std::to_string(r.status);
    return delivery_verdict::delivered;
  }
  if (r.status == 0) {
    why = r.error.empty() ? "no answer" : r.error;
    return r.refused ? delivery_verdict::final : delivery_verdict::retry;
  }
  if (r.status == 408 || r.status == 429 || r.status >= 500) {
    why = "the client answered HTTP " + std::to_string(r.status);
    return delivery_verdict::retry;
  }
  if (r.status >= 300 && r.status < 400) {
    why = "the client answered HTTP " + std::to_string(r.status)
          + " (redirects are not followed)"
          + (r.location.empty() ? "" : ": to " + r.location);
    return delivery_verdict::final;
  }
  why = "the client answered HTTP " + std::to_string(r.status)
        + (r.status == 400 ? " (it refused the logout token)" : "");
  return delivery_verdict::final;
}

std::chrono::milliseconds retry_delay(const logout_options& opts,
                                      int64_t attempts, double jitter) {
  auto base = opts.limits.retry_initial.count();
  auto cap = opts.limits.retry_max.count();
  auto delay = base;
  for (int64_t i = 1; i < attempts && delay < cap; ++i)
    delay *= 2;
  delay = std::min(delay, cap);
  jitter = std::clamp(jitter, 0.5, 1.5);
  return std::chrono::milliseconds{
    std::max<int64_t>(1, static_cast<int64_t>(delay * jitter))};
}

std::string logout_form(const std::string& token) {
  return "logout_token=" + percent_encode(token);
}

// -- the service ------------------------------------------------------------------------

int64_t logout_state::now_ms() const {
  return to_unix_ms(deps.clock());
}

std::string logout_state::owner() const {
  return deps.status ? deps.status->instance_id : std::string{"local"};
}

logout_stats* logout_state::stats() const {
  return deps.status ? deps.status->logout.get() : nullptr;
}

void logout_state::audit(json event, const std::string& posture) const {
  publish_audit(deps.bus, deps.status.get(), posture, now_ms(),
                std::move(event));
}

void logout_state::start() {
  net::fetch_options fetch;
  fetch.timeout = opts.limits.timeout;
  fetch.ca_file = opts.limits.ca_file;
  fetch.public_only = !opts.limits.allow_private_addresses;
  fetch.max_body_bytes = 64 * 1024;
  for (size_t i = 0; i < opts.limits.workers; ++i) {
    posters_.push_back(self->spawn<caf::detached + caf::linked>(poster, fetch));
    busy_.push_back(false);
  }
  // Deliveries left by a node that stopped (this one before a restart
  // among them) are taken over once their lease ends.
  if (deps.store)
    poll(poll_id_);
}

void logout_state::enqueue(session_endings endings,
                           caf::typed_response_promise<logout_receipt> rp) {
  std::set<std::string> clients;
  for (auto& e : endings)
    for (auto& [client, rp_sid] : e.participants)
      clients.insert(client);
  if (clients.empty()) {
    rp.deliver(logout_receipt{});
    return;
  }
  auto report = [this](const session_ending& e, const std::string& client,
                       const char* type, std::string why) {
    if (auto* s = stats())
      (std::string_view{type} == "bcl.skipped" ? s->skipped : s->failed)
        .fetch_add(1, std::memory_order_relaxed);
    audit(json{{"type", type},
               {"client_id", client},
               {"sid", e.sid},
               {"sub", e.sub},
               {"attempts", 0},
               {"reason", std::move(why)}},
          opts.posture);
  };
  if (!deps.store) {
    logout_receipt receipt;
    for (auto& e : endings)
      for (auto& [client, rp_sid] : e.participants) {
        report(e, client, "bcl.skipped", "not registered (no database)");
        receipt.skipped.push_back(client);
      }
    rp.deliver(std::move(receipt));
    return;
  }
  auto fail = [this, endings, report, rp](std::string why) mutable {
    // Without the registrations nothing can be sent: each client's logout
    // is reported failed, and the caller is told.
    spdlog::error("back-channel logout of {} session(s): the client "
                  "registrations could not be read: {}",
                  endings.size(), why);
    why = "the client registrations could not be read: " + why;
    for (auto& e : endings)
      for (auto& [client, rp_sid] : e.participants)
        report(e, client, "bcl.failed", why);
    rp.deliver(logout_receipt{0, {}, why});
  };
  auto worker = deps.store->worker();
  if (!worker)
    return fail(context_text(worker.error()));
  std::vector<std::string> ids{clients.begin(), clients.end()};
  self->request(*worker, local_request, atom::get_v, atom::client_v, ids)
    .then(
      [=](client_records& found) mutable {
        std::map<std::string, const persistence::client_record*> by_id;
        for (auto& c : found)
          by_id[c.client_id] = &c;
        auto now = now_ms();
        auto give_up = std::chrono::duration_cast<std::chrono::milliseconds>(
                         opts.limits.give_up_after)
                         .count();
        logout_receipt receipt;
        std::vector<outbox_row> rows;
        for (auto& e : endings)
          for (auto& [client, rp_sid] : e.participants) {
            auto c = by_id.find(client);
            if (c == by_id.end()
                || c->second->backchannel_logout_uri.empty()) {
              report(e, client, "bcl.skipped",
                     c == by_id.end() ? "not registered"
                                      : "no backchannel_logout_uri");
              receipt.skipped.push_back(client);
              continue;
            }
            outbox_row row;
            row.id = base64url_encode(random_bytes(16));
            row.session_id = e.sid;
            row.sid = rp_sid.empty() ? e.sid : rp_sid;
            row.sub = e.sub;
            row.client_id = client;
            row.uri = c->second->backchannel_logout_uri;
            row.reason = bounded(e.reason);
            row.posture = opts.posture;
            row.created_at = now;
            row.give_up_at = now + give_up;
            row.next_attempt_at = now;
            row.owner = owner();
            row.lease_until = now + opts.limits.lease.count();
            rows.push_back(std::move(row));
          }
        receipt.queued = rows.size();
        queue(std::move(rows),
              [rp, receipt](std::string error) mutable {
                receipt.error = std::move(error);
                rp.deliver(std::move(receipt));
              });
      },
      [fail](caf::error& err) mutable { fail(context_text(err)); });
}

void logout_state::queue(std::vector<outbox_row> rows,
                         std::function<void(std::string)> then) {
  if (rows.empty())
    return then({});
  auto keep = [this, rows, then](bool durable, std::string error) {
    for (auto& r : rows)
      add(r, durable);
    then(std::move(error));
  };
  auto lost = [keep, n = rows.size()](const caf::error& err) {
    auto why = context_text(err);
    spdlog::error("back-channel logout: {} deliveries are not in the outbox "
                  "(they are sent from memory, and lost if this node stops "
                  "first): {}",
                  n, why);
    keep(false, "the outbox could not be written: " + why);
  };
  auto worker = deps.store->worker();
  if (!worker)
    return lost(worker.error());
  self->request(*worker, local_request, atom::put_v, outbox_rows{rows})
    .then([keep](atom::ok) { keep(true, {}); },
          [lost](caf::error& err) { lost(err); });
}

void logout_state::add(outbox_row row, bool durable) {
  if (pending_.count(row.id) > 0)
    return;
  if (pending_.size() >= max_pending) {
    spdlog::error("back-channel logout: {} deliveries are pending; the one "
                  "to {} for session {} waits in the outbox",
                  pending_.size(), row.client_id, row.session_id);
    return;
  }
  auto id = row.id;
  auto at = row.next_attempt_at;
  pending_.emplace(id, delivery{std::move(row), durable});
  count_pending();
  schedule(id, at);
}

void logout_state::forget(const std::string& id) {
  pending_.erase(id);
  count_pending();
}

void logout_state::count_pending() const {
  if (auto* s = stats())
    s->pending.store(static_cast<int64_t>(pending_.size()),
                     std::memory_order_relaxed);
}

void logout_state::schedule(const std::string& id, int64_t at_ms) {
  auto wait = at_ms - now_ms();
  if (wait <= 0) {
    ready_.push_back(id);
    dispatch();
    return;
  }
  self->delayed_send(self, std::chrono::milliseconds{wait}, atom::run_v, id);
}

void logout_state::attempt(const std::string& id) {
  if (pending_.count(id) == 0)
    return;
  ready_.push_back(id);
  dispatch();
}

void logout_state::dispatch() {
  for (size_t i = 0; i < posters_.size() && !ready_.empty(); ++i) {
    if (busy_[i])
      continue;
    auto id = ready_.front();
    ready_.pop_front();
    if (pending_.count(id) == 0)
      continue;
    send(id, i);
  }
}

void logout_state::send(const std::string& id, size_t poster) {
  auto& d = pending_.at(id);
  auto now = now_ms();
  if (now >= d.row.give_up_at) {
    auto why = d.row.last_error.empty() ? std::string{"no attempt was made"}
                                        : d.row.last_error;
    return finish(id, false, "gave up: " + why, 0);
  }
  busy_[poster] = true;
  auto release = [this, poster] {
    busy_[poster] = false;
    dispatch();
  };
  ++d.row.attempts;
  // The lease must outlast the attempt: renewed first when it would not.
  auto margin = opts.limits.timeout.count() + 2000;
  auto renew = d.durable && d.row.lease_until < now + margin;
  if (renew)
    d.row.lease_until = now + opts.limits.lease.count();
  auto post = [this, id, poster, release]() {
    auto it = pending_.find(id);
    if (it == pending_.end())
      return release();
    auto& row = it->second.row;
    token_request req;
    req.sub = row.sub;
    req.aud = {row.client_id};
    req.ttl_seconds = opts.token_ttl.count();
    req.typ = "logout+jwt";
    req.extra_claims_json
      = json{{"sid", row.sid}, {"events", {{backchannel_logout_event, json::object()}}}}
          .dump(-1, ' ', false, json::error_handler_t::replace);
    auto failed = [this, id, release](std::string why) {
      release();
      if (pending_.count(id) > 0)
        retry(id, std::move(why));
    };
    self->request(deps.keystore, local_request, atom::sign_v, req)
      .then(
        [=](signed_token& token) {
          if (auto* s = stats())
            s->attempts.fetch_add(1, std::memory_order_relaxed);
          auto uri = pending_.count(id) > 0 ? pending_.at(id).row.uri
                                            : std::string{};
          if (uri.empty())
            return release();
          self
            ->request(posters_[poster],
                      opts.limits.timeout + std::chrono::seconds{5},
                      atom::post_v, uri, logout_form(token.token))
            .then(
              [=](post_result& r) {
                release();
                if (pending_.count(id) > 0)
                  settle(id, r);
              },
              [=](caf::error& err) {
                failed("the attempt did not finish: " + caf::to_string(err));
              });
        },
        [=](caf::error& err) {
          failed("the logout token could not be signed: "
                 + context_text(err));
        });
  };
  if (!renew)
    return post();
  save(d, [this, id, post, release](bool owned) {
    if (owned)
      return post();
    release();
    spdlog::info("back-channel logout: delivery {} was taken over by another "
                 "node",
                 id);
    forget(id);
  });
}

void logout_state::settle(const std::string& id, const post_result& r) {
  std::string why;
  switch (judge_delivery(r, why)) {
    case delivery_verdict::delivered:
      return finish(id, true, std::move(why), r.status);
    case delivery_verdict::final:
      return finish(id, false, std::move(why), r.status);
    case delivery_verdict::retry:
      return retry(id, std::move(why));
  }
}

void logout_state::retry(const std::string& id, std::string why) {
  auto& d = pending_.at(id);
  std::uniform_real_distribution<double> jitter{0.5, 1.5};
  auto delay = retry_delay(opts, d.row.attempts, jitter(rng_));
  auto next = now_ms() + delay.count();
  d.row.last_error = bounded(why);
  if (next >= d.row.give_up_at)
    return finish(id, false,
                  "gave up after " + std::to_string(d.row.attempts)
                    + " attempts: " + why,
                  0);
  d.row.next_attempt_at = next;
  d.row.lease_until = next + opts.limits.lease.count();
  spdlog::debug("back-channel logout to {} failed (attempt {}), next in {} "
                "ms: {}",
                d.row.client_id, d.row.attempts, delay.count(), why);
  save(d, [this, id, next](bool owned) {
    if (!owned) {
      forget(id);
      return;
    }
    schedule(id, next);
  });
}

void logout_state::finish(const std::string& id, bool delivered,
                          std::string why, int status) {
  auto it = pending_.find(id);
  if (it == pending_.end())
    return;
  auto d = std::move(it->second);
  forget(id);
  if (auto* s = stats())
    (delivered ? s->delivered : s->failed)
      .fetch_add(1, std::memory_order_relaxed);
  json event{{"type", delivered ? "bcl.delivered" : "bcl.failed"},
             {"client_id", d.row.client_id},
             {"sid", d.row.session_id},
             {"sub", d.row.sub},
             {"attempts", d.row.attempts}};
  if (status != 0)
    event["status"] = status;
  if (!delivered)
    event["reason"] = why;
  audit(std::move(event), d.row.posture);
  if (!delivered)
    spdlog::warn("back-channel logout to {} for session {} failed after {} "
                 "attempts: {}",
                 d.row.client_id, d.row.session_id, d.row.attempts, why);
  if (!d.durable)
    return;
  auto worker = deps.store->worker();
  if (!worker) {
    spdlog::warn("back-channel logout: delivery {} stays in the outbox (it "
                 "may be sent again): {}",
                 id, context_text(worker.error()));
    return;
  }
  self
    ->request(*worker, local_request, atom::remove_v, atom::logout_v, id,
              d.row.owner)
    .then([](bool) {},
          [id](caf::error& err) {
            spdlog::warn("back-channel logout: delivery {} stays in the "
                         "outbox (it may be sent again): {}",
                         id, context_text(err));
          });
}

void logout_state::save(const delivery& d, std::function<void(bool)> then) {
  if (!d.durable)
    return then(true);
  auto worker = deps.store->worker();
  if (!worker) {
    // The database is down: nobody can take the delivery over meanwhile.
    return then(true);
  }
  self->request(*worker, local_request, atom::update_v, d.row)
    .then([then](bool owned) { then(owned); },
          [then](caf::error&) { then(true); });
}

void logout_state::poll(uint64_t id) {
  if (id != poll_id_)
    return;
  self->delayed_send(self, opts.limits.poll_interval, atom::tick_v,
                     ++poll_id_);
  if (!deps.store || pending_.size() >= max_pending)
    return;
  auto worker = deps.store->worker();
  if (!worker)
    return;
  auto now = now_ms();
  self
    ->request(*worker, local_request, atom::reserve_v, atom::logout_v,
              owner(), now, now + opts.limits.lease.count(), takeover_batch)
    .then(
      [this](outbox_rows& rows) {
        size_t taken = 0;
        for (auto& r : rows)
          if (pending_.count(r.id) == 0) {
            ++taken;
            add(std::move(r), true);
          }
        if (taken == 0)
          return;
        if (auto* s = stats())
          s->taken_over.fetch_add(taken, std::memory_order_relaxed);
        spdlog::info("back-channel logout: took over {} deliveries whose "
                     "owner stopped",
                     taken);
      },
      [](caf::error& err) {
        spdlog::debug("back-channel logout: the outbox was not polled: {}",
                      context_text(err));
      });
}

logout_actor::behavior_type logout_service(logout_pointer self,
                                           logout_options opts,
                                           logout_deps deps) {
  auto& st = self->state;
  st.self = self;
  st.opts = std::move(opts);
  st.deps = std::move(deps);
  st.start();
  return {
    [self](atom::logout, session_endings& endings) {
      auto rp = self->make_response_promise<logout_receipt>();
      self->state.enqueue(std::move(endings), rp);
      return rp;
    },
    [self](atom::tick, uint64_t id) { self->state.poll(id); },
    [self](atom::run, std::string& id) { self->state.attempt(id); },
  };
}

logout_actor spawn_logout(caf::actor_system& sys, const logout_options& opts,
                          const logout_deps& deps) {
  return sys.spawn(logout_service, opts, deps);
}

} // namespace keymesh
