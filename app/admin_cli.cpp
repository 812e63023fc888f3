#include "app/admin_cli.hpp"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <functional>
#include <limits>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "common/percent.hpp"
#include "config/loader.hpp"
#include "config/settings.hpp"
#include "net/sse.hpp"

namespace keymesh::cli {

const char* const admin_help = R"(usage: keymesh admin [options] <command> [arguments]

Talks to a node's HTTP API with an admin key.

commands:
  status                        readiness and the node's view of the cluster
                                (also: cluster status)
  sessions list SUB             a subject's sessions
  sessions show SID             one session
  sessions revoke SID [--reason R]
                                revoke a session (and its tokens)
  sessions revoke-subject SUB [--reason R]
                                revoke every session and token of a subject
  revoke sid|sub|jti VALUE [--reason R]
                                revoke by session id, subject or token id
  users list [--after NAME] [--limit N]
  users show NAME
  users add NAME [--disabled] [--password-file FILE]
  users passwd NAME [--password-file FILE]
  users enable NAME | users disable NAME | users delete NAME
  groups list | groups show NAME | groups add NAME | groups delete NAME
  groups add-member GROUP USER | groups remove-member GROUP USER
  groups grant GROUP CLAIM_ID | groups ungrant GROUP CLAIM_ID
  claims list | claims add NAME VALUE [--description D] | claims delete ID
  keys show                     the published public keys
  keys rotate                   rotate this node's signing key now
  tail [--topics T1,T2] [--last-event-id ID] [--count N]
                                follow the event stream (revocations,
                                sessions, members, keys, audit)

options:
  --url URL          the node (default: KEYMESH_URL, else http.listen of the
                     configuration)
  --config FILE      the node's configuration (default: KEYMESH_CONFIG), for
                     the URL and the admin key file
  --key-file FILE    a file whose first key line is the admin key (default:
                     KEYMESH_ADMIN_KEY, else http.admin_keys_file, else
                     <node.data_dir>/admin.keys)
  --json             print the node's JSON answers (tail: one event per line)
  --timeout SECONDS  per request (default 10; tail: the longest silence)

Passwords are read from --password-file, or the first line of stdin.

exit status: 0 done; 1 the node answered an error (status: not ready);
2 usage or configuration error; 3 not found; 4 the node could not be
reached or did not answer in time; 5 the admin key was missing or refused;
6 a revocation is in force where it reached, but some nodes were not
reached (revoking again is harmless).
)";

namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using nlohmann::json;

/// A failure that ends the command with CODE (the message goes to stderr).
struct failure : std::runtime_error {
  failure(int code, const std::string& what)
    : std::runtime_error(what), code(code) {
  }
  int code;
};

struct options {
  std::string url;
  std::string config;
  std::string key_file;
  bool json = false;
  std::chrono::seconds timeout{10};
  bool timeout_set = false;
  bool help = false;
  /// Per-command flags (--reason, --limit ...) and the positional words.
  std::map<std::string, std::string> flags;
  std::vector<std::string> words;
};

struct target {
  std::string host;
  std::string port;
};

struct answer {
  unsigned status = 0;
  std::string body;
  /// A stream: the handler stopped it (false: the node ended it).
  bool stopped = false;
};

std::string first_line(std::istream& in) {
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r')
    line.pop_back();
  return line;
}

/// The first key line of an admin keys file (a "sha256:" digest cannot be
/// presented).
std::string key_from_file(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    throw failure(exit_usage, "cannot read the admin key file " + path);
  std::string line;
  bool digests = false;
  while (std::getline(in, line)) {
    auto b = line.find_first_not_of(" \t\r");
    auto e = line.find_last_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#')
      continue;
    auto entry = line.substr(b, e - b + 1);
    if (entry.rfind("sha256:", 0) == 0) {
      digests = true;
      continue;
    }
    return entry;
  }
  throw failure(exit_usage,
                path
                  + (digests ? " holds only sha256 digests of keys: pass "
                               "--key-file with a file holding the key, or "
                               "set KEYMESH_ADMIN_KEY"
                             : " holds no key"));
}

/// Where to send requests and with which key.
std::pair<target, std::string> resolve(const options& o, char** envp) {
  auto env = config::keymesh_environment(envp);
  auto env_or = [&env](const char* name) {
    auto i = env.find(name);
    return i == env.end() ? std::string{} : i->second;
  };
  auto url = o.url.empty() ? env_or("KEYMESH_URL") : o.url;
  auto key = env_or("KEYMESH_ADMIN_KEY");
  if (!o.key_file.empty())
    key = key_from_file(o.key_file);
  std::optional<config::settings> cfg;
  auto settings = [&]() -> const config::settings& {
    if (!cfg) {
      auto path = o.config.empty() ? env_or("KEYMESH_CONFIG") : o.config;
      auto loaded = config::load(path, env);
      if (!loaded.ok()) {
        std::string text = "the configuration is not valid:";
        for (auto& e : loaded.errors)
          text += "\n  " + e;
        throw failure(exit_usage, text);
      }
      cfg = std::move(loaded.value);
    }
    return *cfg;
  };
  std::string host_port;
  if (url.empty()) {
    host_port = settings().http.listen;
  } else {
    constexpr std::string_view scheme = "http://";
    if (url.rfind(scheme, 0) != 0)
      throw failure(exit_usage, "--url must start with http:// (the node "
                                "serves plain HTTP; put TLS in front)");
    host_port = url.substr(scheme.size());
    if (auto slash = host_port.find('/'); slash != std::string::npos) {
      if (host_port.find_first_not_of('/', slash) != std::string::npos)
        throw failure(exit_usage, "--url takes no path: " + url);
      host_port.resize(slash);
    }
  }
  auto hp = config::parse_host_port(host_port);
  if (!hp || hp->port == 0)
    throw failure(exit_usage, "not a host:port: " + host_port);
  // A node listening on every address is reached on loopback.
  if (hp->host == "0.0.0.0" || hp->host.empty())
    hp->host = "127.0.0.1";
  else if (hp->host == "::")
    hp->host = "::1";
  if (key.empty()) {
    auto& c = settings();
    auto file = c.http.admin_keys_file.empty()
                  ? c.node.data_dir + "/admin.keys"
                  : c.http.admin_keys_file;
    key = key_from_file(file);
  }
  return {target{hp->host, std::to_string(hp->port)}, key};
}

class client {
public:
  client(target t, std::string key, std::chrono::seconds timeout)
    : target_(std::move(t)), key_(std::move(key)), timeout_(timeout) {
  }

  answer call(bhttp::verb method, const std::string& path,
              const std::optional<json>& body = std::nullopt) {
    beast::tcp_stream stream{ioc_};
    // One deadline for connecting, sending and reading the answer.
    stream.expires_after(timeout_);
    connect(stream);
    bhttp::request<bhttp::string_body> req{method, path, 11};
    prepare(req);
    if (body) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = body->dump(-1, ' ', false, json::error_handler_t::replace);
    }
    req.prepare_payload();
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(max_answer);
    beast::error_code ec;
    bhttp::write(stream, req, ec);
    if (!ec)
      bhttp::read(stream, buffer, parser, ec);
    if (ec)
      throw failure(exit_unreachable, where() + ": " + reason(ec));
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    auto res = parser.release();
    return {res.result_int(), std::move(res.body())};
  }

  /// GET PATH as a stream: ON_OPEN once the node accepted it, then ON_DATA
  /// with the body's bytes as they arrive; ON_DATA returns false to stop.
  answer stream(const std::string& path, const std::string& last_event_id,
                const std::function<void()>& on_open,
                const std::function<bool(std::string_view)>& on_data) {
    beast::tcp_stream stream{ioc_};
    stream.expires_after(timeout_);
    connect(stream);
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, path, 11};
    prepare(req);
    req.set(bhttp::field::accept, "text/event-stream");
    if (!last_event_id.empty())
      req.set("Last-Event-ID", last_event_id);
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::buffer_body> parser;
    // No limit for a stream that may run for days (not boost::none: Boost
    // 1.74 compares a Content-Length with an empty limit as over it); an
    // error's body is capped below.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::error_code ec;
    bhttp::write(stream, req, ec);
    if (!ec)
      bhttp::read_header(stream, buffer, parser, ec);
    if (ec)
      throw failure(exit_unreachable, where() + ": " + reason(ec));
    answer out{parser.get().result_int(), {}};
    if (out.status == 200)
      on_open();
    char chunk[8192];
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof(chunk);
      // What has arrived is handed over at once (read_some), and the
      // deadline is the longest silence.
      stream.expires_after(timeout_);
      bhttp::read_some(stream, buffer, parser, ec);
      if (ec == bhttp::error::need_buffer)
        ec = {};
      auto n = sizeof(chunk) - parser.get().body().size;
      if (out.status != 200) {
        auto room = max_error - std::min(max_error, out.body.size());
        out.body.append(chunk, std::min(n, room));
      } else if (n > 0 && !on_data(std::string_view{chunk, n})) {
        out.stopped = true;
        return out;
      }
      if (ec == beast::error::timeout)
        throw failure(exit_unreachable,
                      where() + ": the stream was silent for "
                        + std::to_string(timeout_.count()) + " s");
      if (ec)
        break; // the node closed the stream
    }
    return out;
  }

private:
  std::string where() const {
    return "http://" + host_for_url() + ":" + target_.port;
  }

  std::string host_for_url() const {
    return target_.host.find(':') != std::string::npos
             ? "[" + target_.host + "]"
             : target_.host;
  }

  /// Connects within the stream's deadline. An address is used as it is;
  /// a name is resolved first (by the system's resolver, which has its
  /// own timeouts).
  void connect(beast::tcp_stream& stream) {
    beast::error_code ec;
    auto address = asio::ip::make_address(target_.host, ec);
    if (!ec) {
      stream.connect(tcp::endpoint{address, static_cast<uint16_t>(
                                              std::stoi(target_.port))},
                     ec);
    } else {
      tcp::resolver resolver{ioc_};
      auto results = resolver.resolve(target_.host, target_.port, ec);
      if (!ec)
        stream.connect(results, ec);
    }
    if (ec)
      throw failure(exit_unreachable,
                    "cannot reach " + where() + ": " + reason(ec));
  }

  std::string reason(const beast::error_code& ec) const {
    if (ec == beast::error::timeout)
      return "no answer within " + std::to_string(timeout_.count())
             + " s (--timeout)";
    return ec.message();
  }

  /// The most of an answer read, and of an error's body on a stream.
  static constexpr uint64_t max_answer = 64 * 1024 * 1024;
  static constexpr size_t max_error = 64 * 1024;

  template <class Request>
  void prepare(Request& req) {
    req.set(bhttp::field::host, host_for_url() + ":" + target_.port);
    req.set(bhttp::field::user_agent, "keymesh-admin");
    req.set(bhttp::field::authorization, "Bearer " + key_);
  }

  asio::io_context ioc_;
  target target_;
  std::string key_;
  std::chrono::seconds timeout_;
};

// -- output --------------------------------------------------------------------

std::string text_of(const json& v) {
  if (v.is_null())
    return "-";
  if (v.is_string())
    return v.get<std::string>();
  return v.dump();
}

/// Unix seconds as "2026-12-06 07:30:00Z" (or "-").
std::string time_of(const json& v) {
  // Unix seconds of years 1970 to 9999; anything else is shown as it is.
  if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 253402300799.0)
    return v.is_null() ? "-" : v.dump();
  auto t = static_cast<std::time_t>(v.get<double>());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

/// Left-aligned columns, two spaces apart.
void print_table(const std::vector<std::string>& head,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(head.size());
  for (size_t c = 0; c < head.size(); ++c) {
    width[c] = head[c].size();
    for (auto& r : rows)
      width[c] = std::max(width[c], r[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c) {
      out += cells[c];
      if (c + 1 < cells.size())
        out += std::string(width[c] - cells[c].size() + 2, ' ');
    }
    std::cout << out << '\n';
  };
  line(head);
  for (auto& r : rows)
    line(r);
}

/// Key: value lines for an object's scalar members, then its arrays and
/// objects as JSON.
void print_fields(const json& obj) {
  size_t width = 0;
  for (auto& [k, v] : obj.items())
    width = std::max(width, k.size());
  // What the object is first, then the rest in name order.
  static constexpr const char* names[] = {"sid", "sub", "username", "name", "id"};
  std::vector<std::pair<std::string, json>> fields;
  for (auto* n : names)
    if (obj.contains(n))
      fields.emplace_back(n, obj[n]);
  for (auto& [k, v] : obj.items())
    if (std::find(std::begin(names), std::end(names), k) == std::end(names))
      fields.emplace_back(k, v);
  for (auto& [k, v] : fields) {
    auto is_time = k.size() > 3 && k.compare(k.size() - 3, 3, "_at") == 0;
    auto shown = is_time && v.is_number() ? time_of(v) + " (" + text_of(v) + ")"
                                          : text_of(v);
    std::cout << k << ':' << std::string(width - k.size() + 1, ' ') << shown
              << '\n';
  }
}

// -- the commands -----------------------------------------------------------------

class admin {
public:
  admin(options o, client& c) : o_(std::move(o)), c_(c) {
  }

  int run();

private:
  const std::string& word(size_t i, const char* what) const {
    if (i >= o_.words.size())
      throw failure(exit_usage, std::string{"missing "} + what);
    return o_.words[i];
  }

  void expect_words(size_t n) const {
    if (o_.words.size() > n)
      throw failure(exit_usage, "unexpected argument '" + o_.words[n] + "'");
  }

  std::optional<std::string> flag(const std::string& name) const {
    auto i = o_.flags.find(name);
    if (i == o_.flags.end())
      return std::nullopt;
    return i->second;
  }

  /// The JSON of a 2xx answer, or a failure with the node's error.
  json ok(const answer& a) const {
    if (a.status >= 200 && a.status < 300) {
      if (a.body.empty())
        return json{};
      auto body = json::parse(a.body, nullptr, false);
      if (body.is_discarded())
        throw failure(exit_failed, std::to_string(a.status)
                                     + " with a body that is not JSON");
      return body;
    }
    auto body = json::parse(a.body, nullptr, false);
    if (o_.json && !body.is_discarded())
      std::cout << body.dump() << '\n';
    std::string text = std::to_string(a.status);
    if (body.is_object()) {
      if (body.contains("error"))
        text += " " + text_of(body["error"]);
      if (body.contains("error_description"))
        text += ": " + text_of(body["error_description"]);
    }
    int code = a.status == 404                     ? exit_not_found
               : a.status == 401 || a.status == 403 ? exit_unauthorized
                                                     : exit_failed;
    throw failure(code, text);
  }

  /// Prints J as --json asks, else with HUMAN.
  void show(const json& j, const std::function<void()>& human) const {
    if (o_.json)
      std::cout << j.dump() << '\n';
    else
      human();
  }

  std::optional<json> reason_body() const {
    if (auto r = flag("--reason"))
      return json{{"reason", *r}};
    return std::nullopt;
  }

  std::string password() const {
    auto file = flag("--password-file").value_or("-");
    std::string pw;
    if (file == "-") {
      if (::isatty(STDIN_FILENO)) {
        // Typed at a terminal: not echoed (restored however this ends).
        termios saved{};
        bool hidden = ::tcgetattr(STDIN_FILENO, &saved) == 0;
        if (hidden) {
          auto quiet = saved;
          quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
          hidden = ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
        }
        std::cerr << "password: " << std::flush;
        pw = first_line(std::cin);
        if (hidden)
          ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        std::cerr << '\n';
      } else {
        pw = first_line(std::cin);
      }
    } else {
      std::ifstream in{file};
      if (!in)
        throw failure(exit_usage, "cannot read " + file);
      pw = first_line(in);
    }
    if (pw.empty())
      throw failure(exit_usage, "the password is empty");
    try {
      (void) json(pw).dump(); // the API takes UTF-8 only
    } catch (const json::exception&) {
      throw failure(exit_usage, "the password is not valid UTF-8");
    }
    return pw;
  }

  int revoked(const json& out) const {
    auto field = [&](const std::string& name) {
      return out.is_object() && out.contains(name) ? out[name] : json{};
    };
    auto what = field("revoked").is_string() ? field("revoked").get<std::string>()
                                             : std::string{"?"};
    auto partial = field("propagation") == "partial";
    show(out, [&] {
      std::cout << "revoked " << what << ' ' << text_of(field(what)) << ": "
                << text_of(field("sessions")) << " session(s), propagation "
                << text_of(field("propagation")) << '\n';
    });
    if (!partial)
      return exit_ok;
    std::cerr << "keymesh admin: not reached: " << field("unreached").dump()
              << " (the revocation is in force where it reached and "
                 "catches up; revoking again is harmless)\n";
    return exit_partial;
  }

  int status();
  int sessions();
  int revoke();
  int users();
  int groups();
  int claims();
  int keys();
  int tail();

  options o_;
  client& c_;
};

int admin::run() {
  auto& cmd = word(0, "command");
  if (cmd == "status" || (cmd == "cluster" && word(1, "cluster command") == "status"))
    return status();
  if (cmd == "sessions")
    return sessions();
  if (cmd == "revoke")
    return revoke();
  if (cmd == "users")
    return users();
  if (cmd == "groups")
    return groups();
  if (cmd == "claims")
    return claims();
  if (cmd == "keys")
    return keys();
  if (cmd == "tail")
    return tail();
  throw failure(exit_usage, "unknown command '" + cmd + "'");
}

int admin::status() {
  expect_words(o_.words[0] == "cluster" ? 2 : 1);
  auto ready_answer = c_.call(bhttp::verb::get, "/healthz/ready");
  auto ready = json::parse(ready_answer.body, nullptr, false);
  if (!ready.is_object())
    throw failure(exit_failed, "/healthz/ready answered "
                                 + std::to_string(ready_answer.status)
                                 + " without its JSON body");
  auto field = [](const json& j, const char* name) {
    return j.is_object() && j.contains(name) ? j[name] : json{};
  };
  auto print_ready = [&] {
    std::cout << "node " << text_of(field(ready, "instance_id")) << ": "
              << text_of(field(ready, "status"));
    std::string failing;
    auto checks = field(ready, "checks");
    if (checks.is_object())
      for (auto& [check, passed] : checks.items())
        if (passed == false)
          failing += (failing.empty() ? "" : ", ") + check;
    if (!failing.empty())
      std::cout << " (waiting for: " << failing << ")";
    std::cout << '\n';
  };
  auto cluster_answer = c_.call(bhttp::verb::get, "/api/cluster");
  if (cluster_answer.status != 200 && !o_.json)
    print_ready(); // what is known, before the error
  auto cluster = ok(cluster_answer);
  json both{{"ready", ready}, {"cluster", cluster}};
  show(both, [&] {
    print_ready();
    if (field(cluster, "enabled") != true) {
      std::cout << "cluster: disabled (a single node)\n";
      return;
    }
    auto members = field(cluster, "members");
    std::cout << "cluster " << text_of(field(cluster, "cluster_name")) << ", "
              << members.size() << " other member(s)\n\n";
    std::vector<std::vector<std::string>> rows;
    auto self = field(cluster, "self");
    rows.push_back({text_of(field(self, "instance_id")) + " (this node)",
                    text_of(field(self, "address")),
                    text_of(field(self, "state")), "-", "-", "-"});
    for (auto& m : members) {
      auto id = field(m, "instance_id");
      auto since = field(m, "since");
      rows.push_back({id.is_string() && !id.get<std::string>().empty()
                        ? id.get<std::string>()
                        : "(never linked)",
                      text_of(field(m, "address")), text_of(field(m, "state")),
                      since.is_number()
                        ? time_of(since.get<double>() / 1000)
                        : "-",
                      text_of(field(m, "rtt_ms")),
                      text_of(field(m, "clock_offset_ms"))});
    }
    print_table({"MEMBER", "ADDRESS", "STATE", "SINCE", "RTT_MS",
                 "CLOCK_OFFSET_MS"},
                rows);
  });
  return ready_answer.status == 200 ? exit_ok : exit_failed;
}

int admin::sessions() {
  auto& verb = word(1, "sessions command (list, show, revoke, revoke-subject)");
  if (verb == "list") {
    expect_words(3);
    auto out = ok(c_.call(bhttp::verb::get,
                          "/api/subjects/"
                            + percent_encode(word(2, "subject"))
                            + "/sessions"));
    show(out, [&] {
      std::vector<std::vector<std::string>> rows;
      for (auto& s : out["sessions"])
        rows.push_back({text_of(s["sid"]), text_of(s["client_id"]),
                        time_of(s["created_at"]), time_of(s["last_seen"]),
                        time_of(s["expires_at"])});
      print_table({"SID", "CLIENT", "CREATED", "LAST_SEEN", "EXPIRES"}, rows);
    });
    return exit_ok;
  }
  if (verb == "show") {
    expect_words(3);
    auto out = ok(c_.call(bhttp::verb::get,
                          "/api/sessions/" + percent_encode(word(2, "sid"))));
    show(out, [&] { print_fields(out); });
    return exit_ok;
  }
  if (verb == "revoke" || verb == "revoke-subject") {
    expect_words(3);
    auto path = verb == "revoke"
                  ? "/api/sessions/" + percent_encode(word(2, "sid"))
                  : "/api/subjects/" + percent_encode(word(2, "subject"))
                      + "/sessions";
    return revoked(ok(c_.call(bhttp::verb::delete_, path, reason_body())));
  }
  throw failure(exit_usage, "unknown sessions command '" + verb + "'");
}

int admin::revoke() {
  expect_words(3);
  auto& kind = word(1, "what to revoke: sid, sub or jti");
  if (kind != "sid" && kind != "sub" && kind != "jti")
    throw failure(exit_usage, "revoke takes sid, sub or jti, not '" + kind
                                + "'");
  json body{{kind, word(2, "the value to revoke")}};
  if (auto r = flag("--reason"))
    body["reason"] = *r;
  return revoked(ok(c_.call(bhttp::verb::post, "/api/revocations", body)));
}

int admin::users() {
  auto& verb = word(1, "users command (list, show, add, passwd, enable, "
                       "disable, delete)");
  auto user_path = [&] {
    return "/api/admin/users/" + percent_encode(word(2, "username"));
  };
  auto print_user = [&](const json& u) {
    show(u, [&] { print_fields(u); });
  };
  if (verb == "list") {
    expect_words(2);
    std::string query;
    if (auto after = flag("--after"))
      query += "after=" + percent_encode(*after);
    if (auto limit = flag("--limit"))
      query += (query.empty() ? "" : "&") + ("limit=" + percent_encode(*limit));
    auto out = ok(c_.call(bhttp::verb::get,
                          "/api/admin/users"
                            + (query.empty() ? "" : "?" + query)));
    show(out, [&] {
      std::vector<std::vector<std::string>> rows;
      for (auto& u : out["users"])
        rows.push_back({text_of(u["username"]),
                        u.value("enabled", false) ? "yes" : "no",
                        time_of(u["created_at"]), time_of(u["updated_at"])});
      print_table({"USERNAME", "ENABLED", "CREATED", "UPDATED"}, rows);
      if (out.contains("next"))
        std::cout << "(more: --after " << text_of(out["next"]) << ")\n";
    });
    return exit_ok;
  }
  if (verb == "show") {
    expect_words(3);
    print_user(ok(c_.call(bhttp::verb::get, user_path())));
    return exit_ok;
  }
  if (verb == "add") {
    expect_words(3);
    json body{{"username", word(2, "username")},
              {"password", password()},
              {"enabled", !flag("--disabled")}};
    print_user(ok(c_.call(bhttp::verb::post, "/api/admin/users", body)));
    return exit_ok;
  }
  if (verb == "passwd" || verb == "enable" || verb == "disable") {
    expect_words(3);
    auto path = user_path();
    json body = verb == "passwd" ? json{{"password", password()}}
                                 : json{{"enabled", verb == "enable"}};
    print_user(ok(c_.call(bhttp::verb::patch, path, body)));
    return exit_ok;
  }
  if (verb == "delete") {
    expect_words(3);
    ok(c_.call(bhttp::verb::delete_, user_path()));
    if (!o_.json)
      std::cout << "deleted user " << o_.words[2] << '\n';
    return exit_ok;
  }
  throw failure(exit_usage, "unknown users command '" + verb + "'");
}

int admin::groups() {
  auto& verb = word(1, "groups command (list, show, add, delete, add-member, "
                       "remove-member, grant, ungrant)");
  auto group_path = [&] {
    return "/api/admin/groups/" + percent_encode(word(2, "group"));
  };
  auto done = [&](const std::string& what) {
    if (!o_.json)
      std::cout << what << '\n';
    return exit_ok;
  };
  if (verb == "list") {
    expect_words(2);
    auto out = ok(c_.call(bhttp::verb::get, "/api/admin/groups"));
    show(out, [&] {
      std::vector<std::vector<std::string>> rows;
      for (auto& g : out["groups"])
        rows.push_back({text_of(g["name"]), time_of(g["created_at"])});
      print_table({"GROUP", "CREATED"}, rows);
    });
    return exit_ok;
  }
  if (verb == "show" || verb == "add") {
    expect_words(3);
    auto out = verb == "show"
                 ? ok(c_.call(bhttp::verb::get, group_path()))
                 : ok(c_.call(bhttp::verb::post, "/api/admin/groups",
                              json{{"name", word(2, "group")}}));
    show(out, [&] { print_fields(out); });
    return exit_ok;
  }
  if (verb == "delete") {
    expect_words(3);
    ok(c_.call(bhttp::verb::delete_, group_path()));
    return done("deleted group " + o_.words[2]);
  }
  if (verb == "add-member" || verb == "remove-member") {
    expect_words(4);
    auto path = group_path() + "/members/" + percent_encode(word(3, "username"));
    ok(c_.call(verb == "add-member" ? bhttp::verb::put : bhttp::verb::delete_,
               path));
    return done((verb == "add-member" ? "added " : "removed ") + o_.words[3]
                + (verb == "add-member" ? " to " : " from ") + o_.words[2]);
  }
  if (verb == "grant" || verb == "ungrant") {
    expect_words(4);
    auto path = group_path() + "/claims/" + percent_encode(word(3, "claim id"));
    ok(c_.call(verb == "grant" ? bhttp::verb::put : bhttp::verb::delete_,
               path));
    return done((verb == "grant" ? "granted claim " : "ungranted claim ")
                + o_.words[3] + (verb == "grant" ? " to " : " from ")
                + o_.words[2]);
  }
  throw failure(exit_usage, "unknown groups command '" + verb + "'");
}

int admin::claims() {
  auto& verb = word(1, "claims command (list, add, delete)");
  if (verb == "list") {
    expect_words(2);
    auto out = ok(c_.call(bhttp::verb::get, "/api/admin/claims"));
    show(out, [&] {
      std::vector<std::vector<std::string>> rows;
      for (auto& c : out["claims"])
        rows.push_back({text_of(c["id"]), text_of(c["name"]),
                        text_of(c["value"]), text_of(c["description"])});
      print_table({"ID", "NAME", "VALUE", "DESCRIPTION"}, rows);
    });
    return exit_ok;
  }
  if (verb == "add") {
    expect_words(4);
    json body{{"name", word(2, "claim name")}, {"value", word(3, "value")}};
    if (auto d = flag("--description"))
      body["description"] = *d;
    auto out = ok(c_.call(bhttp::verb::post, "/api/admin/claims", body));
    show(out, [&] { print_fields(out); });
    return exit_ok;
  }
  if (verb == "delete") {
    expect_words(3);
    ok(c_.call(bhttp::verb::delete_,
               "/api/admin/claims/" + percent_encode(word(2, "claim id"))));
    if (!o_.json)
      std::cout << "deleted claim " << o_.words[2] << '\n';
    return exit_ok;
  }
  throw failure(exit_usage, "unknown claims command '" + verb + "'");
}

int admin::keys() {
  auto& verb = word(1, "keys command (show, rotate)");
  expect_words(2);
  if (verb == "show") {
    auto out = ok(c_.call(bhttp::verb::get, "/api/pkeys"));
    show(out, [&] {
      std::vector<std::vector<std::string>> rows;
      for (auto& k : out["keys"])
        rows.push_back({text_of(k["kid"]), text_of(k["alg"]), text_of(k["kty"]),
                        k.contains("crv") ? text_of(k["crv"]) : "-",
                        k.contains("use") ? text_of(k["use"]) : "-"});
      print_table({"KID", "ALG", "KTY", "CRV", "USE"}, rows);
    });
    return exit_ok;
  }
  if (verb == "rotate") {
    auto out = ok(c_.call(bhttp::verb::post, "/api/keys/rotate"));
    show(out, [&] {
      std::cout << "signing with " << text_of(out["signing_kid"])
                << ", next " << text_of(out["next_kid"]) << '\n';
    });
    return exit_ok;
  }
  throw failure(exit_usage, "unknown keys command '" + verb + "'");
}

int admin::tail() {
  expect_words(1);
  std::optional<long> count;
  if (auto n = flag("--count")) {
    try {
      count = std::stol(*n);
    } catch (const std::exception&) {
      count = 0;
    }
    if (*count < 1)
      throw failure(exit_usage, "--count needs a positive number");
  }
  std::string path = "/api/events";
  if (auto topics = flag("--topics"))
    path += "?topics=" + percent_encode(*topics);
  long seen = 0;
  net::sse_reader reader{[&](const net::sse_event& ev) {
    ++seen;
    auto parsed = json::parse(ev.data, nullptr, false);
    auto field = [&](const char* name) {
      return parsed.is_object() && parsed.contains(name) ? parsed[name]
                                                         : json{};
    };
    constexpr auto replace = json::error_handler_t::replace;
    if (o_.json) {
      json j{{"id", ev.id}, {"event", ev.type}};
      j["data"] = parsed.is_discarded() ? json(ev.data) : parsed;
      std::cout << j.dump(-1, ' ', false, replace) << '\n';
    } else if (field("payload").is_null()) {
      std::cout << ev.type << "  " << ev.data << '\n';
    } else {
      auto at = field("at");
      std::cout << (at.is_number() ? time_of(at.get<double>() / 1000) : "-")
                << "  " << ev.type << "  " << text_of(field("origin")) << "  "
                << field("payload").dump(-1, ' ', false, replace) << '\n';
    }
    std::cout.flush();
    // A reader that went away (tail | head) ends the command.
    return std::cout.good() && (!count || seen < *count);
  }};
  bool too_long = false;
  auto out = c_.stream(
    path, flag("--last-event-id").value_or(""),
    [&] {
      if (!o_.json && ::isatty(STDOUT_FILENO))
        std::cerr << "keymesh admin: following " << path
                  << " (Ctrl-C to stop)\n";
      else
        std::cerr << "keymesh admin: following " << path << '\n';
    },
    [&](std::string_view bytes) {
      auto st = reader.feed(bytes);
      too_long = st == net::sse_reader::status::too_long;
      return st == net::sse_reader::status::more;
    });
  if (out.status != 200)
    ok(out);
  if (too_long)
    throw failure(exit_failed, "the event stream sent a line over 1 MiB");
  if (!out.stopped && count)
    throw failure(exit_unreachable,
                  "the node ended the stream after " + std::to_string(seen)
                    + " of " + std::to_string(*count) + " events");
  return exit_ok;
}

/// Splits ARGS into global options, per-command flags and words.
options parse(const std::vector<std::string>& args) {
  static const std::map<std::string, bool> known = {
    // flag → takes a value
    {"--url", true},         {"--config", true},   {"--key-file", true},
    {"--json", false},       {"--timeout", true},  {"--reason", true},
    {"--after", true},       {"--limit", true},    {"--disabled", false},
    {"--password-file", true}, {"--description", true}, {"--topics", true},
    {"--last-event-id", true}, {"--count", true},
  };
  options o;
  bool options_end = false;
  for (size_t i = 0; i < args.size(); ++i) {
    auto arg = args[i];
    if (arg == "--" && !options_end) {
      options_end = true; // what follows are words, even "--x"
      continue;
    }
    if (!options_end && (arg == "-h" || arg == "--help")) {
      o.help = true;
      continue;
    }
    if (options_end || arg.rfind("--", 0) != 0) {
      o.words.push_back(arg);
      continue;
    }
    std::string value;
    bool inline_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      inline_value = true;
    }
    auto k = known.find(arg);
    if (k == known.end())
      throw failure(exit_usage, "unknown option " + arg);
    if (k->second && !inline_value) {
      if (i + 1 >= args.size())
        throw failure(exit_usage, arg + " needs a value");
      value = args[++i];
    } else if (!k->second && inline_value) {
      throw failure(exit_usage, arg + " takes no value");
    }
    if (arg == "--url")
      o.url = value;
    else if (arg == "--config")
      o.config = value;
    else if (arg == "--key-file")
      o.key_file = value;
    else if (arg == "--json")
      o.json = true;
    else if (arg == "--timeout") {
      long s = 0;
      try {
        s = std::stol(value);
      } catch (const std::exception&) {
      }
      if (s < 1 || s > 86400)
        throw failure(exit_usage, "--timeout needs seconds from 1 to 86400");
      o.timeout = std::chrono::seconds{s};
      o.timeout_set = true;
    } else
      o.flags[arg] = value;
  }
  return o;
}

} // namespace

int run_admin(const std::vector<std::string>& args, char** envp) {
  try {
    auto o = parse(args);
    if (o.help) {
      std::cout << admin_help;
      return exit_ok;
    }
    if (o.words.empty())
      throw failure(exit_usage, "missing command");
    if (o.words[0] == "tail" && !o.timeout_set)
      o.timeout = std::chrono::seconds{60};
    auto [where, key] = resolve(o, envp);
    client c{std::move(where), std::move(key), o.timeout};
    auto code = admin{std::move(o), c}.run();
    // Output that could not be written (a full disk, a closed pipe) is a
    // failure, even when the node did what was asked.
    std::cout.flush();
    return std::cout.good() ? code : exit_failed;
  } catch (const failure& f) {
    std::cerr << "keymesh admin: " << f.what() << '\n';
    if (f.code == exit_usage)
      std::cerr << "(keymesh admin --help shows the commands)\n";
    return f.code;
  } catch (const std::exception& e) {
    std::cerr << "keymesh admin: " << e.what() << '\n';
    return exit_failed;
  }
}

} // namespace keymesh::cli
