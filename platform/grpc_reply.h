// The last step of every handler: a domain result to a gRPC reply. Errors go through the one
// mapping (platform/errors.h); an error that the client will only see as "internal error" is
// logged here with its real message, once.
#pragma once

#include <utility>

#include "absl/status/statusor.h"
#include "grpcpp/support/status.h"
#include "platform/errors.h"
#include "platform/log.h"

namespace parcours {

inline grpc::Status Reply(const absl::Status& status) {
  if (absl::IsInternal(status) || absl::IsUnknown(status) || absl::IsDataLoss(status) ||
      IsStorageError(status)) {
    log::Error(IsStorageError(status) ? "storage error" : "internal error", {{"error", std::string(status.message())}});
  }
  return ToGrpcStatus(status);
}

template <typename Response>
grpc::Status Reply(absl::StatusOr<Response> result, Response* out) {
  if (!result.ok()) return Reply(result.status());
  *out = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace parcours
