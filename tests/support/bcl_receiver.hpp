// A relying party's back-channel logout endpoint for the integration
// suites: tests/integration/bcl_receiver.py (PyJWT validates every logout
// token against a node's JWKS) as a process, and what it received (include
// after caf/test/unit_test.hpp).
#pragma once

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace keymesh::test {

class bcl_receiver {
public:
  /// Starts the receiver; it validates against the JWKS at JWKS_PORT and
  /// the issuer https://keymesh.test, and records into DIR.
  bcl_receiver(const temp_dir& dir, uint16_t jwks_port)
    : records_path_(dir.file("logouts.jsonl")) {
    proc_ = std::make_unique<process>(
      std::vector<std::string>{"/usr/bin/python3",
                               source_dir()
                                 + "/tests/integration/bcl_receiver.py",
                               "http://127.0.0.1:" + std::to_string(jwks_port)
                                 + "/.well-known/jwks.json",
                               "https://keymesh.test", records_path_},
      std::map<std::string, std::string>{}, dir.file("receiver.log"));
    auto p = proc_->wait_for_log(R"(listening (\d+))");
    if (!p)
      CAF_FAIL("the receiver did not start:\n" << proc_->log());
    port_ = static_cast<uint16_t>(std::stoi(*p));
  }

  ~bcl_receiver() {
    proc_->stop(SIGKILL);
  }

  /// The URI of CLIENT's endpoint in MODE (ok, ok204, flaky, redirect,
  /// hang).
  std::string uri(const std::string& client, const std::string& mode) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/rp/" + client + "/"
           + mode;
  }

  /// What the flaky endpoints answer from now on.
  void set_flaky(unsigned status) {
    request(port_, "GET", "/control/flaky/" + std::to_string(status));
  }

  /// Every token received so far, valid or not, in order.
  std::vector<nlohmann::json> records() const {
    std::vector<nlohmann::json> out;
    std::ifstream in{records_path_};
    for (std::string line; std::getline(in, line);)
      if (!line.empty())
        out.push_back(nlohmann::json::parse(line));
    return out;
  }

  /// The valid logouts CLIENT received and accepted (200 or 204) so far.
  std::vector<nlohmann::json> accepted(const std::string& client) const {
    std::vector<nlohmann::json> out;
    for (auto& r : records()) {
      auto answered = r.value("answered", 0);
      if (r.value("client", "") == client && r.value("valid", false)
          && (answered == 200 || answered == 204))
        out.push_back(r);
    }
    return out;
  }

  /// How many tokens CLIENT received (valid or not, however answered).
  size_t received(const std::string& client) const {
    size_t n = 0;
    for (auto& r : records())
      n += r.value("client", "") == client;
    return n;
  }

private:
  static std::string source_dir() {
    auto dir = std::getenv("KEYMESH_SOURCE_DIR");
    return dir != nullptr ? dir : KEYMESH_TEST_SOURCE_DIR;
  }

  std::string records_path_;
  std::unique_ptr<process> proc_;
  uint16_t port_ = 0;
};

} // namespace keymesh::test
