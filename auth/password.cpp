#include "auth/password.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <optional>
#include <stdexcept>
#include <vector>

#include "common/base64url.hpp"
#include "common/random.hpp"

namespace keymesh::auth {

namespace {

constexpr size_t salt_bytes = 16;
constexpr size_t hash_bytes = 32;
/// Stored hashes naming a larger cost than this are refused rather than run
/// (a tampered row must not make a login allocate gigabytes).
constexpr unsigned max_log2_n = 20;
constexpr unsigned max_r = 32;
constexpr unsigned max_p = 16;

std::optional<std::string> derive(std::string_view password,
                                  std::string_view salt,
                                  const scrypt_cost& cost) {
  auto* kdf = EVP_KDF_fetch(nullptr, "SCRYPT", nullptr);
  if (kdf == nullptr)
    return std::nullopt;
  auto* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr)
    return std::nullopt;
  uint64_t n = uint64_t{1} << cost.log2_n;
  uint32_t r = cost.r;
  uint32_t p = cost.p;
  uint64_t maxmem = cost.memory_bytes() + (uint64_t{1} << 20);
  OSSL_PARAM params[] = {
    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                      const_cast<char*>(password.data()),
                                      password.size()),
    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                      const_cast<char*>(salt.data()),
                                      salt.size()),
    OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
    OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
    OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
    OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
    OSSL_PARAM_construct_end(),
  };
  std::string out(hash_bytes, '\0');
  auto ok = EVP_KDF_derive(ctx, reinterpret_cast<unsigned char*>(out.data()),
                           out.size(), params)
            == 1;
  EVP_KDF_CTX_free(ctx);
  if (!ok)
    return std::nullopt;
  return out;
}

std::string encode(const scrypt_cost& cost, std::string_view salt,
                   std::string_view hash) {
  return "$scrypt$ln=" + std::to_string(cost.log2_n)
         + ",r=" + std::to_string(cost.r) + ",p=" + std::to_string(cost.p)
         + "$" + keymesh::base64url_encode(salt) + "$"
         + keymesh::base64url_encode(hash);
}

struct parsed_hash {
  scrypt_cost cost;
  std::string salt;
  std::string hash;
};

std::optional<unsigned> number(std::string_view text, std::string_view name) {
  if (text.substr(0, name.size()) != name || text.size() == name.size()
      || text.size() > name.size() + 3)
    return std::nullopt;
  unsigned n = 0;
  for (char c : text.substr(name.size())) {
    if (c < '0' || c > '9')
      return std::nullopt;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  return n;
}

std::optional<parsed_hash> parse(std::string_view encoded) {
  // "$scrypt$ln=15,r=8,p=1$salt$hash"
  constexpr std::string_view prefix = "$scrypt$";
  if (encoded.substr(0, prefix.size()) != prefix)
    return std::nullopt;
  encoded.remove_prefix(prefix.size());
  std::vector<std::string_view> parts;
  for (size_t at; (at = encoded.find('$')) != std::string_view::npos;) {
    parts.push_back(encoded.substr(0, at));
    encoded.remove_prefix(at + 1);
  }
  parts.push_back(encoded);
  if (parts.size() != 3)
    return std::nullopt;
  auto params = parts[0];
  auto c1 = params.find(',');
  auto c2 = c1 == std::string_view::npos ? c1 : params.find(',', c1 + 1);
  if (c2 == std::string_view::npos)
    return std::nullopt;
  auto ln = number(params.substr(0, c1), "ln=");
  auto r = number(params.substr(c1 + 1, c2 - c1 - 1), "r=");
  auto p = number(params.substr(c2 + 1), "p=");
  if (!ln || !r || !p || *ln < 1 || *ln > max_log2_n || *r < 1 || *r > max_r
      || *p < 1 || *p > max_p)
    return std::nullopt;
  auto salt = keymesh::base64url_decode(parts[1]);
  auto hash = keymesh::base64url_decode(parts[2]);
  if (!salt || !hash || salt->size() < 4 || hash->size() != hash_bytes)
    return std::nullopt;
  return parsed_hash{{*ln, *r, *p}, std::move(*salt), std::move(*hash)};
}

} // namespace

std::string hash_password(std::string_view password, const scrypt_cost& cost) {
  auto salt = keymesh::random_bytes(salt_bytes);
  auto hash = derive(password, salt, cost);
  if (!hash)
    throw std::runtime_error("password hash: scrypt failed");
  return encode(cost, salt, *hash);
}

bool verify_password(std::string_view password, std::string_view encoded) {
  auto stored = parse(encoded);
  if (!stored)
    return false;
  auto hash = derive(password, stored->salt, stored->cost);
  return hash && CRYPTO_memcmp(hash->data(), stored->hash.data(), hash_bytes)
                   == 0;
}

bool needs_rehash(std::string_view encoded, const scrypt_cost& cost) {
  auto stored = parse(encoded);
  return !stored || stored->cost.log2_n != cost.log2_n
         || stored->cost.r != cost.r || stored->cost.p != cost.p;
}

} // namespace keymesh::auth
