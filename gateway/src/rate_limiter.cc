#include "gateway/src/rate_limiter.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "google/rpc/error_details.pb.h"

namespace parcours::gateway {
namespace {

absl::StatusOr<double> GetNumber(const Config& config, const char* key, double default_value) {
  if (!config.Has(key)) return default_value;
  double value = 0;
  if (!absl::SimpleAtod(config.GetString(key), &value) || !std::isfinite(value)) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": not a number"));
  }
  return value;
}

absl::StatusOr<RateLimitOptions> ReadOptions(const Config& config, const char* rate_key, const char* burst_key,
                                             RateLimitOptions o) {
  auto rate = GetNumber(config, rate_key, o.rate_per_second);
  if (!rate.ok()) return rate.status();
  auto burst = GetNumber(config, burst_key, o.burst);
  if (!burst.ok()) return burst.status();
  if (*rate < 0) return absl::InvalidArgumentError(absl::StrCat(rate_key, ": must not be negative"));
  if (*burst < 1) return absl::InvalidArgumentError(absl::StrCat(burst_key, ": must be at least 1"));
  o.rate_per_second = *rate;
  o.burst = *burst;
  return o;
}

}  // namespace

absl::StatusOr<RateLimitOptions> RateLimitOptions::FromConfig(const Config& config) {
  return ReadOptions(config, "rate_limit.rate", "rate_limit.burst", RateLimitOptions());
}

absl::StatusOr<RateLimitOptions> RateLimitOptions::FailedAuthFromConfig(const Config& config) {
  return ReadOptions(config, "rate_limit.failed_auth_rate", "rate_limit.failed_auth_burst", {5, 20});
}

std::string ClientAddressKey(std::string peer) {
  const bool v4 = absl::StartsWith(peer, "ipv4:");
  if (!v4 && !absl::StartsWith(peer, "ipv6:")) return peer;
  const size_t colon = peer.rfind(':');
  if (colon > 5) peer.resize(colon);  // the port
  if (v4) return peer;
  std::string address = absl::StrReplaceAll(peer.substr(5), {{"%5B", ""}, {"%5D", ""}, {"[", ""}, {"]", ""}});
  address = address.substr(0, address.find('%'));  // a zone ("fe80::1%eth0")
  in6_addr bytes;
  if (inet_pton(AF_INET6, address.c_str(), &bytes) != 1) return peer;
  std::fill(bytes.s6_addr + 8, bytes.s6_addr + 16, 0);
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, &bytes, text, sizeof text) == nullptr) return peer;
  return absl::StrCat("ipv6:", text, "/64");
}

RateLimiter::RateLimiter(RateLimitOptions options, const Clock& clock, std::string what)
    : options_(options), clock_(clock), what_(std::move(what)) {}

void RateLimiter::Refund(const std::string& key) {
  if (options_.rate_per_second <= 0) return;
  Shard& shard = shards_[std::hash<std::string>{}(key) % kShards];
  absl::MutexLock lock(&shard.mu);
  auto it = shard.buckets.find(key);
  if (it != shard.buckets.end()) it->second.tokens = std::min(options_.burst, it->second.tokens + 1);
}

absl::Status RateLimiter::Take(const std::string& key) {
  if (options_.rate_per_second <= 0) return absl::OkStatus();
  const absl::Time now = clock_.Now();
  Shard& shard = shards_[std::hash<std::string>{}(key) % kShards];
  double missing = 0;
  {
    absl::MutexLock lock(&shard.mu);
    if (++shard.calls_since_sweep >= 1024) {
      shard.calls_since_sweep = 0;
      const absl::Duration full_after = absl::Seconds(options_.burst / options_.rate_per_second);
      for (auto it = shard.buckets.begin(); it != shard.buckets.end();) {
        if (now - it->second.last >= full_after) {
          it = shard.buckets.erase(it);
        } else {
          ++it;
        }
      }
    }
    auto [it, inserted] = shard.buckets.try_emplace(key, Bucket{options_.burst, now});
    Bucket& b = it->second;
    if (!inserted && now > b.last) {
      b.tokens = std::min(options_.burst, b.tokens + absl::ToDoubleSeconds(now - b.last) * options_.rate_per_second);
    }
    b.last = std::max(b.last, now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return absl::OkStatus();
    }
    missing = 1 - b.tokens;
  }
  const absl::Duration wait = absl::Seconds(missing / options_.rate_per_second);
  google::rpc::RetryInfo info;
  const int64_t nanos = std::max<int64_t>(absl::ToInt64Nanoseconds(wait), 1000000);  // at least 1 ms
  info.mutable_retry_delay()->set_seconds(nanos / 1000000000);
  info.mutable_retry_delay()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
  absl::Status status = absl::ResourceExhaustedError(
      absl::StrFormat("rate limit: %g %s per second (burst %g)", options_.rate_per_second, what_, options_.burst));
  status.SetPayload("type.googleapis.com/google.rpc.RetryInfo", absl::Cord(info.SerializeAsString()));
  return status;
}

}  // namespace parcours::gateway
