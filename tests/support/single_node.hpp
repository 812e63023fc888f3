// One keymesh process on a loopback port in a fresh data directory, for
// the integration suites (include after caf/test/unit_test.hpp).
#pragma once

#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace keymesh::test {

using nlohmann::json;

/// A copy of J[KEY] (CAF's check macros keep references to temporaries).
inline json at(const json& j, const char* key) {
  return j.contains(key) ? j.at(key) : json{};
}

inline std::string trim_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
    s.pop_back();
  return s;
}

/// A running node in a fresh data directory.
struct node_fixture {
  temp_dir dir;
  std::unique_ptr<process> proc;
  uint16_t port = 0;
  std::string admin_key;
  int runs = 0;

  node_fixture() {
    start();
  }

  void start(std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> env{
      {"KEYMESH_HTTP_LISTEN", "127.0.0.1:0"},
      {"KEYMESH_NODE_DATA_DIR", dir.file("data")},
      {"KEYMESH_HTTP_READ_TIMEOUT", "1s"},
      {"KEYMESH_HTTP_MAX_BODY_BYTES", "64KiB"},
      {"KEYMESH_HTTP_MAX_HEADER_BYTES", "8KiB"},
      {"KEYMESH_HTTP_MAX_HEADER_COUNT", "50"},
      {"KEYMESH_KEYS_ISSUER", "https://keymesh.test"},
    };
    for (auto& [k, v] : extra)
      env[k] = v;
    proc = std::make_unique<process>(
      std::vector<std::string>{keymesh_binary(), "serve"}, env,
      dir.file("node-" + std::to_string(++runs) + ".log"));
    // "ready: http://..." or, when its database does not answer (tests of
    // that), "listening on http://... but not ready".
    auto p = proc->wait_for_log(
      R"((?:ready: |listening on )http://127\.0\.0\.1:(\d+))");
    if (!p)
      CAF_FAIL("node did not start:\n" << proc->log());
    port = static_cast<uint16_t>(std::stoi(*p));
    auto keys = read_file(dir.file("data/admin.keys"));
    admin_key = trim_line(keys.substr(keys.rfind('\n', keys.size() - 2) + 1));
  }

  ~node_fixture() {
    if (proc)
      proc->stop(SIGKILL);
  }

  std::string bearer() const {
    return "Authorization: Bearer " + admin_key + "\r\n";
  }

  /// A request with the admin key (and a JSON body, if any).
  response call(const std::string& method, const std::string& path,
                const std::string& body = "") {
    return request(port, method, path, body,
                   bearer()
                     + (body.empty() ? ""
                                     : "Content-Type: application/json\r\n"));
  }

  json issue(const json& body) {
    auto res = request(port, "POST", "/api/tokens", body.dump(), bearer());
    CAF_REQUIRE_EQUAL(res.result_int(), 201u);
    return json::parse(res.body());
  }

  json verify(const std::string& token) {
    auto res = request(port, "POST", "/api/verify",
                       json{{"token", token}}.dump());
    CAF_REQUIRE_EQUAL(res.result_int(), 200u);
    return json::parse(res.body());
  }
};

} // namespace keymesh::test
