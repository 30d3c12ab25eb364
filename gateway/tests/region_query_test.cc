// RegionService.QueryIndicators' request rewrite: the caller's region forced, small cells
// suppressed, another region refused.
#include "gateway/src/services.h"
#include "gtest/gtest.h"
#include "platform/testing/status_details.h"

namespace parcours::gateway {
namespace {

v1::QueryIndicatorsRequest Query(const std::string& filter) {
  v1::QueryIndicatorsRequest r;
  r.set_measure(cep::v1::MEASURE_ENTRIES);
  r.set_from_month("2017-01");
  r.set_to_month("2017-12");
  r.add_group_by(cep::v1::DIMENSION_SEX);
  r.set_total_over_period(true);
  r.set_filter(filter);
  return r;
}

TEST(RegionalQueryTest, ForcesTheRegionAndSuppression) {
  auto q = RegionalQuery("11", Query(""));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->filter(), "region = \"11\"");
  EXPECT_TRUE(q->suppress_small_cells());
  EXPECT_EQ(q->measure(), cep::v1::MEASURE_ENTRIES);
  EXPECT_EQ(q->from_month(), "2017-01");
  EXPECT_EQ(q->to_month(), "2017-12");
  ASSERT_EQ(q->group_by_size(), 1);
  EXPECT_EQ(q->group_by(0), cep::v1::DIMENSION_SEX);
  EXPECT_TRUE(q->total_over_period());

  auto filtered = RegionalQuery("11", Query("sex = FEMALE AND status = JOB_SEEKER"));
  ASSERT_TRUE(filtered.ok()) << filtered.status();
  EXPECT_EQ(filtered->filter(), "region = \"11\" AND sex = FEMALE AND status = JOB_SEEKER");
  // Naming its own region is redundant, not an error.
  auto own = RegionalQuery("11", Query("region = \"11\" AND sex = MALE"));
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->filter(), "region = \"11\" AND region = \"11\" AND sex = MALE");
}

TEST(RegionalQueryTest, AnotherRegionIsInvalidArgument) {
  for (const char* filter : {"region = \"53\"", "region = 53", "sex = FEMALE AND region = \"53\"", "region != \"11\"",
                             "region : \"1\"", "region >= \"00\""}) {
    auto q = RegionalQuery("11", Query(filter));
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument) << filter;
  }
  // Unparsable or unknown terms are refused too (with the filter field named).
  for (const char* filter : {"region = ", "nir = \"1\"", "sex = FEMALE OR region = \"53\""}) {
    auto q = RegionalQuery("11", Query(filter));
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument) << filter;
  }
}

}  // namespace
}  // namespace parcours::gateway
