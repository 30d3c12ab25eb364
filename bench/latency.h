// Small pieces shared by the bench/ clients: gRPC status code names and the percentile of a
// sorted latency sample (nearest rank).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace parcours::bench {

// grpc::StatusCode values 0..16.
inline constexpr int kNumCodes = 17;

inline const char* CodeName(int code) {
  static const char* const kNames[kNumCodes] = {"OK",
                                                "CANCELLED",
                                                "UNKNOWN",
                                                "INVALID_ARGUMENT",
                                                "DEADLINE_EXCEEDED",
                                                "NOT_FOUND",
                                                "ALREADY_EXISTS",
                                                "PERMISSION_DENIED",
                                                "RESOURCE_EXHAUSTED",
                                                "FAILED_PRECONDITION",
                                                "ABORTED",
                                                "OUT_OF_RANGE",
                                                "UNIMPLEMENTED",
                                                "INTERNAL",
                                                "UNAVAILABLE",
                                                "DATA_LOSS",
                                                "UNAUTHENTICATED"};
  return code >= 0 && code < kNumCodes ? kNames[code] : "UNKNOWN";
}

// A status code as an index of the tables above and of kNumCodes-sized counters: out-of-range
// codes count as UNKNOWN.
inline int CodeIndex(int code) { return code >= 0 && code < kNumCodes ? code : 2 /* UNKNOWN */; }

// The p-th percentile (0 < p <= 100) of an ascending sample, nearest-rank: the smallest value
// with at least p % of the sample at or below it. 0 for an empty sample.
inline uint32_t Percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

}  // namespace parcours::bench
