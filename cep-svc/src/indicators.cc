#include "cep-svc/src/indicators.h"

#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cep-svc/src/rules.h"
#include "platform/aip.h"
#include "platform/errors.h"
#include "platform/proto_time.h"

namespace parcours::cep::indicators {
namespace {

constexpr uint32_t kAllDims = (1u << kDimCount) - 1;

int MonthOfDay(int yyyymmdd) { return yyyymmdd / 100; }

int MonthOfTime(const google::protobuf::Timestamp& t) {
  const absl::CivilMonth m = absl::ToCivilMonth(FromTimestamp(t), FranceTimeZone());
  return static_cast<int>(m.year() * 100 + m.month());
}

int NextMonth(int yyyymm) { return yyyymm % 100 == 12 ? (yyyymm / 100 + 1) * 100 + 1 : yyyymm + 1; }
int PreviousMonth(int yyyymm) { return yyyymm % 100 == 1 ? (yyyymm / 100 - 1) * 100 + 12 : yyyymm - 1; }

std::string After(const std::string& name) {
  const size_t slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

// The last month the holder followed the case; 0 = still followed.
int LastFollowedMonth(const pb::Case& c) {
  pb::CaseState state = c.state();
  int anonymised_month = 0;
  if (state == pb::CASE_STATE_ANONYMISED) {
    // The state the case had when it was anonymised decides.
    for (int i = c.history_size() - 1; i >= 0; --i) {
      if (c.history(i).to() == pb::CASE_STATE_ANONYMISED) {
        state = c.history(i).from();
        anonymised_month = MonthOfTime(c.history(i).time());
        break;
      }
    }
  }
  switch (state) {
    case pb::CASE_STATE_CLOSED:
      return MonthOfDay(DateKey(c.closing_date()));
    case pb::CASE_STATE_TRANSFERRED:
      for (int i = c.history_size() - 1; i >= 0; --i) {
        if (c.history(i).to() == pb::CASE_STATE_TRANSFERRED) return PreviousMonth(MonthOfTime(c.history(i).time()));
      }
      return PreviousMonth(MonthOfDay(DateKey(c.opening_date())));  // no record of when: counts nothing
    case pb::CASE_STATE_OPEN:
      return anonymised_month;  // erased while open: followed until then
    default:
      return anonymised_month;
  }
}

Cell Project(const Cell& full, const Cuboid& cuboid) {
  Cell k = full;
  k.cuboid = cuboid.id;
  if (!(cuboid.dims & Bit(kOperator))) k.operator_id.clear();
  if (!(cuboid.dims & Bit(kRegion))) k.region.clear();
  if (!(cuboid.dims & Bit(kSex))) k.sex = 0;
  if (!(cuboid.dims & Bit(kAgeBand))) k.age_band = 0;
  if (!(cuboid.dims & Bit(kStatus))) k.status = 0;
  if (!(cuboid.dims & Bit(kQualification))) k.qualification = 0;
  if (!(cuboid.dims & Bit(kLevel))) k.level.clear();
  if (!(cuboid.dims & Bit(kDemands))) k.demands = 0;
  return k;
}

std::string EnumSuffix(const std::string& full, const std::string& prefix) {
  return full.rfind(prefix, 0) == 0 ? full.substr(prefix.size()) : full;
}

}  // namespace

Subject SubjectOf(const pb::Beneficiary& b) {
  return Subject{b.region(), static_cast<int>(b.sex()), b.birth_year(), static_cast<int>(b.status()),
                 b.qualification_level()};
}

void Compact(Rollup& r) {
  for (auto it = r.begin(); it != r.end();) it = it->second == 0 ? r.erase(it) : std::next(it);
}

const std::vector<Cuboid>& Cuboids() {
  // Chosen for the questions asked most: totals by region; the qualification level with the
  // person's attributes; the operator x region x sex x status table; an operator's levels and
  // demands; the national table by age band and level (no operator); the socle's full cross
  // (operator x region x sex x age band x status x level x demand). The qualification level is
  // kept only with region, sex and status: in the larger cuboids it would multiply their rows by
  // nine (every case writes a row of each fine cuboid: the import's main cost).
  static const auto* cuboids = new std::vector<Cuboid>{
      {4, Bit(kRegion)},
      {5, Bit(kRegion) | Bit(kSex) | Bit(kStatus) | Bit(kQualification)},
      {1, Bit(kOperator) | Bit(kRegion) | Bit(kSex) | Bit(kStatus)},
      {3, Bit(kOperator) | Bit(kRegion) | Bit(kLevel) | Bit(kDemands)},
      {2, Bit(kRegion) | Bit(kSex) | Bit(kAgeBand) | Bit(kStatus) | Bit(kLevel)},
      {0, kAllDims & ~Bit(kQualification)},
  };
  return *cuboids;
}

const Cuboid* CuboidFor(uint32_t needed) {
  for (const Cuboid& c : Cuboids()) {
    if ((c.dims & needed) == needed) return &c;
  }
  return nullptr;
}

int AgeBandCode(int birth_year, int opening_yyyymmdd) {
  if (birth_year <= 0) return 0;
  const int age = opening_yyyymmdd / 10000 - birth_year;
  if (age < 26) return 1;
  if (age < 35) return 2;
  if (age < 45) return 3;
  if (age < 55) return 4;
  return 5;
}

std::string AgeBandName(int code) {
  switch (code) {
    case 1: return "<26";
    case 2: return "26-34";
    case 3: return "35-44";
    case 4: return "45-54";
    case 5: return "55+";
    default: return "UNKNOWN";
  }
}

void AddCase(const pb::Case& c, const Subject& s, int sign, Rollup& out) {
  const int opening = DateKey(c.opening_date());
  Cell full;
  full.operator_id = After(c.operator_());
  full.region = s.region;
  full.sex = s.sex;
  full.age_band = AgeBandCode(s.birth_year, opening);
  full.status = s.status;
  full.qualification = s.qualification;
  full.level = c.level();
  for (int d : c.demands()) full.demands |= 1 << d;
  auto add = [&](int measure, int month, int detail) {
    full.measure = measure;
    full.month = month;
    full.detail = detail;
    for (const Cuboid& cuboid : Cuboids()) out[Project(full, cuboid)] += sign;
  };

  const bool received = c.has_received();
  if (!received) add(kEntries, MonthOfDay(opening), 0);
  const int first = received ? MonthOfTime(c.received().time()) : MonthOfDay(opening);
  const int last = LastFollowedMonth(c);
  if (last == 0 || last >= first) {
    add(kFollowStart, first, 0);
    if (last != 0) add(kFollowEnd, NextMonth(last), 0);
  }
  for (int i = received ? c.received().services() : 0; i < c.services_size(); ++i) {
    add(kServices, MonthOfDay(DateKey(c.services(i).date())), c.services(i).kind());
  }
  for (int i = received ? c.received().outcomes() : 0; i < c.outcomes_size(); ++i) {
    add(kOutcomes, MonthOfDay(DateKey(c.outcomes(i).date())), c.outcomes(i).kind());
  }
  for (int i = received ? c.received().satisfaction() : 0; i < c.satisfaction_size(); ++i) {
    const pb::Satisfaction& r = c.satisfaction(i);
    add(kSatisfaction, MonthOfDay(DateKey(r.date())), r.when() * 10 + r.score());
  }
}

std::string MonthName(int yyyymm) { return absl::StrFormat("%04d-%02d", yyyymm / 100, yyyymm % 100); }

// --- Queries ------------------------------------------------------------------------------------

namespace {

constexpr int kMaxMonths = 240;

absl::StatusOr<int> ParseMonth(const std::string& text, const std::string& field) {
  int year = 0, month = 0;
  if (text.size() != 7 || text[4] != '-' || !absl::SimpleAtoi(text.substr(0, 4), &year) ||
      !absl::SimpleAtoi(text.substr(5, 2), &month) || year < 1900 || month < 1 || month > 12) {
    return InvalidArgument(field, "must be a month \"YYYY-MM\"");
  }
  return year * 100 + month;
}

int MonthIndex(int yyyymm) { return (yyyymm / 100) * 12 + yyyymm % 100 - 1; }

struct DimensionInfo {
  pb::Dimension dimension;
  const char* filter_field;
  Dim dim;  // kDimCount: the detail
  pb::Measure only_with;  // MEASURE_UNSPECIFIED: any measure
};

const std::vector<DimensionInfo>& Dimensions() {
  static const auto* dims = new std::vector<DimensionInfo>{
      {pb::DIMENSION_OPERATOR, "operator", kOperator, pb::MEASURE_UNSPECIFIED},
      {pb::DIMENSION_REGION, "region", kRegion, pb::MEASURE_UNSPECIFIED},
      {pb::DIMENSION_SEX, "sex", kSex, pb::MEASURE_UNSPECIFIED},
      {pb::DIMENSION_AGE_BAND, "age_band", kAgeBand, pb::MEASURE_UNSPECIFIED},
      {pb::DIMENSION_STATUS, "status", kStatus, pb::MEASURE_UNSPECIFIED},
      {pb::DIMENSION_QUALIFICATION_LEVEL, "qualification_level", kQualification, pb::MEASURE_UNSPECIFIED},
      {pb::DIMENSION_LEVEL, "level", kLevel, pb::MEASURE_UNSPECIFIED},
      {pb::DIMENSION_DEMAND, "demand", kDemands, pb::MEASURE_UNSPECIFIED},
      {pb::DIMENSION_SERVICE_KIND, "service_kind", kDimCount, pb::MEASURE_SERVICES},
      {pb::DIMENSION_OUTCOME_KIND, "outcome_kind", kDimCount, pb::MEASURE_OUTCOMES},
      {pb::DIMENSION_SATISFACTION, "satisfaction", kDimCount, pb::MEASURE_SATISFACTION_RESPONSES},
  };
  return *dims;
}

const DimensionInfo* InfoOf(pb::Dimension d) {
  for (const DimensionInfo& i : Dimensions()) {
    if (i.dimension == d) return &i;
  }
  return nullptr;
}

template <typename Enum>
bool ParseEnumSuffix(const google::protobuf::EnumDescriptor* desc, const std::string& prefix, const std::string& text,
                     int* out) {
  const google::protobuf::EnumValueDescriptor* v = desc->FindValueByName(prefix + text);
  if (v == nullptr || v->number() == 0) return false;
  *out = v->number();
  return true;
}

// The value of a condition; false when it is not one of the dimension's values.
bool ParseValue(const DimensionInfo& info, const std::string& text, Condition& c) {
  switch (info.dimension) {
    case pb::DIMENSION_OPERATOR:
    case pb::DIMENSION_REGION:
    case pb::DIMENSION_LEVEL:
      c.text = text;
      return !text.empty();
    case pb::DIMENSION_SEX:
      return ParseEnumSuffix<pb::Sex>(pb::Sex_descriptor(), "SEX_", text, &c.number);
    case pb::DIMENSION_STATUS:
      return ParseEnumSuffix<pb::EmploymentStatus>(pb::EmploymentStatus_descriptor(), "EMPLOYMENT_STATUS_", text,
                                                   &c.number);
    case pb::DIMENSION_AGE_BAND:
      for (int code = 0; code <= 5; ++code) {
        if (AgeBandName(code) == text) {
          c.number = code;
          return true;
        }
      }
      return false;
    case pb::DIMENSION_QUALIFICATION_LEVEL:
      return absl::SimpleAtoi(text, &c.number) && c.number >= 0 && c.number <= 8;
    case pb::DIMENSION_DEMAND:
      return ParseEnumSuffix<pb::DemandKind>(pb::DemandKind_descriptor(), "DEMAND_KIND_", text, &c.number);
    case pb::DIMENSION_SERVICE_KIND:
      return ParseEnumSuffix<pb::ServiceKind>(pb::ServiceKind_descriptor(), "SERVICE_KIND_", text, &c.number);
    case pb::DIMENSION_OUTCOME_KIND:
      return ParseEnumSuffix<pb::OutcomeKind>(pb::OutcomeKind_descriptor(), "OUTCOME_KIND_", text, &c.number);
    case pb::DIMENSION_SATISFACTION: {
      const size_t slash = text.find('/');
      int when = 0, score = 0;
      if (slash == std::string::npos ||
          !ParseEnumSuffix<pb::SatisfactionWhen>(pb::SatisfactionWhen_descriptor(), "SATISFACTION_WHEN_",
                                                 text.substr(0, slash), &when) ||
          !absl::SimpleAtoi(text.substr(slash + 1), &score) || score < 1 || score > 5) {
        return false;
      }
      c.number = when * 10 + score;
      return true;
    }
    default:
      return false;
  }
}

// The key a cell shows for one grouped dimension.
std::string KeyOf(pb::Dimension d, const Cell& cell, int demand) {
  switch (d) {
    case pb::DIMENSION_OPERATOR: return cell.operator_id;
    case pb::DIMENSION_REGION: return cell.region;
    case pb::DIMENSION_SEX: return EnumSuffix(pb::Sex_Name(static_cast<pb::Sex>(cell.sex)), "SEX_");
    case pb::DIMENSION_AGE_BAND: return AgeBandName(cell.age_band);
    case pb::DIMENSION_STATUS:
      return EnumSuffix(pb::EmploymentStatus_Name(static_cast<pb::EmploymentStatus>(cell.status)),
                        "EMPLOYMENT_STATUS_");
    case pb::DIMENSION_QUALIFICATION_LEVEL: return absl::StrCat(cell.qualification);
    case pb::DIMENSION_LEVEL: return cell.level;
    case pb::DIMENSION_DEMAND:
      return demand == 0 ? "NONE" : EnumSuffix(pb::DemandKind_Name(static_cast<pb::DemandKind>(demand)), "DEMAND_KIND_");
    case pb::DIMENSION_SERVICE_KIND:
      return EnumSuffix(pb::ServiceKind_Name(static_cast<pb::ServiceKind>(cell.detail)), "SERVICE_KIND_");
    case pb::DIMENSION_OUTCOME_KIND:
      return EnumSuffix(pb::OutcomeKind_Name(static_cast<pb::OutcomeKind>(cell.detail)), "OUTCOME_KIND_");
    case pb::DIMENSION_SATISFACTION:
      return absl::StrCat(
          EnumSuffix(pb::SatisfactionWhen_Name(static_cast<pb::SatisfactionWhen>(cell.detail / 10)),
                     "SATISFACTION_WHEN_"),
          "/", cell.detail % 10);
    default: return "";
  }
}

// The demand kinds a cell expands to when grouped by demand (0 = none).
std::vector<int> DemandsOf(int bits) {
  std::vector<int> out;
  for (int d = 1; d < 31; ++d) {
    if (bits & (1 << d)) out.push_back(d);
  }
  if (out.empty()) out.push_back(0);
  return out;
}

using CellKey = std::pair<int, std::vector<std::string>>;  // month (0 = period), keys

// Rows of one store query, keyed by month and the grouped dimensions' keys (demands expanded).
std::map<CellKey, int64_t> Keyed(const Plan& plan, const std::vector<std::pair<Cell, int64_t>>& rows, bool by_month) {
  std::map<CellKey, int64_t> out;
  const bool by_demand =
      std::find(plan.group_by.begin(), plan.group_by.end(), pb::DIMENSION_DEMAND) != plan.group_by.end();
  for (const auto& [cell, value] : rows) {
    for (int demand : by_demand ? DemandsOf(cell.demands) : std::vector<int>{0}) {
      std::vector<std::string> keys;
      keys.reserve(plan.group_by.size());
      for (pb::Dimension d : plan.group_by) keys.push_back(KeyOf(d, cell, demand));
      out[{by_month ? cell.month : 0, std::move(keys)}] += value;
    }
  }
  return out;
}

}  // namespace

absl::Status CheckCovered(uint32_t needed) {
  if (CuboidFor(needed) != nullptr) return absl::OkStatus();
  return InvalidArgument("group_by", "qualification_level combines only with region, sex and status");
}

absl::StatusOr<Plan> PlanQuery(const pb::QueryIndicatorsRequest& r) {
  Plan plan;
  Violations v;
  if (r.measure() == pb::MEASURE_UNSPECIFIED || !pb::Measure_IsValid(r.measure())) {
    v.Add("measure", "must be one of ENTRIES, ACTIVE_BENEFICIARIES, SERVICES, OUTCOMES, SATISFACTION_RESPONSES");
  }
  plan.measure = r.measure();
  absl::StatusOr<int> from = ParseMonth(r.from_month(), "from_month");
  absl::StatusOr<int> to = ParseMonth(r.to_month(), "to_month");
  if (!from.ok()) v.Add("from_month", "must be a month \"YYYY-MM\"");
  if (!to.ok()) v.Add("to_month", "must be a month \"YYYY-MM\"");
  if (from.ok() && to.ok()) {
    if (*to < *from) v.Add("to_month", "must not be before from_month");
    if (MonthIndex(*to) - MonthIndex(*from) >= kMaxMonths) {
      v.Add("to_month", absl::StrCat("the period is at most ", kMaxMonths, " months"));
    }
    plan.from_month = *from;
    plan.to_month = *to;
  }
  std::set<int> seen;
  for (int i = 0; i < r.group_by_size(); ++i) {
    const pb::Dimension d = r.group_by(i);
    const std::string field = absl::StrCat("group_by[", i, "]");
    const DimensionInfo* info = InfoOf(d);
    if (info == nullptr) {
      v.Add(field, "unknown dimension");
      continue;
    }
    if (!seen.insert(d).second) v.Add(field, "dimension repeated");
    if (info->only_with != pb::MEASURE_UNSPECIFIED && info->only_with != r.measure()) {
      v.Add(field, absl::StrCat("applies only to ", pb::Measure_Name(info->only_with)));
    }
    plan.group_by.push_back(d);
    if (info->dim == kDimCount) {
      plan.group_detail = true;
    } else {
      plan.needed |= Bit(info->dim);
    }
  }
  std::vector<std::string> allowed;
  for (const DimensionInfo& info : Dimensions()) {
    allowed.push_back(absl::StrCat(info.filter_field, "="));
    allowed.push_back(absl::StrCat(info.filter_field, "!="));
  }
  absl::StatusOr<std::vector<aip::FilterTerm>> terms = aip::ParseFilter(r.filter(), allowed);
  if (!terms.ok()) return terms.status();
  for (const aip::FilterTerm& t : *terms) {
    const DimensionInfo* info = nullptr;
    for (const DimensionInfo& i : Dimensions()) {
      if (t.field == i.filter_field) info = &i;
    }
    Condition c;
    c.dim = info->dim;
    c.equal = t.op == "=";
    if (!ParseValue(*info, t.value, c)) {
      v.Add("filter", absl::StrCat("\"", t.value, "\" is not a value of ", t.field));
      continue;
    }
    if (info->only_with != pb::MEASURE_UNSPECIFIED && info->only_with != r.measure()) {
      v.Add("filter", absl::StrCat(t.field, " applies only to ", pb::Measure_Name(info->only_with)));
    }
    if (info->dim != kDimCount) plan.needed |= Bit(info->dim);
    plan.conditions.push_back(std::move(c));
  }
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  if (absl::Status s = CheckCovered(plan.needed); !s.ok()) return s;
  plan.total_over_period = r.total_over_period();
  plan.suppress = r.suppress_small_cells();
  return plan;
}

std::vector<RollupQuery> StoreQueries(const Plan& plan) {
  RollupQuery q;
  q.cuboid = CuboidFor(plan.needed)->id;  // PlanQuery checked there is one
  q.group = plan.needed;
  // Grouping needs the dims grouped; conditions on others are applied by the store, and those
  // dims are kept in the result only when grouped. Keep every needed dim: cheap and simpler.
  q.group_detail = plan.group_detail;
  q.conditions = plan.conditions;
  q.to_month = plan.to_month;
  if (plan.measure == pb::MEASURE_ACTIVE_BENEFICIARIES) {
    // The series are cumulative: what came before the period is summed in the store (one row per
    // cell), the period itself read per month.
    RollupQuery before = q;
    before.from_month = 0;
    before.to_month = PreviousMonth(plan.from_month);
    before.sum_months = true;
    RollupQuery during = q;
    during.from_month = plan.from_month;
    RollupQuery starts_before = before, ends_before = before, starts = during, ends = during;
    starts_before.measure = starts.measure = kFollowStart;
    ends_before.measure = ends.measure = kFollowEnd;
    return {starts_before, ends_before, starts, ends};
  }
  q.from_month = plan.from_month;
  q.measure = plan.measure;
  return {q};
}

pb::QueryIndicatorsResponse Answer(const Plan& plan, const std::vector<std::vector<std::pair<Cell, int64_t>>>& rows) {
  std::map<CellKey, int64_t> cells;
  if (plan.measure == pb::MEASURE_ACTIVE_BENEFICIARIES) {
    // Per key: followed before the period, then the monthly starts and ends of the period;
    // followed(m) = starts - ends so far.
    std::map<std::vector<std::string>, int64_t> before;
    std::map<std::vector<std::string>, std::map<int, std::pair<int64_t, int64_t>>> series;
    for (const auto& [k, v] : Keyed(plan, rows[0], false)) before[k.second] += v;
    for (const auto& [k, v] : Keyed(plan, rows[1], false)) before[k.second] -= v;
    for (const auto& [k, v] : Keyed(plan, rows[2], true)) series[k.second][k.first].first += v;
    for (const auto& [k, v] : Keyed(plan, rows[3], true)) series[k.second][k.first].second += v;
    for (const auto& [keys, n] : before) series[keys];  // a key followed before, with no change since
    for (const auto& [keys, months] : series) {
      auto b = before.find(keys);
      int64_t followed = b == before.end() ? 0 : b->second;  // at the current month
      int64_t period_total = 0;  // followed at from_month, plus every start after it
      auto it = months.begin();
      for (int m = plan.from_month;; m = NextMonth(m)) {
        for (; it != months.end() && it->first <= m; ++it) {
          followed += it->second.first - it->second.second;
          if (it->first > plan.from_month) period_total += it->second.first;
        }
        if (m == plan.from_month) period_total += followed;
        if (!plan.total_over_period && followed != 0) cells[{m, keys}] = followed;
        if (m >= plan.to_month) break;
      }
      if (plan.total_over_period && period_total != 0) cells[{0, keys}] = period_total;
    }
  } else {
    cells = Keyed(plan, rows[0], !plan.total_over_period);
  }
  pb::QueryIndicatorsResponse out;
  for (const auto& [key, value] : cells) {
    if (value == 0) continue;
    pb::IndicatorCell* cell = out.add_cells();
    cell->set_month(key.first == 0 ? absl::StrCat(MonthName(plan.from_month), "..", MonthName(plan.to_month))
                                   : MonthName(key.first));
    for (const std::string& k : key.second) cell->add_keys(k);
    if (plan.suppress && value >= 1 && value <= 5) {
      cell->set_suppressed(true);
    } else {
      cell->set_value(value);
    }
  }
  return out;
}

}  // namespace parcours::cep::indicators
