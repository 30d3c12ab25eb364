#include "gateway/src/gateway.h"

#include <algorithm>
#include <cstdlib>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"
#include "platform/log.h"
#include "platform/metrics.h"

namespace parcours::gateway {
namespace {

using google::protobuf::FieldDescriptor;

bool AcceptableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == ':' || c == '/' || c == '+' || c == '=';
  });
}

// The caller's x-request-id, else the one the server runner's interceptor generated for this
// call (its thread-local ids are those of this call while the handler runs: Admit is called
// there, first thing), else a new one.
std::string RequestIdOf(const grpc::CallbackServerContext& ctx, std::string_view method) {
  const auto& md = ctx.client_metadata();
  if (auto it = md.find("x-request-id"); it != md.end()) {
    std::string_view id(it->second.data(), it->second.size());
    if (AcceptableRequestId(id)) return std::string(id);
  }
  const log::CallIds& current = log::CurrentCall();
  if (!current.request_id.empty() && current.method == method) return current.request_id;
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

std::string ResponseName(const google::protobuf::Message* response) {
  if (response == nullptr) return "";
  const FieldDescriptor* name = response->GetDescriptor()->FindFieldByName("name");
  if (name == nullptr || name->is_repeated() || name->type() != FieldDescriptor::TYPE_STRING) return "";
  return response->GetReflection()->GetString(*response, name).substr(0, 256);
}

grpc::StatusCode CodeOf(const absl::Status& s) { return static_cast<grpc::StatusCode>(s.code()); }

// The key of the client's failed authentications (rate_limiter.h).
std::string ClientAddress(const grpc::CallbackServerContext& ctx) { return ClientAddressKey(ctx.peer()); }

std::string KindName(const Principal& p) {
  const std::string s = p.ToString();
  return s.substr(0, s.find(':'));
}

}  // namespace

absl::StatusOr<Admission> Gateway::Admit(const grpc::CallbackServerContext& ctx, std::string_view full_method,
                                         const google::protobuf::Message* request) {
  Admission a;
  a.method = std::string(full_method);
  a.request_id = RequestIdOf(ctx, full_method);
  if (auto it = ctx.client_metadata().find("traceparent"); it != ctx.client_metadata().end()) {
    a.trace_id = log::TraceIdFromTraceparent(std::string_view(it->second.data(), it->second.size()));
  }
  a.policy = FindPolicy(full_method);
  if (a.policy != nullptr) a.resource = AuditResource(*a.policy, request);
  if (a.resource.empty() && a.policy != nullptr) a.resource = std::string(a.policy->collection);

  // 1. Who. A client address whose failed authentications used up their allowance is refused
  // before its token is verified (RESOURCE_EXHAUSTED), unless the token is one this replica
  // remembers as good: a flood of bad tokens costs a hash each, not a signature check.
  // The gate takes a token before the verification and gives it back when the token was good:
  // concurrent forged tokens cannot all pass while one token is left.
  bool gated = false;  // the refusal is the gate's own
  bool taken = false;  // the gate took a token for this call
  std::string address;  // the client's, read once it is needed
  const auto address_of = [&]() -> const std::string& {
    if (address.empty()) address = ClientAddress(ctx);
    return address;
  };
  absl::StatusOr<Caller> caller = authenticator_.Authenticate(ctx, [&] {
    absl::Status allowed = failed_auth_limiter_.Take(address_of());
    gated = !allowed.ok();
    taken = allowed.ok();
    return allowed;
  });
  if (caller.ok() && taken) failed_auth_limiter_.Refund(address_of());
  if (!caller.ok()) {
    absl::Status status = caller.status();
    if (gated) {
      // A flood of bad tokens from one address would write a line per call (the gate makes the
      // refusal cheap, not the line): one line per address and second; the call metrics count
      // every refusal.
      if (gate_audit_limiter_.Take(address_of()).ok()) Audit(a, "deny", a.resource, CodeOf(status));
      return status;
    }
    // Counted (by the gate already when it ran); refused either way.
    if (!taken) failed_auth_limiter_.Take(address_of()).IgnoreError();
    if (status.code() != absl::StatusCode::kUnauthenticated) {
      // The authenticator promises UNAUTHENTICATED; anything else is still a refusal to admit.
      log::Warn("authenticator failed", {{"error", std::string(status.message())}});
      status = absl::UnauthenticatedError("the call could not be authenticated");
    }
    Audit(a, "deny", a.resource, CodeOf(status));
    return status;
  }
  a.caller = *std::move(caller);
  a.authenticated = true;

  // 2. How often.
  if (absl::Status s = limiter_.Take(a.caller.principal.ToString()); !s.ok()) {
    Audit(a, "deny", a.resource, CodeOf(s));
    return s;
  }

  // 3. What: the policy table, deny by default.
  if (absl::Status s = Authorize(a.policy, a.caller.principal); !s.ok()) {
    if (a.policy == nullptr) log::Error("gateway method without a policy entry: denied", {{"method", a.method}});
    log::Info("denied", {{"principal_kind", KindName(a.caller.principal)}, {"method", a.method}});
    Audit(a, "deny", a.resource, CodeOf(s));
    return s;
  }
  return a;
}

std::optional<Admission> Gateway::AdmitValidated(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                                                 std::string_view full_method, const google::protobuf::Message* request,
                                                 const std::function<absl::Status(const Admission&)>& validate) {
  absl::StatusOr<Admission> admitted = Admit(*ctx, full_method, request);
  if (!admitted.ok()) {
    reactor->Finish(ToGrpcStatus(admitted.status()));
    return std::nullopt;
  }
  if (absl::Status invalid = validate(*admitted); !invalid.ok()) {
    grpc::Status status = ToGrpcStatus(invalid);
    Finished(*admitted, nullptr, status);
    reactor->Finish(status);
    return std::nullopt;
  }
  return *std::move(admitted);
}

namespace {

// An unset deadline reads as time_point::max() (or absurdly far away).
bool HasDeadline(const grpc::CallbackServerContext& ctx) {
  return ctx.deadline() < std::chrono::system_clock::now() + std::chrono::hours(24 * 365);
}

}  // namespace

std::unique_ptr<grpc::ClientContext> Gateway::BackendContext(const grpc::CallbackServerContext& ctx,
                                                             const Admission& admission, const Principal& as,
                                                             absl::Duration cap) {
  std::unique_ptr<grpc::ClientContext> client = NewBackendContext(ctx, admission, as);
  using SystemClock = std::chrono::system_clock;
  const SystemClock::time_point now = SystemClock::now();
  auto after = [&](absl::Duration d) {
    return now + std::chrono::duration_cast<SystemClock::duration>(absl::ToChronoNanoseconds(d));
  };
  SystemClock::time_point deadline = HasDeadline(ctx) ? ctx.deadline() : after(backends_.options.default_deadline);
  if (cap != absl::InfiniteDuration()) deadline = std::min(deadline, after(cap));
  client->set_deadline(deadline);
  return client;
}

std::unique_ptr<grpc::ClientContext> Gateway::StreamBackendContext(const grpc::CallbackServerContext& ctx,
                                                                   const Admission& admission, const Principal& as) {
  std::unique_ptr<grpc::ClientContext> client = NewBackendContext(ctx, admission, as);
  if (HasDeadline(ctx)) client->set_deadline(ctx.deadline());
  return client;
}

std::unique_ptr<grpc::ClientContext> Gateway::NewBackendContext(const grpc::CallbackServerContext& ctx,
                                                                const Admission& admission, const Principal& as) {
  std::unique_ptr<grpc::ClientContext> client = grpc::ClientContext::FromCallbackServerContext(ctx);
  client->AddMetadata(kPrincipalMetadata, as.ToString());
  for (const auto& [key, value] : ctx.client_metadata()) {
    const std::string_view k(key.data(), key.size());
    if (k == "traceparent" || k == "tracestate") {
      client->AddMetadata(std::string(k), std::string(value.data(), value.size()));
    }
  }
  client->AddMetadata("x-request-id", admission.request_id);
  return client;
}

void Gateway::Finished(const Admission& admission, const google::protobuf::Message* response,
                       const grpc::Status& status) {
  std::string resource = admission.resource;
  if ((admission.policy == nullptr || admission.policy->resource_field.empty()) && status.ok()) {
    // A create: the new resource's name.
    if (std::string created = ResponseName(response); !created.empty()) resource = std::move(created);
  }
  Audit(admission, "allow", resource, status.error_code());
}

int MethodIndex(std::string_view service, std::string_view method) {
  const google::protobuf::ServiceDescriptor* s =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(std::string(service));
  const google::protobuf::MethodDescriptor* m = s == nullptr ? nullptr : s->FindMethodByName(std::string(method));
  if (m == nullptr) {
    log::Error("unknown gateway method", {{"service", std::string(service)}, {"method", std::string(method)}});
    std::abort();
  }
  return m->index();
}

void Gateway::Audit(const Admission& a, std::string_view decision, const std::string& resource,
                    grpc::StatusCode code) {
  // Unknown methods count as personal: a refusal there is worth a line.
  if (a.policy != nullptr && !a.policy->personal_data) return;
  // The call's ids are given, not taken from the thread: an admitted call's line is written on
  // the thread that completed its backend call, which last served some other call.
  log::Write(log::Level::kInfo, "audit",
             {{"request_id", a.request_id},
              {"trace_id", a.trace_id},
              {"principal", a.authenticated ? a.caller.principal.ToString() : std::string()},
              {"subject", a.caller.subject},
              {"method", a.method},
              {"resource", resource},
              {"decision", std::string(decision)},
              {"grpc_code", metrics::GrpcCodeName(code)}});
}

}  // namespace parcours::gateway
