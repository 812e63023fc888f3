#include "state/secret_ring.hpp"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include "common/aead.hpp"
#include "common/base64url.hpp"
#include "common/digest.hpp"
#include "common/random.hpp"

namespace keymesh::state {

using nlohmann::json;

namespace {

/// A kid not yet in RING (random, never 0).
uint32_t fresh_kid(const secret_ring& ring) {
  for (;;) {
    auto bytes = random_bytes(4);
    uint32_t kid = 0;
    std::memcpy(&kid, bytes.data(), 4);
    if (kid == 0)
      continue;
    auto taken = std::any_of(ring.keys.begin(), ring.keys.end(),
                             [&](const ring_key& k) { return k.kid == kid; });
    if (!taken)
      return kid;
  }
}

ring_key new_key(const secret_ring& ring, int64_t now_ms, int64_t active_from) {
  ring_key k;
  k.kid = fresh_kid(ring);
  k.secret = random_bytes(ring_key_bytes);
  k.created_at = now_ms;
  k.active_from = active_from;
  return k;
}

bool retired(const ring_key& k, int64_t now_ms) {
  return k.retire_after != 0 && now_ms > k.retire_after;
}

void put_u32(std::string& out, uint32_t x) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((x >> shift) & 0xff));
}

void put_u64(std::string& out, uint64_t x) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((x >> shift) & 0xff));
}

uint64_t get_be(std::string_view in, size_t bytes) {
  uint64_t x = 0;
  for (size_t i = 0; i < bytes; ++i)
    x = (x << 8) | static_cast<unsigned char>(in[i]);
  return x;
}

/// The bytes a nonce's MAC covers.
std::string nonce_input(const secret_ring& ring, uint32_t kid,
                        uint64_t window) {
  std::string in = "keymesh-dpop-nonce:" + ring.purpose + ":";
  put_u32(in, kid);
  put_u64(in, window);
  return in;
}

constexpr size_t nonce_mac_bytes = 16;
constexpr size_t nonce_bytes = 4 + 8 + nonce_mac_bytes;
constexpr std::string_view cookie_prefix = "v1.";

std::string cookie_aad(const secret_ring& ring, std::string_view aad) {
  std::string out = "keymesh-cookie:" + ring.purpose + ":";
  out += aad;
  return out;
}

} // namespace

secret_ring new_ring(std::string purpose, int64_t now_ms) {
  secret_ring ring;
  ring.purpose = std::move(purpose);
  ring.generation = 1;
  ring.keys.push_back(new_key(ring, now_ms, now_ms));
  return ring;
}

bool rotation_due(const secret_ring& ring, int64_t now_ms,
                  const ring_policy& policy) {
  if (ring.keys.empty())
    return true;
  return now_ms - ring.keys.front().created_at >= policy.rotate_every_ms;
}

secret_ring rotated(secret_ring ring, int64_t now_ms,
                    const ring_policy& policy) {
  auto active_from = now_ms + policy.install_lead_ms;
  // The keys signing until the new one takes over stay for the overlap.
  for (auto& k : ring.keys)
    if (k.retire_after == 0)
      k.retire_after = active_from + policy.overlap_ms;
  ring.keys.erase(
      std::remove_if(ring.keys.begin(), ring.keys.end(),
                     [&](const ring_key& k) { return retired(k, now_ms); }),
      ring.keys.end());
  // The key that signs now stays whatever happens (many rotations within
  // one install lead would otherwise push it out): the oldest others go.
  auto signer = signing_key(ring, now_ms);
  auto signer_kid = signer ? signer->kid : 0;
  ring.keys.insert(ring.keys.begin(), new_key(ring, now_ms, active_from));
  for (auto i = ring.keys.size(); ring.keys.size() > max_ring_keys && i > 1;) {
    --i;
    if (ring.keys[i].kid != signer_kid)
      ring.keys.erase(ring.keys.begin() + static_cast<std::ptrdiff_t>(i));
  }
  ++ring.generation;
  return ring;
}

const ring_key* signing_key(const secret_ring& ring, int64_t now_ms) {
  for (auto& k : ring.keys)
    if (k.active_from <= now_ms && !retired(k, now_ms))
      return &k;
  return nullptr;
}

const ring_key* find_key(const secret_ring& ring, uint32_t kid,
                         int64_t now_ms) {
  for (auto& k : ring.keys)
    if (k.kid == kid && !retired(k, now_ms))
      return &k;
  return nullptr;
}

std::string encode_ring(const secret_ring& ring) {
  json keys = json::array();
  for (auto& k : ring.keys)
    keys.push_back({{"kid", k.kid},
                    {"secret", base64url_encode(k.secret)},
                    {"created_at", k.created_at},
                    {"active_from", k.active_from},
                    {"retire_after", k.retire_after}});
  return json{{"purpose", ring.purpose},
              {"generation", ring.generation},
              {"keys", std::move(keys)}}
      .dump();
}

std::optional<secret_ring> decode_ring(std::string_view stored) {
  auto j = json::parse(stored, nullptr, false);
  if (!j.is_object())
    return std::nullopt;
  auto purpose = j.find("purpose");
  auto generation = j.find("generation");
  auto keys = j.find("keys");
  if (purpose == j.end() || !purpose->is_string() || generation == j.end() ||
      !generation->is_number_unsigned() || keys == j.end() ||
      !keys->is_array() || keys->size() > max_ring_keys)
    return std::nullopt;
  secret_ring ring;
  ring.purpose = purpose->get<std::string>();
  ring.generation = generation->get<uint64_t>();
  for (auto& k : *keys) {
    if (!k.is_object())
      return std::nullopt;
    auto kid = k.find("kid");
    auto secret = k.find("secret");
    auto times = {"created_at", "active_from", "retire_after"};
    if (kid == k.end() || !kid->is_number_unsigned() ||
        kid->get<uint64_t>() > UINT32_MAX || secret == k.end() ||
        !secret->is_string())
      return std::nullopt;
    for (auto name : times) {
      auto t = k.find(name);
      if (t == k.end() || !t->is_number_integer())
        return std::nullopt;
    }
    ring_key key;
    key.kid = kid->get<uint32_t>();
    auto raw = base64url_decode(secret->get<std::string>());
    if (!raw || raw->size() != ring_key_bytes)
      return std::nullopt;
    key.secret = std::move(*raw);
    key.created_at = k.at("created_at").get<int64_t>();
    key.active_from = k.at("active_from").get<int64_t>();
    key.retire_after = k.at("retire_after").get<int64_t>();
    ring.keys.push_back(std::move(key));
  }
  return ring;
}

// -- DPoP server nonces
// --------------------------------------------------------

std::string make_dpop_nonce(const secret_ring& ring, int64_t now_ms,
                            int64_t window_ms) {
  auto key = signing_key(ring, now_ms);
  if (!key || window_ms <= 0 || now_ms < 0)
    return {};
  auto window = static_cast<uint64_t>(now_ms / window_ms);
  std::string raw;
  put_u32(raw, key->kid);
  put_u64(raw, window);
  auto mac = hmac_sha256(key->secret, nonce_input(ring, key->kid, window));
  raw.append(reinterpret_cast<const char*>(mac.data()), nonce_mac_bytes);
  return base64url_encode(raw);
}

bool dpop_nonce_valid(const secret_ring& ring, std::string_view nonce,
                      int64_t now_ms, int64_t window_ms) {
  // 28 bytes: 38 base64url characters, no more.
  if (nonce.size() != 38 || window_ms <= 0 || now_ms < 0)
    return false;
  auto raw = base64url_decode(nonce);
  if (!raw || raw->size() != nonce_bytes || base64url_encode(*raw) != nonce)
    return false; // one spelling per nonce
  auto kid = static_cast<uint32_t>(get_be(*raw, 4));
  auto window = get_be(std::string_view{*raw}.substr(4), 8);
  auto current = static_cast<uint64_t>(now_ms / window_ms);
  if (window != current && window + 1 != current)
    return false;
  auto key = find_key(ring, kid, now_ms);
  if (!key)
    return false;
  auto mac = hmac_sha256(key->secret, nonce_input(ring, kid, window));
  return CRYPTO_memcmp(mac.data(), raw->data() + 12, nonce_mac_bytes) == 0;
}

// -- sealed cookies
// ------------------------------------------------------------

std::string seal_cookie(const secret_ring& ring, std::string_view plaintext,
                        std::string_view aad, int64_t now_ms) {
  auto key = signing_key(ring, now_ms);
  if (!key)
    return {};
  std::string raw;
  put_u32(raw, key->kid);
  raw += aead_seal(key->secret, plaintext, cookie_aad(ring, aad));
  return std::string{cookie_prefix} + base64url_encode(raw);
}

std::optional<uint32_t> sealed_cookie_kid(std::string_view sealed) {
  if (sealed.substr(0, cookie_prefix.size()) != cookie_prefix)
    return std::nullopt;
  auto raw = base64url_decode(sealed.substr(cookie_prefix.size()));
  if (!raw || raw->size() < 4 + aead_overhead)
    return std::nullopt;
  return static_cast<uint32_t>(get_be(*raw, 4));
}

std::optional<std::string> open_cookie(const secret_ring& ring,
                                       std::string_view sealed,
                                       std::string_view aad, int64_t now_ms) {
  auto kid = sealed_cookie_kid(sealed);
  if (!kid)
    return std::nullopt;
  auto key = find_key(ring, *kid, now_ms);
  if (!key)
    return std::nullopt;
  auto raw = base64url_decode(sealed.substr(cookie_prefix.size()));
  return aead_open(key->secret, std::string_view{*raw}.substr(4),
                   cookie_aad(ring, aad));
}

} // namespace keymesh::state
