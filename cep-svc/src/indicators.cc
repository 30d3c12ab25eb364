#include "cep-svc/src/indicators.h"

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cep-svc/src/rules.h"
#include "platform/aip.h"
#include "platform/errors.h"
#include "platform/months.h"
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

struct Span {
  int first = 0;
  int last = 0;  // 0: still followed
};

// The months the holder followed the case, from `first` (its opening, or its receipt): until each
// closing (the closing date), again from each reopening (the month it was done), until the
// transfer away (the month before) or an anonymisation while open (that month). Spans that touch
// are merged, so a month counts once.
std::vector<Span> FollowedSpans(const pb::Case& c, int first) {
  int last_closing = -1;  // the history entry of the latest closing
  for (int i = 0; i < c.history_size(); ++i) {
    if (c.history(i).to() == pb::CASE_STATE_CLOSED) last_closing = i;
  }
  std::vector<Span> spans;
  Span open{first, 0};
  bool following = true;
  // Adds `s`, merged into the previous span when they touch (last 0: still followed).
  auto add = [&](const Span& s) {
    if (!spans.empty() && s.first <= NextMonth(spans.back().last)) {
      spans.back().last = s.last == 0 ? 0 : std::max(spans.back().last, s.last);
    } else {
      spans.push_back(s);
    }
  };
  auto end = [&](int last) {
    if (last >= open.first) add(Span{open.first, last});
    following = false;
  };
  for (int i = 0; i < c.history_size(); ++i) {
    const pb::CaseStateChange& h = c.history(i);
    const int month = MonthOfTime(h.time());
    if (h.to() == pb::CASE_STATE_CLOSED && following) {
      // The closing date: on the entry, or (a file closed before entries carried it) the case's
      // own for its latest closing.
      if (h.has_effective_date()) {
        end(MonthOfDay(DateKey(h.effective_date())));
      } else if (i == last_closing && c.has_closing_date()) {
        end(MonthOfDay(DateKey(c.closing_date())));
      } else {
        end(month);
      }
    } else if (h.to() == pb::CASE_STATE_OPEN && h.from() == pb::CASE_STATE_CLOSED && !following) {
      open = Span{month, 0};
      following = true;
    } else if (h.to() == pb::CASE_STATE_TRANSFERRED && following) {
      end(PreviousMonth(month));
    } else if (h.to() == pb::CASE_STATE_ANONYMISED && following) {
      end(month);  // erased while open: followed until then
    }
  }
  // A state without its history entry (a case written by other means than the use cases): closed
  // at its closing date; transferred at an unknown time, counted nowhere.
  if (following && c.state() == pb::CASE_STATE_CLOSED && c.has_closing_date()) {
    end(MonthOfDay(DateKey(c.closing_date())));
  } else if (following && c.state() == pb::CASE_STATE_TRANSFERRED) {
    end(PreviousMonth(open.first));
  }
  if (following) add(open);
  return spans;
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

PeopleSeries PeopleSeriesOf(int measure) {
  switch (measure) {
    case kServices: return {kServicePeople, kServiceRepeats};
    case kOutcomes: return {kOutcomePeople, kOutcomeRepeats};
    case kSatisfaction: return {kSatisfactionPeople, kSatisfactionRepeats};
    default: return {};
  }
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
  const std::vector<Span> spans = FollowedSpans(c, first);
  for (size_t i = 0; i < spans.size(); ++i) {
    // A restart carries the last month of the span before it (never 0): a total over a period
    // counts it only when the case was not followed earlier in the period.
    add(kFollowStart, spans[i].first, i == 0 ? 0 : spans[i - 1].last);
    if (spans[i].last != 0) add(kFollowEnd, NextMonth(spans[i].last), 0);
  }
  // Each item as (month, detail); beside them, the case once per month with any (people) and
  // its items beyond its first of their kind in a month (repeats).
  std::vector<std::pair<int, int>> items;
  auto add_items = [&](int measure) {
    const PeopleSeries series = PeopleSeriesOf(measure);
    std::sort(items.begin(), items.end());
    for (size_t i = 0; i < items.size(); ++i) {
      const auto [month, detail] = items[i];
      add(measure, month, detail);
      if (i == 0 || month != items[i - 1].first) {
        add(series.people, month, 0);
      } else if (detail == items[i - 1].second) {
        add(series.repeats, month, detail);
      }
    }
    items.clear();
  };
  for (int i = received ? c.received().services() : 0; i < c.services_size(); ++i) {
    items.emplace_back(MonthOfDay(DateKey(c.services(i).date())), c.services(i).kind());
  }
  add_items(kServices);
  for (int i = received ? c.received().outcomes() : 0; i < c.outcomes_size(); ++i) {
    items.emplace_back(MonthOfDay(DateKey(c.outcomes(i).date())), c.outcomes(i).kind());
  }
  add_items(kOutcomes);
  for (int i = received ? c.received().satisfaction() : 0; i < c.satisfaction_size(); ++i) {
    const pb::Satisfaction& r = c.satisfaction(i);
    items.emplace_back(MonthOfDay(DateKey(r.date())), r.when() * 10 + r.score());
  }
  add_items(kSatisfaction);
}

void AddPeopleAndRestarts(const Rollup& contribution, Rollup& out) {
  auto beside_items = [](int measure) {
    for (int items : {kServices, kOutcomes, kSatisfaction}) {
      const PeopleSeries series = PeopleSeriesOf(items);
      if (measure == series.people || measure == series.repeats) return true;
    }
    return false;
  };
  for (const auto& [cell, value] : contribution) {
    if (beside_items(cell.measure)) {
      out[cell] += value;
    } else if (cell.measure == kFollowStart && cell.detail != 0) {
      out[cell] += value;
      Cell before = cell;
      before.detail = 0;
      out[before] -= value;
    }
  }
}

std::string MonthName(int yyyymm) { return absl::StrFormat("%04d-%02d", yyyymm / 100, yyyymm % 100); }

// --- Queries ------------------------------------------------------------------------------------

namespace {


absl::StatusOr<int> ParseMonth(const std::string& text, const std::string& field) {
  std::optional<absl::CivilMonth> month = ParseYearMonth(text);
  if (!month) return InvalidArgument(field, "must be a month \"YYYY-MM\"");
  return static_cast<int>(month->year()) * 100 + month->month();
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
      // Compared by SQL, where MariaDB (PAD SPACE) would match "ft " to ft and SQLite not.
      return !text.empty() && !HasEdgeSpace(text);
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

// Whether a demand a cell expands to passes the plan's conditions on demands. The store keeps the
// cases having (or lacking) a filtered demand, whatever their other demands: those are not asked
// for. Terms are ANDed on the case (demand = A AND demand = B: cases with both), so each demand
// named by an `=` is wanted, and one named by a `!=` is not.
bool DemandWanted(const Plan& plan, int demand) {
  bool any_equal = false;
  bool named_equal = false;
  for (const Condition& c : plan.conditions) {
    if (c.dim != kDemands) continue;
    if (!c.equal && demand == c.number) return false;
    if (c.equal) {
      any_equal = true;
      named_equal = named_equal || demand == c.number;
    }
  }
  return !any_equal || named_equal;
}

// The keys of an answer's cells, interned: each grouped dimension's distinct values get a rank in
// the order of their key strings, so a cell's keys are a few integers (no string per cell until
// the response is written) and ordering by ranks is ordering by keys.
constexpr size_t kMaxGroupBy = 12;  // more than there are dimensions
using Ranks = std::array<int32_t, kMaxGroupBy>;

class KeyTable {
 public:
  explicit KeyTable(const Plan& plan) : plan_(plan), dims_(plan.group_by.size()) {}

  // Interns the keys of (cell, demand); returns their ids (ranks once Rank() has run).
  Ranks Intern(const Cell& cell, int demand) {
    Ranks ids{};
    for (size_t i = 0; i < dims_.size(); ++i) {
      const pb::Dimension d = plan_.group_by[i];
      Dim& dim = dims_[i];
      int32_t id;
      if (const std::string* text = TextOf(d, cell)) {
        auto [it, added] = dim.by_text.try_emplace(*text, static_cast<int32_t>(dim.keys.size()));
        if (added) dim.keys.push_back(*text);
        id = it->second;
      } else {
        auto [it, added] =
            dim.by_number.try_emplace(NumberOf(d, cell, demand), static_cast<int32_t>(dim.keys.size()));
        if (added) dim.keys.push_back(KeyOf(d, cell, demand));
        id = it->second;
      }
      ids[i] = id;
    }
    return ids;
  }
  // Once every key is interned: the rank of each id in its dimension's key order.
  void Rank() {
    for (Dim& dim : dims_) {
      std::vector<int32_t> order(dim.keys.size());
      for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<int32_t>(k);
      std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return dim.keys[a] < dim.keys[b]; });
      dim.rank_of.assign(order.size(), 0);
      std::vector<std::string> sorted(order.size());
      for (size_t r = 0; r < order.size(); ++r) {
        dim.rank_of[order[r]] = static_cast<int32_t>(r);
        sorted[r] = std::move(dim.keys[order[r]]);
      }
      dim.keys = std::move(sorted);
    }
  }
  Ranks ToRanks(const Ranks& ids) const {
    Ranks out{};
    for (size_t i = 0; i < dims_.size(); ++i) out[i] = dims_[i].rank_of[ids[i]];
    return out;
  }
  void AddKeys(const Ranks& ranks, pb::IndicatorCell& cell) const {
    for (size_t i = 0; i < dims_.size(); ++i) cell.add_keys(dims_[i].keys[ranks[i]]);
  }

 private:
  struct Dim {
    std::unordered_map<std::string, int32_t> by_text;
    std::unordered_map<int64_t, int32_t> by_number;
    std::vector<std::string> keys;  // by id; by rank after Rank()
    std::vector<int32_t> rank_of;   // id -> rank
  };
  static const std::string* TextOf(pb::Dimension d, const Cell& cell) {
    switch (d) {
      case pb::DIMENSION_OPERATOR: return &cell.operator_id;
      case pb::DIMENSION_REGION: return &cell.region;
      case pb::DIMENSION_LEVEL: return &cell.level;
      default: return nullptr;
    }
  }
  static int64_t NumberOf(pb::Dimension d, const Cell& cell, int demand) {
    switch (d) {
      case pb::DIMENSION_SEX: return cell.sex;
      case pb::DIMENSION_AGE_BAND: return cell.age_band;
      case pb::DIMENSION_STATUS: return cell.status;
      case pb::DIMENSION_QUALIFICATION_LEVEL: return cell.qualification;
      case pb::DIMENSION_DEMAND: return demand;
      default: return cell.detail;  // service kind, outcome kind, satisfaction
    }
  }

  const Plan& plan_;
  std::vector<Dim> dims_;
};

struct KeyedValue {
  int month;  // 0 = the period
  int detail;  // as read: the cell's detail when the store query keeps it, else 0
  Ranks keys;
  int64_t value;
};
using Keyed = std::vector<KeyedValue>;

// Rows of one store query, keyed by month and the grouped dimensions' key ids (demands expanded).
Keyed InternRows(const Plan& plan, KeyTable& table, const std::vector<std::pair<Cell, int64_t>>& rows, bool by_month) {
  const bool by_demand =
      std::find(plan.group_by.begin(), plan.group_by.end(), pb::DIMENSION_DEMAND) != plan.group_by.end();
  Keyed out;
  out.reserve(rows.size());
  for (const auto& [cell, value] : rows) {
    const int month = by_month ? cell.month : 0;
    if (!by_demand) {
      out.push_back({month, cell.detail, table.Intern(cell, 0), value});
      continue;
    }
    for (int demand : DemandsOf(cell.demands)) {
      if (DemandWanted(plan, demand)) out.push_back({month, cell.detail, table.Intern(cell, demand), value});
    }
  }
  return out;
}

bool ByMonthKeysDetail(const KeyedValue& a, const KeyedValue& b) {
  return std::tie(a.month, a.keys, a.detail) < std::tie(b.month, b.keys, b.detail);
}

// Sorted by (month, keys, detail), equal ones (expanded demands, months or kinds summed) merged.
void Merge(Keyed& cells) {
  std::sort(cells.begin(), cells.end(), ByMonthKeysDetail);
  size_t kept = 0;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (kept > 0 && cells[kept - 1].month == cells[i].month && cells[kept - 1].keys == cells[i].keys &&
        cells[kept - 1].detail == cells[i].detail) {
      cells[kept - 1].value += cells[i].value;
    } else {
      cells[kept++] = cells[i];
    }
  }
  cells.resize(kept);
}

// Ids to ranks, then Merge.
void SortAndMerge(const KeyTable& table, Keyed& cells) {
  for (KeyedValue& c : cells) c.keys = table.ToRanks(c.keys);
  Merge(cells);
}

// The position of the detail (kind) among the grouped dimensions; -1 when not grouped by it.
int DetailPosition(const Plan& plan) {
  for (size_t i = 0; i < plan.group_by.size(); ++i) {
    if (InfoOf(plan.group_by[i])->dim == kDimCount) return static_cast<int>(i);
  }
  return -1;
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
    if (MonthIndex(*to) - MonthIndex(*from) >= kMaxPeriodMonths) {
      v.Add("to_month", absl::StrCat("the period is at most ", kMaxPeriodMonths, " months"));
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
  absl::StatusOr<std::vector<aip::FilterTerm>> terms = aip::ParseFilter(r.filter(), allowed, aip::RepeatedFields::kAnded);
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

bool ReadsStoredRows(const RollupQuery& q) {
  const Cuboid* cuboid = nullptr;
  for (const Cuboid& c : Cuboids()) {
    if (c.id == q.cuboid) cuboid = &c;
  }
  const bool without_detail = q.measure == kEntries || q.measure == kFollowEnd;
  const bool one_detail = std::any_of(q.conditions.begin(), q.conditions.end(),
                                      [](const Condition& c) { return c.dim == kDimCount && c.equal; });
  return cuboid != nullptr && !q.sum_months && q.group == cuboid->dims &&
         (q.group_detail || without_detail || one_detail);
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
    starts.group_detail = true;  // a total over the period tells restarts apart
    ends_before.measure = ends.measure = kFollowEnd;
    return {starts_before, ends_before, starts, ends};
  }
  q.from_month = plan.from_month;
  q.measure = plan.measure;
  const PeopleSeries series = PeopleSeriesOf(plan.measure);
  if (!plan.suppress || series.people == 0) return {q};
  // Suppression looks at the people behind the items, month by month: the items and their
  // repeats per kind when the cells are per kind or a filter on the kind may leave several, and
  // the people with any item (detail 0, whatever the filter on the kind).
  auto on_detail = [](const Condition& c) { return c.dim == kDimCount; };
  q.group_detail = plan.group_detail || std::any_of(plan.conditions.begin(), plan.conditions.end(), on_detail);
  RollupQuery repeats = q;
  repeats.measure = series.repeats;
  RollupQuery people = q;
  people.measure = series.people;
  people.group_detail = false;
  people.conditions.erase(std::remove_if(people.conditions.begin(), people.conditions.end(), on_detail),
                          people.conditions.end());
  people.conditions.push_back(Condition{kDimCount, true, "", 0});
  return {q, repeats, people};
}

pb::QueryIndicatorsResponse Answer(const Plan& plan, const std::vector<std::vector<std::pair<Cell, int64_t>>>& rows) {
  KeyTable table(plan);
  Keyed cells;
  std::map<std::pair<int, Ranks>, int64_t> people_at_least;  // (month, keys) -> people
  if (plan.measure == pb::MEASURE_ACTIVE_BENEFICIARIES) {
    std::vector<Keyed> reads;
    for (size_t i = 0; i < 4; ++i) reads.push_back(InternRows(plan, table, rows[i], i >= 2));
    table.Rank();
    for (Keyed& r : reads) SortAndMerge(table, r);
    // Per key: followed before the period, then the monthly starts and ends of the period;
    // followed(m) = starts - ends so far.
    struct Changes {
      int64_t starts = 0;
      int64_t ends = 0;
      int64_t newly_followed = 0;  // starts of cases not followed earlier in the period
    };
    std::map<Ranks, int64_t> before;
    std::map<Ranks, std::map<int, Changes>> series;
    for (const KeyedValue& c : reads[0]) before[c.keys] += c.value;
    for (const KeyedValue& c : reads[1]) before[c.keys] -= c.value;
    for (const KeyedValue& c : reads[2]) {
      Changes& changes = series[c.keys][c.month];
      changes.starts += c.value;
      // A first start (detail 0), or a restart after a span that ended before the period.
      if (c.detail < plan.from_month) changes.newly_followed += c.value;
    }
    for (const KeyedValue& c : reads[3]) series[c.keys][c.month].ends += c.value;
    for (const auto& [keys, n] : before) series[keys];  // a key followed before, with no change since
    for (const auto& [keys, months] : series) {
      auto b = before.find(keys);
      int64_t followed = b == before.end() ? 0 : b->second;  // at the current month
      int64_t period_total = 0;  // followed at from_month, plus each case newly followed after it
      auto it = months.begin();
      for (int m = plan.from_month;; m = NextMonth(m)) {
        for (; it != months.end() && it->first <= m; ++it) {
          followed += it->second.starts - it->second.ends;
          if (it->first > plan.from_month) period_total += it->second.newly_followed;
        }
        if (m == plan.from_month) period_total += followed;
        if (!plan.total_over_period && followed != 0) cells.push_back({m, 0, keys, followed});
        if (m >= plan.to_month) break;
      }
      if (plan.total_over_period && period_total != 0) cells.push_back({0, 0, keys, period_total});
    }
    std::sort(cells.begin(), cells.end(), ByMonthKeysDetail);
  } else if (rows.size() == 1) {
    cells = InternRows(plan, table, rows[0], !plan.total_over_period);
    table.Rank();
    SortAndMerge(table, cells);
  } else {
    // Items with suppression: items, repeats and people month by month (StoreQueries).
    Keyed items = InternRows(plan, table, rows[0], true);
    Keyed repeats = InternRows(plan, table, rows[1], true);
    Keyed people = InternRows(plan, table, rows[2], true);
    table.Rank();
    for (Keyed* k : {&items, &repeats, &people}) SortAndMerge(table, *k);
    const int detail_at = DetailPosition(plan);
    auto any_kind = [&](Ranks keys) {
      if (detail_at >= 0) keys[detail_at] = -1;
      return keys;
    };
    std::map<std::pair<int, Ranks>, int64_t> with_any;  // (month, keys but the kind) -> people
    for (const KeyedValue& p : people) with_any[{p.month, any_kind(p.keys)}] += p.value;
    std::map<std::tuple<int, int, Ranks>, int64_t> repeated;  // (month, detail, keys) -> repeats
    for (const KeyedValue& r : repeats) repeated[{r.month, r.detail, r.keys}] += r.value;
    for (const KeyedValue& c : items) {
      // The people of a month, kind and cell are its items - repeats (distinct stored cells hold
      // distinct cases), and at most the people with any item that month: none known (rollups
      // stored before they were counted) is 0.
      auto r = repeated.find({c.month, c.detail, c.keys});
      auto a = with_any.find({c.month, any_kind(c.keys)});
      const int64_t n = std::min(c.value - (r == repeated.end() ? 0 : r->second), a == with_any.end() ? 0 : a->second);
      // A cell summing several months or kinds has at least the most people of one of them.
      const int month = plan.total_over_period ? 0 : c.month;
      int64_t& most = people_at_least[{month, c.keys}];
      most = std::max(most, n);
      cells.push_back({month, 0, c.keys, c.value});
    }
    Merge(cells);
  }
  // Cells of 1..5 people are suppressed: a cell of items on its people.
  const bool counts_items = PeopleSeriesOf(plan.measure).people != 0;
  auto small = [&](const KeyedValue& c) {
    if (c.value >= 1 && c.value <= 5) return true;
    if (!counts_items) return false;
    auto it = people_at_least.find({c.month, c.keys});
    return it == people_at_least.end() || it->second <= 5;
  };
  pb::QueryIndicatorsResponse out;
  out.mutable_cells()->Reserve(static_cast<int>(cells.size()));
  const std::string period = absl::StrCat(MonthName(plan.from_month), "..", MonthName(plan.to_month));
  std::map<int, std::string> month_names;
  for (const KeyedValue& c : cells) {
    if (c.value == 0) continue;
    pb::IndicatorCell* cell = out.add_cells();
    if (c.month == 0) {
      cell->set_month(period);
    } else {
      auto [name, added] = month_names.emplace(c.month, "");
      if (added) name->second = MonthName(c.month);
      cell->set_month(name->second);
    }
    table.AddKeys(c.keys, *cell);
    if (plan.suppress && small(c)) {
      cell->set_suppressed(true);
    } else {
      cell->set_value(c.value);
    }
  }
  return out;
}

}  // namespace parcours::cep::indicators
