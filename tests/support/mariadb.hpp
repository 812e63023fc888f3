// A real MariaDB server for tests: its own data directory under a temp dir,
// listening on a free loopback port, with a database and a password user
// for keymesh. Stopped (by its pid) and removed when the object goes.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include <signal.h>

#include "support/ports.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace keymesh::test {

class mariadb_server {
public:
  static constexpr const char* database = "keymesh";
  static constexpr const char* user = "keymesh";
  static constexpr const char* password = "test-password-1";

  /// TLS: a test CA and a server certificate for 127.0.0.1; the keymesh
  /// user then REQUIRES SSL.
  explicit mariadb_server(bool tls = false) : tls_(tls) {
    if (tls_)
      make_certificates();
    data_ = dir_.path() + "/data";
    socket_ = dir_.path() + "/mysqld.sock";
    auto [code, out] = run_command(
      {"/usr/bin/mariadb-install-db", "--no-defaults", "--datadir=" + data_,
       "--auth-root-authentication-method=normal", "--skip-test-db",
       "--user=" + whoami()},
      {}, dir_.path() + "/install.log");
    if (code != 0)
      throw std::runtime_error("mariadb-install-db failed: " + out);
    port_ = free_port_range(1);
    start();
    sql("CREATE DATABASE IF NOT EXISTS keymesh; "
        "CREATE USER IF NOT EXISTS 'keymesh'@'127.0.0.1' IDENTIFIED BY '"
        + std::string{password}
        + "'" + (tls_ ? " REQUIRE SSL" : "")
        + "; GRANT ALL ON keymesh.* TO 'keymesh'@'127.0.0.1';");
    write_file(dir_.path() + "/password", std::string{password} + "\n");
  }

  ~mariadb_server() {
    if (server_)
      server_->stop(SIGTERM, std::chrono::seconds{20});
  }

  mariadb_server(const mariadb_server&) = delete;
  mariadb_server& operator=(const mariadb_server&) = delete;

  uint16_t port() const {
    return port_;
  }

  /// A file whose first line is the keymesh user's password.
  std::string password_file() const {
    return dir_.path() + "/password";
  }

  /// The CA that signed the server's certificate (TLS only).
  std::string ca_file() const {
    return dir_.path() + "/ca.pem";
  }

  /// Another CA, which signed nothing here.
  std::string other_ca_file() const {
    return dir_.path() + "/other-ca.pem";
  }

  /// Stops the server (SIGTERM, as an operator would) and waits for it.
  void stop() {
    if (server_)
      server_->stop(SIGTERM, std::chrono::seconds{20});
    server_.reset();
  }

  /// Starts it again on the same port and data.
  void start() {
    std::vector<std::string> args{"/usr/sbin/mariadbd", "--no-defaults",
                                  "--datadir=" + data_, "--socket=" + socket_,
                                  "--port=" + std::to_string(port_),
                                  "--bind-address=127.0.0.1",
                                  "--user=" + whoami(), "--skip-name-resolve",
                                  "--innodb-buffer-pool-size=32M",
                                  "--innodb-log-file-size=16M",
                                  "--pid-file=" + dir_.path() + "/mysqld.pid"};
    if (tls_)
      for (auto opt : {"--ssl-ca=" + ca_file(),
                       "--ssl-cert=" + dir_.path() + "/server.pem",
                       "--ssl-key=" + dir_.path() + "/server.key"})
        args.push_back(opt);
    server_ = std::make_unique<process>(
      std::move(args), std::map<std::string, std::string>{},
      dir_.path() + "/server.log");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
    while (std::chrono::steady_clock::now() < deadline) {
      if (server_->poll_exit())
        throw std::runtime_error("mariadbd exited: " + server_->log());
      auto [code, out] = run_command(client({"-e", "SELECT 1"}), {},
                                     next_log());
      if (code == 0)
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
    }
    throw std::runtime_error("mariadbd did not come up: " + server_->log());
  }

  /// Runs SQL as root over the socket; throws with the output on failure.
  std::string sql(const std::string& text) {
    auto [code, out] = run_command(client({"-N", "-B", "-e", text}), {},
                                   next_log());
    if (code != 0)
      throw std::runtime_error("mariadb: " + out);
    return out;
  }

private:
  std::vector<std::string> client(std::vector<std::string> args) const {
    std::vector<std::string> all{"/usr/bin/mariadb", "--no-defaults",
                                 "--socket=" + socket_, "-u", "root"};
    all.insert(all.end(), args.begin(), args.end());
    return all;
  }

  void openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    auto [code, out] = run_command(std::move(args), {}, next_log());
    if (code != 0)
      throw std::runtime_error("openssl: " + out);
  }

  void make_certificates() {
    auto d = dir_.path() + "/";
    for (auto name : {"ca", "other-ca"})
      openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
               d + name + ".key", "-out", d + name + ".pem", "-days", "2",
               "-subj", std::string{"/CN=keymesh test "} + name});
    openssl({"req", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "server.key",
             "-out", d + "server.csr", "-subj", "/CN=127.0.0.1"});
    write_file(d + "ext.cnf", "subjectAltName=IP:127.0.0.1\n");
    openssl({"x509", "-req", "-in", d + "server.csr", "-CA", d + "ca.pem",
             "-CAkey", d + "ca.key", "-CAcreateserial", "-out",
             d + "server.pem", "-days", "2", "-extfile", d + "ext.cnf"});
  }

  /// A fresh log file per client run (logs are appended to).
  std::string next_log() {
    return dir_.path() + "/client-" + std::to_string(++runs_) + ".log";
  }

  static std::string whoami() {
    auto name = ::getenv("USER");
    return ::geteuid() == 0 ? "root" : (name ? name : "nobody");
  }

  bool tls_ = false;
  temp_dir dir_;
  std::string data_;
  std::string socket_;
  uint16_t port_ = 0;
  int runs_ = 0;
  std::unique_ptr<process> server_;
};

} // namespace keymesh::test
