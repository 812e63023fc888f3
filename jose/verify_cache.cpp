#include "jose/verify_cache.hpp"

#include <algorithm>
#include <functional>
#include <limits>

namespace keymesh::jose {

namespace {

double seconds_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

/// A numeric claim of a verified token (verify_jwt checked the type), or
/// FALLBACK when it is absent.
double claim_or(const nlohmann::json& claims, const char* name,
                double fallback) {
  auto it = claims.find(name);
  return it != claims.end() && it->is_number() ? it->get<double>() : fallback;
}

} // namespace

verify_cache::verify_cache(size_t capacity)
  : capacity_(capacity),
    per_shard_(capacity == 0 ? 0
                             : std::max<size_t>(1, (capacity + shard_count - 1)
                                                     / shard_count)) {
}

size_t verify_cache::size() const {
  size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> guard{s.mutex};
    n += s.entries.size();
  }
  return n;
}

std::shared_ptr<const verify_result>
verify_cache::verify(std::string_view token,
                     const std::shared_ptr<const void>& keys_owner,
                     const key_set& keys, const verify_options& opts,
                     std::chrono::system_clock::time_point now) {
  if (capacity_ == 0 || token.size() > opts.max_token_bytes)
    return std::make_shared<const verify_result>(
      verify_jwt(token, keys, opts, now));
  auto hash = std::hash<std::string_view>{}(token);
  auto& s = shards_[hash % shard_count];
  auto now_s = seconds_since_epoch(now);
  {
    std::lock_guard<std::mutex> guard{s.mutex};
    auto current = s.keys.lock();
    if (current != keys_owner) {
      // The published keys changed: nothing verified before counts.
      s.entries.clear();
      s.ring.clear();
      s.next = 0;
      s.keys = keys_owner;
    } else if (auto i = s.entries.find(hash);
               i != s.entries.end() && i->second.token == token
               && now_s >= i->second.not_before
               && now_s <= i->second.not_after) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      return i->second.result;
    }
  }
  auto result
    = std::make_shared<const verify_result>(verify_jwt(token, keys, opts, now));
  if (!result->ok())
    return result;
  constexpr auto unbounded = std::numeric_limits<double>::infinity();
  auto leeway = static_cast<double>(opts.leeway.count());
  auto not_after = claim_or(result->claims, "exp", -unbounded) + leeway;
  auto not_before = std::max(claim_or(result->claims, "nbf", -unbounded),
                             claim_or(result->claims, "iat", -unbounded))
                    - leeway;
  std::lock_guard<std::mutex> guard{s.mutex};
  // Another thread may have switched the shard to a newer key set since.
  if (s.keys.lock() == keys_owner)
    insert(s, hash, token, result, not_before, not_after);
  return result;
}

void verify_cache::insert(shard& s, uint64_t hash, std::string_view token,
                          std::shared_ptr<const verify_result> result,
                          double not_before, double not_after) {
  auto [i, added] = s.entries.try_emplace(hash);
  // A hash collision replaces the older token: the cache only ever answers
  // for the exact token it holds.
  i->second.token.assign(token.data(), token.size());
  i->second.result = std::move(result);
  i->second.not_before = not_before;
  i->second.not_after = not_after;
  if (!added)
    return;
  if (s.ring.size() < per_shard_) {
    s.ring.push_back(hash);
    return;
  }
  // Full: the oldest entry goes (first in, first out).
  auto& slot = s.ring[s.next];
  s.entries.erase(slot);
  slot = hash;
  s.next = (s.next + 1) % per_shard_;
}

} // namespace keymesh::jose
