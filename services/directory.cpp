#include "services/directory.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/error.hpp"
#include "actors/local_request.hpp"
#include "actors/store_call.hpp"
#include "state/session.hpp"

namespace keymesh {

namespace {

using persistence::store;
using persistence::store_failure;


claim_view view_of(const persistence::claim_record& c) {
  return {c.id, c.name, c.value, c.description};
}

std::vector<claim_view> views_of(
  const std::vector<persistence::claim_record>& claims) {
  std::vector<claim_view> out;
  out.reserve(claims.size());
  for (auto& c : claims)
    out.push_back(view_of(c));
  return out;
}

user_view view_of(const persistence::user_record& u) {
  return {u.username, u.enabled, u.created_at, u.updated_at, {}, {}};
}

/// What a failed store call means for the caller.
caf::error store_error_of(store_failure failure, const std::string& text,
                          const std::string& what) {
  switch (failure) {
    case store_failure::conflict:
      return make_error(ec::conflict, what);
    case store_failure::unavailable:
    case store_failure::schema:
      return make_error(ec::unavailable,
                        "the database is unavailable: " + text);
    case store_failure::rejected:
      break;
  }
  spdlog::error("directory: the database refused a statement: {}", text);
  return make_error(ec::rejected, "the database refused the change");
}

caf::error bad_name(const char* what) {
  return make_error(ec::invalid_argument,
                    std::string{what}
                      + " must be 1 to 255 bytes without control characters");
}

caf::error bad_password() {
  return make_error(ec::invalid_argument,
                    "a password is 1 to 1024 bytes");
}

} // namespace

bool valid_directory_name(const std::string& s) {
  if (s.empty() || s.size() > max_name_bytes)
    return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f)
      return false;
  return true;
}

caf::expected<directory_options>
directory_options::from_settings(const config::settings& c) {
  directory_options opts;
  opts.cost = {c.auth.scrypt_log2_n, c.auth.scrypt_r, c.auth.scrypt_p};
  if (opts.cost.log2_n < 1 || opts.cost.r < 1 || opts.cost.p < 1)
    return make_error(ec::invalid_argument,
                      "auth.scrypt_log2_n, auth.scrypt_r and auth.scrypt_p "
                      "must be positive");
  return opts;
}

int64_t directory_state::now_ms() const {
  return to_unix_ms(deps.clock());
}

template <class T>
std::function<void(caf::expected<T>)>
directory_state::to(promise<T> rp) {
  return [rp](caf::expected<T> result) mutable {
    if (result)
      rp.deliver(std::move(*result));
    else
      rp.deliver(std::move(result.error()));
  };
}

template <class Work, class Done>
void directory_state::on_store(std::string what, Work work, Done done) {
  using value_type = std::invoke_result_t<Work&, store&>;
  if (!deps.store)
    return done(value_type{make_error(ec::unavailable,
                                      "this node has no database")});
  store_call(self, *deps.store, std::move(work),
             [done, what](store_outcome<value_type> out) mutable {
               if (!out.ok())
                 return done(value_type{
                   store_error_of(out.failure, out.error, what)});
               // WORK answers with the value or with the error to give.
               done(std::move(*out.value));
             });
}

template <class T, class Work>
void directory_state::on_store(promise<T> rp, std::string what, Work work) {
  on_store(std::move(what), std::move(work), to(std::move(rp)));
}

template <class T>
void directory_state::hash_then(std::string password, promise<T> rp,
                                std::function<void(std::string)> then) {
  if (deps.hashing == nullptr) {
    rp.deliver(make_error(ec::unavailable,
                          "this node cannot hash passwords"));
    return;
  }
  auto cost = opts.cost;
  work_call(
    self, *deps.hashing,
    [password, cost]() -> std::optional<std::string> {
      try {
        return auth::hash_password(password, cost);
      } catch (const std::exception& e) {
        spdlog::error("directory: a password hash failed: {}", e.what());
        return std::nullopt;
      }
    },
    [rp, then](std::optional<std::optional<std::string>> hash) mutable {
      if (!hash) {
        rp.deliver(make_error(ec::overloaded,
                              "too many password hashes waiting"));
        return;
      }
      if (!*hash) {
        rp.deliver(make_error(ec::crypto_failure,
                              "the password could not be hashed"));
        return;
      }
      then(std::move(**hash));
    });
}

template <class T>
void directory_state::ending_subject(std::string sub, std::string reason,
                                     T value, promise<T> rp) {
  if (!deps.revocations) {
    rp.deliver(std::move(value));
    return;
  }
  self
    ->request(deps.revocations, local_request, atom::revoke_v,
              revocation_order{"sub", std::move(sub), std::move(reason)})
    .then(
      [rp, value](revocation_outcome& out) mutable {
        if (!out.log_error.empty()) {
          rp.deliver(make_error(
            ec::unavailable,
            "the revocation is in force on the nodes that were reached, but "
            "it could not be written to the revocation log (retry: "
            "revoking again is harmless): "
              + out.log_error));
          return;
        }
        rp.deliver(std::move(value));
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
}

// -- users ---------------------------------------------------------------------------

void directory_state::create_user(user_spec spec, promise<user_view> rp) {
  if (!valid_directory_name(spec.username)) {
    rp.deliver(bad_name("a username"));
    return;
  }
  if (spec.password.empty() || spec.password.size() > max_password_bytes) {
    rp.deliver(bad_password());
    return;
  }
  hash_then(spec.password, rp, [=](std::string hash) mutable {
    auto now = now_ms();
    on_store(rp, "the user " + spec.username,
             [name = spec.username, on = spec.enabled, hash,
              now](store& db) -> caf::expected<user_view> {
               return view_of(db.create_user(name, hash, on, now));
             });
  });
}

void directory_state::get_user(std::string name, promise<user_view> rp) {
  on_store(rp, "", [name](store& db) -> caf::expected<user_view> {
    auto u = db.find_user(name);
    if (!u)
      return make_error(ec::not_found, "the user");
    auto out = view_of(*u);
    out.groups = db.user_groups(u->id);
    out.claims = views_of(db.user_claims(u->id));
    return out;
  });
}

void directory_state::list_users(std::string after, uint64_t limit,
                                 promise<user_page> rp) {
  if (limit < 1 || limit > max_user_page) {
    rp.deliver(make_error(ec::invalid_argument,
                          "limit must be a number from 1 to 1000"));
    return;
  }
  on_store(rp, "", [after, limit](store& db) -> caf::expected<user_page> {
    user_page page;
    for (auto& u : db.list_users(after, limit))
      page.users.push_back(view_of(u));
    if (page.users.size() == limit)
      page.next = page.users.back().username;
    return page;
  });
}

void directory_state::update_user(user_change change,
                                  promise<user_view> rp) {
  if (change.password.size() > max_password_bytes) {
    rp.deliver(bad_password());
    return;
  }
  auto write = [this, change, rp](std::optional<std::string> hash) mutable {
    auto now = now_ms();
    std::optional<bool> enabled;
    if (change.set_enabled)
      enabled = change.enabled;
    // Disabling an account ends every session of it, once it is written.
    auto disables = change.set_enabled && !change.enabled;
    on_store(
      "",
      [name = change.username, hash, enabled,
       now](store& db) -> caf::expected<user_view> {
        if (!db.update_user(name, hash, enabled, now))
          return make_error(ec::not_found, "the user");
        return view_of(*db.find_user(name));
      },
      [this, rp, disables,
       name = change.username](caf::expected<user_view> done) mutable {
        if (!done || !disables)
          return to(rp)(std::move(done));
        ending_subject(name, "account disabled", std::move(*done), rp);
      });
  };
  if (change.password.empty())
    return write(std::nullopt);
  hash_then(change.password, rp,
            [write](std::string hash) mutable { write(std::move(hash)); });
}

void directory_state::remove_user(std::string name, promise<atom::ok> rp) {
  // Deleting an account ends every session of it.
  on_store(
    "",
    [name](store& db) -> caf::expected<atom::ok> {
      if (!db.delete_user(name))
        return make_error(ec::not_found, "the user");
      return atom::ok_v;
    },
    [this, rp, name](caf::expected<atom::ok> done) mutable {
      if (!done)
        return to(rp)(std::move(done));
      ending_subject(name, "account deleted", atom::ok_v, rp);
    });
}

// -- groups --------------------------------------------------------------------------

void directory_state::create_group(std::string name, promise<group_view> rp) {
  if (!valid_directory_name(name)) {
    rp.deliver(bad_name("a group name"));
    return;
  }
  auto now = now_ms();
  on_store(rp, "the group " + name,
           [name, now](store& db) -> caf::expected<group_view> {
             auto g = db.create_group(name, now);
             return group_view{g.name, g.created_at, {}, {}};
           });
}

void directory_state::get_group(std::string name, promise<group_view> rp) {
  on_store(rp, "", [name](store& db) -> caf::expected<group_view> {
    for (auto& g : db.list_groups())
      if (g.name == name)
        return group_view{g.name, g.created_at, db.group_members(name),
                          views_of(db.group_claims(name))};
    return make_error(ec::not_found, "the group");
  });
}

void directory_state::list_groups(promise<std::vector<group_view>> rp) {
  on_store(rp, "", [](store& db) -> caf::expected<std::vector<group_view>> {
    std::vector<group_view> out;
    for (auto& g : db.list_groups())
      out.push_back(group_view{g.name, g.created_at, {}, {}});
    return out;
  });
}

void directory_state::remove_group(std::string name, promise<atom::ok> rp) {
  on_store(rp, "", [name](store& db) -> caf::expected<atom::ok> {
    if (!db.delete_group(name))
      return make_error(ec::not_found, "the group");
    return atom::ok_v;
  });
}

// -- claims --------------------------------------------------------------------------

void directory_state::create_claim(claim_spec spec, promise<claim_view> rp) {
  if (!valid_directory_name(spec.name) || !valid_directory_name(spec.value)) {
    rp.deliver(bad_name("a claim's name and value"));
    return;
  }
  if (spec.description.size() > max_description_bytes) {
    rp.deliver(make_error(ec::invalid_argument,
                          "a description is at most 1024 bytes"));
    return;
  }
  on_store(rp, "the claim " + spec.name + "=" + spec.value,
           [spec](store& db) -> caf::expected<claim_view> {
             return view_of(
               db.create_claim(spec.name, spec.value, spec.description));
           });
}

void directory_state::list_claims(promise<std::vector<claim_view>> rp) {
  on_store(rp, "", [](store& db) -> caf::expected<std::vector<claim_view>> {
    return views_of(db.list_claims());
  });
}

void directory_state::remove_claim(int64_t id, promise<atom::ok> rp) {
  on_store(rp, "", [id](store& db) -> caf::expected<atom::ok> {
    if (!db.delete_claim(id))
      return make_error(ec::not_found, "the claim");
    return atom::ok_v;
  });
}

void directory_state::member(bool add, std::string group, std::string user,
                             promise<atom::ok> rp) {
  on_store(rp, "", [=](store& db) -> caf::expected<atom::ok> {
    if (add ? db.add_member(group, user) : db.remove_member(group, user))
      return atom::ok_v;
    return make_error(ec::not_found,
                      add ? "the group or the user" : "the membership");
  });
}

void directory_state::grant(bool add, std::string group, int64_t id,
                            promise<atom::ok> rp) {
  on_store(rp, "", [=](store& db) -> caf::expected<atom::ok> {
    if (add ? db.grant_claim(group, id) : db.revoke_claim(group, id))
      return atom::ok_v;
    return make_error(ec::not_found,
                      add ? "the group or the claim" : "the grant");
  });
}

// -- for the auth service -----------------------------------------------------------

void directory_state::get_account(std::string name, promise<account> rp) {
  on_store(rp, "", [name](store& db) -> caf::expected<account> {
    account a;
    a.username = name;
    auto u = db.find_user(name);
    if (!u)
      return a;
    a.found = true;
    a.password_hash = u->password_hash;
    a.enabled = u->enabled;
    a.groups = db.user_groups(u->id);
    a.claims = views_of(db.user_claims(u->id));
    return a;
  });
}

void directory_state::rehash(std::string name, std::string old_hash,
                             std::string new_hash, promise<bool> rp) {
  auto now = now_ms();
  on_store(rp, "", [=](store& db) -> caf::expected<bool> {
    return db.replace_password_hash(name, old_hash, new_hash, now);
  });
}

// -- the actor ----------------------------------------------------------------------

directory_actor::behavior_type directory_service(directory_pointer self,
                                                 directory_options opts,
                                                 directory_deps deps) {
  auto& st = self->state;
  st.self = self;
  st.opts = std::move(opts);
  st.deps = std::move(deps);
  // Each handler makes its promise and hands the request to the state.
  auto& s = self->state;
  return {
    [self, &s](atom::create, user_spec& spec) {
      auto rp = self->make_response_promise<user_view>();
      s.create_user(std::move(spec), rp);
      return rp;
    },
    [self, &s](atom::get, atom::user, std::string& name) {
      auto rp = self->make_response_promise<user_view>();
      s.get_user(std::move(name), rp);
      return rp;
    },
    [self, &s](atom::list, atom::user, std::string& after, uint64_t limit) {
      auto rp = self->make_response_promise<user_page>();
      s.list_users(std::move(after), limit, rp);
      return rp;
    },
    [self, &s](atom::update, user_change& change) {
      auto rp = self->make_response_promise<user_view>();
      s.update_user(std::move(change), rp);
      return rp;
    },
    [self, &s](atom::remove, atom::user, std::string& name) {
      auto rp = self->make_response_promise<atom::ok>();
      s.remove_user(std::move(name), rp);
      return rp;
    },
    [self, &s](atom::create, atom::group, std::string& name) {
      auto rp = self->make_response_promise<group_view>();
      s.create_group(std::move(name), rp);
      return rp;
    },
    [self, &s](atom::get, atom::group, std::string& name) {
      auto rp = self->make_response_promise<group_view>();
      s.get_group(std::move(name), rp);
      return rp;
    },
    [self, &s](atom::list, atom::group) {
      auto rp = self->make_response_promise<std::vector<group_view>>();
      s.list_groups(rp);
      return rp;
    },
    [self, &s](atom::remove, atom::group, std::string& name) {
      auto rp = self->make_response_promise<atom::ok>();
      s.remove_group(std::move(name), rp);
      return rp;
    },
    [self, &s](atom::create, claim_spec& spec) {
      auto rp = self->make_response_promise<claim_view>();
      s.create_claim(std::move(spec), rp);
      return rp;
    },
    [self, &s](atom::list, atom::claim) {
      auto rp = self->make_response_promise<std::vector<claim_view>>();
      s.list_claims(rp);
      return rp;
    },
    [self, &s](atom::remove, atom::claim, int64_t id) {
      auto rp = self->make_response_promise<atom::ok>();
      s.remove_claim(id, rp);
      return rp;
    },
    [self, &s](atom::add, atom::member, std::string& group,
               std::string& user) {
      auto rp = self->make_response_promise<atom::ok>();
      s.member(true, std::move(group), std::move(user), rp);
      return rp;
    },
    [self, &s](atom::remove, atom::member, std::string& group,
               std::string& user) {
      auto rp = self->make_response_promise<atom::ok>();
      s.member(false, std::move(group), std::move(user), rp);
      return rp;
    },
    [self, &s](atom::add, atom::grant, std::string& group, int64_t id) {
      auto rp = self->make_response_promise<atom::ok>();
      s.grant(true, std::move(group), id, rp);
      return rp;
    },
    [self, &s](atom::remove, atom::grant, std::string& group, int64_t id) {
      auto rp = self->make_response_promise<atom::ok>();
      s.grant(false, std::move(group), id, rp);
      return rp;
    },
    [self, &s](atom::get, atom::account, std::string& name) {
      auto rp = self->make_response_promise<account>();
      s.get_account(std::move(name), rp);
      return rp;
    },
    [self, &s](atom::rehash, std::string& name, std::string& old_hash,
               std::string& new_hash) {
      auto rp = self->make_response_promise<bool>();
      s.rehash(std::move(name), std::move(old_hash), std::move(new_hash), rp);
      return rp;
    },
    [](atom::run, continuation& rest) {
      // An exception would end the service: log it, and go on.
      try {
        rest();
      } catch (const std::exception& e) {
        spdlog::error("directory: a step failed: {}", e.what());
      }
    },
  };
}

std::vector<directory_actor>
spawn_directory(caf::actor_system& sys, const directory_options& opts,
                const directory_deps& deps,
                const std::vector<sessions_actor>& sessions, size_t count) {
  std::vector<directory_actor> out;
  for (size_t i = 0; i < std::max<size_t>(count, 1); ++i) {
    auto with = deps;
    if (!sessions.empty())
      with.revocations = sessions[i % sessions.size()];
    out.push_back(sys.spawn(directory_service, opts, std::move(with)));
  }
  return out;
}

} // namespace keymesh
