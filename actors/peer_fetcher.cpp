#include "actors/peer_fetcher.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <random>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/error.hpp"
#include "common/clock.hpp"
#include "jose/jws.hpp"
#include "jose/key.hpp"

namespace keymesh {

namespace {

constexpr size_t max_kid_length = 256;
/// More keys than this in one peer's JWKS: the rest are refused.
constexpr size_t max_peer_keys = 64;
/// A peer's JWKS is read up to this size (64 RSA-4096 keys take ~60 KiB).
constexpr size_t max_peer_jwks_bytes = 256 * 1024;
// How many refusals a log line lists before it summarises the rest.
constexpr size_t problems_in_log = 3;
constexpr unsigned max_backoff_factor = 8;

/// KID as it may appear in a log line: printable ASCII only, shortened.
std::string printable(std::string_view kid) {
  std::string out;
  for (char c : kid.substr(0, 64))
    out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  if (kid.size() > 64)
    out += "...";
  return out;
}

std::string summarise(const std::vector<std::string>& problems) {
  std::string out;
  for (size_t i = 0; i < problems.size() && i < problems_in_log; ++i)
    out += (i == 0 ? "" : "; ") + problems[i];
  if (problems.size() > problems_in_log)
    out +=
        "; and " + std::to_string(problems.size() - problems_in_log) + " more";
  return out;
}

bool same_keys(const public_key_list& a, const public_key_list& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const public_key_info& x, const public_key_info& y) {
                      return x.kid == y.kid && x.alg == y.alg && x.jwk == y.jwk;
                    });
}

/// One key of a peer's JWKS, or nullopt with a problem reported. A key
/// KNOWN already (by thumbprint) is taken as it was, without an import.
std::optional<public_key_info>
parse_peer_key(const nlohmann::json& entry, std::string where,
               std::vector<std::string>& problems, const imported_keys* known,
               size_t& imports) {
  auto refuse = [&](const std::string& why) -> std::optional<public_key_info> {
    problems.push_back(where + ": " + why + "; refused");
    return std::nullopt;
  };
  if (!entry.is_object())
    return refuse("not an object");
  auto kid = entry.find("kid");
  if (kid == entry.end() || !kid->is_string())
    return refuse("no string \"kid\"");
  const auto& kid_text = kid->get_ref<const std::string&>();
  if (kid_text.empty() || kid_text.size() > max_kid_length)
    return refuse("\"kid\" must have 1 to " + std::to_string(max_kid_length) +
                  " characters");
  where += " (kid \"" + printable(kid_text) + "\")";
  if (auto use = entry.find("use");
      use != entry.end() && (!use->is_string() || *use != "sig"))
    return refuse("\"use\" is not \"sig\"");
  std::optional<jose::algorithm> named;
  if (auto alg = entry.find("alg"); alg != entry.end()) {
    if (!alg->is_string())
      return refuse("\"alg\" is not a string");
    named = jose::parse_algorithm(alg->get_ref<const std::string&>());
    if (!named)
      return refuse("alg \"" + printable(alg->get_ref<const std::string&>()) +
                    "\" is not supported");
  }
  if (known != nullptr)
    if (auto print = jose::thumbprint_of(entry)) {
      auto hit = known->find(*print);
      if (hit != known->end() && !jose::key::carries_private_members(entry)
          && (!named || jose::to_string(*named) == hit->second.alg)) {
        auto info = hit->second;
        info.kid = kid_text;
        return info;
      }
    }
  // The alg is checked here, against the key's type, for a clearer message.
  auto jwk = entry;
  jwk.erase("alg");
  try {
    ++imports;
    auto key = jose::key::from_public_jwk(jwk);
    if (named && *named != key.alg())
      return refuse("alg \"" + std::string{jose::to_string(*named)} +
                    "\" does not match the key type (a " +
                    std::string{jose::to_string(key.alg())} + " key)");
    public_key_info info;
    info.kid = kid_text;
    info.alg = std::string{jose::to_string(key.alg())};
    info.jwk = key.public_jwk().dump();
    return info;
  } catch (const std::exception& e) {
    return refuse(e.what());
  }
}

double random_jitter() {
  thread_local std::minstd_rand engine{std::random_device{}()};
  return std::uniform_real_distribution<double>{0.0, 1.0}(engine);
}

} // namespace

std::string validate(const peer_fetcher_options& opts) {
  if (opts.base_url.empty())
    return "static peer: empty base URL";
  if (opts.base_url.find('?') != std::string::npos)
    return "static peer " + opts.base_url +
           ": the base URL must not have a "
           "query";
  std::string error;
  if (!net::parse_url(peer_keys_url(opts.base_url), error))
    return "static peer " + opts.base_url + ": " + error;
  if (opts.refresh.count() <= 0)
    return "static peer " + opts.base_url + ": refresh must be > 0";
  if (opts.fetch.timeout.count() <= 0 || opts.fetch.max_body_bytes == 0)
    return "static peer " + opts.base_url +
           ": the fetch timeout and body limit must be > 0";
  return {};
}

std::string peer_keys_url(std::string_view base_url) {
  while (!base_url.empty() && base_url.back() == '/')
    base_url.remove_suffix(1);
  return std::string{base_url} + "/api/pkeys?local=true";
}

std::vector<public_key_info>
parse_peer_jwks(std::string_view body, std::vector<std::string>& problems,
                const imported_keys* known, size_t* imports) {
  size_t imported = 0;
  auto count = [&] {
    if (imports != nullptr)
      *imports = imported;
  };
  auto doc = jose::parse_json_object(body);
  if (!doc) {
    problems.push_back("not a JSON object (invalid JSON, a repeated member "
                       "or nesting too deep)");
    return {};
  }
  auto keys = doc->find("keys");
  if (keys == doc->end() || !keys->is_array()) {
    problems.push_back("no \"keys\" array");
    return {};
  }
  std::vector<public_key_info> accepted;
  std::map<std::string, size_t> occurrences;
  size_t index = 0;
  for (const auto& entry : *keys) {
    if (index == max_peer_keys) {
      problems.push_back("more than " + std::to_string(max_peer_keys)
                         + " keys: the other "
                         + std::to_string(keys->size() - max_peer_keys)
                         + " are refused");
      break;
    }
    if (entry.is_object())
      if (auto kid = entry.find("kid"); kid != entry.end() && kid->is_string())
        ++occurrences[kid->get<std::string>()];
    auto where = "keys[" + std::to_string(index++) + "]";
    if (auto info = parse_peer_key(entry, std::move(where), problems, known,
                                   imported))
      accepted.push_back(std::move(*info));
  }
  count();
  // A kid that names two keys is ambiguous: trust neither.
  for (auto& [kid, count] : occurrences)
    if (count > 1)
      problems.push_back("kid \"" + printable(kid) + "\" occurs " +
                         std::to_string(count) +
                         " times (kid collision); every key under it is "
                         "refused");
  accepted.erase(std::remove_if(accepted.begin(), accepted.end(),
                                [&](const public_key_info& info) {
                                  return occurrences[info.kid] > 1;
                                }),
                 accepted.end());
  return accepted;
}

void peer_fetcher_state::configure(peer_fetcher_options opts) {
  opts_ = std::move(opts);
  opts_.fetch.max_body_bytes
    = std::min(opts_.fetch.max_body_bytes, max_peer_jwks_bytes);
  url_ = peer_keys_url(opts_.base_url);
  // Serials start at the wall clock, so a restarted fetcher's announcements
  // are not taken for stale ones by a federation that outlived it.
  serial_ = static_cast<uint64_t>(
      std::max<int64_t>(0, to_unix_ms(opts_.wall())));
}

void peer_fetcher_state::fail(const std::string& why) {
  if (failures_++ == 0)
    spdlog::warn("peer_fetcher: {}: {}; keeping its last {} keys and "
                 "retrying with back-off",
                 url_, why, keys_.size());
  else
    spdlog::debug("peer_fetcher: {}: still failing ({} in a row): {}", url_,
                  failures_, why);
}

void peer_fetcher_state::recover() {
  if (failures_ > 0)
    spdlog::info("peer_fetcher: {} answers again after {} failed polls", url_,
                 failures_);
  failures_ = 0;
}

std::optional<key_announcement>
peer_fetcher_state::apply(const net::fetch_result& res) {
  if (!res.error.empty()) {
    fail(res.error);
    return std::nullopt;
  }
  if (res.status == 304) {
    if (etag_.empty()) {
      fail("answered 304 Not Modified to an unconditional request");
      return std::nullopt;
    }
    recover();
    return std::nullopt;
  }
  if (res.status != 200) {
    fail("answered HTTP " + std::to_string(res.status));
    return std::nullopt;
  }
  std::vector<std::string> problems;
  size_t imports = 0;
  auto keys = parse_peer_jwks(res.body, problems, &imported_, &imports);
  imports_ += imports;
  if (keys.empty()) {
    fail("no usable keys in its JWKS" +
         (problems.empty() ? std::string{} : ": " + summarise(problems)));
    return std::nullopt;
  }
  if (!problems.empty() && problems != last_problems_)
    spdlog::warn("peer_fetcher: {}: refused part of its JWKS: {}", url_,
                 summarise(problems));
  last_problems_ = std::move(problems);
  etag_ = res.etag;
  recover();
  if (!keys_.empty() && same_keys(keys, keys_))
    return std::nullopt;
  keys_ = std::move(keys);
  // The keys of this answer, by thumbprint: the next answer reuses them.
  imported_.clear();
  for (auto& info : keys_)
    if (auto print = jose::thumbprint_of(nlohmann::json::parse(info.jwk)))
      imported_.emplace(*print, info);
  ++serial_;
  spdlog::info("peer_fetcher: {} publishes {} keys", url_, keys_.size());
  return announcement();
}

key_announcement peer_fetcher_state::announcement() const {
  key_announcement ann;
  ann.origin = opts_.base_url;
  ann.incarnation = 0; // an HTTP peer has no incarnations
  ann.serial = serial_;
  ann.keys = keys_;
  return ann;
}

std::chrono::milliseconds peer_fetcher_state::next_delay(double jitter) const {
  auto factor = failures_ == 0 ? 1u
                               : std::min(1u << std::min(failures_ - 1, 3u),
                                          max_backoff_factor);
  auto base = std::chrono::duration_cast<std::chrono::milliseconds>(
      opts_.refresh * factor);
  auto extra =
      static_cast<double>(base.count()) * 0.1 * std::clamp(jitter, 0.0, 1.0);
  return base + std::chrono::milliseconds{static_cast<int64_t>(extra)};
}

namespace {

using peer_fetcher_pointer
  = peer_fetcher_actor::stateful_pointer<peer_fetcher_state>;

void announce(peer_fetcher_pointer self, const federation_actor& federation,
              key_announcement ann) {
  if (!federation)
    return;
  self->request(federation, std::chrono::seconds{10}, atom::announce_v,
                atom::fetched_v, std::move(ann))
      .then([self](atom::ok) { self->state.announce_pending = false; },
            [self](caf::error& err) {
              // The next poll announces again.
              if (!self->state.announce_pending)
                spdlog::warn("peer_fetcher: {}: the federation did not take "
                             "its keys: {}",
                             self->state.url(), caf::to_string(err));
              self->state.announce_pending = true;
            });
}

// Blocks for at most the fetch timeout: the actor runs on its own thread.
void poll(peer_fetcher_pointer self, const federation_actor& federation) {
  auto& st = self->state;
  auto res = net::http_get(st.url(), st.etag(), st.options().fetch);
  if (auto ann = st.apply(res))
    announce(self, federation, std::move(*ann));
  else if (st.announce_pending)
    announce(self, federation, st.announcement());
}

void schedule_poll(peer_fetcher_pointer self) {
  auto& st = self->state;
  self->delayed_send(self, st.next_delay(random_jitter()), atom::tick_v,
                     ++st.timer_id);
}

peer_fetcher_actor::behavior_type
peer_fetcher(peer_fetcher_pointer self, peer_fetcher_options opts,
             federation_actor federation) {
  if (auto problem = validate(opts); !problem.empty()) {
    spdlog::error("peer_fetcher: {}; not polling it", problem);
    self->quit(make_error(ec::invalid_argument, problem));
  } else {
    self->state.configure(std::move(opts));
    self->send(self, atom::tick_v, ++self->state.timer_id);
  }
  return {
      [=](atom::tick, uint64_t id) {
        if (id != self->state.timer_id)
          return;
        poll(self, federation);
        schedule_poll(self);
      },
  };
}

} // namespace

peer_fetcher_actor spawn_peer_fetcher(caf::actor_system& sys,
                                      peer_fetcher_options opts,
                                      federation_actor federation) {
  return sys.spawn<caf::detached>(peer_fetcher, std::move(opts),
                                  std::move(federation));
}

} // namespace keymesh
