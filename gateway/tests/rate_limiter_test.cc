#include "gateway/src/rate_limiter.h"

#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"

namespace parcours::gateway {
namespace {

google::rpc::RetryInfo RetryInfoOf(const absl::Status& status) {
  google::rpc::RetryInfo info;
  auto payload = status.GetPayload("type.googleapis.com/google.rpc.RetryInfo");
  if (payload.has_value()) info.ParseFromString(std::string(*payload));
  return info;
}

TEST(RateLimiterTest, BurstThenRefillPerPrincipal) {
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  RateLimiter limiter({/*rate_per_second=*/2, /*burst=*/3}, clock);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Take("operator:ft").ok()) << i;
  absl::Status refused = limiter.Take("operator:ft");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  const google::rpc::RetryInfo info = RetryInfoOf(refused);
  EXPECT_EQ(info.retry_delay().seconds(), 0);
  EXPECT_EQ(info.retry_delay().nanos(), 500000000);  // one token at 2 per second
  // Another principal has its own bucket.
  EXPECT_TRUE(limiter.Take("operator:apec").ok());
  clock.Advance(absl::Milliseconds(500));
  EXPECT_TRUE(limiter.Take("operator:ft").ok());
  EXPECT_FALSE(limiter.Take("operator:ft").ok());
  // A long pause refills up to the burst, not beyond.
  clock.Advance(absl::Hours(1));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Take("operator:ft").ok()) << i;
  EXPECT_FALSE(limiter.Take("operator:ft").ok());
}

TEST(RateLimiterTest, ZeroRateDisablesAndIdleBucketsAreSwept) {
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  RateLimiter unlimited({0, 1}, clock);
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(unlimited.Take("national").ok());
  RateLimiter limiter({1000, 1}, clock);
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(limiter.Take("operator:op-" + std::to_string(i)).ok());
  clock.Advance(absl::Seconds(1));
  // Swept or not, a refilled bucket behaves as new.
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(limiter.Take("operator:op-" + std::to_string(i)).ok());
}

// The failed-authentication gate's use: the refusal names what is counted; a token taken for a
// call that turned out good is given back, never above the burst.
TEST(RateLimiterTest, ARefundGivesATakenTokenBackNeverAboveTheBurst) {
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  RateLimiter limiter({/*rate_per_second=*/1, /*burst=*/2}, clock, "failed authentications from this address");
  EXPECT_TRUE(limiter.Take("ipv4:10.0.0.7").ok());
  EXPECT_TRUE(limiter.Take("ipv4:10.0.0.7").ok());
  absl::Status refused = limiter.Take("ipv4:10.0.0.7");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.message(), "rate limit: 1 failed authentications from this address per second (burst 2)");
  EXPECT_EQ(RetryInfoOf(refused).retry_delay().seconds(), 1);
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(limiter.Take("ipv4:10.0.0.8").ok());
  EXPECT_TRUE(limiter.Take("ipv4:10.0.0.7").ok());
  EXPECT_FALSE(limiter.Take("ipv4:10.0.0.7").ok());
  limiter.Refund("ipv4:10.0.0.7");
  EXPECT_TRUE(limiter.Take("ipv4:10.0.0.7").ok());
  for (int i = 0; i < 5; ++i) limiter.Refund("ipv4:10.0.0.9");  // unknown: nothing to refund
  for (int i = 0; i < 5; ++i) limiter.Refund("ipv4:10.0.0.7");  // from 0: back to the burst of 2
  EXPECT_TRUE(limiter.Take("ipv4:10.0.0.7").ok());
  EXPECT_TRUE(limiter.Take("ipv4:10.0.0.7").ok());
  EXPECT_FALSE(limiter.Take("ipv4:10.0.0.7").ok());
}

TEST(RateLimiterTest, ClientAddressKeyDropsThePortAndKeysIpv6ByItsSlash64) {
  EXPECT_EQ(ClientAddressKey("ipv4:10.0.0.7:51234"), "ipv4:10.0.0.7");
  EXPECT_EQ(ClientAddressKey("ipv6:[2001:db8:1:2:a:b:c:d]:443"), "ipv6:2001:db8:1:2::/64");
  EXPECT_EQ(ClientAddressKey("ipv6:%5B2001:db8:1:2::9%5D:443"), "ipv6:2001:db8:1:2::/64");
  EXPECT_EQ(ClientAddressKey("ipv6:[::1]:5000"), "ipv6:::/64");
  EXPECT_EQ(ClientAddressKey("ipv6:[fe80::1%25eth0]:5000"), "ipv6:fe80::/64");
  EXPECT_EQ(ClientAddressKey("unix:/run/gateway.sock"), "unix:/run/gateway.sock");
  EXPECT_EQ(ClientAddressKey("ipv6:[not-an-address]:1"), "ipv6:[not-an-address]");
}

TEST(RateLimiterTest, Config) {
  auto defaults = RateLimitOptions::FromConfig(Config::FromMap({}));
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->rate_per_second, 50);
  EXPECT_EQ(defaults->burst, 100);
  auto set = RateLimitOptions::FromConfig(Config::FromMap({{"rate_limit.rate", "0.5"}, {"rate_limit.burst", "4"}}));
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->rate_per_second, 0.5);
  EXPECT_EQ(set->burst, 4);
  EXPECT_FALSE(RateLimitOptions::FromConfig(Config::FromMap({{"rate_limit.rate", "fast"}})).ok());
  EXPECT_FALSE(RateLimitOptions::FromConfig(Config::FromMap({{"rate_limit.rate", "-1"}})).ok());
  EXPECT_FALSE(RateLimitOptions::FromConfig(Config::FromMap({{"rate_limit.burst", "0"}})).ok());

  auto failed = RateLimitOptions::FailedAuthFromConfig(Config::FromMap({}));
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->rate_per_second, 5);
  EXPECT_EQ(failed->burst, 20);
  failed = RateLimitOptions::FailedAuthFromConfig(
      Config::FromMap({{"rate_limit.failed_auth_rate", "0"}, {"rate_limit.failed_auth_burst", "3"}}));
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->rate_per_second, 0);
  EXPECT_EQ(failed->burst, 3);
  absl::Status bad = RateLimitOptions::FailedAuthFromConfig(Config::FromMap({{"rate_limit.failed_auth_rate", "-2"}})).status();
  EXPECT_EQ(bad.message(), "rate_limit.failed_auth_rate: must not be negative");
}

}  // namespace
}  // namespace parcours::gateway
