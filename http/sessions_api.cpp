// The session routes of http::api: create, read, touch and update, revoke,
// list and revoke by subject, tokens bound to a session, and revocations by
// sid, subject or token id. Each checks its input and sends one request to
// a sessions service (services/sessions.hpp), then renders the answer.
#include <algorithm>

#include <caf/event_based_actor.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/bus.hpp"
#include "actors/error.hpp"
#include "http/api.hpp"
#include "http/api_errors.hpp"
#include "services/sessions.hpp"
#include "http/json_input.hpp"
#include "state/placement.hpp"
#include "state/session.hpp"

namespace keymesh::http {

namespace {

using nlohmann::json;
using state::session;

constexpr size_t max_reason_bytes = 256;

response session_gone(bool revoked) {
  return error_response(bhttp::status::not_found, "not_found",
                        revoked ? "the session was revoked"
                                : "no such session (or it expired)");
}

/// The optional "reason" member of BODY; nullopt (and ERROR) when invalid.
std::optional<std::string> read_reason(const json& body, response& error) {
  auto r = body.find("reason");
  if (r == body.end())
    return std::string{};
  if (!r->is_string()
      || r->get_ref<const std::string&>().size() > max_reason_bytes) {
    error = bad_request("\"reason\" must be a string of at most 256 bytes");
    return std::nullopt;
  }
  return r->get<std::string>();
}

/// The reason of a DELETE, whose body is empty or {"reason": "..."}.
std::optional<std::string> reason_of(const request& req, response& error) {
  if (req.body().empty())
    return std::string{};
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"reason"}, error))
    return std::nullopt;
  return read_reason(*body, error);
}

/// The {sid} of a route, or nullopt after answering 400 for a malformed one.
std::optional<std::string> session_id(const route_params& params,
                                      responder& done) {
  auto sid = params.at("sid");
  if (state::valid_session_id(sid))
    return sid;
  done(bad_request("malformed session id"));
  return std::nullopt;
}

/// Reads "attributes": an object of strings (NULLS: null deletes).
bool read_attributes(const json& body, bool nulls,
                     std::map<std::string, std::optional<std::string>>& out,
                     response& error) {
  auto a = body.find("attributes");
  if (a == body.end())
    return true;
  if (!a->is_object()) {
    error = bad_request("\"attributes\" must be an object of strings");
    return false;
  }
  for (auto& [k, v] : a->items()) {
    if (k.empty() || k.size() > max_subject_bytes) {
      error = bad_request("attribute names are 1 to 256 bytes");
      return false;
    }
    if (v.is_string())
      out[k] = v.get<std::string>();
    else if (v.is_null() && nulls)
      out[k] = std::nullopt;
    else {
      error = bad_request(nulls ? "attribute values must be strings (or null "
                                  "to remove one)"
                                : "attribute values must be strings");
      return false;
    }
  }
  return true;
}

/// Reads "clients": an object of client_id -> the sid that client was
/// given (a string, empty for the session's own sid).
bool read_clients(const json& body, std::map<std::string, std::string>& out,
                  response& error) {
  auto c = body.find("clients");
  if (c == body.end())
    return true;
  if (!c->is_object()) {
    error = bad_request("\"clients\" must be an object of client_id to sid "
                        "(a string, empty for this session's sid)");
    return false;
  }
  for (auto& [k, v] : c->items()) {
    if (!v.is_string()) {
      error = bad_request("\"clients\" values must be strings (the sid the "
                          "client was given, or empty)");
      return false;
    }
    out[k] = v.get<std::string>();
  }
  if (auto why = state::clients_problem(out); !why.empty()) {
    error = bad_request(why);
    return false;
  }
  return true;
}

std::optional<int64_t> read_seconds(const json& body, const char* name,
                                    int64_t min, int64_t max, bool& bad) {
  auto v = body.find(name);
  if (v == body.end())
    return std::nullopt;
  if (!v->is_number_integer() || v->get<int64_t>() < min
      || v->get<int64_t>() > max) {
    bad = true;
    return std::nullopt;
  }
  return v->get<int64_t>();
}

} // namespace

response overloaded(std::string_view description) {
  return error_response(bhttp::status::service_unavailable, "overloaded",
                        description);
}

bool is_overloaded(const response& res) {
  constexpr std::string_view prefix = R"({"error":"overloaded")";
  return res.result() == bhttp::status::service_unavailable
         && std::string_view{res.body()}.substr(0, prefix.size()) == prefix;
}

response state_error(caf::actor_system& sys, const caf::error& err,
                     std::string_view what) {
  if (err.category() == error_category) {
    switch (static_cast<ec>(err.code())) {
      case ec::not_found:
        return error_response(bhttp::status::not_found, "not_found",
                              std::string{what} + " does not exist");
      case ec::conflict:
        return error_response(bhttp::status::conflict, "conflict",
                              std::string{what}
                                + " was changed concurrently; retry");
      case ec::unavailable:
        return error_response(bhttp::status::service_unavailable,
                              "unavailable", sys.render(err));
      case ec::overloaded:
        return overloaded(context_text(err));
      default:
        break;
    }
  }
  if (err == caf::sec::request_timeout)
    return error_response(bhttp::status::gateway_timeout,
                          "the owners of the partition did not answer in "
                          "time");
  spdlog::error("http: state operation failed: {}", sys.render(err));
  return error_response(bhttp::status::internal_server_error,
                        "state operation failed");
}

// -- the sessions service -------------------------------------------------------

const sessions_actor& api::sessions() const {
  // Any instance will do; spread the load without a shared counter.
  thread_local size_t next = 0;
  return ctx_.sessions[next++ % ctx_.sessions.size()];
}

response api::session_error(caf::actor_system& sys,
                            const caf::error& err) const {
  if (err.category() == error_category) {
    switch (static_cast<ec>(err.code())) {
      case ec::not_found:
        return session_gone(false);
      case ec::revoked:
        return session_gone(true);
      case ec::invalid_argument:
        return bad_request(err.context().match_elements<std::string>()
                             ? err.context().get_as<std::string>(0)
                             : std::string{"invalid session request"});
      case ec::conflict:
        if (err.context().match_elements<std::string>())
          return error_response(bhttp::status::conflict, "conflict",
                                err.context().get_as<std::string>(0));
        break;
      default:
        break;
    }
  }
  return state_error(sys, err, "the session");
}

void api::read_session(bridge_self self, std::string sid,
                       std::function<void(std::optional<session>, bool,
                                          state::version)>
                         then,
                       std::function<void(caf::error)> fail) const {
  self->request(sessions(), local_request, atom::get_v, std::move(sid))
    .then([=](session_found& found) { then(std::move(found.s), false,
                                           found.ver); },
          [=](caf::error& err) {
            if (err == make_error(ec::not_found))
              return then(std::nullopt, false, {});
            if (err == make_error(ec::revoked))
              return then(std::nullopt, true, {});
            fail(std::move(err));
          });
}

// -- routes -------------------------------------------------------------------

void api::post_sessions(const request& req, const route_params&,
                        responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body)
    return done(std::move(error));
  if (!only_members(*body, {"sub", "client_id", "ttl", "idle_timeout",
                            "attributes", "clients", "sid"},
                    error))
    return done(std::move(error));
  auto& cfg = ctx_.settings.sessions;
  session_spec spec;
  auto sub = body->find("sub");
  if (sub == body->end() || !valid_short_string(*sub))
    return done(bad_request("\"sub\" is required: a string of 1 to 256 bytes"));
  spec.sub = sub->get<std::string>();
  if (spec.sub.find(state::partition_key_separator) != std::string::npos)
    return done(bad_request("\"sub\" may not contain control character 0x1f"));
  if (auto c = body->find("client_id"); c != body->end()) {
    if (!valid_short_string(*c))
      return done(bad_request("\"client_id\" must be a string of 1 to 256 "
                              "bytes"));
    spec.client_id = c->get<std::string>();
  }
  if (auto c = body->find("sid"); c != body->end()) {
    if (!c->is_string() || !state::valid_session_id(c->get<std::string>()))
      return done(bad_request("\"sid\" must be 22 base64url characters"));
    spec.sid = c->get<std::string>();
  }
  bool bad = false;
  auto max_ttl = cfg.max_ttl.count();
  auto ttl = read_seconds(*body, "ttl", 1, max_ttl, bad);
  if (bad)
    return done(bad_request("\"ttl\" must be whole seconds from 1 to "
                            + std::to_string(max_ttl)
                            + " (sessions.max_ttl)"));
  auto idle = read_seconds(*body, "idle_timeout", 0, max_ttl, bad);
  if (bad)
    return done(bad_request("\"idle_timeout\" must be whole seconds from 0 "
                            "(none) to sessions.max_ttl"));
  spec.ttl = ttl.value_or(0);
  spec.idle_timeout = idle.value_or(-1);
  std::map<std::string, std::optional<std::string>> attrs;
  if (!read_attributes(*body, false, attrs, error))
    return done(std::move(error));
  for (auto& [k, v] : attrs)
    spec.attributes[k] = *v;
  if (state::attribute_bytes(spec.attributes) > cfg.max_attribute_bytes)
    return done(bad_request("\"attributes\" are larger than "
                            + std::to_string(cfg.max_attribute_bytes)
                            + " bytes (sessions.max_attribute_bytes)"));
  if (!read_clients(*body, spec.clients, error))
    return done(std::move(error));
  ctx_.bridge->submit([this, spec = std::move(spec),
                       done](bridge_self self) {
    self->request(sessions(), local_request, atom::create_v, spec)
      .then(
        [=](session& s) {
          done(json_response(bhttp::status::created, state::session_json(s)));
        },
        [=](caf::error& err) { done(session_error(self->system(), err)); });
  });
}

void api::get_session(const request&, const route_params& params,
                      responder& done) {
  auto sid = session_id(params, done);
  if (!sid)
    return;
  ctx_.bridge->submit([this, sid = std::move(*sid),
                       done](bridge_self self) {
    self->request(sessions(), local_request, atom::get_v, sid)
      .then(
        [=](session_found& found) {
          done(json_response(bhttp::status::ok,
                             state::session_json(found.s)));
        },
        [=](caf::error& err) { done(session_error(self->system(), err)); });
  });
}

void api::patch_session(const request& req, const route_params& params,
                        responder& done) {
  auto sid = session_id(params, done);
  if (!sid)
    return;
  session_patch patch;
  if (!req.body().empty()) {
    response error;
    auto body = parse_object(req, error);
    if (!body
        || !only_members(*body, {"attributes", "touch", "clients"}, error)
        || !read_clients(*body, patch.clients, error))
      return done(std::move(error));
    std::map<std::string, std::optional<std::string>> changes;
    if (!read_attributes(*body, true, changes, error))
      return done(std::move(error));
    for (auto& [k, v] : changes)
      if (v)
        patch.set[k] = *v;
      else
        patch.remove.push_back(k);
    if (auto t = body->find("touch"); t != body->end()) {
      if (!t->is_boolean())
        return done(bad_request("\"touch\" must be true or false"));
      patch.touch = t->get<bool>();
    }
  }
  ctx_.bridge->submit([this, sid = std::move(*sid), patch = std::move(patch),
                       done](bridge_self self) {
    self->request(sessions(), local_request, atom::update_v, sid, patch)
      .then(
        [=](session& s) {
          done(json_response(bhttp::status::ok, state::session_json(s)));
        },
        [=](caf::error& err) { done(session_error(self->system(), err)); });
  });
}

void api::delete_session_client(const request&, const route_params& params,
                                responder& done) {
  auto sid = session_id(params, done);
  if (!sid)
    return;
  auto client = params.at("client_id");
  if (client.size() > max_subject_bytes)
    return done(bad_request("client ids are 1 to 256 bytes"));
  ctx_.bridge->submit([this, sid = std::move(*sid), client = std::string{client},
                       done](bridge_self self) {
    self
      ->request(sessions(), local_request, atom::remove_v, atom::client_v, sid,
                client)
      .then(
        [=](session& s) {
          done(json_response(bhttp::status::ok, state::session_json(s)));
        },
        [=](caf::error& err) { done(session_error(self->system(), err)); });
  });
}

void api::delete_session(const request& req, const route_params& params,
                         responder& done) {
  auto sid = session_id(params, done);
  if (!sid)
    return;
  response error;
  auto reason = reason_of(req, error);
  if (!reason)
    return done(std::move(error));
  revoke(state::deny_kind::sid, std::move(*sid), *reason, done);
}

void api::get_subject_sessions(const request&, const route_params& params,
                               responder& done) {
  auto sub = params.at("sub");
  if (sub.empty() || sub.size() > max_subject_bytes)
    return done(bad_request("the subject must be 1 to 256 bytes"));
  ctx_.bridge->submit([this, sub, done](bridge_self self) {
    self->request(sessions(), local_request, atom::list_v, sub)
      .then(
        [=](std::vector<session>& found) {
          std::string out
            = R"({"sub":)" + json(sub).dump() + R"(,"sessions":[)";
          for (size_t i = 0; i < found.size(); ++i)
            out += (i ? "," : "") + state::session_json(found[i]);
          out += "]}";
          done(json_response(bhttp::status::ok, std::move(out)));
        },
        [=](caf::error& err) {
          done(state_error(self->system(), err, "the subject index"));
        });
  });
}

void api::delete_subject_sessions(const request& req,
                                  const route_params& params,
                                  responder& done) {
  auto sub = params.at("sub");
  if (sub.empty() || sub.size() > max_subject_bytes)
    return done(bad_request("the subject must be 1 to 256 bytes"));
  response error;
  auto reason = reason_of(req, error);
  if (!reason)
    return done(std::move(error));
  revoke(state::deny_kind::sub, sub, *reason, done);
}

void api::revoke(state::deny_kind kind, std::string value,
                 std::string reason, responder done) {
  revocation_order order{state::to_string(kind), std::move(value),
                         std::move(reason)};
  ctx_.bridge->submit([this, order = std::move(order),
                       done](bridge_self self) {
    self->request(sessions(), local_request, atom::revoke_v, order)
      .then(
        [=](revocation_outcome& out) {
          if (!out.log_error.empty())
            return done(error_response(
              bhttp::status::service_unavailable,
              "the revocation is in force on the nodes that were reached, "
              "but it could not be written to the revocation log (retry: "
              "revoking again is harmless): "
                + out.log_error));
          auto& what = out.order.kind;
          json body{{"revoked", what},
                    {what, out.order.value},
                    {"sessions", out.sessions},
                    {"propagation",
                     out.unreached.empty() ? "complete" : "partial"},
                    {"unreached", out.unreached}};
          if (!out.order.reason.empty())
            body["reason"] = out.order.reason;
          // The sessions ended; their relying parties' logouts are sent
          // from memory only.
          if (!out.logout_error.empty())
            body["backchannel_logout_error"] = out.logout_error;
          done(json_response(bhttp::status::ok,
                             body.dump(-1, ' ', false,
                                       json::error_handler_t::replace)));
        },
        [=](caf::error& err) {
          done(state_error(self->system(), err, "the session"));
        });
  });
}

void api::post_revocations(const request& req, const route_params&,
                           responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"sid", "sub", "jti", "reason"}, error))
    return done(std::move(error));
  int targets = 0;
  auto target = state::deny_kind::sid;
  std::string value;
  for (auto kind :
       {state::deny_kind::sid, state::deny_kind::sub, state::deny_kind::jti}) {
    auto name = state::to_string(kind);
    auto v = body->find(name);
    if (v == body->end())
      continue;
    ++targets;
    if (!valid_short_string(*v))
      return done(bad_request(std::string{"\""} + name
                              + "\" must be a string of 1 to 256 bytes"));
    target = kind;
    value = v->get<std::string>();
  }
  if (targets != 1)
    return done(bad_request("name exactly one of \"sid\", \"sub\" or \"jti\""));
  if (target == state::deny_kind::sid && !state::valid_session_id(value))
    return done(bad_request("malformed session id"));
  auto reason = read_reason(*body, error);
  if (!reason)
    return done(std::move(error));
  revoke(target, std::move(value), std::move(*reason), done);
}

void api::post_session_tokens(const request& req, const route_params& params,
                              responder& done) {
  auto sid_param = session_id(params, done);
  if (!sid_param)
    return;
  auto sid = std::move(*sid_param);
  response error;
  json body = json::object();
  if (!req.body().empty()) {
    auto parsed = parse_object(req, error);
    if (!parsed)
      return done(std::move(error));
    body = std::move(*parsed);
  }
  if (body.contains("sub"))
    return done(bad_request("the subject comes from the session: leave "
                            "\"sub\" out"));
  if (auto c = body.find("claims");
      c != body.end() && c->is_object() && c->contains("sid"))
    return done(bad_request("the \"sid\" claim comes from the session"));
  ctx_.bridge->submit([this, sid, body = std::move(body),
                       done](bridge_self self) mutable {
    read_session(
      self, sid,
      [=](std::optional<session> s, bool revoked, state::version) mutable {
        if (!s)
          return done(session_gone(revoked));
        body["sub"] = s->sub;
        response error;
        auto tr = parse_token_request(body, error);
        if (!tr)
          return done(std::move(error));
        auto claims = tr->extra_claims_json.empty()
                        ? json::object()
                        : json::parse(tr->extra_claims_json);
        claims["sid"] = sid;
        tr->extra_claims_json = claims.dump();
        // A token never outlives its session.
        auto left = (s->record_expiry() - to_unix_ms(ctx_.clock())) / 1000;
        auto ttl = tr->ttl_seconds > 0
                     ? tr->ttl_seconds
                     : ctx_.settings.keys.default_token_ttl.count();
        tr->ttl_seconds = std::max<int64_t>(1, std::min<int64_t>(ttl, left));
        self
          ->request(ctx_.keystore, local_request, atom::sign_v,
                    std::move(*tr))
          .then(
            [=](signed_token& t) {
              json out{{"token", t.token},
                       {"kid", t.kid},
                       {"expires_at", t.expires_at},
                       {"sid", sid}};
              done(json_response(bhttp::status::created, out.dump()));
            },
            [=](caf::error& err) {
              done(state_error(self->system(), err, "the token"));
            });
      },
      [=](caf::error err) {
        done(state_error(self->system(), err, "the session"));
      });
  });
}

} // namespace keymesh::http
