#include "platform/memory_releaser.h"

#include <atomic>
#include <chrono>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace parcours {
namespace {

TEST(MemoryReleaserTest, ReleasesEveryIntervalUntilDestroyed) {
  std::atomic<int> calls{0};
  {
    MemoryReleaser releaser(absl::Milliseconds(10), [&] { ++calls; });
    const absl::Time until = absl::Now() + absl::Seconds(5);
    while (calls.load() < 3 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(5));
    EXPECT_GE(calls.load(), 3);
  }
  const int after = calls.load();
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(calls.load(), after);  // stopped with the releaser
}

TEST(MemoryReleaserTest, StopsAtOnceWithoutWaitingForTheInterval) {
  std::atomic<int> calls{0};
  const auto start = std::chrono::steady_clock::now();
  { MemoryReleaser releaser(absl::Hours(1), [&] { ++calls; }); }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(calls.load(), 0);
}

TEST(MemoryReleaserTest, TheDefaultReleaseRuns) {
  MemoryReleaser releaser(absl::Milliseconds(1));  // malloc_trim(0): must not crash or block
  absl::SleepFor(absl::Milliseconds(20));
}

}  // namespace
}  // namespace parcours
