#include "cluster/certs.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <utility>

namespace keymesh::cluster {

namespace {

template<class T, void (*Free)(T*)>
struct openssl_deleter {
  void operator()(T* ptr) const {
    Free(ptr);
  }
};

/// Frees the stack only: its certificates stay owned by their x509_ptr.
void free_x509_stack(STACK_OF(X509) * stack) {
  sk_X509_free(stack);
}

using x509_ptr = std::unique_ptr<X509, openssl_deleter<X509, X509_free>>;
using pkey_ptr =
    std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY, EVP_PKEY_free>>;
using bio_ptr = std::unique_ptr<BIO, openssl_deleter<BIO, BIO_free_all>>;
using store_ptr =
    std::unique_ptr<X509_STORE, openssl_deleter<X509_STORE, X509_STORE_free>>;
using store_ctx_ptr =
    std::unique_ptr<X509_STORE_CTX,
                    openssl_deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using x509_stack_ptr =
    std::unique_ptr<STACK_OF(X509),
                    openssl_deleter<STACK_OF(X509), free_x509_stack>>;
using md_ctx_ptr =
    std::unique_ptr<EVP_MD_CTX, openssl_deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using bn_ptr = std::unique_ptr<BIGNUM, openssl_deleter<BIGNUM, BN_free>>;
using asn1_integer_ptr =
    std::unique_ptr<ASN1_INTEGER,
                    openssl_deleter<ASN1_INTEGER, ASN1_INTEGER_free>>;
using extension_ptr =
    std::unique_ptr<X509_EXTENSION,
                    openssl_deleter<X509_EXTENSION, X509_EXTENSION_free>>;

// Far larger than any certificate chain or key file keymesh expects.
constexpr std::uintmax_t max_pem_file_bytes = 1024 * 1024;
// RFC 5280's upper bound for a common name.
constexpr size_t max_common_name_bytes = 64;
// Certificates start this long before they are issued, for clock skew.
constexpr long backdate_seconds = 5 * 60;
constexpr int max_days = 100 * 366;
constexpr long seconds_per_day = 24 * 60 * 60;

/// OpenSSL's text for its most recent error (library text such as "bad
/// decrypt", never key bytes), or "" if there is none. Clears the queue.
std::string openssl_reason() {
  std::string reason;
  if (unsigned long code = ERR_peek_last_error(); code != 0) {
    if (const char* text = ERR_reason_error_string(code))
      reason = text;
  }
  ERR_clear_error();
  return reason;
}

[[noreturn]] void fail(const std::string& origin, const std::string& problem) {
  auto reason = openssl_reason();
  throw tls_error(origin + ": " + problem +
                  (reason.empty() ? "" : " (" + reason + ")"));
}

std::string quoted(const std::string& path) {
  return "\"" + path + "\"";
}

bio_ptr memory_bio(std::string_view text) {
  bio_ptr bio{BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))};
  if (!bio)
    fail("memory", "cannot allocate a BIO");
  return bio;
}

std::string drain(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

bool has_pem_block(std::string_view text, std::string_view label) {
  return text.find("-----BEGIN " + std::string{label} + "-----") !=
         std::string_view::npos;
}

/// The whole file; throws tls_error "<origin>: <problem>".
std::string read_file(const std::string& path, const std::string& origin) {
  namespace fs = std::filesystem;
  if (path.empty())
    throw tls_error(origin + ": no path given");
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (!fs::exists(status))
    throw tls_error(origin + ": does not exist");
  if (!fs::is_regular_file(status))
    throw tls_error(origin + ": is not a regular file");
  auto size = fs::file_size(path, ec);
  if (!ec && size > max_pem_file_bytes)
    throw tls_error(origin + ": is too large for a PEM file (" +
                    std::to_string(size) + " bytes)");
  std::ifstream in{path, std::ios::binary};
  std::string text{std::istreambuf_iterator<char>{in}, {}};
  if (!in && !in.eof())
    throw tls_error(origin + ": cannot be read (" +
                    std::generic_category().message(errno) + ")");
  return text;
}

/// Every certificate in `pem`, in order; at least one.
std::vector<x509_ptr> parse_certificates(std::string_view pem,
                                         const std::string& origin) {
  if (!has_pem_block(pem, "CERTIFICATE"))
    throw tls_error(origin + ": holds no PEM certificate");
  auto bio = memory_bio(pem);
  std::vector<x509_ptr> result;
  while (x509_ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)})
    result.push_back(std::move(cert));
  // The loop ends with "no start line" at the end of input; anything else
  // means a certificate block that does not parse.
  auto code = ERR_peek_last_error();
  if (result.empty() ||
      (code != 0 && ERR_GET_REASON(code) != PEM_R_NO_START_LINE))
    fail(origin, "holds a certificate that cannot be parsed");
  ERR_clear_error();
  return result;
}

struct passphrase_source {
  const std::string* passphrase;
  bool asked = false;
};

/// Never prompts on a terminal: without a passphrase the read fails.
int passphrase_callback(char* buffer, int size, int, void* user) {
  auto& source = *static_cast<passphrase_source*>(user);
  source.asked = true;
  const auto& passphrase = *source.passphrase;
  if (passphrase.empty() || passphrase.size() > static_cast<size_t>(size))
    return -1;
  std::copy(passphrase.begin(), passphrase.end(), buffer);
  return static_cast<int>(passphrase.size());
}

/// `missing_hint` is appended when `pem` holds no key at all.
pkey_ptr parse_private_key(std::string_view pem, const std::string& origin,
                           const std::string& passphrase,
                           const std::string& missing_hint = {}) {
  // Matches PRIVATE KEY, ENCRYPTED PRIVATE KEY, EC PRIVATE KEY, ...
  if (pem.find(" PRIVATE KEY-----") == std::string_view::npos &&
      pem.find("-----BEGIN PRIVATE KEY-----") == std::string_view::npos)
    throw tls_error(origin + ": holds no PEM private key" + missing_hint);
  auto bio = memory_bio(pem);
  passphrase_source source{&passphrase};
  pkey_ptr key{PEM_read_bio_PrivateKey(bio.get(), nullptr, passphrase_callback,
                                       &source)};
  if (!key && source.asked)
    fail(origin, passphrase.empty()
                     ? "the private key is encrypted and no passphrase is set"
                     : "the private key cannot be decrypted with the "
                       "passphrase given");
  if (!key)
    fail(origin, "holds a private key that cannot be parsed");
  ERR_clear_error();
  return key;
}

std::string common_name_of(X509* cert) {
  X509_NAME* subject = X509_get_subject_name(cert);
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0)
    return {};
  ASN1_STRING* data =
      X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) {
    ERR_clear_error();
    return {};
  }
  std::string result(reinterpret_cast<char*>(utf8),
                     static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return result;
}

std::string describe(X509* cert) {
  auto name = common_name_of(cert);
  return name.empty() ? "certificate without CN" : "certificate CN=" + name;
}

std::chrono::system_clock::time_point time_point_of(const ASN1_TIME* time) {
  std::tm parts{};
  if (ASN1_TIME_to_tm(time, &parts) != 1) {
    ERR_clear_error();
    return {};
  }
  return std::chrono::system_clock::from_time_t(timegm(&parts));
}

std::string text_of(const ASN1_TIME* time) {
  std::tm parts{};
  if (ASN1_TIME_to_tm(time, &parts) != 1) {
    ERR_clear_error();
    return "an unreadable time";
  }
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return buffer;
}

void check_validity_now(X509* cert, const std::string& origin) {
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0)
    throw tls_error(origin + ": " + describe(cert) + " is not valid before " +
                    text_of(X509_get0_notBefore(cert)));
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
    throw tls_error(origin + ": " + describe(cert) + " expired at " +
                    text_of(X509_get0_notAfter(cert)));
}

/// Both ends of a cluster link present their node certificate: the TLS layer
/// checks it for client use on one side and server use on the other.
void check_tls_usage(X509* cert, const std::string& origin) {
  bool client = X509_check_purpose(cert, X509_PURPOSE_SSL_CLIENT, 0) == 1;
  bool server = X509_check_purpose(cert, X509_PURPOSE_SSL_SERVER, 0) == 1;
  ERR_clear_error();
  if (!client || !server)
    throw tls_error(origin + ": " + describe(cert) + " is not usable for TLS " +
                    (client   ? "server"
                     : server ? "client"
                              : "client and server") +
                    " authentication (keyUsage/extendedKeyUsage)");
}

void verify_chain(X509_STORE* store, const std::vector<x509_ptr>& certs,
                  const std::string& origin, const std::string& ca_origin) {
  x509_stack_ptr untrusted{sk_X509_new_null()};
  if (!untrusted)
    fail(origin, "out of memory");
  for (size_t i = 1; i < certs.size(); ++i)
    if (sk_X509_push(untrusted.get(), certs[i].get()) <= 0)
      fail(origin, "out of memory");
  store_ctx_ptr ctx{X509_STORE_CTX_new()};
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store, certs.front().get(),
                                  untrusted.get()) != 1)
    fail(origin, "cannot set up certificate verification");
  if (X509_verify_cert(ctx.get()) == 1) {
    ERR_clear_error();
    return;
  }
  int error = X509_STORE_CTX_get_error(ctx.get());
  int depth = X509_STORE_CTX_get_error_depth(ctx.get());
  X509* culprit = X509_STORE_CTX_get_current_cert(ctx.get());
  std::string where;
  if (depth > 0 && culprit != nullptr)
    where = " (at " + describe(culprit) + ")";
  ERR_clear_error();
  throw tls_error(origin + ": " + describe(certs.front().get()) +
                  " does not verify against the CA in " + ca_origin + ": " +
                  X509_verify_cert_error_string(error) + where);
}

store_ptr make_store(const std::vector<x509_ptr>& authorities,
                     const std::string& origin) {
  store_ptr store{X509_STORE_new()};
  if (!store)
    fail(origin, "out of memory");
  for (const auto& authority : authorities) {
    if (X509_check_ca(authority.get()) == 0)
      throw tls_error(origin + ": " + describe(authority.get()) +
                      " is not a CA certificate (no basicConstraints CA:TRUE)");
    if (X509_STORE_add_cert(store.get(), authority.get()) != 1)
      fail(origin, "cannot add " + describe(authority.get()) + " to the store");
  }
  return store;
}

/// Digest for signing with `key`; nullptr for EdDSA, which hashes itself.
const char* digest_name_for(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
    return nullptr;
  return "SHA256";
}

std::string pem_of(X509* cert) {
  bio_ptr bio{BIO_new(BIO_s_mem())};
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1)
    fail("certificate", "cannot be written as PEM");
  return drain(bio.get());
}

// --- issuing
// ------------------------------------------------------------------

pkey_ptr new_p256_key() {
  pkey_ptr key{EVP_EC_gen("P-256")};
  if (!key)
    fail("key generation", "cannot generate a P-256 key");
  return key;
}

std::string private_key_pem(EVP_PKEY* key) {
  bio_ptr bio{BIO_new(BIO_s_secmem())};
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0,
                                       nullptr, nullptr) != 1)
    fail("private key", "cannot be written as PEM");
  return drain(bio.get());
}

void check_issue_arguments(const std::string& common_name, int days) {
  if (common_name.empty() || common_name.size() > max_common_name_bytes)
    throw tls_error("common name \"" + common_name +
                    "\": must be 1 to 64 bytes long");
  if (days > max_days || days < -max_days)
    throw tls_error("validity of " + std::to_string(days) +
                    " days: must be at most " + std::to_string(max_days));
}

void set_random_serial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1)
    fail("serial number", "no random bytes");
  bytes[sizeof bytes - 1] |= 1; // never zero
  bn_ptr number{BN_bin2bn(bytes, sizeof bytes, nullptr)};
  asn1_integer_ptr serial{number ? BN_to_ASN1_INTEGER(number.get(), nullptr)
                                 : nullptr};
  if (!serial || X509_set_serialNumber(cert, serial.get()) != 1)
    fail("serial number", "cannot be set");
}

/// notAfter = now + days; notBefore five minutes ago, or a day before
/// notAfter for certificates that are meant to be expired already.
void set_validity(X509* cert, int days) {
  long not_before =
      std::min(-backdate_seconds,
               static_cast<long>(days) * seconds_per_day - seconds_per_day);
  if (X509_gmtime_adj(X509_getm_notBefore(cert), not_before) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, nullptr) == nullptr)
    fail("validity", "cannot be set");
}

/// A certificate for `key` named `common_name`, signed by `issuer_key` on
/// behalf of `issuer` (nullptr: self-signed), with `extensions` as
/// {NID, OpenSSL config text} pairs.
x509_ptr issue(const std::string& common_name, EVP_PKEY* key, X509* issuer,
               EVP_PKEY* issuer_key, int days,
               const std::vector<std::pair<int, std::string>>& extensions) {
  x509_ptr cert{X509_new()};
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1)
    fail("certificate", "cannot be created");
  set_random_serial(cert.get());
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(
          subject, "CN", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(common_name.data()),
          static_cast<int>(common_name.size()), -1, 0) != 1)
    fail("common name \"" + common_name + "\"", "cannot be set");
  X509_NAME* issuer_name =
      issuer == nullptr ? subject : X509_get_subject_name(issuer);
  if (X509_set_issuer_name(cert.get(), issuer_name) != 1 ||
      X509_set_pubkey(cert.get(), key) != 1)
    fail("certificate", "cannot be created");
  set_validity(cert.get(), days);
  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, issuer == nullptr ? cert.get() : issuer, cert.get(),
                 nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    extension_ptr extension{
        X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str())};
    if (!extension || X509_add_ext(cert.get(), extension.get(), -1) != 1)
      fail(std::string{"extension "} + OBJ_nid2sn(nid) + " \"" + value + "\"",
           "cannot be added");
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0)
    fail("certificate", "cannot be signed");
  return cert;
}

bool is_dns_name(const std::string& name) {
  if (name.empty() || name.size() > 253 || name.front() == '.' ||
      name.back() == '.' || name.front() == '-')
    return false;
  for (size_t i = 0; i < name.size(); ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    bool wildcard = c == '*' && i == 0 && name.size() > 2 && name[1] == '.';
    if (!std::isalnum(c) && c != '-' && c != '.' && !wildcard)
      return false;
  }
  return true;
}

/// "IP:10.0.0.1,DNS:node-1.example" (IPv6 may be given in brackets).
std::string subject_alt_names(const std::vector<std::string>& entries) {
  std::string result;
  for (const auto& entry : entries) {
    std::string address = entry;
    if (address.size() > 2 && address.front() == '[' && address.back() == ']')
      address = address.substr(1, address.size() - 2);
    unsigned char buffer[16];
    std::string item;
    if (inet_pton(AF_INET, address.c_str(), buffer) == 1 ||
        inet_pton(AF_INET6, address.c_str(), buffer) == 1)
      item = "IP:" + address;
    else if (is_dns_name(entry))
      item = "DNS:" + entry;
    else
      throw tls_error("subjectAltName \"" + entry +
                      "\": neither an IP address nor a DNS name");
    result += (result.empty() ? "" : ",") + item;
  }
  return result;
}

} // namespace

// --- tls_identity
// ---------------------------------------------------------------

struct tls_identity::state {
  x509_ptr certificate;
  pkey_ptr key;
  store_ptr authorities;
  std::string ca_origin;
  std::string common_name;
};

tls_identity::tls_identity(std::shared_ptr<const state> loaded)
    : state_(std::move(loaded)) {}

tls_identity tls_identity::load(const std::string& ca_path,
                                const std::string& cert_path,
                                const std::string& key_path,
                                const std::string& passphrase) {
  auto loaded = std::make_shared<state>();
  loaded->ca_origin = "CA file " + quoted(ca_path);
  auto cert_origin = "certificate file " + quoted(cert_path);
  bool combined = key_path.empty() || key_path == cert_path;
  auto key_origin = combined ? cert_origin : "key file " + quoted(key_path);

  auto authorities = parse_certificates(read_file(ca_path, loaded->ca_origin),
                                        loaded->ca_origin);
  loaded->authorities = make_store(authorities, loaded->ca_origin);

  auto cert_text = read_file(cert_path, cert_origin);
  auto chain = parse_certificates(cert_text, cert_origin);
  if (combined) {
    loaded->key = parse_private_key(
        cert_text, key_origin, passphrase,
        " (no key file is given, so the key must follow the certificate)");
    OPENSSL_cleanse(cert_text.data(), cert_text.size());
  } else {
    auto key_text = read_file(key_path, key_origin);
    loaded->key = parse_private_key(key_text, key_origin, passphrase);
    OPENSSL_cleanse(key_text.data(), key_text.size());
  }
  X509* leaf = chain.front().get();
  if (EVP_PKEY_eq(X509_get0_pubkey(leaf), loaded->key.get()) != 1) {
    ERR_clear_error();
    throw tls_error(key_origin + ": the private key does not match the " +
                    describe(leaf) + " in " + cert_origin);
  }
  check_validity_now(leaf, cert_origin);
  verify_chain(loaded->authorities.get(), chain, cert_origin,
               loaded->ca_origin);
  check_tls_usage(leaf, cert_origin);
  loaded->common_name = common_name_of(leaf);
  if (loaded->common_name.empty())
    throw tls_error(cert_origin + ": the certificate has no common name (CN)");
  loaded->certificate = std::move(chain.front());
  return tls_identity{std::move(loaded)};
}

const std::string& tls_identity::common_name() const {
  return state_->common_name;
}

std::string tls_identity::certificate_pem() const {
  return pem_of(state_->certificate.get());
}

std::string tls_identity::sign(std::string_view data) const {
  EVP_PKEY* key = state_->key.get();
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  size_t size = 0;
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, digest_name_for(key), nullptr,
                            nullptr, key, nullptr) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1)
    fail("signing with the node key", "failed");
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(),
                     reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1)
    fail("signing with the node key", "failed");
  signature.resize(size);
  return signature;
}

std::string tls_identity::verify_peer_certificate(std::string_view pem) const {
  const std::string origin = "peer certificate";
  auto chain = parse_certificates(pem, origin);
  X509* leaf = chain.front().get();
  check_validity_now(leaf, origin);
  verify_chain(state_->authorities.get(), chain, origin, state_->ca_origin);
  check_tls_usage(leaf, origin);
  auto name = common_name_of(leaf);
  if (name.empty())
    throw tls_error(origin + ": the certificate has no common name (CN)");
  return name;
}

bool tls_identity::verify_signature(std::string_view cert_pem,
                                    std::string_view data,
                                    std::string_view signature) noexcept {
  try {
    auto chain = parse_certificates(cert_pem, "peer certificate");
    EVP_PKEY* key = X509_get0_pubkey(chain.front().get());
    md_ctx_ptr ctx{EVP_MD_CTX_new()};
    bool ok =
        key != nullptr && ctx &&
        EVP_DigestVerifyInit_ex(ctx.get(), nullptr, digest_name_for(key),
                                nullptr, nullptr, key, nullptr) == 1 &&
        EVP_DigestVerify(
            ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
            signature.size(),
            reinterpret_cast<const unsigned char*>(data.data()),
            data.size()) == 1;
    ERR_clear_error();
    return ok;
  } catch (...) {
    ERR_clear_error();
    return false;
  }
}

std::chrono::system_clock::time_point tls_identity::not_after() const {
  return time_point_of(X509_get0_notAfter(state_->certificate.get()));
}

// --- issuing
// ----------------------------------------------------------------------

issued make_ca(const std::string& common_name, int days) {
  check_issue_arguments(common_name, days);
  auto key = new_p256_key();
  auto cert = issue(common_name, key.get(), nullptr, key.get(), days,
                    {{NID_basic_constraints, "critical,CA:TRUE"},
                     {NID_key_usage, "critical,keyCertSign,cRLSign"},
                     {NID_subject_key_identifier, "hash"}});
  return {pem_of(cert.get()), private_key_pem(key.get())};
}

issued make_node_cert(const issued& ca, const std::string& common_name,
                      const std::vector<std::string>& ip_or_dns_sans,
                      int days) {
  check_issue_arguments(common_name, days);
  const std::string ca_origin = "CA certificate";
  auto ca_cert = std::move(parse_certificates(ca.cert_pem, ca_origin).front());
  auto ca_key = parse_private_key(ca.key_pem, "CA key", {});
  if (EVP_PKEY_eq(X509_get0_pubkey(ca_cert.get()), ca_key.get()) != 1) {
    ERR_clear_error();
    throw tls_error("CA key: does not match the " + describe(ca_cert.get()));
  }
  if (X509_check_ca(ca_cert.get()) == 0)
    throw tls_error(ca_origin + ": " + describe(ca_cert.get()) +
                    " is not a CA certificate");
  std::vector<std::pair<int, std::string>> extensions{
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
      {NID_ext_key_usage, "serverAuth,clientAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid:always"}};
  if (auto names = subject_alt_names(ip_or_dns_sans); !names.empty())
    extensions.emplace_back(NID_subject_alt_name, names);
  auto key = new_p256_key();
  auto cert = issue(common_name, key.get(), ca_cert.get(), ca_key.get(), days,
                    extensions);
  return {pem_of(cert.get()), private_key_pem(key.get())};
}

} // namespace keymesh::cluster
