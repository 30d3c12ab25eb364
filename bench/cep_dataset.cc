// The synthetic national CEP dataset: see cep_dataset.h for what is calibrated on what.
//
// Determinism: every draw comes from CepRng (xoshiro256**, seeded by splitmix64 from the seed,
// a stream salt and the row index); bounded draws are integer multiply-shifts; shares are integer
// weights (out of 10,000 unless said otherwise). No floating point anywhere, so the rows are
// the same on every machine and with every standard library.
#include "bench/cep_dataset.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace parcours::bench {

namespace pb = ::parcours::cep::v1;

// ---------------------------------------------------------------------------------------------
// PRNG: splitmix64 (seeding) and xoshiro256** (streams), after Vigna's reference code.

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

// splitmix64's output function (a strong 64-bit mixer).
constexpr uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

constexpr uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// Stream salts: one independent stream per row and purpose.
constexpr uint64_t kRowSalt = 0x243F6A8885A308D3ULL;     // the case itself
constexpr uint64_t kPersonSalt = 0x13198A2E03707344ULL;  // the person of a first entry
constexpr uint64_t kRepeatSalt = 0xA4093822299F31D0ULL;  // choice of the earlier person

}  // namespace

class CepRng {
 public:
  explicit CepRng(uint64_t seed) {
    uint64_t sm = seed;
    for (uint64_t& word : s_) {
      sm += kGolden;
      word = Mix64(sm);
    }
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n), 0 < n < 2^32: multiply-shift on the high 32 bits (bias < n / 2^32).
  uint32_t Below(uint32_t n) {
    return static_cast<uint32_t>(((Next() >> 32) * static_cast<uint64_t>(n)) >> 32);
  }

 private:
  uint64_t s_[4];
};

namespace {

// ---------------------------------------------------------------------------------------------
// Calendar (days since 1970-01-01; H. Hinnant's civil algorithms, integer only).

int32_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int32_t z, int* y, int* m, int* d) {
  z += 719468;
  const int era = (z >= 0 ? z : z - 146096) / 146097;
  const int doe = z - era * 146097;
  const int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yoe + era * 400 + (*m <= 2);
}

int32_t DaysFromYmd(int32_t ymd) { return DaysFromCivil(ymd / 10000, ymd / 100 % 100, ymd % 100); }

void SetDate(google::type::Date* date, int32_t days) {
  int y, m, d;
  CivilFromDays(days, &y, &m, &d);
  date->set_year(y);
  date->set_month(m);
  date->set_day(d);
}

// 0 = Sunday .. 6 = Saturday (1970-01-01 was a Thursday).
int Weekday(int32_t days) { return static_cast<int>(((days % 7) + 7 + 4) % 7); }

// Easter Sunday (anonymous Gregorian algorithm), as days since 1970-01-01.
int32_t EasterSunday(int y) {
  const int a = y % 19, b = y / 100, c = y % 100, d = b / 4, e = b % 4;
  const int f = (b + 8) / 25, g = (b - f + 1) / 3, h = (19 * a + b - d - g + 15) % 30;
  const int i = c / 4, k = c % 4, l = (32 + 2 * e + 2 * i - h - k) % 7;
  const int m = (a + 11 * h + 22 * l) / 451;
  const int month = (h + l - 7 * m + 114) / 31;
  const int day = (h + l - 7 * m + 114) % 31 + 1;
  return DaysFromCivil(y, month, day);
}

// French public holidays (jours fériés, metropolitan list): no CEP entry is opened on them.
bool IsPublicHoliday(int32_t days) {
  int y, m, d;
  CivilFromDays(days, &y, &m, &d);
  const int md = m * 100 + d;
  if (md == 101 || md == 501 || md == 508 || md == 714 || md == 815 || md == 1101 || md == 1111 ||
      md == 1225) {
    return true;
  }
  const int32_t easter = EasterSunday(y);
  // Easter Monday, Ascension, Whit Monday.
  return days == easter + 1 || days == easter + 39 || days == easter + 50;
}

// ---------------------------------------------------------------------------------------------
// Calibration tables.

// Regions and their departments. Active population in thousands: approximate, INSEE,
// Estimations d'emploi / population active (actifs de 15-64 ans, 2015-2017 order of magnitude;
// France about 30.4 million). Department weights: approximate population in thousands (INSEE,
// estimations de population, 2016), used only to spread a region's people over its departments.
struct Dept {
  const char* code;
  int32_t population_k;
};
struct RegionDef {
  const char* code;
  const char* name;
  int32_t active_population_k;
  std::vector<Dept> departments;
};

// clang-format off
const std::vector<RegionDef>& RegionDefs() {
  static const auto* regions = new std::vector<RegionDef>{
      {"11", "Île-de-France", 6170,
       {{"75", 2190}, {"77", 1400}, {"78", 1430}, {"91", 1290}, {"92", 1600}, {"93", 1620},
        {"94", 1380}, {"95", 1230}}},
      {"24", "Centre-Val de Loire", 1150,
       {{"18", 305}, {"28", 433}, {"36", 222}, {"37", 605}, {"41", 333}, {"45", 675}}},
      {"27", "Bourgogne-Franche-Comté", 1250,
       {{"21", 533}, {"25", 538}, {"39", 260}, {"58", 210}, {"70", 237}, {"71", 555}, {"89", 339},
        {"90", 143}}},
      {"28", "Normandie", 1460, {{"14", 694}, {"27", 601}, {"50", 496}, {"61", 286}, {"76", 1255}}},
      {"32", "Hauts-de-France", 2640,
       {{"02", 538}, {"59", 2604}, {"60", 824}, {"62", 1469}, {"80", 572}}},
      {"44", "Grand Est", 2490,
       {{"08", 276}, {"10", 309}, {"51", 569}, {"52", 178}, {"54", 733}, {"55", 189}, {"57", 1044},
        {"67", 1116}, {"68", 764}, {"88", 370}}},
      {"52", "Pays de la Loire", 1670,
       {{"44", 1380}, {"49", 810}, {"53", 307}, {"72", 568}, {"85", 670}}},
      {"53", "Bretagne", 1490, {{"22", 598}, {"29", 908}, {"35", 1060}, {"56", 750}}},
      {"75", "Nouvelle-Aquitaine", 2640,
       {{"16", 353}, {"17", 640}, {"19", 241}, {"23", 119}, {"24", 415}, {"33", 1548}, {"40", 403},
        {"47", 333}, {"64", 677}, {"79", 374}, {"86", 435}, {"87", 375}}},
      {"76", "Occitanie", 2550,
       {{"09", 153}, {"11", 369}, {"12", 279}, {"30", 740}, {"31", 1348}, {"32", 191}, {"34", 1120},
        {"46", 174}, {"48", 76}, {"65", 228}, {"66", 471}, {"81", 387}, {"82", 255}}},
      {"84", "Auvergne-Rhône-Alpes", 3650,
       {{"01", 638}, {"03", 341}, {"07", 325}, {"15", 146}, {"26", 508}, {"38", 1252}, {"42", 762},
        {"43", 227}, {"63", 650}, {"69", 1844}, {"73", 431}, {"74", 794}}},
      {"93", "Provence-Alpes-Côte d'Azur", 2190,
       {{"04", 162}, {"05", 141}, {"06", 1083}, {"13", 2020}, {"83", 1058}, {"84", 559}}},
      {"94", "Corse", 140, {{"2A", 155}, {"2B", 177}}},
      {"01", "Guadeloupe", 175, {{"971", 395}}},
      {"02", "Martinique", 165, {{"972", 377}}},
      {"03", "Guyane", 100, {{"973", 269}}},
      {"04", "La Réunion", 370, {{"974", 853}}},
      {"06", "Mayotte", 60, {{"976", 256}}},
  };
  return *regions;
}
// clang-format on

// Operators (index into the tables below).
enum Op { kFt = 0, kMl = 1, kApec = 2, kCap = 3, kFongecif = 4, kNumOps = 5 };

// Share of the entries per operator (Pôle emploi three quarters, seed; the rest: orders of
// magnitude of the DGEFP indicators, Missions locales the second network).
constexpr int32_t kOperatorWeights[kNumOps] = {7500, 1250, 450, 400, 400};

// Share of level 3 ("2014/3", accompaniment) per operator; the rest is level 2. About 20 %.
constexpr int32_t kLevel3Per10k[kNumOps] = {1800, 2200, 3000, 2500, 3000};

// Employment status at entry per operator: JOB_SEEKER, EMPLOYEE, SELF_EMPLOYED, PUBLIC_AGENT,
// OTHER. Overall about 92.4 % job seekers (seed: over 90 %).
// clang-format off
constexpr int32_t kStatusWeights[kNumOps][5] = {
    {9950,   30,  10,   0,  10},  // Pôle emploi: registered job seekers
    {9000,  500,   0,   0, 500},  // Missions locales: young people, some in no category
    {6500, 3300, 100, 100,   0},  // APEC: managers, job seekers and employees
    {8800, 1000,   0, 100, 100},  // Cap emploi: disabled people, mostly job seekers
    { 200, 9200, 200, 300, 100},  // Opacif / Fongécif: employees
};
// clang-format on

// Age at the first entry (opening year - birth year), outside Missions locales: bands.
struct AgeBand {
  int lo;
  int hi;
  int32_t weight;
};
constexpr AgeBand kAgeBands[] = {{16, 17, 100},  {18, 24, 1000}, {25, 34, 2800}, {35, 44, 2600},
                                 {45, 54, 2300}, {55, 61, 1100}, {62, 65, 100}};
// Missions locales: 16..25.
constexpr int32_t kMlAgeWeights[10] = {200, 500, 900, 1100, 1200, 1200, 1300, 1300, 1200, 1100};

// European qualification level 0..8 per operator (Cap emploi as Pôle emploi).
constexpr int32_t kQualificationWeights[kNumOps][9] = {
    {400, 300, 1400, 2700, 2400, 1200, 900, 600, 100},  // Pôle emploi
    {800, 500, 2000, 3500, 2500, 500, 200, 0, 0},       // Missions locales
    {0, 0, 0, 0, 0, 1000, 3500, 5000, 500},             // APEC
    {400, 300, 1400, 2700, 2400, 1200, 900, 600, 100},  // Cap emploi
    {200, 200, 1000, 3000, 2600, 1500, 900, 550, 50},   // Opacif / Fongécif
};
// Highest qualification plausible at an age.
int MaxQualificationAtAge(int age) {
  if (age <= 17) return 3;
  if (age <= 19) return 4;
  if (age <= 21) return 5;
  if (age <= 22) return 6;
  if (age <= 24) return 7;
  return 8;
}

// Monthly openings: 2015 ramp-up (percent of the steady rate) times a seasonal profile.
constexpr int32_t kRamp2015[12] = {45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100};
constexpr int32_t kRampLater[3] = {100, 104, 104};  // 2016, 2017, 2018
constexpr int32_t kSeasonal[12] = {105, 100, 110, 100, 90, 100, 85, 60, 115, 115, 105, 80};

// Services of the panier: 1..4 per case, distinct kinds.
constexpr int32_t kServiceCountWeights[4] = {3500, 3500, 2000, 1000};
constexpr pb::ServiceKind kServiceKinds[6] = {
    pb::SERVICE_KIND_INFORMATION,           pb::SERVICE_KIND_PROJECT_SUPPORT,
    pb::SERVICE_KIND_FINANCIAL_ENGINEERING, pb::SERVICE_KIND_TRAINING_PATH,
    pb::SERVICE_KIND_SKILLS_IDENTIFICATION, pb::SERVICE_KIND_OCCUPATION_SECTOR_INVESTIGATION};
constexpr int32_t kServiceKindWeights[6] = {3000, 3000, 1000, 1200, 1000, 800};

// Case duration in days (opening to closing): a sum of two uniforms (triangular).
// Level 2: 14 + U[0,60] + U[0,60] (2 weeks .. 4.5 months, mean 2.5 months);
// level 3: 45 + U[0,120] + U[0,120] (1.5 .. 9.5 months, mean 5.5 months).

// Closing reasons of closed cases.
constexpr const char* kClosingReasons[4] = {"completed", "abandoned", "unreachable", "moved_away"};
constexpr int32_t kClosingReasonWeights[4] = {7800, 1200, 600, 400};

// Outcome recorded on a closed case: level 2 35 %, level 3 70 %; then its kind.
constexpr int32_t kOutcomePer10k[2] = {3500, 7000};
constexpr pb::OutcomeKind kOutcomeKinds[5] = {
    pb::OUTCOME_KIND_TRAINING, pb::OUTCOME_KIND_JOB, pb::OUTCOME_KIND_VAE,
    pb::OUTCOME_KIND_BUSINESS_CREATION, pb::OUTCOME_KIND_NONE};
constexpr int32_t kOutcomeKindWeights[5] = {4000, 3200, 500, 500, 1800};

constexpr pb::EmploymentStatus kStatuses[5] = {
    pb::EMPLOYMENT_STATUS_JOB_SEEKER, pb::EMPLOYMENT_STATUS_EMPLOYEE,
    pb::EMPLOYMENT_STATUS_SELF_EMPLOYED, pb::EMPLOYMENT_STATUS_PUBLIC_AGENT,
    pb::EMPLOYMENT_STATUS_OTHER};

// A weighted draw: index i with probability weights[i] / sum(weights).
template <size_t N>
int Pick(CepRng& rng, const int32_t (&weights)[N]) {
  int32_t sum = 0;
  for (int32_t w : weights) sum += w;
  int32_t r = static_cast<int32_t>(rng.Below(static_cast<uint32_t>(sum)));
  for (size_t i = 0; i < N; ++i) {
    if (r < weights[i]) return static_cast<int>(i);
    r -= weights[i];
  }
  return static_cast<int>(N - 1);
}

// Cumulative tables built once from the region definitions.
struct RegionTables {
  int32_t active_total = 0;
  std::vector<int32_t> active_cumulative;             // per region
  std::vector<std::vector<int32_t>> dept_cumulative;  // per region, per department
};

const RegionTables& Tables() {
  static const RegionTables* tables = [] {
    auto* t = new RegionTables;
    for (const RegionDef& r : RegionDefs()) {
      t->active_total += r.active_population_k;
      t->active_cumulative.push_back(t->active_total);
      std::vector<int32_t> cum;
      int32_t sum = 0;
      for (const Dept& d : r.departments) {
        sum += d.population_k;
        cum.push_back(sum);
      }
      t->dept_cumulative.push_back(std::move(cum));
    }
    return t;
  }();
  return *tables;
}

int PickCumulative(CepRng& rng, const std::vector<int32_t>& cumulative) {
  const int32_t r = static_cast<int32_t>(rng.Below(static_cast<uint32_t>(cumulative.back())));
  return static_cast<int>(std::upper_bound(cumulative.begin(), cumulative.end(), r) -
                          cumulative.begin());
}

const char* OpPrefix(int op) {
  static constexpr const char* kPrefixes[kNumOps] = {"ft", "ml", "apec", "cap", "fongecif"};
  return kPrefixes[op];
}

constexpr pb::OperatorKind kOpKinds[kNumOps] = {
    pb::OPERATOR_KIND_FRANCE_TRAVAIL, pb::OPERATOR_KIND_MISSION_LOCALE, pb::OPERATOR_KIND_APEC,
    pb::OPERATOR_KIND_CAP_EMPLOI, pb::OPERATOR_KIND_OPACIF_FONGECIF};

bool IsRegional(int op) { return op == kMl || op == kCap || op == kFongecif; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public helpers.

const std::vector<CepRegion>& CepRegions() {
  static const auto* regions = [] {
    auto* v = new std::vector<CepRegion>;
    for (const RegionDef& r : RegionDefs()) v->push_back({r.code, r.name, r.active_population_k});
    return v;
  }();
  return *regions;
}

std::vector<CepOperator> CepOperators() {
  std::vector<std::string> all_regions;
  for (const RegionDef& r : RegionDefs()) all_regions.push_back(r.code);
  std::vector<CepOperator> ops;
  ops.push_back({"ft", "Pôle emploi", pb::OPERATOR_KIND_FRANCE_TRAVAIL, all_regions});
  ops.push_back({"apec", "APEC", pb::OPERATOR_KIND_APEC, all_regions});
  for (const RegionDef& r : RegionDefs()) {
    ops.push_back({absl::StrCat("ml-", r.code),
                   absl::StrCat("Missions locales ", r.name),
                   pb::OPERATOR_KIND_MISSION_LOCALE,
                   {r.code}});
    ops.push_back({absl::StrCat("cap-", r.code),
                   absl::StrCat("Cap emploi ", r.name),
                   pb::OPERATOR_KIND_CAP_EMPLOI,
                   {r.code}});
    ops.push_back({absl::StrCat("fongecif-", r.code),
                   absl::StrCat("Fongécif ", r.name),
                   pb::OPERATOR_KIND_OPACIF_FONGECIF,
                   {r.code}});
  }
  return ops;
}

std::string CepOperatorIdOf(const std::string& external_id) {
  const size_t dash = external_id.rfind('-');
  return dash == std::string::npos ? std::string() : external_id.substr(0, dash);
}

pb::OperatorKind CepOperatorKindOf(const std::string& operator_id) {
  const std::string prefix = operator_id.substr(0, operator_id.find('-'));
  for (int op = 0; op < kNumOps; ++op) {
    if (prefix == OpPrefix(op)) return kOpKinds[op];
  }
  return pb::OPERATOR_KIND_UNSPECIFIED;
}

// ---------------------------------------------------------------------------------------------
// CepDataset.

struct CepDataset::Core {
  bool repeat_flag = false;  // drawn as a later entry of an earlier person
  int op = kFt;
  bool level3 = false;
  int month = 0;
  int32_t opening = 0;   // days since 1970-01-01
  int32_t closing = -1;  // days since 1970-01-01; -1 = still open at the extraction date
};

struct CepDataset::Person {
  int region = 0;
  int department = 0;
  bool female = false;
  int birth_year = 0;
  int qualification = 0;
};

CepDataset::CepDataset(uint64_t seed, int64_t total)
    : seed_(seed),
      key_(Mix64(seed ^ 0x5851F42D4C957F2DULL)),
      region_offset_(Mix64(seed ^ 0x14057B7EF767814FULL)),
      total_(std::clamp<int64_t>(total, 0, int64_t{1} << 40)) {
  // Month weights and exact counts (largest remainder, ties to the earlier month).
  std::vector<int64_t> weights;
  int64_t weight_sum = 0;
  for (int m = 0; m < kCepMonths; ++m) {
    const int year = 2015 + m / 12;
    const int month = m % 12;
    const int64_t w =
        int64_t{year == 2015 ? kRamp2015[month] : kRampLater[year - 2016]} * kSeasonal[month];
    weights.push_back(w);
    weight_sum += w;
  }
  months_.resize(kCepMonths);
  std::vector<int64_t> remainders(kCepMonths);
  int64_t assigned = 0;
  for (int m = 0; m < kCepMonths; ++m) {
    months_[m].count = total_ * weights[m] / weight_sum;
    remainders[m] = total_ * weights[m] % weight_sum;
    assigned += months_[m].count;
  }
  std::vector<int> order(kCepMonths);
  for (int m = 0; m < kCepMonths; ++m) order[m] = m;
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return remainders[a] > remainders[b]; });
  for (int k = 0; assigned < total_; ++k, ++assigned) ++months_[order[k]].count;

  int64_t first = 0;
  const int32_t last_opening = DaysFromYmd(kCepLastOpening);
  for (int m = 0; m < kCepMonths; ++m) {
    Month& month = months_[m];
    month.year = 2015 + m / 12;
    month.month = m % 12 + 1;
    month.first = first;
    first += month.count;
    const int32_t start = DaysFromCivil(month.year, month.month, 1);
    for (int32_t d = start;; ++d) {
      int y, mo, dd;
      CivilFromDays(d, &y, &mo, &dd);
      if (mo != month.month || d > last_opening) break;
      const int wd = Weekday(d);
      if (wd != 0 && wd != 6 && !IsPublicHoliday(d)) month.workdays.push_back(d);
    }
  }

  // A later entry refers to a person first seen in the previous ~18 months of entries.
  repeat_window_ = std::max<int64_t>(1, total_ * 18 / kCepMonths);

  operator_ids_.resize(kNumOps);
  for (int op = 0; op < kNumOps; ++op) {
    for (const RegionDef& r : RegionDefs()) {
      operator_ids_[op].push_back(IsRegional(op) ? absl::StrCat(OpPrefix(op), "-", r.code)
                                                 : std::string(OpPrefix(op)));
    }
  }
}

CepDataset& CepDataset::Shard(int index, int count) {
  if (count < 1 || index < 0 || index >= count) {
    // An invalid shard is empty (callers validate their flags).
    shard_index_ = 0;
    shard_count_ = 1;
    next_index_ = total_;
    return *this;
  }
  shard_index_ = index;
  shard_count_ = count;
  next_index_ = index;
  produced_ = 0;
  last_index_ = -1;
  return *this;
}

bool CepDataset::Next(pb::ImportedCase* row) {
  if (next_index_ >= total_) return false;
  Row(next_index_, row, &operator_id_);
  last_index_ = next_index_;
  next_index_ += shard_count_;
  ++produced_;
  return true;
}

int CepDataset::MonthOf(int64_t index) const {
  // The last month whose first row is <= index (empty months share their successor's first).
  int lo = 0;
  int hi = kCepMonths;  // first month with first > index
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (months_[mid].first <= index) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo - 1;
}

CepDataset::Core CepDataset::CoreOf(int64_t index, CepRng* rng) const {
  static const int32_t extraction = DaysFromYmd(kCepExtractionDate);
  Core c;
  c.repeat_flag = rng->Below(10000) < static_cast<uint32_t>(kCepRepeatPer10k);
  c.op = Pick(*rng, kOperatorWeights);
  c.level3 = rng->Below(10000) < static_cast<uint32_t>(kLevel3Per10k[c.op]);
  c.month = MonthOf(index);
  const Month& m = months_[c.month];
  const int64_t pos = index - m.first;
  c.opening =
      m.workdays[static_cast<size_t>(pos * static_cast<int64_t>(m.workdays.size()) / m.count)];
  const int32_t duration = c.level3 ? 45 + static_cast<int32_t>(rng->Below(121) + rng->Below(121))
                                    : 14 + static_cast<int32_t>(rng->Below(61) + rng->Below(61));
  c.closing = c.opening + duration <= extraction ? c.opening + duration : -1;
  return c;
}

CepDataset::Person CepDataset::PersonOf(int64_t index, const Core& core) const {
  const RegionTables& tables = Tables();
  CepRng rng(key_ ^ Mix64(static_cast<uint64_t>(index) + kPersonSalt));
  Person p;
  // Region: a Weyl sequence (golden ratio) over the row index, mapped through the cumulative
  // active population: equidistributed in every window of rows, whatever the shard.
  const uint64_t weyl = static_cast<uint64_t>(index) * kGolden + region_offset_;
  const int32_t r =
      static_cast<int32_t>(((weyl >> 32) * static_cast<uint64_t>(tables.active_total)) >> 32);
  p.region = static_cast<int>(
      std::upper_bound(tables.active_cumulative.begin(), tables.active_cumulative.end(), r) -
      tables.active_cumulative.begin());
  p.department = PickCumulative(rng, tables.dept_cumulative[p.region]);
  p.female = rng.Below(10000) < static_cast<uint32_t>(kCepWomenPer10k);
  int age;
  if (core.op == kMl) {
    age = 16 + Pick(rng, kMlAgeWeights);
  } else {
    int32_t band_weights[std::size(kAgeBands)];
    for (size_t b = 0; b < std::size(kAgeBands); ++b) band_weights[b] = kAgeBands[b].weight;
    const AgeBand& band = kAgeBands[Pick(rng, band_weights)];
    age = band.lo + static_cast<int>(rng.Below(static_cast<uint32_t>(band.hi - band.lo + 1)));
  }
  p.birth_year = months_[core.month].year - age;
  p.qualification = std::min(Pick(rng, kQualificationWeights[core.op]), MaxQualificationAtAge(age));
  return p;
}

void CepDataset::Row(int64_t index, pb::ImportedCase* row, std::string* operator_id) const {
  static const int32_t extraction = DaysFromYmd(kCepExtractionDate);
  CepRng rng(key_ ^ Mix64(static_cast<uint64_t>(index) + kRowSalt));
  const Core c = CoreOf(index, &rng);

  // The person: an earlier one for a repeat (first entry closed before this opening, still of
  // working age, and young enough for a Mission locale), else a new one.
  int64_t person_index = index;
  Person p;
  bool found = false;
  if (c.repeat_flag && index > 0) {
    CepRng pick(key_ ^ Mix64(static_cast<uint64_t>(index) + kRepeatSalt));
    const uint64_t window = static_cast<uint64_t>(std::min(index, repeat_window_));
    for (int attempt = 0; attempt < 8 && !found; ++attempt) {
      const int64_t j = index - 1 - static_cast<int64_t>(pick.Next() % window);
      CepRng jrng(key_ ^ Mix64(static_cast<uint64_t>(j) + kRowSalt));
      const Core cj = CoreOf(j, &jrng);
      if (cj.repeat_flag || cj.closing < 0 || cj.closing >= c.opening) continue;
      const Person pj = PersonOf(j, cj);
      const int age = months_[c.month].year - pj.birth_year;
      if (age > 65 || (c.op == kMl && age > 25)) continue;
      person_index = j;
      p = pj;
      found = true;
    }
  }
  if (!found) p = PersonOf(index, c);

  const RegionDef& region = RegionDefs()[static_cast<size_t>(p.region)];
  const std::string& op_id =
      operator_ids_[static_cast<size_t>(c.op)][static_cast<size_t>(p.region)];
  if (operator_id != nullptr) *operator_id = op_id;

  std::string* s = row->mutable_external_id();
  s->assign(op_id);
  absl::StrAppend(s, "-", index + 1);
  s = row->mutable_beneficiary_external_id();
  s->assign("person-");
  absl::StrAppend(s, person_index + 1);

  pb::Beneficiary* b = row->mutable_beneficiary();
  b->clear_name();
  b->set_birth_year(p.birth_year);
  b->set_sex(p.female ? pb::SEX_FEMALE : pb::SEX_MALE);
  b->set_department(region.departments[static_cast<size_t>(p.department)].code);
  b->set_region(region.code);
  b->set_status(kStatuses[Pick(rng, kStatusWeights[c.op])]);
  b->set_qualification_level(p.qualification);
  b->set_anonymised(false);

  SetDate(row->mutable_opening_date(), c.opening);
  row->set_level(c.level3 ? "2014/3" : "2014/2");

  row->clear_demands();
  row->add_demands(pb::DEMAND_KIND_PROJECT);
  if (rng.Below(10000) < static_cast<uint32_t>(kCepTakeStockPer10k)) {
    row->add_demands(pb::DEMAND_KIND_TAKE_STOCK);
  }
  if (rng.Below(10000) < static_cast<uint32_t>(kCepSkillsRecognitionPer10k)) {
    row->add_demands(pb::DEMAND_KIND_SKILLS_RECOGNITION);
  }

  // Services: distinct kinds, the first on the opening day, the others up to the closing (or
  // the extraction date while open), in date order.
  const int32_t end = c.closing >= 0 ? c.closing : extraction;
  const int n_services = 1 + Pick(rng, kServiceCountWeights);
  int32_t kind_weights[6];
  std::copy(std::begin(kServiceKindWeights), std::end(kServiceKindWeights), kind_weights);
  int32_t offsets[4] = {0, 0, 0, 0};
  for (int k = 1; k < n_services; ++k) {
    offsets[k] = static_cast<int32_t>(rng.Below(static_cast<uint32_t>(end - c.opening + 1)));
  }
  for (int k = 1; k < n_services; ++k) {  // insertion sort of at most 4 offsets
    for (int q = k; q > 0 && offsets[q - 1] > offsets[q]; --q)
      std::swap(offsets[q - 1], offsets[q]);
  }
  auto* services = row->mutable_services();
  services->Clear();
  for (int k = 0; k < n_services; ++k) {
    const int kind = Pick(rng, kind_weights);
    kind_weights[kind] = 0;
    pb::DeliveredService* service = services->Add();
    service->set_kind(kServiceKinds[kind]);
    SetDate(service->mutable_date(), c.opening + offsets[k]);
  }

  auto* outcomes = row->mutable_outcomes();
  outcomes->Clear();
  if (c.closing >= 0) {
    SetDate(row->mutable_closing_date(), c.closing);
    row->set_closing_reason(kClosingReasons[Pick(rng, kClosingReasonWeights)]);
    if (rng.Below(10000) < static_cast<uint32_t>(kOutcomePer10k[c.level3 ? 1 : 0])) {
      const pb::OutcomeKind kind = kOutcomeKinds[Pick(rng, kOutcomeKindWeights)];
      const int32_t span = std::min<int32_t>(30, c.closing - c.opening);
      pb::Outcome* outcome = outcomes->Add();
      outcome->set_kind(kind);
      SetDate(outcome->mutable_date(),
              c.closing - static_cast<int32_t>(rng.Below(static_cast<uint32_t>(span + 1))));
      if (kind == pb::OUTCOME_KIND_VAE) {
        s = outcome->mutable_candidacy();
        s->assign("candidacies/synthetic-");
        absl::StrAppend(s, index + 1);
      } else {
        outcome->clear_candidacy();
      }
    }
  } else {
    row->clear_closing_date();
    row->clear_closing_reason();
  }
}

}  // namespace parcours::bench
