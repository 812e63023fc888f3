// The keymesh command line: a thin main() over the keymesh library.
//
//   keymesh serve [--config FILE]
//   keymesh genclust --nodes N --out DIR
//   keymesh config check FILE
//   keymesh config reference
//   keymesh admin <command>     (app/admin_cli.cpp)
//   keymesh version
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <spdlog/spdlog.h>

#include "app/admin_cli.hpp"
#include "node/cluster_setup.hpp"
#include "actors/interfaces.hpp"
#include "node/node.hpp"
#include "cluster/genclust.hpp"
#include "common/logging.hpp"
#include "config/loader.hpp"
#include "config/render.hpp"
#include "keymesh/version.hpp"
#include "persistence/sealed.hpp"

#ifdef KEYMESH_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

extern char** environ;

namespace {

/// The allocator the program runs on, as jemalloc itself reports it (so a
/// build that meant to link it but did not says so).
std::string allocator_name() {
#ifdef KEYMESH_WITH_JEMALLOC
  const char* version = nullptr;
  size_t size = sizeof(version);
  if (mallctl("version", &version, &size, nullptr, 0) == 0 && version)
    return std::string{"jemalloc "} + version;
  return "jemalloc (linked, but it does not answer)";
#else
  return "glibc";
#endif
}

constexpr const char* main_help = R"(keymesh — signing keys and sessions for identity-system replicas

usage: keymesh <command> [options]

commands:
  serve [--config FILE]    run a node (defaults: http.listen 127.0.0.1:8080,
                           node.data_dir ./data, keys.algorithm ES256)
  genclust --nodes N --out DIR
                           write a cluster CA, node certificates and one
                           config per node (see 'keymesh genclust --help')
  config check FILE        validate FILE (plus KEYMESH_* environment
                           overrides) and print the effective configuration
  config reference         print the configuration reference (Markdown)
  keygen [--out FILE]      make a 256-bit key for keys.encryption_key_file
  admin <command>          sessions, revocations, users, groups, keys,
                           cluster status and the event stream of a running
                           node, over its HTTP API
  version                  print the version

Run 'keymesh <command> --help' for details.
)";

constexpr const char* serve_help = R"(usage: keymesh serve [--config FILE]

Runs a keymesh node until SIGINT or SIGTERM. Settings come from
KEYMESH_<SECTION>_<KEY> environment variables, then FILE (YAML; --config or
KEYMESH_CONFIG), then the defaults; see
docs/configuration.md. Exit status: 0 after a clean stop, 1 on a bad
configuration or a failed start.
)";

constexpr const char* config_help = R"(usage: keymesh config check FILE
       keymesh config reference

check      validates FILE with the KEYMESH_* environment applied, prints the
           effective configuration (secrets redacted) and exits 0, or prints
           every error and exits 1.
reference  prints every configuration key with its type, default,
           environment variable and description, as Markdown.
)";

constexpr const char* genclust_help = R"(usage: keymesh genclust --nodes N --out DIR [options]

Writes what an N-node cluster with mutual TLS needs: DIR/ca.pem and
DIR/ca.key (the cluster CA; keep ca.key offline), and for each node i
DIR/node-i/cert.pem, key.pem (CN = instance id "node-i") and keymesh.yaml
(listen addresses, seeds, TLS paths, data directory). Start node i with
  keymesh serve --config DIR/node-i/keymesh.yaml

options:
  --nodes N             number of nodes, 1 to 64 (default 3)
  --out DIR             output directory (created if missing)
  --name NAME           cluster.name (default keymesh)
  --host HOST           address the nodes listen on (default 127.0.0.1)
  --http-port P         HTTP port of node 1; node i gets P+i-1 (default 8081)
  --cluster-port P      cluster port of node 1; node i gets P+i-1 (default 7401)
  --days D              certificate validity in days (default 825)
  --force               overwrite existing files
)";

constexpr const char* keygen_help = R"(usage: keymesh keygen [--out FILE]

Prints a new random 256-bit key (64 hex digits) for keys.encryption_key_file,
or writes it to FILE (mode 0600; an existing FILE is left alone).
)";

constexpr const char* version_help = R"(usage: keymesh version

Prints the keymesh version.
)";

bool wants_help(const std::vector<std::string>& args) {
  for (auto& a : args)
    if (a == "--help" || a == "-h")
      return true;
  return false;
}

int usage_error(const std::string& what, const char* help) {
  std::cerr << "keymesh: " << what << "\n\n" << help;
  return 2;
}

keymesh::config::load_result load_config(const std::string& path) {
  return keymesh::config::load(path, keymesh::config::keymesh_environment(environ));
}

void print_errors(const keymesh::config::load_result& r) {
  for (auto& e : r.errors)
    std::cerr << "config error: " << e << '\n';
}

int run_config(const std::vector<std::string>& args) {
  if (args.empty() || wants_help(args)) {
    std::cout << config_help;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "reference" && args.size() == 1) {
    std::cout << keymesh::config::render_markdown_reference();
    return 0;
  }
  if (args[0] != "check" || args.size() != 2)
    return usage_error("unknown config command", config_help);
  auto result = load_config(args[1]);
  if (!result.ok()) {
    print_errors(result);
    return 1;
  }
  std::cout << keymesh::config::render_effective(result.value);
  return 0;
}

int run_genclust(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << genclust_help;
    return 0;
  }
  keymesh::cluster::genclust_options opts;
  auto number = [](const std::string& flag, const std::string& text,
                   long min, long max) -> long {
    size_t used = 0;
    long value = 0;
    try {
      value = std::stol(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != text.size() || value < min || value > max)
      throw std::invalid_argument(flag + " needs a number from "
                                  + std::to_string(min) + " to "
                                  + std::to_string(max) + ", not '" + text
                                  + "'");
    return value;
  };
  try {
    for (size_t i = 0; i < args.size(); ++i) {
      auto& flag = args[i];
      if (flag == "--force") {
        opts.force = true;
        continue;
      }
      if (i + 1 >= args.size())
        throw std::invalid_argument("unknown option or missing value: "
                                    + flag);
      auto& value = args[++i];
      if (flag == "--nodes")
        opts.nodes = static_cast<size_t>(number(flag, value, 1, 64));
      else if (flag == "--out")
        opts.out_dir = value;
      else if (flag == "--name")
        opts.cluster_name = value;
      else if (flag == "--host")
        opts.host = value;
      else if (flag == "--http-port")
        opts.http_base_port = static_cast<uint16_t>(number(flag, value, 1,
                                                           65535));
      else if (flag == "--cluster-port")
        opts.cluster_base_port = static_cast<uint16_t>(number(flag, value, 1,
                                                              65535));
      else if (flag == "--days")
        opts.days = static_cast<int>(number(flag, value, 1, 36500));
      else
        throw std::invalid_argument("unknown option " + flag);
    }
    if (opts.out_dir.empty())
      throw std::invalid_argument("--out DIR is required");
  } catch (const std::invalid_argument& e) {
    return usage_error(e.what(), genclust_help);
  }
  try {
    for (auto& file : keymesh::cluster::genclust(opts))
      std::cout << "wrote " << file << '\n';
  } catch (const std::exception& e) {
    std::cerr << "keymesh genclust: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

int run_serve(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << serve_help;
    return 0;
  }
  // --config wins over KEYMESH_CONFIG (handy in containers).
  std::string path;
  if (auto env_path = std::getenv("KEYMESH_CONFIG"))
    path = env_path;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size())
      path = args[++i];
    else if (args[i].rfind("--config=", 0) == 0)
      path = args[i].substr(9);
    else
      return usage_error("unexpected argument '" + args[i] + "'", serve_help);
  }
  auto result = load_config(path);
  if (!result.ok()) {
    print_errors(result);
    return 1;
  }
  auto& cfg = result.value;
  keymesh::setup_logging(cfg.log.level, cfg.log.format);
  // Signals are taken synchronously by this thread: block them before any
  // other thread exists so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  caf::actor_system_config sys_cfg;
  keymesh::add_message_types(sys_cfg);
  auto threads = cfg.http.threads > 0 ? cfg.http.threads
                                      : std::thread::hardware_concurrency();
  sys_cfg.set("scheduler.max-threads", std::max(1u, threads));
  // Idle work-stealing workers keep polling; the hot paths (JWKS, verify)
  // never touch the scheduler, so workers that sleep on a condition variable
  // leave those cycles to the HTTP threads.
  sys_cfg.set("scheduler.policy", caf::atom("sharing"));
  try {
    keymesh::prepare_actor_system(sys_cfg, cfg);
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
  caf::actor_system sys{sys_cfg};
  std::unique_ptr<keymesh::node> node;
  try {
    node = keymesh::node::start(sys, cfg);
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP)
      break;
    // SIGHUP: re-read the cluster certificates (new links use them).
    if (!cfg.cluster.enabled || !keymesh::cluster_uses_tls(cfg))
      spdlog::info("SIGHUP: no cluster TLS files to reload");
    else if (auto err = node->reload_cluster_tls(); !err.empty())
      spdlog::error("SIGHUP: the cluster TLS files are not usable, keeping "
                    "the previous ones: {}",
                    err);
    else
      spdlog::info("SIGHUP: cluster TLS files validated and reloaded");
  }
  spdlog::info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  node->stop();
  node.reset();
  spdlog::info("stopped");
  return 0;
}

} // namespace

int run_keygen(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << keygen_help;
    return 0;
  }
  auto key = keymesh::persistence::new_encryption_key_hex() + "\n";
  if (args.empty()) {
    std::cout << key;
    return 0;
  }
  if (args.size() != 2 || args[0] != "--out")
    return usage_error("expected --out FILE", keygen_help);
  int fd = ::open(args[1].c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  0600);
  if (fd < 0) {
    std::cerr << "keymesh: cannot create " << args[1] << ": "
              << std::strerror(errno) << '\n';
    return 1;
  }
  auto written = ::write(fd, key.data(), key.size());
  ::fsync(fd);
  ::close(fd);
  if (written != static_cast<ssize_t>(key.size())) {
    std::cerr << "keymesh: cannot write " << args[1] << '\n';
    return 1;
  }
  std::cerr << "keymesh: wrote a new key to " << args[1] << '\n';
  return 0;
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty())
    return usage_error("missing command", main_help);
  auto command = args.front();
  args.erase(args.begin());
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << main_help;
    return 0;
  }
  if (command == "--version" || command == "version") {
    if (wants_help(args)) {
      std::cout << version_help;
      return 0;
    }
    std::cout << "keymesh " << keymesh::version_string << '\n'
              << "allocator: " << allocator_name() << '\n';
    return 0;
  }
  if (command == "serve")
    return run_serve(args);
  if (command == "config")
    return run_config(args);
  if (command == "genclust")
    return run_genclust(args);
  if (command == "keygen")
    return run_keygen(args);
  if (command == "admin") {
    std::signal(SIGPIPE, SIG_IGN); // tail | head: a clean exit
    return keymesh::cli::run_admin(args, environ);
  }
  return usage_error("unknown command '" + command + "'", main_help);
}
