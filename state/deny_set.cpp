#include "state/deny_set.hpp"


#include <algorithm>
#include <mutex>

namespace keymesh::state {

namespace {

constexpr size_t purge_every = 1024;

} // namespace

const char* to_string(deny_kind kind) {
  switch (kind) {
    case deny_kind::sid:
      return "sid";
    case deny_kind::jti:
      return "jti";
    case deny_kind::sub:
      return "sub";
  }
  return "sid";
}

std::optional<deny_kind> parse_deny_kind(std::string_view text) {
  for (auto k : {deny_kind::sid, deny_kind::jti, deny_kind::sub})
    if (text == to_string(k))
      return k;
  return std::nullopt;
}

std::string deny_set::make_key(deny_kind kind, std::string_view value) {
  std::string key;
  key.reserve(value.size() + 1);
  key += static_cast<char>('0' + static_cast<int>(kind));
  key += value;
  return key;
}

bool deny_set::add(deny_kind kind, std::string_view value,
                   int64_t revoked_at_ms, int64_t until_ms, bool logged) {
  std::unique_lock<std::shared_mutex> guard{mutex_};
  if (++adds_ % purge_every == 0)
    purge_locked(revoked_at_ms);
  auto [i, added] = entries_.try_emplace(make_key(kind, value));
  auto& e = i->second;
  if (!added && e.revoked_at >= revoked_at_ms && e.until >= until_ms) {
    e.logged = e.logged || logged;
    return false;
  }
  // A wider entry is logged only when its own revocation is.
  e.logged = logged;
  e.revoked_at = std::max(e.revoked_at, revoked_at_ms);
  e.until = std::max(e.until, until_ms);
  size_.store(entries_.size(), std::memory_order_release);
  return true;
}

void deny_set::mark_logged(deny_kind kind, std::string_view value) {
  std::unique_lock<std::shared_mutex> guard{mutex_};
  auto i = entries_.find(make_key(kind, value));
  if (i != entries_.end())
    i->second.logged = true;
}

bool deny_set::logged(deny_kind kind, std::string_view value,
                      int64_t now_ms) const {
  if (empty())
    return false;
  std::shared_lock<std::shared_mutex> guard{mutex_};
  auto e = find(kind, value, now_ms);
  return e != nullptr && e->logged;
}

const deny_set::entry* deny_set::find(deny_kind kind, std::string_view value,
                                      int64_t now_ms) const {
  if (value.empty())
    return nullptr;
  auto i = entries_.find(make_key(kind, value));
  if (i == entries_.end() || i->second.until <= now_ms)
    return nullptr;
  return &i->second;
}

bool deny_set::denied(std::string_view sid, std::string_view jti,
                      std::string_view sub, int64_t iat_seconds,
                      int64_t now_ms) const {
  if (empty())
    return false;
  std::shared_lock<std::shared_mutex> guard{mutex_};
  if (find(deny_kind::sid, sid, now_ms) || find(deny_kind::jti, jti, now_ms))
    return true;
  if (auto e = find(deny_kind::sub, sub, now_ms))
    return iat_seconds == 0 || iat_seconds * 1000 <= e->revoked_at;
  return false;
}

int64_t deny_set::subject_revoked_at(std::string_view sub,
                                     int64_t now_ms) const {
  if (empty())
    return 0;
  std::shared_lock<std::shared_mutex> guard{mutex_};
  auto e = find(deny_kind::sub, sub, now_ms);
  return e ? e->revoked_at : 0;
}

bool deny_set::session_denied(std::string_view sid, int64_t now_ms) const {
  if (empty())
    return false;
  std::shared_lock<std::shared_mutex> guard{mutex_};
  return find(deny_kind::sid, sid, now_ms) != nullptr;
}

size_t deny_set::purge(int64_t now_ms) {
  std::unique_lock<std::shared_mutex> guard{mutex_};
  return purge_locked(now_ms);
}

size_t deny_set::purge_locked(int64_t now_ms) {
  size_t n = 0;
  for (auto i = entries_.begin(); i != entries_.end();)
    if (i->second.until <= now_ms) {
      i = entries_.erase(i);
      ++n;
    } else {
      ++i;
    }
  size_.store(entries_.size(), std::memory_order_release);
  return n;
}



std::vector<deny_set::held> deny_set::snapshot(int64_t now_ms) const {
  std::shared_lock<std::shared_mutex> guard{mutex_};
  std::vector<held> out;
  out.reserve(entries_.size());
  for (auto& [key, e] : entries_) {
    if (e.until <= now_ms || key.empty())
      continue;
    held h;
    h.kind = static_cast<deny_kind>(key[0] - '0');
    h.value = key.substr(1);
    h.revoked_at = e.revoked_at;
    h.until = e.until;
    out.push_back(std::move(h));
  }
  return out;
}

} // namespace keymesh::state
