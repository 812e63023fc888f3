#include "http/api.hpp"

#include "common/text.hpp"
#include "http/api_errors.hpp"
#include "http/json_input.hpp"

#include <algorithm>

#include <boost/container/small_vector.hpp>

#include <spdlog/spdlog.h>

namespace keymesh::http {

namespace {

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

/// Path segments as views into the request target (no allocation for the
/// usual few segments).
using segment_list = boost::container::small_vector<std::string_view, 8>;

segment_list split_path(std::string_view path) {
  segment_list out;
  size_t pos = 0;
  while (pos < path.size()) {
    if (path[pos] == '/') {
      ++pos;
      continue;
    }
    auto end = path.find('/', pos);
    if (end == std::string_view::npos)
      end = path.size();
    out.emplace_back(path.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/// Percent-decodes S; returns nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size())
        return std::nullopt;
      auto hi = hex_digit(s[i + 1]);
      auto lo = hex_digit(s[i + 2]);
      if (hi < 0 || lo < 0)
        return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (plus_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

} // namespace

bool is_json_content_type(const request& req) {
  auto i = req.find(bhttp::field::content_type);
  if (i == req.end())
    return false;
  auto value = i->value();
  auto media = value.substr(0, value.find(';'));
  while (!media.empty() && media.back() == ' ')
    media.remove_suffix(1);
  constexpr std::string_view json = "application/json";
  if (media.size() != json.size())
    return false;
  for (size_t k = 0; k < json.size(); ++k)
    if (std::tolower(static_cast<unsigned char>(media[k])) != json[k])
      return false;
  return true;
}

std::optional<std::string> query_param(std::string_view target,
                                       std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return std::nullopt;
  auto query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    if (key && *key == name)
      return eq == std::string_view::npos
               ? std::string{}
               : percent_decode(pair.substr(eq + 1), true).value_or("");
    if (amp == std::string_view::npos)
      break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

api::api(api_context ctx)
  : ctx_(std::move(ctx)),
    verified_(std::make_unique<jose::verify_cache>(
      ctx_.settings.keys.verify_cache)) {
  if (ctx_.sessions.empty() && ctx_.bridge != nullptr
      && !ctx_.bridge->actors().empty()) {
    // Tests and tools that build an api by hand: a service of its own.
    auto opts = sessions_options::from_settings(ctx_.settings);
    if (!opts)
      throw std::invalid_argument(caf::to_string(opts.error()));
    sessions_deps deps{ctx_.state,  ctx_.deny,   ctx_.bus,
                       ctx_.store,  ctx_.status, ctx_.clock, {}};
    ctx_.sessions = spawn_sessions(
      ctx_.bridge->actors().front()->home_system(), *opts, deps,
      ctx_.bridge->actors().size());
  }
  if (ctx_.directory.empty() && !ctx_.sessions.empty()) {
    auto opts = directory_options::from_settings(ctx_.settings);
    if (!opts)
      throw std::invalid_argument(caf::to_string(opts.error()));
    directory_deps deps;
    deps.store = ctx_.store;
    deps.hashing = ctx_.hashing;
    deps.clock = ctx_.clock;
    ctx_.directory = spawn_directory(ctx_.sessions.front()->home_system(),
                                     *opts, deps, ctx_.sessions,
                                     ctx_.sessions.size());
  }
  if (ctx_.auth.empty() && !ctx_.sessions.empty()) {
    auto opts = auth_options::from_settings(ctx_.settings);
    if (!opts)
      throw std::invalid_argument(caf::to_string(opts.error()));
    auth_deps deps;
    deps.state = ctx_.state;
    deps.keystore = ctx_.keystore;
    deps.hashing = ctx_.hashing;
    deps.deny = ctx_.deny;
    deps.clock = ctx_.clock;
    ctx_.auth = spawn_auth(ctx_.sessions.front()->home_system(), *opts, deps,
                           ctx_.sessions, ctx_.directory);
  }
  if (ctx_.objects.empty() && !ctx_.sessions.empty()) {
    auto opts = objects_options::from_settings(ctx_.settings);
    if (!opts)
      throw std::invalid_argument(caf::to_string(opts.error()));
    objects_deps deps;
    deps.state = ctx_.state;
    deps.clock = ctx_.clock;
    ctx_.objects = spawn_objects(ctx_.sessions.front()->home_system(), *opts,
                                 deps, ctx_.sessions.size());
  }
  checks_.leeway = ctx_.settings.keys.leeway;
  checks_.issuer = ctx_.settings.keys.issuer;
  checks_.audience = ctx_.settings.keys.audience;
  cluster_checks_ = checks_;
  cluster_checks_.issuer = config::issuer_of(ctx_.settings);
  using bhttp::verb;
  // Body limits per route, under http.max_body_bytes: a GET needs none, a
  // token to verify is at most 16 KiB, a token request at most ~10 KiB.
  constexpr size_t get_body = 0;
  constexpr size_t small_json_body = 64 * 1024;
  add(verb::get, "/api/pkeys", false, &api::get_jwks, get_body);
  add(verb::get, "/.well-known/jwks.json", false, &api::get_jwks, get_body);
  add(verb::get, "/.well-known/openid-configuration", false,
      &api::get_discovery, get_body);
  add(verb::get, "/.well-known/oauth-authorization-server", false,
      &api::get_discovery, get_body);
  add(verb::post, "/api/tokens", true, &api::post_tokens, small_json_body);
  add(verb::post, "/api/verify", false, &api::post_verify, small_json_body);
  add(verb::get, "/healthz/live", false, &api::get_live, get_body);
  add(verb::get, "/healthz/ready", false, &api::get_ready, get_body);
  add(verb::get, "/metrics", false, &api::get_metrics, get_body);
  add(verb::get, "/api/openapi.json", false, &api::get_openapi, get_body);
  add(verb::get, "/api/cluster", true, &api::get_cluster, get_body);
  add(verb::post, "/api/keys/rotate", true, &api::post_rotate, get_body);
  add(verb::post, "/api/sessions", true, &api::post_sessions, small_json_body);
  add(verb::get, "/api/sessions/{sid}", true, &api::get_session, get_body);
  add(verb::patch, "/api/sessions/{sid}", true, &api::patch_session,
      small_json_body);
  add(verb::delete_, "/api/sessions/{sid}", true, &api::delete_session,
      small_json_body);
  add(verb::post, "/api/sessions/{sid}/tokens", true,
      &api::post_session_tokens, small_json_body);
  add(verb::delete_, "/api/sessions/{sid}/clients/{client_id}", true,
      &api::delete_session_client, get_body);
  add(verb::get, "/api/subjects/{sub}/sessions", true,
      &api::get_subject_sessions, get_body);
  add(verb::delete_, "/api/subjects/{sub}/sessions", true,
      &api::delete_subject_sessions, small_json_body);
  add(verb::post, "/api/revocations", true, &api::post_revocations,
      small_json_body);
  add(verb::get, "/api/events", true, &api::get_events, get_body);
  // An object's value may be up to objects.max_value_bytes, in JSON.
  auto object_body = std::max<size_t>(
    small_json_body, ctx_.settings.objects.max_value_bytes * 2 + 16 * 1024);
  add(verb::put, "/api/objects/{kind}/{id}", true, &api::put_object,
      object_body);
  add(verb::get, "/api/objects/{kind}/{id}", true, &api::get_object,
      get_body);
  add(verb::delete_, "/api/objects/{kind}/{id}", true, &api::delete_object,
      get_body);
  add(verb::post, "/api/objects/{kind}/{id}/consume", true,
      &api::consume_object, small_json_body);
  add(verb::get, "/api/objects/{kind}", true, &api::find_objects, get_body);
  add(verb::delete_, "/api/objects/{kind}", true, &api::delete_objects,
      get_body);
  add(verb::post, "/api/replay", true, &api::post_replay, small_json_body);
  add(verb::post, "/api/par", true, &api::post_par, object_body);
  add(verb::post, "/api/par/redeem", true, &api::post_par_redeem,
      small_json_body);
  add(verb::get, "/api/dpop/nonce", true, &api::get_dpop_nonce, get_body);
  add(verb::post, "/api/dpop/nonce/check", true, &api::post_dpop_nonce_check,
      small_json_body);
  add(verb::post, "/api/cookies/seal", true, &api::post_cookie_seal,
      small_json_body);
  add(verb::post, "/api/cookies/open", true, &api::post_cookie_open,
      small_json_body);
  add(verb::get, "/api/admin/secrets/{purpose}", true, &api::get_secret_ring,
      get_body);
  add(verb::post, "/api/admin/secrets/{purpose}/rotate", true,
      &api::post_secret_rotate, get_body);
  add(verb::post, "/api/login", false, &api::post_login, small_json_body);
  add(verb::post, "/api/refresh", false, &api::post_refresh, small_json_body);
  add(verb::post, "/api/logout", false, &api::post_logout, small_json_body);
  add(verb::post, "/api/admin/users", true, &api::post_admin_users,
      small_json_body);
  add(verb::get, "/api/admin/users", true, &api::get_admin_users, get_body);
  add(verb::get, "/api/admin/users/{username}", true, &api::get_admin_user,
      get_body);
  add(verb::patch, "/api/admin/users/{username}", true,
      &api::patch_admin_user, small_json_body);
  add(verb::delete_, "/api/admin/users/{username}", true,
      &api::delete_admin_user, get_body);
  add(verb::get, "/api/admin/clients", true, &api::get_admin_clients,
      get_body);
  add(verb::put, "/api/admin/clients/{client_id}", true,
      &api::put_admin_client, small_json_body);
  add(verb::get, "/api/admin/clients/{client_id}", true,
      &api::get_admin_client, get_body);
  add(verb::delete_, "/api/admin/clients/{client_id}", true,
      &api::delete_admin_client, get_body);
  add(verb::post, "/api/admin/groups", true, &api::post_admin_groups,
      small_json_body);
  add(verb::get, "/api/admin/groups", true, &api::get_admin_groups, get_body);
  add(verb::get, "/api/admin/groups/{name}", true, &api::get_admin_group,
      get_body);
  add(verb::delete_, "/api/admin/groups/{name}", true,
      &api::delete_admin_group, get_body);
  add(verb::put, "/api/admin/groups/{name}/members/{username}", true,
      &api::put_group_member, get_body);
  add(verb::delete_, "/api/admin/groups/{name}/members/{username}", true,
      &api::delete_group_member, get_body);
  add(verb::put, "/api/admin/groups/{name}/claims/{id}", true,
      &api::put_group_claim, get_body);
  add(verb::delete_, "/api/admin/groups/{name}/claims/{id}", true,
      &api::delete_group_claim, get_body);
  add(verb::post, "/api/admin/claims", true, &api::post_admin_claims,
      small_json_body);
  add(verb::get, "/api/admin/claims", true, &api::get_admin_claims, get_body);
  add(verb::delete_, "/api/admin/claims/{id}", true, &api::delete_admin_claim,
      get_body);
  std::vector<std::string> labels;
  for (auto& r : routes_)
    labels.push_back(r.label);
  labels.emplace_back("unmatched");
  metrics_ = std::make_shared<metrics>(std::move(labels));
}

void api::add(bhttp::verb method, std::string pattern, bool admin,
              handler_fn handler, size_t body_limit) {
  auto label = std::string{bhttp::to_string(method)} + " " + pattern;
  std::vector<std::string> segments;
  for (auto seg : split_path(pattern))
    segments.emplace_back(seg);
  routes_.push_back(route{method, std::move(segments), std::move(label), admin,
                          handler,
                          std::min(body_limit, ctx_.settings.http.max_body_bytes)});
}

void api::observe_unrouted(unsigned status, std::chrono::nanoseconds latency) {
  metrics_->observe_request(routes_.size(), status, latency);
}

void api::count_refused_connection() {
  metrics_->count_refused(metrics::refusal::connections);
}

api::match_result api::match(bhttp::verb method, std::string_view target) const {
  // HEAD is answered like GET (the server sends no body).
  if (method == bhttp::verb::head)
    method = bhttp::verb::get;
  auto segments = split_path(path_of(target));
  match_result m;
  m.index = routes_.size();
  for (size_t i = 0; i < routes_.size(); ++i) {
    auto& r = routes_[i];
    if (r.segments.size() != segments.size())
      continue;
    route_params candidate;
    bool matched = true;
    for (size_t k = 0; k < segments.size() && matched; ++k) {
      auto& pat = r.segments[k];
      if (pat.size() > 2 && pat.front() == '{' && pat.back() == '}') {
        auto value = percent_decode(segments[k], false);
        if (!value || value->empty()) {
          m.bad_escape = m.bad_escape || !value;
          matched = false;
        } else if (!is_clean_text(*value)) {
          // JSON cannot carry it back, and no name has one.
          m.bad_text = true;
          matched = false;
        } else {
          candidate.emplace(pat.substr(1, pat.size() - 2), std::move(*value));
        }
      } else {
        matched = pat == segments[k];
      }
    }
    if (!matched)
      continue;
    if (r.method == method && m.chosen == nullptr) {
      m.chosen = &r;
      m.index = i;
      m.params = std::move(candidate);
    } else if (r.method != method) {
      if (!m.allow.empty())
        m.allow += ", ";
      m.allow += std::string{bhttp::to_string(r.method)};
      if (r.method == bhttp::verb::get)
        m.allow += ", HEAD";
    }
  }
  return m;
}

std::optional<response>
api::refuse(const match_result& m, const bhttp::request_header<>& req) const {
  if (m.chosen == nullptr) {
    if (!m.allow.empty()) {
      auto res = error_response(bhttp::status::method_not_allowed,
                                "method " + std::string{req.method_string()}
                                  + " is not allowed here (allowed: " + m.allow
                                  + ")");
      res.set(bhttp::field::allow, m.allow);
      return res;
    }
    if (m.bad_text)
      return bad_request("a path parameter is not UTF-8 text, or has a "
                         "control character");
    return error_response(bhttp::status::not_found,
                          m.bad_escape ? "malformed percent-escape in the path"
                                       : "no such resource");
  }
  if (!m.chosen->admin)
    return std::nullopt;
  // Without an admin key set nobody is an admin: fail closed.
  auto i = req.find(bhttp::field::authorization);
  auto verdict = !ctx_.admin
                   ? admin_auth::outcome::rejected
                   : ctx_.admin->check(i == req.end() ? std::string_view{}
                                                      : i->value());
  if (verdict == admin_auth::outcome::missing) {
    auto res = error_response(bhttp::status::unauthorized,
                              "this endpoint needs an admin key: "
                              "Authorization: Bearer <key>");
    res.set(bhttp::field::www_authenticate, "Bearer realm=\"keymesh\"");
    return res;
  }
  if (verdict == admin_auth::outcome::rejected)
    return error_response(bhttp::status::forbidden,
                          "the admin key is not valid");
  return std::nullopt;
}

preflight_result api::preflight(const bhttp::request_header<>& header) {
  auto m = match(header.method(), header.target());
  preflight_result result;
  result.reject = refuse(m, header);
  if (result.reject)
    metrics_->observe_request(m.index, result.reject->result_int(),
                              std::chrono::nanoseconds{0});
  else
    result.body_limit = m.chosen->body_limit;
  return result;
}

void api::handle(request req, responder done) {
  auto started = std::chrono::steady_clock::now();
  auto m = match(req.method(), req.target());
  // Every response is counted under its route, whichever thread answers.
  auto observe = [stats = metrics_, index = m.index,
                  started](const response& res) {
    stats->observe_request(index, res.result_int(),
                           std::chrono::steady_clock::now() - started);
    if (is_overloaded(res))
      stats->count_refused(metrics::refusal::overloaded);
  };
  responder::stream_fn stream;
  if (done.can_stream())
    stream = [observe, open = done.streamer()](
               response head, std::shared_ptr<event_channel> ch) {
      observe(head);
      open(std::move(head), std::move(ch));
    };
  responder respond{[observe, done = std::move(done)](response res) {
                      observe(res);
                      done(std::move(res));
                    },
                    std::move(stream)};
  if (auto refused = refuse(m, req))
    return respond(std::move(*refused));
  try {
    (this->*(m.chosen->handler))(req, m.params, respond);
  } catch (const std::exception& e) {
    spdlog::error("http: {} failed: {}", m.chosen->label, e.what());
    respond(error_response(bhttp::status::internal_server_error,
                           "internal error"));
  }
}

} // namespace keymesh::http
