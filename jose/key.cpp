#include "jose/key.hpp"

#include "jose/key_impl.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace keymesh::jose {

namespace detail {

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

} // namespace detail

namespace {

using detail::fail;
using detail::openssl_deleter;
using detail::p256_size;
using detail::pkey_ctx_ptr;
using detail::pkey_ptr;
using detail::sha256;

using md_ctx_ptr =
    std::unique_ptr<EVP_MD_CTX, openssl_deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using ecdsa_sig_ptr =
    std::unique_ptr<ECDSA_SIG, openssl_deleter<ECDSA_SIG, ECDSA_SIG_free>>;

constexpr size_t es256_signature_size = 64;
constexpr size_t ed25519_signature_size = 64;
// Upper bound of a DER ECDSA-Sig-Value for 256-bit R and S.
constexpr size_t max_es256_der_size = 72;

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

} // namespace

key::impl::impl(algorithm alg, pkey_ptr pkey, bool has_private)
    : alg(alg)
    , has_private(has_private)
    , pkey(std::move(pkey))
    , signature_size(EVP_PKEY_get_size(this->pkey.get()))
    , public_jwk(detail::export_public_jwk(alg, this->pkey.get()))
    , thumbprint(detail::jwk_thumbprint(public_jwk)) {}

/// An EVP_PKEY_CTX prepared for ES256 or RS256 over a SHA-256 digest,
/// taken from `pool` or made; returns it to the pool when done.
class key::impl::lease {
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
  detail::ctx_pool& pool_;
  pkey_ctx_ptr ctx_;
};

pkey_ctx_ptr key::impl::make_ctx(bool for_signing) const {
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
    // An R of small order is refused too: no honest signer makes one.
    if (k.alg == algorithm::eddsa)
      return signature.size() == ed25519_signature_size &&
             !detail::ed25519_small_order(signature.substr(0, 32)) &&
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
