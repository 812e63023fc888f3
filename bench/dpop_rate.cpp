// In-process DPoP nonce rate: one thread issues a nonce and checks it
// (node::dpop(): dpop_nonces over the secret board), for SECONDS (argv[1],
// default 3), and prints "<issue+check per second>".
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "services/secrets.hpp"
#include "state/secret_ring.hpp"

int main(int argc, char** argv) {
  using namespace keymesh;
  auto seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  auto board = std::make_shared<secret_board>();
  board->replace(std::make_shared<const state::secret_ring>(state::new_ring(
    dpop_purpose, to_unix_ms(system_wall_clock()()))));
  dpop_nonces nonces{board, system_wall_clock(), std::chrono::minutes{5}};
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  uint64_t done = 0;
  uint64_t refused = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 1000; ++i) {
      auto n = nonces.issue();
      if (!nonces.check(n))
        ++refused;
    }
    done += 1000;
  }
  std::chrono::duration<double> took = std::chrono::steady_clock::now()
                                       - start;
  if (refused != 0) {
    std::fprintf(stderr, "dpop_rate: %llu nonces refused\n",
                 static_cast<unsigned long long>(refused));
    return 1;
  }
  std::printf("%.0f\n", static_cast<double>(done) / took.count());
  return 0;
}
