#include "common/aead.hpp"

#include <memory>
#include <stdexcept>

#include <openssl/evp.h>

#include "common/random.hpp"

namespace keymesh {

namespace {

constexpr std::string_view magic = "KMS1";
constexpr size_t nonce_bytes = 12;
constexpr size_t tag_bytes = 16;

using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

cipher_ctx new_ctx() {
  cipher_ctx ctx{EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free};
  if (!ctx)
    throw std::runtime_error("seal: out of memory");
  return ctx;
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

} // namespace

std::string aead_seal(std::string_view key, std::string_view plaintext,
                 std::string_view aad) {
  if (key.size() != aead_key_bytes)
    throw std::runtime_error("seal: the key is not 32 bytes");
  auto nonce = random_bytes(nonce_bytes);
  auto ctx = new_ctx();
  std::string out{magic};
  out += nonce;
  auto header = out.size();
  out.resize(header + plaintext.size() + tag_bytes);
  auto* dst = reinterpret_cast<unsigned char*>(out.data()) + header;
  int len = 0;
  int total = 0;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key),
                         bytes(nonce))
        != 1
      || EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad),
                           static_cast<int>(aad.size()))
           != 1
      || EVP_EncryptUpdate(ctx.get(), dst, &len, bytes(plaintext),
                           static_cast<int>(plaintext.size()))
           != 1)
    throw std::runtime_error("seal: encryption failed");
  total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), dst + total, &len) != 1)
    throw std::runtime_error("seal: encryption failed");
  total += len;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG,
                          static_cast<int>(tag_bytes), dst + total)
      != 1)
    throw std::runtime_error("seal: no tag");
  out.resize(header + static_cast<size_t>(total) + tag_bytes);
  return out;
}

std::optional<std::string> aead_open(std::string_view key,
                                  std::string_view sealed,
                                  std::string_view aad) {
  if (key.size() != aead_key_bytes
      || sealed.size() < magic.size() + nonce_bytes + tag_bytes
      || sealed.substr(0, magic.size()) != magic)
    return std::nullopt;
  auto nonce = sealed.substr(magic.size(), nonce_bytes);
  auto body = sealed.substr(magic.size() + nonce_bytes);
  auto ciphertext = body.substr(0, body.size() - tag_bytes);
  std::string tag{body.substr(body.size() - tag_bytes)};
  auto ctx = new_ctx();
  std::string out(ciphertext.size(), '\0');
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key),
                         bytes(nonce))
        != 1
      || EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad),
                           static_cast<int>(aad.size()))
           != 1
      || EVP_DecryptUpdate(ctx.get(), dst, &len, bytes(ciphertext),
                           static_cast<int>(ciphertext.size()))
           != 1
      || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG,
                             static_cast<int>(tag_bytes), tag.data())
           != 1)
    return std::nullopt;
  auto total = len;
  // Final checks the tag: nothing is returned unless it matches.
  if (EVP_DecryptFinal_ex(ctx.get(), dst + total, &len) != 1)
    return std::nullopt;
  out.resize(static_cast<size_t>(total + len));
  return out;
}

} // namespace keymesh
