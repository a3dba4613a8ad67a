#include <gtest/gtest.h>
#include "sim/cluster.h"
TEST(SimSmoke, Runs) { auto r = synod::sim::run_seed({}, 1); EXPECT_FALSE(r.violation) << *r.violation; }
