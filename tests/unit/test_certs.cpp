#define CAF_SUITE cluster.certs
#include "caf/test/unit_test.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "cluster/certs.hpp"
#include "cluster/genclust.hpp"
#include "config/loader.hpp"
#include "support/temp_dir.hpp"

using namespace keymesh::cluster;
using namespace std::chrono_literals;
using keymesh::test::temp_dir;

namespace {

std::string read(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, {}};
}

void write(const std::string& path, const std::string& text) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << text;
}

unsigned permissions_of(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0)
    return 0;
  return info.st_mode & 07777;
}

/// A copy: common_name() refers into the identity, which may be a temporary.
std::string name_of(const tls_identity& identity) {
  return identity.common_name();
}

/// The message of the tls_error `action` throws; "" (and a failed check) if
/// it throws nothing or something else.
std::string tls_error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const tls_error& e) {
    return e.what();
  } catch (const std::exception& e) {
    CAF_FAIL("expected tls_error, got: " << e.what());
  }
  CAF_FAIL("expected tls_error, nothing was thrown");
  return {};
}

/// True if `message` contains every part; prints it when it does not.
bool mentions(const std::string& message,
              std::initializer_list<std::string_view> parts) {
  for (auto part : parts) {
    if (message.find(part) == std::string::npos) {
      CAF_TEST_PRINT_ERROR("\"" << message << "\" does not mention \"" << part
                                << "\"");
      return false;
    }
  }
  return true;
}

/// `key_pem` encrypted with AES-256-CBC under `passphrase`, as PKCS#8 PEM.
std::string encrypted_key(const std::string& key_pem,
                          const std::string& passphrase) {
  std::unique_ptr<BIO, decltype(&BIO_free)> in{
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())),
      BIO_free};
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{
      PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr),
      EVP_PKEY_free};
  std::unique_ptr<BIO, decltype(&BIO_free)> out{BIO_new(BIO_s_mem()), BIO_free};
  CAF_REQUIRE(key && out);
  CAF_REQUIRE_EQUAL(PEM_write_bio_PKCS8PrivateKey(
                        out.get(), key.get(), EVP_aes_256_cbc(),
                        passphrase.data(), static_cast<int>(passphrase.size()),
                        nullptr, nullptr),
                    1);
  char* data = nullptr;
  long size = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

struct fixture {
  temp_dir dir;
  std::vector<std::string> written;

  fixture() {
    genclust_options opts;
    opts.nodes = 3;
    opts.out_dir = dir.file("cluster");
    written = genclust(opts);
  }

  std::string ca() const {
    return dir.file("cluster/ca.pem");
  }

  std::string cert(int node) const {
    return dir.file("cluster/node-" + std::to_string(node) + "/cert.pem");
  }

  std::string key(int node) const {
    return dir.file("cluster/node-" + std::to_string(node) + "/key.pem");
  }

  std::string yaml(int node) const {
    return dir.file("cluster/node-" + std::to_string(node) + "/keymesh.yaml");
  }

  tls_identity identity(int node) const {
    return tls_identity::load(ca(), cert(node), key(node));
  }

  /// The generated CA, as make_node_cert wants it.
  issued cluster_ca() const {
    return {read(ca()), read(dir.file("cluster/ca.key"))};
  }

  /// Writes `node` as cert and key files named after `name`; returns the
  /// cert path.
  std::string store(const issued& node, const std::string& name) const {
    write(dir.file(name + ".pem"), node.cert_pem);
    write(dir.file(name + ".key"), node.key_pem);
    return dir.file(name + ".pem");
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(certs_tests, fixture)

CAF_TEST(genclust writes a loadable identity per node) {
  CAF_CHECK_EQUAL(written.size(), 3u + 3u * 3u);
  for (const auto& path : written)
    CAF_CHECK(std::filesystem::is_regular_file(path));
  for (int node = 1; node <= 3; ++node) {
    auto identity = this->identity(node);
    CAF_CHECK_EQUAL(identity.common_name(), "node-" + std::to_string(node));
    CAF_CHECK_EQUAL(permissions_of(key(node)), 0600u);
    auto now = std::chrono::system_clock::now();
    CAF_CHECK(identity.not_after() > now + 24h * 800);
    CAF_CHECK(identity.not_after() < now + 24h * 830);
    auto pem = identity.certificate_pem();
    CAF_CHECK_EQUAL(pem.find("PRIVATE"), std::string::npos);
    CAF_CHECK_EQUAL(identity.verify_peer_certificate(pem),
                    identity.common_name());
  }
  CAF_CHECK_EQUAL(permissions_of(dir.file("cluster/ca.key")), 0600u);
  // One secrets key for all: 64 hex digits, private.
  CAF_CHECK_EQUAL(permissions_of(dir.file("cluster/secrets.key")), 0600u);
  auto secrets = read(dir.file("cluster/secrets.key"));
  CAF_CHECK_EQUAL(secrets.size(), 65u);
}

CAF_TEST(generated configs load with the config loader) {
  for (int node = 1; node <= 3; ++node) {
    auto result = keymesh::config::load(yaml(node), {});
    for (const auto& error : result.errors)
      CAF_TEST_PRINT_ERROR(error);
    CAF_REQUIRE(result.ok());
    const auto& cluster = result.value.cluster;
    CAF_CHECK(cluster.enabled);
    CAF_CHECK_EQUAL(cluster.instance_id, "node-" + std::to_string(node));
    CAF_CHECK_EQUAL(cluster.seeds.size(), 3u);
    CAF_CHECK(std::find(cluster.seeds.begin(), cluster.seeds.end(),
                        cluster.listen) != cluster.seeds.end());
    CAF_CHECK(std::filesystem::path{result.value.node.data_dir}.is_absolute());
    // The paths it names are the generated files, and they load.
    CAF_CHECK(std::filesystem::equivalent(cluster.tls.ca, ca()));
    CAF_CHECK(std::filesystem::equivalent(cluster.tls.cert, cert(node)));
    CAF_CHECK(std::filesystem::equivalent(cluster.tls.key, key(node)));
    auto identity =
        tls_identity::load(cluster.tls.ca, cluster.tls.cert, cluster.tls.key);
    CAF_CHECK_EQUAL(identity.common_name(), cluster.instance_id);
  }
  // Every node listens on its own ports.
  auto first = keymesh::config::load(yaml(1), {}).value;
  auto second = keymesh::config::load(yaml(2), {}).value;
  CAF_CHECK_NOT_EQUAL(first.http.listen, second.http.listen);
  CAF_CHECK_NOT_EQUAL(first.cluster.listen, second.cluster.listen);
  CAF_CHECK(first.cluster.seeds == second.cluster.seeds);
  // Every node seals secret rings with the same key.
  CAF_CHECK(!first.secrets.encryption_key_file.empty());
  CAF_CHECK_EQUAL(first.secrets.encryption_key_file,
                  second.secrets.encryption_key_file);
}

CAF_TEST(a peer certificate from the same CA verifies and yields its CN) {
  auto one = identity(1);
  auto two = identity(2);
  CAF_CHECK_EQUAL(one.verify_peer_certificate(two.certificate_pem()), "node-2");
  CAF_CHECK_EQUAL(two.verify_peer_certificate(read(cert(3))), "node-3");
}

CAF_TEST(a certificate from an unrelated CA is refused) {
  auto other_ca = make_ca("other cluster CA", 30);
  auto stranger = make_node_cert(other_ca, "node-1", {"127.0.0.1"}, 30);
  auto message = tls_error_of(
      [&] { identity(1).verify_peer_certificate(stranger.cert_pem); });
  CAF_CHECK(mentions(
      message, {"peer certificate", "node-1", "does not verify", "issuer"}));
  auto path = store(stranger, "stranger");
  message = tls_error_of(
      [&] { tls_identity::load(ca(), path, dir.file("stranger.key")); });
  CAF_CHECK(mentions(message, {path, ca(), "does not verify"}));
  // Nor is a CA certificate in place of a node certificate.
  message =
      tls_error_of([&] { identity(1).verify_peer_certificate(read(ca())); });
  CAF_CHECK(!message.empty());
}

CAF_TEST(a key that does not match the certificate is refused) {
  auto message =
      tls_error_of([&] { tls_identity::load(ca(), cert(1), key(2)); });
  CAF_CHECK(mentions(message, {key(2), "does not match", "node-1"}));
  CAF_CHECK_EQUAL(message.find("BEGIN"), std::string::npos);
}

CAF_TEST(missing and garbage files are refused naming the file) {
  auto missing = dir.file("missing.pem");
  CAF_CHECK(mentions(
      tls_error_of([&] { tls_identity::load(missing, cert(1), key(1)); }),
      {missing, "does not exist"}));
  CAF_CHECK(
      mentions(tls_error_of([&] { tls_identity::load(ca(), missing, key(1)); }),
               {missing, "does not exist"}));
  CAF_CHECK(mentions(
      tls_error_of([&] { tls_identity::load(ca(), cert(1), missing); }),
      {missing, "does not exist"}));
  CAF_CHECK(mentions(
      tls_error_of([&] { tls_identity::load(ca(), dir.path(), key(1)); }),
      {dir.path(), "not a regular file"}));

  auto garbage = dir.file("garbage.pem");
  write(garbage, "this is not a certificate\n");
  CAF_CHECK(mentions(
      tls_error_of([&] { tls_identity::load(garbage, cert(1), key(1)); }),
      {garbage, "no PEM certificate"}));
  CAF_CHECK(mentions(
      tls_error_of([&] { tls_identity::load(ca(), cert(1), garbage); }),
      {garbage, "no PEM private key"}));

  // A certificate block whose body is damaged.
  auto damaged = read(cert(1));
  auto body = damaged.find('\n') + 10;
  damaged.replace(body, 20, std::string(20, 'A'));
  auto damaged_path = dir.file("damaged.pem");
  write(damaged_path, damaged);
  CAF_CHECK(mentions(
      tls_error_of([&] { tls_identity::load(ca(), damaged_path, key(1)); }),
      {damaged_path, "cannot be parsed"}));
  CAF_CHECK(!tls_error_of([&] {
               identity(1).verify_peer_certificate("garbage");
             }).empty());
}

CAF_TEST(an expired certificate is refused) {
  auto expired = make_node_cert(cluster_ca(), "node-4", {"127.0.0.1"}, -1);
  auto path = store(expired, "expired");
  auto message = tls_error_of(
      [&] { tls_identity::load(ca(), path, dir.file("expired.key")); });
  CAF_CHECK(mentions(message, {path, "node-4", "expired"}));
  message = tls_error_of(
      [&] { identity(1).verify_peer_certificate(expired.cert_pem); });
  CAF_CHECK(mentions(message, {"peer certificate", "expired"}));
  // So is any certificate issued by an expired CA.
  auto old_ca = make_ca("old CA", -1);
  write(dir.file("old-ca.pem"), old_ca.cert_pem);
  auto child =
      store(make_node_cert(old_ca, "node-5", {"localhost"}, 30), "child");
  message = tls_error_of([&] {
    tls_identity::load(dir.file("old-ca.pem"), child, dir.file("child.key"));
  });
  CAF_CHECK(mentions(message, {child, "expired", "old CA"}));
}

CAF_TEST(a combined PEM with certificate and key loads) {
  auto combined = dir.file("combined.pem");
  write(combined, read(cert(2)) + read(key(2)));
  CAF_CHECK_EQUAL(name_of(tls_identity::load(ca(), combined, "")), "node-2");
  CAF_CHECK_EQUAL(name_of(tls_identity::load(ca(), combined, combined)),
                  "node-2");
  // Key first works too; a certificate file without a key does not.
  write(combined, read(key(2)) + read(cert(2)));
  CAF_CHECK_EQUAL(name_of(tls_identity::load(ca(), combined, "")), "node-2");
  CAF_CHECK(
      mentions(tls_error_of([&] { tls_identity::load(ca(), cert(2), ""); }),
               {cert(2), "no PEM private key"}));
}

CAF_TEST(an encrypted key needs its passphrase) {
  auto encrypted = dir.file("encrypted.key");
  write(encrypted, encrypted_key(read(key(3)), "correct horse"));
  CAF_CHECK_EQUAL(
      name_of(tls_identity::load(ca(), cert(3), encrypted, "correct horse")),
      "node-3");
  CAF_CHECK(mentions(
      tls_error_of([&] { tls_identity::load(ca(), cert(3), encrypted); }),
      {encrypted, "encrypted", "no passphrase"}));
  auto message = tls_error_of(
      [&] { tls_identity::load(ca(), cert(3), encrypted, "wrong horse"); });
  CAF_CHECK(mentions(message, {encrypted, "passphrase"}));
  CAF_CHECK_EQUAL(message.find("wrong horse"), std::string::npos);
}

CAF_TEST(signatures verify only with the signing node certificate) {
  auto one = identity(1);
  auto two = identity(2);
  std::string challenge = "nonce 1234 from node-2 to node-1";
  auto signature = one.sign(challenge);
  CAF_CHECK(!signature.empty());
  CAF_CHECK(tls_identity::verify_signature(one.certificate_pem(), challenge,
                                           signature));
  CAF_CHECK(!tls_identity::verify_signature(two.certificate_pem(), challenge,
                                            signature));
  auto tampered = challenge;
  tampered.back() = '2';
  CAF_CHECK(!tls_identity::verify_signature(one.certificate_pem(), tampered,
                                            signature));
  auto bad_signature = signature;
  bad_signature[bad_signature.size() / 2] ^= 0x01;
  CAF_CHECK(!tls_identity::verify_signature(one.certificate_pem(), challenge,
                                            bad_signature));
  CAF_CHECK(
      !tls_identity::verify_signature(one.certificate_pem(), challenge, ""));
  CAF_CHECK(!tls_identity::verify_signature("garbage", challenge, signature));
}

CAF_TEST(genclust refuses to overwrite unless forced) {
  auto before = read(ca());
  genclust_options opts;
  opts.nodes = 3;
  opts.out_dir = dir.file("cluster");
  try {
    genclust(opts);
    CAF_FAIL("genclust overwrote existing files");
  } catch (const std::runtime_error& e) {
    CAF_CHECK(mentions(e.what(), {"already exists"}));
  }
  CAF_CHECK_EQUAL(read(ca()), before);
  opts.force = true;
  CAF_CHECK_EQUAL(genclust(opts).size(), written.size());
  CAF_CHECK_NOT_EQUAL(read(ca()), before);
  CAF_CHECK_EQUAL(name_of(identity(1)), "node-1");
  CAF_CHECK_EQUAL(permissions_of(key(1)), 0600u);
}

CAF_TEST(genclust refuses bad options) {
  auto refuses = [&](genclust_options opts,
                     std::initializer_list<std::string_view> parts) {
    if (opts.out_dir.empty())
      opts.out_dir = dir.file("bad");
    try {
      genclust(opts);
    } catch (const std::runtime_error& e) {
      return mentions(e.what(), parts);
    }
    CAF_TEST_PRINT_ERROR("genclust accepted bad options");
    return false;
  };
  genclust_options opts;
  opts.nodes = 0;
  CAF_CHECK(refuses(opts, {"nodes"}));
  opts.nodes = 65;
  CAF_CHECK(refuses(opts, {"nodes"}));
  opts = {};
  opts.host = "0.0.0.0";
  CAF_CHECK(refuses(opts, {"wildcard"}));
  opts = {};
  opts.http_base_port = 65534;
  CAF_CHECK(refuses(opts, {"ports"}));
  opts = {};
  opts.http_base_port = 7402;
  CAF_CHECK(refuses(opts, {"overlap"}));
  opts = {};
  opts.host = "not a host!";
  CAF_CHECK(refuses(opts, {"not a host!"}));
  opts = {};
  opts.out_dir = dir.file("cluster/ca.pem/sub");
  CAF_CHECK(refuses(opts, {"cannot create directory"}));
  CAF_CHECK(!std::filesystem::exists(dir.file("bad")));
}

CAF_TEST(genclust handles IPv6 hosts) {
  genclust_options opts;
  opts.nodes = 2;
  opts.host = "::1";
  opts.out_dir = dir.file("v6");
  auto files = genclust(opts);
  auto result = keymesh::config::load(dir.file("v6/node-2/keymesh.yaml"), {});
  for (const auto& error : result.errors)
    CAF_TEST_PRINT_ERROR(error);
  CAF_REQUIRE(result.ok());
  CAF_CHECK_EQUAL(result.value.cluster.listen.front(), '[');
  const auto& tls = result.value.cluster.tls;
  CAF_CHECK_EQUAL(name_of(tls_identity::load(tls.ca, tls.cert, tls.key)),
                  "node-2");
}

CAF_TEST_FIXTURE_SCOPE_END()
