// Token buckets, one per key: per principal ("operator:ft", "national", ...) for the calls a
// caller makes, and per client address for its failed authentications. `rate` tokens per second
// up to `burst`. A call without a token is RESOURCE_EXHAUSTED with a google.rpc.RetryInfo detail
// saying when the next token is due. Buckets live in sharded maps; a bucket that has refilled
// completely is dropped on the shard's next sweep (every 1024 calls), so memory follows the
// number of recently active keys.
#pragma once

#include <array>
#include <string>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "platform/clock.h"
#include "platform/config.h"

namespace parcours::gateway {

struct RateLimitOptions {
  double rate_per_second = 50;  // rate_limit.rate; 0 disables the limit
  double burst = 100;           // rate_limit.burst (>= 1)
  // Keys "rate_limit.rate" and "rate_limit.burst" (numbers, e.g. 50 or 0.5).
  static absl::StatusOr<RateLimitOptions> FromConfig(const Config& config);
  // Failed authentications per client address: "rate_limit.failed_auth_rate" (default 5 per
  // second; 0 disables) and "rate_limit.failed_auth_burst" (default 20).
  static absl::StatusOr<RateLimitOptions> FailedAuthFromConfig(const Config& config);
};

// The key of a client's failed authentications, from gRPC's peer string: the address without its
// port ("ipv4:10.0.0.7"), an IPv6 address by its /64 ("ipv6:2001:db8:1:2::/64": one holder of a
// /64 has them all); anything else (a unix socket) as it is.
std::string ClientAddressKey(std::string peer);

class RateLimiter {
 public:
  // `what` is counted, for the refusal's message.
  RateLimiter(RateLimitOptions options, const Clock& clock, std::string what = "calls for this caller");
  // Takes one token from `key`'s bucket: OK, or RESOURCE_EXHAUSTED with RetryInfo.
  absl::Status Take(const std::string& key);
  // Gives back a token taken from `key`'s bucket (never above the burst).
  void Refund(const std::string& key);

 private:

  struct Bucket {
    double tokens;
    absl::Time last;
  };
  struct Shard {
    absl::Mutex mu;
    std::unordered_map<std::string, Bucket> buckets ABSL_GUARDED_BY(mu);
    int calls_since_sweep ABSL_GUARDED_BY(mu) = 0;
  };
  static constexpr int kShards = 16;

  const RateLimitOptions options_;
  const Clock& clock_;
  const std::string what_;
  std::array<Shard, kShards> shards_;
};

}  // namespace parcours::gateway
