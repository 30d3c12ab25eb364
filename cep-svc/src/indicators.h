// The national indicators (socle national) as rollups: what each case contributes, the cuboids the
// contributions are kept in, and how a query's answer is computed from rollup rows.
//
// A case's contribution is a pure function of the case and of the beneficiary's attributes at its
// opening (its Subject, stored with the case). The store keeps the sum of every case's
// contribution, maintained in the same transaction as the case: a write applies
// Contribution(after) - Contribution(before). Recomputing the sum over all cases must give the
// stored rollups (the conformance suite checks it after a random workload).
//
// Contributions, per month (yyyymm) and cell (operator, region, sex, age band, status,
// qualification level, CEP level, demands, detail), projected onto each cuboid (Cuboids()):
//   entries          +1 at the opening month (not for a case received by transfer);
//   followed         per span the holder follows the case (from the opening or the receipt to
//                    the closing date, again from each reopening; FollowedSpans), +1 "start" at
//                    its first month, +1 "end" at the month after its last:
//                    followed(m) = starts(<= m) - ends(<= m); a start's detail is 0 for the
//                    case's first span, the last month of the span before for a later one (a
//                    total over a period counts a case once: followed at its first month, plus
//                    the starts after it whose detail is before it);
//   services         +1 per service delivered (detail = kind), at its month;
//   outcomes         +1 per outcome (detail = kind);
//   satisfaction     +1 per response (detail = when * 10 + score);
//   for each of those three item measures, as small cells are suppressed on people and one
//   person may have many items in a cell:
//     people         +1 per month in which the case has any item (detail 0, which no kind uses);
//     repeats        +1 per item beyond the case's first of its kind in the month (detail = kind),
//                    so that the people of a month and kind are items - repeats (repeats are
//                    rare: far fewer rows than a people series per kind).
// Items that came with a file received by transfer are counted at the former holder only.
// `demands` is a bit set of the case's demand kinds: a case contributes once whatever its
// demands; a query grouping or filtering by demand expands or tests the bits.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "parcours/cep/v1/cep.pb.h"

namespace parcours::cep::indicators {

namespace pb = ::parcours::cep::v1;

// The beneficiary as of the case's opening.
struct Subject {
  std::string region;
  int sex = 0;
  int birth_year = 0;
  int status = 0;
  int qualification = 0;
};
Subject SubjectOf(const pb::Beneficiary& b);

// Stored measures: the public ones, except that followed beneficiaries are kept as two series,
// and the item measures (services, outcomes, satisfaction) have their people and repeats beside.
enum StoredMeasure : int {
  kEntries = 1,
  kServices = 3,
  kOutcomes = 4,
  kSatisfaction = 5,
  kFollowStart = 10,
  kFollowEnd = 11,
  kServicePeople = 13,
  kOutcomePeople = 14,
  kSatisfactionPeople = 15,
  kServiceRepeats = 23,
  kOutcomeRepeats = 24,
  kSatisfactionRepeats = 25,
};
struct PeopleSeries {
  int people = 0;
  int repeats = 0;
};
// The series beside an item measure; zeros for a measure that counts people itself.
PeopleSeries PeopleSeriesOf(int measure);

// Dimensions a cuboid keeps (bits of Cuboid::dims). Month, measure and detail are always kept.
enum Dim : int {
  kOperator = 0,
  kRegion,
  kSex,
  kAgeBand,
  kStatus,
  kQualification,
  kLevel,
  kDemands,
  kDimCount,
};
inline constexpr uint32_t Bit(Dim d) { return 1u << d; }

struct Cell {
  int cuboid = 0;
  int measure = 0;
  int month = 0;  // yyyymm
  std::string operator_id;
  std::string region;
  int sex = 0;
  int age_band = 0;  // 1..5 (AgeBandName), 0 unknown
  int status = 0;
  int qualification = 0;
  std::string level;
  int demands = 0;  // bit set of DemandKind values
  int detail = 0;

  auto Tie() const {
    return std::tie(cuboid, measure, month, operator_id, region, sex, age_band, status, qualification, level,
                    demands, detail);
  }
  bool operator<(const Cell& o) const { return Tie() < o.Tie(); }
  bool operator==(const Cell& o) const { return Tie() == o.Tie(); }
};

// Cell -> delta (or value). Zero entries may be present; Compact drops them.
using Rollup = std::map<Cell, int64_t>;
void Compact(Rollup& r);

struct Cuboid {
  int id;
  uint32_t dims;
};
// Smallest first; id 0 keeps every dimension but the qualification level (kept with region, sex
// and status only).
const std::vector<Cuboid>& Cuboids();
// The smallest cuboid keeping every dimension in `needed`; null when none does.
const Cuboid* CuboidFor(uint32_t needed);
// INVALID_ARGUMENT when no cuboid keeps every dimension in `needed`.
absl::Status CheckCovered(uint32_t needed);

// Adds sign x the case's contribution to `out`, in every cuboid. `now` is not used: every date
// comes from the case itself, so the same case always contributes the same.
void AddCase(const pb::Case& c, const Subject& subject, int sign, Rollup& out);

// What migration 0009 adds to a case's contribution as counted before it, given the contribution
// as AddCase counts it now: the people and repeats series, and each restart of the follow-up
// moved from detail 0 to its own. Added to `out` (the migration's backfill of stored rollups).
void AddPeopleAndRestarts(const Rollup& contribution, Rollup& out);

int AgeBandCode(int birth_year, int opening_yyyymmdd);
std::string AgeBandName(int code);  // "<26", "26-34", "35-44", "45-54", "55+", "UNKNOWN"

// --- Queries ------------------------------------------------------------------------------------

struct Condition {
  Dim dim;          // or kDimCount for the detail (service/outcome kind, satisfaction)
  bool equal = true;  // = or !=
  std::string text;   // operator id, region, level
  int number = 0;     // sex, age band, status, qualification, demand kind, detail
};

// What the store is asked for: rows of one cuboid and stored measure, months in [from, to]
// (from = 0: since the beginning), grouped by the dims in `group`, by month unless
// `sum_months` (then every row has month 0), and by `detail` when group_detail.
struct RollupQuery {
  int cuboid = 0;
  int measure = 0;
  int from_month = 0;
  int to_month = 0;
  uint32_t group = 0;
  bool group_detail = false;
  bool sum_months = false;
  std::vector<Condition> conditions;
};

// True when every stored row the query reads is already one of its groups: it keeps every
// dimension of its cuboid, month by month, and the details too (or the measure has none). The
// store then reads the rows as they are, without grouping.
bool ReadsStoredRows(const RollupQuery& q);

// A parsed and checked QueryIndicatorsRequest.
struct Plan {
  pb::Measure measure = pb::MEASURE_UNSPECIFIED;
  int from_month = 0;  // yyyymm
  int to_month = 0;
  std::vector<pb::Dimension> group_by;
  std::vector<Condition> conditions;
  bool total_over_period = false;
  bool suppress = false;
  uint32_t needed = 0;  // dims the cuboid must keep
  bool group_detail = false;
};

// INVALID_ARGUMENT naming the field for a bad measure, month, dimension, filter.
absl::StatusOr<Plan> PlanQuery(const pb::QueryIndicatorsRequest& r);
// The store reads one RollupQuery, or four for followed beneficiaries (both series summed up to
// the month before the period, then both per month of the period), or three for an item measure
// with suppression (the items, their repeats and their people, month by month); `Answer` turns
// their rows into cells, in that order.
std::vector<RollupQuery> StoreQueries(const Plan& plan);
pb::QueryIndicatorsResponse Answer(const Plan& plan, const std::vector<std::vector<std::pair<Cell, int64_t>>>& rows);

std::string MonthName(int yyyymm);  // "2017-03"

}  // namespace parcours::cep::indicators
