// A cache of verified tokens: verifying a token that verified before costs a
// lookup and a re-check of its time claims instead of a signature check
// (an ES256 verification is about 90 us of CPU; resource servers ask about
// the same token again and again).
#pragma once

#include "jose/jwt.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace keymesh::jose {

/// Thread-safe. Only tokens that verified completely are kept, so an entry
/// can only be made by a holder of a valid token. Every entry belongs to
/// one key set: a call with another key set (any change of the published
/// keys, such as a retired or departed key) empties the cache first. The
/// issuer and audience options must stay the same for the cache's lifetime;
/// exp, nbf and iat are checked on every hit, and a token outside its time
/// window goes through verify_jwt for the precise reason.
class verify_cache {
public:
  /// CAPACITY: most tokens kept (0: no caching, every call verifies).
  explicit verify_cache(size_t capacity);

  verify_cache(const verify_cache&) = delete;
  verify_cache& operator=(const verify_cache&) = delete;

  /// The result of verify_jwt(TOKEN, KEYS, OPTS, NOW), from the cache when
  /// TOKEN verified before under the same KEYS_OWNER (the object that owns
  /// KEYS and is replaced whenever they change).
  std::shared_ptr<const verify_result>
  verify(std::string_view token, const std::shared_ptr<const void>& keys_owner,
         const key_set& keys, const verify_options& opts,
         std::chrono::system_clock::time_point now);

  /// Tokens kept now.
  size_t size() const;
  uint64_t hits() const {
    return hits_.load(std::memory_order_relaxed);
  }

private:
  struct entry {
    std::string token;
    std::shared_ptr<const verify_result> result;
    /// The window, in seconds since the epoch and leeway included, in which
    /// the result stands: not_before <= now <= not_after.
    double not_before = 0;
    double not_after = 0;
  };

  struct shard {
    mutable std::mutex mutex;
    /// By the token's hash; the token itself is compared on a hit.
    std::unordered_map<uint64_t, entry> entries;
    /// Insertion order, for eviction once the shard is full.
    std::vector<uint64_t> ring;
    size_t next = 0;
    /// The key set the entries verified under.
    std::weak_ptr<const void> keys;
  };

  static constexpr size_t shard_count = 16;

  void insert(shard& s, uint64_t hash, std::string_view token,
              std::shared_ptr<const verify_result> result, double not_before,
              double not_after);

  size_t capacity_;
  size_t per_shard_;
  std::array<shard, shard_count> shards_;
  std::atomic<uint64_t> hits_{0};
};

} // namespace keymesh::jose
