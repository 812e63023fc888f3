// The routes of the cluster's secret rings (services/secrets.hpp): DPoP
// server nonces issued and checked, cookie payloads sealed and opened —
// both in-process on the HTTP thread, no message — and, for the admin,
// the rings themselves (for an OP that computes nonces or seals cookies
// itself) and a forced rotation.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/error.hpp"
#include "actors/local_request.hpp"
#include "common/base64url.hpp"
#include "http/api.hpp"
#include "http/json_input.hpp"

namespace keymesh::http {

namespace {

using nlohmann::json;

/// Largest cookie payload sealed here (a browser keeps 4 KiB per cookie).
constexpr size_t max_cookie_plaintext = 8 * 1024;
/// Longest associated data (a cookie's name, say).
constexpr size_t max_cookie_aad = 256;
/// Longest sealed cookie opened: base64url of kid, overhead and payload.
constexpr size_t max_sealed_cookie = 3 + (4 + 32 + max_cookie_plaintext) * 4
                                           / 3 + 4;

response no_ring(const char* purpose) {
  return error_response(bhttp::status::service_unavailable, "unavailable",
                        std::string{"this node holds no "} + purpose
                          + " ring yet");
}

/// The string member NAME of BODY, empty allowed (absent: FALLBACK; not a
/// string or longer than LIMIT: nullopt). string_member when it must not be
/// empty.
std::optional<std::string> text_member(const json& body, const char* name,
                                       size_t limit,
                                       std::optional<std::string> fallback) {
  auto v = body.find(name);
  if (v == body.end())
    return fallback;
  if (!v->is_string() || v->get_ref<const std::string&>().size() > limit)
    return std::nullopt;
  return v->get<std::string>();
}

json ring_json(const state::secret_ring& ring, int64_t now) {
  auto signer = state::signing_key(ring, now);
  json keys = json::array();
  for (auto& k : ring.keys) {
    if (k.retire_after != 0 && now > k.retire_after)
      continue;
    json key{{"kid", k.kid},
             {"secret", base64url_encode(k.secret)},
             {"created_at", k.created_at / 1000},
             {"active_from", k.active_from / 1000},
             {"signing", signer == &k}};
    if (k.retire_after != 0)
      key["retire_after"] = k.retire_after / 1000;
    keys.push_back(std::move(key));
  }
  return json{{"purpose", ring.purpose},
              {"generation", ring.generation},
              {"keys", std::move(keys)}};
}

} // namespace

void api::get_dpop_nonce(const request&, const route_params&,
                         responder& done) {
  auto nonce = ctx_.dpop ? ctx_.dpop->issue() : std::string{};
  if (nonce.empty())
    return done(no_ring("dpop"));
  auto res = json_response(bhttp::status::ok, json{{"nonce", nonce}}.dump());
  res.set(bhttp::field::cache_control, "no-store");
  done(std::move(res));
}

void api::post_dpop_nonce_check(const request& req, const route_params&,
                                responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"nonce"}, error))
    return done(std::move(error));
  auto nonce = string_member(*body, "nonce", 256);
  if (!nonce)
    return done(bad_request("\"nonce\" is a required string (at most 256 "
                            "bytes)"));
  auto fresh = ctx_.dpop ? ctx_.dpop->issue() : std::string{};
  if (fresh.empty())
    return done(no_ring("dpop"));
  // With the nonce to send back (DPoP-Nonce) whichever the verdict.
  auto res = json_response(
    bhttp::status::ok,
    json{{"valid", ctx_.dpop->check(*nonce)}, {"nonce", fresh}}.dump());
  res.set(bhttp::field::cache_control, "no-store");
  done(std::move(res));
}

void api::post_cookie_seal(const request& req, const route_params&,
                           responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"plaintext", "aad"}, error))
    return done(std::move(error));
  auto plaintext = text_member(*body, "plaintext", max_cookie_plaintext,
                               std::nullopt);
  auto aad = text_member(*body, "aad", max_cookie_aad, std::string{});
  if (!plaintext || !aad)
    return done(bad_request("\"plaintext\" is a required string of at most "
                            "8192 bytes, \"aad\" an optional one of at most "
                            "256"));
  auto sealed = ctx_.cookies ? ctx_.cookies->seal(*plaintext, *aad)
                             : std::nullopt;
  if (!sealed)
    return done(no_ring("cookies"));
  done(json_response(bhttp::status::ok, json{{"sealed", *sealed}}.dump()));
}

void api::post_cookie_open(const request& req, const route_params&,
                           responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"sealed", "aad"}, error))
    return done(std::move(error));
  auto sealed = text_member(*body, "sealed", max_sealed_cookie, std::nullopt);
  auto aad = text_member(*body, "aad", max_cookie_aad, std::string{});
  if (!sealed || !aad)
    return done(bad_request("\"sealed\" is a required string, \"aad\" an "
                            "optional one of at most 256 bytes"));
  if (!ctx_.cookies)
    return done(no_ring("cookies"));
  auto answer = [](std::optional<std::string> plain) {
    if (!plain)
      return error_response(bhttp::status::bad_request, "invalid_cookie",
                            "not sealed by this cluster for this aad, "
                            "changed, or sealed with a retired key");
    // Text as it was sealed; bytes that are not UTF-8 (only an embedding
    // application can seal them) with U+FFFD in their place: never a
    // throw, which in the re-read path below would end the bridge actor.
    return json_response(bhttp::status::ok,
                         json{{"plaintext", *plain}}.dump(
                           -1, ' ', false, json::error_handler_t::replace));
  };
  auto plain = ctx_.cookies->open(*sealed, *aad);
  if (plain || !state::sealed_cookie_kid(*sealed)
      || ctx_.cookies->knows_key_of(*sealed) || !ctx_.secrets)
    return done(answer(std::move(plain)));
  // A key this node does not know yet (a ring that has not reached it):
  // re-read the ring once, then try again.
  ctx_.bridge->submit([this, done, sealed = *sealed, aad = *aad,
                       answer](bridge_self self) {
    self
      ->request(ctx_.secrets, local_request, atom::update_v,
                std::string{cookies_purpose})
      .then(
        [this, done, sealed, aad, answer](uint64_t) {
          done(answer(ctx_.cookies->open(sealed, aad)));
        },
        [done, answer](caf::error&) { done(answer(std::nullopt)); });
  });
}

void api::get_secret_ring(const request&, const route_params& params,
                          responder& done) {
  auto& purpose = params.at("purpose");
  if (purpose != dpop_purpose && purpose != cookies_purpose)
    return done(error_response(bhttp::status::not_found, "not_found",
                               "a ring is \"dpop\" or \"cookies\""));
  auto ring = ctx_.rings ? ctx_.rings->get(purpose) : nullptr;
  if (!ring)
    return done(no_ring(purpose.c_str()));
  auto res = json_response(bhttp::status::ok,
                           ring_json(*ring, to_unix_ms(ctx_.clock()))
                             .dump());
  res.set(bhttp::field::cache_control, "no-store");
  done(std::move(res));
}

void api::post_secret_rotate(const request&, const route_params& params,
                             responder& done) {
  auto purpose = params.at("purpose");
  if (purpose != dpop_purpose && purpose != cookies_purpose)
    return done(error_response(bhttp::status::not_found, "not_found",
                               "a ring is \"dpop\" or \"cookies\""));
  if (!ctx_.secrets)
    return done(no_ring(purpose.c_str()));
  ctx_.bridge->submit([this, done, purpose](bridge_self self) {
    self->request(ctx_.secrets, local_request, atom::rotate_v, purpose)
      .then(
        [done](uint64_t generation) {
          done(json_response(bhttp::status::ok,
                             json{{"generation", generation}}.dump()));
        },
        [done, self](caf::error& err) {
          done(error_response(bhttp::status::service_unavailable,
                              "unavailable", self->system().render(err)));
        });
  });
}

} // namespace keymesh::http
