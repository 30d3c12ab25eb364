// cep_dataset: writes the synthetic national CEP dataset (bench/cep_dataset.h), or checks its
// calibration against the seed's figures.
//
//   cep_dataset [--seed 20150101] [--total 5791059] [--format summary|tsv|ndjson] [--out FILE]
//               [--shard_index 0 --shard_count 1] [--header]
//
// summary: generates every row and prints the calibration check (counts per year and month,
//          shares of women, Pôle emploi, job seekers, demands, levels, per-region counts against
//          the active-population targets...) and the generation speed; exits 1 if a check fails.
// tsv:     one line per case, for MariaDB LOAD DATA (columns below; NULL is \N).
// ndjson:  one protobuf JSON object (parcours.cep.v1.ImportedCase) per line.
//
// TSV columns, in order:
//    1 external_id              ft-17
//    2 operator_id              ft | apec | ml-<region> | cap-<region> | fongecif-<region>
//    3 operator_kind            FRANCE_TRAVAIL | APEC | MISSION_LOCALE | CAP_EMPLOI |
//    OPACIF_FONGECIF 4 beneficiary_external_id  person-12 5 birth_year               1984 6 sex
//    FEMALE | MALE 7 department               35 | 2A | 974 8 region                   53 9 status
//    JOB_SEEKER | EMPLOYEE | SELF_EMPLOYED | PUBLIC_AGENT | OTHER
//   10 qualification_level      0..8
//   11 level                    2014/2 | 2014/3
//   12 opening_date             2015-01-05
//   13 closing_date             2015-03-20 | \N (still open)
//   14 closing_reason           completed | abandoned | unreachable | moved_away | \N
//   15 demands                  PROJECT[,TAKE_STOCK][,SKILLS_RECOGNITION] (a MariaDB SET literal)
//   16 service_count            1..4
//   17 services                 KIND:YYYY-MM-DD[,KIND:YYYY-MM-DD...] in date order
//   18 outcome_kind             TRAINING | JOB | VAE | BUSINESS_CREATION | NONE | \N
//   19 outcome_date             YYYY-MM-DD | \N
//   20 candidacy                candidacies/synthetic-<n> | \N
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/cep_dataset.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"

ABSL_FLAG(uint64_t, seed, 20150101, "Seed of the dataset (same seed, same rows)");
ABSL_FLAG(int64_t, total, parcours::bench::kCepSeedEntries,
          "Rows in the whole dataset (the seed's figure by default)");
ABSL_FLAG(std::string, format, "summary", "summary | tsv | ndjson");
ABSL_FLAG(std::string, out, "", "Output file (default: stdout)");
ABSL_FLAG(int, shard_index, 0, "This stream's shard: rows i with i % shard_count == shard_index");
ABSL_FLAG(int, shard_count, 1, "Number of shards");
ABSL_FLAG(bool, header, false, "tsv: first line = column names (LOAD DATA ... IGNORE 1 LINES)");

namespace {

namespace pb = ::parcours::cep::v1;
using parcours::bench::CepDataset;

// Enum value -> name without its prefix ("SEX_FEMALE" -> "FEMALE"), indexed by number.
std::vector<std::string> ShortNames(const google::protobuf::EnumDescriptor* e,
                                    const std::string& prefix) {
  int max = 0;
  for (int i = 0; i < e->value_count(); ++i) max = std::max(max, e->value(i)->number());
  std::vector<std::string> names(static_cast<size_t>(max) + 1);
  for (int i = 0; i < e->value_count(); ++i) {
    std::string name = e->value(i)->name();
    if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
    names[static_cast<size_t>(e->value(i)->number())] = name;
  }
  return names;
}

void AppendDate(std::string* s, const google::type::Date& d) {
  char buf[16];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", d.year(), d.month(), d.day());
  s->append(buf, static_cast<size_t>(n));
}

int32_t Ymd(const google::type::Date& d) { return d.year() * 10000 + d.month() * 100 + d.day(); }

class Output {
 public:
  explicit Output(FILE* f) : f_(f) { buf_.reserve(kFlushAt + 4096); }
  std::string* buf() { return &buf_; }
  void MaybeFlush() {
    if (buf_.size() >= kFlushAt) Flush();
  }
  bool Flush() {
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size()) ok_ = false;
    buf_.clear();
    return ok_;
  }
  bool ok() const { return ok_; }

 private:
  static constexpr size_t kFlushAt = 1 << 20;
  FILE* f_;
  std::string buf_;
  bool ok_ = true;
};

struct Names {
  std::vector<std::string> kind = ShortNames(pb::OperatorKind_descriptor(), "OPERATOR_KIND_");
  std::vector<std::string> sex = ShortNames(pb::Sex_descriptor(), "SEX_");
  std::vector<std::string> status =
      ShortNames(pb::EmploymentStatus_descriptor(), "EMPLOYMENT_STATUS_");
  std::vector<std::string> demand = ShortNames(pb::DemandKind_descriptor(), "DEMAND_KIND_");
  std::vector<std::string> service = ShortNames(pb::ServiceKind_descriptor(), "SERVICE_KIND_");
  std::vector<std::string> outcome = ShortNames(pb::OutcomeKind_descriptor(), "OUTCOME_KIND_");
};

constexpr const char* kTsvHeader =
    "external_id\toperator_id\toperator_kind\tbeneficiary_external_id\tbirth_year\tsex\t"
    "department\tregion\tstatus\tqualification_level\tlevel\topening_date\tclosing_date\t"
    "closing_reason\tdemands\tservice_count\tservices\toutcome_kind\toutcome_date\tcandidacy\n";

void AppendTsv(const Names& names, const std::string& operator_id, const pb::ImportedCase& r,
               std::string* s) {
  const pb::Beneficiary& b = r.beneficiary();
  absl::StrAppend(s, r.external_id(), "\t", operator_id, "\t",
                  names.kind[parcours::bench::CepOperatorKindOf(operator_id)], "\t",
                  r.beneficiary_external_id(), "\t", b.birth_year(), "\t", names.sex[b.sex()], "\t",
                  b.department(), "\t", b.region(), "\t", names.status[b.status()], "\t",
                  b.qualification_level(), "\t", r.level(), "\t");
  AppendDate(s, r.opening_date());
  s->push_back('\t');
  if (r.has_closing_date()) {
    AppendDate(s, r.closing_date());
    absl::StrAppend(s, "\t", r.closing_reason(), "\t");
  } else {
    s->append("\\N\t\\N\t");
  }
  for (int k = 0; k < r.demands_size(); ++k) {
    if (k > 0) s->push_back(',');
    s->append(names.demand[static_cast<size_t>(r.demands(k))]);
  }
  absl::StrAppend(s, "\t", r.services_size(), "\t");
  for (int k = 0; k < r.services_size(); ++k) {
    if (k > 0) s->push_back(',');
    s->append(names.service[static_cast<size_t>(r.services(k).kind())]);
    s->push_back(':');
    AppendDate(s, r.services(k).date());
  }
  s->push_back('\t');
  if (r.outcomes_size() > 0) {
    const pb::Outcome& o = r.outcomes(0);
    absl::StrAppend(s, names.outcome[static_cast<size_t>(o.kind())], "\t");
    AppendDate(s, o.date());
    s->push_back('\t');
    s->append(o.candidacy().empty() ? std::string("\\N") : o.candidacy());
  } else {
    s->append("\\N\t\\N\t\\N");
  }
  s->push_back('\n');
}

// ---------------------------------------------------------------------------------------------
// summary

struct Tally {
  int64_t rows = 0;
  int64_t per_month[parcours::bench::kCepMonths] = {};
  int64_t women = 0;
  std::map<int, int64_t> per_kind;  // by OperatorKind
  int64_t ft = 0;
  int64_t rows_2017 = 0;
  int64_t ft_2017 = 0;
  int64_t status[6] = {};
  int64_t demand[5] = {};
  int64_t level2 = 0;
  int64_t level3 = 0;
  int64_t bad_level = 0;
  std::map<std::string, int64_t> per_region;
  int64_t age_band[5] = {};  // 16-25, 26-34, 35-44, 45-54, 55-65
  int64_t bad_age = 0;
  int64_t qualification[9] = {};
  int64_t closed = 0;
  int64_t outcome[6] = {};
  int64_t services = 0;
  int64_t repeats = 0;
  int64_t out_of_range = 0;  // openings outside 2015-01-01..2018-07-31 or invalid rows
  int64_t duration_days_sum = 0;
};

int64_t DaysBetween(const google::type::Date& a, const google::type::Date& b) {
  // Only for the mean duration: days since year 0 (proleptic Gregorian, integer).
  auto days = [](const google::type::Date& d) {
    int64_t y = d.year();
    const int64_t m = d.month();
    if (m <= 2) --y;
    const int64_t era = y / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d.day() - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy;
  };
  return days(b) - days(a);
}

void Count(const pb::ImportedCase& r, const std::string& operator_id, Tally* t) {
  ++t->rows;
  const int year = r.opening_date().year();
  const int m = (year - 2015) * 12 + r.opening_date().month() - 1;
  const int32_t opening = Ymd(r.opening_date());
  if (opening < parcours::bench::kCepFirstOpening || opening > parcours::bench::kCepLastOpening) {
    ++t->out_of_range;
  } else {
    ++t->per_month[m];
  }
  const pb::Beneficiary& b = r.beneficiary();
  if (b.sex() == pb::SEX_FEMALE) ++t->women;
  const pb::OperatorKind kind = parcours::bench::CepOperatorKindOf(operator_id);
  ++t->per_kind[kind];
  if (kind == pb::OPERATOR_KIND_FRANCE_TRAVAIL) ++t->ft;
  if (year == 2017) {
    ++t->rows_2017;
    if (kind == pb::OPERATOR_KIND_FRANCE_TRAVAIL) ++t->ft_2017;
  }
  if (b.status() >= 0 && b.status() < 6) ++t->status[b.status()];
  for (int d : r.demands()) {
    if (d >= 0 && d < 5) ++t->demand[d];
  }
  if (r.level() == "2014/2") {
    ++t->level2;
  } else if (r.level() == "2014/3") {
    ++t->level3;
  } else {
    ++t->bad_level;
  }
  ++t->per_region[b.region()];
  const int age = year - b.birth_year();
  if (age < 16 || age > 65) {
    ++t->bad_age;
  } else {
    ++t->age_band[age <= 25 ? 0 : age <= 34 ? 1 : age <= 44 ? 2 : age <= 54 ? 3 : 4];
  }
  if (b.qualification_level() >= 0 && b.qualification_level() <= 8) {
    ++t->qualification[b.qualification_level()];
  }
  if (r.has_closing_date()) {
    ++t->closed;
    t->duration_days_sum += DaysBetween(r.opening_date(), r.closing_date());
    if (Ymd(r.closing_date()) < opening) ++t->out_of_range;
  }
  for (const pb::Outcome& o : r.outcomes()) {
    if (o.kind() >= 0 && o.kind() < 6) ++t->outcome[o.kind()];
  }
  t->services += r.services_size();
  for (const pb::DeliveredService& s : r.services()) {
    if (Ymd(s.date()) < opening) ++t->out_of_range;
  }
  // A repeat: the person's first entry is another case ("person-<m>" with m != this case's n).
  const std::string& ext = r.external_id();
  const std::string& person = r.beneficiary_external_id();
  if (person.substr(person.rfind('-') + 1) != ext.substr(ext.rfind('-') + 1)) ++t->repeats;
}

// `s` padded with spaces to `width` characters (UTF-8 aware: printf pads bytes).
std::string Pad(const std::string& s, size_t width) {
  size_t chars = 0;
  for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
  return chars >= width ? s : s + std::string(width - chars, ' ');
}

double Pct(int64_t part, int64_t whole) { return whole == 0 ? 0.0 : 100.0 * part / whole; }

// |part/whole - target_per10k/10000| <= tol_per10k/10000, in integers.
bool Within(int64_t part, int64_t whole, int64_t target_per10k, int64_t tol_per10k) {
  const int64_t diff = part * 10000 - target_per10k * whole;
  return (diff < 0 ? -diff : diff) <= tol_per10k * whole;
}

int PrintSummary(FILE* f, const CepDataset& ds, int64_t expected_rows, const Tally& t,
                 double seconds) {
  bool all_ok = true;
  auto check = [&](bool ok) {
    all_ok = all_ok && ok;
    return ok ? "OK" : "FAILED";
  };
  const Names names;
  absl::FPrintF(f, "CEP synthetic dataset: seed %d, total %d\n", ds.seed(), ds.total());
  absl::FPrintF(f, "rows generated: %d (expected %d) %s\n", t.rows, expected_rows,
                check(t.rows == expected_rows));
  absl::FPrintF(f, "generation: %.2f s, %.0f rows/s\n\n", seconds,
                seconds > 0 ? t.rows / seconds : 0.0);

  absl::FPrintF(f,
                "Openings per month (2015-01-01 .. 2018-07-31; out of range or invalid: %d %s)\n",
                t.out_of_range, check(t.out_of_range == 0));
  absl::FPrintF(f, "%-6s", "year");
  for (int m = 1; m <= 12; ++m) absl::FPrintF(f, " %8d", m);
  absl::FPrintF(f, " %10s\n", "total");
  for (int y = 0; y < 4; ++y) {
    absl::FPrintF(f, "%-6d", 2015 + y);
    int64_t year_total = 0;
    for (int m = 0; m < 12; ++m) {
      const int idx = y * 12 + m;
      if (idx < parcours::bench::kCepMonths) {
        absl::FPrintF(f, " %8d", t.per_month[idx]);
        year_total += t.per_month[idx];
      } else {
        absl::FPrintF(f, " %8s", "");
      }
    }
    absl::FPrintF(f, " %10d\n", year_total);
  }

  absl::FPrintF(f, "\n%-32s %10s %9s %-14s %s\n", "indicator", "count", "share", "target", "check");
  auto line = [&](const std::string& name, int64_t count, int64_t whole, const std::string& target,
                  const char* status) {
    absl::FPrintF(f, "%s %10d %8.2f%% %s %s\n", Pad(name, 32), count, Pct(count, whole),
                  Pad(target, 14), status);
  };
  line("women", t.women, t.rows, "52 % ± 1", check(Within(t.women, t.rows, 5200, 100)));
  line("Pôle emploi (all entries)", t.ft, t.rows, "75 % ± 1",
       check(Within(t.ft, t.rows, 7500, 100)));
  line("Pôle emploi (2017 entries)", t.ft_2017, t.rows_2017, "75 % ± 1",
       check(t.rows_2017 == 0 || Within(t.ft_2017, t.rows_2017, 7500, 100)));
  line("job seekers", t.status[1], t.rows, "> 90 %", check(t.status[1] * 10 > t.rows * 9));
  line("demand PROJECT", t.demand[1], t.rows, "100 %", check(t.demand[1] == t.rows));
  line("demand TAKE_STOCK", t.demand[2], t.rows, "22 % ± 1",
       check(Within(t.demand[2], t.rows, 2200, 100)));
  line("demand SKILLS_RECOGNITION", t.demand[3], t.rows, "22 % ± 1",
       check(Within(t.demand[3], t.rows, 2200, 100)));
  line("level 2014/2", t.level2, t.rows, "~80 %", "");
  line("level 2014/3", t.level3, t.rows, "~20 %", check(t.bad_level == 0));
  line("later entry of a person", t.repeats, t.rows, "~8 %", "");
  line("distinct beneficiaries", t.rows - t.repeats, t.rows, "", "");
  line("closed at extraction (09-30)", t.closed, t.rows, "most", "");
  absl::FPrintF(f, "%-32s %10.1f days\n", "mean duration of closed cases",
                t.closed == 0 ? 0.0 : static_cast<double>(t.duration_days_sum) / t.closed);
  absl::FPrintF(f, "%-32s %10.2f\n", "services per case",
                t.rows == 0 ? 0.0 : static_cast<double>(t.services) / t.rows);

  absl::FPrintF(f, "\nOperators by kind\n");
  for (const auto& [kind, count] : t.per_kind) {
    line("  " + names.kind[static_cast<size_t>(kind)], count, t.rows, "", "");
  }
  absl::FPrintF(f, "Status\n");
  for (int s = 1; s < 6; ++s) line("  " + names.status[s], t.status[s], t.rows, "", "");
  absl::FPrintF(f, "Age at opening (opening year - birth year; outside 16..65: %d %s)\n", t.bad_age,
                check(t.bad_age == 0));
  const char* bands[5] = {"16-25", "26-34", "35-44", "45-54", "55-65"};
  for (int a = 0; a < 5; ++a) line(absl::StrCat("  ", bands[a]), t.age_band[a], t.rows, "", "");
  absl::FPrintF(f, "Qualification level\n");
  for (int q = 0; q <= 8; ++q) line(absl::StrCat("  ", q), t.qualification[q], t.rows, "", "");
  absl::FPrintF(f, "Outcomes (share of closed cases)\n");
  for (int o = 1; o < 6; ++o) line("  " + names.outcome[o], t.outcome[o], t.closed, "", "");

  absl::FPrintF(
      f, "\nRegions (target: share of the active population; check: within 10 %% relative)\n");
  absl::FPrintF(f, "%-4s %-28s %10s %8s %8s %8s %s\n", "code", "name", "count", "share", "target",
                "rel.dev", "check");
  int64_t active_total = 0;
  for (const auto& r : parcours::bench::CepRegions()) active_total += r.active_population_k;
  for (const auto& r : parcours::bench::CepRegions()) {
    const auto it = t.per_region.find(r.code);
    const int64_t count = it == t.per_region.end() ? 0 : it->second;
    const int64_t expected_x = int64_t{r.active_population_k} * t.rows;  // x active_total
    const int64_t diff = count * active_total - expected_x;
    const bool ok = (diff < 0 ? -diff : diff) * 10 <= expected_x;
    const double target = 100.0 * r.active_population_k / active_total;
    absl::FPrintF(f, "%-4s %s %10d %7.3f%% %7.3f%% %+7.2f%% %s\n", r.code, Pad(r.name, 28), count,
                  Pct(count, t.rows), target,
                  expected_x == 0 ? 0.0 : 100.0 * static_cast<double>(diff) / expected_x,
                  check(ok));
  }
  absl::FPrintF(f, "\ncalibration: %s\n", all_ok ? "OK" : "FAILED");
  return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "cep_dataset [--seed 20150101] [--total 5791059] [--format summary|tsv|ndjson] [--out FILE] "
      "[--shard_index I --shard_count N] [--header]");
  absl::ParseCommandLine(argc, argv);
  const std::string format = absl::GetFlag(FLAGS_format);
  const std::string out_path = absl::GetFlag(FLAGS_out);
  const int shard_index = absl::GetFlag(FLAGS_shard_index);
  const int shard_count = absl::GetFlag(FLAGS_shard_count);
  const int64_t total = absl::GetFlag(FLAGS_total);
  if (format != "summary" && format != "tsv" && format != "ndjson") {
    std::fprintf(stderr, "cep_dataset: unknown --format %s (summary | tsv | ndjson)\n",
                 format.c_str());
    return 2;
  }
  if (shard_count < 1 || shard_index < 0 || shard_index >= shard_count || total < 0) {
    std::fprintf(stderr,
                 "cep_dataset: need --shard_count >= 1, 0 <= --shard_index < --shard_count, "
                 "--total >= 0\n");
    return 2;
  }

  FILE* f = stdout;
  if (!out_path.empty()) {
    f = std::fopen(out_path.c_str(), "w");
    if (f == nullptr) {
      std::perror(("cep_dataset: " + out_path).c_str());
      return 1;
    }
  }

  CepDataset ds(absl::GetFlag(FLAGS_seed), total);
  ds.Shard(shard_index, shard_count);
  const int64_t expected_rows =
      ds.total() > shard_index ? (ds.total() - shard_index + shard_count - 1) / shard_count : 0;

  pb::ImportedCase row;
  const auto start = std::chrono::steady_clock::now();
  int rc = 0;
  if (format == "summary") {
    Tally tally;
    while (ds.Next(&row)) Count(row, ds.operator_id(), &tally);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rc = PrintSummary(f, ds, expected_rows, tally, seconds);
  } else {
    Output out(f);
    const Names names;
    if (format == "tsv") {
      if (absl::GetFlag(FLAGS_header)) out.buf()->append(kTsvHeader);
      while (ds.Next(&row)) {
        AppendTsv(names, ds.operator_id(), row, out.buf());
        out.MaybeFlush();
      }
    } else {
      google::protobuf::util::JsonPrintOptions options;
      std::string json;
      while (ds.Next(&row)) {
        json.clear();
        if (!google::protobuf::util::MessageToJsonString(row, &json, options).ok()) {
          std::fprintf(stderr, "cep_dataset: cannot print row %" PRId64 " as JSON\n",
                       ds.last_index());
          return 1;
        }
        out.buf()->append(json);
        out.buf()->push_back('\n');
        out.MaybeFlush();
      }
    }
    if (!out.Flush()) {
      std::fprintf(stderr, "cep_dataset: write error\n");
      rc = 1;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "cep_dataset: %" PRId64 " rows in %.2f s (%.0f rows/s)\n", ds.produced(),
                 seconds, seconds > 0 ? ds.produced() / seconds : 0.0);
  }
  if (f != stdout && std::fclose(f) != 0) {
    std::fprintf(stderr, "cep_dataset: cannot close %s\n", out_path.c_str());
    rc = 1;
  }
  return rc;
}
