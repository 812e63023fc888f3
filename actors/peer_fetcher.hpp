// The peer fetcher: one actor per cluster.static_peers URL. It polls the
// peer's own keys the way Stoke peers share them (GET <base>/api/pkeys
// ?local=true, with If-None-Match), validates the JWKS and announces the keys
// to the federation under origin = the base URL. A peer that fails keeps its
// last good keys, and the polls back off while it keeps failing.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "common/clock.hpp"
#include "net/http_client.hpp"

namespace keymesh {

struct peer_fetcher_options {
  /// The peer's base URL (http or https, no query); a trailing slash is fine.
  std::string base_url;
  std::chrono::seconds refresh{30};
  net::fetch_options fetch;
  /// Where the serials of its announcements start (Unix ms at start).
  wall_clock wall = system_wall_clock();
};

/// Why OPTS cannot be used, or an empty string.
std::string validate(const peer_fetcher_options& opts);

/// The URL polled for BASE_URL: "<base_url without trailing slashes>
/// /api/pkeys?local=true".
std::string peer_keys_url(std::string_view base_url);

/// Keys imported before, by RFC 7638 thumbprint.
using imported_keys = std::map<std::string, public_key_info>;

/// Reads a peer's JWKS. Keeps each key that has a string kid of 1..256
/// characters, is a public EC P-256, OKP Ed25519 or RSA key without private
/// members, has "use" absent or "sig" and, if it names an "alg", the one its
/// type implies (absent: derived from the type). Keys whose kid occurs more
/// than once are all refused. Everything refused is described in PROBLEMS.
/// A body that is not a JWKS yields no keys and a problem. The keys carry the
/// public JWK text and no schedule (all times 0). At most 64 keys are read;
/// RSA moduli have 2048 to 4096 bits; Ed25519 points of small order are
/// refused. A key whose thumbprint is in KNOWN is taken from there without
/// another import; IMPORTS, if given, receives how many keys were imported.
std::vector<public_key_info>
parse_peer_jwks(std::string_view body, std::vector<std::string>& problems,
                const imported_keys* known = nullptr,
                size_t* imports = nullptr);

/// The peer fetcher's state; the actor's handlers are thin calls into it, so
/// the polling logic is testable without an actor or a network.
class peer_fetcher_state {
public:
  static inline const char* name = "peer_fetcher";

  void configure(peer_fetcher_options opts);

  const peer_fetcher_options& options() const {
    return opts_;
  }

  /// The URL this fetcher polls.
  const std::string& url() const {
    return url_;
  }

  /// The ETag of the last good response (sent as If-None-Match).
  const std::string& etag() const {
    return etag_;
  }

  /// Takes the outcome of one poll. Returns the announcement to send when the
  /// peer's key set changed; a failure (transport error, a status other than
  /// 200/304, a body without usable keys) changes nothing but the back-off.
  std::optional<key_announcement> apply(const net::fetch_result& res);

  /// The current keys, as last announced.
  key_announcement announcement() const;

  /// The wait before the next poll: refresh while the peer is healthy; after
  /// k+1 failures in a row refresh × 2^k, at most 8 × refresh. JITTER in
  /// [0, 1] adds up to 10 % so that fetchers do not poll in lockstep.
  std::chrono::milliseconds next_delay(double jitter) const;

  /// Failed polls in a row (0: healthy).
  unsigned failures() const {
    return failures_;
  }

  /// Keys imported (parsed into OpenSSL) since start: a peer that answers
  /// the same keys again costs none.
  size_t imports() const {
    return imports_;
  }

  /// Id of the one pending timer; ticks with another id are ignored.
  uint64_t timer_id = 0;
  /// The last announcement was not acknowledged; the next poll resends it.
  bool announce_pending = false;

private:
  void fail(const std::string& why);

  void recover();

  peer_fetcher_options opts_;
  std::string url_;
  std::string etag_;
  public_key_list keys_;
  std::vector<std::string> last_problems_;
  imported_keys imported_;
  size_t imports_ = 0;
  uint64_t serial_ = 0;
  unsigned failures_ = 0;
};

/// Polls one static peer's JWKS and announces its keys to the federation.
/// Local to its node.
using peer_fetcher_actor = caf::typed_actor<
  // Internal timer (the id guards against stray ticks): polls now, then
  // schedules the next poll (refresh interval, back-off after failures).
  caf::reacts_to<atom::tick, uint64_t>>;

/// Spawns the fetcher for one peer, detached (it blocks in http_get), and
/// polls at once. FEDERATION receives its announcements. With options that
/// validate() refuses, the actor logs the problem and quits with
/// ec::invalid_argument.
peer_fetcher_actor spawn_peer_fetcher(caf::actor_system& sys,
                                      peer_fetcher_options opts,
                                      federation_actor federation);

} // namespace keymesh
