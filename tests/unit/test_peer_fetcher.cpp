// Static-peer federation: the JWKS validation, the blocking HTTP client
// against real servers on loopback (plain, TLS, slow, oversized, gone), the
// fetcher's polling logic, and the actor end to end with a real federation.
#define CAF_SUITE peer_fetcher
#include "caf/test/unit_test.hpp"

#include <atomic>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <nlohmann/json.hpp>

#include "actors/federation.hpp"
#include "actors/keystore.hpp"
#include "actors/peer_fetcher.hpp"
#include "cluster/certs.hpp"
#include "net/http_client.hpp"
#include "http/server.hpp"
#include "common/base64url.hpp"
#include "jose/key.hpp"
#include "jose/key_set.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace keymesh;
using nlohmann::json;

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// -- keys and documents -------------------------------------------------------

const jose::key& es256_key() {
  static const auto k = jose::key::generate(jose::algorithm::es256);
  return k;
}

const jose::key& eddsa_key() {
  static const auto k = jose::key::generate(jose::algorithm::eddsa);
  return k;
}

const jose::key& rs256_key() {
  static const auto k = jose::key::generate(jose::algorithm::rs256);
  return k;
}

/// A JWKS entry as a Stoke peer publishes it.
json entry(const jose::key& k, const std::string& kid, bool with_alg = true) {
  auto j = k.public_jwk();
  j["kid"] = kid;
  j["use"] = "sig";
  if (with_alg)
    j["alg"] = std::string{jose::to_string(k.alg())};
  return j;
}

std::string jwks(const std::vector<json>& entries) {
  json doc = json::object();
  doc["keys"] = entries;
  return doc.dump();
}

bool mentions(const std::vector<std::string>& problems, const std::string& s) {
  for (auto& p : problems)
    if (p.find(s) != std::string::npos)
      return true;
  return false;
}

/// Poll every 10 ms: these waits are short.
template <class Predicate>
bool eventually(Predicate ok, milliseconds limit) {
  return test::eventually(ok, limit, milliseconds{10});
}

// -- a small server on 127.0.0.1 that serves canned responses -----------------

struct canned_response {
  unsigned status = 200;
  std::string body;
  /// Sent as ETag; a request whose If-None-Match equals it gets a 304.
  std::string etag;
  milliseconds delay{0};
  bool chunked = false;
};

class test_server {
public:
  /// Plain HTTP, or TLS with the certificate and key in TLS. PORT 0 picks a
  /// free port.
  explicit test_server(const cluster::issued* tls = nullptr,
                       uint16_t port = 0) {
    if (tls != nullptr) {
      tls_ = std::make_unique<ssl::context>(ssl::context::tls_server);
      tls_->use_certificate_chain(asio::buffer(tls->cert_pem));
      tls_->use_private_key(asio::buffer(tls->key_pem), ssl::context::pem);
    }
    tcp::endpoint endpoint{asio::ip::make_address("127.0.0.1"), port};
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread{[this] { ioc_.run(); }};
  }

  ~test_server() {
    stop();
  }

  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  /// Stops serving; the port refuses connections afterwards.
  void stop() {
    if (!thread_.joinable())
      return;
    ioc_.stop();
    thread_.join();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

  uint16_t port() const {
    return port_;
  }

  std::string url(const std::string& host = "127.0.0.1") const {
    return std::string{tls_ ? "https" : "http"} + "://" + host + ":" +
           std::to_string(port_);
  }

  void serve(canned_response next) {
    std::lock_guard<std::mutex> guard{mutex_};
    canned_ = std::move(next);
  }

  size_t requests() const {
    return requests_.load();
  }

  std::vector<std::string> if_none_match_seen() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return if_none_match_;
  }

  std::string last_target() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return last_target_;
  }

private:
  using response = bhttp::response<bhttp::string_body>;

  template<class Stream>
  struct session : std::enable_shared_from_this<session<Stream>> {
    template<class... Args>
    explicit session(test_server& owner, Args&&... args)
        : owner(owner)
        , stream(std::forward<Args>(args)...)
        , timer(stream.get_executor()) {}

    void start() {
      if constexpr (std::is_same_v<Stream, tcp::socket>) {
        read();
      } else {
        stream.async_handshake(
            ssl::stream_base::server,
            [self = this->shared_from_this()](boost::system::error_code ec) {
              if (!ec)
                self->read();
            });
      }
    }

    void read() {
      bhttp::async_read(stream, buffer, req,
                        [self = this->shared_from_this()](
                            boost::system::error_code ec, size_t) {
                          if (!ec)
                            self->respond();
                        });
    }

    void respond() {
      auto canned = owner.record(req);
      res.version(11);
      res.keep_alive(false);
      if (!canned.etag.empty() &&
          req[bhttp::field::if_none_match] == canned.etag) {
        res.result(bhttp::status::not_modified);
        res.set(bhttp::field::etag, canned.etag);
      } else {
        res.result(canned.status);
        if (!canned.etag.empty())
          res.set(bhttp::field::etag, canned.etag);
        res.set(bhttp::field::content_type, "application/json");
        res.body() = canned.body;
        if (canned.chunked)
          res.chunked(true);
        else
          res.prepare_payload();
      }
      timer.expires_after(canned.delay);
      timer.async_wait([self = this->shared_from_this()](
                           boost::system::error_code) {
        bhttp::async_write(self->stream, self->res,
                           [self](boost::system::error_code, size_t) {
                             boost::system::error_code ignored;
                             beast::get_lowest_layer(self->stream)
                                 .shutdown(tcp::socket::shutdown_send, ignored);
                           });
      });
    }

    test_server& owner;
    Stream stream;
    asio::steady_timer timer;
    beast::flat_buffer buffer;
    bhttp::request<bhttp::string_body> req;
    response res;
  };

  canned_response record(const bhttp::request<bhttp::string_body>& req) {
    std::lock_guard<std::mutex> guard{mutex_};
    ++requests_;
    last_target_ = std::string{req.target()};
    if (auto inm = req.find(bhttp::field::if_none_match); inm != req.end())
      if_none_match_.emplace_back(inm->value());
    return canned_;
  }

  void accept() {
    acceptor_.async_accept(
        [this](boost::system::error_code ec, tcp::socket socket) {
          if (ec)
            return;
          if (tls_)
            std::make_shared<session<ssl::stream<tcp::socket>>>(
                *this, std::move(socket), *tls_)
                ->start();
          else
            std::make_shared<session<tcp::socket>>(*this, std::move(socket))
                ->start();
          accept();
        });
  }

  std::unique_ptr<ssl::context> tls_;
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_{ioc_};
  uint16_t port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  canned_response canned_;
  std::atomic<size_t> requests_{0};
  std::vector<std::string> if_none_match_;
  std::string last_target_;
};

/// A port nothing listens on (bound, then released).
uint16_t closed_port() {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
  return acceptor.local_endpoint().port();
}

net::fetch_options quick(milliseconds timeout = milliseconds{2000}) {
  net::fetch_options opts;
  opts.timeout = timeout;
  return opts;
}

/// A CA, a certificate for SANS signed by it, and the CA in a file.
struct tls_setup {
  test::temp_dir dir;
  cluster::issued ca = cluster::make_ca("peer-test-ca", 1);
  cluster::issued cert;
  std::string ca_file = dir.file("ca.pem");

  explicit tls_setup(const std::vector<std::string>& sans)
      : cert(cluster::make_node_cert(ca, "peer", sans, 1)) {
    std::ofstream{ca_file} << ca.cert_pem;
  }
};

// -- actors -------------------------------------------------------------------

struct actor_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<key_snapshot_slot> slot =
      std::make_shared<key_snapshot_slot>();
  federation_actor fed;
  std::vector<peer_fetcher_actor> fetchers;

  actor_fixture() {
    add_message_types(cfg);
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    fed = spawn_federation(*sys, "node-e2e", slot);
  }

  ~actor_fixture() {
    for (auto& f : fetchers)
      caf::anon_send_exit(f, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(fed, caf::exit_reason::user_shutdown);
  }

  peer_fetcher_actor fetch_from(const std::string& base_url,
                        const std::string& ca = {}) {
    peer_fetcher_options opts;
    opts.base_url = base_url;
    opts.refresh = std::chrono::seconds{1};
    opts.fetch.timeout = milliseconds{500};
    opts.fetch.ca_file = ca;
    fetchers.push_back(spawn_peer_fetcher(*sys, opts, fed));
    return fetchers.back();
  }

  bool published(const std::string& kid) const {
    auto snap = slot->load();
    return snap && snap->keys.find(kid) != nullptr;
  }
};

} // namespace

// -- parse_peer_jwks ----------------------------------------------------------

CAF_TEST(a_good_set_of_every_algorithm_is_taken) {
  std::vector<std::string> problems;
  auto keys = parse_peer_jwks(
      jwks({entry(es256_key(), "p-0"), entry(eddsa_key(), "p-1"),
            entry(rs256_key(), "p-2")}),
      problems);
  CAF_CHECK(problems.empty());
  CAF_REQUIRE_EQUAL(keys.size(), 3u);
  CAF_CHECK_EQUAL(keys[0].kid, "p-0");
  CAF_CHECK_EQUAL(keys[0].alg, "ES256");
  CAF_CHECK_EQUAL(keys[1].alg, "EdDSA");
  CAF_CHECK_EQUAL(keys[2].alg, "RS256");
  CAF_CHECK_EQUAL(keys[0].jwk, es256_key().public_jwk().dump());
  CAF_CHECK_EQUAL(keys[2].jwk, rs256_key().public_jwk().dump());
  for (auto& k : keys) {
    CAF_CHECK_EQUAL(k.sign_from, 0);
    CAF_CHECK_EQUAL(k.retire_at, 0);
    CAF_CHECK_EQUAL(k.expire_at, 0);
  }
}

CAF_TEST(alg_is_derived_when_absent_and_use_may_be_absent) {
  auto e = entry(eddsa_key(), "e", false);
  e.erase("use");
  std::vector<std::string> problems;
  auto keys = parse_peer_jwks(
      jwks({entry(es256_key(), "a", false), entry(rs256_key(), "r", false), e}),
      problems);
  CAF_CHECK(problems.empty());
  CAF_REQUIRE_EQUAL(keys.size(), 3u);
  CAF_CHECK_EQUAL(keys[0].alg, "ES256");
  CAF_CHECK_EQUAL(keys[1].alg, "RS256");
  CAF_CHECK_EQUAL(keys[2].alg, "EdDSA");
}

CAF_TEST(keymesh_own_jwks_is_accepted) {
  jose::key_set set;
  set.add("node-a-0", es256_key());
  set.add("node-a-1", eddsa_key());
  std::vector<std::string> problems;
  auto keys = parse_peer_jwks(set.to_jwks().dump(), problems);
  CAF_CHECK(problems.empty());
  CAF_CHECK_EQUAL(keys.size(), 2u);
}

CAF_TEST(a_key_with_private_members_is_refused) {
  auto priv = es256_key().private_jwk();
  priv["kid"] = "leaky";
  std::vector<std::string> problems;
  auto keys =
      parse_peer_jwks(jwks({priv, entry(eddsa_key(), "fine")}), problems);
  CAF_REQUIRE_EQUAL(keys.size(), 1u);
  CAF_CHECK_EQUAL(keys[0].kid, "fine");
  CAF_REQUIRE_EQUAL(problems.size(), 1u);
  CAF_CHECK(mentions(problems, "leaky"));
  CAF_CHECK(mentions(problems, "private"));
  // Symmetric keys ("k") are private material too.
  auto oct = json{{"kty", "oct"}, {"k", "c2VjcmV0"}, {"kid", "sym"}};
  problems.clear();
  CAF_CHECK(parse_peer_jwks(jwks({oct}), problems).empty());
  CAF_CHECK(mentions(problems, "sym"));
}

CAF_TEST(colliding_kids_are_all_refused) {
  std::vector<std::string> problems;
  auto keys = parse_peer_jwks(
      jwks({entry(es256_key(), "twin"), entry(eddsa_key(), "single"),
            entry(rs256_key(), "twin")}),
      problems);
  CAF_REQUIRE_EQUAL(keys.size(), 1u);
  CAF_CHECK_EQUAL(keys[0].kid, "single");
  CAF_CHECK(mentions(problems, "kid collision"));
  CAF_CHECK(mentions(problems, "twin"));
}

CAF_TEST(alg_must_match_the_key_type) {
  auto lying = entry(es256_key(), "lying");
  lying["alg"] = "RS256";
  auto odd = entry(es256_key(), "odd");
  odd["alg"] = "HS256";
  auto numeric = entry(es256_key(), "numeric");
  numeric["alg"] = 7;
  std::vector<std::string> problems;
  auto keys = parse_peer_jwks(jwks({lying, odd, numeric}), problems);
  CAF_CHECK(keys.empty());
  CAF_CHECK_EQUAL(problems.size(), 3u);
  CAF_CHECK(mentions(problems, "does not match"));
  CAF_CHECK(mentions(problems, "not supported"));
}

CAF_TEST(bad_kid_and_use_are_refused) {
  auto no_kid = es256_key().public_jwk();
  auto empty_kid = entry(es256_key(), "");
  auto long_kid = entry(es256_key(), std::string(257, 'k'));
  auto max_kid = entry(es256_key(), std::string(256, 'm'));
  auto numeric_kid = entry(es256_key(), "x");
  numeric_kid["kid"] = 5;
  auto enc = entry(eddsa_key(), "enc");
  enc["use"] = "enc";
  std::vector<std::string> problems;
  auto keys = parse_peer_jwks(
      jwks({no_kid, empty_kid, long_kid, max_kid, numeric_kid, enc}), problems);
  CAF_REQUIRE_EQUAL(keys.size(), 1u);
  CAF_CHECK_EQUAL(keys[0].kid, std::string(256, 'm'));
  CAF_CHECK_EQUAL(problems.size(), 5u);
  CAF_CHECK(mentions(problems, "\"use\""));
}

CAF_TEST(garbage_is_not_a_jwks) {
  for (std::string body : {"", "garbage", "<html></html>", "[]", "\"keys\"",
                           "{\"keys\":[]", R"({"keys":[],"keys":[]})"}) {
    std::vector<std::string> problems;
    CAF_CHECK(parse_peer_jwks(body, problems).empty());
    CAF_CHECK_EQUAL(problems.size(), 1u);
  }
}

CAF_TEST(a_document_without_a_keys_array_is_not_a_jwks) {
  for (std::string body :
       {"{}", R"({"keys":{}})", R"({"keys":"x"})", R"({"Keys":[]})"}) {
    std::vector<std::string> problems;
    CAF_CHECK(parse_peer_jwks(body, problems).empty());
    CAF_CHECK(mentions(problems, "no \"keys\" array"));
  }
}

CAF_TEST(nested_junk_is_refused_around_good_keys) {
  // Too deep to parse at all.
  std::string deep =
      R"({"keys":)" + std::string(100, '[') + std::string(100, ']') + "}";
  std::vector<std::string> problems;
  CAF_CHECK(parse_peer_jwks(deep, problems).empty());
  CAF_CHECK_EQUAL(problems.size(), 1u);
  // Junk entries next to a good key: the good key stays.
  auto junk = json::array({1, "two", json::array({json::array({3})}),
                           json{{"kid", json{{"nested", true}}}}, nullptr,
                           json{{"kid", "x"}, {"kty", "EC"}}});
  auto entries = std::vector<json>(junk.begin(), junk.end());
  entries.push_back(entry(eddsa_key(), "good"));
  problems.clear();
  auto keys = parse_peer_jwks(jwks(entries), problems);
  CAF_REQUIRE_EQUAL(keys.size(), 1u);
  CAF_CHECK_EQUAL(keys[0].kid, "good");
  CAF_CHECK_EQUAL(problems.size(), 6u);
  // A repeated member inside a key makes the whole document unreadable.
  problems.clear();
  auto dup = R"({"keys":[{"kid":"a","kid":"b","kty":"OKP"}]})";
  CAF_CHECK(parse_peer_jwks(dup, problems).empty());
  CAF_CHECK_EQUAL(problems.size(), 1u);
}

// -- URLs ---------------------------------------------------------------------

CAF_TEST(urls_are_parsed_strictly) {
  std::string error;
  auto u = net::parse_url("HTTPS://Peer.Example.com/base/api?x=1", error);
  CAF_REQUIRE(u);
  CAF_CHECK(u->tls);
  CAF_CHECK_EQUAL(u->host, "peer.example.com");
  CAF_CHECK_EQUAL(u->port, 443u);
  CAF_CHECK_EQUAL(u->target, "/base/api?x=1");
  CAF_CHECK_EQUAL(u->host_header, "peer.example.com");
  u = net::parse_url("http://[::1]:8080", error);
  CAF_REQUIRE(u);
  CAF_CHECK_EQUAL(u->host, "::1");
  CAF_CHECK_EQUAL(u->port, 8080u);
  CAF_CHECK_EQUAL(u->target, "/");
  CAF_CHECK_EQUAL(u->host_header, "[::1]:8080");
  u = net::parse_url("http://10.0.0.1?local=true", error);
  CAF_REQUIRE(u);
  CAF_CHECK_EQUAL(u->target, "/?local=true");
  CAF_CHECK_EQUAL(u->port, 80u);
  for (auto bad : {"",
                   "ftp://host/",
                   "http//host",
                   "http://",
                   "http:///path",
                   "http://user@host/",
                   "http://host:0/",
                   "http://host:65536/",
                   "http://host:/",
                   "http://host:80x/",
                   "http://[::1/",
                   "http://::1/",
                   "http://[fe80::1%25eth0]/",
                   "http://[::1]x/",
                   "http://256.1.1.1/",
                   "http://1.2.3/",
                   "http://-bad.example/",
                   "http://a..b/",
                   "http://host/a b",
                   "http://host/#frag",
                   "http://h\xc3\xa9st/",
                   "http://ho_st/"}) {
    error.clear();
    CAF_CHECK(!net::parse_url(bad, error));
    CAF_CHECK(!error.empty());
  }
  auto res = net::http_get("gopher://x/", "", quick());
  CAF_CHECK_EQUAL(res.status, 0);
  CAF_CHECK(res.error.find("invalid URL") != std::string::npos);
}

CAF_TEST(the_polled_url_handles_trailing_slashes) {
  CAF_CHECK_EQUAL(peer_keys_url("https://p.example"),
                  "https://p.example/api/pkeys?local=true");
  CAF_CHECK_EQUAL(peer_keys_url("https://p.example/"),
                  "https://p.example/api/pkeys?local=true");
  CAF_CHECK_EQUAL(peer_keys_url("https://p.example/stoke//"),
                  "https://p.example/stoke/api/pkeys?local=true");
  peer_fetcher_options opts;
  opts.base_url = "https://p.example/";
  CAF_CHECK(validate(opts).empty());
  opts.base_url = "https://p.example/?x=1";
  CAF_CHECK(!validate(opts).empty());
  opts.base_url = "p.example";
  CAF_CHECK(!validate(opts).empty());
  opts.base_url = "http://p.example";
  opts.refresh = std::chrono::seconds{0};
  CAF_CHECK(!validate(opts).empty());
}

// -- http_get against real servers
// ----------------------------------------------

CAF_TEST(get_returns_body_and_etag_and_honours_if_none_match) {
  test_server server;
  server.serve({200, R"({"keys":[]})", "\"v1\""});
  auto res =
      net::http_get(server.url() + "/api/pkeys?local=true", "", quick());
  CAF_CHECK_EQUAL(res.error, "");
  CAF_CHECK_EQUAL(res.status, 200);
  CAF_CHECK_EQUAL(res.body, R"({"keys":[]})");
  CAF_CHECK_EQUAL(res.etag, "\"v1\"");
  CAF_CHECK_EQUAL(server.last_target(), "/api/pkeys?local=true");
  auto cached = net::http_get(server.url() + "/x", "\"v1\"", quick());
  CAF_CHECK_EQUAL(cached.error, "");
  CAF_CHECK_EQUAL(cached.status, 304);
  CAF_CHECK_EQUAL(cached.body, "");
  CAF_CHECK_EQUAL(cached.etag, "\"v1\"");
  // Error statuses and redirects are answers, not errors; not followed.
  server.serve({500, "boom", ""});
  auto failed = net::http_get(server.url(), "", quick());
  CAF_CHECK_EQUAL(failed.status, 500);
  CAF_CHECK_EQUAL(failed.error, "");
  server.serve({302, "", ""});
  CAF_CHECK_EQUAL(net::http_get(server.url(), "", quick()).status, 302);
  CAF_CHECK_EQUAL(server.requests(), 4u);
  // Header injection through If-None-Match is refused before connecting.
  auto injected = net::http_get(server.url(), "\"a\"\r\nX-Evil: 1", quick());
  CAF_CHECK(!injected.error.empty());
  CAF_CHECK_EQUAL(server.requests(), 4u);
}

CAF_TEST(a_slow_server_times_out) {
  test_server server;
  server.serve({200, "{}", "", milliseconds{3000}});
  auto started = steady_clock::now();
  auto res = net::http_get(server.url(), "", quick(milliseconds{300}));
  auto took = steady_clock::now() - started;
  CAF_CHECK_EQUAL(res.status, 0);
  CAF_CHECK(res.error.find("timed out") != std::string::npos);
  CAF_CHECK(took >= milliseconds{250});
  CAF_CHECK(took < milliseconds{1500});
}

CAF_TEST(bodies_over_the_limit_are_refused_while_reading) {
  test_server server;
  auto opts = quick();
  opts.max_body_bytes = 1000;
  server.serve({200, std::string(1000, 'x'), ""});
  CAF_CHECK_EQUAL(net::http_get(server.url(), "", opts).status, 200);
  server.serve({200, std::string(1001, 'x'), ""});
  auto res = net::http_get(server.url(), "", opts);
  CAF_CHECK_EQUAL(res.status, 0);
  CAF_CHECK(res.error.find("exceeds 1000 bytes") != std::string::npos);
  // Without a Content-Length the limit holds as the chunks arrive.
  server.serve({200, std::string(3 << 20, 'x'), "", milliseconds{0}, true});
  res = net::http_get(server.url(), "", quick());
  CAF_CHECK_EQUAL(res.status, 0);
  CAF_CHECK(res.error.find("exceeds") != std::string::npos);
  CAF_CHECK(res.body.empty());
}

CAF_TEST(a_closed_port_refuses) {
  auto port = closed_port();
  auto res = net::http_get("http://127.0.0.1:" + std::to_string(port) + "/",
                            "", quick());
  CAF_CHECK_EQUAL(res.status, 0);
  CAF_CHECK(res.error.find("cannot connect to 127.0.0.1:" +
                           std::to_string(port)) != std::string::npos);
  CAF_CHECK(res.error.find("refused") != std::string::npos);
}

CAF_TEST(https_verifies_the_chain_and_the_host) {
  tls_setup setup{{"127.0.0.1", "localhost"}};
  test_server server{&setup.cert};
  server.serve({200, "{}", "\"t\""});
  auto opts = quick();
  opts.ca_file = setup.ca_file;
  auto res = net::http_get(server.url() + "/api/pkeys", "", opts);
  CAF_CHECK_EQUAL(res.error, "");
  CAF_CHECK_EQUAL(res.status, 200);
  CAF_CHECK_EQUAL(res.etag, "\"t\"");
  // By name: SNI and a dNSName check.
  res = net::http_get(server.url("localhost"), "", opts);
  CAF_CHECK_EQUAL(res.error, "");
  CAF_CHECK_EQUAL(res.status, 200);
  // Another CA does not vouch for the server.
  tls_setup other{{"127.0.0.1"}};
  auto wrong = opts;
  wrong.ca_file = other.ca_file;
  res = net::http_get(server.url(), "", wrong);
  CAF_CHECK_EQUAL(res.status, 0);
  CAF_CHECK(res.error.find("TLS handshake") != std::string::npos);
  CAF_CHECK(res.error.find("certificate verify failed") != std::string::npos);
  // Nor does the system store.
  res = net::http_get(server.url(), "", quick());
  CAF_CHECK_EQUAL(res.status, 0);
  CAF_CHECK(res.error.find("TLS handshake") != std::string::npos);
  // A missing CA file is reported as such.
  auto missing = opts;
  missing.ca_file = setup.dir.file("nope.pem");
  res = net::http_get(server.url(), "", missing);
  CAF_CHECK(res.error.find("CA file") != std::string::npos);
}

CAF_TEST(https_refuses_a_certificate_for_another_host) {
  // The certificate names localhost only: 127.0.0.1 does not match.
  tls_setup by_name{{"localhost"}};
  test_server named{&by_name.cert};
  named.serve({200, "{}", ""});
  auto opts = quick();
  opts.ca_file = by_name.ca_file;
  auto res = net::http_get(named.url(), "", opts);
  CAF_CHECK_EQUAL(res.status, 0);
  CAF_CHECK(res.error.find("mismatch") != std::string::npos);
  // The certificate names 127.0.0.1 only: localhost does not match.
  tls_setup by_ip{{"127.0.0.1"}};
  test_server numbered{&by_ip.cert};
  numbered.serve({200, "{}", ""});
  opts.ca_file = by_ip.ca_file;
  res = net::http_get(numbered.url("localhost"), "", opts);
  CAF_CHECK_EQUAL(res.status, 0);
  CAF_CHECK(res.error.find("mismatch") != std::string::npos);
}

// -- the fetcher's polling logic, without an actor
// ---------------------------------

CAF_TEST(the_state_keeps_the_last_good_keys_and_backs_off) {
  peer_fetcher_state st;
  peer_fetcher_options opts;
  opts.base_url = "http://peer.example/";
  opts.refresh = std::chrono::seconds{10};
  st.configure(opts);
  CAF_CHECK_EQUAL(st.url(), "http://peer.example/api/pkeys?local=true");
  CAF_CHECK_EQUAL(st.next_delay(0), milliseconds{10'000});
  CAF_CHECK_EQUAL(st.next_delay(1), milliseconds{11'000});
  auto good = jwks({entry(es256_key(), "p-0")});
  auto first = st.apply({200, good, "\"e1\"", ""});
  CAF_REQUIRE(first);
  CAF_CHECK_EQUAL(first->origin, "http://peer.example/");
  CAF_CHECK_EQUAL(first->keys.size(), 1u);
  CAF_CHECK_EQUAL(st.etag(), "\"e1\"");
  // The same keys again (a peer without ETags): nothing to announce.
  CAF_CHECK(!st.apply({200, good, "\"e2\"", ""}));
  CAF_CHECK_EQUAL(st.etag(), "\"e2\"");
  CAF_CHECK(!st.apply({304, "", "\"e2\"", ""}));
  // Failures of every kind keep the keys and the ETag, and back off.
  std::vector<net::fetch_result> failures{
      {0, "", "", "cannot connect"},
      {500, "", "", ""},
      {200, "garbage", "\"g\"", ""},
      {200, R"({"keys":[]})", "\"n\"", ""},
      {200, jwks({es256_key().private_jwk()}), "\"p\"", ""}};
  std::vector<long> expected{10, 20, 40, 80, 80};
  for (size_t i = 0; i < failures.size(); ++i) {
    CAF_CHECK(!st.apply(failures[i]));
    CAF_CHECK_EQUAL(st.failures(), i + 1);
    CAF_CHECK_EQUAL(st.next_delay(0).count(), expected[i] * 1000);
    CAF_CHECK_EQUAL(st.announcement().keys.size(), 1u);
    CAF_CHECK_EQUAL(st.etag(), "\"e2\"");
  }
  CAF_CHECK_EQUAL(st.next_delay(1), milliseconds{88'000});
  // Recovery with a new set announces it with a higher serial.
  auto next = st.apply({200, jwks({entry(eddsa_key(), "p-1")}), "\"e3\"", ""});
  CAF_REQUIRE(next);
  CAF_CHECK_EQUAL(st.failures(), 0u);
  CAF_CHECK(next->serial > first->serial);
  CAF_CHECK_EQUAL(next->keys.at(0).kid, "p-1");
  CAF_CHECK_EQUAL(st.next_delay(0), milliseconds{10'000});
}

CAF_TEST(a_peer_answering_the_same_keys_again_costs_no_import) {
  peer_fetcher_state st;
  peer_fetcher_options opts;
  opts.base_url = "https://peer.example";
  st.configure(opts);
  auto a = entry(es256_key(), "p-0");
  auto b = entry(rs256_key(), "p-1");
  CAF_REQUIRE(st.apply({200, jwks({a, b}), "", ""}));
  CAF_CHECK_EQUAL(st.imports(), 2u);
  // No ETag, the same keys: no import, nothing announced.
  for (int i = 0; i < 5; ++i)
    CAF_CHECK(!st.apply({200, jwks({a, b}), "", ""}));
  CAF_CHECK_EQUAL(st.imports(), 2u);
  // A key under a new kid is the same key: taken without an import.
  auto renamed = st.apply({200, jwks({a, entry(rs256_key(), "p-9")}), "", ""});
  CAF_REQUIRE(renamed);
  CAF_CHECK_EQUAL(renamed->keys.at(1).kid, "p-9");
  CAF_CHECK_EQUAL(st.imports(), 2u);
  // Only a new key is imported.
  CAF_CHECK(st.apply({200, jwks({a, entry(eddsa_key(), "p-2")}), "", ""}));
  CAF_CHECK_EQUAL(st.imports(), 3u);
  // A known key with private members is still refused.
  auto leaked = rs256_key().private_jwk();
  leaked["kid"] = "p-1";
  std::vector<std::string> problems;
  imported_keys known;
  known.emplace(*jose::thumbprint_of(leaked),
                public_key_info{"p-1", "RS256", rs256_key().public_jwk().dump()});
  CAF_CHECK(parse_peer_jwks(jwks({leaked}), problems, &known).empty());
  CAF_CHECK(mentions(problems, "private"));
}

CAF_TEST(a_peer_cannot_make_this_node_import_without_bound) {
  std::vector<std::string> problems;
  // At most 64 keys of one peer.
  std::vector<json> many;
  for (int i = 0; i < 70; ++i)
    many.push_back(entry(es256_key(), "k-" + std::to_string(i)));
  CAF_CHECK_EQUAL(parse_peer_jwks(jwks(many), problems).size(), 64u);
  CAF_CHECK(mentions(problems, "more than 64 keys"));
  // RSA moduli above 4096 bits are refused before any use.
  problems.clear();
  auto big = entry(rs256_key(), "big");
  big["n"] = keymesh::base64url_encode(std::string(1024, '\xff'));
  CAF_CHECK(parse_peer_jwks(jwks({big}), problems).empty());
  CAF_CHECK(mentions(problems, "4096 bits"));
  // An Ed25519 key of small order is refused.
  problems.clear();
  auto weak = entry(eddsa_key(), "weak");
  weak["x"] = keymesh::base64url_encode(std::string(1, '\x01')
                                     + std::string(31, '\0'));
  CAF_CHECK(parse_peer_jwks(jwks({weak}), problems).empty());
  CAF_CHECK(mentions(problems, "small order"));
  // A peer's answer is read up to 256 KiB.
  peer_fetcher_state st;
  peer_fetcher_options opts;
  opts.base_url = "https://peer.example";
  st.configure(opts);
  CAF_CHECK_EQUAL(st.options().fetch.max_body_bytes, 256u * 1024u);
}

CAF_TEST(a_304_without_a_cached_etag_is_a_failure) {
  peer_fetcher_state st;
  peer_fetcher_options opts;
  opts.base_url = "http://peer.example";
  st.configure(opts);
  CAF_CHECK(!st.apply({304, "", "", ""}));
  CAF_CHECK_EQUAL(st.failures(), 1u);
}

// -- the actor end to end
// ----------------------------------------------------------

CAF_TEST_FIXTURE_SCOPE(peer_fetcher_actor_tests, actor_fixture)

CAF_TEST(the_snapshot_follows_the_peer_and_survives_its_failures) {
  auto a = entry(es256_key(), "peer-a-0");
  auto b = entry(eddsa_key(), "peer-b-0");
  auto server = std::make_unique<test_server>();
  auto port = server->port();
  server->serve({200, jwks({a}), "\"a\""});
  fetch_from(server->url() + "/");
  CAF_REQUIRE(
      eventually([&] { return published("peer-a-0"); }, milliseconds{3000}));
  // Garbage: the keys stay.
  server->serve({200, "garbage", "\"g\""});
  CAF_CHECK(
      eventually([&] { return server->requests() >= 2; }, milliseconds{2500}));
  std::this_thread::sleep_for(milliseconds{100});
  CAF_CHECK(published("peer-a-0"));
  // The poll was conditional on the last good ETag.
  auto conditional = server->if_none_match_seen();
  CAF_REQUIRE(!conditional.empty());
  CAF_CHECK_EQUAL(conditional.front(), "\"a\"");
  // Gone: the keys stay.
  server.reset();
  std::this_thread::sleep_for(milliseconds{1300});
  CAF_CHECK(published("peer-a-0"));
  // Back with a new key set: the snapshot follows.
  server = std::make_unique<test_server>(nullptr, port);
  server->serve({200, jwks({b}), "\"b\""});
  CAF_CHECK(
      eventually([&] { return published("peer-b-0"); }, milliseconds{4000}));
  CAF_CHECK(!published("peer-a-0"));
}

CAF_TEST(a_keymesh_node_is_a_stoke_compatible_peer) {
  // A keymesh node in-process: keystore, federation and the HTTP front.
  test::temp_dir dir;
  auto node_slot = std::make_shared<key_snapshot_slot>();
  auto node_fed = spawn_federation(*sys, "node-p", node_slot);
  config::settings settings;
  auto ks_opts = keystore_options::from_settings(settings, "node-p");
  CAF_REQUIRE(ks_opts);
  auto ks = spawn_keystore(*sys, *ks_opts, node_fed);
  CAF_REQUIRE(ks);
  CAF_REQUIRE(eventually(
      [&] {
        auto snap = node_slot->load();
        return snap && snap->local_key_count == 2;
      },
      milliseconds{5000}));
  std::ofstream{dir.file("admin.keys")} << "peer-fetcher-admin-key-0123\n";
  http::bridge_pool bridge{*sys, 1};
  http::api_context ctx;
  ctx.settings = settings;
  ctx.keystore = *ks;
  ctx.keys = node_slot;
  ctx.admin = std::make_shared<http::admin_auth>(
      http::admin_auth::load(dir.file("admin.keys")));
  ctx.status = std::make_shared<node_status>();
  ctx.status->http_listening = true;
  ctx.bridge = &bridge;
  http::api handler{std::move(ctx)};
  http::server server{handler, {}, 1};
  auto base =
      "http://127.0.0.1:" + std::to_string(server.listen("127.0.0.1", 0));
  server.start();
  // 200 with an ETag, then 304 for it.
  auto res = net::http_get(peer_keys_url(base), "", quick());
  CAF_CHECK_EQUAL(res.status, 200);
  CAF_CHECK_EQUAL(res.etag, node_slot->load()->etag_local);
  std::vector<std::string> problems;
  auto keys = parse_peer_jwks(res.body, problems);
  CAF_CHECK(problems.empty());
  CAF_REQUIRE_EQUAL(keys.size(), 2u);
  auto cached = net::http_get(peer_keys_url(base), res.etag, quick());
  CAF_CHECK_EQUAL(cached.status, 304);
  CAF_CHECK(cached.body.empty());
  // A fetcher brings the node's keys into this fixture's federation.
  fetch_from(base);
  CAF_CHECK(eventually(
      [&] { return published(keys[0].kid) && published(keys[1].kid); },
      milliseconds{3000}));
  for (auto& f : fetchers)
    caf::anon_send_exit(f, caf::exit_reason::user_shutdown);
  server.stop();
  bridge.stop();
  caf::anon_send_exit(*ks, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(node_fed, caf::exit_reason::user_shutdown);
}

CAF_TEST(bad_options_stop_the_actor) {
  auto fetcher = fetch_from("not a url");
  caf::scoped_actor self{*sys};
  self->monitor(fetcher);
  bool down = false;
  self->receive(
      [&](caf::down_msg& msg) {
        down = true;
        CAF_CHECK(msg.reason != caf::none);
      },
      caf::after(std::chrono::seconds{2}) >> [] {});
  CAF_CHECK(down);
}

CAF_TEST_FIXTURE_SCOPE_END()
