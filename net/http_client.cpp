#include "net/http_client.hpp"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace keymesh::net {

namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;
using error_code = boost::system::error_code;

constexpr size_t max_url_length = 8192;
constexpr size_t max_host_length = 253;
constexpr size_t max_header_bytes = 64 * 1024;
// Bytes the parser has not consumed yet: a header, a chunk line. Bodies go
// straight into the string, so this bounds only framing.
constexpr size_t max_buffered_bytes = 2 * max_header_bytes;

bool is_dns_name(std::string_view host) {
  if (host.empty() || host.size() > max_host_length)
    return false;
  size_t start = 0;
  while (start <= host.size()) {
    auto dot = host.find('.', start);
    auto label = host.substr(start, dot == std::string_view::npos
                                        ? std::string_view::npos
                                        : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' ||
        label.back() == '-')
      return false;
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
        return false;
    if (dot == std::string_view::npos)
      break;
    start = dot + 1;
  }
  return true;
}

/// Host and port of a URL's authority (user info is refused before).
bool parse_authority(std::string_view authority, parsed_url& out,
                     std::string& error) {
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "unterminated IPv6 address";
      return false;
    }
    auto literal = std::string{authority.substr(1, close - 1)};
    error_code ec;
    net::ip::make_address_v6(literal, ec);
    if (ec || literal.find('%') != std::string::npos) {
      error = "\"" + literal + "\" is not an IPv6 address";
      return false;
    }
    out.host = literal;
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        error = "unexpected characters after the IPv6 address";
        return false;
      }
      has_port = true;
      port_text = rest.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    if (colon != std::string_view::npos &&
        authority.find(':', colon + 1) != std::string_view::npos) {
      error = "an IPv6 address must be in brackets";
      return false;
    }
    auto host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (host.empty()) {
      error = "no host";
      return false;
    }
    std::string lowered;
    for (char c : host)
      lowered += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool numeric = std::all_of(lowered.begin(), lowered.end(), [](char c) {
      return c == '.' || std::isdigit(static_cast<unsigned char>(c));
    });
    if (numeric) {
      error_code ec;
      net::ip::make_address_v4(lowered, ec);
      if (ec) {
        error = "\"" + lowered + "\" is not an IPv4 address";
        return false;
      }
    } else if (!is_dns_name(lowered)) {
      error = "\"" + std::string{host} + "\" is not a valid host name";
      return false;
    }
    out.host = std::move(lowered);
  }
  if (has_port) {
    if (port_text.empty() || port_text.size() > 5 ||
        !std::all_of(port_text.begin(), port_text.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      error = "invalid port \"" + std::string{port_text} + "\"";
      return false;
    }
    auto port = std::stoul(std::string{port_text});
    if (port == 0 || port > 65535) {
      error = "port " + std::string{port_text} + " is out of range";
      return false;
    }
    out.port = static_cast<uint16_t>(port);
  }
  return true;
}

/// What one exchange sends.
struct outgoing {
  bhttp::verb method = bhttp::verb::get;
  std::string if_none_match;
  std::string content_type;
  std::string body;
};

bool is_public_v4(const net::ip::address_v4& a) {
  auto in = [&](unsigned net, unsigned bits) {
    auto x = a.to_uint();
    auto mask = bits == 0 ? 0u : ~0u << (32 - bits);
    return (x & mask) == (net & mask);
  };
  return !(in(0x00000000, 8)         // "this network"
           || in(0x0a000000, 8)      // private
           || in(0x64400000, 10)     // shared (carrier-grade NAT)
           || in(0x7f000000, 8)      // loopback
           || in(0xa9fe0000, 16)     // link-local
           || in(0xac100000, 12)     // private
           || in(0xc0000000, 24)     // IETF protocol assignments
           || in(0xc0000200, 24)     // documentation
           || in(0xc0a80000, 16)     // private
           || in(0xc6120000, 15)     // benchmarking
           || in(0xc6336400, 24)     // documentation
           || in(0xcb007100, 24)     // documentation
           || in(0xe0000000, 4)      // multicast
           || in(0xf0000000, 4));    // reserved, broadcast
}

bool is_public(const net::ip::address& address) {
  if (address.is_v4())
    return is_public_v4(address.to_v4());
  auto v6 = address.to_v6();
  if (v6.is_v4_mapped())
    return is_public_v4(
      net::ip::make_address_v4(net::ip::v4_mapped, v6));
  auto b = v6.to_bytes();
  if (v6.is_unspecified() || v6.is_loopback() || v6.is_multicast()
      || v6.is_link_local() || v6.is_site_local())
    return false;
  if ((b[0] & 0xfe) == 0xfc) // unique local
    return false;
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
    return false; // documentation
  // NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible form carry an
  // IPv4 address: judged as that address.
  bool nat64 = b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b
               && std::all_of(b.begin() + 4, b.begin() + 12,
                              [](unsigned char c) { return c == 0; });
  bool compat = std::all_of(b.begin(), b.begin() + 12,
                            [](unsigned char c) { return c == 0; });
  if (nat64 || compat)
    return is_public_v4(net::ip::address_v4{
      net::ip::address_v4::bytes_type{b[12], b[13], b[14], b[15]}});
  return true;
}

/// Completion state of the one asynchronous operation in flight.
struct step {
  bool done = false;
  error_code ec;
};

/// Name resolution on a thread of its own: getaddrinfo cannot be cancelled,
/// and the deadline must hold even when DNS does not answer. A resolution
/// that outlives its deadline finishes unobserved and frees its state.
struct resolution {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  error_code ec;
  std::vector<tcp::endpoint> endpoints;
};

/// One request: every step waits on one local io_context until the operation
/// completes or the deadline of the whole exchange passes.
class exchange {
public:
  exchange(const parsed_url& url, const fetch_options& opts)
      : url_(url)
      , opts_(opts)
      , deadline_(steady::now() + opts.timeout)
      , where_((url.host.find(':') == std::string::npos
                    ? url.host
                    : "[" + url.host + "]") +
               ":" + std::to_string(url.port)) {}

  fetch_result run(const outgoing& out) {
    fetch_result result;
    std::vector<tcp::endpoint> endpoints;
    if (!resolve(endpoints, result.error))
      return result;
    if (opts_.public_only) {
      endpoints.erase(std::remove_if(endpoints.begin(), endpoints.end(),
                                     [](const tcp::endpoint& e) {
                                       return !is_public(e.address());
                                     }),
                      endpoints.end());
      if (endpoints.empty()) {
        result.refused = true;
        result.error = url_.host
                       + " is refused: it has no public address (loopback, "
                         "private and other non-public ranges are not "
                         "allowed)";
        return result;
      }
    }
    tcp::socket socket{ioc_};
    if (!connect(socket, endpoints, result.error))
      return result;
    if (!url_.tls) {
      transfer(socket, out, result);
      return result;
    }
    ssl::context ctx{ssl::context::tls_client};
    if (!configure_tls(ctx, result.error))
      return result;
    ssl::stream<tcp::socket> stream{std::move(socket), ctx};
    if (!handshake(stream, result.error))
      return result;
    transfer(stream, out, result);
    return result;
  }

private:
  /// Runs the io_context until S completes (true) or the deadline passes:
  /// then CANCEL aborts the operation and the aborted handler is drained.
  bool wait(step& s, const std::function<void()>& cancel) {
    ioc_.restart();
    ioc_.run_until(deadline_);
    if (s.done)
      return true;
    cancel();
    ioc_.restart();
    ioc_.run();
    return false;
  }

  auto on_done(step& s) {
    return [&s](error_code ec, auto&&...) {
      s.ec = ec;
      s.done = true;
    };
  }

  bool resolve(std::vector<tcp::endpoint>& out, std::string& error) {
    error_code ec;
    auto address = net::ip::make_address(url_.host, ec);
    if (!ec) {
      out.emplace_back(address, url_.port);
      return true;
    }
    auto job = std::make_shared<resolution>();
    std::thread{[job, host = url_.host, port = std::to_string(url_.port)] {
      net::io_context ioc;
      tcp::resolver resolver{ioc};
      error_code ec;
      auto results =
          resolver.resolve(host, port, tcp::resolver::numeric_service, ec);
      std::vector<tcp::endpoint> endpoints;
      for (auto& entry : results)
        endpoints.push_back(entry.endpoint());
      std::lock_guard<std::mutex> guard{job->mutex};
      job->ec = ec;
      job->endpoints = std::move(endpoints);
      job->done = true;
      job->done_cv.notify_all();
    }}.detach();
    std::unique_lock<std::mutex> lock{job->mutex};
    if (!job->done_cv.wait_until(lock, deadline_, [&] { return job->done; })) {
      error = "timed out resolving " + url_.host;
      return false;
    }
    if (job->ec || job->endpoints.empty()) {
      error = "cannot resolve " + url_.host + ": " +
              (job->ec ? job->ec.message() : "no addresses");
      return false;
    }
    out = std::move(job->endpoints);
    return true;
  }

  bool connect(tcp::socket& socket, const std::vector<tcp::endpoint>& endpoints,
               std::string& error) {
    error_code ec;
    step s;
    net::async_connect(socket, endpoints, on_done(s));
    if (!wait(s, [&] { socket.close(ec); })) {
      error = "timed out connecting to " + where_;
      return false;
    }
    if (s.ec) {
      error = "cannot connect to " + where_ + ": " + s.ec.message();
      return false;
    }
    return true;
  }

  bool configure_tls(ssl::context& ctx, std::string& error) {
    if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) !=
        1) {
      error = "cannot require TLS 1.2";
      return false;
    }
    ctx.set_options(ssl::context::default_workarounds |
                    ssl::context::no_compression);
    error_code ec;
    if (opts_.ca_file.empty())
      ctx.set_default_verify_paths(ec);
    else
      ctx.load_verify_file(opts_.ca_file, ec);
    if (ec) {
      error =
          opts_.ca_file.empty()
              ? "cannot load the system's trusted certificates: " + ec.message()
              : "cannot load CA file " + opts_.ca_file + ": " + ec.message();
      return false;
    }
    ctx.set_verify_mode(ssl::verify_peer, ec);
    return !ec;
  }

  bool handshake(ssl::stream<tcp::socket>& stream, std::string& error) {
    auto* handle = stream.native_handle();
    // The certificate must name the host: an IP address as an iPAddress SAN,
    // a DNS name as a dNSName SAN (wildcards only for a whole label). SNI is
    // for DNS names only (RFC 6066 §3).
    error_code ec;
    net::ip::make_address(url_.host, ec);
    bool named = false;
    if (!ec)
      named = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle),
                                            url_.host.c_str()) == 1;
    else {
      SSL_set_hostflags(handle, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      named = SSL_set1_host(handle, url_.host.c_str()) == 1 &&
              SSL_set_tlsext_host_name(handle, url_.host.c_str()) == 1;
    }
    if (!named) {
      error = "cannot set up TLS verification for " + url_.host;
      return false;
    }
    step s;
    stream.async_handshake(ssl::stream_base::client, on_done(s));
    if (!wait(s, [&] { stream.lowest_layer().close(ec); })) {
      error = "timed out in the TLS handshake with " + where_;
      return false;
    }
    if (s.ec) {
      error = "TLS handshake with " + where_ + " failed: " + s.ec.message();
      auto verdict = SSL_get_verify_result(handle);
      if (verdict != X509_V_OK)
        error +=
            std::string{" ("} + X509_verify_cert_error_string(verdict) + ")";
      return false;
    }
    return true;
  }

  template<class Stream>
  void transfer(Stream& stream, const outgoing& out, fetch_result& result) {
    auto cancel = [&] {
      error_code ignored;
      beast::get_lowest_layer(stream).close(ignored);
    };
    bhttp::request<bhttp::string_body> req{out.method, url_.target, 11};
    req.set(bhttp::field::host, url_.host_header);
    req.set(bhttp::field::user_agent, "keymesh");
    if (!out.if_none_match.empty())
      req.set(bhttp::field::if_none_match, out.if_none_match);
    if (out.method != bhttp::verb::get) {
      req.set(bhttp::field::content_type, out.content_type);
      req.body() = out.body;
      req.prepare_payload();
    }
    req.keep_alive(false);
    step sent;
    bhttp::async_write(stream, req, on_done(sent));
    if (!wait(sent, cancel)) {
      result.error = "timed out sending the request to " + where_;
      return;
    }
    if (sent.ec) {
      result.error =
          "cannot send the request to " + where_ + ": " + sent.ec.message();
      return;
    }
    beast::flat_buffer buffer{max_buffered_bytes};
    bhttp::response_parser<bhttp::string_body> parser;
    parser.header_limit(max_header_bytes);
    parser.body_limit(opts_.max_body_bytes);
    // The header first: Beast 1.74 lets a response body over the limit
    // through when it arrives with the header (the Content-Length check's
    // error is overwritten by the eager parse), so the length is checked
    // here; chunked and EOF-delimited bodies are counted by the parser.
    step header;
    bhttp::async_read_header(stream, buffer, parser, on_done(header));
    if (!wait(header, cancel)) {
      result.error = "timed out reading the response from " + where_;
      return;
    }
    auto ec = header.ec;
    if (!ec && parser.content_length() &&
        *parser.content_length() > opts_.max_body_bytes)
      ec = bhttp::error::body_limit;
    if (!ec && !parser.is_done()) {
      step body;
      bhttp::async_read(stream, buffer, parser, on_done(body));
      if (!wait(body, cancel)) {
        result.error = "timed out reading the response from " + where_;
        return;
      }
      ec = body.ec;
    }
    if (ec == bhttp::error::body_limit) {
      result.error = "the response from " + where_ + " exceeds " +
                     std::to_string(opts_.max_body_bytes) + " bytes";
      return;
    }
    if (ec == bhttp::error::header_limit ||
        ec == bhttp::error::buffer_overflow) {
      result.error = "the response header from " + where_ + " is too large";
      return;
    }
    if (ec) {
      result.error =
          "cannot read the response from " + where_ + ": " + ec.message();
      return;
    }
    auto res = parser.release();
    result.status = static_cast<int>(res.result_int());
    if (auto etag = res.find(bhttp::field::etag); etag != res.end())
      result.etag = std::string{etag->value()};
    if (auto to = res.find(bhttp::field::location); to != res.end())
      result.location = std::string{to->value()};
    result.body = std::move(res.body());
  }

  net::io_context ioc_{1};
  const parsed_url& url_;
  const fetch_options& opts_;
  steady::time_point deadline_;
  /// host:port for messages.
  std::string where_;
};

bool is_header_value(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
}

fetch_result failed_fetch(std::string why) {
  fetch_result r;
  r.error = std::move(why);
  return r;
}

} // namespace

std::optional<parsed_url> parse_url(std::string_view url, std::string& error) {
  auto refuse = [&](std::string why) -> std::optional<parsed_url> {
    error = "invalid URL: " + why;
    return std::nullopt;
  };
  if (url.empty())
    return refuse("empty");
  if (url.size() > max_url_length)
    return refuse("longer than " + std::to_string(max_url_length) +
                  " characters");
  for (char c : url) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f)
      return refuse("contains whitespace, control or non-ASCII characters");
  }
  auto sep = url.find("://");
  if (sep == std::string_view::npos)
    return refuse("no scheme");
  std::string scheme;
  for (char c : url.substr(0, sep))
    scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  parsed_url out;
  if (scheme == "https") {
    out.tls = true;
    out.port = 443;
  } else if (scheme == "http") {
    out.port = 80;
  } else {
    return refuse("scheme must be http or https");
  }
  auto rest = url.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos)
    return refuse("fragments are not allowed");
  auto end = rest.find_first_of("/?");
  auto authority = rest.substr(0, end);
  if (authority.find('@') != std::string_view::npos)
    return refuse("user info is not allowed");
  if (authority.empty())
    return refuse("no host");
  std::string why;
  if (!parse_authority(authority, out, why))
    return refuse(why);
  if (end == std::string_view::npos)
    out.target = "/";
  else if (rest[end] == '?')
    out.target = "/" + std::string{rest.substr(end)};
  else
    out.target = std::string{rest.substr(end)};
  bool v6 = out.host.find(':') != std::string::npos;
  out.host_header = v6 ? "[" + out.host + "]" : out.host;
  if (out.port != (out.tls ? 443 : 80))
    out.host_header += ":" + std::to_string(out.port);
  return out;
}

namespace {

/// Sends OUT to URL once; HEADER is the one caller-given header value
/// (named WHAT), checked first.
fetch_result send_once(const std::string& url, const outgoing& out,
                       std::string_view header, const char* what,
                       const fetch_options& opts) {
  try {
    std::string error;
    auto parsed = parse_url(url, error);
    if (!parsed)
      return failed_fetch(error);
    if (!is_header_value(header))
      return failed_fetch(std::string{what} + " holds invalid characters");
    exchange ex{*parsed, opts};
    return ex.run(out);
  } catch (const std::exception& e) {
    return failed_fetch(std::string{bhttp::to_string(out.method)}
                        + " failed: " + e.what());
  }
}

} // namespace

fetch_result http_get(const std::string& url, const std::string& if_none_match,
                      const fetch_options& opts) {
  return send_once(url, outgoing{bhttp::verb::get, if_none_match, {}, {}},
                   if_none_match, "If-None-Match", opts);
}

fetch_result http_post(const std::string& url, const std::string& content_type,
                       const std::string& body, const fetch_options& opts) {
  return send_once(url, outgoing{bhttp::verb::post, {}, content_type, body},
                   content_type, "Content-Type", opts);
}

bool is_public_address(std::string_view address) {
  error_code ec;
  auto a = net::ip::make_address(std::string{address}, ec);
  return !ec && is_public(a);
}

} // namespace keymesh::net
