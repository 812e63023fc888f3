// The object routes of http::api (an OpenID Provider's short-lived models):
// put, get, destroy, consume once, and lookups and destroys by an index
// value. Each checks its input and sends one request to an objects service
// (services/objects.hpp), then renders the answer.
#include <cinttypes>
#include <cstdio>

#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/error.hpp"
#include "http/api.hpp"
#include "http/api_errors.hpp"
#include "http/json_input.hpp"
#include "services/objects.hpp"
#include "state/object.hpp"
#include "state/par.hpp"

namespace keymesh::http {

namespace {

using nlohmann::json;

/// A record version as clients see it: "<stamp>-<node>", both hex.
std::string version_text(const state::version& v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%" PRIx64 "-%" PRIx32, v.stamp, v.node);
  return buf;
}

std::optional<state::version> parse_version(const std::string& text) {
  auto dash = text.find('-');
  if (dash == std::string::npos || dash == 0 || dash > 16
      || text.size() - dash - 1 == 0 || text.size() - dash - 1 > 8)
    return std::nullopt;
  for (size_t i = 0; i < text.size(); ++i)
    if (i != dash && !std::isxdigit(static_cast<unsigned char>(text[i])))
      return std::nullopt;
  state::version v;
  v.stamp = std::stoull(text.substr(0, dash), nullptr, 16);
  v.node = static_cast<uint32_t>(std::stoul(text.substr(dash + 1), nullptr,
                                            16));
  return v;
}

/// An object as the API answers it, as JSON text. The value is spliced in
/// as stored when it is a JSON document (every value written over HTTP is
/// one), without a parse and a dump per answer; a value an embedding
/// application wrote that is not JSON is answered as a string. Text that is
/// not UTF-8 (only an embedding application can store it) is answered with
/// U+FFFD in its place rather than failing the answer. VALUE_IS_JSON: the
/// caller knows (a put's own answer), so the value is not checked again.
std::string object_text(const object_found& f, bool value_is_json = false) {
  auto& o = f.obj;
  json j{{"kind", o.kind},
         {"id", o.id},
         {"indexes", o.indexes},
         {"created_at", o.created_at / 1000},
         {"expires_at", o.expires_at / 1000},
         {"version", version_text(f.ver)}};
  if (o.consumed())
    j["consumed_at"] = o.consumed_at / 1000;
  auto out = j.dump(-1, ' ', false, json::error_handler_t::replace);
  out.pop_back(); // the closing brace: the value goes last
  out += ",\"value\":";
  if (value_is_json || json::accept(o.value))
    out += o.value;
  else
    out += json(o.value).dump(-1, ' ', false, json::error_handler_t::replace);
  out += '}';
  return out;
}

response object_response(const object_found& f) {
  return json_response(bhttp::status::ok, object_text(f));
}

/// The answer to a put over HTTP: its value is the JSON this route wrote.
response put_response(const object_found& f) {
  return json_response(bhttp::status::ok, object_text(f, true));
}

/// The {kind} and {id} of a route, or nullopt after answering 400.
bool object_address(const route_params& params, bool with_id,
                    responder& done, std::string& kind, std::string& id) {
  kind = params.at("kind");
  if (!state::valid_object_kind(kind)) {
    done(bad_request("a kind is 1 to 64 of A-Z a-z 0-9 _ - ."));
    return false;
  }
  if (!with_id)
    return true;
  id = params.at("id");
  if (!state::valid_object_id(id)) {
    done(bad_request("an id is 1 to 512 bytes without control characters"));
    return false;
  }
  return true;
}

/// The ?index=FIELD&value=VALUE of a lookup, or nullopt after a 400.
std::optional<object_lookup> lookup_of(const request& req, std::string kind,
                                       responder& done) {
  auto field = query_param(req.target(), "index");
  auto value = query_param(req.target(), "value");
  if (!field || !value || !state::valid_object_kind(*field)
      || !state::valid_object_id(*value)) {
    done(bad_request("a lookup needs ?index=FIELD&value=VALUE (a field "
                     "name, and 1 to 512 bytes)"));
    return std::nullopt;
  }
  return object_lookup{std::move(kind), std::move(*field), std::move(*value)};
}

} // namespace

const objects_actor& api::objects() const {
  thread_local size_t next = 0;
  return ctx_.objects[next++ % ctx_.objects.size()];
}

response api::object_error(caf::actor_system& sys,
                           const caf::error& err) const {
  if (err.category() == error_category) {
    auto text = context_text(err);
    switch (static_cast<ec>(err.code())) {
      case ec::invalid_argument:
        return bad_request(text.empty() ? "invalid object request" : text);
      case ec::not_found:
        return error_response(bhttp::status::not_found, "not_found",
                              text.empty() ? "no such object (or it expired)"
                                           : text);
      case ec::already_consumed: {
        json body{{"error", "already_consumed"},
                  {"error_description", "the object was consumed already"}};
        if (!text.empty())
          body["consumed_at"] = std::stoll(text) / 1000;
        return json_response(bhttp::status::conflict, body.dump());
      }
      case ec::version_mismatch:
        return error_response(bhttp::status::precondition_failed,
                              "version_mismatch",
                              "the object is not at the expected version");
      case ec::conflict:
        return error_response(bhttp::status::conflict, "conflict",
                              text.empty() ? "the object exists" : text);
      case ec::expired: {
        json body{{"error", "expired"},
                  {"error_description", "the request expired"}};
        if (!text.empty())
          body["expired_at"] = std::stoll(text) / 1000;
        return json_response(bhttp::status::gone, body.dump());
      }
      case ec::client_mismatch:
        return error_response(bhttp::status::forbidden, "client_mismatch",
                              "the request was pushed by another client");
      default:
        break;
    }
  }
  // An owner that did not answer in time (a frozen or cut-off primary):
  // nothing may have been decided, or the answer was lost. Either way the
  // caller retries, with the same idempotency key for a consume.
  if (err == caf::sec::request_timeout)
    return error_response(bhttp::status::service_unavailable, "unavailable",
                          "the owners of the object's partition did not "
                          "answer within state.peer_timeout; retry (a "
                          "consume with the same idempotency_key)");
  return state_error(sys, err, "the object");
}

template <class T, class Render, class... Ts>
void api::ask_objects(responder done, Render render, Ts... xs) {
  ctx_.bridge->submit([this, done, render, xs...](bridge_self self) {
    self->request(objects(), local_request, xs...)
      .then([done, render](T& answer) { done(render(answer)); },
            [done, self, this](caf::error& err) {
              done(object_error(self->system(), err));
            });
  });
}

void api::put_object(const request& req, const route_params& params,
                     responder& done) {
  object_put put;
  if (!object_address(params, true, done, put.kind, put.id))
    return;
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"value", "ttl", "indexes", "if_absent",
                                     "if_version"},
                             error))
    return done(std::move(error));
  auto value = body->find("value");
  if (value == body->end())
    return done(bad_request("\"value\" is required (any JSON value)"));
  put.value = value->dump();
  auto& limits = ctx_.settings.objects;
  if (put.value.size() > limits.max_value_bytes)
    return done(bad_request("\"value\" is larger than "
                            + std::to_string(limits.max_value_bytes)
                            + " bytes (objects.max_value_bytes)"));
  if (auto ttl = body->find("ttl"); ttl != body->end()) {
    auto max = limits.max_ttl.count();
    if (!ttl->is_number_integer() || ttl->get<int64_t>() < 1
        || ttl->get<int64_t>() > max)
      return done(bad_request("\"ttl\" must be whole seconds from 1 to "
                              + std::to_string(max) + " (objects.max_ttl)"));
    put.ttl_ms = ttl->get<int64_t>() * 1000;
  }
  if (auto ix = body->find("indexes"); ix != body->end()) {
    if (!ix->is_object() || ix->size() > state::max_object_indexes)
      return done(bad_request("\"indexes\" must be an object of at most 8 "
                              "strings"));
    for (auto& [field, v] : ix->items()) {
      if (!state::valid_object_kind(field) || !v.is_string()
          || !state::valid_object_id(v.get_ref<const std::string&>()))
        return done(bad_request("an index field is 1 to 64 of A-Z a-z 0-9 _ "
                                "- ., its value a string of 1 to 512 bytes"));
      put.indexes[field] = v.get<std::string>();
    }
  }
  auto absent = body->find("if_absent");
  auto version = body->find("if_version");
  if (absent != body->end() && version != body->end())
    return done(bad_request("\"if_absent\" and \"if_version\" exclude each "
                            "other"));
  if (absent != body->end()) {
    if (!absent->is_boolean())
      return done(bad_request("\"if_absent\" must be true or false"));
    if (absent->get<bool>())
      put.condition = object_condition::absent;
  }
  if (version != body->end()) {
    auto v = version->is_string()
               ? parse_version(version->get<std::string>())
               : std::nullopt;
    if (!v)
      return done(bad_request("\"if_version\" must be a version this API "
                              "answered with"));
    put.condition = object_condition::version_is;
    put.expected = *v;
  }
  ask_objects<object_found>(done, put_response, atom::put_v,
                            std::move(put));
}

void api::get_object(const request&, const route_params& params,
                     responder& done) {
  std::string kind, id;
  if (!object_address(params, true, done, kind, id))
    return;
  ask_objects<object_found>(done, object_response, atom::get_v, kind, id);
}

void api::delete_object(const request&, const route_params& params,
                        responder& done) {
  std::string kind, id;
  if (!object_address(params, true, done, kind, id))
    return;
  ask_objects<atom::ok>(
    done,
    [](atom::ok) {
      return json_response(bhttp::status::ok, R"({"destroyed":1})");
    },
    atom::remove_v, kind, id);
}

void api::consume_object(const request& req, const route_params& params,
                         responder& done) {
  std::string kind, id;
  if (!object_address(params, true, done, kind, id))
    return;
  // The idempotency key: a body member, or the Idempotency-Key header.
  std::string key;
  if (auto h = req.find("Idempotency-Key"); h != req.end())
    key = std::string{h->value()};
  if (!req.body().empty()) {
    response error;
    auto body = parse_object(req, error);
    if (!body || !only_members(*body, {"idempotency_key"}, error))
      return done(std::move(error));
    if (auto k = body->find("idempotency_key"); k != body->end()) {
      if (!k->is_string())
        return done(bad_request("\"idempotency_key\" must be a string"));
      key = k->get<std::string>();
    }
  }
  if (!key.empty() && !state::valid_object_id(key))
    return done(bad_request("an idempotency key is 1 to 512 bytes without "
                            "control characters"));
  ask_objects<object_found>(done, object_response, atom::consume_v, kind,
                            id, key);
}

void api::find_objects(const request& req, const route_params& params,
                       responder& done) {
  std::string kind, id;
  if (!object_address(params, false, done, kind, id))
    return;
  auto q = lookup_of(req, std::move(kind), done);
  if (!q)
    return;
  ask_objects<std::vector<object_found>>(
    done,
    [](const std::vector<object_found>& found) {
      std::string out = "{\"objects\":[";
      for (auto& f : found) {
        if (out.back() == '}')
          out += ',';
        out += object_text(f);
      }
      out += "]}";
      return json_response(bhttp::status::ok, std::move(out));
    },
    atom::list_v, std::move(*q));
}

void api::delete_objects(const request& req, const route_params& params,
                         responder& done) {
  std::string kind, id;
  if (!object_address(params, false, done, kind, id))
    return;
  auto q = lookup_of(req, std::move(kind), done);
  if (!q)
    return;
  ask_objects<uint64_t>(
    done,
    [](uint64_t n) {
      return json_response(bhttp::status::ok, json{{"destroyed", n}}.dump());
    },
    atom::remove_v, std::move(*q));
}

void api::post_replay(const request& req, const route_params&,
                      responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"scope", "iss", "jti", "exp"}, error))
    return done(std::move(error));
  replay_check c;
  auto text = [&](const char* name, std::string& out) {
    auto v = body->find(name);
    if (v == body->end() || !v->is_string())
      return false;
    out = v->get<std::string>();
    return true;
  };
  if (!text("scope", c.scope) || !text("iss", c.iss) || !text("jti", c.jti))
    return done(bad_request("\"scope\", \"iss\" and \"jti\" are required "
                            "strings"));
  auto exp = body->find("exp");
  if (exp == body->end() || !exp->is_number_integer())
    return done(bad_request("\"exp\" is required: Unix seconds"));
  c.exp = exp->get<int64_t>();
  ask_objects<replay_verdict>(
    done,
    [](const replay_verdict& v) {
      if (!v.replayed)
        return json_response(
          bhttp::status::ok,
          json{{"replayed", false}, {"first_seen", v.first_seen / 1000}}
            .dump());
      return json_response(bhttp::status::conflict,
                           json{{"error", "replayed"},
                                {"error_description",
                                 "the value was used before"},
                                {"first_seen", v.first_seen / 1000}}
                             .dump());
    },
    atom::check_v, std::move(c));
}

void api::post_par(const request& req, const route_params&,
                   responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"client_id", "params", "ttl"}, error))
    return done(std::move(error));
  par_push push;
  auto client = string_member(*body, "client_id", state::max_object_id_bytes);
  auto params = body->find("params");
  if (!client)
    return done(bad_request("\"client_id\" is a required string of 1 to 512 "
                            "bytes"));
  if (params == body->end() || !params->is_object())
    return done(bad_request("\"params\" is a required object: the "
                            "authorization request's parameters"));
  push.client_id = std::move(*client);
  push.params = params->dump();
  if (auto ttl = body->find("ttl"); ttl != body->end()) {
    if (!ttl->is_number_integer() || ttl->get<int64_t>() < 1
        || ttl->get<int64_t>() > 600)
      return done(bad_request("\"ttl\" is 1 to 600 seconds"));
    push.ttl_ms = ttl->get<int64_t>() * 1000;
  }
  auto expires_in = push.ttl_ms > 0 ? push.ttl_ms / 1000
                                    : state::par_default_ttl_ms / 1000;
  ask_objects<par_pushed>(
    done,
    [expires_in](const par_pushed& p) {
      // The shape of RFC 9126's answer, for the OP to pass on.
      return json_response(bhttp::status::created,
                           json{{"request_uri", p.request_uri},
                                {"expires_in", expires_in},
                                {"expires_at", p.expires_at / 1000}}
                             .dump());
    },
    atom::push_v, std::move(push));
}

void api::post_par_redeem(const request& req, const route_params&,
                          responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"client_id", "request_uri"}, error))
    return done(std::move(error));
  auto client = string_member(*body, "client_id", state::max_object_id_bytes);
  auto uri = string_member(*body, "request_uri", state::max_object_id_bytes);
  if (!client || !uri)
    return done(bad_request("\"client_id\" and \"request_uri\" are "
                            "required strings of 1 to 512 bytes"));
  ask_objects<par_request>(
    done,
    [](const par_request& r) {
      return json_response(
        bhttp::status::ok,
        json{{"client_id", r.client_id},
             {"params", json::parse(r.params, nullptr, false)},
             {"expires_at", r.expires_at / 1000}}
          .dump());
    },
    atom::redeem_v, par_redeem{std::move(*client), std::move(*uri)});
}

} // namespace keymesh::http
