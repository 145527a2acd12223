// Tests of learning-rate schedules: warmup ramp, decay end points, monotonicity.
#include <gtest/gtest.h>

#include "train/schedule.h"

using namespace stepwise;

TEST(Schedule, WarmupThenCosine) {
  LrSchedule s{"cosine", 1.0, 0.1, 10, 110};
  EXPECT_DOUBLE_EQ(s.at(1), 0.1);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_NEAR(s.at(60), 0.55, 1e-12);  // halfway: min + (max-min)/2
  EXPECT_NEAR(s.at(110), 0.1, 1e-12);
  EXPECT_NEAR(s.at(500), 0.1, 1e-12);
  for (int t = 11; t < 110; ++t) EXPECT_LE(s.at(t + 1), s.at(t));
}

TEST(Schedule, LinearAndConstant) {
  LrSchedule lin{"linear", 2.0, 0.0, 0, 100};
  EXPECT_NEAR(lin.at(50), 1.0, 1e-12);
  EXPECT_NEAR(lin.at(100), 0.0, 1e-12);
  LrSchedule c{"constant", 0.5, 0.0, 5, 100};
  EXPECT_DOUBLE_EQ(c.at(3), 0.3);
  EXPECT_DOUBLE_EQ(c.at(80), 0.5);
}
