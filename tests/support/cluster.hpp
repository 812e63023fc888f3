// N keymesh processes from `keymesh genclust` on loopback with mutual TLS,
// for the cluster suites (include after caf/test/unit_test.hpp).
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/ports.hpp"
#include "support/single_node.hpp"

namespace keymesh::test {

/// N nodes from genclust in a temporary directory.
struct cluster_fixture {
  temp_dir dir;
  int size = 3;
  uint16_t http_base = 0;
  uint16_t cluster_base = 0;
  std::vector<std::unique_ptr<process>> nodes;
  std::vector<int> runs;

  explicit cluster_fixture(int count = 3) : size(count) {
    // One range for both, so that the two can never overlap.
    http_base = free_port_range(2 * size);
    cluster_base = static_cast<uint16_t>(http_base + size);
    auto [code, out] = run_command(
      {keymesh_binary(), "genclust", "--nodes", std::to_string(size), "--out",
       dir.file("c"), "--http-port", std::to_string(http_base),
       "--cluster-port", std::to_string(cluster_base)},
      {}, dir.file("genclust.log"));
    if (code != 0)
      CAF_FAIL("genclust failed: " << out);
    nodes.resize(static_cast<size_t>(size) + 1);
    runs.resize(static_cast<size_t>(size) + 1);
  }

  ~cluster_fixture() {
    for (auto& n : nodes)
      if (n)
        n->stop(SIGKILL);
  }

  std::string config(int i) const {
    return dir.file("c/node-" + std::to_string(i) + "/keymesh.yaml");
  }

  uint16_t http_port(int i) const {
    return static_cast<uint16_t>(http_base + i - 1);
  }

  /// Starts node I with fast failure detection; returns once it is ready.
  void start(int i, std::map<std::string, std::string> env = {}) {
    env.emplace("KEYMESH_CLUSTER_HEARTBEAT", "500ms");
    env.emplace("KEYMESH_CLUSTER_FAILURE_TIMEOUT", "2s");
    auto log = dir.file("node-" + std::to_string(i) + "-"
                        + std::to_string(++runs[static_cast<size_t>(i)])
                        + ".log");
    nodes[static_cast<size_t>(i)] = std::make_unique<process>(
      std::vector<std::string>{keymesh_binary(), "serve", "--config",
                               config(i)},
      env, log);
    if (!node(i).wait_for_log(R"(keymesh node \S+ ready)"))
      CAF_FAIL("node " << i << " did not start:\n" << node(i).log());
  }

  process& node(int i) {
    return *nodes[static_cast<size_t>(i)];
  }

  std::string admin_key(int i) const {
    auto text = read_file(dir.file("c/node-" + std::to_string(i)
                                   + "/data/admin.keys"));
    return trim_line(text.substr(text.rfind('\n', text.size() - 2) + 1));
  }

  json get_cluster(int i) {
    auto res = request(http_port(i), "GET", "/api/cluster", "",
                       "Authorization: Bearer " + admin_key(i) + "\r\n");
    return json::parse(res.body());
  }

  /// The state node I sees for member ID ("" when unknown).
  std::string state_of(int i, const std::string& id) {
    auto view = get_cluster(i); // keep the document alive while iterating
    for (auto& m : view["members"])
      if (m["instance_id"] == id)
        return m["state"].get<std::string>();
    return "";
  }

  bool all_linked(int count) {
    for (int i = 1; i <= count; ++i)
      for (int j = 1; j <= count; ++j)
        if (i != j && (!nodes[static_cast<size_t>(i)]
                       || state_of(i, "node-" + std::to_string(j)) != "up"))
          return false;
    return true;
  }

  json issue(int i, const std::string& sub) {
    auto res = request(http_port(i), "POST", "/api/tokens",
                       json{{"sub", sub}, {"ttl", 600}}.dump(),
                       "Authorization: Bearer " + admin_key(i) + "\r\n");
    CAF_REQUIRE_EQUAL(res.result_int(), 201u);
    return json::parse(res.body());
  }

  json verify(int i, const std::string& token) {
    auto res = request(http_port(i), "POST", "/api/verify",
                       json{{"token", token}}.dump());
    CAF_REQUIRE_EQUAL(res.result_int(), 200u);
    return json::parse(res.body());
  }

  std::vector<std::string> kids(int i) {
    std::vector<std::string> out;
    auto res = request(http_port(i), "GET", "/api/pkeys");
    auto jwks = json::parse(res.body());
    for (auto& k : jwks["keys"])
      out.push_back(k["kid"].get<std::string>());
    return out;
  }
};

inline bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

} // namespace keymesh::test
