// Reading the google.rpc details of a gRPC error in tests: what a client would inspect.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/support/status.h"

namespace parcours::testing {

// Field names of the BadRequest detail, in order.
inline std::vector<std::string> BadFields(const grpc::Status& status) {
  google::rpc::Status details;
  std::vector<std::string> fields;
  if (!details.ParseFromString(status.error_details())) return fields;
  for (const auto& any : details.details()) {
    google::rpc::BadRequest bad;
    if (any.UnpackTo(&bad)) {
      for (const auto& v : bad.field_violations()) fields.push_back(v.field());
    }
  }
  return fields;
}

// Violation types of the PreconditionFailure detail.
inline std::set<std::string> PreconditionTypes(const grpc::Status& status) {
  google::rpc::Status details;
  std::set<std::string> types;
  if (!details.ParseFromString(status.error_details())) return types;
  for (const auto& any : details.details()) {
    google::rpc::PreconditionFailure failure;
    if (any.UnpackTo(&failure)) {
      for (const auto& v : failure.violations()) types.insert(v.type());
    }
  }
  return types;
}

}  // namespace parcours::testing
