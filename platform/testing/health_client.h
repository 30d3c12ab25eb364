// A client for the standard gRPC health service (grpc.health.v1.Health/Check), header-only,
// for tests and tools (k8s local test, parcoursctl). The health proto is not shipped as a
// .proto on this platform, so the two tiny messages are encoded by hand and sent through
// grpc::GenericStub:
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }  UNKNOWN=0 SERVING=1 NOT_SERVING=2
//                                                      SERVICE_UNKNOWN=3
#pragma once

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace parcours::testing {

enum class ServingStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

inline const char* ServingStatusName(ServingStatus s) {
  switch (s) {
    case ServingStatus::kUnknown:
      return "UNKNOWN";
    case ServingStatus::kServing:
      return "SERVING";
    case ServingStatus::kNotServing:
      return "NOT_SERVING";
    case ServingStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
  }
  return "UNKNOWN";
}

namespace health_internal {

inline void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

inline bool ReadVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const auto b = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace health_internal

// Unary call of any method with raw serialized bytes: `method` is "/package.Service/Method".
inline grpc::Status RawUnaryCall(grpc::Channel* channel, const std::string& method,
                                 const std::string& request, std::string* response,
                                 grpc::ClientContext* context) {
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  std::promise<grpc::Status> done;
  stub.UnaryCall(context, method, grpc::StubOptions(), &request_buffer, &response_buffer,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  grpc::Status status = done.get_future().get();
  if (status.ok() && response != nullptr) {
    response->clear();
    std::vector<grpc::Slice> slices;
    if (response_buffer.Dump(&slices).ok()) {
      for (const auto& s : slices) {
        response->append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
  }
  return status;
}

// grpc.health.v1.Health/Check. `service` "" is the whole server. On an OK call, *result holds
// the status; a server without health service answers UNIMPLEMENTED, an unknown service name
// NOT_FOUND (the gRPC status is returned as is).
inline grpc::Status CheckHealth(grpc::Channel* channel, const std::string& service,
                                ServingStatus* result,
                                std::chrono::milliseconds timeout = std::chrono::seconds(2)) {
  std::string request;
  if (!service.empty()) {
    request.push_back(0x0A);  // field 1, length-delimited
    health_internal::AppendVarint(&request, service.size());
    request.append(service);
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  std::string response;
  grpc::Status status =
      RawUnaryCall(channel, "/grpc.health.v1.Health/Check", request, &response, &context);
  if (!status.ok()) return status;

  *result = ServingStatus::kUnknown;  // proto3 default when the field is absent
  std::string_view in(response);
  while (!in.empty()) {
    uint64_t key;
    if (!health_internal::ReadVarint(&in, &key)) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "malformed HealthCheckResponse");
    }
    const uint64_t field = key >> 3, wire = key & 7;
    uint64_t v;
    if (wire == 0) {
      if (!health_internal::ReadVarint(&in, &v)) {
        return grpc::Status(grpc::StatusCode::INTERNAL, "malformed HealthCheckResponse");
      }
      if (field == 1) *result = static_cast<ServingStatus>(v);
    } else if (wire == 2) {
      if (!health_internal::ReadVarint(&in, &v) || v > in.size()) {
        return grpc::Status(grpc::StatusCode::INTERNAL, "malformed HealthCheckResponse");
      }
      in.remove_prefix(v);
    } else if (wire == 5 && in.size() >= 4) {
      in.remove_prefix(4);
    } else if (wire == 1 && in.size() >= 8) {
      in.remove_prefix(8);
    } else {
      return grpc::Status(grpc::StatusCode::INTERNAL, "malformed HealthCheckResponse");
    }
  }
  return grpc::Status::OK;
}

inline grpc::Status CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                const std::string& service, ServingStatus* result,
                                std::chrono::milliseconds timeout = std::chrono::seconds(2)) {
  return CheckHealth(channel.get(), service, result, timeout);
}

}  // namespace parcours::testing
