#include "state/session.hpp"

#include "common/json_number.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/base64url.hpp"
#include "state/placement.hpp"
#include "common/random.hpp"
#include "common/text.hpp"

namespace keymesh::state {

using nlohmann::json;

int64_t session::record_expiry() const {
  if (idle_timeout <= 0)
    return expires_at;
  return std::min(expires_at, last_seen + idle_timeout * 1000);
}

std::map<std::string, std::string> session::participants() const {
  auto out = clients;
  for (auto& [id, rp_sid] : out)
    if (rp_sid.empty())
      rp_sid = sid;
  if (!client_id.empty())
    out.emplace(client_id, sid);
  return out;
}

std::string clients_problem(const std::map<std::string, std::string>& clients) {
  if (clients.size() > max_session_clients)
    return "a session has at most " + std::to_string(max_session_clients)
           + " clients";
  for (auto& [id, rp_sid] : clients) {
    if (id.empty() || id.size() > max_subject_bytes
        || rp_sid.size() > max_subject_bytes)
      return "client ids are 1 to 256 bytes, their sids at most 256";
    if (!keymesh::is_utf8(id) || !keymesh::is_utf8(rp_sid))
      return "client ids and their sids must be UTF-8 text";
  }
  return {};
}

std::string new_session_id() {
  return keymesh::base64url_encode(keymesh::random_bytes(16));
}

bool valid_session_id(std::string_view text) {
  if (text.size() != 22)
    return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

std::string encode_session(const session& s) {
  json j{{"s", s.sub},         {"c", s.client_id},    {"ca", s.created_at},
         {"ea", s.expires_at}, {"ls", s.last_seen},   {"it", s.idle_timeout},
         {"a", s.attributes}};
  if (!s.clients.empty())
    j["p"] = s.clients;
  return j.dump();
}

std::optional<session> decode_session(std::string_view stored) {
  auto j = json::parse(stored, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return std::nullopt;
  try {
    session s;
    s.sub = j.at("s").get<std::string>();
    s.client_id = j.at("c").get<std::string>();
    // Times in Unix ms up to 2^50 (year 37648), an idle timeout of at most
    // a century: a record from elsewhere cannot make the arithmetic on them
    // overflow.
    auto time = [&](const char* name) {
      auto x = exact_int64(j.at(name), 0, int64_t{1} << 50);
      if (!x)
        throw std::out_of_range{name};
      return *x;
    };
    s.created_at = time("ca");
    s.expires_at = time("ea");
    s.last_seen = time("ls");
    auto idle = exact_int64(j.at("it"), 0, int64_t{100} * 365 * 86400);
    if (!idle)
      return std::nullopt;
    s.idle_timeout = *idle;
    s.attributes = j.at("a").get<std::map<std::string, std::string>>();
    // Records written before sessions had participants have no "p".
    if (auto p = j.find("p"); p != j.end())
      s.clients = p->get<std::map<std::string, std::string>>();
    return s;
  } catch (const json::exception&) {
    return std::nullopt;
  } catch (const std::out_of_range&) {
    return std::nullopt;
  }
}

std::string session_json(const session& s) {
  json j{{"sid", s.sid},
         {"sub", s.sub},
         {"created_at", s.created_at / 1000},
         {"expires_at", s.expires_at / 1000},
         {"last_seen", s.last_seen / 1000},
         {"idle_timeout", s.idle_timeout},
         {"attributes", s.attributes}};
  if (!s.client_id.empty())
    j["client_id"] = s.client_id;
  j["clients"] = s.clients;
  if (s.idle_timeout > 0)
    j["idle_expires_at"] = (s.last_seen / 1000) + s.idle_timeout;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

size_t attribute_bytes(const std::map<std::string, std::string>& attrs) {
  size_t n = 0;
  for (auto& [k, v] : attrs)
    n += k.size() + v.size();
  return n;
}

std::string subject_index_key(std::string_view sub, std::string_view sid) {
  std::string key{sub};
  key += partition_key_separator;
  key += sid;
  return key;
}

std::string_view sid_of_index_key(std::string_view key) {
  return key_after_partition(key);
}

} // namespace keymesh::state
