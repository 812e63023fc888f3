#define CAF_SUITE config
#include "caf/test/unit_test.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>
#include <string>

#include "config/duration.hpp"
#include "config/loader.hpp"
#include "config/render.hpp"
#include "config/schema.hpp"
#include "config/settings.hpp"

using namespace keymesh::config;
using namespace std::chrono_literals;

namespace {

using env_map = std::map<std::string, std::string>;

/// True if one error message contains every part.
bool mentions(const load_result& result,
              std::initializer_list<std::string_view> parts) {
  for (const auto& message : result.errors) {
    bool all = true;
    for (auto part : parts)
      all = all && message.find(part) != std::string::npos;
    if (all)
      return true;
  }
  return false;
}

/// As mentions(), printing every error when none matches.
bool has_error(const load_result& result,
               std::initializer_list<std::string_view> parts) {
  if (mentions(result, parts))
    return true;
  CAF_TEST_PRINT_ERROR("no error contains all expected parts; errors were:");
  for (const auto& message : result.errors)
    CAF_TEST_PRINT_ERROR("  " << message);
  return false;
}

load_result from_yaml(const std::string& text, const env_map& env = {}) {
  return load_from_string(text, env, "test.yaml");
}

load_result from_env(const env_map& env) {
  return load("", env);
}

constexpr auto full_file = R"(node:
  data_dir: /var/lib/keymesh
http:
  listen: "[::1]:9090"
  admin_keys_file: /etc/keymesh/admin.keys
  max_body_bytes: 2MiB
  max_header_bytes: 8KiB
  max_header_count: 50
  read_timeout: 500ms
  idle_timeout: 2m
  request_timeout: 3
  threads: 4
  max_connections: 500
keys:
  algorithm: EdDSA
  rotate_every: 7d
  max_token_ttl: 2h
  default_token_ttl: 30m
  leeway: 1m
  issuer: https://auth.example.com
  audience: api
log:
  level: debug
  format: json
cluster:
  enabled: true
  discovery: static
  static_peers:
    - https://node2.example.com:8443
    - http://10.0.0.3:8080/keymesh/
  static_peers_insecure_http: true
  refresh_sec: 45
  instance_id: node-1.eu_west
  name: prod
  listen: 0.0.0.0:7000
  seeds: ["node2:7000", "[fe80::1]:7000"]
  heartbeat: 250ms
  failure_timeout: 2s
  insecure_plaintext: false
  tls:
    ca: /etc/keymesh/ca.pem
    cert: /etc/keymesh/node.pem
    key: /etc/keymesh/node.key
    passphrase: hunter2
  srv:
    names: [_keymesh._tcp.example.com]
    poll_interval: 1m
)";

} // namespace

// --- parsing helpers ---------------------------------------------------------

CAF_TEST(durations parse with units and plain seconds) {
  CAF_CHECK_EQUAL(parse_duration("500ms")->count(), 500);
  CAF_CHECK_EQUAL(parse_duration("30s")->count(), 30'000);
  CAF_CHECK_EQUAL(parse_duration("15m")->count(), 15 * 60'000);
  CAF_CHECK_EQUAL(parse_duration("24h")->count(), 24 * 3'600'000);
  CAF_CHECK_EQUAL(parse_duration("7d")->count(), 7 * 86'400'000LL);
  CAF_CHECK_EQUAL(parse_duration("42")->count(), 42'000);
  CAF_CHECK_EQUAL(parse_duration("0")->count(), 0);
  for (auto bad : {"", "s", "-5s", "5 s", "1.5s", "5w", "30sec", "1h30m",
                   "99999999999999999999d"})
    CAF_CHECK(!parse_duration(bad));
}

CAF_TEST(durations format in the largest exact unit) {
  CAF_CHECK_EQUAL(format_duration(24h), "24h");
  CAF_CHECK_EQUAL(format_duration(30s), "30s");
  CAF_CHECK_EQUAL(format_duration(500ms), "500ms");
  CAF_CHECK_EQUAL(format_duration(90s), "90s");
  CAF_CHECK_EQUAL(format_duration(15min), "15m");
  CAF_CHECK_EQUAL(format_duration(1500ms), "1500ms");
  CAF_CHECK_EQUAL(format_duration(0ms), "0s");
}

CAF_TEST(sizes parse binary units and plain bytes) {
  CAF_CHECK_EQUAL(parse_size("512B").value_or(0), 512u);
  CAF_CHECK_EQUAL(parse_size("16KiB").value_or(0), 16u * 1024);
  CAF_CHECK_EQUAL(parse_size("1MiB").value_or(0), 1024u * 1024);
  CAF_CHECK_EQUAL(parse_size("2GiB").value_or(0), size_t{2} << 30);
  CAF_CHECK_EQUAL(parse_size("1000").value_or(0), 1000u);
  for (auto bad : {"", "KiB", "1MB", "1 MiB", "-1B", "1.5MiB", "1mib"})
    CAF_CHECK(!parse_size(bad));
  CAF_CHECK_EQUAL(format_size(1024 * 1024), "1MiB");
  CAF_CHECK_EQUAL(format_size(1500), "1500B");
}

CAF_TEST(host and port parse for IPv4 IPv6 and names) {
  auto v4 = parse_host_port("127.0.0.1:8080");
  CAF_REQUIRE(v4);
  CAF_CHECK_EQUAL(v4->host, "127.0.0.1");
  CAF_CHECK_EQUAL(v4->port, 8080u);
  auto v6 = parse_host_port("[::1]:0");
  CAF_REQUIRE(v6);
  CAF_CHECK_EQUAL(v6->host, "::1");
  CAF_CHECK_EQUAL(v6->port, 0u);
  auto name = parse_host_port("localhost:80");
  CAF_REQUIRE(name);
  CAF_CHECK_EQUAL(name->host, "localhost");
  for (auto bad : {"", "localhost", ":80", "host:", "host:65536", "::1:80",
                   "[::1]", "[::1]80", "[zz]:80", "a b:80", "host:-1"})
    CAF_CHECK(!parse_host_port(bad));
}

CAF_TEST(base URLs need http or https and a host) {
  for (auto good : {"http://a", "https://node2.example.com:8443",
                    "http://10.0.0.3:8080/keymesh/", "https://[::1]:443"})
    CAF_CHECK(is_base_url(good));
  for (auto bad : {"ftp://a", "a:80", "http://", "http://a:0", "http://u@a",
                   "http://a/?q=1", "https://a b"})
    CAF_CHECK(!is_base_url(bad));
}

CAF_TEST(edit distance counts transpositions as one edit) {
  CAF_CHECK_EQUAL(edit_distance("htp", "http"), 1u);
  CAF_CHECK_EQUAL(edit_distance("lisen", "listen"), 1u);
  CAF_CHECK_EQUAL(edit_distance("lsiten", "listen"), 1u);
  CAF_CHECK_EQUAL(edit_distance("", "abc"), 3u);
}

// --- the schema --------------------------------------------------------------

CAF_TEST(schema derives env names and matches the struct defaults) {
  CAF_CHECK_EQUAL(find_key("cluster.tls.ca")->env_name,
                  "KEYMESH_CLUSTER_TLS_CA");
  CAF_CHECK_EQUAL(find_key("cluster.static_peers")->env_name,
                  "KEYMESH_CLUSTER_STATIC_PEERS");
  CAF_CHECK_EQUAL(find_env("KEYMESH_HTTP_LISTEN")->name, "http.listen");
  CAF_CHECK(find_key("cluster.tls.passphrase")->secret);
  CAF_CHECK_EQUAL(schema().size(), 102u);
  std::set<std::string> env_names;
  for (const auto& spec : schema()) {
    CAF_CHECK(env_names.insert(spec.env_name).second);
    CAF_CHECK(!spec.description.empty());
    // Each default, written as text, loads back to the same value.
    settings parsed;
    auto problem = spec.is_list() ? assign_list(spec, parsed, {})
                                  : assign(spec, parsed, spec.default_text);
    CAF_CHECK(!problem);
    CAF_CHECK_EQUAL(format_value(spec, parsed), spec.default_text);
  }
  CAF_CHECK_EQUAL(find_key("keys.rotate_every")->default_text, "24h");
  CAF_CHECK_EQUAL(find_key("http.max_body_bytes")->default_text, "1MiB");
}

// --- loading -----------------------------------------------------------------

CAF_TEST(no file and no environment gives a working single node) {
  auto result = load("", {});
  CAF_REQUIRE(result.ok());
  const auto& cfg = result.value;
  CAF_CHECK_EQUAL(cfg.node.data_dir, "./data");
  CAF_CHECK_EQUAL(cfg.http.listen, "127.0.0.1:8080");
  CAF_CHECK_EQUAL(cfg.http.max_body_bytes, 1024u * 1024);
  CAF_CHECK_EQUAL(cfg.http.max_header_bytes, 16u * 1024);
  CAF_CHECK_EQUAL(cfg.http.max_header_count, 100u);
  CAF_CHECK_EQUAL(cfg.http.request_timeout.count(), 5000);
  CAF_CHECK_EQUAL(cfg.keys.algorithm, "ES256");
  CAF_CHECK_EQUAL(cfg.keys.rotate_every.count(), 24 * 3600);
  CAF_CHECK_EQUAL(cfg.keys.default_token_ttl.count(), 15 * 60);
  CAF_CHECK_EQUAL(cfg.log.level, "info");
  CAF_CHECK(!cfg.cluster.enabled);
  CAF_CHECK_EQUAL(cfg.cluster.heartbeat.count(), 1000);
  CAF_CHECK_EQUAL(cfg.cluster.failure_timeout.count(), 4000);
  CAF_CHECK_EQUAL(render_effective(cfg), render_effective(settings{}));
  CAF_CHECK(from_yaml("").ok());
  CAF_CHECK(from_yaml("# only a comment\n").ok());
}

CAF_TEST(a full valid file sets every section) {
  auto result = from_yaml(full_file);
  for (const auto& message : result.errors)
    CAF_MESSAGE(message);
  CAF_REQUIRE(result.ok());
  const auto& cfg = result.value;
  CAF_CHECK_EQUAL(cfg.node.data_dir, "/var/lib/keymesh");
  CAF_CHECK_EQUAL(cfg.http.listen, "[::1]:9090");
  CAF_CHECK_EQUAL(cfg.http.max_body_bytes, 2u * 1024 * 1024);
  CAF_CHECK_EQUAL(cfg.http.max_header_bytes, 8u * 1024);
  CAF_CHECK_EQUAL(cfg.http.max_header_count, 50u);
  CAF_CHECK_EQUAL(cfg.http.read_timeout.count(), 500);
  CAF_CHECK_EQUAL(cfg.http.idle_timeout.count(), 120'000);
  CAF_CHECK_EQUAL(cfg.http.request_timeout.count(), 3000);
  CAF_CHECK_EQUAL(cfg.http.threads, 4u);
  CAF_CHECK_EQUAL(cfg.http.max_connections, 500u);
  CAF_CHECK_EQUAL(cfg.keys.algorithm, "EdDSA");
  CAF_CHECK_EQUAL(cfg.keys.rotate_every.count(), 7 * 86400);
  CAF_CHECK_EQUAL(cfg.keys.max_token_ttl.count(), 7200);
  CAF_CHECK_EQUAL(cfg.keys.default_token_ttl.count(), 1800);
  CAF_CHECK_EQUAL(cfg.keys.leeway.count(), 60);
  CAF_CHECK_EQUAL(cfg.keys.issuer, "https://auth.example.com");
  CAF_CHECK_EQUAL(cfg.keys.audience, "api");
  CAF_CHECK_EQUAL(cfg.log.level, "debug");
  CAF_CHECK_EQUAL(cfg.log.format, "json");
  CAF_CHECK(cfg.cluster.enabled);
  CAF_REQUIRE_EQUAL(cfg.cluster.static_peers.size(), 2u);
  CAF_CHECK_EQUAL(cfg.cluster.static_peers[1], "http://10.0.0.3:8080/keymesh/");
  CAF_CHECK_EQUAL(cfg.cluster.refresh_sec.count(), 45);
  CAF_CHECK_EQUAL(cfg.cluster.instance_id, "node-1.eu_west");
  CAF_CHECK_EQUAL(cfg.cluster.name, "prod");
  CAF_CHECK_EQUAL(cfg.cluster.listen, "0.0.0.0:7000");
  CAF_REQUIRE_EQUAL(cfg.cluster.seeds.size(), 2u);
  CAF_CHECK_EQUAL(cfg.cluster.seeds[1], "[fe80::1]:7000");
  CAF_CHECK_EQUAL(cfg.cluster.heartbeat.count(), 250);
  CAF_CHECK_EQUAL(cfg.cluster.failure_timeout.count(), 2000);
  CAF_CHECK_EQUAL(cfg.cluster.tls.ca, "/etc/keymesh/ca.pem");
  CAF_CHECK_EQUAL(cfg.cluster.tls.key, "/etc/keymesh/node.key");
  CAF_CHECK_EQUAL(cfg.cluster.tls.passphrase, "hunter2");
  CAF_REQUIRE_EQUAL(cfg.cluster.srv.names.size(), 1u);
  CAF_CHECK_EQUAL(cfg.cluster.srv.names[0], "_keymesh._tcp.example.com");
  CAF_CHECK_EQUAL(cfg.cluster.srv.poll_interval.count(), 60'000);
}

CAF_TEST(environment beats file beats default) {
  auto result =
      from_yaml("http:\n  listen: 10.0.0.1:80\n  threads: 2\n",
                {{"KEYMESH_HTTP_LISTEN", "127.0.0.1:0"},
                 {"KEYMESH_CLUSTER_TLS_CA", "/ca.pem"},
                 {"KEYMESH_CLUSTER_STATIC_PEERS", "http://a:1, https://b/ ,"},
                 {"KEYMESH_CLUSTER_STATIC_PEERS_INSECURE_HTTP", "true"},
                 {"KEYMESH_CLUSTER_ENABLED", "TRUE"},
                 {"KEYMESH_LOG_LEVEL", "WARN"},
                 {"KEYMESH_KEYS_LEEWAY", "0"}});
  CAF_REQUIRE(result.ok());
  const auto& cfg = result.value;
  CAF_CHECK_EQUAL(cfg.http.listen, "127.0.0.1:0");
  CAF_CHECK_EQUAL(cfg.http.threads, 2u);
  CAF_CHECK_EQUAL(cfg.http.max_header_count, 100u);
  CAF_CHECK_EQUAL(cfg.cluster.tls.ca, "/ca.pem");
  CAF_REQUIRE_EQUAL(cfg.cluster.static_peers.size(), 2u);
  CAF_CHECK_EQUAL(cfg.cluster.static_peers[0], "http://a:1");
  CAF_CHECK_EQUAL(cfg.cluster.static_peers[1], "https://b/");
  CAF_CHECK(cfg.cluster.enabled);
  CAF_CHECK_EQUAL(cfg.log.level, "warn");
  CAF_CHECK_EQUAL(cfg.keys.leeway.count(), 0);
}

CAF_TEST(a real file on disk loads and its errors name the path) {
  auto path = std::string{"/tmp/keymesh_test_config_"} +
              std::to_string(std::rand()) + ".yaml";
  std::ofstream{path} << "log:\n  level: info\n  format: xml\n";
  auto result = load(path, {});
  std::remove(path.c_str());
  CAF_CHECK(has_error(
      result, {path + ":3", "log.format", "\"xml\"", "one of text, json"}));
}

CAF_TEST(a missing file is an error naming the path) {
  auto result = load("/nonexistent/keymesh.yaml", {});
  CAF_CHECK(has_error(result, {"/nonexistent/keymesh.yaml", "cannot be read"}));
}

CAF_TEST(unknown keys suggest the closest name) {
  auto section = from_yaml("htp:\n  listen: 127.0.0.1:1\n");
  CAF_CHECK(has_error(section, {"test.yaml:1", "unknown key \"htp\"",
                                "did you mean \"http\"", "node, http"}));
  auto key = from_yaml("http:\n  lisen: 127.0.0.1:1\n");
  CAF_CHECK(has_error(key, {"test.yaml:2", "\"http.lisen\"",
                            "did you mean \"http.listen\"", "max_body_bytes"}));
  auto nested = from_yaml("cluster:\n  tls:\n    cart: x\n");
  CAF_CHECK(
      has_error(nested, {"test.yaml:3", "did you mean \"cluster.tls.cert\""}));
  auto far = from_yaml("zzzzzz: 1\n");
  CAF_CHECK(has_error(far, {"unknown key \"zzzzzz\""}));
  CAF_CHECK(!mentions(far, {"did you mean"}));
}

CAF_TEST(unknown KEYMESH variables are errors with a suggestion) {
  auto result = from_env({{"KEYMESH_HTTP_LISEN", "127.0.0.1:1"},
                          {"KEYMESH_HTTP", "x"},
                          {"OTHER_VARIABLE", "ignored"},
                          {"KEYMESH_SOURCE_DIR", "/src"}});
  CAF_CHECK_EQUAL(result.errors.size(), 2u);
  CAF_CHECK(has_error(result, {"env KEYMESH_HTTP_LISEN", "unknown variable",
                               "did you mean KEYMESH_HTTP_LISTEN"}));
  CAF_CHECK(has_error(result, {"env KEYMESH_HTTP:", "unknown variable"}));
}

CAF_TEST(bad scalar values name key origin value and what is allowed) {
  auto result = from_yaml("http:\n"
                          "  read_timeout: 10 seconds\n" // 2
                          "  max_body_bytes: 12XB\n"     // 3
                          "  max_header_count: 5000\n"   // 4
                          "  listen: \"[::1]:99999\"\n"  // 5
                          "  threads: -1\n"              // 6
                          "keys:\n"
                          "  algorithm: HS256\n"    // 8
                          "  rotate_every: 500ms\n" // 9
                          "cluster:\n"
                          "  enabled: maybe\n"             // 11
                          "  instance_id: \"has space\"\n" // 12
                          "  refresh_sec: 1500ms\n");      // 13
  CAF_CHECK(has_error(result, {"test.yaml:2", "http.read_timeout",
                               "\"10 seconds\"", "500ms, 30s"}));
  CAF_CHECK(has_error(result, {"test.yaml:3", "http.max_body_bytes", "\"12XB\"",
                               "from 1KiB to 64MiB"}));
  CAF_CHECK(has_error(result, {"test.yaml:4", "http.max_header_count",
                               "\"5000\"", "from 1 to 1000"}));
  CAF_CHECK(has_error(result, {"test.yaml:5", "http.listen", "[::1]:99999",
                               "port from 0 to 65535"}));
  CAF_CHECK(has_error(
      result, {"test.yaml:6", "http.threads", "\"-1\"", "from 0 to 64"}));
  CAF_CHECK(has_error(result, {"test.yaml:8", "keys.algorithm", "\"HS256\"",
                               "one of ES256, EdDSA, RS256"}));
  CAF_CHECK(has_error(result, {"test.yaml:9", "keys.rotate_every", "\"500ms\"",
                               "from 1s to 8760h"}));
  CAF_CHECK(has_error(result, {"test.yaml:11", "cluster.enabled", "\"maybe\"",
                               "true or false"}));
  CAF_CHECK(has_error(result, {"test.yaml:12", "cluster.instance_id",
                               "\"has space\"", "1 to 64 characters"}));
  CAF_CHECK(has_error(
      result, {"test.yaml:13", "cluster.refresh_sec", "whole seconds"}));
  CAF_CHECK_EQUAL(result.errors.size(), 10u);
  // Refused values leave the defaults in place.
  CAF_CHECK_EQUAL(result.value.http.max_body_bytes, 1024u * 1024);
}

CAF_TEST(bad environment values name the variable) {
  auto result = from_env({{"KEYMESH_HTTP_IDLE_TIMEOUT", "forever"},
                          {"KEYMESH_LOG_LEVEL", "loud"},
                          {"KEYMESH_KEYS_LEEWAY", "11m"},
                          {"KEYMESH_HTTP_MAX_HEADER_BYTES", "2MiB"}});
  CAF_CHECK(has_error(result, {"env KEYMESH_HTTP_IDLE_TIMEOUT",
                               "http.idle_timeout", "\"forever\"", "24h"}));
  CAF_CHECK(has_error(result, {"env KEYMESH_LOG_LEVEL", "\"loud\"",
                               "one of trace, debug, info, warn, error, "
                               "critical, off"}));
  CAF_CHECK(has_error(
      result, {"env KEYMESH_KEYS_LEEWAY", "\"11m\"", "from 0s to 10m"}));
  CAF_CHECK(has_error(result, {"env KEYMESH_HTTP_MAX_HEADER_BYTES", "\"2MiB\"",
                               "from 1KiB to 1MiB"}));
}

CAF_TEST(plain http static peers need an explicit opt in) {
  auto refused = from_yaml("cluster:\n"
                           "  static_peers:\n"
                           "    - https://ok.example.com\n"
                           "    - http://plain.example.com\n",
                           {});
  CAF_CHECK(has_error(refused, {"cluster.static_peers",
                                "http://plain.example.com", "plain http",
                                "cluster.static_peers_insecure_http"}));
  auto allowed = from_yaml("cluster:\n"
                           "  static_peers: [http://plain.example.com]\n"
                           "  static_peers_insecure_http: true\n",
                           {});
  CAF_CHECK(allowed.ok());
  CAF_CHECK(from_yaml("cluster:\n  static_peers: [https://a.example]\n", {})
              .ok());
}

CAF_TEST(bad list items name the item) {
  auto result = from_yaml("cluster:\n"
                          "  static_peers:\n"
                          "    - https://ok.example.com\n"
                          "    - ftp://node2\n" // 4
                          "  srv:\n"
                          "    names: [\"bad name\"]\n",
                          {{"KEYMESH_CLUSTER_SEEDS", "node1:7000,node2"}});
  CAF_CHECK(has_error(result, {"test.yaml:4", "cluster.static_peers",
                               "\"ftp://node2\"", "http:// or https://"}));
  CAF_CHECK(has_error(result, {"test.yaml:6", "cluster.srv.names",
                               "\"bad name\"", "DNS names"}));
  CAF_CHECK(has_error(result, {"env KEYMESH_CLUSTER_SEEDS", "cluster.seeds",
                               "\"node2\"", "host:port with a port from 1"}));
  CAF_CHECK(result.value.cluster.static_peers.empty());
}

CAF_TEST(object kind caps parse and bad ones name the item) {
  auto ok = from_yaml("objects:\n"
                      "  kinds:\n"
                      "    - AuthorizationCode:10m:4KiB\n"
                      "    - Grant:14d:65536\n",
                      {});
  CAF_REQUIRE(ok.ok());
  CAF_REQUIRE_EQUAL(ok.value.objects.kinds.size(), 2u);
  auto code = keymesh::config::parse_kind_limit(ok.value.objects.kinds[0]);
  CAF_REQUIRE(code);
  CAF_CHECK_EQUAL(code->kind, "AuthorizationCode");
  CAF_CHECK_EQUAL(code->max_ttl.count(), 600);
  CAF_CHECK_EQUAL(code->max_value_bytes, 4096u);
  auto bad = from_yaml("objects:\n  kinds: [\"Code:10m\"]\n",
                       {{"KEYMESH_OBJECTS_KINDS", "bad kind:1m:1KiB"}});
  CAF_CHECK(has_error(bad, {"objects.kinds", "\"bad kind:1m:1KiB\"",
                            "KIND:MAX_TTL:MAX_VALUE_SIZE"}));
  for (auto item : {"Code:10m", "Code:0s:1KiB", "Code:10m:1B", ":1m:1KiB",
                    "Code:1m:1KiB:x"})
    CAF_CHECK(!keymesh::config::parse_kind_limit(item));
}

CAF_TEST(wrong YAML types are errors not exceptions) {
  auto result = from_yaml("http:\n"
                          "  listen: {host: a, port: 1}\n" // 2
                          "  admin_keys_file: [a, b]\n"    // 3
                          "log: debug\n"                   // 4
                          "cluster:\n"
                          "  seeds: node1:7000\n"          // 6
                          "  static_peers: [[http://a]]\n" // 7
                          "  tls: [a]\n");                 // 8
  CAF_CHECK(
      has_error(result, {"test.yaml:2", "http.listen",
                         "expected a single value, got a map", "host:port"}));
  CAF_CHECK(
      has_error(result, {"test.yaml:3", "http.admin_keys_file", "got a list"}));
  CAF_CHECK(has_error(result,
                      {"test.yaml:4", "log: expected a map", "level, format"}));
  CAF_CHECK(has_error(result, {"test.yaml:6", "cluster.seeds",
                               "expected a list, got a scalar"}));
  CAF_CHECK(
      has_error(result, {"test.yaml:7", "cluster.static_peers", "got a list"}));
  CAF_CHECK(has_error(result, {"test.yaml:8", "cluster.tls: expected a map",
                               "ca, cert, key, passphrase"}));
  auto top = from_yaml("- a\n- b\n");
  CAF_CHECK(has_error(top, {"top level must be a map", "got a list"}));
  auto scalar = from_yaml("just text");
  CAF_CHECK(has_error(scalar, {"top level must be a map", "got a scalar"}));
  auto duplicate = from_yaml("log:\n  level: info\n  level: debug\n");
  CAF_CHECK(has_error(duplicate, {"test.yaml:3", "log.level", "duplicate"}));
}

CAF_TEST(broken YAML syntax is one error with line and column) {
  auto result = from_yaml("http:\n  listen: [1, 2\nlog:\n  level: info\n");
  CAF_REQUIRE_EQUAL(result.errors.size(), 1u);
  CAF_CHECK(has_error(result, {"test.yaml:", "invalid YAML"}));
  CAF_CHECK_EQUAL(result.errors[0].rfind("test.yaml:", 0), 0u);
  auto indented = from_yaml("log:\n  level: info\n bad: [\n");
  CAF_REQUIRE_EQUAL(indented.errors.size(), 1u);
  CAF_CHECK(has_error(indented, {"test.yaml:3:2:", "invalid YAML"}));
  auto nested_value = from_yaml("log:\n  level: info: debug\n");
  CAF_REQUIRE_EQUAL(nested_value.errors.size(), 1u);
  CAF_CHECK(has_error(nested_value, {"test.yaml:2:", "invalid YAML"}));
}

CAF_TEST(default token ttl may not exceed the maximum) {
  auto result = from_yaml("keys:\n  default_token_ttl: 2h\n");
  CAF_CHECK(has_error(result, {"test.yaml:2", "keys.default_token_ttl",
                               "\"2h\"", "keys.max_token_ttl is 1h",
                               "at most keys.max_token_ttl"}));
  // Only the maximum was set: it is the value to blame.
  auto lowered = from_env({{"KEYMESH_KEYS_MAX_TOKEN_TTL", "10m"}});
  CAF_CHECK(has_error(lowered,
                      {"env KEYMESH_KEYS_MAX_TOKEN_TTL", "keys.max_token_ttl",
                       "\"10m\"", "at least keys.default_token_ttl"}));
  CAF_CHECK(from_yaml("keys:\n  default_token_ttl: 1h\n").ok());
}

CAF_TEST(failure timeout must exceed the heartbeat) {
  auto result = from_yaml("cluster:\n  heartbeat: 4s\n  failure_timeout: 4s\n");
  CAF_CHECK(has_error(result, {"test.yaml:3", "cluster.failure_timeout",
                               "\"4s\"", "cluster.heartbeat is 4s",
                               "longer than cluster.heartbeat"}));
  auto slow = from_env({{"KEYMESH_CLUSTER_HEARTBEAT", "5s"}});
  CAF_CHECK(has_error(slow, {"env KEYMESH_CLUSTER_HEARTBEAT", "\"5s\"",
                             "shorter than cluster.failure_timeout"}));
}

CAF_TEST(durable sessions in a cluster need a shared database) {
  auto bad = from_yaml("cluster:\n  enabled: true\nsessions:\n"
                       "  posture: durable\n");
  CAF_CHECK(has_error(bad, {"sessions.posture", "database.driver: mysql"}));
  auto single = from_yaml("sessions:\n  posture: durable\n");
  CAF_CHECK(single.errors.empty());
  auto shared = from_yaml("cluster:\n  enabled: true\nsessions:\n"
                          "  posture: durable\ndatabase:\n  driver: mysql\n");
  CAF_CHECK(shared.errors.empty());
  auto vague = from_yaml("sessions:\n  posture: sometimes\n");
  CAF_CHECK(has_error(vague, {"sessions.posture", "volatile, durable"}));
}

CAF_TEST(a clustered node never keeps its private keys) {
  auto bad = from_env({{"KEYMESH_CLUSTER_ENABLED", "true"},
                       {"KEYMESH_KEYS_ENCRYPTION_KEY_FILE", "/etc/k.hex"}});
  CAF_CHECK(has_error(bad, {"keys.encryption_key_file",
                            "never persists its private keys"}));
  auto single = from_env({{"KEYMESH_KEYS_ENCRYPTION_KEY_FILE", "/etc/k.hex"}});
  CAF_CHECK(single.errors.empty());
}

CAF_TEST(the environment helper keeps only KEYMESH variables) {
  char a[] = "KEYMESH_HTTP_LISTEN=127.0.0.1:0";
  char b[] = "HOME=/root";
  char c[] = "KEYMESH_KEYS_ISSUER=a=b";
  char* envp[] = {a, b, c, nullptr};
  auto env = keymesh_environment(envp);
  CAF_CHECK_EQUAL(env.size(), 2u);
  CAF_CHECK_EQUAL(env["KEYMESH_HTTP_LISTEN"], "127.0.0.1:0");
  CAF_CHECK_EQUAL(env["KEYMESH_KEYS_ISSUER"], "a=b");
  CAF_CHECK(keymesh_environment(nullptr).empty());
}

// --- rendering ---------------------------------------------------------------

CAF_TEST(effective config redacts secrets and loads back) {
  auto result = from_yaml(full_file);
  CAF_REQUIRE(result.ok());
  auto text = render_effective(result.value);
  CAF_CHECK(text.find("hunter2") == std::string::npos);
  CAF_CHECK(text.find("passphrase: <redacted>") != std::string::npos);
  CAF_CHECK(text.find("heartbeat: 250ms") != std::string::npos);
  CAF_CHECK(render_effective(settings{}).find("<redacted>") ==
            std::string::npos);
  auto without_secret = result.value;
  without_secret.cluster.tls.passphrase.clear();
  auto rendered = render_effective(without_secret);
  auto reloaded = from_yaml(rendered);
  CAF_REQUIRE(reloaded.ok());
  CAF_CHECK_EQUAL(render_effective(reloaded.value), rendered);
}

CAF_TEST(markdown reference lists every key with its env variable) {
  auto reference = render_markdown_reference();
  for (const auto& spec : schema()) {
    CAF_CHECK(reference.find("| `" + spec.name + "` |") != std::string::npos);
    CAF_CHECK(reference.find("`" + spec.env_name + "`") != std::string::npos);
  }
  CAF_CHECK(reference.find("one of ES256, EdDSA, RS256") != std::string::npos);
  CAF_CHECK(reference.find("from 1KiB to 64MiB") != std::string::npos);
}

CAF_TEST(docs configuration reference matches the schema) {
  auto source_dir = std::getenv("KEYMESH_SOURCE_DIR");
  if (source_dir == nullptr) {
    CAF_MESSAGE("KEYMESH_SOURCE_DIR unset: docs drift check skipped");
    return;
  }
  std::ifstream in{std::string{source_dir} + "/docs/configuration.md"};
  CAF_REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  auto doc = text.str();
  auto marker = doc.find(std::string{reference_marker} + "\n");
  CAF_REQUIRE(marker != std::string::npos);
  auto generated = doc.substr(marker + reference_marker.size() + 1);
  CAF_CHECK_EQUAL(generated, render_markdown_reference());
}

CAF_TEST(durations have upper bounds that keep time arithmetic in range) {
  auto result = load_from_string("keys:\n  rotate_every: 100000d\n"
                                 "  max_token_ttl: 400d\n"
                                 "http:\n  read_timeout: 2h\n",
                                 {}, "test.yaml");
  CAF_CHECK(has_error(result, {"keys.rotate_every", "\"100000d\"",
                               "from 1s to 8760h"}));
  CAF_CHECK(has_error(result, {"keys.max_token_ttl", "\"400d\"",
                               "from 1s to 720h"}));
  CAF_CHECK(has_error(result, {"http.read_timeout", "\"2h\"",
                               "from 1ms to 1h"}));
}
