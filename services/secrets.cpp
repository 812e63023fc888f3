#include "services/secrets.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/error.hpp"
#include "persistence/sealed.hpp"

namespace keymesh {

using nlohmann::json;

// -- the board and its in-process users -------------------------------------------

std::shared_ptr<const state::secret_ring>
secret_board::get(std::string_view purpose) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto i = rings_.find(purpose);
  return i == rings_.end() ? nullptr : i->second;
}

void secret_board::replace(std::shared_ptr<const state::secret_ring> ring) {
  std::lock_guard<std::mutex> guard{mutex_};
  rings_[ring->purpose] = std::move(ring);
}

dpop_nonces::dpop_nonces(std::shared_ptr<const secret_board> board,
                         wall_clock clock, std::chrono::milliseconds window)
  : board_(std::move(board)),
    clock_(std::move(clock)),
    window_ms_(window.count()) {
}

std::string dpop_nonces::issue() const {
  auto ring = board_->get(dpop_purpose);
  return ring ? state::make_dpop_nonce(*ring, to_unix_ms(clock_()), window_ms_)
              : std::string{};
}

bool dpop_nonces::check(std::string_view nonce) const {
  auto ring = board_->get(dpop_purpose);
  return ring
         && state::dpop_nonce_valid(*ring, nonce, to_unix_ms(clock_()),
                                    window_ms_);
}

cookie_sealer::cookie_sealer(std::shared_ptr<const secret_board> board,
                             wall_clock clock)
  : board_(std::move(board)), clock_(std::move(clock)) {
}

std::optional<std::string> cookie_sealer::seal(std::string_view plaintext,
                                               std::string_view aad) const {
  auto ring = board_->get(cookies_purpose);
  if (!ring)
    return std::nullopt;
  auto sealed = state::seal_cookie(*ring, plaintext, aad,
                                   to_unix_ms(clock_()));
  if (sealed.empty())
    return std::nullopt;
  return sealed;
}

std::optional<std::string> cookie_sealer::open(std::string_view sealed,
                                               std::string_view aad) const {
  auto ring = board_->get(cookies_purpose);
  if (!ring)
    return std::nullopt;
  return state::open_cookie(*ring, sealed, aad, to_unix_ms(clock_()));
}

bool cookie_sealer::knows_key_of(std::string_view sealed) const {
  auto ring = board_->get(cookies_purpose);
  auto kid = state::sealed_cookie_kid(sealed);
  if (!ring || !kid)
    return false;
  for (auto& k : ring->keys)
    if (k.kid == *kid)
      return true;
  return false;
}

// -- options ------------------------------------------------------------------------

caf::expected<secrets_options>
secrets_options::from_settings(const config::settings& c) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  secrets_options opts;
  auto lead = c.secrets.install_lead.count();
  auto window = c.dpop.nonce_window.count();
  opts.dpop.rotate_every_ms
    = duration_cast<milliseconds>(c.dpop.rotate_every).count();
  opts.dpop.install_lead_ms = lead;
  // A nonce holds for its window and the next: the key that made it stays
  // that long after its successor took over.
  opts.dpop.overlap_ms = 2 * window;
  opts.cookies.rotate_every_ms
    = duration_cast<milliseconds>(c.cookies.rotate_every).count();
  opts.cookies.install_lead_ms = lead;
  opts.cookies.overlap_ms
    = duration_cast<milliseconds>(c.cookies.overlap).count();
  opts.refresh_interval = c.secrets.refresh_interval;
  // A node that misses the bus event still re-reads the ring before the
  // new key signs anywhere.
  if (c.secrets.install_lead < 2 * c.secrets.refresh_interval)
    return make_error(ec::invalid_argument,
                      "secrets.install_lead must be at least twice "
                      "secrets.refresh_interval");
  if (opts.dpop.rotate_every_ms <= lead + 2 * window)
    return make_error(ec::invalid_argument,
                      "dpop.rotate_every must be longer than "
                      "secrets.install_lead plus two dpop.nonce_window");
  if (opts.cookies.rotate_every_ms <= lead)
    return make_error(ec::invalid_argument,
                      "cookies.rotate_every must be longer than "
                      "secrets.install_lead");
  return opts;
}

const state::ring_policy&
secrets_options::policy(std::string_view purpose) const {
  return purpose == dpop_purpose ? dpop : cookies;
}

// -- the service ----------------------------------------------------------------------

namespace {

bool known_purpose(std::string_view purpose) {
  return purpose == dpop_purpose || purpose == cookies_purpose;
}

std::string ring_aad(const std::string& purpose) {
  return "keymesh secret ring " + purpose;
}

} // namespace

int64_t secrets_state::now_ms() const {
  return to_unix_ms(deps.clock());
}

void secrets_state::settle(const std::string& purpose, caf::error err) {
  auto& t = tracks[purpose];
  t.busy = false;
  // A rotation asked for meanwhile runs now, and answers the waiting
  // promises itself; so does a re-read a bus event asked for.
  if (t.pending_force) {
    t.pending_force = false;
    t.dirty = false;
    return refresh(purpose, true);
  }
  auto ring = deps.board->get(purpose);
  auto promises = std::move(t.waiting);
  t.waiting.clear();
  for (auto& rp : promises) {
    if (err)
      rp.deliver(err);
    else if (!ring)
      rp.deliver(make_error(ec::unavailable, "no " + purpose + " ring yet"));
    else
      rp.deliver(ring->generation);
  }
  if (deps.status && deps.board->get(dpop_purpose)
      && deps.board->get(cookies_purpose))
    deps.status->secrets_ready = true;
  if (t.dirty) {
    t.dirty = false;
    refresh(purpose);
  }
}

void secrets_state::adopt(const std::string& purpose, ring_ptr ring,
                          bool announce) {
  auto generation = ring->generation;
  auto held = deps.board->get(purpose);
  if (!held || held->generation != generation || held->keys.size()
      != ring->keys.size() || held->keys.front().kid != ring->keys.front().kid)
    spdlog::info("secrets: {} ring generation {} ({} key(s))", purpose,
                 generation, ring->keys.size());
  deps.board->replace(ring);
  if (announce && deps.bus)
    caf::anon_send(deps.bus, atom::publish_v, std::string{secrets_topic},
                   json{{"purpose", purpose}, {"generation", generation}}
                     .dump());
  // Every node that adopts a newer ring writes it (sealed): the last one
  // written before a restart of the whole cluster is the newest, since the
  // store keeps the higher generation.
  if (opts.encryption_key.empty() || !deps.store
      || tracks[purpose].persisted >= generation)
    return;
  auto worker = deps.store->worker();
  if (!worker)
    return;
  // Counted as written at once: one write per generation and node.
  tracks[purpose].persisted = generation;
  persistence::secret_row row;
  row.purpose = purpose;
  row.generation = static_cast<int64_t>(generation);
  row.sealed = persistence::seal(opts.encryption_key, state::encode_ring(*ring),
                                 ring_aad(purpose));
  row.updated_at = now_ms();
  self->request(*worker, secrets_request_timeout, atom::put_v, std::move(row))
    .then([](atom::ok) {},
          [this, purpose, generation](caf::error& err) {
            spdlog::warn("secrets: could not write the {} ring to the "
                         "database: {}",
                         purpose, self->system().render(err));
            if (auto& t = tracks[purpose]; t.persisted == generation)
              t.persisted = generation - 1; // tried again next time
          });
}

void secrets_state::load(const std::string& purpose,
                         std::function<void(ring_ptr, uint64_t)> done) {
  if (opts.encryption_key.empty() || !deps.store)
    return done(nullptr, 1);
  auto worker = deps.store->worker();
  if (!worker)
    return settle(purpose, std::move(worker.error()));
  self
    ->request(*worker, secrets_request_timeout, atom::get_v, atom::ring_v,
              purpose)
    .then(
      [this, purpose, done](secret_rows& rows) {
        if (rows.empty())
          return done(nullptr, 1);
        auto& row = rows.front();
        auto plain = persistence::unseal(opts.encryption_key, row.sealed,
                                         ring_aad(purpose));
        auto ring = plain ? state::decode_ring(*plain) : std::nullopt;
        if (!ring || ring->purpose != purpose) {
          // A new ring above the stored generation, so that the database
          // takes it.
          spdlog::error("secrets: the database's {} ring does not open with "
                        "this node's secrets key (another cluster's, or "
                        "damaged): making a new one",
                        purpose);
          return done(nullptr, static_cast<uint64_t>(
                                 std::max<int64_t>(row.generation, 0))
                                 + 1);
        }
        tracks[purpose].persisted = ring->generation;
        done(std::make_shared<const state::secret_ring>(std::move(*ring)), 0);
      },
      [this, purpose](caf::error& err) {
        // Not a reason for a new ring (every cookie would stop opening):
        // the next tick tries again.
        spdlog::warn("secrets: could not read the {} ring from the "
                     "database: {}",
                     purpose, self->system().render(err));
        settle(purpose, std::move(err));
      });
}

void secrets_state::write(const std::string& purpose, ring_ptr ring,
                          write_condition c, state::version expected,
                          bool force, int attempt) {
  write_request w;
  w.keyspace = state::secrets_keyspace;
  w.key = purpose;
  w.value = state::encode_ring(*ring);
  w.condition = c;
  w.expected = expected;
  // A decision: of two nodes creating or rotating a ring at once, one
  // writes it and the other adopts that one.
  w.decide = true;
  self
    ->request(deps.state.shard_for(purpose), secrets_request_timeout,
              atom::put_v, w)
    .then(
      [this, purpose, ring](write_result&) {
        adopt(purpose, ring, true);
        settle(purpose);
      },
      [this, purpose, force, attempt](caf::error& err) {
        if ((has_code(err, ec::conflict) || has_code(err, ec::not_found))
            && attempt + 1 < max_ring_attempts)
          // Another node wrote first: take its ring (and rotate it if
          // that was asked).
          return refresh(purpose, force, attempt + 1);
        settle(purpose, std::move(err));
      });
}

void secrets_state::refresh(const std::string& purpose, bool force,
                            int attempt) {
  tracks[purpose].busy = true;
  read_request r{state::secrets_keyspace, purpose, 0};
  self
    ->request(deps.state.shard_for(purpose), secrets_request_timeout,
              atom::get_v, r)
    .then(
      [this, purpose, force, attempt](read_result& found) {
        auto exists = found.found && !found.rec.tombstone;
        std::optional<state::secret_ring> ring;
        if (exists)
          ring = state::decode_ring(found.rec.value);
        auto now = now_ms();
        if (!ring) {
          // The first node of a cluster (or of a cluster restarted whole):
          // the database's ring, else a new one. A record that does not
          // decode (damaged) is replaced at its version.
          auto ver = found.rec.ver;
          return load(purpose, [this, purpose, exists, ver, now, force,
                                attempt](ring_ptr stored, uint64_t next) {
            if (!stored) {
              auto fresh = state::new_ring(purpose, now);
              fresh.generation = std::max<uint64_t>(next, 1);
              stored = std::make_shared<const state::secret_ring>(
                std::move(fresh));
            }
            write(purpose, stored,
                  exists ? write_condition::version_is
                         : write_condition::absent,
                  ver, force, attempt);
          });
        }
        auto held = deps.board->get(purpose);
        if (held && held->generation > ring->generation) {
          // The state lost the ring this node holds (its owners crashed):
          // write that one back rather than step back.
          return write(purpose, held, write_condition::version_is,
                       found.rec.ver, force, attempt);
        }
        adopt(purpose, std::make_shared<const state::secret_ring>(*ring),
              false);
        if (force || state::rotation_due(*ring, now, opts.policy(purpose)))
          return write(purpose,
                       std::make_shared<const state::secret_ring>(
                         state::rotated(*ring, now, opts.policy(purpose))),
                       write_condition::version_is, found.rec.ver, false,
                       attempt);
        settle(purpose);
      },
      [this, purpose](caf::error& err) { settle(purpose, std::move(err)); });
}

secrets_actor::behavior_type secrets_service(secrets_pointer self,
                                             secrets_options opts,
                                             secrets_deps deps) {
  auto& s = self->state;
  s.self = self;
  s.opts = std::move(opts);
  s.deps = std::move(deps);
  if (s.deps.status)
    s.deps.status->secrets_ready = false;
  if (s.deps.bus)
    self->send(s.deps.bus, atom::subscribe_v,
               std::vector<std::string>{secrets_topic},
               caf::actor_cast<caf::actor>(self));
  for (auto purpose : {dpop_purpose, cookies_purpose})
    s.refresh(purpose);
  self->delayed_send(self, s.opts.refresh_interval, atom::tick_v, ++s.timer);
  auto ask = [self, &s](std::string& purpose, bool force)
    -> caf::result<uint64_t> {
    if (!known_purpose(purpose))
      return make_error(ec::invalid_argument,
                        "a purpose is \"dpop\" or \"cookies\"");
    auto rp = self->make_response_promise<uint64_t>();
    auto& t = s.tracks[purpose];
    t.waiting.push_back(rp);
    if (!t.busy)
      s.refresh(purpose, force);
    else if (force)
      t.pending_force = true;
    return rp;
  };
  return {
    [ask](atom::update, std::string& purpose) mutable {
      return ask(purpose, false);
    },
    [ask](atom::rotate, std::string& purpose) mutable {
      return ask(purpose, true);
    },
    [&s](atom::event, const bus_event& e) {
      auto j = json::parse(e.payload, nullptr, false);
      if (!j.is_object() || !j.contains("purpose")
          || !j["purpose"].is_string())
        return;
      auto purpose = j["purpose"].get<std::string>();
      if (!known_purpose(purpose))
        return;
      auto held = s.deps.board->get(purpose);
      auto generation = j.value("generation", uint64_t{0});
      if (held && held->generation >= generation)
        return;
      if (auto& t = s.tracks[purpose]; t.busy)
        t.dirty = true; // re-read once the running one settles
      else
        s.refresh(purpose);
    },
    [self, &s](atom::tick, uint64_t id) {
      if (id != s.timer)
        return;
      for (auto purpose : {dpop_purpose, cookies_purpose})
        if (!s.tracks[purpose].busy)
          s.refresh(purpose);
      self->delayed_send(self, s.opts.refresh_interval, atom::tick_v,
                         ++s.timer);
    },
  };
}

secrets_actor spawn_secrets(caf::actor_system& sys,
                            const secrets_options& opts,
                            const secrets_deps& deps) {
  return sys.spawn(secrets_service, opts, deps);
}

} // namespace keymesh
