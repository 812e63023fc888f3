#include "jose/key.hpp"

#include "jose/base64url.hpp"

#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <array>
#include <cstring>
#include <mutex>
#include <vector>

namespace keymesh::jose {

namespace {

using json = nlohmann::json;

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
using md_ctx_ptr =
    std::unique_ptr<EVP_MD_CTX, openssl_deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using bn_ptr = std::unique_ptr<BIGNUM, openssl_deleter<BIGNUM, BN_clear_free>>;
using ecdsa_sig_ptr =
    std::unique_ptr<ECDSA_SIG, openssl_deleter<ECDSA_SIG, ECDSA_SIG_free>>;
using param_bld_ptr =
    std::unique_ptr<OSSL_PARAM_BLD,
                    openssl_deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using params_ptr =
    std::unique_ptr<OSSL_PARAM, openssl_deleter<OSSL_PARAM, OSSL_PARAM_free>>;

constexpr size_t p256_size = 32;
constexpr size_t ed25519_size = 32;
constexpr size_t es256_signature_size = 64;
constexpr size_t ed25519_signature_size = 64;
constexpr int min_rsa_bits = 2048;
constexpr int max_rsa_bits = 16384;
// Upper bound of a DER ECDSA-Sig-Value for 256-bit R and S.
constexpr size_t max_es256_der_size = 72;
// Contexts a key keeps for reuse; enough for one per busy thread.
constexpr size_t ctx_pool_capacity = 64;

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

/// Throws jose_error with `what`, plus OpenSSL's reason text when it has one
/// (library text such as "point is not on curve", never key bytes).
[[noreturn]] void fail(const std::string& what) {
  std::string msg = what;
  if (unsigned long code = ERR_peek_last_error(); code != 0) {
    if (const char* reason = ERR_reason_error_string(code))
      msg.append(" (").append(reason).append(")");
  }
  ERR_clear_error();
  throw jose_error(msg);
}

const EVP_MD* sha256() {
  // Fetched once: a fetch per call costs a provider lookup under a lock.
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

bool sha256(std::string_view data, unsigned char (&out)[32]) {
  unsigned int len = 0;
  return sha256() != nullptr && EVP_Digest(data.data(), data.size(), out, &len,
                                           sha256(), nullptr) == 1;
}

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

bool carries_private_members(const json& jwk) {
  for (const char* name : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
    if (jwk.contains(name))
      return true;
  return false;
}

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

/// JWS R||S (RFC 7518 §3.4) to the DER form OpenSSL verifies. Returns the
/// DER length, 0 on failure. R or S of zero or beyond the group order still
/// encode; EVP_PKEY_verify rejects them.
size_t es256_raw_to_der(const unsigned char* raw,
                        unsigned char (&der)[max_es256_der_size]) {
  ecdsa_sig_ptr sig{ECDSA_SIG_new()};
  BIGNUM* r = BN_bin2bn(raw, p256_size, nullptr);
  BIGNUM* s = BN_bin2bn(raw + p256_size, p256_size, nullptr);
  if (!sig || !r || !s || !ECDSA_SIG_set0(sig.get(), r, s)) {
    BN_free(r);
    BN_free(s);
    return 0;
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0 || size_t(len) > sizeof(der))
    return 0;
  unsigned char* cursor = der;
  return size_t(i2d_ECDSA_SIG(sig.get(), &cursor));
}

/// Replaces a DER ECDSA signature by R||S, each padded to 32 bytes.
bool es256_der_to_raw(std::string& signature) {
  const auto* cursor = reinterpret_cast<const unsigned char*>(signature.data());
  ecdsa_sig_ptr sig{d2i_ECDSA_SIG(nullptr, &cursor, long(signature.size()))};
  unsigned char raw[es256_signature_size];
  if (!sig || BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw, p256_size) < 0 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw + p256_size, p256_size) < 0)
    return false;
  signature.assign(reinterpret_cast<char*>(raw), sizeof(raw));
  return true;
}

// Ed25519 signs the message itself (no prehash) and only through
// EVP_DigestSign/EVP_DigestVerify, which newer OpenSSL allows once per
// context: every call prepares its own (about 2% of a verification).

bool ed25519_sign(EVP_PKEY* pkey, std::string_view msg, unsigned char* out,
                  size_t& len) {
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  return ctx &&
         EVP_DigestSignInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr,
                               pkey, nullptr) == 1 &&
         EVP_DigestSign(ctx.get(), out, &len,
                        reinterpret_cast<const unsigned char*>(msg.data()),
                        msg.size()) == 1;
}

bool ed25519_verify(EVP_PKEY* pkey, std::string_view msg,
                    std::string_view signature) {
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  return ctx &&
         EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr,
                                 pkey, nullptr) == 1 &&
         EVP_DigestVerify(
             ctx.get(),
             reinterpret_cast<const unsigned char*>(signature.data()),
             signature.size(),
             reinterpret_cast<const unsigned char*>(msg.data()),
             msg.size()) == 1;
}

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

} // namespace

struct key::impl {
  impl(algorithm alg, pkey_ptr pkey, bool has_private)
      : alg(alg)
      , has_private(has_private)
      , pkey(std::move(pkey))
      , signature_size(EVP_PKEY_get_size(this->pkey.get()))
      , public_jwk(export_public_jwk(alg, this->pkey.get())) {
    unsigned char digest[32];
    if (!sha256(public_jwk.dump(), digest))
      fail("SHA-256 is unavailable");
    thumbprint = base64url_encode({reinterpret_cast<char*>(digest), 32});
  }

  /// An EVP_PKEY_CTX prepared for ES256 or RS256 over a SHA-256 digest,
  /// taken from `pool` or made; returns it to the pool when done.
  class lease {
  public:
    lease(const impl& owner, bool for_signing)
        : pool_(for_signing ? owner.sign_pool : owner.verify_pool)
        , ctx_(pool_.take()) {
      if (!ctx_)
        ctx_ = owner.make_ctx(for_signing);
    }
    ~lease() {
      if (ctx_)
        pool_.give_back(std::move(ctx_));
    }
    EVP_PKEY_CTX* get() const {
      return ctx_.get();
    }
    void discard() {
      ctx_.reset();
    }

  private:
    ctx_pool& pool_;
    pkey_ctx_ptr ctx_;
  };

  pkey_ctx_ptr make_ctx(bool for_signing) const {
    pkey_ctx_ptr ctx{EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr)};
    if (!ctx)
      return nullptr;
    if ((for_signing ? EVP_PKEY_sign_init(ctx.get())
                     : EVP_PKEY_verify_init(ctx.get())) <= 0 ||
        (alg == algorithm::rs256 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) <= 0) ||
        EVP_PKEY_CTX_set_signature_md(ctx.get(), sha256()) <= 0)
      return nullptr;
    return ctx;
  }

  algorithm alg;
  bool has_private;
  pkey_ptr pkey;
  int signature_size;
  json public_jwk;
  std::string thumbprint;
  mutable ctx_pool sign_pool;
  mutable ctx_pool verify_pool;
};

std::string_view to_string(algorithm a) {
  switch (a) {
  case algorithm::es256:
    return "ES256";
  case algorithm::eddsa:
    return "EdDSA";
  case algorithm::rs256:
    return "RS256";
  }
  return "unknown";
}

std::optional<algorithm> parse_algorithm(std::string_view name) {
  for (auto a : {algorithm::es256, algorithm::eddsa, algorithm::rs256})
    if (name == to_string(a))
      return a;
  return std::nullopt;
}

key::key(std::shared_ptr<const impl> ptr)
    : impl_(std::move(ptr)) {}

key key::generate(algorithm alg) {
  EVP_PKEY* raw = nullptr;
  switch (alg) {
  case algorithm::es256:
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    break;
  case algorithm::eddsa:
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    break;
  case algorithm::rs256:
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
    break;
  }
  pkey_ptr pkey{raw};
  if (!pkey)
    fail("cannot generate a " + std::string{to_string(alg)} + " key");
  return key{std::make_shared<const impl>(alg, std::move(pkey), true)};
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

key key::from_public_jwk(const nlohmann::json& jwk) {
  if (jwk.is_object() && carries_private_members(jwk))
    throw jose_error("JWK carries private key members where a public key "
                     "is expected");
  return from_jwk(jwk);
}

algorithm key::alg() const {
  return impl_->alg;
}

bool key::has_private() const {
  return impl_->has_private;
}

key key::public_key() const {
  if (!impl_->has_private)
    return *this;
  return from_public_jwk(impl_->public_jwk);
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

std::string key::sign(std::string_view signing_input) const {
  const auto& k = *impl_;
  if (!k.has_private)
    throw jose_error("cannot sign: key has no private part");
  if (k.alg == algorithm::eddsa) {
    std::string out(ed25519_signature_size, '\0');
    size_t len = out.size();
    if (!ed25519_sign(k.pkey.get(), signing_input,
                      reinterpret_cast<unsigned char*>(out.data()), len))
      fail("EdDSA signing failed");
    out.resize(len);
    return out;
  }
  unsigned char digest[32];
  if (!sha256(signing_input, digest))
    fail("SHA-256 failed");
  impl::lease ctx{k, true};
  // ES256 comes out as DER and is converted to R||S below.
  std::string out(k.alg == algorithm::es256 ? max_es256_der_size
                                            : size_t(k.signature_size),
                  '\0');
  size_t len = out.size();
  if (!ctx.get() ||
      EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()),
                    &len, digest, sizeof(digest)) != 1) {
    ctx.discard();
    fail(std::string{to_string(k.alg)} + " signing failed");
  }
  out.resize(len);
  if (k.alg == algorithm::es256 && !es256_der_to_raw(out))
    fail("ES256 signature conversion failed");
  return out;
}

bool key::verify(std::string_view signing_input,
                 std::string_view signature) const {
  const auto& k = *impl_;
  auto ok = [&]() -> bool {
    if (k.alg == algorithm::eddsa)
      return signature.size() == ed25519_signature_size &&
             ed25519_verify(k.pkey.get(), signing_input, signature);
    unsigned char der[max_es256_der_size];
    const auto* sig = reinterpret_cast<const unsigned char*>(signature.data());
    size_t sig_len = signature.size();
    if (k.alg == algorithm::es256) {
      if (signature.size() != es256_signature_size)
        return false;
      sig_len = es256_raw_to_der(sig, der);
      sig = der;
    } else if (signature.size() != size_t(k.signature_size)) {
      return false;
    }
    unsigned char digest[32];
    if (sig_len == 0 || !sha256(signing_input, digest))
      return false;
    impl::lease ctx{k, false};
    if (!ctx.get())
      return false;
    int rc = EVP_PKEY_verify(ctx.get(), sig, sig_len, digest, sizeof(digest));
    if (rc < 0)
      ctx.discard(); // an internal error, not a mismatch: don't reuse it
    return rc == 1;
  };
  try {
    if (ok())
      return true;
  } catch (...) { // e.g. std::bad_alloc; verify() reports only yes or no
  }
  ERR_clear_error();
  return false;
}

} // namespace keymesh::jose
