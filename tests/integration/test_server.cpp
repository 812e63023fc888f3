// The real binary on a loopback port, exercised with a real HTTP client:
// every endpoint, bad input of every kind, restart and shutdown.
#define CAF_SUITE server
#include "caf/test/unit_test.hpp"

#include <ctime>
#include <filesystem>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/base64url.hpp"
#include "jose/key.hpp"

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/single_node.hpp"
#include "support/temp_dir.hpp"

using namespace keymesh::test;
using nlohmann::json;

namespace {

std::string error_code(const response& res) {
  return json::parse(res.body()).value("error", "");
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(server_tests, node_fixture)

CAF_TEST(health_jwks_issue_and_verify) {
  CAF_CHECK_EQUAL(request(port, "GET", "/healthz/live").result_int(), 200u);
  auto ready = request(port, "GET", "/healthz/ready");
  CAF_CHECK_EQUAL(ready.result_int(), 200u);
  auto jwks = request(port, "GET", "/api/pkeys");
  CAF_REQUIRE_EQUAL(jwks.result_int(), 200u);
  auto keys = at(json::parse(jwks.body()), "keys");
  CAF_CHECK_EQUAL(keys.size(), 2u);
  auto etag = std::string{jwks[bhttp::field::etag]};
  auto cached = request(port, "GET", "/.well-known/jwks.json", "",
                        "If-None-Match: " + etag + "\r\n");
  CAF_CHECK_EQUAL(cached.result_int(), 304u);
  auto out = issue({{"sub", "alice"}, {"aud", "web"}, {"ttl", 300}});
  auto token = out["token"].get<std::string>();
  auto v = verify(token);
  CAF_CHECK_EQUAL(v["active"], true);
  CAF_CHECK_EQUAL(v["claims"]["sub"], "alice");
  CAF_CHECK_EQUAL(v["claims"]["iss"], "https://keymesh.test");
  CAF_CHECK_EQUAL(v["kid"], out["kid"]);
  // The JWKS holds the kid the token names.
  bool found = false;
  for (auto& k : keys)
    found = found || k["kid"] == out["kid"];
  CAF_CHECK(found);
  auto metrics = request(port, "GET", "/metrics");
  CAF_CHECK(metrics.body().find("keymesh_tokens_signed_total{result=\"ok\"} 1")
            != std::string::npos);
  // Secrets never reach the log.
  auto log = proc->log();
  CAF_CHECK(log.find(token) == std::string::npos);
  CAF_CHECK(log.find(admin_key) == std::string::npos);
  CAF_CHECK(log.find("admin.keys") != std::string::npos);
}

CAF_TEST(a_token_never_makes_the_node_fetch_a_key) {
  // A listener where the token's jku and x5u point: nobody may knock.
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  CAF_REQUIRE_EQUAL(::bind(listener, reinterpret_cast<sockaddr*>(&addr),
                           sizeof(addr)),
                    0);
  CAF_REQUIRE_EQUAL(::listen(listener, 8), 0);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  auto url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto evil = keymesh::jose::key::generate(keymesh::jose::algorithm::es256);
  auto kid = at(at(json::parse(request(port, "GET", "/api/pkeys").body()),
                   "keys")[0],
                "kid")
               .get<std::string>();
  auto now = static_cast<int64_t>(::time(nullptr));
  json claims{{"sub", "mallory"}, {"iat", now}, {"exp", now + 300},
              {"iss", "https://keymesh.test"}};
  auto jwk = evil.public_jwk();
  jwk["kid"] = "evil";
  for (auto& header :
       std::vector<json>{{{"alg", "ES256"}, {"kid", kid}, {"jku", url}},
                         {{"alg", "ES256"}, {"kid", "evil"}, {"jku", url},
                          {"jwk", jwk}},
                         {{"alg", "ES256"}, {"kid", kid}, {"x5u", url}}}) {
    auto input = keymesh::base64url_encode(header.dump()) + "."
                 + keymesh::base64url_encode(claims.dump());
    auto token = input + "." + keymesh::base64url_encode(evil.sign(input));
    auto v = verify(token);
    CAF_CHECK_EQUAL(at(v, "active"), false);
    CAF_CHECK(at(v, "reason") == "bad_signature"
              || at(v, "reason") == "unknown_kid");
  }
  pollfd p{listener, POLLIN, 0};
  CAF_CHECK_EQUAL(::poll(&p, 1, 1000), 0);
  ::close(listener);
}

CAF_TEST(keep_alive_serves_many_requests_on_one_connection) {
  connection c{port};
  for (int i = 0; i < 5; ++i) {
    c.send_raw(make_request("GET", "/healthz/live"));
    CAF_CHECK_EQUAL(c.read_response().result_int(), 200u);
  }
  // Pipelined requests are answered in order.
  c.send_raw(make_request("GET", "/healthz/live")
             + make_request("GET", "/api/nothing"));
  CAF_CHECK_EQUAL(c.read_response().result_int(), 200u);
  CAF_CHECK_EQUAL(c.read_response().result_int(), 404u);
  // HEAD gets GET's header fields and no body; the connection stays usable.
  c.send_raw(make_request("HEAD", "/api/pkeys"));
  auto head = c.read_response(std::chrono::seconds{10}, true);
  CAF_CHECK_EQUAL(head.result_int(), 200u);
  CAF_CHECK(std::stoul(std::string{head[bhttp::field::content_length]}) > 100);
  CAF_CHECK(head.body().empty());
  c.send_raw(make_request("GET", "/healthz/live"));
  auto after = c.read_response();
  CAF_CHECK_EQUAL(after.result_int(), 200u);
  CAF_CHECK_EQUAL(after.body(), R"({"status":"alive"})");
}

CAF_TEST(bad_input_gets_clear_errors_and_the_node_survives) {
  auto malformed = request(port, "POST", "/api/tokens", "{\"sub\":", bearer());
  CAF_CHECK_EQUAL(malformed.result_int(), 400u);
  CAF_CHECK_EQUAL(error_code(malformed), "invalid_request");
  auto wrong_type = request(port, "POST", "/api/tokens", "sub=alice",
                            bearer(), "application/x-www-form-urlencoded");
  CAF_CHECK_EQUAL(wrong_type.result_int(), 415u);
  auto too_big = request(port, "POST", "/api/verify",
                         std::string(70 * 1024, 'x'));
  CAF_CHECK_EQUAL(too_big.result_int(), 413u);
  CAF_CHECK_EQUAL(error_code(too_big), "payload_too_large");
  auto huge_header = request(port, "GET", "/healthz/live", "",
                             "X-Big: " + std::string(10000, 'a') + "\r\n");
  CAF_CHECK_EQUAL(huge_header.result_int(), 431u);
  std::string many;
  for (int i = 0; i < 60; ++i)
    many += "X-H" + std::to_string(i) + ": v\r\n";
  CAF_CHECK_EQUAL(request(port, "GET", "/healthz/live", "", many).result_int(),
                  431u);
  {
    connection c{port};
    c.send_raw("NOT AN HTTP REQUEST\r\n\r\n");
    CAF_CHECK_EQUAL(c.read_response().result_int(), 400u);
  }
  auto token = issue({{"sub", "bob"}})["token"].get<std::string>();
  CAF_CHECK_EQUAL(at(verify(token.substr(0, token.size() - 10)), "reason"),
                  "bad_signature");
  CAF_CHECK_EQUAL(at(verify(token.substr(0, token.rfind('.'))), "reason"),
                  "malformed");
  // A forged token: another token's (valid JSON) payload under this one's
  // header and signature.
  auto other = issue({{"sub", "mallory"}})["token"].get<std::string>();
  auto payload_of = [](const std::string& t) {
    auto a = t.find('.');
    return t.substr(a + 1, t.find('.', a + 1) - a - 1);
  };
  auto first_dot = token.find('.');
  auto forged = token.substr(0, first_dot + 1) + payload_of(other)
                + token.substr(token.find('.', first_dot + 1));
  CAF_CHECK_EQUAL(at(verify(forged), "reason"), "bad_signature");
  auto wrong_admin = request(port, "POST", "/api/tokens", R"({"sub":"x"})",
                             "Authorization: Bearer wrong-key-wrong-key\r\n");
  CAF_CHECK_EQUAL(wrong_admin.result_int(), 403u);
  auto no_admin = request(port, "POST", "/api/tokens", R"({"sub":"x"})");
  CAF_CHECK_EQUAL(no_admin.result_int(), 401u);
  auto not_allowed = request(port, "PUT", "/api/pkeys", "{}");
  CAF_CHECK_EQUAL(not_allowed.result_int(), 405u);
  CAF_CHECK_EQUAL(std::string{not_allowed[bhttp::field::allow]}, "GET, HEAD");
  // After all of that the node still answers.
  CAF_CHECK_EQUAL(request(port, "GET", "/healthz/ready").result_int(), 200u);
}

CAF_TEST(a_connection_that_sends_nothing_is_closed) {
  connection silent{port};
  auto started = std::chrono::steady_clock::now();
  CAF_CHECK(silent.wait_closed(std::chrono::seconds{5}));
  auto waited = std::chrono::steady_clock::now() - started;
  CAF_CHECK(waited >= std::chrono::milliseconds{900});
  // A request that stops halfway is closed as well.
  connection partial{port};
  partial.send_raw("POST /api/verify HTTP/1.1\r\nContent-Length: 100\r\n\r\n{");
  CAF_CHECK(partial.wait_closed(std::chrono::seconds{5}));
  CAF_CHECK_EQUAL(request(port, "GET", "/healthz/live").result_int(), 200u);
}

CAF_TEST(restart_keeps_identity_keys_and_tokens) {
  auto first = issue({{"sub", "carol"}});
  auto instance = trim_line(read_file(dir.file("data/instance_id")));
  CAF_CHECK(first["kid"].get<std::string>().rfind(instance + "-", 0) == 0);
  CAF_CHECK_EQUAL(proc->stop(SIGTERM), std::optional<int>{0});
  CAF_CHECK(proc->log().find("stopped") != std::string::npos);
  // With no settings at all, the node made a sealing key of its own,
  // readable by its owner only, and kept its signing keys sealed with it.
  struct stat key_file {};
  CAF_REQUIRE_EQUAL(::stat(dir.file("data/signing_keys.key").c_str(),
                           &key_file),
                    0);
  CAF_CHECK_EQUAL(key_file.st_mode & 0777, 0600u);
  start();
  CAF_CHECK_EQUAL(trim_line(read_file(dir.file("data/instance_id"))),
                  instance);
  // Its tokens outlive the restart.
  CAF_CHECK_EQUAL(at(verify(first["token"]), "active"), true);
  auto second = issue({{"sub", "carol"}});
  CAF_CHECK_EQUAL(at(verify(second["token"]), "active"), true);
  // Sealed keys lost: new keys, and no key id used again.
  CAF_CHECK_EQUAL(proc->stop(SIGTERM), std::optional<int>{0});
  std::filesystem::remove(dir.file("data/signing_keys.sealed"));
  start();
  auto third = issue({{"sub", "carol"}});
  auto seq = [](const std::string& kid) {
    return std::stoull(kid.substr(kid.rfind('-') + 1));
  };
  CAF_CHECK(seq(third["kid"]) > seq(second["kid"]) + 1);
  CAF_CHECK_EQUAL(at(verify(first["token"]), "reason"), "unknown_kid");
  CAF_CHECK_EQUAL(at(verify(third["token"]), "active"), true);
}

CAF_TEST(json_logs_are_one_object_per_line) {
  proc->stop(SIGTERM);
  start({{"KEYMESH_LOG_FORMAT", "json"}});
  request(port, "GET", "/healthz/live");
  proc->stop(SIGTERM);
  auto log = proc->log();
  size_t json_lines = 0;
  std::istringstream in{log};
  for (std::string line; std::getline(in, line);) {
    CAF_REQUIRE(!line.empty() && line.front() == '{');
    auto j = json::parse(line);
    CAF_CHECK(j.contains("ts") && j.contains("level") && j.contains("msg"));
    ++json_lines;
  }
  CAF_CHECK(json_lines >= 2);
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST(cli_config_check_version_and_help) {
  temp_dir dir;
  auto bin = keymesh_binary();
  {
    std::ofstream good{dir.file("good.yaml")};
    good << "http:\n  listen: 127.0.0.1:9999\nkeys:\n  algorithm: EdDSA\n"
            "cluster:\n  tls:\n    passphrase: hunter2-secret\n";
  }
  {
    std::ofstream bad{dir.file("bad.yaml")};
    bad << "htp:\n  listen: x\nkeys:\n  algorithm: ES512\n";
  }
  auto [ok_code, ok_out] = run_command({bin, "config", "check",
                                        dir.file("good.yaml")},
                                       {}, dir.file("good.log"));
  CAF_CHECK_EQUAL(ok_code, 0);
  CAF_CHECK(ok_out.find("127.0.0.1:9999") != std::string::npos);
  CAF_CHECK(ok_out.find("EdDSA") != std::string::npos);
  CAF_CHECK(ok_out.find("hunter2-secret") == std::string::npos);
  auto [bad_code, bad_out] = run_command({bin, "config", "check",
                                          dir.file("bad.yaml")},
                                         {}, dir.file("bad.log"));
  CAF_CHECK_EQUAL(bad_code, 1);
  CAF_CHECK(bad_out.find("did you mean") != std::string::npos);
  CAF_CHECK(bad_out.find("ES512") != std::string::npos);
  auto [missing_code, missing_out] = run_command(
    {bin, "config", "check", dir.file("nope.yaml")}, {}, dir.file("m.log"));
  CAF_CHECK_EQUAL(missing_code, 1);
  auto [env_code, env_out] = run_command(
    {bin, "config", "check", dir.file("good.yaml")},
    {{"KEYMESH_HTTP_LISTN", "127.0.0.1:1"}}, dir.file("env.log"));
  CAF_CHECK_EQUAL(env_code, 1);
  CAF_CHECK(env_out.find("KEYMESH_HTTP_LISTEN") != std::string::npos);
  auto [v_code, v_out] = run_command({bin, "version"}, {}, dir.file("v.log"));
  CAF_CHECK_EQUAL(v_code, 0);
  CAF_CHECK(v_out.rfind("keymesh ", 0) == 0);
  // The program says which allocator it runs on: jemalloc when built with
  // it (the default), and the check that it really is in use.
#ifdef KEYMESH_EXPECT_JEMALLOC
  CAF_CHECK(v_out.find("\nallocator: jemalloc 5.") != std::string::npos);
#else
  CAF_CHECK(v_out.find("\nallocator: glibc") != std::string::npos);
#endif
  for (auto cmd : {"serve", "config", "version", "genclust", "admin"}) {
    auto [h_code, h_out] = run_command({bin, cmd, "--help"}, {},
                                       dir.file(std::string{cmd} + ".h.log"));
    CAF_CHECK_EQUAL(h_code, 0);
    CAF_CHECK(h_out.find("usage: keymesh") != std::string::npos);
  }
  // genclust writes configs that pass config check, and will not overwrite.
  auto [g_code, g_out] = run_command({bin, "genclust", "--nodes", "2", "--out",
                                      dir.file("cluster")},
                                     {}, dir.file("g.log"));
  CAF_CHECK_EQUAL(g_code, 0);
  CAF_CHECK(g_out.find("node-2/keymesh.yaml") != std::string::npos);
  for (auto n : {"node-1", "node-2"}) {
    auto [c_code, c_out] = run_command(
      {bin, "config", "check",
       dir.file(std::string{"cluster/"} + n + "/keymesh.yaml")},
      {}, dir.file(std::string{n} + ".check.log"));
    CAF_CHECK_EQUAL(c_code, 0);
    CAF_CHECK(c_out.find(std::string{"instance_id: "} + n)
              != std::string::npos);
  }
  auto [again_code, again_out] = run_command(
    {bin, "genclust", "--nodes", "2", "--out", dir.file("cluster")}, {},
    dir.file("g2.log"));
  CAF_CHECK_EQUAL(again_code, 1);
  CAF_CHECK(again_out.find("already exists") != std::string::npos);
  auto [zero_code, zero_out] = run_command({bin, "genclust", "--nodes", "0",
                                            "--out", dir.file("x")},
                                           {}, dir.file("g3.log"));
  CAF_CHECK_EQUAL(zero_code, 2);
  CAF_CHECK(zero_out.find("--nodes needs a number from 1 to 64")
            != std::string::npos);
  auto [u_code, u_out] = run_command({bin, "frobnicate"}, {},
                                     dir.file("u.log"));
  CAF_CHECK_EQUAL(u_code, 2);
  // A bad config stops serve with exit code 1 before anything listens.
  auto [s_code, s_out] = run_command({bin, "serve", "--config",
                                      dir.file("bad.yaml")},
                                     {}, dir.file("s.log"));
  CAF_CHECK_EQUAL(s_code, 1);
}
