#include "platform/errors.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/any.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace parcours {
namespace {

constexpr char kTypeUrlPrefix[] = "type.googleapis.com/";

template <typename Message>
std::string TypeUrl(const Message& m) {
  return absl::StrCat(kTypeUrlPrefix, m.GetDescriptor()->full_name());
}

template <typename Message>
void Attach(absl::Status& status, const Message& detail) {
  status.SetPayload(TypeUrl(detail), absl::Cord(detail.SerializeAsString()));
}

// "certifications/X/versions/1" -> "versions"; "certifications/X" -> "certifications".
std::string CollectionOf(const std::string& resource_name) {
  std::vector<std::string> parts = absl::StrSplit(resource_name, '/');
  if (parts.size() >= 2) return parts[parts.size() - 2];
  return "";
}

absl::Status ResourceStatus(absl::StatusCode code, std::string resource_name, std::string message) {
  absl::Status status(code, message);
  google::rpc::ResourceInfo info;
  info.set_resource_type(CollectionOf(resource_name));
  info.set_resource_name(std::move(resource_name));
  info.set_description(std::move(message));
  Attach(status, info);
  return status;
}

bool HidesMessage(absl::StatusCode code) {
  return code == absl::StatusCode::kInternal || code == absl::StatusCode::kUnknown ||
         code == absl::StatusCode::kDataLoss;
}

}  // namespace

absl::Status InvalidArgument(std::vector<FieldViolation> violations) {
  std::string message;
  google::rpc::BadRequest bad_request;
  for (FieldViolation& v : violations) {
    absl::StrAppend(&message, message.empty() ? "" : "; ", "invalid ", v.field, ": ", v.description);
    auto* fv = bad_request.add_field_violations();
    fv->set_field(std::move(v.field));
    fv->set_description(std::move(v.description));
  }
  if (message.empty()) message = "invalid argument";
  absl::Status status = absl::InvalidArgumentError(message);
  Attach(status, bad_request);
  return status;
}

absl::Status InvalidArgument(std::string field, std::string description) {
  std::vector<FieldViolation> violations;
  violations.push_back({std::move(field), std::move(description)});
  return InvalidArgument(std::move(violations));
}

absl::Status FailedPrecondition(std::vector<PreconditionViolation> violations) {
  std::string message;
  google::rpc::PreconditionFailure failure;
  for (PreconditionViolation& v : violations) {
    absl::StrAppend(&message, message.empty() ? "" : "; ", v.description);
    auto* pv = failure.add_violations();
    pv->set_type(std::move(v.type));
    pv->set_subject(std::move(v.subject));
    pv->set_description(std::move(v.description));
  }
  if (message.empty()) message = "failed precondition";
  absl::Status status = absl::FailedPreconditionError(message);
  Attach(status, failure);
  return status;
}

absl::Status FailedPrecondition(std::string type, std::string subject, std::string description) {
  std::vector<PreconditionViolation> violations;
  violations.push_back({std::move(type), std::move(subject), std::move(description)});
  return FailedPrecondition(std::move(violations));
}

absl::Status NotFound(std::string resource_name) {
  std::string message = absl::StrCat(resource_name, " not found");
  return ResourceStatus(absl::StatusCode::kNotFound, std::move(resource_name), std::move(message));
}

absl::Status AlreadyExists(std::string resource_name) {
  std::string message = absl::StrCat(resource_name, " already exists");
  return ResourceStatus(absl::StatusCode::kAlreadyExists, std::move(resource_name),
                        std::move(message));
}

absl::Status EtagMismatch(std::string resource_name) {
  std::string message =
      absl::StrCat("etag mismatch for ", resource_name, ": it changed since it was read");
  return ResourceStatus(absl::StatusCode::kAborted, std::move(resource_name), std::move(message));
}

absl::Status Violations::ToStatus() const {
  if (list_.empty()) return absl::OkStatus();
  return InvalidArgument(list_);
}

absl::Status StorageError(absl::StatusCode code, std::string message) {
  absl::Status status(code, message);
  status.SetPayload(kStorageErrorPayload, absl::Cord());
  return status;
}

bool IsStorageError(const absl::Status& status) {
  return status.GetPayload(kStorageErrorPayload).has_value();
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  if (IsStorageError(status)) {
    switch (status.code()) {
      case absl::StatusCode::kAlreadyExists:
        return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "conflicts with existing data");
      case absl::StatusCode::kAborted:
        return grpc::Status(grpc::StatusCode::ABORTED, "concurrent change: retry the request");
      case absl::StatusCode::kUnavailable:
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "storage unavailable: retry later");
      case absl::StatusCode::kUnknown:
        return grpc::Status(grpc::StatusCode::UNKNOWN,
                            "storage connection lost during the commit: the change may have been applied; "
                            "read it back (or retry with the same request_id) before doing it again");
      default:
        return grpc::Status(grpc::StatusCode::INTERNAL, "internal error");
    }
  }
  const int raw_code = static_cast<int>(status.code());
  // absl and gRPC share the canonical codes 1..16; anything else is treated as UNKNOWN.
  const bool known = raw_code >= 1 && raw_code <= 16;
  if (!known || HidesMessage(status.code())) {
    const grpc::StatusCode code =
        known ? static_cast<grpc::StatusCode>(raw_code) : grpc::StatusCode::UNKNOWN;
    return grpc::Status(code, "internal error");
  }
  const grpc::StatusCode code = static_cast<grpc::StatusCode>(raw_code);
  const std::string message(status.message());
  google::rpc::Status proto;
  proto.set_code(raw_code);
  proto.set_message(message);
  status.ForEachPayload([&proto](absl::string_view type_url, const absl::Cord& payload) {
    google::protobuf::Any* any = proto.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(payload));
  });
  return grpc::Status(code, message, proto.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const int raw_code = static_cast<int>(status.error_code());
  const absl::StatusCode code = (raw_code >= 1 && raw_code <= 16)
                                    ? static_cast<absl::StatusCode>(raw_code)
                                    : absl::StatusCode::kUnknown;
  absl::Status result(code, status.error_message());
  const std::string& details = status.error_details();
  if (!details.empty()) {
    google::rpc::Status proto;
    if (proto.ParseFromString(details)) {
      for (const google::protobuf::Any& any : proto.details()) {
        result.SetPayload(any.type_url(), absl::Cord(any.value()));
      }
    }
  }
  return result;
}

}  // namespace parcours
