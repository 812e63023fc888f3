#include "actors/srv_resolver.hpp"

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/atoms.hpp"
#include "actors/error.hpp"

namespace keymesh {

namespace {

// Room for any answer, including one that came over TCP after truncation.
constexpr size_t max_answer_bytes = 65535;

/// Parses "a.b.c.d:port" (or "a.b.c.d") into ADDR; false with ERROR if not.
bool parse_nameserver(const std::string& text, sockaddr_in& addr,
                      std::string& error) {
  auto colon = text.rfind(':');
  auto host = text.substr(0, colon);
  unsigned long port = 53;
  if (colon != std::string::npos) {
    auto digits = text.substr(colon + 1);
    if (digits.empty() || digits.size() > 5 ||
        !std::all_of(digits.begin(), digits.end(),
                     [](char c) { return c >= '0' && c <= '9'; }) ||
        (port = std::stoul(digits)) == 0 || port > 65535) {
      error = "nameserver \"" + text + "\": bad port";
      return false;
    }
  }
  addr = sockaddr_in{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    error = "nameserver \"" + text + "\": not an IPv4 address with a port";
    return false;
  }
  return true;
}

std::string lookup_failure(int herr) {
  switch (herr) {
  case TRY_AGAIN:
    return "no answer from the nameserver (timeout, refused or SERVFAIL)";
  case NO_RECOVERY:
    return "the nameserver refused the query or sent an unusable answer";
  default:
    return "lookup failed (h_errno " + std::to_string(herr) + ")";
  }
}

} // namespace

std::vector<srv_record> parse_srv_answer(const unsigned char* msg,
                                         size_t length, std::string& error) {
  ns_msg handle;
  if (length > max_answer_bytes ||
      ns_initparse(msg, static_cast<int>(length), &handle) != 0) {
    error = "malformed DNS answer";
    return {};
  }
  std::vector<srv_record> records;
  auto count = ns_msg_count(handle, ns_s_an);
  for (int i = 0; i < count; ++i) {
    ns_rr rr;
    if (ns_parserr(&handle, ns_s_an, i, &rr) != 0) {
      error = "malformed DNS answer record " + std::to_string(i);
      return {};
    }
    if (ns_rr_type(rr) != ns_t_srv || ns_rr_class(rr) != ns_c_in)
      continue; // e.g. the CNAME that led to the SRV records
    const unsigned char* rdata = ns_rr_rdata(rr);
    if (ns_rr_rdlen(rr) < 7) {
      error = "SRV record " + std::to_string(i) + " is too short";
      return {};
    }
    char target[NS_MAXDNAME];
    // The target may be compressed against any part of the message, but
    // must not run past the end of this record's data.
    int used = dn_expand(ns_msg_base(handle), rdata + ns_rr_rdlen(rr),
                         rdata + 6, target, sizeof target);
    if (used < 0 || used != ns_rr_rdlen(rr) - 6) {
      error = "SRV record " + std::to_string(i) + " has a bad target";
      return {};
    }
    srv_record rec;
    rec.priority = ns_get16(rdata);
    rec.weight = ns_get16(rdata + 2);
    rec.port = ns_get16(rdata + 4);
    rec.target = target;
    while (!rec.target.empty() && rec.target.back() == '.')
      rec.target.pop_back();
    if (rec.target.empty())
      continue; // "." : the service is decidedly not available there
    records.push_back(std::move(rec));
  }
  std::sort(records.begin(), records.end(),
            [](const srv_record& a, const srv_record& b) {
              return std::make_tuple(a.priority, -int{a.weight},
                                     std::cref(a.target), a.port) <
                     std::make_tuple(b.priority, -int{b.weight},
                                     std::cref(b.target), b.port);
            });
  return records;
}

std::vector<std::string> srv_addresses(const std::vector<srv_record>& records) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (auto& rec : records) {
    auto address = rec.target + ":" + std::to_string(rec.port);
    if (seen.insert(address).second)
      out.push_back(std::move(address));
  }
  return out;
}

std::vector<std::string> resolve_srv(const std::string& name,
                                     const std::string& nameserver,
                                     std::chrono::milliseconds timeout,
                                     std::string& error) {
  error.clear();
  sockaddr_in server{};
  if (!nameserver.empty() && !parse_nameserver(nameserver, server, error))
    return {};
  struct __res_state state;
  std::memset(&state, 0, sizeof state);
  if (res_ninit(&state) != 0) {
    res_nclose(&state);
    error = "cannot initialise the resolver";
    return {};
  }
  if (!nameserver.empty()) {
    state.nsaddr_list[0] = server;
    state.nscount = 1;
    auto seconds = (std::max<int64_t>(timeout.count(), 1) + 999) / 1000;
    state.retrans = static_cast<int>(std::min<int64_t>(seconds, 30));
    state.retry = 1;
  }
  std::vector<unsigned char> answer(max_answer_bytes);
  int length = res_nquery(&state, name.c_str(), ns_c_in, ns_t_srv,
                          answer.data(), static_cast<int>(answer.size()));
  auto herr = state.res_h_errno;
  res_nclose(&state);
  if (length < 0) {
    if (herr == HOST_NOT_FOUND || herr == NO_DATA)
      return {}; // NXDOMAIN or no SRV records: nothing there, not a failure
    error = "SRV " + name + ": " + lookup_failure(herr);
    return {};
  }
  auto records = parse_srv_answer(
      answer.data(), std::min(static_cast<size_t>(length), answer.size()),
      error);
  if (!error.empty())
    error = "SRV " + name + ": " + error;
  return srv_addresses(records);
}

namespace {

class srv_resolver_state {
public:
  static inline const char* name = "srv_resolver";

  std::vector<std::string> names;
  std::string nameserver;
  std::chrono::milliseconds poll_interval{0};
  std::function<void(std::vector<std::string>)> on_result;
  /// Id of the one pending timer; ticks with another id are ignored.
  uint64_t timer_id = 0;

  /// Resolves every name once; returns the union of what was found.
  std::vector<std::string> resolve_all() {
    std::vector<std::string> found;
    std::set<std::string> seen;
    for (auto& srv_name : names) {
      std::string error;
      auto addresses =
          resolve_srv(srv_name, nameserver, srv_query_timeout, error);
      report(srv_name, error);
      for (auto& address : addresses)
        if (seen.insert(address).second)
          found.push_back(std::move(address));
    }
    return found;
  }

private:
  // Warns when a name starts failing and when it recovers, not every poll.
  void report(const std::string& srv_name, const std::string& error) {
    auto failing = failing_.count(srv_name) > 0;
    if (!error.empty() && !failing) {
      spdlog::warn("srv_resolver: {}; retrying every {} ms", error,
                   poll_interval.count());
      failing_.insert(srv_name);
    } else if (error.empty() && failing) {
      spdlog::info("srv_resolver: SRV {} resolves again", srv_name);
      failing_.erase(srv_name);
    }
  }

  std::set<std::string> failing_;
};

using srv_resolver_pointer
  = srv_resolver_actor::stateful_pointer<srv_resolver_state>;

srv_resolver_actor::behavior_type
srv_resolver(srv_resolver_pointer self, std::vector<std::string> names,
             std::string nameserver, std::chrono::milliseconds poll_interval,
             std::function<void(std::vector<std::string>)> on_result) {
  std::string problem;
  if (names.empty())
    problem = "cluster.srv.names is empty";
  else if (poll_interval.count() <= 0)
    problem = "cluster.srv.poll_interval must be > 0";
  if (!problem.empty()) {
    spdlog::error("srv_resolver: {}; not resolving", problem);
    self->quit(make_error(ec::invalid_argument, problem));
    return {[](atom::tick, uint64_t) {}};
  }
  auto& st = self->state;
  st.names = std::move(names);
  st.nameserver = std::move(nameserver);
  st.poll_interval = poll_interval;
  st.on_result = std::move(on_result);
  // Every exit message ends the actor, also one with reason normal.
  self->set_exit_handler(
      [self](caf::exit_msg& msg) { self->quit(std::move(msg.reason)); });
  self->send(self, atom::tick_v, ++st.timer_id);
  return {
      [self](atom::tick, uint64_t id) {
        auto& st = self->state;
        if (id != st.timer_id)
          return;
        auto found = st.resolve_all();
        if (st.on_result)
          st.on_result(std::move(found));
        self->delayed_send(self, st.poll_interval, atom::tick_v, ++st.timer_id);
      },
  };
}

} // namespace

srv_resolver_actor
spawn_srv_resolver(caf::actor_system& sys, std::vector<std::string> names,
                   std::string nameserver,
                   std::chrono::milliseconds poll_interval,
                   std::function<void(std::vector<std::string>)> on_result) {
  return sys.spawn<caf::detached>(srv_resolver, std::move(names),
                                  std::move(nameserver), poll_interval,
                                  std::move(on_result));
}

} // namespace keymesh
