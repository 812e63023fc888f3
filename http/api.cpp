#include "http/api.hpp"

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

api::api(api_context ctx) : ctx_(std::move(ctx)) {
  using bhttp::verb;
  add(verb::get, "/api/pkeys", false, &api::get_jwks);
  add(verb::get, "/.well-known/jwks.json", false, &api::get_jwks);
  add(verb::post, "/api/tokens", true, &api::post_tokens);
  add(verb::post, "/api/verify", false, &api::post_verify);
  add(verb::get, "/healthz/live", false, &api::get_live);
  add(verb::get, "/healthz/ready", false, &api::get_ready);
  add(verb::get, "/metrics", false, &api::get_metrics);
  std::vector<std::string> labels;
  for (auto& r : routes_)
    labels.push_back(r.label);
  labels.emplace_back("unmatched");
  metrics_ = std::make_shared<metrics>(std::move(labels));
}

void api::add(bhttp::verb method, std::string pattern, bool admin,
              handler_fn handler) {
  auto label = std::string{bhttp::to_string(method)} + " " + pattern;
  std::vector<std::string> segments;
  for (auto seg : split_path(pattern))
    segments.emplace_back(seg);
  routes_.push_back(
    route{method, std::move(segments), std::move(label), admin, handler});
}

void api::observe_unrouted(unsigned status, std::chrono::nanoseconds latency) {
  metrics_->observe_request(routes_.size(), status, latency);
}

void api::handle(request req, responder done) {
  auto started = std::chrono::steady_clock::now();
  auto segments = split_path(path_of(req.target()));
  const route* chosen = nullptr;
  size_t index = routes_.size();
  route_params params;
  std::string allow;
  bool bad_escape = false;
  for (size_t i = 0; i < routes_.size(); ++i) {
    auto& r = routes_[i];
    if (r.segments.size() != segments.size())
      continue;
    route_params candidate;
    bool match = true;
    for (size_t k = 0; k < segments.size() && match; ++k) {
      auto& pat = r.segments[k];
      if (pat.size() > 2 && pat.front() == '{' && pat.back() == '}') {
        auto value = percent_decode(segments[k], false);
        if (!value || value->empty()) {
          bad_escape = bad_escape || !value;
          match = false;
        } else {
          candidate.emplace(pat.substr(1, pat.size() - 2), std::move(*value));
        }
      } else {
        match = pat == segments[k];
      }
    }
    if (!match)
      continue;
    // HEAD is answered like GET (the server sends no body).
    auto method = req.method() == bhttp::verb::head ? bhttp::verb::get
                                                     : req.method();
    if (r.method == method && chosen == nullptr) {
      chosen = &r;
      index = i;
      params = std::move(candidate);
    } else if (r.method != method) {
      if (!allow.empty())
        allow += ", ";
      allow += std::string{bhttp::to_string(r.method)};
      if (r.method == bhttp::verb::get)
        allow += ", HEAD";
    }
  }
  // Every response is counted under its route, whichever thread answers.
  responder respond = [stats = metrics_, index, started,
                       done = std::move(done)](response res) {
    stats->observe_request(index, res.result_int(),
                           std::chrono::steady_clock::now() - started);
    done(std::move(res));
  };
  if (chosen == nullptr) {
    if (!allow.empty()) {
      auto res = error_response(bhttp::status::method_not_allowed,
                                "method " + std::string{req.method_string()}
                                  + " is not allowed here (allowed: " + allow
                                  + ")");
      res.set(bhttp::field::allow, allow);
      return respond(std::move(res));
    }
    return respond(error_response(bhttp::status::not_found,
                                  bad_escape ? "malformed percent-escape in "
                                               "the path"
                                             : "no such resource"));
  }
  if (chosen->admin) {
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
      return respond(std::move(res));
    }
    if (verdict == admin_auth::outcome::rejected)
      return respond(error_response(bhttp::status::forbidden,
                                    "the admin key is not valid"));
  }
  try {
    (this->*(chosen->handler))(req, params, respond);
  } catch (const std::exception& e) {
    spdlog::error("http: {} failed: {}", chosen->label, e.what());
    respond(error_response(bhttp::status::internal_server_error,
                           "internal error"));
  }
}

} // namespace keymesh::http
