// The CEP rules alone (cep-svc/src/rules.h): field checks with their paths, the French territory,
// the keyed pseudonym, age bands, designation of operators, the case state machine and the rules
// on a case's recorded facts.
#include "cep-svc/src/rules.h"
#include "cep-svc/src/indicators.h"

#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "cep-svc/src/repository.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"

namespace parcours::cep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// --- Helpers ------------------------------------------------------------------------------------

std::vector<std::string> Fields(const Violations& v) {
  std::vector<std::string> out;
  for (const FieldViolation& f : v.list()) out.push_back(f.field);
  return out;
}

google::rpc::PreconditionFailure Failure(const absl::Status& status) {
  google::rpc::PreconditionFailure failure;
  absl::optional<absl::Cord> payload = status.GetPayload("type.googleapis.com/google.rpc.PreconditionFailure");
  if (payload.has_value()) failure.ParseFromString(std::string(*payload));
  return failure;
}

// Types of a FAILED_PRECONDITION's violations, in order.
std::vector<std::string> Types(const absl::Status& status) {
  std::vector<std::string> out;
  const google::rpc::PreconditionFailure failure = Failure(status);
  for (const auto& v : failure.violations()) out.push_back(v.type());
  return out;
}

// Subject of the first violation of a FAILED_PRECONDITION ("" when there is none).
std::string Subject(const absl::Status& status) {
  const google::rpc::PreconditionFailure failure = Failure(status);
  return failure.violations().empty() ? std::string() : failure.violations(0).subject();
}

google::type::Date Day(int year, int month, int day) {
  google::type::Date d;
  d.set_year(year);
  d.set_month(month);
  d.set_day(day);
  return d;
}

pb::Operator Op(const std::string& id, pb::OperatorKind kind, std::vector<std::string> regions) {
  pb::Operator op;
  op.set_name("operators/" + id);
  op.set_display_name(id);
  op.set_kind(kind);
  for (auto& r : regions) op.add_regions(std::move(r));
  return op;
}

pb::Beneficiary GoodBeneficiary() {
  pb::Beneficiary b;
  b.set_birth_year(1980);
  b.set_sex(pb::SEX_FEMALE);
  b.set_department("35");
  b.set_region("53");
  b.set_status(pb::EMPLOYMENT_STATUS_JOB_SEEKER);
  b.set_qualification_level(4);
  return b;
}

pb::Case GoodCase() {
  pb::Case c;
  c.set_name("cases/c1");
  c.set_beneficiary("beneficiaries/0123456789abcdef0123456789abcdef");
  *c.mutable_opening_date() = Day(2024, 3, 15);
  c.set_level("2019/2");
  c.add_demands(pb::DEMAND_KIND_PROJECT);
  c.add_demands(pb::DEMAND_KIND_SKILLS_RECOGNITION);
  pb::ProjectDocument* p = c.mutable_project();
  p->set_goal("Devenir technicien de maintenance");
  pb::ActionStep* s = p->add_steps();
  s->set_description("Se renseigner sur le CQP");
  s->set_status(pb::STEP_STATUS_PLANNED);
  *s->mutable_due_date() = Day(2024, 6, 1);
  c.set_state(pb::CASE_STATE_OPEN);
  return c;
}

// --- Dates --------------------------------------------------------------------------------------

TEST(CepRulesDatesTest, DateKeyRoundTripsAndIsZeroWhenUnset) {
  EXPECT_EQ(DateKey(Day(2024, 1, 31)), 20240131);
  EXPECT_EQ(DateKey(google::type::Date()), 0);
  google::type::Date d = DateFromKey(20191231);
  EXPECT_EQ(d.year(), 2019);
  EXPECT_EQ(d.month(), 12);
  EXPECT_EQ(d.day(), 31);
  EXPECT_EQ(DateKey(DateFromKey(0)), 0);
}

TEST(CepRulesDatesTest, ValidDatesAreRealCalendarDaysFrom1900To9999) {
  EXPECT_TRUE(IsCalendarDate(Day(2024, 2, 29)));
  EXPECT_TRUE(IsCalendarDate(Day(1900, 1, 1)));
  EXPECT_TRUE(IsCalendarDate(Day(9999, 12, 31)));
  EXPECT_FALSE(IsCalendarDate(Day(2023, 2, 29)));
  EXPECT_FALSE(IsCalendarDate(Day(1900, 2, 29)));  // 1900 is not a leap year
  EXPECT_FALSE(IsCalendarDate(Day(2024, 4, 31)));
  EXPECT_FALSE(IsCalendarDate(Day(2024, 13, 1)));
  EXPECT_FALSE(IsCalendarDate(Day(2024, 0, 1)));
  EXPECT_FALSE(IsCalendarDate(Day(2024, 1, 0)));
  EXPECT_FALSE(IsCalendarDate(Day(1899, 12, 31)));
  EXPECT_FALSE(IsCalendarDate(Day(10000, 1, 1)));
  EXPECT_FALSE(IsCalendarDate(google::type::Date()));
}

TEST(CepRulesDatesTest, AddMonthsClampsTheDayAndCrossesYears) {
  EXPECT_EQ(AddMonths(20240131, 1), 20240229);
  EXPECT_EQ(AddMonths(20230131, 1), 20230228);
  EXPECT_EQ(AddMonths(20240831, 6), 20250228);
  EXPECT_EQ(AddMonths(20240715, 6), 20250115);
  EXPECT_EQ(AddMonths(20240315, -3), 20231215);
  EXPECT_EQ(AddMonths(20240612, 0), 20240612);
}

// --- Territory ----------------------------------------------------------------------------------

struct DepartmentCase {
  const char* department;
  const char* region;
};

void PrintTo(const DepartmentCase& d, std::ostream* os) { *os << d.department << " -> " << d.region; }

class CepRulesDepartmentTest : public ::testing::TestWithParam<DepartmentCase> {};

TEST_P(CepRulesDepartmentTest, MapsToItsInseeRegion) {
  EXPECT_EQ(RegionOfDepartment(GetParam().department), GetParam().region) << GetParam().department;
}

// At least two departments of every region, the first and last of each where it matters.
INSTANTIATE_TEST_SUITE_P(EveryRegion, CepRulesDepartmentTest,
                         ::testing::Values(DepartmentCase{"75", "11"}, DepartmentCase{"95", "11"},
                                           DepartmentCase{"77", "11"}, DepartmentCase{"18", "24"},
                                           DepartmentCase{"45", "24"}, DepartmentCase{"21", "27"},
                                           DepartmentCase{"90", "27"}, DepartmentCase{"14", "28"},
                                           DepartmentCase{"76", "28"}, DepartmentCase{"02", "32"},
                                           DepartmentCase{"59", "32"}, DepartmentCase{"08", "44"},
                                           DepartmentCase{"88", "44"}, DepartmentCase{"67", "44"},
                                           DepartmentCase{"44", "52"}, DepartmentCase{"85", "52"},
                                           DepartmentCase{"35", "53"}, DepartmentCase{"29", "53"},
                                           DepartmentCase{"33", "75"}, DepartmentCase{"87", "75"},
                                           DepartmentCase{"16", "75"}, DepartmentCase{"31", "76"},
                                           DepartmentCase{"09", "76"}, DepartmentCase{"82", "76"},
                                           DepartmentCase{"69", "84"}, DepartmentCase{"01", "84"},
                                           DepartmentCase{"74", "84"}, DepartmentCase{"13", "93"},
                                           DepartmentCase{"04", "93"}, DepartmentCase{"84", "93"},
                                           DepartmentCase{"2A", "94"}, DepartmentCase{"2B", "94"},
                                           DepartmentCase{"971", "01"}, DepartmentCase{"972", "02"},
                                           DepartmentCase{"973", "03"}, DepartmentCase{"974", "04"},
                                           DepartmentCase{"976", "06"}));

TEST(CepRulesTerritoryTest, KnowsExactlyThe101DepartmentsAndTheir18Regions) {
  std::vector<std::string> codes;
  for (int i = 1; i <= 95; ++i) codes.push_back(i < 10 ? absl::StrCat("0", i) : absl::StrCat(i));
  codes.push_back("2A");
  codes.push_back("2B");
  for (int i = 971; i <= 976; ++i) codes.push_back(absl::StrCat(i));
  int known = 0;
  std::set<std::string> regions;
  for (const std::string& code : codes) {
    const std::string region = RegionOfDepartment(code);
    if (region.empty()) continue;
    ++known;
    EXPECT_TRUE(IsRegion(region)) << code << " -> " << region;
    regions.insert(region);
  }
  EXPECT_EQ(known, 101);
  EXPECT_EQ(regions.size(), 18u);
  // Not departments: Corse before 1976, Saint-Pierre-et-Miquelon (a collectivity), sloppy input.
  EXPECT_EQ(RegionOfDepartment("20"), "");
  EXPECT_EQ(RegionOfDepartment("975"), "");
  EXPECT_EQ(RegionOfDepartment("96"), "");
  EXPECT_EQ(RegionOfDepartment("5"), "");
  EXPECT_EQ(RegionOfDepartment(""), "");
  EXPECT_EQ(RegionOfDepartment("35 "), "");
}

TEST(CepRulesTerritoryTest, IsRegionAcceptsOnlyThe18InseeCodes) {
  for (const char* r : {"01", "02", "03", "04", "06", "11", "24", "27", "28", "32", "44", "52", "53", "75", "76",
                        "84", "93", "94"}) {
    EXPECT_TRUE(IsRegion(r)) << r;
  }
  for (const char* r : {"", "05", "1", "21", "23", "25", "26", "31", "41", "42", "43", "54", "72", "73", "74", "82",
                        "83", "91", "971", "53 "}) {
    EXPECT_FALSE(IsRegion(r)) << r;
  }
}

// --- Pseudonym ----------------------------------------------------------------------------------

TEST(CepRulesPseudonymTest, IsTheHmacSha256HexTruncatedTo32) {
  // RFC 4231 test case 2.
  EXPECT_EQ(Pseudonym("Jefe", "what do ya want for nothing?"), "5bdcc146bf60754e6a042426089575c7");
}

TEST(CepRulesPseudonymTest, DeterministicKeyedAndNeverTheIdentifier) {
  const std::string nir = "2850375123456";
  const std::string p = Pseudonym("key-one", nir);
  EXPECT_EQ(p, Pseudonym("key-one", nir));
  ASSERT_EQ(p.size(), 32u);
  for (char ch : p) EXPECT_TRUE((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) << p;
  EXPECT_EQ(p.find(nir), std::string::npos);
  EXPECT_NE(p, Pseudonym("key-two", nir));
  EXPECT_NE(p, Pseudonym("key-one", "2850375123457"));
  EXPECT_EQ(Pseudonym("", "").size(), 32u);
}

// --- Age bands ----------------------------------------------------------------------------------

// The bands the indicators count in (indicators.h): age in the opening year.
std::string AgeBand(int birth_year, int year) {
  return indicators::AgeBandName(indicators::AgeBandCode(birth_year, year * 10000 + 101));
}

TEST(CepRulesAgeBandTest, BoundariesOfTheSocleNational) {
  EXPECT_EQ(AgeBand(0, 2024), "UNKNOWN");  // no birth year
  EXPECT_EQ(AgeBand(2009, 2024), "<26");  // 15
  EXPECT_EQ(AgeBand(1999, 2024), "<26");  // 25
  EXPECT_EQ(AgeBand(1998, 2024), "26-34");
  EXPECT_EQ(AgeBand(1990, 2024), "26-34");  // 34
  EXPECT_EQ(AgeBand(1989, 2024), "35-44");
  EXPECT_EQ(AgeBand(1980, 2024), "35-44");  // 44
  EXPECT_EQ(AgeBand(1979, 2024), "45-54");
  EXPECT_EQ(AgeBand(1970, 2024), "45-54");  // 54
  EXPECT_EQ(AgeBand(1969, 2024), "55+");
  EXPECT_EQ(AgeBand(1950, 2024), "55+");
}

// --- Operator and designation fields ------------------------------------------------------------

TEST(CepRulesOperatorTest, AValidOperatorPasses) {
  Violations v;
  CheckOperator(Op("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53", "11", "94", "04"}), "operator", v);
  EXPECT_THAT(Fields(v), IsEmpty());
}

TEST(CepRulesOperatorTest, EachBrokenFieldIsReportedWithItsPath) {
  {
    pb::Operator op = Op("x", pb::OPERATOR_KIND_APEC, {"53"});
    op.set_display_name("  ");
    Violations v;
    CheckOperator(op, "operator", v);
    EXPECT_THAT(Fields(v), ElementsAre("operator.display_name"));
  }
  {
    pb::Operator op = Op("x", pb::OPERATOR_KIND_APEC, {"53"});
    op.set_display_name(std::string(256, 'a'));
    Violations v;
    CheckOperator(op, "operator", v);
    EXPECT_THAT(Fields(v), ElementsAre("operator.display_name"));
  }
  {
    pb::Operator op = Op("x", pb::OPERATOR_KIND_APEC, {"53"});
    std::string name;
    for (int i = 0; i < 255; ++i) name += "é";  // 255 characters, 510 bytes
    op.set_display_name(name);
    Violations v;
    CheckOperator(op, "operator", v);
    EXPECT_THAT(Fields(v), IsEmpty());
  }
  {
    pb::Operator op = Op("x", pb::OPERATOR_KIND_UNSPECIFIED, {"53"});
    Violations v;
    CheckOperator(op, "operator", v);
    EXPECT_THAT(Fields(v), ElementsAre("operator.kind"));
  }
  {
    pb::Operator op = Op("x", pb::OPERATOR_KIND_APEC, {"53", "35", "11", "53"});
    Violations v;
    CheckOperator(op, "operator", v);
    EXPECT_THAT(Fields(v), ElementsAre("operator.regions[1]", "operator.regions[3]"));
  }
}

TEST(CepRulesDesignationFieldsTest, ValidPeriodsPass) {
  pb::DesignationPeriod p;
  p.set_region("53");
  *p.mutable_start_date() = Day(2020, 1, 1);
  Violations open_ended;
  CheckDesignation(p, "period", open_ended);
  EXPECT_THAT(Fields(open_ended), IsEmpty());
  *p.mutable_end_date() = Day(2020, 1, 1);  // a one-day period
  Violations one_day;
  CheckDesignation(p, "period", one_day);
  EXPECT_THAT(Fields(one_day), IsEmpty());
}

TEST(CepRulesDesignationFieldsTest, EachBrokenFieldIsReportedWithItsPath) {
  auto base = [] {
    pb::DesignationPeriod p;
    p.set_region("53");
    *p.mutable_start_date() = Day(2020, 1, 1);
    *p.mutable_end_date() = Day(2023, 12, 31);
    return p;
  };
  auto fields = [](const pb::DesignationPeriod& p) {
    Violations v;
    CheckDesignation(p, "period", v);
    return Fields(v);
  };
  pb::DesignationPeriod p = base();
  p.set_region("");
  EXPECT_THAT(fields(p), ElementsAre("period.region"));
  p = base();
  p.set_region("35");  // a department, not a region
  EXPECT_THAT(fields(p), ElementsAre("period.region"));
  p = base();
  p.clear_start_date();
  EXPECT_THAT(fields(p), ElementsAre("period.start_date"));
  p = base();
  *p.mutable_start_date() = Day(2021, 2, 29);
  EXPECT_THAT(fields(p), ElementsAre("period.start_date"));
  p = base();
  *p.mutable_end_date() = Day(2019, 12, 31);
  EXPECT_THAT(fields(p), ElementsAre("period.end_date"));
  p = base();
  *p.mutable_end_date() = Day(2023, 11, 31);
  EXPECT_THAT(fields(p), ElementsAre("period.end_date"));
}

// --- Beneficiary and contact fields -------------------------------------------------------------

TEST(CepRulesBeneficiaryTest, AValidBeneficiaryPassesAndTheRegionMayBeLeftEmpty) {
  Violations v;
  CheckBeneficiary(GoodBeneficiary(), 2024, "beneficiary", v);
  EXPECT_THAT(Fields(v), IsEmpty());
  pb::Beneficiary b = GoodBeneficiary();
  b.clear_region();
  b.set_birth_year(2010);  // exactly 14 this year
  b.set_qualification_level(0);
  Violations v2;
  CheckBeneficiary(b, 2024, "beneficiary", v2);
  EXPECT_THAT(Fields(v2), IsEmpty());
  b.set_birth_year(1900);
  b.set_qualification_level(8);
  Violations v3;
  CheckBeneficiary(b, 2024, "beneficiary", v3);
  EXPECT_THAT(Fields(v3), IsEmpty());
}

TEST(CepRulesBeneficiaryTest, EachBrokenFieldIsReportedWithItsPath) {
  auto fields = [](const pb::Beneficiary& b) {
    Violations v;
    CheckBeneficiary(b, 2024, "beneficiary", v);
    return Fields(v);
  };
  pb::Beneficiary b = GoodBeneficiary();
  b.set_birth_year(1899);
  EXPECT_THAT(fields(b), ElementsAre("beneficiary.birth_year"));
  b = GoodBeneficiary();
  b.set_birth_year(2011);  // 13
  EXPECT_THAT(fields(b), ElementsAre("beneficiary.birth_year"));
  b = GoodBeneficiary();
  b.set_sex(pb::SEX_UNSPECIFIED);
  EXPECT_THAT(fields(b), ElementsAre("beneficiary.sex"));
  b = GoodBeneficiary();
  b.set_department("20");
  EXPECT_THAT(fields(b), ElementsAre("beneficiary.department"));
  b = GoodBeneficiary();
  b.set_department("");
  EXPECT_THAT(fields(b), ElementsAre("beneficiary.department"));
  b = GoodBeneficiary();
  b.set_region("52");  // 35 is in Bretagne (53)
  EXPECT_THAT(fields(b), ElementsAre("beneficiary.region"));
  b = GoodBeneficiary();
  b.set_region("99");
  EXPECT_THAT(fields(b), ElementsAre("beneficiary.region"));
  b = GoodBeneficiary();
  b.set_status(pb::EMPLOYMENT_STATUS_UNSPECIFIED);
  EXPECT_THAT(fields(b), ElementsAre("beneficiary.status"));
  b = GoodBeneficiary();
  b.set_qualification_level(-1);
  EXPECT_THAT(fields(b), ElementsAre("beneficiary.qualification_level"));
  b = GoodBeneficiary();
  b.set_qualification_level(9);
  EXPECT_THAT(fields(b), ElementsAre("beneficiary.qualification_level"));
}

TEST(CepRulesBeneficiaryTest, EveryViolationIsReportedAtOnce) {
  pb::Beneficiary b;
  b.set_region("53");
  b.set_department("2C");
  b.set_qualification_level(12);
  Violations v;
  CheckBeneficiary(b, 2024, "beneficiary", v);
  EXPECT_THAT(Fields(v), UnorderedElementsAre("beneficiary.birth_year", "beneficiary.sex", "beneficiary.department",
                                              "beneficiary.status", "beneficiary.qualification_level"));
  EXPECT_EQ(v.ToStatus().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CepRulesContactTest, ValidContactsPass) {
  for (const char* email : {"", "anne.martin@example.fr", "a@b.co", "prénom.nom+cep@sub.example.org"}) {
    pb::ContactDetails c;
    c.set_display_name("Anne Martin");
    c.set_email(email);
    c.set_phone("+33 6 12 34 56 78");
    c.set_postal_address("1 rue de la Paix, 35000 Rennes");
    Violations v;
    CheckContact(c, "contact", v);
    EXPECT_THAT(Fields(v), IsEmpty()) << email;
  }
}

TEST(CepRulesContactTest, EmailShapeAndLengths) {
  for (const char* email : {"anne", "@example.fr", "anne@", "anne@example", "anne@@example.fr", "a@b@example.fr",
                            "anne martin@example.fr", "anne@.example.fr", "anne@example.fr.", "anne@example..fr"}) {
    pb::ContactDetails c;
    c.set_email(email);
    Violations v;
    CheckContact(c, "contact", v);
    EXPECT_THAT(Fields(v), ElementsAre("contact.email")) << email;
  }
  pb::ContactDetails c;
  c.set_email(std::string(250, 'a') + "@example.fr");
  c.set_display_name(std::string(256, 'n'));
  c.set_phone(std::string(33, '1'));
  c.set_postal_address(std::string(501, 'r'));
  Violations v;
  CheckContact(c, "contact", v);
  EXPECT_THAT(Fields(v), UnorderedElementsAre("contact.email", "contact.display_name", "contact.phone",
                                              "contact.postal_address"));
}

// --- Case fields --------------------------------------------------------------------------------

TEST(CepRulesNewCaseTest, AValidCasePasses) {
  Violations v;
  CheckNewCase(GoodCase(), "case", v);
  EXPECT_THAT(Fields(v), IsEmpty());
  pb::Case c = GoodCase();
  c.clear_project();
  Violations v2;
  CheckNewCase(c, "case", v2);
  EXPECT_THAT(Fields(v2), IsEmpty());
}

TEST(CepRulesNewCaseTest, EachBrokenFieldIsReportedWithItsPath) {
  auto fields = [](const pb::Case& c) {
    Violations v;
    CheckNewCase(c, "case", v);
    return Fields(v);
  };
  pb::Case c = GoodCase();
  c.clear_beneficiary();
  EXPECT_THAT(fields(c), ElementsAre("case.beneficiary"));
  for (const char* name : {"beneficiaries/", "people/abc", "beneficiaries/a/b", "abc"}) {
    c = GoodCase();
    c.set_beneficiary(name);
    EXPECT_THAT(fields(c), ElementsAre("case.beneficiary")) << name;
  }
  c = GoodCase();
  c.clear_opening_date();
  EXPECT_THAT(fields(c), ElementsAre("case.opening_date"));
  c = GoodCase();
  *c.mutable_opening_date() = Day(2023, 2, 29);
  EXPECT_THAT(fields(c), ElementsAre("case.opening_date"));
  c = GoodCase();
  c.clear_level();
  EXPECT_THAT(fields(c), ElementsAre("case.level"));
  c = GoodCase();
  c.clear_demands();
  EXPECT_THAT(fields(c), ElementsAre("case.demands"));
  c = GoodCase();
  c.add_demands(pb::DEMAND_KIND_UNSPECIFIED);
  EXPECT_THAT(fields(c), ElementsAre("case.demands[2]"));
  c = GoodCase();
  c.set_demands(1, pb::DEMAND_KIND_PROJECT);
  EXPECT_THAT(fields(c), ElementsAre("case.demands[1]"));
  c = GoodCase();
  c.set_external_id(std::string(129, 'x'));
  EXPECT_THAT(fields(c), ElementsAre("case.external_id"));
  for (const char* spaced : {"E-1 ", " E-1", "E-1\n"}) {  // one key with "E-1" on MariaDB (PAD SPACE)
    c = GoodCase();
    c.set_external_id(spaced);
    EXPECT_THAT(fields(c), ElementsAre("case.external_id")) << "[" << spaced << "]";
  }
  c = GoodCase();
  c.mutable_project()->mutable_steps(0)->set_description(" ");
  EXPECT_THAT(fields(c), ElementsAre("case.project.steps[0].description"));
  c = GoodCase();
  c.mutable_project()->mutable_steps(0)->set_status(pb::STEP_STATUS_UNSPECIFIED);
  EXPECT_THAT(fields(c), ElementsAre("case.project.steps[0].status"));
  c = GoodCase();
  *c.mutable_project()->mutable_steps(0)->mutable_due_date() = Day(2024, 6, 31);
  EXPECT_THAT(fields(c), ElementsAre("case.project.steps[0].due_date"));
}

TEST(CepRulesProjectTest, EachBrokenFieldIsReportedWithItsPath) {
  auto fields = [](const pb::ProjectDocument& p) {
    Violations v;
    CheckProject(p, "project", v);
    return Fields(v);
  };
  pb::ProjectDocument p = GoodCase().project();
  *p.mutable_formalised_date() = Day(2024, 5, 2);
  EXPECT_THAT(fields(p), IsEmpty());
  pb::ProjectDocument bad = p;
  bad.clear_goal();  // formalised without a goal
  EXPECT_THAT(fields(bad), ElementsAre("project.goal"));
  bad = p;
  bad.set_goal(std::string(2001, 'g'));
  EXPECT_THAT(fields(bad), ElementsAre("project.goal"));
  bad = p;
  *bad.mutable_formalised_date() = Day(2024, 2, 30);
  EXPECT_THAT(fields(bad), ElementsAre("project.formalised_date"));
  bad = p;
  pb::ActionStep* second = bad.add_steps();
  second->set_description(std::string(1001, 'd'));
  second->set_status(pb::STEP_STATUS_DONE);
  EXPECT_THAT(fields(bad), ElementsAre("project.steps[1].description"));
}

TEST(CepRulesServiceOutcomeSatisfactionTest, EachBrokenFieldIsReportedWithItsPath) {
  pb::DeliveredService s;
  s.set_kind(pb::SERVICE_KIND_INFORMATION);
  *s.mutable_date() = Day(2024, 4, 2);
  {
    Violations v;
    CheckService(s, "service", v);
    EXPECT_THAT(Fields(v), IsEmpty());
  }
  {
    pb::DeliveredService bad = s;
    bad.set_kind(pb::SERVICE_KIND_UNSPECIFIED);
    bad.clear_date();
    Violations v;
    CheckService(bad, "service", v);
    EXPECT_THAT(Fields(v), ElementsAre("service.kind", "service.date"));
  }

  pb::Outcome vae;
  vae.set_kind(pb::OUTCOME_KIND_VAE);
  vae.set_candidacy("candidacies/c-42");
  *vae.mutable_date() = Day(2024, 9, 1);
  {
    Violations v;
    CheckOutcome(vae, "outcome", v);
    EXPECT_THAT(Fields(v), IsEmpty());
  }
  for (const char* candidacy : {"", "candidacies/", "cases/c-42", "c-42"}) {
    pb::Outcome bad = vae;
    bad.set_candidacy(candidacy);
    Violations v;
    CheckOutcome(bad, "outcome", v);
    EXPECT_THAT(Fields(v), ElementsAre("outcome.candidacy")) << candidacy;
  }
  {
    pb::Outcome job = vae;
    job.set_kind(pb::OUTCOME_KIND_JOB);  // keeps the candidacy: refused
    Violations v;
    CheckOutcome(job, "outcome", v);
    EXPECT_THAT(Fields(v), ElementsAre("outcome.candidacy"));
    job.clear_candidacy();
    Violations ok;
    CheckOutcome(job, "outcome", ok);
    EXPECT_THAT(Fields(ok), IsEmpty());
  }
  {
    pb::Outcome bad;
    *bad.mutable_date() = Day(2024, 9, 31);
    Violations v;
    CheckOutcome(bad, "outcome", v);
    EXPECT_THAT(Fields(v), ElementsAre("outcome.kind", "outcome.date"));
  }

  pb::Satisfaction sat;
  sat.set_when(pb::SATISFACTION_WHEN_END);
  sat.set_score(5);
  *sat.mutable_date() = Day(2024, 9, 1);
  {
    Violations v;
    CheckSatisfaction(sat, "satisfaction", v);
    EXPECT_THAT(Fields(v), IsEmpty());
    sat.set_score(1);
    Violations v1;
    CheckSatisfaction(sat, "satisfaction", v1);
    EXPECT_THAT(Fields(v1), IsEmpty());
  }
  for (int score : {0, 6, -1}) {
    pb::Satisfaction bad = sat;
    bad.set_score(score);
    Violations v;
    CheckSatisfaction(bad, "satisfaction", v);
    EXPECT_THAT(Fields(v), ElementsAre("satisfaction.score")) << score;
  }
  {
    pb::Satisfaction bad = sat;
    bad.set_when(pb::SATISFACTION_WHEN_UNSPECIFIED);
    bad.clear_date();
    Violations v;
    CheckSatisfaction(bad, "satisfaction", v);
    EXPECT_THAT(Fields(v), ElementsAre("satisfaction.when", "satisfaction.date"));
  }
}

// --- Designation --------------------------------------------------------------------------------

TEST(CepRulesDesignatedTest, NationalNetworksOpenInTheRegionsTheyList) {
  for (pb::OperatorKind kind : {pb::OPERATOR_KIND_FRANCE_TRAVAIL, pb::OPERATOR_KIND_APEC,
                                pb::OPERATOR_KIND_MISSION_LOCALE, pb::OPERATOR_KIND_CAP_EMPLOI}) {
    pb::Operator op = Op("net", kind, {"53", "11"});
    EXPECT_TRUE(CheckDesignated(op, "net", {}, "53", 20240315).ok()) << kind;
    EXPECT_TRUE(CheckDesignated(op, "net", {}, "11", 20150101).ok()) << kind;
    absl::Status refused = CheckDesignated(op, "net", {}, "84", 20240315);
    EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << kind;
    EXPECT_THAT(Types(refused), ElementsAre("OPERATOR_NOT_DESIGNATED"));
    EXPECT_EQ(Subject(refused), "operators/net");
    EXPECT_THAT(std::string(refused.message()), HasSubstr("region 84"));
    EXPECT_THAT(std::string(refused.message()), HasSubstr("2024-03-15"));
  }
}

TEST(CepRulesDesignatedTest, FongecifStopsOnTheFirstDayOf2020) {
  pb::Operator op = Op("fongecif-53", pb::OPERATOR_KIND_OPACIF_FONGECIF, {"53"});
  EXPECT_TRUE(CheckDesignated(op, "fongecif-53", {}, "53", 20191231).ok());
  EXPECT_TRUE(CheckDesignated(op, "fongecif-53", {}, "53", 20150101).ok());
  absl::Status refused = CheckDesignated(op, "fongecif-53", {}, "53", 20200101);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Types(refused), ElementsAre("OPERATOR_NOT_DESIGNATED"));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("2020-01-01"));
  EXPECT_THAT(Types(CheckDesignated(op, "fongecif-53", {}, "11", 20180101)), ElementsAre("OPERATOR_NOT_DESIGNATED"));
}

TEST(CepRulesDesignatedTest, RegionalOperatorNeedsADesignationCoveringTheDay) {
  pb::Operator op = Op("evolia", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {});
  const std::vector<Designation> designations = {
      {"evolia", "53", 20200101, 20231231},
      {"evolia", "52", 20240101, 0},  // open-ended
      {"other", "53", 20240101, 0},
  };
  auto status = [&](const std::string& region, int date) {
    return CheckDesignated(op, "evolia", designations, region, date);
  };
  EXPECT_TRUE(status("53", 20200101).ok());  // first day
  EXPECT_TRUE(status("53", 20220615).ok());
  EXPECT_TRUE(status("53", 20231231).ok());  // last day
  EXPECT_THAT(Types(status("53", 20191231)), ElementsAre("OPERATOR_NOT_DESIGNATED"));
  EXPECT_THAT(Types(status("53", 20240101)), ElementsAre("OPERATOR_NOT_DESIGNATED"));  // another's period
  EXPECT_TRUE(status("52", 20240101).ok());
  EXPECT_TRUE(status("52", 20991231).ok());  // open-ended
  EXPECT_THAT(Types(status("52", 20231231)), ElementsAre("OPERATOR_NOT_DESIGNATED"));
  EXPECT_THAT(Types(status("84", 20220615)), ElementsAre("OPERATOR_NOT_DESIGNATED"));  // another region
  // Listing a region is not a designation.
  op.add_regions("84");
  EXPECT_THAT(Types(status("84", 20220615)), ElementsAre("OPERATOR_NOT_DESIGNATED"));
}

TEST(CepRulesDesignatedTest, UnspecifiedKindIsNeverDesignated) {
  pb::Operator op = Op("x", pb::OPERATOR_KIND_UNSPECIFIED, {"53"});
  EXPECT_THAT(Types(CheckDesignated(op, "x", {{"x", "53", 20200101, 0}}, "53", 20240101)),
              ElementsAre("OPERATOR_NOT_DESIGNATED"));
}

TEST(CepRulesOverlapTest, TouchingPeriodsAreFineOverlapsAreRefused) {
  const std::vector<Designation> existing = {
      {"a", "53", 20200101, 20231231},
      {"b", "52", 20200101, 0},
  };
  // Starts the day after the last day.
  EXPECT_TRUE(CheckNoOverlap(existing, {"b", "53", 20240101, 20271231}).ok());
  EXPECT_TRUE(CheckNoOverlap(existing, {"b", "53", 20240101, 0}).ok());
  // Ends the day before the first day.
  EXPECT_TRUE(CheckNoOverlap(existing, {"c", "53", 20170101, 20191231}).ok());
  // Another region.
  EXPECT_TRUE(CheckNoOverlap(existing, {"c", "84", 20200101, 0}).ok());

  absl::Status same_day = CheckNoOverlap(existing, {"b", "53", 20231231, 0});
  EXPECT_EQ(same_day.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Types(same_day), ElementsAre("DESIGNATION_OVERLAP"));
  EXPECT_EQ(Subject(same_day), "operators/b");
  EXPECT_THAT(std::string(same_day.message()), HasSubstr("operators/a"));
  EXPECT_THAT(Types(CheckNoOverlap(existing, {"c", "53", 20170101, 20200101})), ElementsAre("DESIGNATION_OVERLAP"));
  EXPECT_THAT(Types(CheckNoOverlap(existing, {"c", "53", 20210101, 20210131})),
              ElementsAre("DESIGNATION_OVERLAP"));  // inside
  EXPECT_THAT(Types(CheckNoOverlap(existing, {"c", "53", 20190101, 0})), ElementsAre("DESIGNATION_OVERLAP"));
  // An open-ended existing period overlaps anything later; the same operator is no exception.
  EXPECT_THAT(Types(CheckNoOverlap(existing, {"c", "52", 20300101, 20301231})), ElementsAre("DESIGNATION_OVERLAP"));
  EXPECT_THAT(Types(CheckNoOverlap(existing, {"b", "52", 20300101, 0})), ElementsAre("DESIGNATION_OVERLAP"));
}

// --- Case state machine -------------------------------------------------------------------------

struct TransitionRow {
  pb::CaseState from;
  pb::CaseState to;
  bool allowed;
};

std::vector<TransitionRow> AllTransitions() {
  const pb::CaseState states[] = {pb::CASE_STATE_UNSPECIFIED, pb::CASE_STATE_OPEN, pb::CASE_STATE_CLOSED,
                                  pb::CASE_STATE_TRANSFERRED, pb::CASE_STATE_ANONYMISED};
  const std::set<std::pair<int, int>> allowed = {
      {pb::CASE_STATE_OPEN, pb::CASE_STATE_CLOSED},           {pb::CASE_STATE_CLOSED, pb::CASE_STATE_OPEN},
      {pb::CASE_STATE_OPEN, pb::CASE_STATE_TRANSFERRED},      {pb::CASE_STATE_OPEN, pb::CASE_STATE_ANONYMISED},
      {pb::CASE_STATE_CLOSED, pb::CASE_STATE_ANONYMISED},     {pb::CASE_STATE_TRANSFERRED, pb::CASE_STATE_ANONYMISED},
  };
  std::vector<TransitionRow> rows;
  for (pb::CaseState from : states) {
    for (pb::CaseState to : states) rows.push_back({from, to, allowed.count({from, to}) > 0});
  }
  return rows;
}

void PrintTo(const TransitionRow& r, std::ostream* os) {
  *os << pb::CaseState_Name(r.from) << " -> " << pb::CaseState_Name(r.to) << (r.allowed ? " allowed" : " refused");
}

class CepRulesTransitionTest : public ::testing::TestWithParam<TransitionRow> {};

TEST_P(CepRulesTransitionTest, AllowedExactlyAsTheStateMachineSays) {
  const TransitionRow& row = GetParam();
  EXPECT_EQ(CaseTransitionAllowed(row.from, row.to), row.allowed);

  pb::Case c = GoodCase();
  c.set_state(row.from);
  const absl::Time now = absl::FromUnixSeconds(1718000000) + absl::Milliseconds(250);
  absl::Status status = TransitionCase(c, row.to, "operator:ft", now, "because");
  if (row.allowed) {
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(c.state(), row.to);
    ASSERT_EQ(c.history_size(), 1);
    const pb::CaseStateChange& h = c.history(0);
    EXPECT_EQ(h.from(), row.from);
    EXPECT_EQ(h.to(), row.to);
    EXPECT_EQ(h.actor(), "operator:ft");
    EXPECT_EQ(h.reason(), "because");
    EXPECT_EQ(h.time().seconds(), 1718000000);
    EXPECT_EQ(h.time().nanos(), 250000000);
  } else {
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(Types(status), ElementsAre("INVALID_TRANSITION"));
    EXPECT_EQ(Subject(status), "cases/c1");
    EXPECT_EQ(c.state(), row.from);
    EXPECT_EQ(c.history_size(), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryPair, CepRulesTransitionTest, ::testing::ValuesIn(AllTransitions()));

TEST(CepRulesTransitionMessageTest, NamesTheCaseAndTheShortStates) {
  pb::Case c = GoodCase();
  c.set_name("cases/x");
  c.set_state(pb::CASE_STATE_CLOSED);
  absl::Status status = TransitionCase(c, pb::CASE_STATE_CLOSED, "operator:ft", absl::UnixEpoch(), "");
  EXPECT_EQ(status.message(), "cases/x is CLOSED: cannot become CLOSED");
  EXPECT_EQ(Subject(status), "cases/x");
}

TEST(CepRulesTransitionMessageTest, HistoryAccumulatesOverAReopening) {
  pb::Case c = GoodCase();
  ASSERT_TRUE(TransitionCase(c, pb::CASE_STATE_CLOSED, "operator:ft", absl::FromUnixSeconds(100), "done").ok());
  ASSERT_TRUE(TransitionCase(c, pb::CASE_STATE_OPEN, "operator:ft", absl::FromUnixSeconds(200), "again").ok());
  ASSERT_TRUE(TransitionCase(c, pb::CASE_STATE_TRANSFERRED, "operator:apec", absl::FromUnixSeconds(300), "").ok());
  ASSERT_EQ(c.history_size(), 3);
  EXPECT_EQ(c.history(1).from(), pb::CASE_STATE_CLOSED);
  EXPECT_EQ(c.history(1).reason(), "again");
  EXPECT_EQ(c.history(2).actor(), "operator:apec");
  EXPECT_EQ(c.history(2).time().seconds(), 300);
}

// --- Rules on recorded facts --------------------------------------------------------------------

TEST(CepRulesFitsTest, ServicesAndOutcomesFromTheOpeningDay) {
  const pb::Case c = GoodCase();  // opened 2024-03-15
  pb::DeliveredService s;
  s.set_kind(pb::SERVICE_KIND_INFORMATION);
  *s.mutable_date() = Day(2024, 3, 15);
  EXPECT_TRUE(CheckServiceFits(c, s).ok());
  *s.mutable_date() = Day(2024, 3, 14);
  absl::Status early = CheckServiceFits(c, s);
  EXPECT_EQ(early.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Types(early), ElementsAre("DATE_BEFORE_OPENING"));
  EXPECT_EQ(Subject(early), "cases/c1");

  pb::Outcome o;
  o.set_kind(pb::OUTCOME_KIND_JOB);
  *o.mutable_date() = Day(2024, 3, 15);
  EXPECT_TRUE(CheckOutcomeFits(c, o).ok());
  *o.mutable_date() = Day(2023, 12, 31);
  EXPECT_THAT(Types(CheckOutcomeFits(c, o)), ElementsAre("DATE_BEFORE_OPENING"));
}

TEST(CepRulesFitsTest, ClosingNotBeforeTheOpeningNorTheLastService) {
  pb::Case c = GoodCase();  // opened 2024-03-15
  EXPECT_TRUE(CheckClosing(c, Day(2024, 3, 15)).ok());
  EXPECT_THAT(Types(CheckClosing(c, Day(2024, 3, 14))), ElementsAre("CLOSING_DATE"));
  pb::DeliveredService* s1 = c.add_services();
  s1->set_kind(pb::SERVICE_KIND_PROJECT_SUPPORT);
  *s1->mutable_date() = Day(2024, 5, 20);
  pb::DeliveredService* s2 = c.add_services();
  s2->set_kind(pb::SERVICE_KIND_INFORMATION);
  *s2->mutable_date() = Day(2024, 4, 2);
  EXPECT_TRUE(CheckClosing(c, Day(2024, 5, 20)).ok());
  absl::Status early = CheckClosing(c, Day(2024, 5, 19));
  EXPECT_EQ(early.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Types(early), ElementsAre("CLOSING_DATE"));
  EXPECT_THAT(std::string(early.message()), HasSubstr("2024-05-20"));
}

TEST(CepRulesFitsTest, SatisfactionAtTheEndOnlyOnceClosedAndOnce) {
  pb::Case c = GoodCase();
  pb::Satisfaction end;
  end.set_when(pb::SATISFACTION_WHEN_END);
  end.set_score(4);
  *end.mutable_date() = Day(2024, 6, 1);
  EXPECT_THAT(Types(CheckSatisfactionFits(c, end)), ElementsAre("CASE_NOT_CLOSED"));

  c.set_state(pb::CASE_STATE_CLOSED);
  *c.mutable_closing_date() = Day(2024, 6, 1);
  EXPECT_TRUE(CheckSatisfactionFits(c, end).ok());
  *c.add_satisfaction() = end;
  absl::Status second = CheckSatisfactionFits(c, end);
  EXPECT_EQ(second.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Types(second), ElementsAre("ALREADY_ANSWERED"));

  // The six-month answer is another `when`: the END answer does not block it.
  pb::Satisfaction six;
  six.set_when(pb::SATISFACTION_WHEN_SIX_MONTHS);
  six.set_score(3);
  *six.mutable_date() = Day(2024, 12, 1);
  EXPECT_TRUE(CheckSatisfactionFits(c, six).ok());

  pb::Case transferred = c;
  transferred.set_state(pb::CASE_STATE_TRANSFERRED);
  transferred.clear_satisfaction();
  EXPECT_THAT(Types(CheckSatisfactionFits(transferred, end)), ElementsAre("CASE_NOT_CLOSED"));
}

TEST(CepRulesFitsTest, SixMonthsFromTheClosing) {
  pb::Case c = GoodCase();
  c.set_state(pb::CASE_STATE_CLOSED);
  *c.mutable_closing_date() = Day(2024, 8, 31);  // + 6 months = 2025-02-28 (clamped)
  pb::Satisfaction six;
  six.set_when(pb::SATISFACTION_WHEN_SIX_MONTHS);
  six.set_score(3);
  *six.mutable_date() = Day(2025, 2, 27);  // one day early
  absl::Status early = CheckSatisfactionFits(c, six);
  EXPECT_EQ(early.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Types(early), ElementsAre("TOO_EARLY_FOR_SIX_MONTHS"));
  EXPECT_THAT(std::string(early.message()), HasSubstr("2025-02-28"));
  *six.mutable_date() = Day(2025, 2, 28);
  EXPECT_TRUE(CheckSatisfactionFits(c, six).ok());
  *c.add_satisfaction() = six;
  *six.mutable_date() = Day(2025, 6, 1);
  EXPECT_THAT(Types(CheckSatisfactionFits(c, six)), ElementsAre("ALREADY_ANSWERED"));

  pb::Case open = GoodCase();
  EXPECT_THAT(Types(CheckSatisfactionFits(open, six)), ElementsAre("CASE_NOT_CLOSED"));
}

// --- Retention, erasure, compliance -------------------------------------------------------------

// The import's transaction size: the most for a stream alone, shared among streams, never below
// 1,000 rows (nor above the most).
TEST(CepRulesImportTest, BatchRowsAreTheMostSharedAmongOpenStreams) {
  EXPECT_EQ(ImportBatchRows(8000, 1), 8000);
  EXPECT_EQ(ImportBatchRows(8000, 0), 8000);
  EXPECT_EQ(ImportBatchRows(8000, 2), 4000);
  EXPECT_EQ(ImportBatchRows(8000, 3), 2666);
  EXPECT_EQ(ImportBatchRows(8000, 8), 1000);
  EXPECT_EQ(ImportBatchRows(8000, 112), 1000);
  EXPECT_EQ(ImportBatchRows(1000, 1), 1000);
  EXPECT_EQ(ImportBatchRows(500, 4), 500);
  EXPECT_EQ(ImportBatchRows(1, 3), 1);
}

TEST(CepRulesRetentionTest, InactiveTwoYearsNoticeThirtyDaysSilentSixMonths) {
  EXPECT_EQ(InactiveBefore(20250302), 20230302);
  EXPECT_EQ(InactiveBefore(20240229), 20220228);  // clamped: 2022 has no 29 February
  EXPECT_EQ(SilentUnlessActiveSince(20241120), 20240520);
  EXPECT_EQ(SilentUnlessActiveSince(20240831), 20240229);
  // 30 days, across month ends and a leap day.
  EXPECT_FALSE(NoticeExpired(20250302, 20250331));
  EXPECT_TRUE(NoticeExpired(20250302, 20250401));
  EXPECT_FALSE(NoticeExpired(20240131, 20240229));
  EXPECT_TRUE(NoticeExpired(20240131, 20240301));
  EXPECT_TRUE(NoticeExpired(20241215, 20250114));  // across the year
  EXPECT_FALSE(NoticeExpired(0, 20990101));        // no notice never expires
  EXPECT_FALSE(NoticeExpired(20250401, 20250302)); // a notice after the date
}

TEST(CepRulesRetentionTest, ScrubCaseKeepsTheStatisticsAndDropsFreeTextAndLinks) {
  pb::Case c = GoodCase();
  c.set_name("cases/c1");
  c.set_operator_("operators/ft");
  c.set_external_id("FT-2024-000042");
  c.mutable_project()->set_goal("Ouvrir un atelier d'ébénisterie à Rennes");
  pb::DeliveredService* s = c.add_services();
  s->set_kind(pb::SERVICE_KIND_TRAINING_PATH);
  *s->mutable_date() = Day(2024, 4, 2);
  pb::Outcome* o = c.add_outcomes();
  o->set_kind(pb::OUTCOME_KIND_VAE);
  *o->mutable_date() = Day(2024, 5, 2);
  o->set_candidacy("candidacies/0f3a9c2b7d1e4a56");
  pb::Satisfaction* sat = c.add_satisfaction();
  sat->set_when(pb::SATISFACTION_WHEN_END);
  sat->set_score(4);
  c.set_state(pb::CASE_STATE_CLOSED);
  *c.mutable_closing_date() = Day(2024, 6, 1);
  c.set_closing_reason("Mme Martin a trouvé un emploi");
  pb::CaseStateChange* h = c.add_history();
  h->set_to(pb::CASE_STATE_CLOSED);
  h->set_actor("operator:ft");
  h->set_reason("Mme Martin a trouvé un emploi");

  c.set_beneficiary("beneficiaries/5e0d2c6b9f1a4e3d8c7b6a5f4e3d2c1b");
  pb::Case expected = c;
  expected.set_beneficiary("beneficiaries/00112233445566778899aabbccddeeff");
  expected.clear_project();
  expected.clear_external_id();
  expected.clear_closing_reason();
  expected.mutable_outcomes(0)->clear_candidacy();
  expected.mutable_history(0)->clear_reason();
  ScrubCase(c, "00112233445566778899aabbccddeeff");
  EXPECT_EQ(c.SerializeAsString(), expected.SerializeAsString()) << c.ShortDebugString();
  EXPECT_EQ(c.ShortDebugString().find("Martin"), std::string::npos);
  EXPECT_EQ(c.outcomes(0).kind(), pb::OUTCOME_KIND_VAE);
  EXPECT_EQ(c.history(0).actor(), "operator:ft");
}

TEST(CepRulesRetentionTest, TransferredAwayIncludesARecordAnonymisedAfterItsTransfer) {
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  pb::Case c = GoodCase();
  c.set_state(pb::CASE_STATE_OPEN);
  EXPECT_FALSE(TransferredAway(c));
  pb::Case anonymised_file = c;
  ASSERT_TRUE(TransitionCase(anonymised_file, pb::CASE_STATE_ANONYMISED, "national", now, "").ok());
  EXPECT_FALSE(TransferredAway(anonymised_file));  // still its holder's record
  ASSERT_TRUE(TransitionCase(c, pb::CASE_STATE_TRANSFERRED, "operator:apec", now, "").ok());
  EXPECT_TRUE(TransferredAway(c));
  ASSERT_TRUE(TransitionCase(c, pb::CASE_STATE_ANONYMISED, "national", now, "").ok());
  EXPECT_TRUE(TransferredAway(c));
}

TEST(CepRulesRetentionTest, PlatformEventsAreNotTheOperatorsOwnActivity) {
  for (int k = pb::ActivityKind_MIN; k <= pb::ActivityKind_MAX; ++k) {
    const auto kind = static_cast<pb::ActivityKind>(k);
    // The platform's events, and a file leaving by a transfer the receiver accepted.
    const bool platform = kind == pb::ACTIVITY_KIND_RETENTION_NOTICE || kind == pb::ACTIVITY_KIND_ANONYMISED ||
                          kind == pb::ACTIVITY_KIND_ERASED || kind == pb::ACTIVITY_KIND_CASE_TRANSFERRED_AWAY;
    EXPECT_EQ(IsOwnActivity(kind), !platform) << pb::ActivityKind_Name(kind);
  }
}

}  // namespace
}  // namespace parcours::cep
