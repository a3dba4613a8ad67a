#include <gtest/gtest.h>
TEST(SimSmoke, Builds) { SUCCEED(); }
