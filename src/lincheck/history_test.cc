// The JSON Lines reader: every field of HISTORY-FORMAT.md, comments, and errors that name the
// line; mutated and garbage input never crashes it.
#include "lincheck/history.h"

#include <gtest/gtest.h>

#include <random>

#include "lincheck/checker.h"

namespace synod::lincheck {
namespace {

constexpr std::string_view kExample = R"(# the example of HISTORY-FORMAT.md
{"client":3,"op":"put","key":"x","value":"7","call":1200,"return":1850,"ok":true}
{"client":4,"op":"get","key":"x","call":1300,"return":1900,"ok":true,"output":"7"}

// a comment in the other style
{"client":4,"op":"get","key":"y","call":2000,"return":2100,"ok":true,"found":false}
{"client":5,"op":"cas","key":"x","expect":"7","new":"8","call":2200,"return":2500,"ok":false}
{"client":6,"op":"del","key":"x","call":2600,"return":null}
{"client":7,"op":"cas","key":"z","expect_absent":true,"new":"1","call":3000,"return":3100,"ok":true}
{"client":8,"op":"put","key":"z","value":"2","call":3200,"return":3300,"error":"MOVED"}
)";

TEST(ParseHistory, ReadsEveryField) {
  Result<History> h = parse_history(kExample);
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  ASSERT_EQ(h->ops.size(), 7u);
  const Operation& put = h->ops[0];
  EXPECT_EQ(put.client, 3);
  EXPECT_EQ(put.kind, OpKind::kPut);
  EXPECT_EQ(put.key, "x");
  EXPECT_EQ(put.value, "7");
  EXPECT_EQ(put.call_ns, 1200);
  EXPECT_EQ(put.return_ns, 1850);
  EXPECT_TRUE(put.ok);
  EXPECT_EQ(put.line, 2);
  EXPECT_EQ(h->ops[1].output, "7");
  EXPECT_EQ(h->ops[2].found, false);
  EXPECT_EQ(h->ops[2].line, 6);
  const Operation& cas = h->ops[3];
  EXPECT_EQ(cas.expect, "7");
  EXPECT_EQ(cas.new_value, "8");
  EXPECT_FALSE(cas.ok);
  EXPECT_FALSE(cas.expect_absent);
  EXPECT_TRUE(h->ops[4].outcome_unknown());
  EXPECT_TRUE(h->ops[5].expect_absent);
  EXPECT_EQ(h->ops[6].error, "MOVED");
  EXPECT_FALSE(h->ops[6].ok);
}

TEST(ParseHistory, AbsentReturnIsUnknownAndOkIsThenOptional) {
  Result<History> h = parse_history(
      R"({"client":1,"op":"put","key":"x","value":"2","call":10})"
      "\n"
      R"({"client":1,"op":"put","key":"x","value":"2","call":10,"return":null,"ok":false})");
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  EXPECT_TRUE(h->ops[0].outcome_unknown());
  EXPECT_TRUE(h->ops[1].outcome_unknown());
}

TEST(ParseHistory, IgnoresUnknownFieldsAndCrLf) {
  Result<History> h = parse_history(
      "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"call\":1,\"return\":2,\"ok\":false,"
      "\"node\":\"n1\"}\r\n");
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  EXPECT_EQ(h->ops.size(), 1u);
}

struct BadLine {
  const char* json;
  const char* message;  // a piece of the expected error
};

class ParseHistoryRejects : public ::testing::TestWithParam<BadLine> {};

TEST_P(ParseHistoryRejects, NamingTheLine) {
  const std::string text = std::string("# ok\n") +
                           R"({"client":1,"op":"get","key":"k","call":1,"return":2,"ok":false})" +
                           "\n" + GetParam().json + "\n";
  Result<History> h = parse_history(text);
  ASSERT_FALSE(h.is_ok());
  EXPECT_EQ(h.status().message().rfind("line 3: ", 0), 0u) << h.status().message();
  EXPECT_NE(h.status().message().find(GetParam().message), std::string::npos)
      << h.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, ParseHistoryRejects,
    ::testing::Values(
        BadLine{R"({"client":1,"op":"get")", "not JSON"},
        BadLine{R"([1,2,3])", "not a JSON object"}, BadLine{R"("text")", "not a JSON object"},
        BadLine{R"({"op":"get","key":"k","call":1,"return":2,"ok":true,"output":"a"})",
                "missing \"client\""},
        BadLine{R"({"client":"1","op":"get","key":"k","call":1,"return":2,"ok":false})",
                "\"client\" must be an integer"},
        BadLine{R"({"client":1,"op":"incr","key":"k","call":1,"return":2,"ok":true})",
                "\"op\" must be get, put, cas, del or txn"},
        BadLine{R"({"client":1,"op":"txn","call":1,"return":2,"ok":true})", "needs \"parts\""},
        BadLine{R"({"client":1,"op":"txn","parts":[],"call":1,"return":2,"ok":true})",
                "needs \"parts\""},
        BadLine{
            R"({"client":1,"op":"txn","parts":[{"op":"txn","key":"a"}],"call":1,"return":2,"ok":true})",
            "a txn part's \"op\""},
        BadLine{
            R"({"client":1,"op":"txn","parts":[{"op":"get","key":"a"}],"call":1,"return":2,"ok":true})",
            "needs \"output\""},
        BadLine{
            R"({"client":1,"op":"txn","parts":[{"op":"put","key":"a","value":"1"}],"call":1,"return":2,"ok":false})",
            "exactly one cas part"},
        BadLine{R"({"client":1,"op":"get","key":7,"call":1,"return":2,"ok":false})",
                "\"key\" must be a string"},
        BadLine{R"({"client":1,"op":"put","key":"k","call":1,"return":2,"ok":true})",
                "missing \"value\""},
        BadLine{R"({"client":1,"op":"put","key":"k","value":3,"call":1,"return":2,"ok":true})",
                "\"value\" must be a string"},
        BadLine{R"({"client":1,"op":"cas","key":"k","new":"b","call":1,"return":2,"ok":true})",
                "missing \"expect\""},
        BadLine{R"({"client":1,"op":"cas","key":"k","expect":"a","call":1,"return":2,"ok":true})",
                "missing \"new\""},
        BadLine{
            R"({"client":1,"op":"cas","key":"k","expect":"a","expect_absent":true,"new":"b","call":1,"return":2,"ok":true})",
            "both"},
        BadLine{R"({"client":1,"op":"get","key":"k","return":2,"ok":false})", "missing \"call\""},
        BadLine{R"({"client":1,"op":"get","key":"k","call":1.5,"return":2,"ok":false})",
                "\"call\" must be an integer"},
        BadLine{R"({"client":1,"op":"get","key":"k","call":18446744073709551615,"ok":false})",
                "out of range"},
        BadLine{R"({"client":1,"op":"get","key":"k","call":5,"return":2,"ok":false})",
                "\"return\" is before \"call\""},
        BadLine{R"({"client":1,"op":"get","key":"k","call":1,"return":2})", "needs \"ok\""},
        BadLine{R"({"client":1,"op":"get","key":"k","call":1,"return":2,"ok":"yes"})",
                "\"ok\" must be true or false"},
        BadLine{R"({"client":1,"op":"get","key":"k","call":1,"return":2,"ok":true})",
                "needs \"output\""},
        BadLine{R"({"client":1,"op":"get","key":"k","call":1,"return":2,"ok":true,"output":1})",
                "\"output\" must be a string"},
        BadLine{R"({"client":1,"op":"put","key":"k","value":"v","call":1,"return":2,"error":5})",
                "\"error\" must be a string"}));

TEST(ParseHistory, RejectsOverlongLines) {
  const std::string text = "{\"client\":1,\"k\":\"" + std::string(kMaxLineBytes, 'a') + "\"}";
  Result<History> h = parse_history(text);
  ASSERT_FALSE(h.is_ok());
  EXPECT_NE(h.status().message().find("line 1: longer than"), std::string::npos);
}

TEST(ParseHistory, DeepNestingIsAnErrorNotACrash) {
  const std::string text = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_FALSE(parse_history(text).is_ok());
  EXPECT_FALSE(parse_history(std::string(100000, '[')).is_ok());
}

// Mutated lines (bytes flipped, inserted, deleted, cut short) and pure garbage: the parser
// either accepts a well-typed operation or names the line; the checker then runs on whatever
// was accepted without tripping an assertion.
TEST(ParseHistoryFuzz, MutatedAndGarbageLinesNeverCrash) {
  std::mt19937_64 rng(20240601);
  const std::string seed(kExample);
  static constexpr char kAlphabet[] = "{}[]\":,0123456789-.eEtruefalsnl \\u\x01\xff\xc3";
  size_t accepted = 0, rejected = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text = seed;
    const int edits = 1 + int(rng() % 8);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const size_t at = rng() % text.size();
      const char c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
      switch (rng() % 4) {
        case 0:
          text[at] = c;
          break;
        case 1:
          text.insert(text.begin() + long(at), c);
          break;
        case 2:
          text.erase(at, 1 + rng() % 6);
          break;
        default:
          text.resize(at);
      }
    }
    if (round % 10 == 0) {  // garbage
      text.clear();
      for (size_t i = rng() % 200; i > 0; --i) text += char(rng() % 256);
    }
    Result<History> h = parse_history(text);
    if (!h.is_ok()) {
      ++rejected;
      EXPECT_EQ(h.status().message().rfind("line ", 0), 0u) << h.status().message();
      continue;
    }
    ++accepted;
    for (const Operation& op : h->ops) {
      if (op.return_ns) {
        EXPECT_GE(*op.return_ns, op.call_ns);
      }
      EXPECT_FALSE(describe(op).empty());
    }
    const Verdict v = check(*h, Limits{1.0, 10000});
    EXPECT_FALSE(format_verdict(v).empty());
  }
  EXPECT_GT(accepted, 100u);
  EXPECT_GT(rejected, 100u);
}

}  // namespace
}  // namespace synod::lincheck
