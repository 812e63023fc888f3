// Tokens from keymesh verify with an independent implementation (PyJWT over
// the `cryptography` package), for every signing algorithm, using only the
// JWKS the node serves.
#define CAF_SUITE interop
#include "caf/test/unit_test.hpp"

#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

using namespace keymesh::test;
using nlohmann::json;

namespace {

/// A node started in DIR with ENV added, its HTTP port and admin key.
struct interop_node {
  interop_node(temp_dir& dir, std::map<std::string, std::string> env) {
    env["KEYMESH_HTTP_LISTEN"] = "127.0.0.1:0";
    env["KEYMESH_NODE_DATA_DIR"] = dir.file("data");
    proc = std::make_unique<process>(
      std::vector<std::string>{keymesh_binary(), "serve"}, env,
      dir.file("node.log"));
    auto port_text = proc->wait_for_log(R"(ready: http://127\.0\.0\.1:(\d+))");
    CAF_REQUIRE(port_text.has_value());
    port = static_cast<uint16_t>(std::stoi(*port_text));
    auto keys = read_file(dir.file("data/admin.keys"));
    admin = keys.substr(keys.rfind('\n', keys.size() - 2) + 1);
    admin.pop_back();
  }

  /// A token for SUB with audience "rp".
  std::string issue(const std::string& sub) {
    auto res = request(port, "POST", "/api/tokens",
                       json{{"sub", sub}, {"aud", "rp"}}.dump(),
                       "Authorization: Bearer " + admin + "\r\n");
    CAF_REQUIRE_EQUAL(res.result_int(), 201u);
    return json::parse(res.body())["token"].get<std::string>();
  }

  std::unique_ptr<process> proc;
  uint16_t port = 0;
  std::string admin;
};

} // namespace

CAF_TEST(pyjwt_verifies_tokens_of_every_algorithm) {
  auto source_dir = std::getenv("KEYMESH_SOURCE_DIR");
  CAF_REQUIRE(source_dir != nullptr);
  auto script = std::string{source_dir} + "/tests/integration/pyjwt_verify.py";
  for (std::string alg : {"ES256", "EdDSA", "RS256"}) {
    CAF_MESSAGE("algorithm " << alg);
    temp_dir dir;
    interop_node node{dir,
                      {{"KEYMESH_KEYS_ALGORITHM", alg},
                       {"KEYMESH_KEYS_ISSUER", "https://interop.test"}}};
    auto port = node.port;
    auto token = node.issue("interop-" + alg);
    auto url = "http://127.0.0.1:" + std::to_string(port)
               + "/.well-known/jwks.json";
    auto [code, out] = run_command({"/usr/bin/python3", script, url, token,
                                    alg, "https://interop.test", "rp"},
                                   {}, dir.file("pyjwt.log"));
    CAF_CHECK_EQUAL(code, 0);
    CAF_CHECK_EQUAL(out, "interop-" + alg + "\n");
    // A wrong audience fails there too: the check is real.
    auto [bad_code, bad_out] = run_command(
      {"/usr/bin/python3", script, url, token, alg, "https://interop.test",
       "someone-else"},
      {}, dir.file("pyjwt-bad.log"));
    CAF_CHECK_EQUAL(bad_code, 1);
    CAF_CHECK(bad_out.find("InvalidAudienceError") != std::string::npos);
    CAF_CHECK_EQUAL(node.proc->stop(SIGTERM), std::optional<int>{0});
  }
}

CAF_TEST(pyjwt_finds_the_keys_through_the_discovery_metadata) {
  // A node with no settings: its tokens carry its derived issuer, and a
  // relying party configured with nothing but the node's address verifies
  // them through /.well-known/openid-configuration.
  auto source_dir = std::getenv("KEYMESH_SOURCE_DIR");
  CAF_REQUIRE(source_dir != nullptr);
  auto script = std::string{source_dir}
                + "/tests/integration/pyjwt_discover.py";
  temp_dir dir;
  interop_node node{dir, {}};
  auto port = node.port;
  auto token = node.issue("discover-me");
  auto base = "http://127.0.0.1:" + std::to_string(port);
  auto [code, out] = run_command({"/usr/bin/python3", script, base, token,
                                  "rp", "urn:keymesh:keymesh"},
                                 {}, dir.file("pyjwt.log"));
  CAF_CHECK_EQUAL(code, 0);
  CAF_CHECK_EQUAL(out, "urn:keymesh:keymesh discover-me\n");
  auto [bad_code, bad_out] = run_command(
    {"/usr/bin/python3", script, base, token, "someone-else"}, {},
    dir.file("pyjwt-bad.log"));
  CAF_CHECK_EQUAL(bad_code, 1);
  CAF_CHECK(bad_out.find("InvalidAudienceError") != std::string::npos);
  CAF_CHECK_EQUAL(node.proc->stop(SIGTERM), std::optional<int>{0});
}
