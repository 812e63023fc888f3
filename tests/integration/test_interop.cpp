// Tokens from keymesh verify with an independent implementation (PyJWT over
// the `cryptography` package), for every signing algorithm, using only the
// JWKS the node serves.
#define CAF_SUITE interop
#include "caf/test/unit_test.hpp"

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

using namespace keymesh::test;
using nlohmann::json;

CAF_TEST(pyjwt_verifies_tokens_of_every_algorithm) {
  auto source_dir = std::getenv("KEYMESH_SOURCE_DIR");
  CAF_REQUIRE(source_dir != nullptr);
  auto script = std::string{source_dir} + "/tests/integration/pyjwt_verify.py";
  for (std::string alg : {"ES256", "EdDSA", "RS256"}) {
    CAF_MESSAGE("algorithm " << alg);
    temp_dir dir;
    process node{{keymesh_binary(), "serve"},
                 {{"KEYMESH_HTTP_LISTEN", "127.0.0.1:0"},
                  {"KEYMESH_NODE_DATA_DIR", dir.file("data")},
                  {"KEYMESH_KEYS_ALGORITHM", alg},
                  {"KEYMESH_KEYS_ISSUER", "https://interop.test"}},
                 dir.file("node.log")};
    auto port_text = node.wait_for_log(R"(ready: http://127\.0\.0\.1:(\d+))");
    CAF_REQUIRE(port_text.has_value());
    auto port = static_cast<uint16_t>(std::stoi(*port_text));
    auto keys = read_file(dir.file("data/admin.keys"));
    auto admin = keys.substr(keys.rfind('\n', keys.size() - 2) + 1);
    admin.pop_back();
    auto res = request(port, "POST", "/api/tokens",
                       json{{"sub", "interop-" + alg}, {"aud", "rp"}}.dump(),
                       "Authorization: Bearer " + admin + "\r\n");
    CAF_REQUIRE_EQUAL(res.result_int(), 201u);
    auto token = json::parse(res.body())["token"].get<std::string>();
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
    CAF_CHECK_EQUAL(node.stop(SIGTERM), std::optional<int>{0});
  }
}
