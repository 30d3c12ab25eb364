// CepDataset: the synthetic national CEP (Conseil en évolution professionnelle) history, as
// parcours.cep.v1.ImportedCase rows, calibrated on the seed's figures (000_4320efba4660c936.txt:
// "5 791 059 entrées CEP entre le 1er janvier 2015 et le 31 juillet 2018 en niveaux 2 et 3",
// regions balanced with the active population, 52 % women, Pôle emploi three quarters of the
// entries, over 90 % job seekers, demands "faire le point" 22 % and "faire reconnaître ses
// compétences" 22 %).
//
// Rows are streamed one by one (memory stays flat) and are a pure function of (seed, total, row
// index): the same seed gives the same rows on every machine (own PRNG, xoshiro256** seeded by
// splitmix64; integer arithmetic only, no floating point, no std:: distributions). Row i can be
// computed on its own (Row()), so shards (row i goes to shard i % count) cost 1/count each.
//
// Rows are in opening-date order. Row i (0-based) has the case number n = i + 1:
//   external_id             "<operator>-<n>", e.g. "ft-17", "ml-53-18", "fongecif-11-19"
//                           (unique per operator, in fact unique in the whole dataset)
//   beneficiary_external_id "person-<m>", m = the case number of the person's first entry; about
//                           8 % of the rows are a later entry of an earlier person (same birth
//                           year, sex, department, qualification; opened after the earlier case
//                           was closed; the employment status is the one at each entry)
//   candidacy (VAE outcome) "candidacies/synthetic-<n>"
// The operator of a row is the external_id without its last "-<n>" (CepOperatorIdOf()).
//
// Calibration (integer shares out of 10,000; see cep_dataset.cc for every table):
//   - exactly `total` rows; openings 2015-01-01 .. 2018-07-31 on working days (Monday to Friday,
//     French public holidays excluded); months weighted by a 2015 ramp-up (45 % of the steady
//     rate in January 2015, 100 % in December, +4 % from 2017) times a seasonal profile (August
//     low, September-October high); monthly counts exact (largest remainder), the rows of a
//     month spread evenly over its working days;
//   - levels "2014/2" (about 80 %) and "2014/3" (about 20 %, more at APEC and Fongécif): the
//     seed gives no split; level 3 (accompaniment of the project) is the longer, rarer one;
//   - operators: Pôle emploi "ft" 75 %, Missions locales "ml-<region>" 12.5 %, APEC "apec"
//     4.5 %, Cap emploi "cap-<region>" 4 %, Opacif/Fongécif "fongecif-<region>" 4 %;
//   - status by operator, about 92.4 % job seekers overall, the rest mostly employees;
//   - 52 % women; ages 16..65 at opening (age = opening year - birth year; Missions locales
//     16..25); qualification level 0..8 by operator, capped by age;
//   - regions: the 18 INSEE regions in proportion to their active population (a low-discrepancy
//     sequence, so even small regions such as Mayotte are within a few % of their share), the
//     department drawn within the region by population;
//   - demands: PROJECT on every case, TAKE_STOCK 22 %, SKILLS_RECOGNITION 22 %;
//   - 1..4 distinct services of the panier, dated from the opening to the closing (or to the
//     extraction date 2018-09-30 for cases still open);
//   - closing 2 weeks .. 4.5 months after opening for level 2 (mean 2.5 months), 1.5 .. 9.5
//     months for level 3 (mean 5.5 months); cases that would close after the extraction date are
//     still open (no closing date): only recent ones, about 3 % of the rows;
//   - one outcome on about 40 % of the closed cases (training, job, VAE, business creation,
//     none), dated within the case.
#ifndef PARCOURS_BENCH_CEP_DATASET_H_
#define PARCOURS_BENCH_CEP_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "parcours/cep/v1/cep.pb.h"

namespace parcours::bench {

class CepRng;  // the dataset's own PRNG (xoshiro256**), defined in cep_dataset.cc

// The seed's count of level-2/3 entries from 2015-01-01 to 2018-07-31.
inline constexpr int64_t kCepSeedEntries = 5791059;

// Dates as yyyymmdd integers.
inline constexpr int32_t kCepFirstOpening = 20150101;
inline constexpr int32_t kCepLastOpening = 20180731;
// The back-office extraction date: later closings are not known yet (the case is still open).
inline constexpr int32_t kCepExtractionDate = 20180930;

// Months of openings: index 0 = 2015-01 .. 42 = 2018-07.
inline constexpr int kCepMonths = 43;

// Calibrated shares, per 10,000 rows.
inline constexpr int kCepWomenPer10k = 5200;
inline constexpr int kCepFranceTravailPer10k = 7500;
inline constexpr int kCepTakeStockPer10k = 2200;
inline constexpr int kCepSkillsRecognitionPer10k = 2200;
// Rows drawn as a later entry of an earlier person. About 7 % of the draws find no earlier
// person that fits (first case closed before this opening, age, Mission locale 16..25) and fall
// back to a new person: about 8.0 % of the rows are realised as later entries.
inline constexpr int kCepRepeatPer10k = 860;

// The 18 INSEE regions, in the order of the calibration tables.
struct CepRegion {
  const char* code;  // INSEE region code, e.g. "53"
  const char* name;
  // Active population, thousands (approximate, INSEE, Estimations d'emploi / population active,
  // 2015-2017 order of magnitude).
  int32_t active_population_k;
};
const std::vector<CepRegion>& CepRegions();

// Every operator the dataset uses (to create them before an import).
struct CepOperator {
  std::string id;  // "ft", "apec", "ml-53", "cap-53", "fongecif-53"
  std::string display_name;
  parcours::cep::v1::OperatorKind kind;
  std::vector<std::string> regions;  // INSEE codes served (every region for national networks)
};
std::vector<CepOperator> CepOperators();

// "ml-53-1234" -> "ml-53"; "ft-17" -> "ft". Empty if there is no '-'.
std::string CepOperatorIdOf(const std::string& external_id);
// The kind behind an operator id ("ft" -> FRANCE_TRAVAIL, "ml-53" -> MISSION_LOCALE, ...).
parcours::cep::v1::OperatorKind CepOperatorKindOf(const std::string& operator_id);

class CepDataset {
 public:
  explicit CepDataset(uint64_t seed, int64_t total = kCepSeedEntries);

  // Restricts Next() to the rows i with i % count == index (0 <= index < count), so that
  // several import streams split the dataset deterministically. Restarts the stream: call it
  // before the first Next().
  CepDataset& Shard(int index, int count);

  // The next row of this shard into *row (every field is overwritten; the message's
  // allocations are reused). False once the shard is exhausted.
  bool Next(parcours::cep::v1::ImportedCase* row);

  // Row `index` (0 <= index < total()) of the whole dataset, whatever the shard. If
  // `operator_id` is set, it receives the row's operator id.
  void Row(int64_t index, parcours::cep::v1::ImportedCase* row,
           std::string* operator_id = nullptr) const;

  // Rows returned by Next() so far.
  int64_t produced() const { return produced_; }
  int64_t total() const { return total_; }
  uint64_t seed() const { return seed_; }
  // Index in the whole dataset of the last row Next() returned (-1 before the first).
  int64_t last_index() const { return last_index_; }
  // Operator of the last row Next() returned.
  const std::string& operator_id() const { return operator_id_; }

  // Exact number of openings in month m (0 = 2015-01 .. kCepMonths - 1 = 2018-07).
  int64_t MonthCount(int m) const { return months_[m].count; }

 private:
  struct Month {
    int year = 0;
    int month = 0;
    int64_t first = 0;  // index of its first row
    int64_t count = 0;
    std::vector<int32_t> workdays;  // days since 1970-01-01
  };
  struct Core;
  struct Person;

  int MonthOf(int64_t index) const;
  Core CoreOf(int64_t index, CepRng* rng) const;
  Person PersonOf(int64_t index, const Core& core) const;

  uint64_t seed_;
  uint64_t key_;
  uint64_t region_offset_;
  int64_t total_;
  int64_t repeat_window_;
  std::vector<Month> months_;
  // operator_ids_[op][region].
  std::vector<std::vector<std::string>> operator_ids_;

  int shard_index_ = 0;
  int shard_count_ = 1;
  int64_t next_index_ = 0;
  int64_t produced_ = 0;
  int64_t last_index_ = -1;
  std::string operator_id_;
};

}  // namespace parcours::bench

#endif  // PARCOURS_BENCH_CEP_DATASET_H_
