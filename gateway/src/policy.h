// The gateway's one policy table: every method of every parcours.gateway.v1 service, with the
// principal kinds allowed to call it and how the caller's scope is enforced. Deny by default: a
// method without an entry is PERMISSION_DENIED for everyone (gateway/tests/policy_test.cc fails
// the build's tests when a method of the generated descriptors has no entry, or an entry names a
// method that does not exist).
//
// Every handler goes through one gate (Gateway::Admit, gateway/src/gateway.h) before it looks
// at the request or calls a backend: authenticate, rate-limit, then authorise from this table.
// Validation (the gateway's own, e.g. the regional filter, and the backends') comes after, so a
// caller learns nothing about a method it may not call, not even that its request is malformed.
//
// The same table says which calls are idempotent (retried on UNAVAILABLE, see backends.h), which
// touch personal data (one audit line per call: principal, subject, method, resource name,
// decision, code; never a token, never a request body) and which request field names the
// resource for that line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "platform/principal.h"

namespace parcours::gateway {

// A set of principal kinds.
using KindSet = uint32_t;
constexpr KindSet KindBit(Principal::Kind kind) { return KindSet{1} << static_cast<int>(kind); }
inline constexpr KindSet kNational = KindBit(Principal::Kind::kNational);
inline constexpr KindSet kRegion = KindBit(Principal::Kind::kRegion);
inline constexpr KindSet kOperator = KindBit(Principal::Kind::kOperator);
inline constexpr KindSet kCertifier = KindBit(Principal::Kind::kCertifier);
inline constexpr KindSet kJuryMember = KindBit(Principal::Kind::kJuryMember);
inline constexpr Principal::Kind kAllKinds[] = {Principal::Kind::kNational, Principal::Kind::kRegion,
                                                Principal::Kind::kOperator, Principal::Kind::kCertifier,
                                                Principal::Kind::kJuryMember};

// How the caller's scope is enforced once its kind is allowed.
enum class Scope {
  // Shared reference data (référentiels, the operator directory, level catalogues): no tenant.
  kReference,
  // France compétences' own administration and national aggregates: the kind is the scope.
  kNational,
  // The gateway rewrites the request to the caller's region (RegionService.QueryIndicators), or
  // the backend restricts it to the forwarded region principal (compliance).
  kOwnRegion,
  // The backend scopes the call to the forwarded principal: another tenant's resource is
  // NOT_FOUND exactly like a missing one (cep-svc for operators, evaluation-svc for certifiers
  // and jury members).
  kBackendPrincipal,
  // GetBeneficiaryJourney: the case through cep-svc with the caller's principal decides access;
  // only what that case links is then read (evaluation-svc's statistics view, referential-svc).
  kOwnCaseThenLinked,
};

enum class Idempotency {
  kNone,       // a write: never retried
  kRead,       // retried on UNAVAILABLE
  kRequestId,  // a create or append: retried on UNAVAILABLE when its request_id is set
};

struct MethodPolicy {
  std::string_view method;  // "/parcours.gateway.v1.OperatorService/GetCase"
  KindSet kinds;
  Scope scope;
  Idempotency idempotency;
  // Audit every call (allowed or denied): the method reads or changes a personal file.
  bool personal_data;
  // Dotted path of the request field naming the resource for the audit line ("name",
  // "case.beneficiary"); when empty or unset in the request, `collection`, then the response's
  // `name` (creates).
  std::string_view resource_field;
  std::string_view collection;
};

// The services of parcours.gateway.v1, from the generated descriptors.
const std::vector<const google::protobuf::ServiceDescriptor*>& GatewayServices();
// Full names of the gateway methods without a policy entry, and of entries that name no gateway
// method: both empty, or the gateway refuses to start (App::Create) and policy_test fails.
std::vector<std::string> PolicyGaps();

// Every entry, in table order.
const std::vector<MethodPolicy>& AllPolicies();
// The entry of a full method name, nullptr when there is none (= denied).
const MethodPolicy* FindPolicy(std::string_view full_method);

bool Allows(const MethodPolicy& policy, Principal::Kind kind);
// OK, or PERMISSION_DENIED (also for a null policy: deny by default).
absl::Status Authorize(const MethodPolicy* policy, const Principal& principal);

// Whether this call may be retried on UNAVAILABLE: a read, or a create or append
// whose request_id is set.
bool IsIdempotent(const MethodPolicy& policy, const google::protobuf::Message& request);
// What the audit line shows for a request naming its resource in a form no backend hands out.
inline constexpr char kMalformedResource[] = "(malformed name)";
// The resource name for the audit line (see MethodPolicy::resource_field). Never a body, and
// never a value without the form of a resource name (kMalformedResource).
std::string AuditResource(const MethodPolicy& policy, const google::protobuf::Message* request);

}  // namespace parcours::gateway
