// The store worker (store_worker_actor): each request is one named database
// operation on the worker's own connection, and a store failure becomes the
// ec code the caller can act on.
#include "actors/store_pool.hpp"

#include <chrono>
#include <type_traits>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <spdlog/spdlog.h>

#include "actors/error.hpp"

namespace keymesh {

namespace {

using persistence::store;
using persistence::store_error;
using persistence::store_failure;

claim_view view_of(const persistence::claim_record& c) {
  return {c.id, c.name, c.value, c.description};
}

std::vector<claim_view>
views_of(const std::vector<persistence::claim_record>& claims) {
  std::vector<claim_view> out;
  out.reserve(claims.size());
  for (auto& c : claims)
    out.push_back(view_of(c));
  return out;
}

user_view view_of(const persistence::user_record& u) {
  return {u.username, u.enabled, u.created_at, u.updated_at, {}, {}};
}

/// What a store failure means for the caller; WHAT names the object of a
/// conflict.
caf::error error_of(const store_error& e, const std::string& what) {
  switch (e.failure) {
    case store_failure::conflict:
      return make_error(ec::conflict, what);
    case store_failure::unavailable:
    case store_failure::schema:
      return make_error(ec::unavailable,
                        std::string{"the database is unavailable: "}
                          + e.what());
    case store_failure::rejected:
      break;
  }
  spdlog::error("store: the database refused a statement: {}", e.what());
  return make_error(ec::rejected, "the database refused the change");
}

template <class T>
struct expected_value {
  using type = T;
};

template <class T>
struct expected_value<caf::expected<T>> {
  using type = T;
};

struct worker_state {
  static inline const char* name = "store_worker";
  persistence::store_factory open;
  std::shared_ptr<store_status> status;
  std::unique_ptr<store> conn;
  /// status->outages when conn was opened.
  uint64_t opened_after = 0;

  /// The connection: opened again when it is older than the last outage,
  /// refused at once while the monitor finds the database gone (rather than
  /// a connect timeout per request).
  store& connection() {
    auto outages = status->outages.load();
    if (conn && opened_after != outages)
      conn.reset();
    if (!conn) {
      if (status->loaded && !status->healthy)
        throw store_error{store_failure::unavailable,
                          "the database is unreachable: " + status->error()};
      conn = open();
      opened_after = outages;
    }
    return *conn;
  }

  /// Runs WORK(store&) (a value or caf::expected of one) for one request
  /// the pool counted; a store failure becomes its error (WHAT names the
  /// object of a conflict).
  template <class Work>
  auto run(const std::string& what, Work work)
    -> caf::expected<typename expected_value<
      std::invoke_result_t<Work&, store&>>::type> {
    using value_type =
      typename expected_value<std::invoke_result_t<Work&, store&>>::type;
    auto started = std::chrono::steady_clock::now();
    status->jobs.fetch_add(1, std::memory_order_relaxed);
    auto finish = [&] {
      status->queued.fetch_sub(1, std::memory_order_relaxed);
      status->busy_ns.fetch_add(
        static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now() - started)
            .count()),
        std::memory_order_relaxed);
    };
    auto fail = [&](const store_error& e) -> caf::expected<value_type> {
      status->failures.fetch_add(1, std::memory_order_relaxed);
      if (e.failure == store_failure::unavailable) {
        // The connection is suspect: a new one for the next request.
        conn.reset();
        status->healthy = false;
        status->set_error(e.what());
      }
      finish();
      return error_of(e, what);
    };
    try {
      caf::expected<value_type> out = work(connection());
      finish();
      return out;
    } catch (const store_error& e) {
      return fail(e);
    } catch (const std::exception& e) {
      return fail(store_error{store_failure::rejected, e.what()});
    }
  }
};

using worker_pointer = store_worker_actor::stateful_pointer<worker_state>;

caf::expected<atom::ok> found(bool yes, const char* what) {
  if (!yes)
    return make_error(ec::not_found, what);
  return atom::ok_v;
}

store_worker_actor::behavior_type
store_worker(worker_pointer self, persistence::store_factory open,
             std::shared_ptr<store_status> status) {
  auto& st = self->state;
  st.open = std::move(open);
  st.status = std::move(status);
  return {
    // -- the revocation log and durable sessions ---------------------------
    [&st](atom::put, persistence::revocation_entry& entry)
      -> caf::result<atom::ok> {
      return st.run("", [&](store& db) {
        db.put_revocation(entry);
        return atom::ok_v;
      });
    },
    [&st](atom::revoke, persistence::revocation_entry& entry)
      -> caf::result<atom::ok> {
      return st.run("", [&](store& db) {
        db.put_revocation(entry);
        db.revoke_sessions(entry);
        return atom::ok_v;
      });
    },
    [&st](atom::put, session_rows& rows) -> caf::result<atom::ok> {
      return st.run("", [&](store& db) {
        db.put_sessions(rows);
        st.status->session_rows.fetch_add(rows.size(),
                                          std::memory_order_relaxed);
        st.status->session_batches.fetch_add(1, std::memory_order_relaxed);
        return atom::ok_v;
      });
    },
    [&st](atom::put, persistence::secret_row& row) -> caf::result<atom::ok> {
      return st.run("", [&](store& db) {
        db.put_secret_ring(row);
        return atom::ok_v;
      });
    },
    [&st](atom::get, atom::ring,
          std::string& purpose) -> caf::result<secret_rows> {
      return st.run("", [&](store& db) {
        secret_rows out;
        if (auto row = db.find_secret_ring(purpose))
          out.push_back(std::move(*row));
        return out;
      });
    },
    [&st](atom::get, atom::session,
          std::string& sid) -> caf::result<session_rows> {
      return st.run("", [&](store& db) {
        session_rows out;
        if (auto row = db.find_session(sid))
          out.push_back(std::move(*row));
        return out;
      });
    },
    [&st](atom::list, atom::session, std::string& sub, int64_t now,
          uint64_t limit) -> caf::result<session_rows> {
      return st.run("", [&](store& db) {
        return db.subject_sessions(sub, now, limit);
      });
    },
    // -- users ---------------------------------------------------------------
    [&st](atom::create, new_user& u) -> caf::result<user_view> {
      return st.run("the user " + u.username, [&](store& db) {
        return view_of(db.create_user(u.username, u.password_hash, u.enabled,
                                      u.created_at));
      });
    },
    [&st](atom::get, atom::user, std::string& name) -> caf::result<user_view> {
      return st.run("", [&](store& db) -> caf::expected<user_view> {
        auto u = db.find_user(name);
        if (!u)
          return make_error(ec::not_found, "the user");
        auto out = view_of(*u);
        out.groups = db.user_groups(u->id);
        out.claims = views_of(db.user_claims(u->id));
        return out;
      });
    },
    [&st](atom::list, atom::user, std::string& after,
          uint64_t limit) -> caf::result<user_page> {
      return st.run("", [&](store& db) {
        user_page page;
        for (auto& u : db.list_users(after, limit))
          page.users.push_back(view_of(u));
        if (page.users.size() == limit)
          page.next = page.users.back().username;
        return page;
      });
    },
    [&st](atom::update, user_write& w) -> caf::result<user_view> {
      return st.run("", [&](store& db) -> caf::expected<user_view> {
        std::optional<std::string> hash;
        if (w.set_hash)
          hash = w.password_hash;
        std::optional<bool> enabled;
        if (w.set_enabled)
          enabled = w.enabled;
        if (!db.update_user(w.username, hash, enabled, w.updated_at))
          return make_error(ec::not_found, "the user");
        auto u = db.find_user(w.username);
        if (!u) // deleted in between
          return make_error(ec::not_found, "the user");
        return view_of(*u);
      });
    },
    [&st](atom::remove, atom::user, std::string& name)
      -> caf::result<atom::ok> {
      return st.run("", [&](store& db) {
        return found(db.delete_user(name), "the user");
      });
    },
    // -- groups --------------------------------------------------------------
    [&st](atom::create, atom::group, std::string& name,
          int64_t now) -> caf::result<group_view> {
      return st.run("the group " + name, [&](store& db) {
        auto g = db.create_group(name, now);
        return group_view{g.name, g.created_at, {}, {}};
      });
    },
    [&st](atom::get, atom::group,
          std::string& name) -> caf::result<group_view> {
      return st.run("", [&](store& db) -> caf::expected<group_view> {
        for (auto& g : db.list_groups())
          if (g.name == name)
            return group_view{g.name, g.created_at, db.group_members(name),
                              views_of(db.group_claims(name))};
        return make_error(ec::not_found, "the group");
      });
    },
    [&st](atom::list, atom::group) -> caf::result<std::vector<group_view>> {
      return st.run("", [&](store& db) {
        std::vector<group_view> out;
        for (auto& g : db.list_groups())
          out.push_back(group_view{g.name, g.created_at, {}, {}});
        return out;
      });
    },
    [&st](atom::remove, atom::group, std::string& name)
      -> caf::result<atom::ok> {
      return st.run("", [&](store& db) {
        return found(db.delete_group(name), "the group");
      });
    },
    // -- claims, members, grants ---------------------------------------------
    [&st](atom::create, claim_spec& c) -> caf::result<claim_view> {
      return st.run("the claim " + c.name + "=" + c.value, [&](store& db) {
        return view_of(db.create_claim(c.name, c.value, c.description));
      });
    },
    [&st](atom::list, atom::claim) -> caf::result<std::vector<claim_view>> {
      return st.run("", [&](store& db) { return views_of(db.list_claims()); });
    },
    [&st](atom::remove, atom::claim, int64_t id) -> caf::result<atom::ok> {
      return st.run("", [&](store& db) {
        return found(db.delete_claim(id), "the claim");
      });
    },
    [&st](atom::add, atom::member, std::string& group,
          std::string& user) -> caf::result<atom::ok> {
      return st.run("", [&](store& db) {
        return found(db.add_member(group, user), "the group or the user");
      });
    },
    [&st](atom::remove, atom::member, std::string& group,
          std::string& user) -> caf::result<atom::ok> {
      return st.run("", [&](store& db) {
        return found(db.remove_member(group, user), "the membership");
      });
    },
    [&st](atom::add, atom::grant, std::string& group,
          int64_t id) -> caf::result<atom::ok> {
      return st.run("", [&](store& db) {
        return found(db.grant_claim(group, id), "the group or the claim");
      });
    },
    [&st](atom::remove, atom::grant, std::string& group,
          int64_t id) -> caf::result<atom::ok> {
      return st.run("", [&](store& db) {
        return found(db.revoke_claim(group, id), "the grant");
      });
    },
    // -- for logins --------------------------------------------------------------
    [&st](atom::get, atom::account, std::string& name) -> caf::result<account> {
      return st.run("", [&](store& db) {
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
    },
    [&st](atom::rehash, hash_upgrade& h) -> caf::result<bool> {
      return st.run("", [&](store& db) {
        return db.replace_password_hash(h.username, h.old_hash, h.new_hash,
                                        h.updated_at);
      });
    },
    // -- relying parties ---------------------------------------------------------
    [&st](atom::get, atom::client,
          std::string& id) -> caf::result<client_records> {
      return st.run("", [&](store& db) {
        client_records out;
        if (auto c = db.find_client(id))
          out.push_back(std::move(*c));
        return out;
      });
    },
    [&st](atom::get, atom::client,
          std::vector<std::string>& ids) -> caf::result<client_records> {
      return st.run("", [&](store& db) { return db.find_clients(ids); });
    },
    // -- the back-channel logout outbox -------------------------------------------
    [&st](atom::put, outbox_rows& rows) -> caf::result<atom::ok> {
      return st.run("", [&](store& db) {
        db.put_outbox(rows);
        return atom::ok_v;
      });
    },
    [&st](atom::reserve, atom::logout, std::string& owner, int64_t now,
          int64_t lease_until, uint64_t limit) -> caf::result<outbox_rows> {
      return st.run("", [&](store& db) {
        return db.claim_outbox(owner, now, lease_until,
                               static_cast<size_t>(limit));
      });
    },
    [&st](atom::update, persistence::outbox_row& row) -> caf::result<bool> {
      return st.run("", [&](store& db) { return db.update_outbox(row); });
    },
    [&st](atom::remove, atom::logout, std::string& id,
          std::string& owner) -> caf::result<bool> {
      return st.run("",
                    [&](store& db) { return db.delete_outbox(id, owner); });
    },
    [&st](atom::list, atom::client, std::string& after,
          uint64_t limit) -> caf::result<client_records> {
      return st.run("", [&](store& db) {
        return db.list_clients(after, static_cast<size_t>(limit));
      });
    },
    [&st](atom::remove, atom::client,
          std::string& id) -> caf::result<atom::ok> {
      return st.run("", [&](store& db) {
        return found(db.delete_client(id), "the client");
      });
    },
    [&st](atom::put, persistence::client_record& c)
      -> caf::result<persistence::client_record> {
      return st.run("the client " + c.client_id,
                    [&](store& db) { return db.put_client(c); });
    },
    // After the requests queued before it (an exit message would overtake
    // them).
    [self](atom::leave) { self->quit(); },
  };
}

} // namespace

store_worker_actor spawn_store_worker(caf::actor_system& sys,
                                      persistence::store_factory open,
                                      std::shared_ptr<store_status> status,
                                      bool detached) {
  if (detached)
    return sys.spawn<caf::detached>(store_worker, std::move(open),
                                    std::move(status));
  return sys.spawn(store_worker, std::move(open), std::move(status));
}

} // namespace keymesh
