// SRV discovery (cluster.discovery = "srv"): DNS SRV lookups through glibc's
// thread-safe resolver (one private resolver state per call, never the global
// _res), and a detached actor that resolves cluster.srv.names every
// cluster.srv.poll_interval and hands the addresses it found to a callback.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"

namespace keymesh {

/// One SRV record of an answer.
struct srv_record {
  uint16_t priority = 0;
  uint16_t weight = 0;
  uint16_t port = 0;
  /// The target host, without a trailing dot.
  std::string target;
};

/// The SRV records in the answer section of the DNS message MSG (other
/// record types are skipped, as are targets of "." that say the service is
/// not offered), ordered by priority (lowest first), then weight (highest
/// first), then target and port. A message that cannot be parsed yields no
/// records and ERROR.
std::vector<srv_record> parse_srv_answer(const unsigned char* msg,
                                         size_t length, std::string& error);

/// "target:port" for each of RECORDS, in order, without duplicates.
std::vector<std::string> srv_addresses(const std::vector<srv_record>& records);

/// Looks up the SRV records of NAME and returns them as "host:port" strings,
/// in the order of parse_srv_answer(). NAMESERVER is "ipv4:port" (or an IPv4
/// address alone, port 53); empty means the system resolver with the
/// timeouts of /etc/resolv.conf. With a nameserver, TIMEOUT bounds the one
/// attempt (glibc counts in whole seconds: it is rounded up, at least 1 s).
/// A name that does not exist or has no SRV records yields an empty list and
/// no error; a failed lookup yields an empty list and ERROR. Blocks; safe to
/// call from several threads at once.
std::vector<std::string> resolve_srv(const std::string& name,
                                     const std::string& nameserver,
                                     std::chrono::milliseconds timeout,
                                     std::string& error);

/// How long the resolver actor waits for one lookup from an explicit
/// nameserver.
inline constexpr std::chrono::milliseconds srv_query_timeout{5000};

/// Spawns a detached resolver actor (it blocks in resolve_srv). It resolves
/// every one of NAMES at once and then every POLL_INTERVAL, and after each
/// round calls ON_RESULT, on the actor's thread, with the union of the
/// addresses found (in the order of NAMES, without duplicates), also when it
/// is empty, so callers know that a round finished. Names that fail are
/// logged and contribute nothing to that round. With no names or a
/// POLL_INTERVAL that is not positive, the actor logs the problem and quits
/// with ec::invalid_argument. Any exit message ends it.
using srv_resolver_actor = caf::typed_actor<
  // Internal timer (the id guards against stray ticks): one round of
  // lookups, then the next in poll_interval.
  caf::reacts_to<atom::tick, uint64_t>>;

srv_resolver_actor
spawn_srv_resolver(caf::actor_system& sys, std::vector<std::string> names,
                   std::string nameserver,
                   std::chrono::milliseconds poll_interval,
                   std::function<void(std::vector<std::string>)> on_result);

} // namespace keymesh
