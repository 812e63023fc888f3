#include "services/directory.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/error.hpp"
#include "actors/local_request.hpp"
#include "common/text.hpp"
#include "net/http_client.hpp"
#include "state/session.hpp"

namespace keymesh {

namespace {

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
  // UTF-8 text: names are answered in JSON, which carries nothing else.
  return !s.empty() && s.size() <= max_name_bytes && is_clean_text(s);
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

std::optional<store_worker_actor> directory_state::worker_or(
  const std::function<void(caf::error)>& fail) {
  if (!deps.store) {
    fail(make_error(ec::unavailable, "this node has no database"));
    return std::nullopt;
  }
  auto worker = deps.store->worker();
  if (!worker) {
    fail(std::move(worker.error()));
    return std::nullopt;
  }
  return std::move(*worker);
}

template <class T, class... Ts>
void directory_state::to_store(promise<T> rp, Ts&&... xs) {
  if (auto worker = worker_or([rp](caf::error err) mutable {
        rp.deliver(std::move(err));
      }))
    rp.delegate(*worker, std::forward<Ts>(xs)...);
}

template <class T>
void directory_state::hash_then(std::string password, promise<T> rp,
                                std::function<void(std::string)> then) {
  if (deps.hashing == nullptr) {
    rp.deliver(make_error(ec::unavailable,
                          "this node cannot hash passwords"));
    return;
  }
  auto worker = deps.hashing->worker();
  if (!worker) {
    rp.deliver(std::move(worker.error()));
    return;
  }
  self
    ->request(*worker, local_request, atom::hash_v,
              password_text{std::move(password)}, opts.cost)
    .then([then](std::string& hash) { then(std::move(hash)); },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
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

template <class T, class... Ts>
void directory_state::then_ending(promise<T> rp, std::string sub,
                                  std::string reason, Ts&&... xs) {
  auto worker = worker_or([rp](caf::error err) mutable {
    rp.deliver(std::move(err));
  });
  if (!worker)
    return;
  self->request(*worker, local_request, std::forward<Ts>(xs)...)
    .then(
      [this, rp, sub, reason](T& done) mutable {
        ending_subject(sub, reason, std::move(done), rp);
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
  auto password = std::move(spec.password);
  hash_then(std::move(password), rp,
            [this, rp, spec = std::move(spec)](std::string hash) mutable {
              to_store(rp, atom::create_v,
                       new_user{spec.username, std::move(hash), spec.enabled,
                                now_ms()});
            });
}

void directory_state::get_user(std::string name, promise<user_view> rp) {
  to_store(rp, atom::get_v, atom::user_v, std::move(name));
}

void directory_state::list_users(std::string after, uint64_t limit,
                                 promise<user_page> rp) {
  if (limit < 1 || limit > max_user_page) {
    rp.deliver(make_error(ec::invalid_argument,
                          "limit must be a number from 1 to 1000"));
    return;
  }
  to_store(rp, atom::list_v, atom::user_v, std::move(after), limit);
}

void directory_state::update_user(user_change change,
                                  promise<user_view> rp) {
  if (change.password.size() > max_password_bytes) {
    rp.deliver(bad_password());
    return;
  }
  auto write = [this, rp, name = change.username,
                set_enabled = change.set_enabled,
                enabled = change.enabled](std::string hash) mutable {
    user_write w;
    w.username = name;
    w.set_hash = !hash.empty();
    w.password_hash = std::move(hash);
    w.set_enabled = set_enabled;
    w.enabled = enabled;
    w.updated_at = now_ms();
    // Disabling an account ends every session of it, once it is written.
    if (set_enabled && !enabled)
      then_ending(rp, name, "account disabled", atom::update_v, std::move(w));
    else
      to_store(rp, atom::update_v, std::move(w));
  };
  if (change.password.empty())
    return write({});
  hash_then(std::move(change.password), rp,
            [write](std::string hash) mutable { write(std::move(hash)); });
}

void directory_state::remove_user(std::string name, promise<atom::ok> rp) {
  // Deleting an account ends every session of it.
  then_ending(rp, name, "account deleted", atom::remove_v, atom::user_v,
              name);
}

// -- groups --------------------------------------------------------------------------

void directory_state::create_group(std::string name, promise<group_view> rp) {
  if (!valid_directory_name(name)) {
    rp.deliver(bad_name("a group name"));
    return;
  }
  to_store(rp, atom::create_v, atom::group_v, std::move(name), now_ms());
}

void directory_state::get_group(std::string name, promise<group_view> rp) {
  to_store(rp, atom::get_v, atom::group_v, std::move(name));
}

void directory_state::list_groups(promise<std::vector<group_view>> rp) {
  to_store(rp, atom::list_v, atom::group_v);
}

void directory_state::remove_group(std::string name, promise<atom::ok> rp) {
  to_store(rp, atom::remove_v, atom::group_v, std::move(name));
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
  to_store(rp, atom::create_v, std::move(spec));
}

void directory_state::list_claims(promise<std::vector<claim_view>> rp) {
  to_store(rp, atom::list_v, atom::claim_v);
}

void directory_state::remove_claim(int64_t id, promise<atom::ok> rp) {
  to_store(rp, atom::remove_v, atom::claim_v, id);
}

void directory_state::member(bool add, std::string group, std::string user,
                             promise<atom::ok> rp) {
  if (add)
    to_store(rp, atom::add_v, atom::member_v, std::move(group),
             std::move(user));
  else
    to_store(rp, atom::remove_v, atom::member_v, std::move(group),
             std::move(user));
}

void directory_state::grant(bool add, std::string group, int64_t id,
                            promise<atom::ok> rp) {
  if (add)
    to_store(rp, atom::add_v, atom::grant_v, std::move(group), id);
  else
    to_store(rp, atom::remove_v, atom::grant_v, std::move(group), id);
}

// -- for the auth service -----------------------------------------------------------

// -- relying parties -----------------------------------------------------------------

void directory_state::put_client(persistence::client_record c,
                                 promise<persistence::client_record> rp) {
  if (!valid_directory_name(c.client_id))
    return void(rp.deliver(bad_name("a client_id")));
  if (!c.backchannel_logout_uri.empty()) {
    std::string why;
    if (c.backchannel_logout_uri.size() > max_logout_uri_bytes
        || !net::parse_url(c.backchannel_logout_uri, why))
      return void(rp.deliver(make_error(
        ec::invalid_argument,
        "backchannel_logout_uri must be an absolute http or https URL of at "
        "most 2048 bytes without a fragment"
          + (why.empty() ? std::string{} : ": " + why))));
  }
  c.created_at = c.updated_at = now_ms();
  to_store(rp, atom::put_v, std::move(c));
}

void directory_state::get_client(std::string id, promise<client_records> rp) {
  to_store(rp, atom::get_v, atom::client_v, std::move(id));
}

void directory_state::list_clients(std::string after, uint64_t limit,
                                   promise<client_records> rp) {
  to_store(rp, atom::list_v, atom::client_v, std::move(after),
           std::clamp<uint64_t>(limit, 1, max_user_page));
}

void directory_state::remove_client(std::string id, promise<atom::ok> rp) {
  to_store(rp, atom::remove_v, atom::client_v, std::move(id));
}

void directory_state::get_account(std::string name, promise<account> rp) {
  to_store(rp, atom::get_v, atom::account_v, std::move(name));
}

void directory_state::rehash(std::string name, std::string old_hash,
                             std::string new_hash, promise<bool> rp) {
  to_store(rp, atom::rehash_v,
           hash_upgrade{std::move(name), std::move(old_hash),
                        std::move(new_hash), now_ms()});
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
    [self, &s](atom::put, persistence::client_record& c) {
      auto rp = self->make_response_promise<persistence::client_record>();
      s.put_client(std::move(c), rp);
      return rp;
    },
    [self, &s](atom::get, atom::client, std::string& id) {
      auto rp = self->make_response_promise<client_records>();
      s.get_client(std::move(id), rp);
      return rp;
    },
    [self, &s](atom::list, atom::client, std::string& after, uint64_t limit) {
      auto rp = self->make_response_promise<client_records>();
      s.list_clients(std::move(after), limit, rp);
      return rp;
    },
    [self, &s](atom::remove, atom::client, std::string& id) {
      auto rp = self->make_response_promise<atom::ok>();
      s.remove_client(std::move(id), rp);
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
