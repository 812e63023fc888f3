// Back-channel logout's pure parts: which addresses count as public, how
// an attempt's answer is judged, the retry schedule, and the form body.
#define CAF_SUITE logout
#include "caf/test/dsl.hpp"

#include "net/http_client.hpp"
#include "services/logout.hpp"

using namespace keymesh;
using namespace std::chrono_literals;

CAF_TEST(only public unicast addresses are public) {
  for (auto a : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255",
                 "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
                 "224.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
                 "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
                 "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1",
                 "2001:db8::1", "not an address"}) {
    CAF_MESSAGE(a);
    CAF_CHECK(!net::is_public_address(a));
  }
  for (auto a : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1",
                 "2606:4700:4700::1111", "::ffff:8.8.8.8"}) {
    CAF_MESSAGE(a);
    CAF_CHECK(net::is_public_address(a));
  }
}

CAF_TEST(answers are judged delivered retried or final) {
  std::string why;
  auto judge = [&](int status, bool refused = false) {
    return judge_delivery(post_result{status, status == 0 ? "refused" : "",
                                      refused, "https://elsewhere/"},
                          why);
  };
  CAF_CHECK(judge(200) == delivery_verdict::delivered);
  CAF_CHECK(judge(204) == delivery_verdict::delivered);
  CAF_CHECK(judge(0) == delivery_verdict::retry);
  CAF_CHECK(judge(503) == delivery_verdict::retry);
  CAF_CHECK(judge(500) == delivery_verdict::retry);
  CAF_CHECK(judge(429) == delivery_verdict::retry);
  CAF_CHECK(judge(408) == delivery_verdict::retry);
  CAF_CHECK(judge(400) == delivery_verdict::final);
  CAF_CHECK(judge(404) == delivery_verdict::final);
  CAF_CHECK(judge(201) == delivery_verdict::final);
  CAF_CHECK(judge(302) == delivery_verdict::final);
  CAF_CHECK(why.find("redirects are not followed") != std::string::npos);
  CAF_CHECK(why.find("https://elsewhere/") != std::string::npos);
  CAF_CHECK(judge(0, true) == delivery_verdict::final);
}

CAF_TEST(retries back off exponentially within their cap and jitter) {
  logout_options opts;
  opts.limits.retry_initial = 1000ms;
  opts.limits.retry_max = 10'000ms;
  CAF_CHECK_EQUAL(retry_delay(opts, 1, 1.0).count(), 1000);
  CAF_CHECK_EQUAL(retry_delay(opts, 2, 1.0).count(), 2000);
  CAF_CHECK_EQUAL(retry_delay(opts, 4, 1.0).count(), 8000);
  CAF_CHECK_EQUAL(retry_delay(opts, 5, 1.0).count(), 10'000);
  CAF_CHECK_EQUAL(retry_delay(opts, 1'000'000, 1.0).count(), 10'000);
  CAF_CHECK_EQUAL(retry_delay(opts, 1, 0.5).count(), 500);
  CAF_CHECK_EQUAL(retry_delay(opts, 1, 1.5).count(), 1500);
  // Jitter outside 0.5 to 1.5 is clamped.
  CAF_CHECK_EQUAL(retry_delay(opts, 1, 9.0).count(), 1500);
}

CAF_TEST(the form body carries the token form encoded) {
  CAF_CHECK_EQUAL(logout_form("aB-_.x"), "logout_token=aB-_.x");
  CAF_CHECK_EQUAL(logout_form("a+b=c&d"), "logout_token=a%2Bb%3Dc%26d");
}
