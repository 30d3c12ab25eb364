// Domain errors as absl::Status, and their one mapping to gRPC with google.rpc.Status details.
//
// Domain code returns absl::Status built with the helpers below; the gRPC layer converts with
// ToGrpcStatus. Details travel as absl::Status payloads (typed URLs of google.rpc messages)
// so the domain never depends on gRPC.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace parcours {

struct FieldViolation {
  std::string field;        // path in the request, e.g. "certification.code"
  std::string description;  // what is wrong, e.g. "must not be empty"
};

struct PreconditionViolation {
  std::string type;         // rule id, e.g. "VERSION_NOT_DRAFT"
  std::string subject;      // what it is about, e.g. "certifications/X/versions/1"
  std::string description;  // human explanation
};

// INVALID_ARGUMENT with a google.rpc.BadRequest listing every violation.
absl::Status InvalidArgument(std::vector<FieldViolation> violations);
absl::Status InvalidArgument(std::string field, std::string description);

// FAILED_PRECONDITION with a google.rpc.PreconditionFailure listing every violation.
absl::Status FailedPrecondition(std::vector<PreconditionViolation> violations);
absl::Status FailedPrecondition(std::string type, std::string subject, std::string description);

// NOT_FOUND / ALREADY_EXISTS / ABORTED with a google.rpc.ResourceInfo naming the resource.
absl::Status NotFound(std::string resource_name);
absl::Status AlreadyExists(std::string resource_name);
absl::Status EtagMismatch(std::string resource_name);

// Collects field violations while validating a request.
class Violations {
 public:
  void Add(std::string field, std::string description) {
    list_.push_back({std::move(field), std::move(description)});
  }
  bool empty() const { return list_.empty(); }
  const std::vector<FieldViolation>& list() const { return list_; }
  // OK when empty, else InvalidArgument(list).
  absl::Status ToStatus() const;

 private:
  std::vector<FieldViolation> list_;
};

// Statuses made by the storage layer (platform/db) carry this payload: their message holds SQL
// and driver text meant for logs. ToGrpcStatus replaces it by a fixed message for the code, so a
// constraint the domain did not anticipate never shows SQL to a client.
inline constexpr char kStorageErrorPayload[] = "type.parcours.fr/storage-error";
absl::Status StorageError(absl::StatusCode code, std::string message);
bool IsStorageError(const absl::Status& status);

// The one conversion to the wire. INTERNAL, UNKNOWN and DATA_LOSS messages are replaced by
// "internal error" (the original is logged by the caller); other messages are kept because the
// domain wrote them for the client. Payloads become google.rpc.Status details.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Reverse, used by clients of our own backends (keeps details as payloads).
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace parcours
