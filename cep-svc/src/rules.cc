#include "cep-svc/src/rules.h"

#include <algorithm>
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "cep-svc/src/repository.h"
#include "platform/crypto.h"
#include "platform/proto_time.h"

namespace parcours::cep {
namespace {

// Lengths of free-text fields, in characters (UTF-8 code points).
constexpr size_t kMaxDisplayName = 255;
constexpr size_t kMaxEmail = 254;
constexpr size_t kMaxPhone = 32;
constexpr size_t kMaxPostalAddress = 500;
constexpr size_t kMaxGoal = 2000;
constexpr size_t kMaxStepDescription = 1000;
constexpr size_t kMaxExternalId = 128;  // cases.external_id VARCHAR(128)

// Opacif / Fongécif lost the CEP for employed people on this day (law of 5 September 2018).
constexpr int kFongecifEnd = 20200101;

std::string Path(const std::string& prefix, const std::string& field) {
  return prefix.empty() ? field : absl::StrCat(prefix, ".", field);
}

std::string Indexed(const std::string& path, int i) { return absl::StrCat(path, "[", i, "]"); }

size_t Utf8Length(const std::string& s) {
  size_t n = 0;
  for (unsigned char ch : s) {
    if ((ch & 0xC0) != 0x80) ++n;
  }
  return n;
}

bool Blank(const std::string& s) { return absl::StripAsciiWhitespace(s).empty(); }

std::string ShortName(const std::string& full, const char* prefix, int value) {
  if (full.empty()) return absl::StrCat(value);
  const std::string p(prefix);
  if (full.rfind(p, 0) == 0) return full.substr(p.size());
  return full;
}

std::string StateShortName(pb::CaseState s) {
  return ShortName(pb::CaseState_Name(s), "CASE_STATE_", static_cast<int>(s));
}

std::string WhenShortName(pb::SatisfactionWhen w) {
  return ShortName(pb::SatisfactionWhen_Name(w), "SATISFACTION_WHEN_", static_cast<int>(w));
}

std::string OperatorSubject(const pb::Operator& op, const std::string& operator_id) {
  if (!op.name().empty()) return op.name();
  return absl::StrCat("operators/", operator_id);
}

// "collection/{id}" with a non-empty id without further slashes.
bool IsResourceName(const std::string& name, const std::string& collection) {
  const std::string prefix = collection + "/";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string id = name.substr(prefix.size());
  for (unsigned char ch : id) {
    if (ch == '/' || ch <= ' ' || ch == 0x7F) return false;
  }
  return true;
}

// A plausible address: local@domain.tld, no whitespace, one '@', a dotted domain.
bool LooksLikeEmail(const std::string& email) {
  for (unsigned char ch : email) {
    if (ch <= ' ' || ch == 0x7F) return false;
  }
  const size_t at = email.find('@');
  if (at == std::string::npos || at == 0 || email.find('@', at + 1) != std::string::npos) return false;
  const std::string domain = email.substr(at + 1);
  if (domain.empty() || domain.front() == '.' || domain.back() == '.') return false;
  if (domain.find('.') == std::string::npos || domain.find("..") != std::string::npos) return false;
  return true;
}

void CheckLength(const std::string& value, size_t max, const std::string& path, Violations& v) {
  if (Utf8Length(value) > max) v.Add(path, absl::StrCat("must be at most ", max, " characters"));
}

// Optional date: checked only when set.
void CheckOptionalDate(const google::type::Date& d, const std::string& path, Violations& v) {
  if (DateKey(d) != 0 && !IsCalendarDate(d)) v.Add(path, "must be a valid date");
}

void CheckRequiredDate(const google::type::Date& d, const std::string& path, Violations& v) {
  if (DateKey(d) == 0) {
    v.Add(path, "must be set");
  } else if (!IsCalendarDate(d)) {
    v.Add(path, "must be a valid date");
  }
}

int EndKeyOrMax(int end) { return end == 0 ? 99999999 : end; }

std::string PeriodText(const Designation& d) {
  return absl::StrCat(FormatDateKey(d.start_yyyymmdd), " .. ", d.end_yyyymmdd == 0 ? "open-ended" : FormatDateKey(d.end_yyyymmdd));
}

const std::map<std::string, std::string>& DepartmentRegions() {
  // INSEE codes, regions as of 2016 (loi NOTRe): 96 metropolitan departments and 5 overseas.
  static const auto* table = [] {
    auto* m = new std::map<std::string, std::string>;
    const std::vector<std::pair<const char*, std::vector<const char*>>> regions = {
        {"11", {"75", "77", "78", "91", "92", "93", "94", "95"}},                    // Île-de-France
        {"24", {"18", "28", "36", "37", "41", "45"}},                                // Centre-Val de Loire
        {"27", {"21", "25", "39", "58", "70", "71", "89", "90"}},                    // Bourgogne-Franche-Comté
        {"28", {"14", "27", "50", "61", "76"}},                                      // Normandie
        {"32", {"02", "59", "60", "62", "80"}},                                      // Hauts-de-France
        {"44", {"08", "10", "51", "52", "54", "55", "57", "67", "68", "88"}},        // Grand Est
        {"52", {"44", "49", "53", "72", "85"}},                                      // Pays de la Loire
        {"53", {"22", "29", "35", "56"}},                                            // Bretagne
        {"75", {"16", "17", "19", "23", "24", "33", "40", "47", "64", "79", "86", "87"}},  // Nouvelle-Aquitaine
        {"76", {"09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82"}},  // Occitanie
        {"84", {"01", "03", "07", "15", "26", "38", "42", "43", "63", "69", "73", "74"}},  // Auvergne-Rhône-Alpes
        {"93", {"04", "05", "06", "13", "83", "84"}},                                // Provence-Alpes-Côte d'Azur
        {"94", {"2A", "2B"}},                                                        // Corse
        {"01", {"971"}},                                                             // Guadeloupe
        {"02", {"972"}},                                                             // Martinique
        {"03", {"973"}},                                                             // Guyane
        {"04", {"974"}},                                                             // La Réunion
        {"06", {"976"}},                                                             // Mayotte
    };
    for (const auto& [region, departments] : regions) {
      for (const char* d : departments) (*m)[d] = region;
    }
    return m;
  }();
  return *table;
}

const std::set<std::string>& Regions() {
  static const auto* regions = new std::set<std::string>{"01", "02", "03", "04", "06", "11", "24", "27", "28",
                                                         "32", "44", "52", "53", "75", "76", "84", "93", "94"};
  return *regions;
}

}  // namespace

// --- Dates --------------------------------------------------------------------------------------

google::type::Date DateFromKey(int key) {
  google::type::Date d;
  d.set_year(key / 10000);
  d.set_month((key / 100) % 100);
  d.set_day(key % 100);
  return d;
}

// --- Territory ----------------------------------------------------------------------------------

std::string RegionOfDepartment(const std::string& department) {
  const auto& table = DepartmentRegions();
  auto it = table.find(department);
  return it == table.end() ? std::string() : it->second;
}

bool IsRegion(const std::string& region) { return Regions().count(region) > 0; }

// --- Pseudonym ----------------------------------------------------------------------------------

std::string Pseudonym(const std::string& key, const std::string& external_id) {
  return HexPrefix(HmacSha256(key, external_id), 32);
}

std::string ErasedExternalIdHash(const std::string& key, const std::string& case_external_id) {
  return Pseudonym(key, absl::StrCat("case-external-id:", case_external_id));
}

// France's civil date: "today" for designations and for the year of CheckBeneficiary.
absl::TimeZone FranceTimeZone() {
  static const absl::TimeZone* tz = [] {
    absl::TimeZone zone;
    if (!absl::LoadTimeZone("Europe/Paris", &zone)) zone = absl::UTCTimeZone();
    return new absl::TimeZone(zone);
  }();
  return *tz;
}

int Today(absl::Time now) {
  const absl::CivilDay d = absl::ToCivilDay(now, FranceTimeZone());
  return static_cast<int>(d.year() * 10000 + d.month() * 100 + d.day());
}


void CheckNotFuture(const google::type::Date& d, int today, const std::string& field, Violations& v) {
  if (IsCalendarDate(d) && DateKey(d) > today) v.Add(field, "must not be in the future");
}

// --- Field checks -------------------------------------------------------------------------------

void CheckOperator(const pb::Operator& op, const std::string& prefix, Violations& v) {
  const std::string display_name = Path(prefix, "display_name");
  if (Blank(op.display_name())) {
    v.Add(display_name, "must not be empty");
  } else {
    CheckLength(op.display_name(), kMaxDisplayName, display_name, v);
  }
  if (op.kind() == pb::OPERATOR_KIND_UNSPECIFIED || !pb::OperatorKind_IsValid(op.kind())) {
    v.Add(Path(prefix, "kind"), "must be specified");
  }
  std::set<std::string> seen;
  for (int i = 0; i < op.regions_size(); ++i) {
    const std::string& r = op.regions(i);
    const std::string path = Indexed(Path(prefix, "regions"), i);
    if (!IsRegion(r)) {
      v.Add(path, absl::StrCat("unknown INSEE region code \"", r, "\""));
    } else if (!seen.insert(r).second) {
      v.Add(path, absl::StrCat("region ", r, " is repeated"));
    }
  }
}

void CheckDesignation(const pb::DesignationPeriod& period, const std::string& prefix, Violations& v) {
  if (period.region().empty()) {
    v.Add(Path(prefix, "region"), "must not be empty");
  } else if (!IsRegion(period.region())) {
    v.Add(Path(prefix, "region"), absl::StrCat("unknown INSEE region code \"", period.region(), "\""));
  }
  CheckRequiredDate(period.start_date(), Path(prefix, "start_date"), v);
  const int end = DateKey(period.end_date());
  if (end != 0) {
    if (!IsCalendarDate(period.end_date())) {
      v.Add(Path(prefix, "end_date"), "must be a valid date");
    } else if (IsCalendarDate(period.start_date()) && end < DateKey(period.start_date())) {
      v.Add(Path(prefix, "end_date"), "must not be before start_date");
    }
  }
}

void CheckBeneficiary(const pb::Beneficiary& b, int this_year, const std::string& prefix, Violations& v) {
  const int latest = this_year - 14;
  if (b.birth_year() < 1900 || b.birth_year() > latest) {
    v.Add(Path(prefix, "birth_year"), absl::StrCat("must be between 1900 and ", latest));
  }
  if (b.sex() == pb::SEX_UNSPECIFIED || !pb::Sex_IsValid(b.sex())) v.Add(Path(prefix, "sex"), "must be specified");
  const std::string region_of = RegionOfDepartment(b.department());
  if (b.department().empty()) {
    v.Add(Path(prefix, "department"), "must not be empty");
  } else if (region_of.empty()) {
    v.Add(Path(prefix, "department"), absl::StrCat("unknown INSEE department code \"", b.department(), "\""));
  }
  if (!b.region().empty()) {
    if (!IsRegion(b.region())) {
      v.Add(Path(prefix, "region"), absl::StrCat("unknown INSEE region code \"", b.region(), "\""));
    } else if (!region_of.empty() && b.region() != region_of) {
      v.Add(Path(prefix, "region"), absl::StrCat("department ", b.department(), " is in region ", region_of,
                                                 ", not ", b.region()));
    }
  }
  if (b.status() == pb::EMPLOYMENT_STATUS_UNSPECIFIED || !pb::EmploymentStatus_IsValid(b.status())) {
    v.Add(Path(prefix, "status"), "must be specified");
  }
  if (b.qualification_level() < 0 || b.qualification_level() > 8) {
    v.Add(Path(prefix, "qualification_level"), "must be between 0 and 8");
  }
}

void CheckContact(const pb::ContactDetails& c, const std::string& prefix, Violations& v) {
  CheckLength(c.display_name(), kMaxDisplayName, Path(prefix, "display_name"), v);
  if (!c.email().empty()) {
    if (Utf8Length(c.email()) > kMaxEmail) {
      CheckLength(c.email(), kMaxEmail, Path(prefix, "email"), v);
    } else if (!LooksLikeEmail(c.email())) {
      v.Add(Path(prefix, "email"), "must be an e-mail address (name@domain.tld)");
    }
  }
  CheckLength(c.phone(), kMaxPhone, Path(prefix, "phone"), v);
  CheckLength(c.postal_address(), kMaxPostalAddress, Path(prefix, "postal_address"), v);
}

bool HasEdgeSpace(const std::string& key) {
  return !key.empty() && (absl::ascii_isspace(static_cast<unsigned char>(key.front())) ||
                          absl::ascii_isspace(static_cast<unsigned char>(key.back())));
}

void CheckNewCase(const pb::Case& c, const std::string& prefix, Violations& v) {
  if (c.beneficiary().empty()) {
    v.Add(Path(prefix, "beneficiary"), "must not be empty");
  } else if (!IsResourceName(c.beneficiary(), "beneficiaries")) {
    v.Add(Path(prefix, "beneficiary"), "must be a beneficiary name \"beneficiaries/{pseudonym}\"");
  }
  CheckRequiredDate(c.opening_date(), Path(prefix, "opening_date"), v);
  if (Blank(c.level())) v.Add(Path(prefix, "level"), "must not be empty");
  const std::string demands = Path(prefix, "demands");
  if (c.demands_size() == 0) v.Add(demands, "at least one demand is required");
  std::set<int> seen;
  for (int i = 0; i < c.demands_size(); ++i) {
    const pb::DemandKind d = c.demands(i);
    if (d == pb::DEMAND_KIND_UNSPECIFIED || !pb::DemandKind_IsValid(d)) {
      v.Add(Indexed(demands, i), "must be specified");
    } else if (!seen.insert(static_cast<int>(d)).second) {
      v.Add(Indexed(demands, i), absl::StrCat("demand ", pb::DemandKind_Name(d), " is repeated"));
    }
  }
  CheckLength(c.external_id(), kMaxExternalId, Path(prefix, "external_id"), v);
  if (HasEdgeSpace(c.external_id())) {
    v.Add(Path(prefix, "external_id"), "must not start or end with white space");
  }
  if (c.has_project()) CheckProject(c.project(), Path(prefix, "project"), v);
}

void CheckProject(const pb::ProjectDocument& p, const std::string& prefix, Violations& v) {
  CheckLength(p.goal(), kMaxGoal, Path(prefix, "goal"), v);
  CheckOptionalDate(p.formalised_date(), Path(prefix, "formalised_date"), v);
  if (DateKey(p.formalised_date()) != 0 && Blank(p.goal())) {
    v.Add(Path(prefix, "goal"), "a formalised project must state its goal");
  }
  for (int i = 0; i < p.steps_size(); ++i) {
    const pb::ActionStep& s = p.steps(i);
    const std::string step = Indexed(Path(prefix, "steps"), i);
    if (Blank(s.description())) {
      v.Add(Path(step, "description"), "must not be empty");
    } else {
      CheckLength(s.description(), kMaxStepDescription, Path(step, "description"), v);
    }
    if (s.status() == pb::STEP_STATUS_UNSPECIFIED || !pb::StepStatus_IsValid(s.status())) {
      v.Add(Path(step, "status"), "must be specified");
    }
    CheckOptionalDate(s.due_date(), Path(step, "due_date"), v);
  }
}

void CheckService(const pb::DeliveredService& s, const std::string& prefix, Violations& v) {
  if (s.kind() == pb::SERVICE_KIND_UNSPECIFIED || !pb::ServiceKind_IsValid(s.kind())) {
    v.Add(Path(prefix, "kind"), "must be specified");
  }
  CheckRequiredDate(s.date(), Path(prefix, "date"), v);
}

void CheckOutcome(const pb::Outcome& o, const std::string& prefix, Violations& v) {
  if (o.kind() == pb::OUTCOME_KIND_UNSPECIFIED || !pb::OutcomeKind_IsValid(o.kind())) {
    v.Add(Path(prefix, "kind"), "must be specified");
  } else if (o.kind() == pb::OUTCOME_KIND_VAE) {
    if (!IsResourceName(o.candidacy(), "candidacies")) {
      v.Add(Path(prefix, "candidacy"), "a VAE outcome must name its candidacy \"candidacies/{id}\"");
    }
  } else if (!o.candidacy().empty()) {
    v.Add(Path(prefix, "candidacy"), "only a VAE outcome names a candidacy");
  }
  CheckRequiredDate(o.date(), Path(prefix, "date"), v);
}

void CheckSatisfaction(const pb::Satisfaction& s, const std::string& prefix, Violations& v) {
  if (s.when() == pb::SATISFACTION_WHEN_UNSPECIFIED || !pb::SatisfactionWhen_IsValid(s.when())) {
    v.Add(Path(prefix, "when"), "must be specified");
  }
  if (s.score() < 1 || s.score() > 5) v.Add(Path(prefix, "score"), "must be between 1 and 5");
  CheckRequiredDate(s.date(), Path(prefix, "date"), v);
}

// --- Designation --------------------------------------------------------------------------------

absl::Status CheckDesignated(const pb::Operator& op, const std::string& operator_id,
                             const std::vector<Designation>& designations, const std::string& region, int date) {
  const std::string subject = OperatorSubject(op, operator_id);
  const std::string where = absl::StrCat(" in region ", region, " on ", FormatDateKey(date));
  if (op.has_right_withdrawn_from() && date >= DateKey(op.right_withdrawn_from())) {
    return FailedPrecondition("OPERATOR_NOT_DESIGNATED", subject,
                              absl::StrCat(subject, " is not designated", where,
                                           ": its right to deliver CEP is withdrawn from ",
                                           FormatDateKey(DateKey(op.right_withdrawn_from())), " (",
                                           op.withdrawal_reason(), ")"));
  }
  const bool lists_region = std::find(op.regions().begin(), op.regions().end(), region) != op.regions().end();
  switch (op.kind()) {
    case pb::OPERATOR_KIND_FRANCE_TRAVAIL:
    case pb::OPERATOR_KIND_APEC:
    case pb::OPERATOR_KIND_MISSION_LOCALE:
    case pb::OPERATOR_KIND_CAP_EMPLOI:
      if (lists_region) return absl::OkStatus();
      return FailedPrecondition("OPERATOR_NOT_DESIGNATED", subject,
                                absl::StrCat(subject, " is not designated", where, ": it does not serve region ",
                                             region));
    case pb::OPERATOR_KIND_OPACIF_FONGECIF:
      if (date >= kFongecifEnd) {
        return FailedPrecondition("OPERATOR_NOT_DESIGNATED", subject,
                                  absl::StrCat(subject, " is not designated", where,
                                               ": Opacif/Fongécif operators deliver no CEP from 2020-01-01 "
                                               "(law of 5 September 2018)"));
      }
      if (lists_region) return absl::OkStatus();
      return FailedPrecondition("OPERATOR_NOT_DESIGNATED", subject,
                                absl::StrCat(subject, " is not designated", where, ": it does not serve region ",
                                             region));
    case pb::OPERATOR_KIND_REGIONAL_EMPLOYED:
      for (const Designation& d : designations) {
        if (d.operator_id == operator_id && d.region == region && d.start_yyyymmdd <= date &&
            date <= EndKeyOrMax(d.end_yyyymmdd)) {
          return absl::OkStatus();
        }
      }
      return FailedPrecondition("OPERATOR_NOT_DESIGNATED", subject,
                                absl::StrCat(subject, " is not designated", where,
                                             ": no designation by France compétences covers that day"));
    default:
      return FailedPrecondition("OPERATOR_NOT_DESIGNATED", subject,
                                absl::StrCat(subject, " is not designated", where, ": unknown operator kind"));
  }
}

absl::Status CheckNoOverlap(const std::vector<Designation>& existing, const Designation& added) {
  std::vector<PreconditionViolation> out;
  const std::string subject = absl::StrCat("operators/", added.operator_id);
  const int added_end = EndKeyOrMax(added.end_yyyymmdd);
  for (const Designation& e : existing) {
    if (e.region != added.region) continue;
    if (e.start_yyyymmdd <= added_end && added.start_yyyymmdd <= EndKeyOrMax(e.end_yyyymmdd)) {
      out.push_back({"DESIGNATION_OVERLAP", subject,
                     absl::StrCat("the period ", PeriodText(added), " in region ", added.region,
                                  " overlaps the designation of operators/", e.operator_id, " for ",
                                  PeriodText(e))});
    }
  }
  if (out.empty()) return absl::OkStatus();
  return FailedPrecondition(std::move(out));
}

// --- Case state machine -------------------------------------------------------------------------

bool CaseTransitionAllowed(pb::CaseState from, pb::CaseState to) {
  switch (to) {
    case pb::CASE_STATE_CLOSED:
      return from == pb::CASE_STATE_OPEN;
    case pb::CASE_STATE_OPEN:
      return from == pb::CASE_STATE_CLOSED;
    case pb::CASE_STATE_TRANSFERRED:
      return from == pb::CASE_STATE_OPEN;
    case pb::CASE_STATE_ANONYMISED:
      return from == pb::CASE_STATE_OPEN || from == pb::CASE_STATE_CLOSED || from == pb::CASE_STATE_TRANSFERRED;
    default:
      return false;
  }
}

absl::Status TransitionCase(pb::Case& c, pb::CaseState to, const std::string& actor, absl::Time now,
                            const std::string& reason) {
  const pb::CaseState from = c.state();
  if (!CaseTransitionAllowed(from, to)) {
    return FailedPrecondition("INVALID_TRANSITION", c.name(),
                              absl::StrCat(c.name(), " is ", StateShortName(from), ": cannot become ",
                                           StateShortName(to)));
  }
  pb::CaseStateChange* change = c.add_history();
  change->set_from(from);
  change->set_to(to);
  change->set_actor(actor);
  *change->mutable_time() = ToTimestamp(now);
  change->set_reason(reason);
  c.set_state(to);
  return absl::OkStatus();
}

absl::Status CloseCaseOn(pb::Case& c, const google::type::Date& closing_date, const std::string& actor, absl::Time now,
                         const std::string& reason) {
  if (absl::Status s = TransitionCase(c, pb::CASE_STATE_CLOSED, actor, now, reason); !s.ok()) return s;
  *c.mutable_history(c.history_size() - 1)->mutable_effective_date() = closing_date;
  *c.mutable_closing_date() = closing_date;
  c.set_closing_reason(reason);
  return absl::OkStatus();
}

bool TransferredAway(const pb::Case& c) {
  if (c.state() == pb::CASE_STATE_TRANSFERRED) return true;
  if (c.state() != pb::CASE_STATE_ANONYMISED) return false;
  for (auto it = c.history().rbegin(); it != c.history().rend(); ++it) {
    if (it->to() == pb::CASE_STATE_ANONYMISED) return it->from() == pb::CASE_STATE_TRANSFERRED;
  }
  return false;
}

// --- Retention, erasure, compliance -------------------------------------------------------------

int InactiveBefore(int as_of) { return AddMonths(as_of, -kRetentionMonths); }

bool NoticeExpired(int notice, int as_of) {
  if (notice == 0) return false;
  const absl::CivilDay due = absl::CivilDay(notice / 10000, (notice / 100) % 100, notice % 100) + kNoticeDays;
  return absl::CivilDay(as_of / 10000, (as_of / 100) % 100, as_of % 100) >= due;
}

int SilentUnlessActiveSince(int as_of) { return AddMonths(as_of, -kSilentMonths); }

bool OldEnoughToBeSilent(const pb::Operator& op, int as_of) {
  return !op.has_create_time() || Today(FromTimestamp(op.create_time())) < SilentUnlessActiveSince(as_of);
}

void ScrubCase(pb::Case& c, const std::string& surrogate) {
  c.set_beneficiary(absl::StrCat("beneficiaries/", surrogate));
  c.clear_project();
  c.clear_external_id();
  c.clear_closing_reason();
  for (pb::Outcome& o : *c.mutable_outcomes()) o.clear_candidacy();
  for (pb::CaseStateChange& h : *c.mutable_history()) h.clear_reason();
}

// --- Case-level rules ---------------------------------------------------------------------------

namespace {

// What a holder records on a file it received by transfer starts on the day it received it:
// what came before is the former holder's (and is counted there).
absl::Status CheckNotBeforeReceipt(const pb::Case& c, int date, const std::string& what, const std::string& type) {
  if (!c.has_received()) return absl::OkStatus();
  const int receipt = Today(FromTimestamp(c.received().time()));
  if (date >= receipt) return absl::OkStatus();
  return FailedPrecondition(type, c.name(),
                            absl::StrCat(what, " of ", FormatDateKey(date), " is before ", c.name(), " was received on ",
                                         FormatDateKey(receipt), ": what came before is the former holder's"));
}

}  // namespace

absl::Status CheckServiceFits(const pb::Case& c, const pb::DeliveredService& s) {
  const int opening = DateKey(c.opening_date());
  const int date = DateKey(s.date());
  if (date < opening) {
    return FailedPrecondition("DATE_BEFORE_OPENING", c.name(),
                              absl::StrCat("a service of ", FormatDateKey(date), " is before the opening of ", c.name(),
                                           " on ", FormatDateKey(opening)));
  }
  return CheckNotBeforeReceipt(c, date, "a service", "DATE_BEFORE_RECEIPT");
}

absl::Status CheckOutcomeFits(const pb::Case& c, const pb::Outcome& o) {
  const int opening = DateKey(c.opening_date());
  const int date = DateKey(o.date());
  if (date < opening) {
    return FailedPrecondition("DATE_BEFORE_OPENING", c.name(),
                              absl::StrCat("an outcome of ", FormatDateKey(date), " is before the opening of ", c.name(),
                                           " on ", FormatDateKey(opening)));
  }
  return CheckNotBeforeReceipt(c, date, "an outcome", "DATE_BEFORE_RECEIPT");
}

absl::Status CheckClosing(const pb::Case& c, const google::type::Date& closing_date) {
  const int opening = DateKey(c.opening_date());
  const int closing = DateKey(closing_date);
  if (closing < opening) {
    return FailedPrecondition("CLOSING_DATE", c.name(),
                              absl::StrCat(c.name(), " cannot close on ", FormatDateKey(closing), ", before its opening on ",
                                           FormatDateKey(opening)));
  }
  if (absl::Status s = CheckNotBeforeReceipt(c, closing, "a closing", "CLOSING_DATE"); !s.ok()) return s;
  // A reopened file closes on or after the day it was reopened (the indicators follow it from then).
  for (auto it = c.history().rbegin(); it != c.history().rend(); ++it) {
    if (it->from() != pb::CASE_STATE_CLOSED || it->to() != pb::CASE_STATE_OPEN) continue;
    const int reopened = Today(FromTimestamp(it->time()));
    if (closing < reopened) {
      return FailedPrecondition("CLOSING_DATE", c.name(),
                                absl::StrCat(c.name(), " cannot close on ", FormatDateKey(closing),
                                             ", before it was reopened on ", FormatDateKey(reopened)));
    }
    break;
  }
  int last_service = 0;
  for (const pb::DeliveredService& s : c.services()) last_service = std::max(last_service, DateKey(s.date()));
  if (closing < last_service) {
    return FailedPrecondition("CLOSING_DATE", c.name(),
                              absl::StrCat(c.name(), " cannot close on ", FormatDateKey(closing),
                                           ", before its last service on ", FormatDateKey(last_service)));
  }
  return absl::OkStatus();
}

absl::Status CheckSatisfactionFits(const pb::Case& c, const pb::Satisfaction& s) {
  std::vector<PreconditionViolation> out;
  const std::string when = WhenShortName(s.when());
  if (s.when() == pb::SATISFACTION_WHEN_END || s.when() == pb::SATISFACTION_WHEN_SIX_MONTHS) {
    if (c.state() != pb::CASE_STATE_CLOSED) {
      out.push_back({"CASE_NOT_CLOSED", c.name(),
                     absl::StrCat(c.name(), " is ", StateShortName(c.state()), ": the ", when,
                                  " satisfaction survey follows the closure")});
    } else if (s.when() == pb::SATISFACTION_WHEN_END && DateKey(s.date()) < DateKey(c.closing_date())) {
      out.push_back({"ANSWER_BEFORE_CLOSING", c.name(),
                     absl::StrCat(c.name(), " closed on ", FormatDateKey(DateKey(c.closing_date())),
                                  ": the end-of-case survey cannot be answered before, on ",
                                  FormatDateKey(DateKey(s.date())))});
    } else if (s.when() == pb::SATISFACTION_WHEN_SIX_MONTHS) {
      const int closing = DateKey(c.closing_date());
      const int earliest = AddMonths(closing, 6);
      if (DateKey(s.date()) < earliest) {
        out.push_back({"TOO_EARLY_FOR_SIX_MONTHS", c.name(),
                       absl::StrCat(c.name(), " closed on ", FormatDateKey(closing),
                                    ": the six-month survey is answered from ", FormatDateKey(earliest), ", not on ",
                                    FormatDateKey(DateKey(s.date())))});
      }
    }
    for (const pb::Satisfaction& previous : c.satisfaction()) {
      if (previous.when() == s.when()) {
        out.push_back({"ALREADY_ANSWERED", c.name(),
                       absl::StrCat(c.name(), " already has its ", when, " satisfaction answer")});
        break;
      }
    }
  }
  if (out.empty()) return absl::OkStatus();
  return FailedPrecondition(std::move(out));
}

int ImportBatchRows(int max_batch_rows, int open_streams) {
  const int smallest = std::min(1000, max_batch_rows);
  return std::clamp(max_batch_rows / std::max(open_streams, 1), smallest, max_batch_rows);
}

}  // namespace parcours::cep
