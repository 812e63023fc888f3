#include "jose/jwt.hpp"

#include "common/base64url.hpp"
#include "jose/jws.hpp"

#include <array>
#include <cmath>
#include <optional>

namespace keymesh::jose {

namespace {

using json = nlohmann::json;

verify_result fail(verify_result& result, verify_reason reason,
                   std::string detail) {
  result.reason = reason;
  result.detail = std::move(detail);
  return std::move(result);
}

/// Whole seconds for details; saturates instead of overflowing.
std::string seconds_text(double seconds) {
  constexpr double limit = 1e15;
  auto clamped = std::fmin(std::fmax(std::floor(seconds), -limit), limit);
  return std::to_string(static_cast<long long>(clamped)) + " s";
}

/// A NumericDate claim: nullopt when absent; throws nothing, reports a
/// non-numeric value through `bad`.
std::optional<double> numeric_claim(const json& claims, const char* name,
                                    bool& bad) {
  auto it = claims.find(name);
  if (it == claims.end())
    return std::nullopt;
  if (!it->is_number() || !std::isfinite(it->get<double>())) {
    bad = true;
    return std::nullopt;
  }
  return it->get<double>();
}

bool audience_matches(const json& aud, const std::string& audience) {
  if (aud.is_string())
    return aud.get_ref<const std::string&>() == audience;
  if (aud.is_array())
    for (const auto& entry : aud)
      if (entry.is_string() && entry.get_ref<const std::string&>() == audience)
        return true;
  return false;
}

/// What verification needs from a JOSE header.
struct header_facts {
  bool crit = false;
  /// A "b64" member other than true (RFC 7797 unencoded payloads).
  bool unencoded = false;
  bool alg_is_string = false;
  std::optional<algorithm> alg;
  bool kid_is_string = false;
  std::string kid;
};

/// Decodes and reads a header segment; nullopt with DETAIL when it is not
/// strict base64url or not a JSON object.
std::optional<header_facts> read_header(std::string_view segment,
                                        std::string& detail) {
  auto text = base64url_decode(segment);
  if (!text) {
    detail = "a token part is not strict base64url";
    return std::nullopt;
  }
  auto header = parse_json_object(*text);
  if (!header) {
    detail = "header is not a JSON object";
    return std::nullopt;
  }
  header_facts facts;
  facts.crit = header->contains("crit");
  if (auto b64 = header->find("b64"); b64 != header->end())
    facts.unencoded = *b64 != true;
  auto alg = header->find("alg");
  if (alg != header->end() && alg->is_string()) {
    facts.alg_is_string = true;
    facts.alg = parse_algorithm(alg->get_ref<const std::string&>());
  }
  auto kid = header->find("kid");
  if (kid != header->end() && kid->is_string()) {
    facts.kid_is_string = true;
    facts.kid = kid->get<std::string>();
  }
  return facts;
}

/// Every token of one key carries the same header segment, so each thread
/// remembers the facts of the last few it read. This caches parsing only:
/// the signature and the claims are checked for every token.
const header_facts* cached_header(std::string_view segment,
                                  std::string& detail) {
  struct entry {
    std::string segment;
    header_facts facts;
  };
  constexpr size_t capacity = 16;
  constexpr size_t max_segment = 512;
  thread_local std::array<entry, capacity> cache;
  thread_local size_t next = 0;
  for (auto& e : cache)
    if (!e.segment.empty() && e.segment == segment)
      return &e.facts;
  auto facts = read_header(segment, detail);
  if (!facts)
    return nullptr;
  auto& slot = cache[next];
  next = (next + 1) % capacity;
  slot.facts = std::move(*facts);
  // Odd, long headers are read every time rather than cached.
  slot.segment = segment.size() <= max_segment ? std::string{segment}
                                               : std::string{};
  return &slot.facts;
}

} // namespace

std::string_view to_string(verify_reason reason) {
  switch (reason) {
  case verify_reason::ok:
    return "ok";
  case verify_reason::expired:
    return "expired";
  case verify_reason::not_yet_valid:
    return "not_yet_valid";
  case verify_reason::bad_signature:
    return "bad_signature";
  case verify_reason::unknown_kid:
    return "unknown_kid";
  case verify_reason::malformed:
    return "malformed";
  case verify_reason::wrong_issuer:
    return "wrong_issuer";
  case verify_reason::wrong_audience:
    return "wrong_audience";
  case verify_reason::alg_not_allowed:
    return "alg_not_allowed";
  }
  return "unknown";
}

verify_result verify_jwt(std::string_view token, const key_set& keys,
                         const verify_options& opts,
                         std::chrono::system_clock::time_point now) {
  constexpr auto malformed = verify_reason::malformed;
  verify_result result;
  if (token.size() > opts.max_token_bytes)
    return fail(result, malformed,
                "token is " + std::to_string(token.size()) +
                    " bytes, the limit is " +
                    std::to_string(opts.max_token_bytes));
  // -- structure ---------------------------------------------------------
  auto parts = split_compact(token);
  if (!parts)
    return fail(result, malformed, "token does not have three parts");
  std::string header_detail;
  const header_facts* header = cached_header(parts->header, header_detail);
  if (!header)
    return fail(result, malformed, std::move(header_detail));
  auto payload_text = base64url_decode(parts->payload);
  auto signature = base64url_decode(parts->signature);
  if (!payload_text || !signature)
    return fail(result, malformed, "a token part is not strict base64url");
  auto payload = parse_json_object(*payload_text);
  if (!payload)
    return fail(result, malformed, "payload is not a JSON object");
  // -- header --------------------------------------------------------------
  if (header->crit)
    return fail(result, malformed, "header has crit, which is not supported");
  if (header->unencoded)
    return fail(result, malformed,
                "header has b64 (unencoded payloads are not supported)");
  if (!header->alg_is_string)
    return fail(result, malformed, "header alg is missing or not a string");
  if (!header->alg)
    return fail(result, verify_reason::alg_not_allowed,
                "header alg is not ES256, EdDSA or RS256");
  auto alg = header->alg;
  if (!header->kid_is_string)
    return fail(result, malformed, "header kid is missing or not a string");
  result.kid = header->kid;
  const key* k = keys.find(result.kid);
  if (k == nullptr)
    return fail(result, verify_reason::unknown_kid, "no key has this kid");
  if (k->alg() != *alg)
    return fail(result, verify_reason::alg_not_allowed,
                "header alg " + std::string{to_string(*alg)} +
                    " but the key is " + std::string{to_string(k->alg())});
  // -- signature -----------------------------------------------------------
  if (!k->verify(parts->signing_input, *signature))
    return fail(result, verify_reason::bad_signature,
                "signature does not verify");
  result.claims = std::move(*payload);
  result.claims_json = std::move(*payload_text);
  // -- claims --------------------------------------------------------------
  const auto& claims = result.claims;
  const double now_s =
      std::chrono::duration<double>(now.time_since_epoch()).count();
  const double leeway = static_cast<double>(opts.leeway.count());
  bool bad = false;
  auto exp = numeric_claim(claims, "exp", bad);
  if (bad || !exp)
    return fail(result, malformed, "exp is missing or not a number");
  if (now_s > *exp + leeway)
    return fail(result, verify_reason::expired,
                "exp is " + seconds_text(now_s - *exp) + " in the past");
  auto nbf = numeric_claim(claims, "nbf", bad);
  if (bad)
    return fail(result, malformed, "nbf is not a number");
  if (nbf && now_s + leeway < *nbf)
    return fail(result, verify_reason::not_yet_valid,
                "nbf is " + seconds_text(*nbf - now_s) + " in the future");
  auto iat = numeric_claim(claims, "iat", bad);
  if (bad)
    return fail(result, malformed, "iat is not a number");
  if (iat && *iat > now_s + leeway)
    return fail(result, verify_reason::not_yet_valid,
                "iat is " + seconds_text(*iat - now_s) + " in the future");
  if (!opts.issuer.empty()) {
    auto iss = claims.find("iss");
    if (iss == claims.end() || !iss->is_string() ||
        iss->get_ref<const std::string&>() != opts.issuer)
      return fail(result, verify_reason::wrong_issuer,
                  "iss is not the expected issuer");
  }
  if (!opts.audience.empty()) {
    auto aud = claims.find("aud");
    if (aud == claims.end())
      return fail(result, verify_reason::wrong_audience, "aud is missing");
    if (!audience_matches(*aud, opts.audience))
      return fail(result, verify_reason::wrong_audience,
                  "aud does not contain the expected audience");
  }
  result.reason = verify_reason::ok;
  return result;
}

} // namespace keymesh::jose
