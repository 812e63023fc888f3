// The route handlers of http::api: keys, tokens, verification, health and
// metrics.
#include <algorithm>

#include <caf/event_based_actor.hpp>
#include <caf/sec.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/json_number.hpp"
#include "http/api.hpp"
#include "http/openapi.hpp"
#include "http/api_errors.hpp"
#include "jose/jws.hpp"
#include "jose/jwt.hpp"
#include "http/json_input.hpp"

namespace keymesh::http {

namespace {

using nlohmann::json;

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    auto comma = if_none_match.find(',');
    auto item = if_none_match.substr(0, comma);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (item.substr(0, 2) == "W/")
      item.remove_prefix(2);
    if (item == "*" || item == etag)
      return true;
    if (comma == std::string_view::npos)
      break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

/// base64url characters and the dots between the parts of a compact JWS.
bool is_token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
         || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

/// The token of a body that is exactly {"token":"<compact JWS>"} (with
/// optional whitespace), found without a JSON parser; nullopt for anything
/// else, which then takes the general path.
std::optional<std::string_view> simple_token_body(std::string_view body) {
  auto skip_ws = [&] {
    while (!body.empty()
           && (body.front() == ' ' || body.front() == '\n'
               || body.front() == '\r' || body.front() == '\t'))
      body.remove_prefix(1);
  };
  auto expect = [&](std::string_view text) {
    skip_ws();
    if (body.substr(0, text.size()) != text)
      return false;
    body.remove_prefix(text.size());
    return true;
  };
  if (!expect("{") || !expect("\"token\"") || !expect(":") || !expect("\""))
    return std::nullopt;
  size_t n = 0;
  while (n < body.size() && is_token_char(body[n]))
    ++n;
  auto token = body.substr(0, n);
  body.remove_prefix(n);
  if (!expect("\"") || !expect("}"))
    return std::nullopt;
  skip_ws();
  if (!body.empty())
    return std::nullopt;
  return token;
}

} // namespace

response not_ready() {
  return error_response(bhttp::status::service_unavailable, "not_ready",
                        "the node is starting: no keys yet");
}

namespace {

/// A Host header fit to build a URL from: a name or address and an
/// optional port, nothing else (the rules of configured addresses).
bool clean_host(std::string_view host) {
  return host.size() <= 255
         && (config::parse_host_port(host)
             || config::parse_host_port(std::string{host} + ":80"));
}

} // namespace

void api::get_discovery(const request& req, const route_params&,
                        responder& done) {
  auto issuer = config::issuer_of(ctx_.settings);
  // The keys are under the issuer when it is a URL (the service's public
  // address), else under the address this request came to.
  std::string base;
  if (issuer.rfind("https://", 0) == 0 || issuer.rfind("http://", 0) == 0) {
    base = issuer;
    while (!base.empty() && base.back() == '/')
      base.pop_back();
  } else {
    auto host = req[bhttp::field::host];
    if (!clean_host(host))
      return done(bad_request("send a Host header naming this node "
                              "(host or host:port), or set keys.issuer to "
                              "the service's URL"));
    base = "http://" + std::string{host};
  }
  json out{{"issuer", issuer},
           {"jwks_uri", base + "/.well-known/jwks.json"},
           {"id_token_signing_alg_values_supported",
            json::array({ctx_.settings.keys.algorithm})},
           {"subject_types_supported", json::array({"public"})}};
  response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set(bhttp::field::cache_control, "public, max-age=300");
  res.body() = out.dump();
  done(std::move(res));
}

void api::get_jwks(const request& req, const route_params&, responder& done) {
  auto snap = ctx_.keys->load();
  if (!snap)
    return done(not_ready());
  auto local = query_param(req.target(), "local");
  bool local_only = local && (*local == "true" || *local == "1");
  auto& etag = local_only ? snap->etag_local : snap->etag;
  // A cache may keep the document until the published set next changes, and
  // never longer than five minutes.
  auto max_age = std::chrono::seconds{300};
  if (snap->next_change != time_point::max())
    max_age = std::clamp(std::chrono::duration_cast<std::chrono::seconds>(
                           snap->next_change - ctx_.clock()),
                         std::chrono::seconds{0}, max_age);
  auto cache_control = "public, max-age=" + std::to_string(max_age.count());
  if (auto inm = req.find(bhttp::field::if_none_match);
      inm != req.end() && etag_matches(inm->value(), etag)) {
    response res{bhttp::status::not_modified, 11};
    res.set(bhttp::field::etag, etag);
    res.set(bhttp::field::cache_control, cache_control);
    return done(std::move(res));
  }
  response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set(bhttp::field::etag, etag);
  res.set(bhttp::field::cache_control, cache_control);
  res.body() = local_only ? snap->jwks_local : snap->jwks;
  done(std::move(res));
}

void api::post_tokens(const request& req, const route_params&,
                      responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body)
    return done(std::move(error));
  auto tr = parse_token_request(*body, error);
  if (!tr)
    return done(std::move(error));
  ctx_.bridge->submit([keystore = ctx_.keystore, tr = std::move(*tr),
                       stats = metrics_,
                       done](bridge_self self) mutable {
    self->request(keystore, local_request, atom::sign_v, std::move(tr))
      .then(
        [=](signed_token& t) {
          stats->count_signed(true);
          json out{{"token", t.token},
                   {"kid", t.kid},
                   {"expires_at", t.expires_at}};
          done(json_response(bhttp::status::created, out.dump()));
        },
        [=](caf::error& err) {
          stats->count_signed(false);
          spdlog::error("http: signing failed: {}",
                        self->system().render(err));
          done(error_response(bhttp::status::internal_server_error,
                              "signing failed"));
        });
  });
}

void api::post_verify(const request& req, const route_params&,
                      responder& done) {
  std::string token;
  if (!req.body().empty() && is_json_content_type(req)) {
    if (auto fast = simple_token_body(req.body()))
      token = std::string{*fast};
  }
  if (!token.empty()) {
    // the usual case, taken above without a JSON parser
  } else if (!req.body().empty()) {
    response error;
    auto body = parse_object(req, error);
    if (!body)
      return done(std::move(error));
    if (!only_members(*body, {"token"}, error))
      return done(std::move(error));
    auto t = body->find("token");
    if (t == body->end() || !t->is_string())
      return done(bad_request("\"token\" must be a string"));
    token = t->get<std::string>();
  } else if (auto auth = req.find(bhttp::field::authorization);
             auth != req.end() && !bearer_token(auth->value()).empty()) {
    token = std::string{bearer_token(auth->value())};
  } else {
    return done(bad_request("no token: send {\"token\": \"...\"} as "
                            "application/json or Authorization: Bearer"));
  }
  auto snap = ctx_.keys->load();
  if (!snap)
    return done(not_ready());
  auto now = ctx_.clock();
  auto verified = verified_->verify(token, snap, snap->keys, checks_, now);
  const auto& result = *verified;
  // Tokens of this cluster's own keys carry its issuer even when
  // keys.issuer is not set (then checks_ names none, for the tokens of
  // static peers, which are other issuers).
  if (result.ok() && checks_.issuer.empty()
      && snap->cluster_keys.find(result.kid) != nullptr) {
    auto iss = result.claims.find("iss");
    if (iss == result.claims.end() || !iss->is_string()
        || iss->get_ref<const std::string&>() != cluster_checks_.issuer) {
      metrics_->count_verified(jose::verify_reason::wrong_issuer);
      return done(json_response(bhttp::status::ok,
                                R"({"active":false,"reason":"wrong_issuer"})"));
    }
  }
  metrics_->count_verified(result.reason);
  if (!result.ok()) {
    return done(json_response(bhttp::status::ok,
                              R"({"active":false,"reason":")"
                                + std::string{jose::to_string(result.reason)}
                                + "\"}"));
  }
  // Revoked sessions, subjects and token ids: a local lookup, on every call
  // (cached or not), and only when something was revoked at all.
  if (ctx_.deny && !ctx_.deny->empty()) {
    const auto& claims = result.claims;
    auto text = [&](const char* name) {
      auto i = claims.find(name);
      return i != claims.end() && i->is_string() ? i->get<std::string>()
                                                 : std::string{};
    };
    int64_t iat = 0;
    if (auto i = claims.find("iat"); i != claims.end())
      iat = clamped_seconds(*i); // a verified number, of any size
    if (ctx_.deny->denied(text("sid"), text("jti"), text("sub"), iat,
                          to_unix_ms(now)))
      return done(json_response(bhttp::status::ok,
                                R"({"active":false,"reason":"revoked"})"));
  }
  // The claims are the token's own payload text: verify_jwt parsed it as a
  // strict JSON object, so it is passed on without re-serialising.
  std::string body;
  body.reserve(result.claims_json.size() + result.kid.size() + 48);
  body += R"({"active":true,"claims":)";
  body += result.claims_json;
  body += R"(,"kid":)";
  body += json(result.kid).dump(-1, ' ', false, json::error_handler_t::replace);
  body += '}';
  done(json_response(bhttp::status::ok, std::move(body)));
}

void api::get_live(const request&, const route_params&, responder& done) {
  done(json_response(bhttp::status::ok, R"({"status":"alive"})"));
}

readiness api::readiness_now() const {
  readiness r;
  r.keys = ctx_.keys->load() != nullptr;
  r.http = ctx_.status->http_listening.load();
  r.stopping = ctx_.status->stopping.load();
  r.actors = ctx_.status->actors_alive.load();
  r.cluster = ctx_.status->cluster_ready.load();
  r.state = !ctx_.status->state_synced || ctx_.status->state_synced->load();
  // Migrated, the revocation log loaded, and reachable at the last check.
  auto& store = ctx_.status->store;
  r.database = !store || (store->loaded.load() && store->healthy.load());
  r.secrets = ctx_.status->secrets_ready.load();
  return r;
}

void api::get_ready(const request& req, const route_params&,
                    responder& done) {
  auto r = readiness_now();
  bool ready = r.ready();
  auto state = ready        ? "ready"
               : r.stopping ? "stopping"
               : !r.actors  ? "failed"
                            : "starting";
  json checks = json::object();
  for (auto& [name, ok] : r.checks())
    checks[name] = ok;
  json out{{"status", state},
           {"instance_id", ctx_.status->instance_id},
           {"checks", std::move(checks)}};
  auto& store = ctx_.status->store;
  if (store && !r.database) {
    // The driver's text can name the server, its port and the user: only
    // for the admin key (and the log).
    auto why = store->error();
    auto admin = ctx_.admin
                 && ctx_.admin->check(req[bhttp::field::authorization])
                      == admin_auth::outcome::accepted;
    out["database_error"] = why.empty() ? "starting"
                            : admin     ? why
                                        : "database unavailable";
  }
  done(json_response(ready ? bhttp::status::ok
                           : bhttp::status::service_unavailable,
                     out.dump()));
}

void api::get_cluster(const request&, const route_params&, responder& done) {
  if (!ctx_.membership) {
    json out{{"enabled", false},
             {"self", {{"instance_id", ctx_.status->instance_id}}},
             {"members", json::array()}};
    return done(json_response(bhttp::status::ok, out.dump()));
  }
  auto timeout = ctx_.settings.http.request_timeout;
  ctx_.bridge->submit([membership = ctx_.membership, timeout,
                       done](bridge_self self) mutable {
    self->request(membership, timeout, atom::get_v, atom::members_v)
      .then(
        [=](cluster_status& st) {
          auto member_json = [](const member_info& m) {
            json j{{"instance_id", m.instance_id},
                   {"address", m.address},
                   {"state", m.state},
                   {"protocol_version", m.protocol_version}};
            if (m.since != 0)
              j["since"] = m.since;
            if (m.rtt_us != 0) {
              j["rtt_ms"] = static_cast<double>(m.rtt_us) / 1000.0;
              j["clock_offset_ms"] = m.clock_offset_ms;
            }
            return j;
          };
          json members = json::array();
          for (auto& m : st.members)
            members.push_back(member_json(m));
          json out{{"enabled", true},
                   {"cluster_name", st.cluster_name},
                   {"self", member_json(st.self)},
                   {"members", std::move(members)}};
          done(json_response(bhttp::status::ok, out.dump()));
        },
        [=](caf::error& err) {
          if (err == caf::sec::request_timeout)
            return done(error_response(bhttp::status::gateway_timeout,
                                       "the membership actor did not answer "
                                       "in time"));
          done(error_response(bhttp::status::internal_server_error,
                              "cannot read the cluster view"));
        });
  });
}

void api::post_rotate(const request&, const route_params&, responder& done) {
  auto timeout = ctx_.settings.http.request_timeout;
  ctx_.bridge->submit([keystore = ctx_.keystore, timeout,
                       done](bridge_self self) mutable {
    self->request(keystore, timeout, atom::rotate_v)
      .then(
        [=](std::string& signing, std::string& next) {
          json out{{"signing_kid", signing}, {"next_kid", next}};
          done(json_response(bhttp::status::ok, out.dump()));
        },
        [=](caf::error& err) {
          if (err == caf::sec::request_timeout)
            return done(error_response(bhttp::status::gateway_timeout,
                                       "the keystore did not answer in time"));
          done(error_response(bhttp::status::internal_server_error,
                              "rotation failed"));
        });
  });
}

void api::get_openapi(const request&, const route_params&, responder& done) {
  // The document is part of the binary: it changes only with an upgrade.
  response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set(bhttp::field::cache_control, "public, max-age=300");
  res.body() = std::string{openapi_json()};
  done(std::move(res));
}

void api::get_metrics(const request&, const route_params&, responder& done) {
  auto snap = ctx_.keys->load();
  response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, "text/plain; version=0.0.4");
  res.set(bhttp::field::cache_control, "no-store");
  res.body() = metrics_->render(snap.get(), ctx_.status->started_at,
                                ctx_.clock());
  res.body() += render_verify_cache_metrics(*verified_);
  res.body() += render_readiness_metrics(readiness_now());
  res.body() += render_revocation_metrics(*ctx_.status->revocations);
  if (ctx_.status->members)
    res.body() += render_member_metrics(*ctx_.status->members);
  if (ctx_.status->store)
    res.body() += render_store_metrics(*ctx_.status->store);
  if (ctx_.status && ctx_.status->transport)
    res.body() += render_transport_metrics(*ctx_.status->transport);
  if (ctx_.status && ctx_.status->logout)
    res.body() += render_logout_metrics(*ctx_.status->logout);
  if (ctx_.state_stats)
    res.body() += render_state_metrics(*ctx_.state_stats,
                                       ctx_.deny ? ctx_.deny->size() : 0);
  done(std::move(res));
}

} // namespace keymesh::http
