// A 3-node cluster with helpers for the session and login suites: admin
// calls on any node, session creates and reads, and the same cluster on a
// real MariaDB shared by the nodes (include after caf/test/unit_test.hpp).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "support/cluster.hpp"
#include "support/mariadb.hpp"
#include "support/wait.hpp"

namespace keymesh::test {

struct session_cluster : cluster_fixture {
  /// Nodes 1 to 3 of a cluster of NODES (genclust makes them all; a test
  /// starts the others itself).
  explicit session_cluster(std::map<std::string, std::string> env = {},
                           int nodes = 3)
      : cluster_fixture(nodes), env_(std::move(env)) {
    for (int i = 1; i <= 3; ++i)
      start_node(i);
    if (!eventually([&] { return all_linked(3) && all_ready(); },
                    std::chrono::seconds{20}))
      CAF_FAIL("the cluster did not form");
  }

  void start_node(int i) {
    start(i, env_);
  }

  bool all_ready() {
    for (int i = 1; i <= 3; ++i)
      if (nodes[static_cast<size_t>(i)] &&
          request(http_port(i), "GET", "/healthz/ready").result_int() != 200u)
        return false;
    return true;
  }

  response call(int i, const std::string& method, const std::string& path,
                const std::string& body = "") {
    return request(
        http_port(i), method, path, body,
        "Authorization: Bearer " + admin_key(i) + "\r\n" +
            (body.empty() ? "" : "Content-Type: application/json\r\n"));
  }

  std::string create(int i, const std::string& sub) {
    auto res = call(i, "POST", "/api/sessions", json{{"sub", sub}}.dump());
    if (res.result_int() != 201u)
      return {};
    return json::parse(res.body())["sid"].get<std::string>();
  }

  /// Whether node I answers 200 for every one of SIDS.
  bool all_readable(int i, const std::vector<std::string>& sids) {
    for (auto& sid : sids)
      if (call(i, "GET", "/api/sessions/" + sid).result_int() != 200u)
        return false;
    return true;
  }

protected:
  std::map<std::string, std::string> env_;
};

/// A real MariaDB server, up before the nodes start.
struct with_mariadb {
  mariadb_server db;
};

/// Three nodes sharing one MariaDB database.
struct shared_db_cluster : with_mariadb, session_cluster {
  explicit shared_db_cluster(std::string posture = "volatile",
                             std::map<std::string, std::string> extra = {})
      : session_cluster(database_env(db, posture, std::move(extra))) {}

  /// Every node on the shared database, with EXTRA on top.
  static std::map<std::string, std::string>
  database_env(const mariadb_server& db, const std::string& posture,
               std::map<std::string, std::string> extra) {
    extra.emplace("KEYMESH_DATABASE_DRIVER", "mysql");
    extra.emplace("KEYMESH_DATABASE_PORT", std::to_string(db.port()));
    extra.emplace("KEYMESH_DATABASE_PASSWORD_FILE", db.password_file());
    extra.emplace("KEYMESH_DATABASE_HEALTH_INTERVAL", "200ms");
    extra.emplace("KEYMESH_AUTH_SCRYPT_LOG2_N", "12");
    extra.emplace("KEYMESH_DATABASE_CONNECT_TIMEOUT", "1s");
    extra.emplace("KEYMESH_SESSIONS_POSTURE", posture);
    return extra;
  }

  response post(int i, const std::string& path, const json& body) {
    return request(http_port(i), "POST", path, body.dump());
  }

  /// The value of the first metric line starting with NAME on node I.
  std::string metric(int i, const std::string& name) {
    auto text = request(http_port(i), "GET", "/metrics").body();
    auto at = text.find("\n" + name + " ");
    if (at == std::string::npos)
      return {};
    auto start = at + name.size() + 2;
    return text.substr(start, text.find('\n', start) - start);
  }

  int ready_status(int i) {
    return static_cast<int>(
        request(http_port(i), "GET", "/healthz/ready").result_int());
  }

  /// Whether /healthz/ready answers STATUS on every node.
  bool all_report(int status) {
    for (int i = 1; i <= 3; ++i)
      if (ready_status(i) != status)
        return false;
    return true;
  }
};

/// The same, with sessions.posture: durable.
struct durable_db_cluster : shared_db_cluster {
  durable_db_cluster()
      : shared_db_cluster("durable") {}
};

} // namespace keymesh::test
