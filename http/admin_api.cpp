// The admin routes over the user directory: users (with scrypt password
// hashes), groups and their members, and claims that groups grant. Each
// route checks its input, sends one request to a directory service
// (services/directory.hpp) and renders the answer.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "services/directory.hpp"
#include "actors/error.hpp"
#include "http/api.hpp"
#include "http/api_errors.hpp"
#include "http/json_input.hpp"

namespace keymesh::http {

using nlohmann::json;

namespace {


/// A string member NAME of BODY that valid_directory_name accepts, or
/// nullopt after setting ERROR.
std::optional<std::string> name_member(const json& body, const char* name,
                                       response& error) {
  auto v = body.find(name);
  if (v == body.end() || !v->is_string()
      || !valid_directory_name(v->get<std::string>())) {
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

/// A path parameter that valid_directory_name accepts, or nullopt after
/// answering.
std::optional<std::string> name_param(const route_params& params,
                                      const char* key, responder& done) {
  auto value = params.at(key);
  if (valid_directory_name(value))
    return value;
  done(bad_request(std::string{"malformed "} + key));
  return std::nullopt;
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

json user_json(const user_view& u) {
  return {{"username", u.username},
          {"enabled", u.enabled},
          {"created_at", u.created_at / 1000},
          {"updated_at", u.updated_at / 1000}};
}

json claims_json(const std::vector<claim_view>& claims) {
  auto out = json::array();
  for (auto& c : claims)
    out.push_back({{"id", c.id},
                   {"name", c.name},
                   {"value", c.value},
                   {"description", c.description}});
  return out;
}

json group_json(const group_view& g) {
  return {{"name", g.name},
          {"created_at", g.created_at / 1000},
          {"members", g.members},
          {"claims", claims_json(g.claims)}};
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

response no_content_for(const atom::ok&) {
  return no_content();
}

/// The ?limit= of a page (1 to max_user_page, default 100), or nullopt
/// after answering 400.
std::optional<uint64_t> page_limit(const request& req, responder& done) {
  auto l = query_param(req.target(), "limit");
  if (!l)
    return uint64_t{100};
  try {
    auto n = std::stoul(*l);
    if (n >= 1 && n <= max_user_page && std::to_string(n) == *l)
      return n;
  } catch (const std::exception&) {
  }
  done(bad_request("limit must be a number from 1 to 1000"));
  return std::nullopt;
}

json client_json(const persistence::client_record& c) {
  return {{"client_id", c.client_id},
          {"backchannel_logout_uri", c.backchannel_logout_uri},
          {"backchannel_logout_session_required", c.session_required},
          {"created_at", c.created_at / 1000},
          {"updated_at", c.updated_at / 1000}};
}

} // namespace

// -- the directory service -------------------------------------------------------------

const directory_actor& api::directory() const {
  thread_local size_t next = 0;
  return ctx_.directory[next++ % ctx_.directory.size()];
}

response api::directory_error(caf::actor_system& sys,
                              const caf::error& err) const {
  if (err.category() == error_category) {
    auto text = context_text(err);
    switch (static_cast<ec>(err.code())) {
      case ec::not_found:
        return error_response(bhttp::status::not_found,
                              text + " does not exist");
      case ec::conflict:
        return error_response(bhttp::status::conflict, "conflict",
                              text + " exists already");
      case ec::invalid_argument:
        return bad_request(text);
      case ec::unavailable:
        return error_response(bhttp::status::service_unavailable, text);
      case ec::overloaded:
        return overloaded(text);
      case ec::rejected:
      case ec::crypto_failure:
        return error_response(bhttp::status::internal_server_error, text);
      default:
        break;
    }
  }
  return state_error(sys, err, "the directory");
}

template <class T, class Render, class... Ts>
void api::ask_directory(responder done, Render render, Ts... xs) {
  ctx_.bridge->submit([this, done, render, xs...](
                        bridge_self self) {
    self->request(directory(), local_request, xs...)
      .then([done, render](T& answer) { done(render(answer)); },
            [done, self, this](caf::error& err) {
              done(directory_error(self->system(), err));
            });
  });
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
  user_spec spec{*username, *password,
                 enabled == body->end() || enabled->get<bool>()};
  ask_directory<user_view>(
    done,
    [](const user_view& u) {
      auto out = user_json(u);
      out["groups"] = json::array();
      return ok_json(bhttp::status::created, out);
    },
    atom::create_v, std::move(spec));
}

void api::get_admin_users(const request& req, const route_params&,
                          responder& done) {
  auto after = query_param(req.target(), "after").value_or("");
  auto limit = page_limit(req, done);
  if (!limit)
    return;
  ask_directory<user_page>(
    done,
    [](const user_page& page) {
      json out{{"users", json::array()}};
      for (auto& u : page.users)
        out["users"].push_back(user_json(u));
      if (!page.next.empty())
        out["next"] = page.next;
      return ok_json(bhttp::status::ok, out);
    },
    atom::list_v, atom::user_v, after, *limit);
}

void api::get_admin_user(const request&, const route_params& params,
                         responder& done) {
  auto name = name_param(params, "username", done);
  if (!name)
    return;
  ask_directory<user_view>(
    done,
    [](const user_view& u) {
      auto out = user_json(u);
      out["groups"] = u.groups;
      out["claims"] = claims_json(u.claims);
      return ok_json(bhttp::status::ok, out);
    },
    atom::get_v, atom::user_v, *name);
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
  user_change change;
  change.username = *name;
  change.password = *password;
  if (auto e = body->find("enabled"); e != body->end()) {
    if (!e->is_boolean())
      return done(bad_request("\"enabled\" must be true or false"));
    change.set_enabled = true;
    change.enabled = e->get<bool>();
  }
  // Disabling an account ends every session of it (the directory does).
  ask_directory<user_view>(
    done,
    [](const user_view& u) { return ok_json(bhttp::status::ok, user_json(u)); },
    atom::update_v, std::move(change));
}

void api::delete_admin_user(const request&, const route_params& params,
                            responder& done) {
  auto name = name_param(params, "username", done);
  if (!name)
    return;
  ask_directory<atom::ok>(done, no_content_for, atom::remove_v, atom::user_v,
                          *name);
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
  ask_directory<group_view>(
    done,
    [](const group_view& g) {
      return ok_json(bhttp::status::created, group_json(g));
    },
    atom::create_v, atom::group_v, *name);
}

void api::get_admin_groups(const request&, const route_params&,
                           responder& done) {
  ask_directory<std::vector<group_view>>(
    done,
    [](const std::vector<group_view>& groups) {
      json out{{"groups", json::array()}};
      for (auto& g : groups)
        out["groups"].push_back(
          {{"name", g.name}, {"created_at", g.created_at / 1000}});
      return ok_json(bhttp::status::ok, out);
    },
    atom::list_v, atom::group_v);
}

void api::get_admin_group(const request&, const route_params& params,
                          responder& done) {
  auto name = name_param(params, "name", done);
  if (!name)
    return;
  ask_directory<group_view>(
    done,
    [](const group_view& g) { return ok_json(bhttp::status::ok, group_json(g)); },
    atom::get_v, atom::group_v, *name);
}

void api::delete_admin_group(const request&, const route_params& params,
                             responder& done) {
  auto name = name_param(params, "name", done);
  if (!name)
    return;
  ask_directory<atom::ok>(done, no_content_for, atom::remove_v, atom::group_v,
                          *name);
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
  claim_spec spec{*name, *value, {}};
  if (auto d = body->find("description"); d != body->end()) {
    if (!d->is_string() || d->get_ref<const std::string&>().size()
                             > max_description_bytes)
      return done(bad_request("\"description\" must be a string of at most "
                              "1024 bytes"));
    spec.description = d->get<std::string>();
  }
  ask_directory<claim_view>(
    done,
    [](const claim_view& c) {
      return ok_json(bhttp::status::created, claims_json({c}).at(0));
    },
    atom::create_v, std::move(spec));
}

void api::get_admin_claims(const request&, const route_params&,
                           responder& done) {
  ask_directory<std::vector<claim_view>>(
    done,
    [](const std::vector<claim_view>& claims) {
      return ok_json(bhttp::status::ok, {{"claims", claims_json(claims)}});
    },
    atom::list_v, atom::claim_v);
}

void api::delete_admin_claim(const request&, const route_params& params,
                             responder& done) {
  auto id = claim_id(params, done);
  if (!id)
    return;
  ask_directory<atom::ok>(done, no_content_for, atom::remove_v, atom::claim_v,
                          *id);
}

// -- members and grants ------------------------------------------------------------------

void api::put_group_member(const request&, const route_params& params,
                           responder& done) {
  auto group = name_param(params, "name", done);
  auto user = group ? name_param(params, "username", done) : std::nullopt;
  if (group && user)
    ask_directory<atom::ok>(done, no_content_for, atom::add_v, atom::member_v,
                            *group, *user);
}

void api::delete_group_member(const request&, const route_params& params,
                              responder& done) {
  auto group = name_param(params, "name", done);
  auto user = group ? name_param(params, "username", done) : std::nullopt;
  if (group && user)
    ask_directory<atom::ok>(done, no_content_for, atom::remove_v,
                            atom::member_v, *group, *user);
}

void api::put_group_claim(const request&, const route_params& params,
                          responder& done) {
  auto group = name_param(params, "name", done);
  auto id = group ? claim_id(params, done) : std::nullopt;
  if (group && id)
    ask_directory<atom::ok>(done, no_content_for, atom::add_v, atom::grant_v,
                            *group, *id);
}

void api::delete_group_claim(const request&, const route_params& params,
                             responder& done) {
  auto group = name_param(params, "name", done);
  auto id = group ? claim_id(params, done) : std::nullopt;
  if (group && id)
    ask_directory<atom::ok>(done, no_content_for, atom::remove_v,
                            atom::grant_v, *group, *id);
}

// -- relying parties (back-channel logout) -----------------------------------------------

void api::put_admin_client(const request& req, const route_params& params,
                           responder& done) {
  auto id = name_param(params, "client_id", done);
  if (!id)
    return;
  response error;
  auto body = parse_object(req, error);
  if (!body
      || !only_members(*body, {"backchannel_logout_uri",
                               "backchannel_logout_session_required"},
                       error))
    return done(std::move(error));
  persistence::client_record c;
  c.client_id = *id;
  if (auto uri = body->find("backchannel_logout_uri"); uri != body->end()) {
    if (!uri->is_string())
      return done(bad_request("\"backchannel_logout_uri\" must be a string"));
    c.backchannel_logout_uri = uri->get<std::string>();
  }
  if (auto required = body->find("backchannel_logout_session_required");
      required != body->end()) {
    if (!required->is_boolean())
      return done(bad_request("\"backchannel_logout_session_required\" must "
                              "be true or false"));
    c.session_required = required->get<bool>();
  }
  ask_directory<persistence::client_record>(
    done,
    [](const persistence::client_record& stored) {
      return ok_json(bhttp::status::ok, client_json(stored));
    },
    atom::put_v, std::move(c));
}

void api::get_admin_client(const request&, const route_params& params,
                           responder& done) {
  auto id = name_param(params, "client_id", done);
  if (!id)
    return;
  ask_directory<client_records>(
    done,
    [](const client_records& found) {
      if (found.empty())
        return error_response(bhttp::status::not_found, "not_found",
                              "no such client");
      return ok_json(bhttp::status::ok, client_json(found.front()));
    },
    atom::get_v, atom::client_v, *id);
}

void api::get_admin_clients(const request& req, const route_params&,
                            responder& done) {
  auto after = query_param(req.target(), "after").value_or("");
  auto limit = page_limit(req, done);
  if (!limit)
    return;
  ask_directory<client_records>(
    done,
    [limit = *limit](const client_records& page) {
      json out{{"clients", json::array()}};
      for (auto& c : page)
        out["clients"].push_back(client_json(c));
      if (page.size() == limit)
        out["next"] = page.back().client_id;
      return ok_json(bhttp::status::ok, out);
    },
    atom::list_v, atom::client_v, after, *limit);
}

void api::delete_admin_client(const request&, const route_params& params,
                              responder& done) {
  auto id = name_param(params, "client_id", done);
  if (id)
    ask_directory<atom::ok>(done, no_content_for, atom::remove_v,
                            atom::client_v, *id);
}

} // namespace keymesh::http
