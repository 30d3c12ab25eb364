#include "gateway/src/policy.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "parcours/gateway/v1/certifier.pb.h"
#include "parcours/gateway/v1/national.pb.h"
#include "parcours/gateway/v1/operator.pb.h"
#include "parcours/gateway/v1/region.pb.h"

namespace parcours::gateway {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using I = Idempotency;
using S = Scope;

constexpr KindSet kCertifierOrMember = kCertifier | kJuryMember;
constexpr bool kPersonal = true;
constexpr bool kAggregate = false;

// clang-format off
const std::vector<MethodPolicy>& Table() {
  static const auto* table = new std::vector<MethodPolicy>{
    // --- NationalService: France compétences ---------------------------------------------------
    {"/parcours.gateway.v1.NationalService/CreateCertification", kNational, S::kNational, I::kRequestId, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/GetCertification", kNational, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/ListCertifications", kNational, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/UpdateCertification", kNational, S::kNational, I::kNone, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/DeleteCertification", kNational, S::kNational, I::kNone, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/CreateVersion", kNational, S::kNational, I::kRequestId, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/GetVersion", kNational, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/ListVersions", kNational, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/UpdateVersion", kNational, S::kNational, I::kNone, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/DeleteVersion", kNational, S::kNational, I::kNone, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/PublishVersion", kNational, S::kNational, I::kNone, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/RetireVersion", kNational, S::kNational, I::kNone, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/CreateOperator", kNational, S::kNational, I::kNone, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/GetOperator", kNational, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/ListOperators", kNational, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/DesignateOperator", kNational, S::kNational, I::kNone, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/WithdrawOperator", kNational, S::kNational, I::kNone, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/QueryIndicators", kNational, S::kNational, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/GetComplianceReport", kNational, S::kNational, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/GetOutcomeStatistics", kNational, S::kNational, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.NationalService/GetNationalDashboard", kNational, S::kNational, I::kRead, kAggregate, "", ""},

    // --- RegionService: a Région, its own territory --------------------------------------------
    {"/parcours.gateway.v1.RegionService/QueryIndicators", kRegion, S::kOwnRegion, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.RegionService/GetComplianceReport", kRegion, S::kOwnRegion, I::kRead, kAggregate, "", ""},

    // --- OperatorService: a CEP operator, its own files ----------------------------------------
    {"/parcours.gateway.v1.OperatorService/RegisterBeneficiary", kOperator, S::kBackendPrincipal, I::kNone, kPersonal, "", "beneficiaries"},
    {"/parcours.gateway.v1.OperatorService/GetBeneficiary", kOperator, S::kBackendPrincipal, I::kRead, kPersonal, "name", ""},
    {"/parcours.gateway.v1.OperatorService/UpdateContactDetails", kOperator, S::kBackendPrincipal, I::kNone, kPersonal, "contact.beneficiary", ""},
    {"/parcours.gateway.v1.OperatorService/OpenCase", kOperator, S::kBackendPrincipal, I::kRequestId, kPersonal, "", "cases"},
    {"/parcours.gateway.v1.OperatorService/GetCase", kOperator, S::kBackendPrincipal, I::kRead, kPersonal, "name", ""},
    {"/parcours.gateway.v1.OperatorService/ListCases", kOperator, S::kBackendPrincipal, I::kRead, kPersonal, "", "cases"},
    {"/parcours.gateway.v1.OperatorService/UpdateCase", kOperator, S::kBackendPrincipal, I::kNone, kPersonal, "case.name", ""},
    {"/parcours.gateway.v1.OperatorService/ChangeLevel", kOperator, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.OperatorService/RecordService", kOperator, S::kBackendPrincipal, I::kRequestId, kPersonal, "name", ""},
    {"/parcours.gateway.v1.OperatorService/RecordOutcome", kOperator, S::kBackendPrincipal, I::kRequestId, kPersonal, "name", ""},
    {"/parcours.gateway.v1.OperatorService/RecordSatisfaction", kOperator, S::kBackendPrincipal, I::kRequestId, kPersonal, "name", ""},
    {"/parcours.gateway.v1.OperatorService/CloseCase", kOperator, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.OperatorService/ReopenCase", kOperator, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.OperatorService/RequestTransfer", kOperator, S::kBackendPrincipal, I::kRequestId, kPersonal, "transfer.case", ""},
    {"/parcours.gateway.v1.OperatorService/AcceptTransfer", kOperator, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.OperatorService/RejectTransfer", kOperator, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.OperatorService/CancelTransfer", kOperator, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.OperatorService/ListTransfers", kOperator, S::kBackendPrincipal, I::kRead, kPersonal, "", "transfers"},
    {"/parcours.gateway.v1.OperatorService/RequestErasure", kOperator, S::kBackendPrincipal, I::kNone, kPersonal, "beneficiary", ""},
    {"/parcours.gateway.v1.OperatorService/ImportCases", kOperator, S::kBackendPrincipal, I::kNone, kPersonal, "", "cases"},
    {"/parcours.gateway.v1.OperatorService/GetOperator", kOperator, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.OperatorService/ListOperators", kOperator, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.OperatorService/ListLevelCatalogues", kOperator, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.OperatorService/GetCertification", kOperator, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.OperatorService/ListCertifications", kOperator, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.OperatorService/GetVersion", kOperator, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.OperatorService/ListVersions", kOperator, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.OperatorService/GetBeneficiaryJourney", kOperator, S::kOwnCaseThenLinked, I::kRead, kPersonal, "case", ""},

    // --- CertifierService: certifiers and jury members -----------------------------------------
    {"/parcours.gateway.v1.CertifierService/CreateCandidacy", kCertifier, S::kBackendPrincipal, I::kRequestId, kPersonal, "", "candidacies"},
    {"/parcours.gateway.v1.CertifierService/GetCandidacy", kCertifierOrMember, S::kBackendPrincipal, I::kRead, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/ListCandidacies", kCertifier, S::kBackendPrincipal, I::kRead, kPersonal, "", "candidacies"},
    {"/parcours.gateway.v1.CertifierService/RequestAdmissibility", kCertifier, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/DecideAdmissibility", kCertifier, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/FileDossier", kCertifier, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/WithdrawCandidacy", kCertifier, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/IssueCertificate", kCertifier, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/CreateJurySession", kCertifier, S::kBackendPrincipal, I::kRequestId, kPersonal, "", "sessions"},
    {"/parcours.gateway.v1.CertifierService/GetJurySession", kCertifierOrMember, S::kBackendPrincipal, I::kRead, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/ListJurySessions", kCertifier, S::kBackendPrincipal, I::kRead, kPersonal, "", "sessions"},
    {"/parcours.gateway.v1.CertifierService/UpdateJurySession", kCertifier, S::kBackendPrincipal, I::kNone, kPersonal, "session.name", ""},
    {"/parcours.gateway.v1.CertifierService/ScheduleCandidacy", kCertifier, S::kBackendPrincipal, I::kNone, kPersonal, "candidacy", ""},
    {"/parcours.gateway.v1.CertifierService/ConfirmPreparation", kJuryMember, S::kBackendPrincipal, I::kNone, kPersonal, "session", ""},
    {"/parcours.gateway.v1.CertifierService/StartJurySession", kCertifier, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/RecordPassage", kCertifierOrMember, S::kBackendPrincipal, I::kNone, kPersonal, "candidacy", ""},
    {"/parcours.gateway.v1.CertifierService/GetSessionReport", kCertifierOrMember, S::kBackendPrincipal, I::kRead, kPersonal, "session", ""},
    {"/parcours.gateway.v1.CertifierService/SubmitScoreSheet", kJuryMember, S::kBackendPrincipal, I::kNone, kPersonal, "candidacy", ""},
    {"/parcours.gateway.v1.CertifierService/GetScoreSheet", kCertifierOrMember, S::kBackendPrincipal, I::kRead, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/OpenDeliberation", kCertifierOrMember, S::kBackendPrincipal, I::kNone, kPersonal, "candidacy", ""},
    {"/parcours.gateway.v1.CertifierService/GetDeliberation", kCertifierOrMember, S::kBackendPrincipal, I::kRead, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/RecordDecision", kJuryMember, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/SignDeliberation", kJuryMember, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/RevokeDeliberation", kCertifier, S::kBackendPrincipal, I::kNone, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/ListAcquiredBlocs", kCertifier, S::kBackendPrincipal, I::kRead, kPersonal, "parent", ""},
    {"/parcours.gateway.v1.CertifierService/RenderSynthesisGrid", kCertifierOrMember, S::kBackendPrincipal, I::kRead, kPersonal, "name", ""},
    {"/parcours.gateway.v1.CertifierService/GetCertification", kCertifierOrMember, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.CertifierService/ListCertifications", kCertifierOrMember, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.CertifierService/GetVersion", kCertifierOrMember, S::kReference, I::kRead, kAggregate, "", ""},
    {"/parcours.gateway.v1.CertifierService/ListVersions", kCertifierOrMember, S::kReference, I::kRead, kAggregate, "", ""},
  };
  return *table;
}
// clang-format on

const std::map<std::string_view, const MethodPolicy*>& Index() {
  static const auto* index = [] {
    auto* m = new std::map<std::string_view, const MethodPolicy*>();
    for (const MethodPolicy& p : Table()) m->emplace(p.method, &p);
    return m;
  }();
  return *index;
}

// The string value at a dotted path of singular fields, "" when a step is missing or unset.
std::string StringAt(const Message& message, std::string_view path) {
  const Message* current = &message;
  std::vector<std::string> steps;
  for (size_t start = 0;;) {
    const size_t dot = path.find('.', start);
    steps.emplace_back(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const FieldDescriptor* field = current->GetDescriptor()->FindFieldByName(steps[i]);
    if (field == nullptr || field->is_repeated()) return "";
    const bool last = i + 1 == steps.size();
    if (last) {
      if (field->type() != FieldDescriptor::TYPE_STRING) return "";
      return current->GetReflection()->GetString(*current, field);
    }
    if (field->type() != FieldDescriptor::TYPE_MESSAGE) return "";
    if (!current->GetReflection()->HasField(*current, field)) return "";
    current = &current->GetReflection()->GetMessage(*current, field);
  }
  return "";
}

}  // namespace

const std::vector<MethodPolicy>& AllPolicies() { return Table(); }

const std::vector<const google::protobuf::ServiceDescriptor*>& GatewayServices() {
  static const auto* services = [] {
    // Referencing each file's descriptor table keeps its generated .pb.cc in the link (national
    // and certifier declare only a service, so nothing else would), hence in the generated pool.
    const google::protobuf::internal::DescriptorTable* const tables[] = {
        &descriptor_table_parcours_2fgateway_2fv1_2fnational_2eproto,
        &descriptor_table_parcours_2fgateway_2fv1_2fregion_2eproto,
        &descriptor_table_parcours_2fgateway_2fv1_2foperator_2eproto,
        &descriptor_table_parcours_2fgateway_2fv1_2fcertifier_2eproto};
    auto* out = new std::vector<const google::protobuf::ServiceDescriptor*>();
    for (const auto* table : tables) {
      const google::protobuf::FileDescriptor* file =
          google::protobuf::DescriptorPool::generated_pool()->FindFileByName(table->filename);
      if (file == nullptr) continue;
      for (int i = 0; i < file->service_count(); ++i) out->push_back(file->service(i));
    }
    return out;
  }();
  return *services;
}

std::vector<std::string> PolicyGaps() {
  std::vector<std::string> gaps;
  std::map<std::string, bool> methods;  // full name -> has an entry
  for (const google::protobuf::ServiceDescriptor* service : GatewayServices()) {
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string full = absl::StrCat("/", service->full_name(), "/", service->method(i)->name());
      methods[full] = FindPolicy(full) != nullptr;
      if (!methods[full]) gaps.push_back(absl::StrCat(full, ": no policy entry"));
    }
  }
  for (const MethodPolicy& p : Table()) {
    if (methods.count(std::string(p.method)) == 0) gaps.push_back(absl::StrCat(std::string(p.method), ": not a gateway method"));
  }
  if (Index().size() != Table().size()) gaps.push_back("the policy table has duplicate entries");
  return gaps;
}

const MethodPolicy* FindPolicy(std::string_view full_method) {
  const auto& index = Index();
  auto it = index.find(full_method);
  return it == index.end() ? nullptr : it->second;
}

bool Allows(const MethodPolicy& policy, Principal::Kind kind) { return (policy.kinds & KindBit(kind)) != 0; }

absl::Status Authorize(const MethodPolicy* policy, const Principal& principal) {
  if (policy != nullptr && Allows(*policy, principal.kind)) return absl::OkStatus();
  // The same answer whatever the method and the request: nothing about either leaks.
  return absl::PermissionDeniedError(
      absl::StrCat("this method is not available to ", principal.ToString().substr(0, principal.ToString().find(':'))));
}

bool IsIdempotent(const MethodPolicy& policy, const Message& request) {
  switch (policy.idempotency) {
    case Idempotency::kRead:
      return true;
    case Idempotency::kRequestId:
      return !StringAt(request, "request_id").empty();
    case Idempotency::kNone:
      return false;
  }
  return false;
}

namespace {

// kNumberOrCurrent: a number, or "-" for the current one (deliberations/-, evaluation.proto).
enum class IdForm { kHex16, kHex32, kNumber, kNumberOrCurrent, kCode };

bool HasForm(std::string_view id, IdForm form) {
  auto hex = [&](size_t n) {
    return id.size() == n &&
           std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  };
  switch (form) {
    case IdForm::kHex16:
      return hex(16);
    case IdForm::kHex32:
      return hex(32);
    case IdForm::kNumberOrCurrent:
      if (id == "-") return true;
      [[fallthrough]];
    case IdForm::kNumber:
      return !id.empty() && id.size() <= 9 && std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; });
    case IdForm::kCode: {
      // A run of 13 digits is the shape of a NIR (13 digits and a 2-digit key): never logged.
      int run = 0;
      for (char c : id) {
        run = (c >= '0' && c <= '9') ? run + 1 : 0;
        if (run >= 13) return false;
      }
      return ValidPrincipalId(id);
    }
  }
  return false;
}

// The collections of the names the backends hand out, and the form of their ids.
const absl::flat_hash_map<std::string_view, IdForm>& IdForms() {
  static const auto* forms = new absl::flat_hash_map<std::string_view, IdForm>{
      {"beneficiaries", IdForm::kHex32}, {"cases", IdForm::kHex16},         {"transfers", IdForm::kHex16},
      {"candidacies", IdForm::kHex16},   {"sessions", IdForm::kHex16},      {"deliberations", IdForm::kNumberOrCurrent},
      {"scoreSheets", IdForm::kCode},    {"candidates", IdForm::kCode},     {"operators", IdForm::kCode},
      {"certifications", IdForm::kCode}, {"versions", IdForm::kNumber},
  };
  return *forms;
}

// Whether `value` is collection/id pairs whose ids have their collection's form.
bool WellFormedName(std::string_view value) {
  // Bounded: a name of many well-formed pairs would still write a novel into the audit stream.
  if (value.size() > 256) return false;
  std::vector<absl::string_view> segments = absl::StrSplit(absl::string_view(value.data(), value.size()), '/');
  if (segments.size() % 2 != 0) return false;
  for (size_t i = 0; i < segments.size(); i += 2) {
    auto form = IdForms().find(std::string_view(segments[i].data(), segments[i].size()));
    if (form == IdForms().end() ||
        !HasForm(std::string_view(segments[i + 1].data(), segments[i + 1].size()), form->second)) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string AuditResource(const MethodPolicy& policy, const Message* request) {
  if (request != nullptr && !policy.resource_field.empty()) {
    std::string value = StringAt(*request, policy.resource_field);
    if (value.empty()) return "";
    // What a client typed is logged only when it has the form of a name the backends hand out:
    // a NIR or an e-mail address typed into a name field, or any free text, stays out of the
    // audit stream (DOMAIN.md: no personal data in logs).
    return WellFormedName(value) ? value : kMalformedResource;
  }
  return "";
}

}  // namespace parcours::gateway
