// evaluation-svc's view of referential-svc: published référentiel versions fetched over gRPC
// with a deadline and cached (a published tree never changes).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "parcours/referential/v1/referential.pb.h"
#include "platform/clock.h"

namespace parcours::evaluation {

namespace ref = ::parcours::referential::v1;

class ReferentialClient {
 public:
  virtual ~ReferentialClient() = default;
  // The whole tree of a version (certifications/{code}/versions/{n}).
  // - NOT_FOUND / INVALID_ARGUMENT from referential-svc become FAILED_PRECONDITION
  //   "REFERENTIAL_VERSION_UNKNOWN" (the caller named a version that does not exist);
  // - referential-svc down or slower than the deadline: UNAVAILABLE;
  // - other errors: INTERNAL.
  // Versions in state PUBLISHED or RETIRED are cached; their state is re-read after `state_ttl`.
  virtual absl::StatusOr<std::shared_ptr<const ref::Version>> GetVersion(const std::string& name) = 0;
  // The identity of a certification (certifications/{code}): title, kind, level...
  // Same error mapping, with type "REFERENTIAL_CERTIFICATION_UNKNOWN"; cached for `state_ttl`
  // (the title may be edited, the kind never changes).
  virtual absl::StatusOr<ref::Certification> GetCertification(const std::string& name) = 0;
};

struct ReferentialClientOptions {
  absl::Duration deadline = absl::Seconds(2);
  absl::Duration state_ttl = absl::Seconds(30);
  int max_entries = 1000;
};

std::unique_ptr<ReferentialClient> NewGrpcReferentialClient(std::shared_ptr<grpc::ChannelInterface> channel,
                                                            const Clock& clock,
                                                            ReferentialClientOptions options = {});

}  // namespace parcours::evaluation
