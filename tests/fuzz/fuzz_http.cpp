// Fuzz target: raw bytes through the HTTP request path as the server runs
// it: Beast's parser with the server's limits, the header count check,
// preflight (routing, admin authentication, per-route body limits) and then
// the API's handler with its JSON input, on real actors (keystore,
// federation, a single node's shards, the bridge). Every request must be
// answered within five seconds with a status the API documents.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <string>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <spdlog/spdlog.h>

#include "actors/federation.hpp"
#include "actors/keystore.hpp"
#include "actors/state_service.hpp"
#include "http/api.hpp"
#include "state/deny_set.hpp"

using namespace keymesh;
namespace bhttp = boost::beast::http;

namespace {

constexpr size_t max_header_bytes = 8 * 1024;
constexpr size_t max_header_count = 50;
constexpr size_t max_body_bytes = 64 * 1024;

struct target {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<key_snapshot_slot> slot =
      std::make_shared<key_snapshot_slot>();
  std::unique_ptr<http::bridge_pool> bridge;
  std::unique_ptr<state_service> state;
  std::unique_ptr<http::api> api;
  std::shared_ptr<secret_board> board;
  std::unique_ptr<dpop_nonces> dpop;
  std::unique_ptr<cookie_sealer> cookies;

  target() {
    // Every created or revoked session is an audit line: millions of them
    // would be most of the work (and of the disk).
    spdlog::set_level(spdlog::level::warn);
    add_message_types(cfg);
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    config::settings settings;
    settings.keys.issuer = "https://issuer.test";
    settings.node.data_dir = "/tmp/keymesh-fuzz-http";
    settings.state.partitions = 4;
    auto fed = spawn_federation(*sys, "node-f", slot);
    auto opts = keystore_options::from_settings(settings, "node-f");
    auto ks = *spawn_keystore(*sys, *opts, fed);
    for (int i = 0; i < 5000 && !slot->load(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    board = std::make_shared<secret_board>();
    state = state_service::start(*sys, settings, "node-f", system_wall_clock());
    bridge = std::make_unique<http::bridge_pool>(*sys, 1);
    std::string keys_file = "/tmp/keymesh-fuzz-http.keys";
    std::ofstream{keys_file} << "fuzz-admin-key-0123456789\n";
    auto status = std::make_shared<node_status>();
    status->instance_id = "node-f";
    status->http_listening = true;
    http::api_context ctx;
    ctx.settings = settings;
    ctx.keystore = ks;
    ctx.keys = slot;
    ctx.admin =
        std::make_shared<http::admin_auth>(http::admin_auth::load(keys_file));
    ctx.status = status;
    ctx.bridge = bridge.get();
    ctx.state = state->client();
    ctx.deny = std::make_shared<state::deny_set>();
    // The secret rings (in memory: no database, no bus).
    secrets_deps with;
    with.state = state->client();
    with.board = board;
    auto sopts = secrets_options::from_settings(settings);
    ctx.secrets = spawn_secrets(*sys, *sopts, with);
    dpop = std::make_unique<dpop_nonces>(board, system_wall_clock(),
                                         settings.dpop.nonce_window);
    cookies = std::make_unique<cookie_sealer>(board, system_wall_clock());
    ctx.dpop = dpop.get();
    ctx.cookies = cookies.get();
    ctx.rings = board;
    api = std::make_unique<http::api>(std::move(ctx));
  }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Never destroyed: CAF tears an actor system down badly at exit.
  static auto& t = *new target;
  if (size == 0)
    return 0;
  boost::beast::flat_buffer buffer;
  auto in = buffer.prepare(size);
  std::memcpy(in.data(), data, size);
  buffer.commit(size);
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<uint32_t>(max_header_bytes));
  parser.body_limit(max_body_bytes);
  parser.eager(false);
  boost::beast::error_code ec;
  // The header first, as the server reads it.
  while (!parser.is_header_done() && !ec && buffer.size() > 0) {
    auto used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (used == 0 && !ec)
      break;
  }
  if (ec || !parser.is_header_done())
    return 0;
  auto& header = parser.get();
  if (static_cast<size_t>(std::distance(header.begin(), header.end())) >
      max_header_count)
    return 0;
  auto pre = t.api->preflight(header);
  if (pre.reject)
    return 0;
  parser.body_limit(pre.body_limit);
  parser.eager(true);
  while (!parser.is_done() && !ec && buffer.size() > 0) {
    auto used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (used == 0 && !ec)
      break;
  }
  if (!ec && !parser.is_done())
    parser.put_eof(ec);
  if (ec || !parser.is_done())
    return 0;
  auto done = std::make_shared<std::promise<http::response>>();
  auto answered = done->get_future();
  t.api->handle(parser.release(), [done](http::response res) {
    done->set_value(std::move(res));
  });
  if (answered.wait_for(std::chrono::seconds{5}) != std::future_status::ready) {
    std::fprintf(stderr, "fuzz_http: a request was not answered in 5 s\n");
    __builtin_trap();
  }
  auto status = answered.get().result_int();
  if (status < 200 || status > 504) {
    std::fprintf(stderr, "fuzz_http: status %u\n", status);
    __builtin_trap();
  }
  return 0;
}
