// Runs `n` calls of `attempt(k)` (k = 0..n-1) on their own threads at once and waits for all:
// the same request sent by several clients, or retried while the first attempt still runs.
#pragma once

#include <thread>
#include <vector>

namespace parcours::testing {

template <typename Attempt>
void RunConcurrently(int n, const Attempt& attempt) {
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int k = 0; k < n; ++k) threads.emplace_back([&attempt, k] { attempt(k); });
  for (std::thread& t : threads) t.join();
}

}  // namespace parcours::testing
