#include <gtest/gtest.h>
#include "paxos/replica.h"
TEST(Smoke, Builds) { SUCCEED(); }
