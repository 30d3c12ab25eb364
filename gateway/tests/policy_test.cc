// The policy table against the generated descriptors of parcours.gateway.v1: every method has an
// entry, every entry names a method, and the kinds allowed per method are those of the audience
// (written here independently of the table, so a wrong entry fails).
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gateway/src/backends.h"
#include "gateway/src/policy.h"
#include "gateway/src/services.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "parcours/cep/v1/cep.pb.h"
#include "parcours/evaluation/v1/evaluation.pb.h"

namespace parcours::gateway {
namespace {

using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;
using Kind = Principal::Kind;

struct Method {
  std::string service;  // short name
  std::string name;
  std::string full;     // "/parcours.gateway.v1.X/Y"
  const MethodDescriptor* descriptor;
};

std::vector<Method> GatewayMethods() {
  std::vector<Method> out;
  for (const ServiceDescriptor* service : GatewayServices()) {
    EXPECT_EQ(service->file()->package(), "parcours.gateway.v1");
    for (int m = 0; m < service->method_count(); ++m) {
      out.push_back({service->name(), service->method(m)->name(),
                     "/" + service->full_name() + "/" + service->method(m)->name(), service->method(m)});
    }
  }
  return out;
}

// The audiences, independently of the table.
KindSet Expected(const Method& m) {
  if (m.service == "NationalService") return kNational;
  if (m.service == "RegionService") return kRegion;
  if (m.service == "OperatorService") return kOperator;
  if (m.service == "CertifierService") {
    static const std::set<std::string> certifier_only = {
        "CreateCandidacy",   "ListCandidacies",   "RequestAdmissibility", "DecideAdmissibility",
        "FileDossier",       "WithdrawCandidacy", "IssueCertificate",     "CreateJurySession",
        "ListJurySessions",  "UpdateJurySession", "ScheduleCandidacy",    "StartJurySession",
        "RevokeDeliberation", "ListAcquiredBlocs"};
    static const std::set<std::string> member_only = {"ConfirmPreparation", "SubmitScoreSheet", "RecordDecision",
                                                      "SignDeliberation"};
    if (certifier_only.count(m.name)) return kCertifier;
    if (member_only.count(m.name)) return kJuryMember;
    return kCertifier | kJuryMember;
  }
  return 0;
}

TEST(PolicyTest, EveryGatewayMethodHasAnEntry) {
  const std::vector<Method> methods = GatewayMethods();
  ASSERT_FALSE(methods.empty());
  for (const Method& m : methods) EXPECT_NE(FindPolicy(m.full), nullptr) << m.full << " has no policy entry";
}

TEST(PolicyTest, GatewayServicesComeFromTheGeneratedPool) {
  std::set<std::string> names;
  for (const ServiceDescriptor* service : GatewayServices()) names.insert(service->full_name());
  EXPECT_EQ(names, (std::set<std::string>{"parcours.gateway.v1.NationalService", "parcours.gateway.v1.RegionService",
                                          "parcours.gateway.v1.OperatorService",
                                          "parcours.gateway.v1.CertifierService"}));
  // The same check the gateway makes at start-up.
  EXPECT_TRUE(PolicyGaps().empty());
}

TEST(PolicyTest, EveryEntryNamesAGatewayMethodOnce) {
  std::set<std::string> known;
  for (const Method& m : GatewayMethods()) known.insert(m.full);
  std::set<std::string> seen;
  for (const MethodPolicy& p : AllPolicies()) {
    EXPECT_TRUE(known.count(std::string(p.method))) << p.method << " is not a gateway method";
    EXPECT_TRUE(seen.insert(std::string(p.method)).second) << p.method << " has two entries";
  }
  EXPECT_EQ(seen.size(), known.size());
}

TEST(PolicyTest, FourAudiencesWithTheirMethodCounts) {
  std::map<std::string, int> counts;
  for (const Method& m : GatewayMethods()) ++counts[m.service];
  EXPECT_EQ(counts, (std::map<std::string, int>{
                        {"NationalService", 21}, {"RegionService", 2}, {"OperatorService", 28}, {"CertifierService", 30}}));
}

TEST(PolicyTest, MatrixOfMethodsAndPrincipalKinds) {
  int allowed = 0;
  int denied = 0;
  for (const Method& m : GatewayMethods()) {
    const MethodPolicy* policy = FindPolicy(m.full);
    ASSERT_NE(policy, nullptr) << m.full;
    for (Kind kind : kAllKinds) {
      const Principal p{kind, kind == Kind::kNational ? "" : "X-1"};
      const bool expected = (Expected(m) & KindBit(kind)) != 0;
      const absl::Status status = Authorize(policy, p);
      EXPECT_EQ(status.ok(), expected) << m.full << " for " << p.ToString() << ": " << status;
      if (!status.ok()) {
        EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
        // The refusal says nothing about the method or the request.
        EXPECT_EQ(status.message().find(m.name), std::string::npos) << status;
      }
      (expected ? allowed : denied) += 1;
    }
  }
  EXPECT_EQ(allowed + denied, 81 * 5);
}

TEST(PolicyTest, ScopeRulesFitTheAudiences) {
  for (const Method& m : GatewayMethods()) {
    const MethodPolicy* p = FindPolicy(m.full);
    ASSERT_NE(p, nullptr);
    switch (p->scope) {
      case Scope::kReference:
        // Shared reference data: reads only, nothing personal.
        EXPECT_EQ(p->idempotency, Idempotency::kRead) << m.full;
        EXPECT_FALSE(p->personal_data) << m.full;
        break;
      case Scope::kNational:
        EXPECT_EQ(p->kinds, kNational) << m.full;
        break;
      case Scope::kOwnRegion:
        EXPECT_EQ(p->kinds, kRegion) << m.full;
        break;
      case Scope::kBackendPrincipal:
      case Scope::kOwnCaseThenLinked:
        // Tenant data: operators, certifiers and members only, always audited.
        EXPECT_EQ(p->kinds & (kNational | kRegion), 0u) << m.full;
        EXPECT_TRUE(p->personal_data) << m.full;
        break;
    }
  }
  EXPECT_EQ(FindPolicy("/parcours.gateway.v1.OperatorService/GetBeneficiaryJourney")->scope,
            Scope::kOwnCaseThenLinked);
}

TEST(PolicyTest, DenyByDefault) {
  EXPECT_EQ(FindPolicy("/parcours.gateway.v1.OperatorService/DropDatabase"), nullptr);
  EXPECT_EQ(FindPolicy("/parcours.cep.v1.CepService/GetCase"), nullptr);  // backends are not gateway methods
  for (Kind kind : kAllKinds) {
    EXPECT_EQ(Authorize(nullptr, Principal{kind, "X"}).code(), absl::StatusCode::kPermissionDenied);
  }
}

TEST(PolicyTest, NoAudienceRequestNamesATenantAtTopLevel) {
  // The scope comes from the credentials: requests of the scoped audiences carry no field that
  // names an operator, region, certifier or member (resource names of the caller's own resources
  // are checked by the backends).
  const std::set<std::string> tenant_fields = {"operator", "operator_id", "region", "certifier", "certifier_id",
                                               "member", "member_id", "principal", "suppress_small_cells"};
  for (const Method& m : GatewayMethods()) {
    if (m.service == "NationalService") continue;
    const auto* input = m.descriptor->input_type();
    for (int i = 0; i < input->field_count(); ++i) {
      EXPECT_EQ(tenant_fields.count(input->field(i)->name()), 0u)
          << m.full << " request " << input->full_name() << " has field " << input->field(i)->name();
    }
  }
}

TEST(PolicyTest, PersonalDataMethodsAreAuditedWithAResource) {
  for (const MethodPolicy& p : AllPolicies()) {
    if (!p.personal_data) continue;
    EXPECT_TRUE(!p.resource_field.empty() || !p.collection.empty()) << p.method;
  }
  // Every case-file and candidacy method is personal; référentiels and aggregates are not.
  EXPECT_TRUE(FindPolicy("/parcours.gateway.v1.OperatorService/GetCase")->personal_data);
  EXPECT_TRUE(FindPolicy("/parcours.gateway.v1.OperatorService/ImportCases")->personal_data);
  EXPECT_TRUE(FindPolicy("/parcours.gateway.v1.CertifierService/GetCandidacy")->personal_data);
  EXPECT_FALSE(FindPolicy("/parcours.gateway.v1.OperatorService/GetVersion")->personal_data);
  EXPECT_FALSE(FindPolicy("/parcours.gateway.v1.RegionService/QueryIndicators")->personal_data);
}

TEST(PolicyTest, AuditResourceIsANameNeverABody) {
  const MethodPolicy* contact = FindPolicy("/parcours.gateway.v1.OperatorService/UpdateContactDetails");
  cep::v1::UpdateContactDetailsRequest update;
  update.mutable_contact()->set_beneficiary("beneficiaries/0123456789abcdef0123456789abcdef");
  update.mutable_contact()->set_email("elodie.martin@example.fr");
  EXPECT_EQ(AuditResource(*contact, &update), "beneficiaries/0123456789abcdef0123456789abcdef");
  const MethodPolicy* register_policy = FindPolicy("/parcours.gateway.v1.OperatorService/RegisterBeneficiary");
  cep::v1::RegisterBeneficiaryRequest registration;
  registration.set_external_id("2 88 03 35 238 012 54");  // a NIR: never logged
  EXPECT_EQ(AuditResource(*register_policy, &registration), "");
  EXPECT_EQ(register_policy->collection, "beneficiaries");
  const MethodPolicy* update_case = FindPolicy("/parcours.gateway.v1.OperatorService/UpdateCase");
  cep::v1::UpdateCaseRequest uc;
  uc.mutable_case_()->set_name("cases/0123456789abcdef");
  EXPECT_EQ(AuditResource(*update_case, &uc), "cases/0123456789abcdef");
  EXPECT_EQ(AuditResource(*update_case, nullptr), "");
}

// A name field holds whatever the client typed: only the form of a name a backend hands out is
// logged, so a NIR, an e-mail address or free text typed there never reaches the audit stream.
TEST(PolicyTest, AuditResourceLogsOnlyWellFormedNames) {
  const MethodPolicy* get_beneficiary = FindPolicy("/parcours.gateway.v1.OperatorService/GetBeneficiary");
  cep::v1::GetBeneficiaryRequest get;
  for (const char* bad : {"beneficiaries/1850775123456", "beneficiaries/elodie.martin@example.fr",
                          "beneficiaries/0123456789ABCDEF0123456789ABCDEF", "Élodie Martin née le 3 mars",
                          "beneficiaries/0123456789abcdef0123456789abcdef/x",
                          "beneficiaries/", "/beneficiaries/0123456789abcdef0123456789abcdef"}) {
    get.set_name(bad);
    EXPECT_EQ(AuditResource(*get_beneficiary, &get), kMalformedResource) << bad;
  }
  // A code-form id with a NIR's run of digits, and a name too long to be one the backends hand out.
  const MethodPolicy* ledger = FindPolicy("/parcours.gateway.v1.CertifierService/ListAcquiredBlocs");
  ASSERT_NE(ledger, nullptr);
  evaluation::v1::ListAcquiredBlocsRequest list;
  list.set_parent("candidates/1850775123456");
  EXPECT_EQ(AuditResource(*ledger, &list), kMalformedResource);
  list.set_parent("candidates/CAND-2024-000123");
  EXPECT_EQ(AuditResource(*ledger, &list), "candidates/CAND-2024-000123");
  std::string long_name;
  for (int i = 0; i < 3; ++i) absl::StrAppend(&long_name, i == 0 ? "" : "/", "operators/", std::string(120, 'a'));
  get.set_name(long_name);
  EXPECT_EQ(AuditResource(*get_beneficiary, &get), kMalformedResource);
  const MethodPolicy* sign = FindPolicy("/parcours.gateway.v1.CertifierService/SignDeliberation");
  ASSERT_NE(sign, nullptr);
  evaluation::v1::SignDeliberationRequest signature;
  signature.set_name("candidacies/0123456789abcdef/deliberations/2");
  EXPECT_EQ(AuditResource(*sign, &signature), "candidacies/0123456789abcdef/deliberations/2");
  signature.set_name("candidacies/0123456789abcdef/deliberations/deux");
  EXPECT_EQ(AuditResource(*sign, &signature), kMalformedResource);
  // The current deliberation, "-" (evaluation.proto), names the candidacy's round it reads.
  const MethodPolicy* get_deliberation = FindPolicy("/parcours.gateway.v1.CertifierService/GetDeliberation");
  ASSERT_NE(get_deliberation, nullptr);
  evaluation::v1::GetDeliberationRequest current;
  current.set_name("candidacies/0123456789abcdef/deliberations/-");
  EXPECT_EQ(AuditResource(*get_deliberation, &current), "candidacies/0123456789abcdef/deliberations/-");
  current.set_name("candidacies/0123456789abcdef/deliberations/--");
  EXPECT_EQ(AuditResource(*get_deliberation, &current), kMalformedResource);
  const MethodPolicy* grid = FindPolicy("/parcours.gateway.v1.CertifierService/RenderSynthesisGrid");
  ASSERT_NE(grid, nullptr);
  evaluation::v1::RenderSynthesisGridRequest render;
  render.set_name("candidacies/0123456789abcdef/deliberations/-");
  EXPECT_EQ(AuditResource(*grid, &render), "candidacies/0123456789abcdef/deliberations/-");
  // A cancellation is audited on the transfer's name, never on the words typed in it.
  const MethodPolicy* cancel = FindPolicy("/parcours.gateway.v1.OperatorService/CancelTransfer");
  ASSERT_NE(cancel, nullptr);
  cep::v1::CancelTransferRequest cancellation;
  cancellation.set_name("transfers/0123456789abcdef");
  cancellation.set_reason("la personne retire son consentement");
  EXPECT_EQ(AuditResource(*cancel, &cancellation), "transfers/0123456789abcdef");
  cancellation.set_name("transfers/Élodie Martin");
  EXPECT_EQ(AuditResource(*cancel, &cancellation), kMalformedResource);
  const MethodPolicy* sheet = FindPolicy("/parcours.gateway.v1.CertifierService/GetScoreSheet");
  ASSERT_NE(sheet, nullptr);
  evaluation::v1::GetScoreSheetRequest get_sheet;
  get_sheet.set_name("candidacies/0123456789abcdef/scoreSheets/J-7");
  EXPECT_EQ(AuditResource(*sheet, &get_sheet), "candidacies/0123456789abcdef/scoreSheets/J-7");
}

TEST(PolicyTest, OnlyReadsAndCreatesWithARequestIdAreIdempotent) {
  const MethodPolicy* open = FindPolicy("/parcours.gateway.v1.OperatorService/OpenCase");
  cep::v1::OpenCaseRequest req;
  EXPECT_FALSE(IsIdempotent(*open, req));
  req.set_request_id("7c1d0e52-3d4b-4a43-9d0e-0c1f6e1a2b3c");
  EXPECT_TRUE(IsIdempotent(*open, req));
  cep::v1::GetCaseRequest get;
  EXPECT_TRUE(IsIdempotent(*FindPolicy("/parcours.gateway.v1.OperatorService/GetCase"), get));
  cep::v1::CloseCaseRequest close;
  EXPECT_FALSE(IsIdempotent(*FindPolicy("/parcours.gateway.v1.OperatorService/CloseCase"), close));
  evaluation::v1::SignDeliberationRequest sign;
  EXPECT_FALSE(IsIdempotent(*FindPolicy("/parcours.gateway.v1.CertifierService/SignDeliberation"), sign));
  // Every kRequestId method's request has a request_id field.
  for (const Method& m : GatewayMethods()) {
    const MethodPolicy* p = FindPolicy(m.full);
    if (p == nullptr || p->idempotency != Idempotency::kRequestId) continue;
    EXPECT_NE(m.descriptor->input_type()->FindFieldByName("request_id"), nullptr) << m.full;
  }
}

TEST(BackendOptionsTest, RetryBackoffAndConfig) {
  BackendOptions options;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const absl::Duration base = absl::Milliseconds(50) * (1 << (attempt - 1));
    for (int i = 0; i < 100; ++i) {
      const absl::Duration d = internal::RetryDelay(options, attempt);
      EXPECT_GE(d, base / 2);
      EXPECT_LE(d, base * 3 / 2);
    }
  }
  EXPECT_LE(internal::RetryDelay(options, 30), absl::Seconds(3));
  auto defaults = BackendOptions::FromConfig(Config::FromMap({}));
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->retry_max_attempts, 3);
  EXPECT_EQ(defaults->default_deadline, absl::Seconds(10));
  EXPECT_EQ(defaults->connections, 2);
  auto four = BackendOptions::FromConfig(Config::FromMap({{"backends.connections", "4"}}));
  ASSERT_TRUE(four.ok());
  EXPECT_EQ(four->connections, 4);
  EXPECT_FALSE(BackendOptions::FromConfig(Config::FromMap({{"backends.connections", "0"}})).ok());
  EXPECT_FALSE(BackendOptions::FromConfig(Config::FromMap({{"backends.connections", "17"}})).ok());
  EXPECT_FALSE(BackendOptions::FromConfig(Config::FromMap({{"backends.retry_max_attempts", "9"}})).ok());
  EXPECT_FALSE(BackendOptions::FromConfig(Config::FromMap({{"backends.default_deadline", "0s"}})).ok());
  EXPECT_FALSE(BackendOptions::FromConfig(Config::FromMap({{"backends.max_message_bytes", "-1"}})).ok());
}

}  // namespace
}  // namespace parcours::gateway
