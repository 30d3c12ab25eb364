#include "bench/cep_dataset.h"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace parcours::bench {
namespace {

namespace pb = ::parcours::cep::v1;

int32_t Ymd(const google::type::Date& d) { return d.year() * 10000 + d.month() * 100 + d.day(); }

std::vector<std::string> Serialized(CepDataset& ds, int n) {
  std::vector<std::string> rows;
  pb::ImportedCase row;
  for (int i = 0; i < n && ds.Next(&row); ++i) rows.push_back(row.SerializeAsString());
  return rows;
}

TEST(CepDatasetTest, SameSeedSameRowsOtherSeedOtherRows) {
  CepDataset a(20150101);
  CepDataset b(20150101);
  CepDataset c(20150102);
  const std::vector<std::string> ra = Serialized(a, 10000);
  const std::vector<std::string> rb = Serialized(b, 10000);
  const std::vector<std::string> rc = Serialized(c, 10000);
  ASSERT_EQ(ra.size(), 10000u);
  EXPECT_EQ(ra, rb);
  ASSERT_EQ(rc.size(), 10000u);
  int differing = 0;
  for (size_t i = 0; i < ra.size(); ++i) differing += ra[i] != rc[i];
  EXPECT_GT(differing, 9000);
  EXPECT_EQ(a.produced(), 10000);
}

TEST(CepDatasetTest, RandomAccessMatchesStream) {
  CepDataset ds(7, 50000);
  pb::ImportedCase streamed;
  pb::ImportedCase direct;
  std::string op;
  for (int64_t i = 0; i < 3000; ++i) {
    ASSERT_TRUE(ds.Next(&streamed));
    ASSERT_EQ(ds.last_index(), i);
    ds.Row(i, &direct, &op);
    ASSERT_EQ(streamed.SerializeAsString(), direct.SerializeAsString()) << i;
    EXPECT_EQ(op, ds.operator_id());
    EXPECT_EQ(op, CepOperatorIdOf(streamed.external_id()));
  }
  // A reused message is fully overwritten: row 40000 into a message holding row 2999.
  ds.Row(40000, &streamed);
  pb::ImportedCase fresh;
  ds.Row(40000, &fresh);
  EXPECT_EQ(streamed.SerializeAsString(), fresh.SerializeAsString());
}

TEST(CepDatasetTest, ExactTotals) {
  for (int64_t total :
       {int64_t{0}, int64_t{1}, int64_t{42}, int64_t{43}, int64_t{1000}, int64_t{200001}}) {
    CepDataset ds(1, total);
    int64_t months = 0;
    for (int m = 0; m < kCepMonths; ++m) months += ds.MonthCount(m);
    EXPECT_EQ(months, total);
    pb::ImportedCase row;
    int64_t n = 0;
    while (ds.Next(&row)) ++n;
    EXPECT_EQ(n, total);
    EXPECT_EQ(ds.produced(), total);
  }
  // The full dataset's months add up to the seed's figure, with a 2015 ramp-up.
  CepDataset full(20150101);
  int64_t sum = 0;
  for (int m = 0; m < kCepMonths; ++m) sum += full.MonthCount(m);
  EXPECT_EQ(sum, 5791059);
  EXPECT_LT(full.MonthCount(0), full.MonthCount(12));  // 2015-01 < 2016-01
}

TEST(CepDatasetTest, ShardsPartitionTheRows) {
  constexpr int64_t kTotal = 30000;
  CepDataset whole(99, kTotal);
  std::vector<std::string> ids;
  std::vector<std::string> serialized;
  pb::ImportedCase row;
  while (whole.Next(&row)) {
    ids.push_back(row.external_id());
    serialized.push_back(row.SerializeAsString());
  }
  ASSERT_EQ(static_cast<int64_t>(ids.size()), kTotal);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());

  std::set<std::string> united;
  int64_t produced = 0;
  for (int s = 0; s < 3; ++s) {
    CepDataset shard(99, kTotal);
    shard.Shard(s, 3);
    int64_t k = 0;
    while (shard.Next(&row)) {
      const int64_t i = s + 3 * k;
      ASSERT_EQ(shard.last_index(), i);
      ASSERT_EQ(row.SerializeAsString(), serialized[static_cast<size_t>(i)]) << "row " << i;
      EXPECT_TRUE(united.insert(row.external_id()).second) << row.external_id();
      ++k;
    }
    EXPECT_EQ(shard.produced(), k);
    produced += k;
  }
  EXPECT_EQ(produced, kTotal);
  EXPECT_EQ(united, std::set<std::string>(ids.begin(), ids.end()));
}

TEST(CepDatasetTest, CalibratedSharesAndValidRows) {
  constexpr int64_t kTotal = 200000;
  CepDataset ds(20150101, kTotal);
  std::set<std::string> operator_ids;
  for (const CepOperator& op : CepOperators()) operator_ids.insert(op.id);
  std::map<std::string, int64_t> per_region;
  int64_t rows = 0, women = 0, ft = 0, job_seekers = 0, take_stock = 0, skills = 0, project = 0;
  int64_t closed = 0, with_outcome = 0, repeats = 0;
  struct First {
    int32_t birth_year;
    pb::Sex sex;
    std::string department;
    int32_t closing;
  };
  std::map<std::string, First> people;
  std::set<std::string> external_ids;
  pb::ImportedCase r;
  while (ds.Next(&r)) {
    ++rows;
    SCOPED_TRACE(r.external_id());
    const pb::Beneficiary& b = r.beneficiary();
    ASSERT_FALSE(r.external_id().empty());
    ASSERT_FALSE(r.beneficiary_external_id().empty());
    ASSERT_TRUE(external_ids.insert(r.external_id()).second);
    ASSERT_EQ(CepOperatorIdOf(r.external_id()), ds.operator_id());
    ASSERT_TRUE(operator_ids.count(ds.operator_id()));
    const pb::OperatorKind kind = CepOperatorKindOf(ds.operator_id());
    ASSERT_NE(kind, pb::OPERATOR_KIND_UNSPECIFIED);
    if (kind == pb::OPERATOR_KIND_FRANCE_TRAVAIL) ++ft;
    if (kind == pb::OPERATOR_KIND_MISSION_LOCALE || kind == pb::OPERATOR_KIND_CAP_EMPLOI ||
        kind == pb::OPERATOR_KIND_OPACIF_FONGECIF) {
      ASSERT_EQ(ds.operator_id().substr(ds.operator_id().find('-') + 1), b.region());
    }

    const int32_t opening = Ymd(r.opening_date());
    ASSERT_GE(opening, kCepFirstOpening);
    ASSERT_LE(opening, kCepLastOpening);
    ASSERT_TRUE(r.level() == "2014/2" || r.level() == "2014/3");
    const int age = r.opening_date().year() - b.birth_year();
    ASSERT_GE(age, 16);
    ASSERT_LE(age, 65);
    if (kind == pb::OPERATOR_KIND_MISSION_LOCALE) {
      ASSERT_LE(age, 25);
    }
    ASSERT_GE(b.qualification_level(), 0);
    ASSERT_LE(b.qualification_level(), 8);
    ASSERT_NE(b.sex(), pb::SEX_UNSPECIFIED);
    ASSERT_NE(b.status(), pb::EMPLOYMENT_STATUS_UNSPECIFIED);
    ASSERT_FALSE(b.department().empty());
    ASSERT_TRUE(b.name().empty());
    if (b.sex() == pb::SEX_FEMALE) ++women;
    if (b.status() == pb::EMPLOYMENT_STATUS_JOB_SEEKER) ++job_seekers;

    ASSERT_GE(r.demands_size(), 1);
    ASSERT_EQ(r.demands(0), pb::DEMAND_KIND_PROJECT);
    for (int d : r.demands()) {
      project += d == pb::DEMAND_KIND_PROJECT;
      take_stock += d == pb::DEMAND_KIND_TAKE_STOCK;
      skills += d == pb::DEMAND_KIND_SKILLS_RECOGNITION;
    }

    const int32_t end = r.has_closing_date() ? Ymd(r.closing_date()) : kCepExtractionDate;
    if (r.has_closing_date()) {
      ++closed;
      ASSERT_LE(opening, end);
      ASSERT_LE(end, kCepExtractionDate);
      ASSERT_FALSE(r.closing_reason().empty());
    } else {
      ASSERT_TRUE(r.closing_reason().empty());
      ASSERT_EQ(r.outcomes_size(), 0);
      ASSERT_GE(opening, 20171201) << "only recent cases are still open";
    }
    ASSERT_GE(r.services_size(), 1);
    ASSERT_LE(r.services_size(), 4);
    std::set<int> kinds;
    int32_t previous = opening;
    for (const pb::DeliveredService& s : r.services()) {
      ASSERT_NE(s.kind(), pb::SERVICE_KIND_UNSPECIFIED);
      ASSERT_TRUE(kinds.insert(s.kind()).second);
      ASSERT_GE(Ymd(s.date()), previous);
      ASSERT_LE(Ymd(s.date()), end);
      previous = Ymd(s.date());
    }
    for (const pb::Outcome& o : r.outcomes()) {
      ++with_outcome;
      ASSERT_NE(o.kind(), pb::OUTCOME_KIND_UNSPECIFIED);
      ASSERT_GE(Ymd(o.date()), opening);
      ASSERT_LE(Ymd(o.date()), end);
      if (o.kind() == pb::OUTCOME_KIND_VAE) {
        ASSERT_EQ(o.candidacy(), "candidacies/synthetic-" +
                                     r.external_id().substr(r.external_id().rfind('-') + 1));
      } else {
        ASSERT_TRUE(o.candidacy().empty());
      }
    }

    // Several entries of one person: same attributes, the earlier case closed before.
    const auto it = people.find(r.beneficiary_external_id());
    if (it == people.end()) {
      people[r.beneficiary_external_id()] = {
          b.birth_year(), b.sex(), b.department(),
          r.has_closing_date() ? Ymd(r.closing_date()) : 99991231};
    } else {
      ++repeats;
      ASSERT_EQ(it->second.birth_year, b.birth_year());
      ASSERT_EQ(it->second.sex, b.sex());
      ASSERT_EQ(it->second.department, b.department());
      ASSERT_LT(it->second.closing, opening);
    }
    ++per_region[b.region()];
  }
  ASSERT_EQ(rows, kTotal);

  auto share = [&](int64_t n) {
    return 100.0 * static_cast<double>(n) / static_cast<double>(rows);
  };
  EXPECT_NEAR(share(women), 52.0, 1.0);
  EXPECT_NEAR(share(ft), 75.0, 1.0);
  EXPECT_GT(share(job_seekers), 90.0);
  EXPECT_EQ(project, rows);
  EXPECT_NEAR(share(take_stock), 22.0, 1.0);
  EXPECT_NEAR(share(skills), 22.0, 1.0);
  EXPECT_GT(share(closed), 80.0);
  EXPECT_LT(share(closed), 100.0);
  EXPECT_GT(with_outcome, closed / 4);
  EXPECT_LT(with_outcome, closed * 3 / 5);
  EXPECT_GT(share(repeats), 6.0);
  EXPECT_LT(share(repeats), 9.0);

  int64_t active_total = 0;
  for (const CepRegion& region : CepRegions()) active_total += region.active_population_k;
  ASSERT_EQ(CepRegions().size(), 18u);
  ASSERT_EQ(per_region.size(), 18u);
  for (const CepRegion& region : CepRegions()) {
    const double target =
        static_cast<double>(region.active_population_k) / static_cast<double>(active_total);
    const double actual = static_cast<double>(per_region[region.code]) / static_cast<double>(rows);
    EXPECT_NEAR(actual / target, 1.0, 0.10) << region.code << " " << region.name;
  }
}

TEST(CepDatasetTest, OperatorHelpers) {
  EXPECT_EQ(CepOperatorIdOf("ft-17"), "ft");
  EXPECT_EQ(CepOperatorIdOf("ml-53-18"), "ml-53");
  EXPECT_EQ(CepOperatorIdOf("fongecif-11-19"), "fongecif-11");
  EXPECT_EQ(CepOperatorKindOf("ft"), pb::OPERATOR_KIND_FRANCE_TRAVAIL);
  EXPECT_EQ(CepOperatorKindOf("apec"), pb::OPERATOR_KIND_APEC);
  EXPECT_EQ(CepOperatorKindOf("ml-53"), pb::OPERATOR_KIND_MISSION_LOCALE);
  EXPECT_EQ(CepOperatorKindOf("cap-06"), pb::OPERATOR_KIND_CAP_EMPLOI);
  EXPECT_EQ(CepOperatorKindOf("fongecif-94"), pb::OPERATOR_KIND_OPACIF_FONGECIF);
  EXPECT_EQ(CepOperatorKindOf("x"), pb::OPERATOR_KIND_UNSPECIFIED);
  EXPECT_EQ(CepOperators().size(), 2u + 3u * 18u);
}

}  // namespace
}  // namespace parcours::bench
