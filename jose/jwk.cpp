// JWK import and export for jose::key (RFC 7517/7518/8037): member parsing
// and validation, OpenSSL key construction from JWK members, and the RFC 7638
// canonical public JWK that thumbprints are taken over.
#include "jose/key.hpp"

#include "common/base64url.hpp"
#include "jose/key_impl.hpp"

#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keymesh::jose {

namespace {

using json = nlohmann::json;
using detail::fail;
using detail::openssl_deleter;
using detail::p256_size;
using detail::pkey_ctx_ptr;
using detail::pkey_ptr;

using bn_ptr = std::unique_ptr<BIGNUM, openssl_deleter<BIGNUM, BN_clear_free>>;
using param_bld_ptr =
    std::unique_ptr<OSSL_PARAM_BLD,
                    openssl_deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using params_ptr =
    std::unique_ptr<OSSL_PARAM, openssl_deleter<OSSL_PARAM, OSSL_PARAM_free>>;

constexpr size_t ed25519_size = 32;
constexpr int min_rsa_bits = 2048;
// Larger moduli cost a verifier seconds per import and milliseconds per
// check: a peer that publishes one can keep a core busy.
constexpr int max_rsa_bits = 4096;

/// Bytes that hold private key material; wiped when they go away.
struct secret_bytes {
  std::string bytes;
  ~secret_bytes() {
    OPENSSL_cleanse(bytes.data(), bytes.size());
  }
  const unsigned char* data() const {
    return reinterpret_cast<const unsigned char*>(bytes.data());
  }
};

std::string member_name(const char* name) {
  return std::string{"JWK member \""} + name + "\"";
}

const std::string& string_member(const json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end())
    throw jose_error(member_name(name) + " is missing");
  if (!it->is_string())
    throw jose_error(member_name(name) + " must be a string");
  return it->get_ref<const std::string&>();
}

std::string decode_member(const json& jwk, const char* name) {
  auto bytes = base64url_decode(string_member(jwk, name));
  if (!bytes)
    throw jose_error(member_name(name) + " is not valid base64url");
  return std::move(*bytes);
}

std::string decode_fixed(const json& jwk, const char* name, size_t size,
                         const char* curve) {
  auto bytes = decode_member(jwk, name);
  if (bytes.size() != size) {
    OPENSSL_cleanse(bytes.data(), bytes.size());
    throw jose_error(member_name(name) + " must be " + std::to_string(size) +
                     " bytes for " + curve);
  }
  return bytes;
}

/// Base64urlUInt (RFC 7518 §2) uses the fewest octets: no leading zero.
std::string decode_uint(const json& jwk, const char* name) {
  auto bytes = decode_member(jwk, name);
  if (bytes.empty() || (bytes.size() > 1 && bytes[0] == '\0'))
    throw jose_error(member_name(name) +
                     " must be a minimal big-endian integer");
  return bytes;
}

void require_curve(const json& jwk, const char* kty, const char* curve) {
  if (string_member(jwk, "crv") != curve)
    throw jose_error(std::string{"unsupported curve for kty "} + kty +
                     " (only " + curve + ")");
}

bn_ptr to_bn(std::string_view bytes, bool secret) {
  bn_ptr bn{secret ? BN_secure_new() : BN_new()};
  if (!bn || !BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                        static_cast<int>(bytes.size()), bn.get()))
    fail("out of memory");
  return bn;
}

bn_ptr get_bn(const EVP_PKEY* pkey, const char* param) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
    fail(std::string{"cannot read key parameter "} + param);
  return bn_ptr{bn};
}

/// base64url of a big-endian integer; `width` 0 means minimal length.
std::string bn_to_base64url(const BIGNUM* bn, size_t width = 0) {
  secret_bytes buf;
  buf.bytes.resize(width != 0 ? width : static_cast<size_t>(BN_num_bytes(bn)));
  auto* out = reinterpret_cast<unsigned char*>(buf.bytes.data());
  if (BN_bn2binpad(bn, out, static_cast<int>(buf.bytes.size())) < 0)
    fail("key parameter does not fit");
  return base64url_encode(buf.bytes);
}

pkey_ptr from_data(const char* type, int selection, OSSL_PARAM_BLD* bld,
                   const std::string& what) {
  params_ptr params{OSSL_PARAM_BLD_to_param(bld)};
  pkey_ctx_ptr ctx{EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr)};
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, selection, params.get()) <= 0)
    fail(what);
  return pkey_ptr{raw};
}

/// Runs OpenSSL's own key validation: point on curve and in range, private
/// scalar in range and matching, RSA factors consistent.
void check_key(EVP_PKEY* pkey, bool with_private, const std::string& what) {
  pkey_ctx_ptr ctx{EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr)};
  if (!ctx || (with_private ? EVP_PKEY_check(ctx.get())
                            : EVP_PKEY_public_check(ctx.get())) != 1)
    fail(what);
}

pkey_ptr import_ec(const json& jwk, bool with_private) {
  require_curve(jwk, "EC", "P-256");
  auto x = decode_fixed(jwk, "x", p256_size, "P-256");
  auto y = decode_fixed(jwk, "y", p256_size, "P-256");
  std::array<unsigned char, 1 + 2 * p256_size> point;
  point[0] = POINT_CONVERSION_UNCOMPRESSED;
  std::memcpy(point.data() + 1, x.data(), p256_size);
  std::memcpy(point.data() + 1 + p256_size, y.data(), p256_size);
  param_bld_ptr bld{OSSL_PARAM_BLD_new()};
  bn_ptr priv;
  if (!bld ||
      !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                       "prime256v1", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                        point.data(), point.size()))
    fail("out of memory");
  if (with_private) {
    secret_bytes d{decode_fixed(jwk, "d", p256_size, "P-256")};
    priv = to_bn(d.bytes, true);
    if (!OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY,
                                priv.get()))
      fail("out of memory");
  }
  auto pkey =
      from_data("EC", with_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                bld.get(), "JWK members \"x\", \"y\" are not a P-256 point");
  check_key(pkey.get(), with_private,
            with_private ? "JWK member \"d\" does not match \"x\", \"y\""
                         : "JWK members \"x\", \"y\" are not a P-256 point");
  return pkey;
}

pkey_ptr import_okp(const json& jwk, bool with_private) {
  require_curve(jwk, "OKP", "Ed25519");
  auto x = decode_fixed(jwk, "x", ed25519_size, "Ed25519");
  if (detail::ed25519_small_order(x))
    fail(member_name("x") + " is an Ed25519 point of small order (such a "
         "key verifies forged signatures)");
  auto* x_data = reinterpret_cast<const unsigned char*>(x.data());
  if (!with_private) {
    pkey_ptr pkey{EVP_PKEY_new_raw_public_key_ex(nullptr, "ED25519", nullptr,
                                                 x_data, x.size())};
    if (!pkey)
      fail(member_name("x") + " is not an Ed25519 public key");
    return pkey;
  }
  secret_bytes d{decode_fixed(jwk, "d", ed25519_size, "Ed25519")};
  pkey_ptr pkey{EVP_PKEY_new_raw_private_key_ex(nullptr, "ED25519", nullptr,
                                                d.data(), d.bytes.size())};
  if (!pkey)
    fail(member_name("d") + " is not an Ed25519 private key");
  // OpenSSL derives the public key from d; x must agree with it.
  unsigned char derived[ed25519_size];
  size_t len = sizeof(derived);
  if (EVP_PKEY_get_raw_public_key(pkey.get(), derived, &len) != 1 ||
      len != x.size() || std::memcmp(derived, x_data, len) != 0)
    throw jose_error("JWK member \"d\" does not match \"x\"");
  return pkey;
}

pkey_ptr import_rsa(const json& jwk, bool with_private) {
  if (jwk.contains("oth"))
    throw jose_error("multi-prime RSA keys (JWK member \"oth\") are not "
                     "supported");
  auto n = to_bn(decode_uint(jwk, "n"), false);
  auto e_bytes = decode_uint(jwk, "e");
  auto e = to_bn(e_bytes, false);
  int bits = BN_num_bits(n.get());
  if (bits < min_rsa_bits || bits > max_rsa_bits)
    throw jose_error(
        "RSA modulus \"n\" must have " + std::to_string(min_rsa_bits) + " to " +
        std::to_string(max_rsa_bits) + " bits, not " + std::to_string(bits));
  if (!BN_is_odd(n.get()))
    throw jose_error("RSA modulus \"n\" must be odd");
  if (e_bytes.size() > 4 || !BN_is_odd(e.get()) || BN_is_one(e.get()))
    throw jose_error("RSA exponent \"e\" must be odd and between 3 and 2^32");
  param_bld_ptr bld{OSSL_PARAM_BLD_new()};
  if (!bld ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()))
    fail("out of memory");
  std::vector<bn_ptr> secrets;
  if (with_private) {
    static constexpr std::pair<const char*, const char*> members[] = {
        {"d", OSSL_PKEY_PARAM_RSA_D},
        {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
        {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},
        {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
        {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2},
        {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
    };
    for (auto [name, param] : members) {
      if (!jwk.contains(name))
        throw jose_error(member_name(name) +
                         " is missing (RSA private keys need d, p, q, dp, "
                         "dq and qi)");
      secret_bytes value{decode_member(jwk, name)};
      secrets.push_back(to_bn(value.bytes, true));
      if (!OSSL_PARAM_BLD_push_BN(bld.get(), param, secrets.back().get()))
        fail("out of memory");
    }
  }
  auto pkey =
      from_data("RSA", with_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                bld.get(), "JWK is not a valid RSA key");
  check_key(pkey.get(), with_private,
            with_private ? "RSA private JWK members are inconsistent"
                         : "JWK is not a valid RSA public key");
  return pkey;
}

} // namespace

namespace detail {

json export_public_jwk(algorithm alg, const EVP_PKEY* pkey) {
  switch (alg) {
  case algorithm::es256:
    return json{
        {"kty", "EC"},
        {"crv", "P-256"},
        {"x", bn_to_base64url(get_bn(pkey, OSSL_PKEY_PARAM_EC_PUB_X).get(),
                              p256_size)},
        {"y", bn_to_base64url(get_bn(pkey, OSSL_PKEY_PARAM_EC_PUB_Y).get(),
                              p256_size)},
    };
  case algorithm::eddsa: {
    unsigned char x[ed25519_size];
    size_t len = sizeof(x);
    if (EVP_PKEY_get_raw_public_key(pkey, x, &len) != 1)
      fail("cannot read the Ed25519 public key");
    return json{
        {"kty", "OKP"},
        {"crv", "Ed25519"},
        {"x", base64url_encode({reinterpret_cast<char*>(x), len})},
    };
  }
  case algorithm::rs256:
    return json{
        {"kty", "RSA"},
        {"n", bn_to_base64url(get_bn(pkey, OSSL_PKEY_PARAM_RSA_N).get())},
        {"e", bn_to_base64url(get_bn(pkey, OSSL_PKEY_PARAM_RSA_E).get())},
    };
  }
  throw jose_error("unknown algorithm");
}

bool ed25519_small_order(std::string_view point) {
  // The encodings of the eight points of order 1, 2, 4 and 8, and the
  // non-canonical encodings of 0 and 1 (p and p + 1), with the sign bit
  // ignored: libsodium's list, whose torsion points were recomputed from the
  // curve equations for this code (tests/unit/test_jose.cpp lists them).
  static const unsigned char small[][32] = {
    {0x00},
    {0x01},
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
  };
  if (point.size() != 32)
    return false;
  auto* bytes = reinterpret_cast<const unsigned char*>(point.data());
  for (auto& candidate : small) {
    bool same = (bytes[31] & 0x7f) == candidate[31];
    for (size_t i = 0; same && i < 31; ++i)
      same = bytes[i] == candidate[i];
    if (same)
      return true;
  }
  return false;
}

std::string jwk_thumbprint(const json& public_jwk) {
  // json objects keep their members sorted and dump() adds no whitespace:
  // exactly the RFC 7638 canonical form.
  unsigned char digest[32];
  if (!sha256(public_jwk.dump(), digest))
    fail("SHA-256 is unavailable");
  return base64url_encode({reinterpret_cast<char*>(digest), 32});
}

} // namespace detail

std::optional<std::string> thumbprint_of(const nlohmann::json& jwk) {
  if (!jwk.is_object())
    return std::nullopt;
  auto kty = jwk.find("kty");
  if (kty == jwk.end() || !kty->is_string())
    return std::nullopt;
  static const std::vector<const char*> ec{"crv", "kty", "x", "y"},
    okp{"crv", "kty", "x"}, rsa{"e", "kty", "n"};
  const std::vector<const char*>* members = nullptr;
  if (*kty == "EC")
    members = &ec;
  else if (*kty == "OKP")
    members = &okp;
  else if (*kty == "RSA")
    members = &rsa;
  else
    return std::nullopt;
  json required = json::object();
  for (auto* name : *members) {
    auto m = jwk.find(name);
    if (m == jwk.end() || !m->is_string())
      return std::nullopt;
    required[name] = *m;
  }
  return detail::jwk_thumbprint(required);
}

key key::from_jwk(const nlohmann::json& jwk) {
  if (!jwk.is_object())
    throw jose_error("JWK must be a JSON object");
  const auto& kty = string_member(jwk, "kty");
  algorithm alg;
  pkey_ptr pkey;
  bool with_private = false;
  if (kty == "EC") {
    alg = algorithm::es256;
    with_private = jwk.contains("d");
    pkey = import_ec(jwk, with_private);
  } else if (kty == "OKP") {
    alg = algorithm::eddsa;
    with_private = jwk.contains("d");
    pkey = import_okp(jwk, with_private);
  } else if (kty == "RSA") {
    alg = algorithm::rs256;
    for (const char* name : {"d", "p", "q", "dp", "dq", "qi"})
      with_private = with_private || jwk.contains(name);
    pkey = import_rsa(jwk, with_private);
  } else if (kty == "oct") {
    throw jose_error("symmetric JWKs (kty \"oct\") are not supported");
  } else {
    throw jose_error("unsupported JWK kty (EC, OKP and RSA are supported)");
  }
  if (auto it = jwk.find("alg");
      it != jwk.end() &&
      (!it->is_string() || it->get_ref<const std::string&>() != to_string(alg)))
    throw jose_error("JWK member \"alg\" must be " +
                     std::string{to_string(alg)} + " for kty " + kty);
  return key{std::make_shared<const impl>(alg, std::move(pkey), with_private)};
}

bool key::carries_private_members(const nlohmann::json& jwk) {
  for (const char* name : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
    if (jwk.contains(name))
      return true;
  return false;
}

key key::from_public_jwk(const nlohmann::json& jwk) {
  if (jwk.is_object() && key::carries_private_members(jwk))
    throw jose_error("JWK carries private key members where a public key "
                     "is expected");
  return from_jwk(jwk);
}

nlohmann::json key::public_jwk() const {
  return impl_->public_jwk;
}

nlohmann::json key::private_jwk() const {
  if (!impl_->has_private)
    throw jose_error("key has no private part");
  const EVP_PKEY* pkey = impl_->pkey.get();
  auto jwk = impl_->public_jwk;
  switch (impl_->alg) {
  case algorithm::es256:
    jwk["d"] = bn_to_base64url(get_bn(pkey, OSSL_PKEY_PARAM_PRIV_KEY).get(),
                               p256_size);
    break;
  case algorithm::eddsa: {
    secret_bytes d;
    d.bytes.resize(ed25519_size);
    size_t len = d.bytes.size();
    if (EVP_PKEY_get_raw_private_key(
            pkey, reinterpret_cast<unsigned char*>(d.bytes.data()), &len) != 1)
      fail("cannot read the Ed25519 private key");
    d.bytes.resize(len);
    jwk["d"] = base64url_encode(d.bytes);
    break;
  }
  case algorithm::rs256: {
    static constexpr std::pair<const char*, const char*> members[] = {
        {"d", OSSL_PKEY_PARAM_RSA_D},
        {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
        {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},
        {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
        {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2},
        {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
    };
    for (auto [name, param] : members)
      jwk[name] = bn_to_base64url(get_bn(pkey, param).get());
    break;
  }
  }
  return jwk;
}

std::string key::thumbprint() const {
  return impl_->thumbprint;
}

} // namespace keymesh::jose
