// The objects service (objects_actor in actors/interfaces.hpp): an OpenID
// Provider's short-lived models (authorization codes, interactions,
// grants, device codes, PAR requests ...) in the replicated `objects`
// keyspace, so any replica of the OP finds what another one wrote. Every
// decision that must be made once (a consume, a compare-and-set, a create
// only if absent) is a conditional write that the partition's primary
// owner decides together with every other owner (write_request::decide,
// see actors/shard.hpp); a node in a minority decides nothing. The work is
// in objects_state's methods.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "actors/router.hpp"
#include "common/clock.hpp"
#include "config/settings.hpp"
#include "state/object.hpp"

namespace keymesh {

/// What the service takes from the settings.
struct objects_options {
  config::settings::objects_section limits;
  /// Caps of particular kinds (objects.kinds), within the limits above.
  struct kind_caps {
    int64_t max_ttl_ms = 0;
    size_t max_value_bytes = 0;
  };
  std::map<std::string, kind_caps, std::less<>> kinds;

  /// The caps of KIND: its own, else the general ones.
  kind_caps caps(std::string_view kind) const;

  static caf::expected<objects_options>
  from_settings(const config::settings& c);
};

/// What the service talks to.
struct objects_deps {
  keyspace_client state;
  wall_clock clock = system_wall_clock();
};

/// The kind the replay registry keeps its values under (ids:
/// "<scope>:<base64url SHA-256 of iss and jti>").
inline constexpr const char* replay_kind = "keymesh.jti";

/// Objects an index lookup answers with at most.
inline constexpr size_t max_listed_objects = 1000;

/// How often a consume or a put re-reads and tries again after a
/// compare-and-set it lost to a concurrent writer (a read from a replica
/// that had not seen the last write loses too).
inline constexpr int max_object_attempts = 8;

class objects_state {
public:
  static inline const char* name = "objects";

  template <class T>
  using promise = caf::typed_response_promise<T>;
  using fail_fn = std::function<void(caf::error)>;
  /// An object and its version, or nothing (absent or expired).
  using found_fn = std::function<void(std::optional<object_found>)>;

  objects_actor::pointer self = nullptr;
  objects_options opts;
  objects_deps deps;

  void put(object_put req, promise<object_found> rp);
  void get(std::string kind, std::string id, promise<object_found> rp);
  void consume(std::string kind, std::string id, std::string key,
               promise<object_found> rp);
  void destroy(std::string kind, std::string id, promise<atom::ok> rp);
  void find(object_lookup q, promise<std::vector<object_found>> rp);
  void destroy_all(object_lookup q, promise<uint64_t> rp);
  void check_replay(replay_check c, promise<replay_verdict> rp);
  void push_par(par_push req, promise<par_pushed> rp);
  void redeem_par(par_redeem req, promise<par_request> rp);

  /// Why REQ is refused (limits of the settings and of state/object.hpp),
  /// or none.
  caf::error check(const object_put& req) const;

  /// The objects of an index value (read back and checked).
  void lookup(object_lookup q,
              std::function<void(std::vector<object_found>)> then,
              fail_fn fail);

  /// Reads (KIND, ID) from its partition's owner.
  void read(const std::string& kind, const std::string& id, found_fn then,
            fail_fn fail);

  /// One try of a put: reads, then writes conditionally on what it read.
  /// ABSENT_LOST: the try before read nothing, and its create lost.
  void put_attempt(object_put req, int attempt, promise<object_found> rp,
                   bool absent_lost = false);

  /// One try of a consume; DONE gets the consumed object or why not.
  using consumed_fn = std::function<void(caf::expected<object_found>)>;
  void consume_attempt(std::string kind, std::string id, std::string key,
                       int attempt, consumed_fn done);

  /// Writes O's record at the condition C (EXPECTED for version_is) and,
  /// once it is written, its index entries; DONE gets its version.
  void write(const state::object& o, write_condition c,
             state::version expected,
             std::function<void(caf::expected<state::version>)> done);

  /// Sends every write of WRITES to its shard; DONE gets the first error
  /// (none when all were written) once all answered.
  void put_all(std::vector<write_request> writes, fail_fn done);

  /// Tombstones (KIND, ID) and the index entries of O (read before).
  void end(const state::object& o, fail_fn done);

  int64_t now_ms() const;
};

using objects_pointer = objects_actor::stateful_pointer<objects_state>;

objects_actor::behavior_type objects_service(objects_pointer self,
                                             objects_options opts,
                                             objects_deps deps);

/// COUNT equivalent instances (at least one).
std::vector<objects_actor> spawn_objects(caf::actor_system& sys,
                                         const objects_options& opts,
                                         const objects_deps& deps,
                                         size_t count);

} // namespace keymesh
