// Internal to jose/: what key.cpp (generation, signing, verification) and
// jwk.cpp (JWK import/export, RFC 7638 thumbprints) share, above all the
// key's impl struct. Not for other modules; they use jose/key.hpp.
#pragma once

#include "jose/key.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace keymesh::jose {

namespace detail {

template<class T, void (*Free)(T*)>
struct openssl_deleter {
  void operator()(T* ptr) const {
    Free(ptr);
  }
};

using pkey_ptr =
    std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY, EVP_PKEY_free>>;
using pkey_ctx_ptr =
    std::unique_ptr<EVP_PKEY_CTX,
                    openssl_deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;

constexpr size_t p256_size = 32;
// Contexts a key keeps for reuse; enough for one per busy thread.
constexpr size_t ctx_pool_capacity = 64;

/// Throws jose_error with `what`, plus OpenSSL's reason text when it has one
/// (library text such as "point is not on curve", never key bytes).
[[noreturn]] void fail(const std::string& what);

/// SHA-256, fetched once.
const EVP_MD* sha256();

bool sha256(std::string_view data, unsigned char (&out)[32]);

/// The RFC 7638 required members of the public key, in lexicographic order
/// (jwk.cpp).
nlohmann::json export_public_jwk(algorithm alg, const EVP_PKEY* pkey);

/// The RFC 7638 SHA-256 thumbprint, base64url, of an export_public_jwk
/// result (jwk.cpp).
std::string jwk_thumbprint(const nlohmann::json& public_jwk);

/// Whether POINT (32 bytes) encodes an Ed25519 point of small order.
bool ed25519_small_order(std::string_view point);

/// A free list of prepared EVP_PKEY_CTX objects. Preparing one costs a
/// provider fetch and a key reference; a pooled one is ready for
/// EVP_PKEY_sign/EVP_PKEY_verify, which may be called on it again and again.
/// An EVP_PKEY_CTX must not be used by two threads at once, hence the pool.
class ctx_pool {
public:
  ctx_pool() {
    free_.reserve(ctx_pool_capacity);
  }

  ~ctx_pool() {
    for (auto* ctx : free_)
      EVP_PKEY_CTX_free(ctx);
  }

  ctx_pool(const ctx_pool&) = delete;
  ctx_pool& operator=(const ctx_pool&) = delete;

  pkey_ctx_ptr take() {
    std::lock_guard<std::mutex> guard{mtx_};
    if (free_.empty())
      return nullptr;
    pkey_ctx_ptr ctx{free_.back()};
    free_.pop_back();
    return ctx;
  }

  void give_back(pkey_ctx_ptr ctx) noexcept {
    std::lock_guard<std::mutex> guard{mtx_};
    if (free_.size() < ctx_pool_capacity)
      free_.push_back(ctx.release()); // never reallocates: reserved above
  }

private:
  std::mutex mtx_;
  std::vector<EVP_PKEY_CTX*> free_;
};

} // namespace detail

struct key::impl {
  impl(algorithm alg, detail::pkey_ptr pkey, bool has_private);

  /// An EVP_PKEY_CTX prepared for ES256 or RS256 (key.cpp).
  class lease;

  detail::pkey_ctx_ptr make_ctx(bool for_signing) const;

  algorithm alg;
  bool has_private;
  detail::pkey_ptr pkey;
  int signature_size;
  nlohmann::json public_jwk;
  std::string thumbprint;
  mutable detail::ctx_pool sign_pool;
  mutable detail::ctx_pool verify_pool;
};

} // namespace keymesh::jose
