// The directory service (directory_actor in actors/interfaces.hpp): users,
// groups and claims in the database as named requests, so the admin routes,
// the auth service and an embedding application manage and read the
// directory the same way. The service checks the input, has new passwords
// hashed by the hash pool, hands each database operation to a store worker
// (which answers the caller) and revokes the sessions of a user it disables
// or deletes. The work is in directory_state's methods.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "actors/store_pool.hpp"
#include "actors/hash_pool.hpp"
#include "auth/password.hpp"
#include "common/clock.hpp"
#include "config/settings.hpp"

namespace keymesh {

/// What the service takes from the settings.
struct directory_options {
  /// The cost of new password hashes (auth.scrypt_*).
  auth::scrypt_cost cost;

  static caf::expected<directory_options>
  from_settings(const config::settings& c);
};

/// What the service talks to. Without STORE every request fails with
/// ec::unavailable; without HASHING, those that hash a password.
struct directory_deps {
  std::shared_ptr<store_pool> store;
  hash_pool* hashing = nullptr;
  /// Disabling or deleting a user revokes its sessions here (may be null:
  /// nothing is revoked).
  revocation_actor revocations;
  wall_clock clock = system_wall_clock();
};

/// The directory's limits: names (users, groups, claim names and values),
/// passwords, claim descriptions, a page of users.
inline constexpr size_t max_name_bytes = 255;
inline constexpr size_t max_password_bytes = 1024;
inline constexpr size_t max_description_bytes = 1024;
inline constexpr uint64_t max_user_page = 1000;
/// The longest back-channel logout URI.
inline constexpr size_t max_logout_uri_bytes = 2048;

/// A name (user, group, claim name or value): 1 to max_name_bytes bytes
/// without control characters.
bool valid_directory_name(const std::string& s);

class directory_state {
public:
  static inline const char* name = "directory";

  template <class T>
  using promise = caf::typed_response_promise<T>;

  directory_actor::pointer self = nullptr;
  directory_options opts;
  directory_deps deps;

  void create_user(user_spec spec, promise<user_view> rp);
  void get_user(std::string name, promise<user_view> rp);
  void list_users(std::string after, uint64_t limit, promise<user_page> rp);
  void update_user(user_change change, promise<user_view> rp);
  void remove_user(std::string name, promise<atom::ok> rp);

  void create_group(std::string name, promise<group_view> rp);
  void get_group(std::string name, promise<group_view> rp);
  void list_groups(promise<std::vector<group_view>> rp);
  void remove_group(std::string name, promise<atom::ok> rp);

  void create_claim(claim_spec spec, promise<claim_view> rp);
  void list_claims(promise<std::vector<claim_view>> rp);
  void remove_claim(int64_t id, promise<atom::ok> rp);

  /// Adds or removes (ADD) the membership of USER in GROUP.
  void member(bool add, std::string group, std::string user,
              promise<atom::ok> rp);
  /// Grants or revokes (ADD) claim ID to GROUP.
  void grant(bool add, std::string group, int64_t id, promise<atom::ok> rp);

  /// Registers (or replaces) a relying party for back-channel logout.
  void put_client(persistence::client_record c,
                  promise<persistence::client_record> rp);
  void get_client(std::string id, promise<client_records> rp);
  void list_clients(std::string after, uint64_t limit,
                    promise<client_records> rp);
  void remove_client(std::string id, promise<atom::ok> rp);

  void get_account(std::string name, promise<account> rp);
  void rehash(std::string name, std::string old_hash, std::string new_hash,
              promise<bool> rp);

  /// A store worker for one request, or FAIL gets why there is none.
  std::optional<store_worker_actor>
  worker_or(const std::function<void(caf::error)>& fail);

  /// Hands the request XS to a store worker, which answers RP.
  template <class T, class... Ts>
  void to_store(promise<T> rp, Ts&&... xs);

  /// Sends the request XS to a store worker; once it succeeded, revokes
  /// SUB's sessions for REASON and then answers RP with its answer.
  template <class T, class... Ts>
  void then_ending(promise<T> rp, std::string sub, std::string reason,
                   Ts&&... xs);

  /// Hashes PASSWORD on the hash pool, then THEN(hash); RP gets the error
  /// when that cannot be done.
  template <class T>
  void hash_then(std::string password, promise<T> rp,
                 std::function<void(std::string)> then);

  /// Revokes SUB's sessions for REASON, then delivers VALUE to RP (or why
  /// the revocation did not complete).
  template <class T>
  void ending_subject(std::string sub, std::string reason, T value,
                      promise<T> rp);

  int64_t now_ms() const;
};

using directory_pointer = directory_actor::stateful_pointer<directory_state>;

directory_actor::behavior_type directory_service(directory_pointer self,
                                                 directory_options opts,
                                                 directory_deps deps);

/// COUNT equivalent instances (at least one), each revoking through an
/// entry of SESSIONS (in turn) when there are any, else deps.revocations.
std::vector<directory_actor>
spawn_directory(caf::actor_system& sys, const directory_options& opts,
                const directory_deps& deps,
                const std::vector<sessions_actor>& sessions, size_t count);

} // namespace keymesh
