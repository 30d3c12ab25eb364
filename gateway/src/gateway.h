// The core every gateway handler goes through.
//
// The four services (NationalService, RegionService, OperatorService, CertifierService) run on
// gRPC's callback API: a forwarding handler never holds a thread while a backend answers (a
// gateway spends its time waiting on backends; the sync API would need one thread per call in
// flight). Every handler starts with Gateway::Admit — the single gate:
//   1. authenticate (the injected Authenticator: JWT or client certificate) -> UNAUTHENTICATED;
//   2. rate-limit the principal (token bucket)                             -> RESOURCE_EXHAUSTED;
//   3. authorise from the policy table (policy.h), deny by default          -> PERMISSION_DENIED;
// and only then looks at the request. (The server runner takes no interceptor from its caller,
// so the gate is this function rather than a server interceptor; Unary below makes it
// impossible to forget for the 1:1 methods, and tests send an invalid request to every
// forbidden method to check the order.)
//
// Forwarding (Unary/Forward): the backend receives the same request with the caller's
// principal in `x-parcours-principal` (never a client-sent one: backend metadata is built from
// scratch), `traceparent`/`tracestate` and `x-request-id` propagated, the caller's deadline and
// cancellation propagated (default deadline when it set none); the backend's response, status
// code, message and google.rpc details come back unchanged.
//
// Raw forwarding (RawForwardHandler, PARCOURS_GATEWAY_FORWARD_RAW): for reads whose gateway
// response type is the backend's own message, the reply is not decoded: the request is typed
// (the gate and the audit need it) but the backend's reply stays the grpc::ByteBuffer it arrived
// in and goes back to the caller as is (the slices are shared, not copied). Same gate, context,
// retries and status handling as Unary; only the reply is never parsed (except to name a
// created resource in an audit line, which no raw method needs today).
//
// Audit: for methods the policy marks as touching personal data, one JSON line per call
// ("msg":"audit": principal, subject, method, resource name, decision allow|deny, grpc_code),
// written when the call ends (or is refused). Never a token, never a request body or contact
// details: only resource names.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/auth/authenticator.h"
#include "gateway/src/backends.h"
#include "gateway/src/label_cache.h"
#include "gateway/src/policy.h"
#include "gateway/src/rate_limiter.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/server_callback_handlers.h"
#include "grpcpp/support/byte_buffer.h"
#include "platform/errors.h"

namespace parcours::gateway {

// An admitted call: who, what, on which resource.
struct Admission {
  const MethodPolicy* policy = nullptr;
  std::string method;
  Caller caller{Principal{Principal::Kind::kNational, ""}, "", Caller::Via::kJwt};
  bool authenticated = false;  // `caller` is meaningful
  std::string resource;        // for the audit line
  std::string request_id;      // propagated as x-request-id to every backend call
  std::string trace_id;        // the caller's traceparent's, "" without one
};

class Gateway {
 public:
  // `limiter`: calls per principal; `failed_auth_limiter`: failed authentications per client address;
  // `gate_audit_limiter`: audit lines of the gate's refusals per client address.
  Gateway(Authenticator& authenticator, Backends& backends, RateLimiter& limiter, RateLimiter& failed_auth_limiter,
          RateLimiter& gate_audit_limiter)
      : authenticator_(authenticator),
        backends_(backends),
        limiter_(limiter),
        failed_auth_limiter_(failed_auth_limiter),
        gate_audit_limiter_(gate_audit_limiter) {}

  Backends& backends() { return backends_; }
  // GetBeneficiaryJourney's référentiel labels (label_cache.h).
  LabelCache& labels() { return labels_; }

  // The gate (see above). `request` may be null (client streams): the audit line then names the
  // policy's collection.
  absl::StatusOr<Admission> Admit(const grpc::CallbackServerContext& ctx, std::string_view full_method,
                                  const google::protobuf::Message* request);

  // The gate of a method that is more than a forward (RegionService.QueryIndicators, the journey,
  // the dashboard): Admit, then `validate` the request for the admitted caller (validation after
  // authorisation, so a refused caller learns nothing from it). On a refusal the call is audited
  // and `reactor` finished with it, and the result is empty.
  std::optional<Admission> AdmitValidated(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                                          std::string_view full_method, const google::protobuf::Message* request,
                                          const std::function<absl::Status(const Admission&)>& validate);

  // A context for one backend call made on behalf of `ctx` as `as`: deadline = the caller's
  // (or backends.default_deadline when it set none), capped at `cap`; cancellation propagated;
  // principal, trace context and the admission's request id set. Callable from any thread
  // while the call is in flight.
  std::unique_ptr<grpc::ClientContext> BackendContext(const grpc::CallbackServerContext& ctx,
                                                      const Admission& admission, const Principal& as,
                                                      absl::Duration cap = absl::InfiniteDuration());
  // The same for a client stream that lasts as long as its client sends (a bulk import): the
  // caller's deadline if it set one, else none (default_deadline would cut it part-way).
  std::unique_ptr<grpc::ClientContext> StreamBackendContext(const grpc::CallbackServerContext& ctx,
                                                            const Admission& admission, const Principal& as);

  // The audit line of an admitted call that ended with `status` (personal-data methods only).
  // `response` (may be null) names the resource of a create.
  void Finished(const Admission& admission, const google::protobuf::Message* response, const grpc::Status& status);

  // A whole 1:1 forwarding method whose reply is passed through undecoded (see above): the
  // server-side handler of gateway method `method` of `service`, calling `backend_method`
  // ("/pkg.Service/Method") on `channel`. For Service::MarkMethodRawCallback, which takes
  // ownership.
  template <typename Req, typename Resp>
  grpc::internal::MethodHandler* RawForwardHandler(std::string_view service, std::string_view method,
                                                   const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                                                   std::string backend_method) {
    auto backend = std::make_shared<const RawBackendMethod>(channels, std::move(backend_method));
    return new grpc::internal::CallbackUnaryHandler<Req, grpc::ByteBuffer>(
        [this, full = FullMethodName(service, method), backend](grpc::CallbackServerContext* ctx, const Req* req,
                                                                grpc::ByteBuffer* resp) {
          grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
          absl::StatusOr<Admission> admitted = Admit(*ctx, full, req);
          if (!admitted.ok()) {
            reactor->Finish(ToGrpcStatus(admitted.status()));
            return reactor;
          }
          auto admission = std::make_shared<const Admission>(*std::move(admitted));
          const bool idempotent = IsIdempotent(*admission->policy, *req);
          CallBackend<Req, grpc::ByteBuffer>(
              backends_, ctx, backend->Invoker<Req>(), req, resp, idempotent,
              [this, ctx, admission] { return BackendContext(*ctx, *admission, admission->caller.principal); },
              [this, reactor, resp, admission, backend](grpc::Status status) {
                FinishedRaw<Resp>(*admission, *resp, status);
                reactor->Finish(status);
              });
          return reactor;
        });
  }

  // A whole 1:1 forwarding method.
  template <typename Stub, typename Req, typename Resp>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, std::string_view method, const Req* req,
                                  Resp* resp, Stub& stub, AsyncUnary<Stub, Req, Resp> call) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    absl::StatusOr<Admission> admitted = Admit(*ctx, method, req);
    if (!admitted.ok()) {
      reactor->Finish(ToGrpcStatus(admitted.status()));
      return reactor;
    }
    Forward(ctx, reactor, *std::move(admitted), req, resp, stub, call);
    return reactor;
  }

  // The backend half of Unary, for handlers that build the backend request themselves;
  // `keep_alive` owns what `req` points to until the backend call completes. Retried on
  // UNAVAILABLE when the policy says the call is idempotent (backends.h).
  template <typename Stub, typename Req, typename Resp>
  void Forward(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor, Admission admitted,
               const Req* req, Resp* resp, Stub& stub, AsyncUnary<Stub, Req, Resp> call,
               std::shared_ptr<const void> keep_alive = nullptr) {
    auto admission = std::make_shared<const Admission>(std::move(admitted));
    const bool idempotent = IsIdempotent(*admission->policy, *req);
    CallBackend(
        backends_, ctx, stub, call, req, resp, idempotent,
        [this, ctx, admission] { return BackendContext(*ctx, *admission, admission->caller.principal); },
        [this, reactor, resp, admission, keep_alive = std::move(keep_alive)](grpc::Status status) {
          Finished(*admission, resp, status);
          reactor->Finish(status);
        });
  }

 private:
  // BackendContext without a deadline: cancellation, principal, trace context, request id.
  std::unique_ptr<grpc::ClientContext> NewBackendContext(const grpc::CallbackServerContext& ctx,
                                                         const Admission& admission, const Principal& as);

  static std::string FullMethodName(std::string_view service, std::string_view method) {
    return std::string("/").append(service).append("/").append(method);
  }

  // Finished for an undecoded reply: decoded only when the audit line needs a created name.
  template <typename Resp>
  void FinishedRaw(const Admission& admission, const grpc::ByteBuffer& reply, const grpc::Status& status) {
    if (status.ok() && admission.policy != nullptr && admission.policy->personal_data &&
        admission.policy->resource_field.empty() && Resp::descriptor()->FindFieldByName("name") != nullptr) {
      Resp decoded;
      grpc::ByteBuffer copy(reply);
      if (grpc::SerializationTraits<Resp>::Deserialize(&copy, &decoded).ok()) {
        Finished(admission, &decoded, status);
        return;
      }
    }
    Finished(admission, nullptr, status);
  }

  void Audit(const Admission& admission, std::string_view decision, const std::string& resource,
             grpc::StatusCode code);

  Authenticator& authenticator_;
  Backends& backends_;
  RateLimiter& limiter_;
  RateLimiter& failed_auth_limiter_;
  RateLimiter& gate_audit_limiter_;
  LabelCache labels_;
};

// "/parcours.gateway.v1.OperatorService/GetCase"
inline std::string FullMethod(std::string_view service, std::string_view method) {
  return std::string("/").append(service).append("/").append(method);
}

// The index of `method` in gateway service `service` (as registered by the generated
// grpc::Service: proto order). Aborts on an unknown name (a programming error).
int MethodIndex(std::string_view service, std::string_view method);

}  // namespace parcours::gateway

// One line per 1:1 method in a service class with members `Gateway& gw_` and
// `static constexpr char kService[]` (the gateway service's full name): admit, then the same
// request to the backend method of the same name. `backend` names a member of Backends
// (referential, evaluation, cep) and `Backend` the backend's generated service class.
#define PARCOURS_GATEWAY_FORWARD(Method, Req, Resp, backend, Backend)                                     \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const Req* req, Resp* resp) override { \
    static const std::string method = ::parcours::gateway::FullMethod(kService, #Method);                  \
    return gw_.Unary(ctx, method, req, resp, *gw_.backends().backend, &Backend::Stub::async::Method);       \
  }

// The same for a read forwarded without decoding the reply (RawForwardHandler): one line in the
// service's constructor (the class also needs `using Self = <the class>`). The two casts check
// at compile time that the gateway method and the backend method have exactly these request
// and response types: the bytes passed through are a valid `Resp`.
#define PARCOURS_GATEWAY_FORWARD_RAW(Method, Req, Resp, backend, Backend)                                     \
  do {                                                                                                        \
    static_cast<void>(static_cast<::grpc::ServerUnaryReactor* (Self::*)(::grpc::CallbackServerContext*,       \
                                                                         const Req*, Resp*)>(&Self::Method)); \
    static_cast<void>(                                                                                        \
        static_cast<::parcours::gateway::AsyncUnary<Backend::Stub, Req, Resp>>(&Backend::Stub::async::Method)); \
    MarkMethodRawCallback(::parcours::gateway::MethodIndex(kService, #Method),                                \
                          gw_.RawForwardHandler<Req, Resp>(                                                   \
                              kService, #Method, gw_.backends().backend.channels(),                           \
                              ::parcours::gateway::FullMethod(Backend::service_full_name(), #Method)));        \
  } while (false)
