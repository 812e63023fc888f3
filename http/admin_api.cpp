// The admin routes over the durable directory: users (with scrypt password
// hashes), groups and their members, and claims that groups grant. Every
// database call runs on the store pool and every hash on the hash pool; the
// workers answer through the responder, which is thread-safe.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "auth/password.hpp"
#include "common/clock.hpp"
#include "http/api.hpp"
#include "http/json_input.hpp"

namespace keymesh::http {

using nlohmann::json;
using persistence::store;
using persistence::store_error;
using persistence::store_failure;

namespace {

constexpr size_t max_description_bytes = 1024;
constexpr size_t max_page = 1000;

/// A name (user, group, claim name or value): 1..255 bytes, no control
/// characters.
bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > max_name_bytes)
    return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f)
      return false;
  return true;
}

/// A string member NAME of BODY that valid_name accepts, or nullopt after
/// setting ERROR.
std::optional<std::string> name_member(const json& body, const char* name,
                                       response& error) {
  auto v = body.find(name);
  if (v == body.end() || !v->is_string() || !valid_name(v->get<std::string>())) {
    error = bad_request(std::string{"\""} + name
                        + "\" is required: a string of 1 to 255 bytes without "
                          "control characters");
    return std::nullopt;
  }
  return v->get<std::string>();
}

std::optional<std::string> password_member(const json& body, bool required,
                                            response& error) {
  if (!required && !body.contains("password"))
    return std::string{};
  auto password = string_member(body, "password", max_password_bytes);
  if (!password)
    error = bad_request("\"password\" must be a string of 1 to 1024 bytes");
  return password;
}

/// A path parameter that valid_name accepts, or nullopt after answering.
std::optional<std::string> name_param(const route_params& params,
                                      const char* key, responder& done) {
  auto value = params.at(key);
  if (valid_name(value))
    return value;
  done(bad_request(std::string{"malformed "} + key));
  return std::nullopt;
}

json user_json(const persistence::user_record& u) {
  return {{"username", u.username},
          {"enabled", u.enabled},
          {"created_at", u.created_at / 1000},
          {"updated_at", u.updated_at / 1000}};
}

json claim_json(const persistence::claim_record& c) {
  return {{"id", c.id},
          {"name", c.name},
          {"value", c.value},
          {"description", c.description}};
}

json claims_json(const std::vector<persistence::claim_record>& claims) {
  auto out = json::array();
  for (auto& c : claims)
    out.push_back(claim_json(c));
  return out;
}

response ok_json(bhttp::status status, const json& body) {
  return json_response(status, body.dump(-1, ' ', false,
                                         json::error_handler_t::replace));
}

response no_content() {
  response res{bhttp::status::no_content, 11};
  res.set(bhttp::field::cache_control, "no-store");
  return res;
}

response not_found(const std::string& what) {
  return error_response(bhttp::status::not_found, what + " does not exist");
}

response store_failed(const store_error& e, const std::string& what) {
  switch (e.failure) {
    case store_failure::conflict:
      return error_response(bhttp::status::conflict, "conflict",
                            what + " exists already");
    case store_failure::unavailable:
    case store_failure::schema:
      return error_response(bhttp::status::service_unavailable,
                            std::string{"the database is unavailable: "}
                              + e.what());
    case store_failure::rejected:
      break;
  }
  spdlog::error("admin: the database refused a statement: {}", e.what());
  return error_response(bhttp::status::internal_server_error,
                        "the database refused the change");
}

/// Runs WORK(store&) -> response on a store worker and answers with it;
/// WHAT names the object for a conflict.
void run_on_store(const std::shared_ptr<store_pool>& pool, responder done, std::string what,
                  std::function<response(store&)> work) {
  if (pool == nullptr)
    return done(error_response(bhttp::status::service_unavailable,
                               "this node has no database"));
  store_job job;
  job.work = [done, work](store& db) { done(work(db)); };
  job.failed = [done, what](const store_error& e) {
    done(store_failed(e, what));
  };
  if (!pool->submit(std::move(job)))
    done(error_response(bhttp::status::service_unavailable,
                        "the database queue is full"));
}

/// Hashes PASSWORD on the hash pool, then THEN(hash) (on its thread).
void hash_then(work_pool* pool, responder done, std::string password,
               auth::scrypt_cost cost,
               std::function<void(std::string)> then) {
  if (pool == nullptr)
    return done(error_response(bhttp::status::service_unavailable,
                               "this node cannot hash passwords"));
  auto submitted = pool->submit([=] {
    std::string hash;
    try {
      hash = auth::hash_password(password, cost);
    } catch (const std::exception& e) {
      spdlog::error("admin: password hash failed: {}", e.what());
      return done(error_response(bhttp::status::internal_server_error,
                                 "the password could not be hashed"));
    }
    then(std::move(hash));
  });
  if (!submitted)
    done(error_response(bhttp::status::service_unavailable,
                        "too many password hashes waiting"));
}

/// The {id} of a claim route, or nullopt after answering.
std::optional<int64_t> claim_id(const route_params& params, responder& done) {
  auto& text = params.at("id");
  try {
    auto n = std::stoll(text);
    if (n > 0 && std::to_string(n) == text)
      return n;
  } catch (const std::exception&) {
  }
  done(bad_request("a claim id is a positive number"));
  return std::nullopt;
}

std::optional<std::string> username_param(const route_params& params,
                                          responder& done) {
  return name_param(params, "username", done);
}

/// A change to what a group links to (a member, a claim): the group's
/// {name}, a second key READ from the route, then OP(db, group, key):
/// 204, or 404 naming MISSING.
template <class Read, class Op>
void group_link(const std::shared_ptr<store_pool>& pool,
                const route_params& params, responder& done, Read read, Op op,
                const char* missing) {
  auto group = name_param(params, "name", done);
  if (!group)
    return;
  auto key = read(params, done);
  if (!key)
    return;
  run_on_store(pool, done, "",
               [g = *group, k = *key, op, missing](store& db) {
                 return op(db, g, k) ? no_content() : not_found(missing);
               });
}

} // namespace

auth::scrypt_cost api::password_cost() const {
  return {ctx_.settings.auth.scrypt_log2_n, ctx_.settings.auth.scrypt_r,
          ctx_.settings.auth.scrypt_p};
}

// -- users ---------------------------------------------------------------------------

void api::post_admin_users(const request& req, const route_params&,
                           responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"username", "password", "enabled"}, error))
    return done(std::move(error));
  auto username = name_member(*body, "username", error);
  auto password = username ? password_member(*body, true, error) : std::nullopt;
  if (!username || !password)
    return done(std::move(error));
  auto enabled = body->find("enabled");
  if (enabled != body->end() && !enabled->is_boolean())
    return done(bad_request("\"enabled\" must be true or false"));
  bool on = enabled == body->end() || enabled->get<bool>();
  auto clock = ctx_.clock;
  auto pool = ctx_.store;
  hash_then(ctx_.hashing, done, *password, password_cost(),
            [=, name = *username](std::string hash) {
              run_on_store(pool, done, "the user " + name, [=](store& db) {
                auto u = db.create_user(name, hash, on, to_unix_ms(clock()));
                auto out = user_json(u);
                out["groups"] = json::array();
                return ok_json(bhttp::status::created, out);
              });
            });
}

void api::get_admin_users(const request& req, const route_params&,
                          responder& done) {
  auto after = query_param(req.target(), "after").value_or("");
  size_t limit = 100;
  if (auto l = query_param(req.target(), "limit")) {
    try {
      auto n = std::stoul(*l);
      if (n < 1 || n > max_page || std::to_string(n) != *l)
        throw std::invalid_argument{"range"};
      limit = n;
    } catch (const std::exception&) {
      return done(bad_request("limit must be a number from 1 to 1000"));
    }
  }
  run_on_store(ctx_.store, done, "", [=](store& db) {
    auto users = db.list_users(after, limit);
    json out{{"users", json::array()}};
    for (auto& u : users)
      out["users"].push_back(user_json(u));
    if (users.size() == limit)
      out["next"] = users.back().username;
    return ok_json(bhttp::status::ok, out);
  });
}

void api::get_admin_user(const request&, const route_params& params,
                         responder& done) {
  auto name = name_param(params, "username", done);
  if (!name)
    return;
  run_on_store(ctx_.store, done, "", [name = *name](store& db) {
    auto u = db.find_user(name);
    if (!u)
      return not_found("the user");
    auto out = user_json(*u);
    out["groups"] = db.user_groups(u->id);
    out["claims"] = claims_json(db.user_claims(u->id));
    return ok_json(bhttp::status::ok, out);
  });
}

void api::patch_admin_user(const request& req, const route_params& params,
                           responder& done) {
  auto name = name_param(params, "username", done);
  if (!name)
    return;
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"password", "enabled"}, error))
    return done(std::move(error));
  auto password = password_member(*body, false, error);
  if (!password)
    return done(std::move(error));
  std::optional<bool> enabled;
  if (auto e = body->find("enabled"); e != body->end()) {
    if (!e->is_boolean())
      return done(bad_request("\"enabled\" must be true or false"));
    enabled = e->get<bool>();
  }
  auto clock = ctx_.clock;
  auto pool = ctx_.store;
  // Disabling an account ends every session of it.
  auto answer = enabled == false
                  ? ending_subject(*name, "account disabled", done)
                  : done;
  auto update = [=, name = *name](std::optional<std::string> hash) {
    run_on_store(pool, answer, "", [=](store& db) {
      if (!db.update_user(name, hash, enabled, to_unix_ms(clock())))
        return not_found("the user");
      return ok_json(bhttp::status::ok, user_json(*db.find_user(name)));
    });
  };
  if (password->empty())
    return update(std::nullopt);
  hash_then(ctx_.hashing, done, *password, password_cost(),
            [update](std::string hash) { update(std::move(hash)); });
}

responder api::ending_subject(std::string sub, std::string reason,
                              responder done) {
  return [this, sub, reason, done](response res) {
    if (res.result() != bhttp::status::ok
        && res.result() != bhttp::status::no_content)
      return done(std::move(res));
    revoke(state::deny_kind::sub, sub, reason,
           [done, res](response revoked) {
             done(revoked.result() == bhttp::status::ok ? res : revoked);
           });
  };
}

void api::delete_admin_user(const request&, const route_params& params,
                            responder& done) {
  auto name = name_param(params, "username", done);
  if (!name)
    return;
  run_on_store(ctx_.store, ending_subject(*name, "account deleted", done), "",
               [name = *name](store& db) {
    return db.delete_user(name) ? no_content() : not_found("the user");
  });
}

// -- groups --------------------------------------------------------------------------

void api::post_admin_groups(const request& req, const route_params&,
                            responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"name"}, error))
    return done(std::move(error));
  auto name = name_member(*body, "name", error);
  if (!name)
    return done(std::move(error));
  auto clock = ctx_.clock;
  run_on_store(ctx_.store, done, "the group " + *name,
               [=, name = *name](store& db) {
                 auto g = db.create_group(name, to_unix_ms(clock()));
                 return ok_json(bhttp::status::created,
                                {{"name", g.name},
                                 {"created_at", g.created_at / 1000},
                                 {"members", json::array()},
                                 {"claims", json::array()}});
               });
}

void api::get_admin_groups(const request&, const route_params&,
                           responder& done) {
  run_on_store(ctx_.store, done, "", [](store& db) {
    json out{{"groups", json::array()}};
    for (auto& g : db.list_groups())
      out["groups"].push_back(
        {{"name", g.name}, {"created_at", g.created_at / 1000}});
    return ok_json(bhttp::status::ok, out);
  });
}

void api::get_admin_group(const request&, const route_params& params,
                          responder& done) {
  auto name = name_param(params, "name", done);
  if (!name)
    return;
  run_on_store(ctx_.store, done, "", [name = *name](store& db) {
    for (auto& g : db.list_groups())
      if (g.name == name)
        return ok_json(bhttp::status::ok,
                       {{"name", g.name},
                        {"created_at", g.created_at / 1000},
                        {"members", db.group_members(name)},
                        {"claims", claims_json(db.group_claims(name))}});
    return not_found("the group");
  });
}

void api::delete_admin_group(const request&, const route_params& params,
                             responder& done) {
  auto name = name_param(params, "name", done);
  if (!name)
    return;
  run_on_store(ctx_.store, done, "", [name = *name](store& db) {
    return db.delete_group(name) ? no_content() : not_found("the group");
  });
}

// -- claims --------------------------------------------------------------------------


void api::post_admin_claims(const request& req, const route_params&,
                            responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"name", "value", "description"}, error))
    return done(std::move(error));
  auto name = name_member(*body, "name", error);
  auto value = name ? name_member(*body, "value", error) : std::nullopt;
  if (!name || !value)
    return done(std::move(error));
  std::string description;
  if (auto d = body->find("description"); d != body->end()) {
    if (!d->is_string() || d->get_ref<const std::string&>().size()
                             > max_description_bytes)
      return done(bad_request("\"description\" must be a string of at most "
                              "1024 bytes"));
    description = d->get<std::string>();
  }
  run_on_store(ctx_.store, done, "the claim " + *name + "=" + *value,
               [n = *name, v = *value, description](store& db) {
                 return ok_json(bhttp::status::created,
                                claim_json(db.create_claim(n, v, description)));
               });
}

void api::get_admin_claims(const request&, const route_params&,
                           responder& done) {
  run_on_store(ctx_.store, done, "", [](store& db) {
    return ok_json(bhttp::status::ok,
                   {{"claims", claims_json(db.list_claims())}});
  });
}

void api::delete_admin_claim(const request&, const route_params& params,
                             responder& done) {
  auto id = claim_id(params, done);
  if (!id)
    return;
  run_on_store(ctx_.store, done, "", [id = *id](store& db) {
    return db.delete_claim(id) ? no_content() : not_found("the claim");
  });
}

void api::put_group_member(const request&, const route_params& params,
                           responder& done) {
  group_link(ctx_.store, params, done, username_param,
             [](store& db, const std::string& g, const std::string& u) {
               return db.add_member(g, u);
             },
             "the group or the user");
}

void api::delete_group_member(const request&, const route_params& params,
                              responder& done) {
  group_link(ctx_.store, params, done, username_param,
             [](store& db, const std::string& g, const std::string& u) {
               return db.remove_member(g, u);
             },
             "the membership");
}

void api::put_group_claim(const request&, const route_params& params,
                          responder& done) {
  group_link(ctx_.store, params, done, claim_id,
             [](store& db, const std::string& g, int64_t id) {
               return db.grant_claim(g, id);
             },
             "the group or the claim");
}

void api::delete_group_claim(const request&, const route_params& params,
                             responder& done) {
  group_link(ctx_.store, params, done, claim_id,
             [](store& db, const std::string& g, int64_t id) {
               return db.revoke_claim(g, id);
             },
             "the grant");
}

} // namespace keymesh::http
