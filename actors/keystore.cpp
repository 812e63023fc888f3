#include "actors/keystore.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <functional>

#include <openssl/crypto.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/error.hpp"
#include "common/base64url.hpp"
#include "jose/jws.hpp"
#include "persistence/data_dir.hpp"
#include "persistence/sealed.hpp"
#include "common/random.hpp"

namespace keymesh {

namespace {

int64_t unix_ms_or_zero(time_point t) {
  return t == time_point::max() ? 0 : to_unix_ms(t);
}

// Registered claims that callers cannot set through "claims".
constexpr const char* reserved_claims[]
  = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"};

} // namespace

caf::expected<keystore_options>
keystore_options::from_settings(const config::settings& cfg,
                                std::string instance_id) {
  keystore_options opts;
  auto alg = jose::parse_algorithm(cfg.keys.algorithm);
  if (!alg)
    return make_error(ec::invalid_argument,
                      "keys.algorithm: unsupported algorithm "
                        + cfg.keys.algorithm);
  opts.algorithm = *alg;
  opts.rotate_every = cfg.keys.rotate_every;
  opts.max_token_ttl = cfg.keys.max_token_ttl;
  opts.default_token_ttl = cfg.keys.default_token_ttl;
  opts.leeway = cfg.keys.leeway;
  opts.issuer = config::issuer_of(cfg);
  opts.audience = cfg.keys.audience;
  opts.instance_id = std::move(instance_id);
  return opts;
}

void keystore_state::configure(keystore_options opts) {
  opts_ = std::move(opts);
  next_sequence_ = opts_.first_sequence;
  // Kept keys come back while they are still published; advance() then
  // announces them (serial 0) and carries on with their schedule.
  auto now = opts_.clock();
  for (auto& k : opts_.restored_keys)
    if (k.expire_at > now)
      keys_.push_back(std::move(k));
  opts_.restored_keys.clear();
  if (!keys_.empty())
    spdlog::info("keystore: {} kept signing key{} restored", keys_.size(),
                 keys_.size() == 1 ? "" : "s");
  auto bytes = keymesh::random_bytes(sizeof(incarnation_));
  std::memcpy(&incarnation_, bytes.data(), sizeof(incarnation_));
}

managed_key keystore_state::make_key(time_point now, time_point sign_from) {
  managed_key k{opts_.instance_id + "-" + std::to_string(next_sequence_),
                jose::key::generate(opts_.algorithm), now, sign_from};
  ++next_sequence_;
  if (opts_.persist_sequence)
    opts_.persist_sequence(next_sequence_);
  spdlog::info("keystore: generated {} key {} (signs from {} ms)",
               jose::to_string(opts_.algorithm), k.kid, to_unix_ms(sign_from));
  return k;
}

bool keystore_state::advance(time_point now) {
  // Restored keys have never been announced by this process.
  bool changed = serial_ == 0 && !keys_.empty();
  if (keys_.empty()) {
    keys_.push_back(make_key(now, now));
    changed = true;
  }
  // Retired keys leave once every token they signed has expired. The key that
  // signs now is never dropped.
  while (keys_.size() > 1 && keys_.front().expire_at <= now) {
    spdlog::info("keystore: unpublished expired key {}", keys_.front().kid);
    keys_.pop_front();
    changed = true;
  }
  // The newest key signs: publish its successor one rotation ahead. The key
  // is made first, so a failure leaves the schedule as it was.
  if (keys_.back().sign_from <= now) {
    auto next_from = keys_.back().sign_from + opts_.rotate_every;
    if (next_from <= now) // the process slept through a rotation
      next_from = now + opts_.rotate_every;
    auto next = make_key(now, next_from);
    auto& current = keys_.back();
    current.retire_at = next_from;
    current.expire_at = next_from + opts_.max_token_ttl + opts_.leeway
                        + opts_.ack_wait;
    keys_.push_back(std::move(next));
    changed = true;
  }
  if (changed) {
    ++serial_;
    for (auto& k : keys_)
      if (k.first_serial == 0)
        k.first_serial = serial_;
  }
  if (changed || save_pending_)
    save();
  return changed;
}

void keystore_state::save() {
  if (!opts_.save_keys)
    return;
  // Until it works, every advance() tries again (the keys in memory sign
  // meanwhile; only a restart would lose them).
  try {
    opts_.save_keys(keys_);
    if (save_pending_)
      spdlog::info("keystore: signing keys stored again");
    save_pending_ = false;
  } catch (const std::exception& e) {
    if (!save_pending_)
      spdlog::error("keystore: cannot store the signing keys, retrying: {}",
                    e.what());
    save_pending_ = true;
  }
}

const managed_key* keystore_state::signing_key(time_point now) const {
  const managed_key* result = nullptr;
  for (auto& k : keys_)
    if (k.sign_from <= now
        && (result == nullptr || k.acknowledged
            || now >= k.sign_from + opts_.ack_wait))
      result = &k;
  return result;
}

void keystore_state::acknowledge(uint64_t serial) {
  for (auto& k : keys_)
    if (k.first_serial != 0 && k.first_serial <= serial)
      k.acknowledged = true;
}

std::pair<std::string, std::string> keystore_state::rotate_now(time_point now) {
  advance(now);
  if (keys_.size() < 2 || keys_.back().sign_from <= now)
    throw std::runtime_error("no pre-published key to rotate to");
  auto next_from = now + opts_.rotate_every;
  auto successor = make_key(now, next_from);
  auto margin = opts_.max_token_ttl + opts_.leeway + opts_.ack_wait;
  // Everything that signed until now retires now.
  for (auto& k : keys_)
    if (k.sign_from <= now && k.retire_at > now) {
      k.retire_at = now;
      k.expire_at = now + margin;
    }
  auto& next = keys_.back();
  next.sign_from = now;
  next.retire_at = next_from;
  next.expire_at = next_from + margin;
  keys_.push_back(std::move(successor));
  keys_.back().first_serial = ++serial_;
  auto kids = std::make_pair(next.kid, keys_.back().kid);
  save();
  return kids;
}

signed_token keystore_state::sign(const token_request& req,
                                  time_point now) const {
  auto* k = signing_key(now);
  if (k == nullptr)
    throw jose::jose_error("no signing key");
  nlohmann::json claims = nlohmann::json::object();
  if (!req.extra_claims_json.empty()) {
    claims = nlohmann::json::parse(req.extra_claims_json, nullptr, false);
    if (!claims.is_object())
      throw std::invalid_argument("extra claims are not a JSON object");
    for (auto name : reserved_claims)
      claims.erase(name);
  }
  auto ttl = req.ttl_seconds > 0 ? std::chrono::seconds{req.ttl_seconds}
                                 : opts_.default_token_ttl;
  ttl = std::min(ttl, opts_.max_token_ttl);
  auto iat = to_unix_seconds(now);
  auto exp = iat + ttl.count();
  if (!opts_.issuer.empty())
    claims["iss"] = opts_.issuer;
  claims["sub"] = req.sub;
  if (req.aud.size() == 1)
    claims["aud"] = req.aud.front();
  else if (req.aud.size() > 1)
    claims["aud"] = req.aud;
  else if (!opts_.audience.empty())
    claims["aud"] = opts_.audience;
  claims["iat"] = iat;
  claims["exp"] = exp;
  claims["jti"] = keymesh::base64url_encode(keymesh::random_bytes(16));
  std::string_view typ = req.typ.empty() ? std::string_view{"JWT"}
                                        : std::string_view{req.typ};
  if (typ.size() > 64
      || !std::all_of(typ.begin(), typ.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '+'
                  || c == '-' || c == '.' || c == '/';
         }))
    throw std::invalid_argument("typ must be at most 64 characters of "
                                "A-Z a-z 0-9 + - . /");
  return signed_token{jose::sign_compact(k->key, k->kid, claims, typ), k->kid,
                      exp};
}

key_announcement keystore_state::announcement() const {
  key_announcement result;
  result.origin = opts_.instance_id;
  result.incarnation = incarnation_;
  result.serial = serial_;
  for (auto& k : keys_)
    result.keys.push_back(public_key_info{
      k.kid, std::string{jose::to_string(k.key.alg())}, k.key.public_jwk().dump(),
      to_unix_ms(k.created_at), to_unix_ms(k.sign_from),
      unix_ms_or_zero(k.retire_at), unix_ms_or_zero(k.expire_at)});
  return result;
}

time_point keystore_state::next_event() const {
  auto result = time_point::max();
  if (!keys_.empty())
    result = keys_.back().sign_from;
  for (auto& k : keys_)
    result = std::min(result, k.expire_at);
  return result;
}

namespace {

void schedule_tick(keystore_pointer self);

/// Sends the current keys to the federation, which acknowledges once every
/// live peer has them; DONE (may be empty) runs either way.
void announce(keystore_pointer self, const federation_actor& federation,
              std::function<void()> done = {}) {
  if (!federation) {
    self->state.acknowledge(self->state.serial());
    if (done)
      done();
    return;
  }
  auto serial = self->state.serial();
  // The federation answers after the peers' acks or its bounded wait.
  auto timeout = std::max<std::chrono::milliseconds>(
    std::chrono::seconds{10},
    self->state.options().ack_wait + std::chrono::seconds{5});
  self->request(federation, timeout, atom::announce_v,
                self->state.announcement())
    .then(
      [self, serial, done](atom::ok) {
        self->state.announce_pending = false;
        self->state.acknowledge(serial);
        if (done)
          done();
      },
          [self, done](caf::error& err) {
            if (done)
              done();
            // Announce again within a second (a new tick replaces the
            // pending one).
            self->state.announce_pending = true;
            schedule_tick(self);
            spdlog::warn("keystore: federation did not take the new keys: {}",
                         caf::to_string(err));
          });
}

/// Announces a key set that just changed: to the on_announce hook once,
/// then to the federation (whose retries go through announce() alone).
void announce_change(keystore_pointer self, const federation_actor& federation,
                     std::function<void()> done = {}) {
  if (auto& hook = self->state.options().on_announce)
    hook(self->state.announcement());
  announce(self, federation, std::move(done));
}

// Runs the schedule and announces a changed key set. A failure (no entropy,
// an unwritable data directory) is logged once per streak and retried with
// back-off; the current key keeps signing meanwhile.
void apply_schedule(keystore_pointer self, const federation_actor& federation) {
  auto& st = self->state;
  try {
    if (st.advance(st.now()))
      announce_change(self, federation);
    if (st.failures > 0)
      spdlog::info("keystore: key schedule applied again after {} failures",
                   st.failures);
    st.failures = 0;
  } catch (const std::exception& e) {
    if (st.failures++ == 0)
      spdlog::error("keystore: cannot apply the key schedule, retrying with "
                    "back-off: {}",
                    e.what());
  }
}

// Wakes the keystore at its next scheduled change; at least once a minute so
// that a jump of the wall clock is noticed; sooner to retry a failure.
void schedule_tick(keystore_pointer self) {
  using std::chrono::milliseconds;
  auto& st = self->state;
  auto now = st.now();
  auto next = st.next_event();
  auto delay = milliseconds{60'000};
  if (st.failures > 0)
    delay = std::min(delay, milliseconds{250LL << std::min(st.failures, 8u)});
  else if (next != time_point::max() && next - now < delay)
    delay = std::max(milliseconds{1},
                     std::chrono::duration_cast<milliseconds>(next - now)
                       + milliseconds{1});
  if (st.announce_pending || st.save_pending())
    delay = std::min(delay, milliseconds{1000});
  self->delayed_send(self, delay, atom::tick_v, ++st.timer_id);
}

} // namespace

keystore_actor::behavior_type keystore(keystore_pointer self,
                                       keystore_options opts,
                                       federation_actor federation) {
  self->state.configure(std::move(opts));
  apply_schedule(self, federation);
  if (self->state.keys().empty()) {
    spdlog::error("keystore: cannot create the first signing key; stopping");
    self->quit(make_error(ec::crypto_failure, "no signing key"));
  }
  schedule_tick(self);
  return {
    [=](atom::sign, const token_request& req) -> caf::result<signed_token> {
      apply_schedule(self, federation);
      auto& st = self->state;
      auto now = st.now();
      if (auto* k = st.signing_key(now);
          k != nullptr && !k->acknowledged && st.options().ack_wait.count() > 0
          && now >= k->sign_from + st.options().ack_wait
          && st.warned_unacknowledged != k->kid) {
        st.warned_unacknowledged = k->kid;
        spdlog::warn("keystore: key {} signs although not every peer has "
                     "acknowledged it (waited {} ms)",
                     k->kid, st.options().ack_wait.count());
      }
      try {
        return self->state.sign(req, now);
      } catch (const std::invalid_argument& e) {
        return make_error(ec::invalid_argument, e.what());
      } catch (const std::exception& e) {
        spdlog::error("keystore: signing failed: {}", e.what());
        return make_error(ec::crypto_failure, e.what());
      }
    },
    [=](atom::get, atom::keys) { return self->state.announcement(); },
    [=](atom::rotate) -> caf::result<std::string, std::string> {
      std::pair<std::string, std::string> kids;
      try {
        kids = self->state.rotate_now(self->state.now());
      } catch (const std::exception& e) {
        spdlog::error("keystore: rotation failed: {}", e.what());
        return make_error(ec::crypto_failure, e.what());
      }
      spdlog::info("keystore: rotated on request: {} signs, {} is next",
                   kids.first, kids.second);
      auto rp = self->make_response_promise<std::string, std::string>();
      // Answer once the peers have the new next key (or the wait is over).
      announce_change(self, federation, [rp, kids]() mutable {
        rp.deliver(kids.first, kids.second);
      });
      return rp;
    },
    [=](atom::tick, uint64_t id) {
      if (id != self->state.timer_id)
        return;
      apply_schedule(self, federation);
      if (self->state.announce_pending)
        announce(self, federation);
      schedule_tick(self);
    },
  };
}

// -- kept keys (a single node) ----------------------------------------------------

namespace {

std::string keys_aad(const std::string& instance_id) {
  return "keymesh signing keys v1 " + instance_id;
}

time_point time_or_max(int64_t ms) {
  return ms == 0 ? time_point::max() : from_unix_ms(ms);
}

} // namespace

void save_signing_keys(const std::string& path,
                       const std::string& encryption_key,
                       const std::string& instance_id,
                       const std::deque<managed_key>& keys) {
  auto doc = nlohmann::json{{"format", 1}, {"keys", nlohmann::json::array()}};
  for (auto& k : keys)
    doc["keys"].push_back({{"kid", k.kid},
                           {"jwk", k.key.private_jwk()},
                           {"created_at", to_unix_ms(k.created_at)},
                           {"sign_from", to_unix_ms(k.sign_from)},
                           {"retire_at", unix_ms_or_zero(k.retire_at)},
                           {"expire_at", unix_ms_or_zero(k.expire_at)}});
  auto plain = doc.dump();
  auto sealed = persistence::seal(encryption_key, plain, keys_aad(instance_id));
  // The plaintext held private keys: wipe it before it is freed.
  OPENSSL_cleanse(plain.data(), plain.size());
  persistence::write_file_atomically(path, sealed, 0600);
}

std::deque<managed_key> load_signing_keys(const std::string& path,
                                          const std::string& encryption_key,
                                          const std::string& instance_id,
                                          const std::string& key_source) {
  std::error_code err;
  if (!std::filesystem::exists(path, err))
    return {};
  auto sealed = persistence::read_small_file(path, 16 << 20);
  auto plain = persistence::unseal(encryption_key, sealed,
                                   keys_aad(instance_id));
  if (!plain)
    throw persistence::storage_error(
      path + " cannot be opened with " + key_source
      + ": it was sealed with another key or for another instance id, or it "
        "was changed. Restore the right key file (or move this file away to "
        "start with new keys: tokens it signed stop verifying)");
  std::deque<managed_key> out;
  try {
    auto doc = nlohmann::json::parse(*plain);
    OPENSSL_cleanse(plain->data(), plain->size());
    if (doc.at("format").get<int>() != 1)
      throw std::invalid_argument("unknown format");
    for (auto& k : doc.at("keys")) {
      managed_key m{k.at("kid").get<std::string>(),
                    jose::key::from_jwk(k.at("jwk")),
                    from_unix_ms(k.at("created_at").get<int64_t>()),
                    from_unix_ms(k.at("sign_from").get<int64_t>())};
      if (!m.key.has_private())
        throw std::invalid_argument("a key without its private part");
      m.retire_at = time_or_max(k.at("retire_at").get<int64_t>());
      m.expire_at = time_or_max(k.at("expire_at").get<int64_t>());
      out.push_back(std::move(m));
    }
  } catch (const std::exception&) {
    // Authenticated but not understood (a newer keymesh wrote it?).
    throw persistence::storage_error(path + " holds a key set this keymesh "
                                            "cannot read");
  }
  return out;
}

caf::expected<keystore_actor> spawn_keystore(caf::actor_system& sys,
                                             keystore_options opts,
                                             federation_actor federation) {
  if (opts.instance_id.empty())
    return make_error(ec::invalid_argument, "keystore: empty instance id");
  if (opts.rotate_every.count() <= 0 || opts.max_token_ttl.count() <= 0)
    return make_error(ec::invalid_argument,
                      "keystore: rotate_every and max_token_ttl must be > 0");
  if (opts.default_token_ttl > opts.max_token_ttl)
    return make_error(ec::invalid_argument,
                      "keystore: default_token_ttl exceeds max_token_ttl");
  if (!opts.clock)
    opts.clock = system_wall_clock();
  if (opts.own_thread)
    return sys.spawn<caf::detached>(keystore, std::move(opts),
                                    std::move(federation));
  return sys.spawn(keystore, std::move(opts), std::move(federation));
}

} // namespace keymesh
