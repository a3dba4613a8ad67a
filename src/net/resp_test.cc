// The RESP parser and writer: requests split at every byte boundary, pipelining, inline
// commands, every malformed framing, hostile lengths, and random garbage (fuzz).
#include "net/resp.h"

#include <gtest/gtest.h>

#include "base/rng.h"

namespace synod::net {
namespace {

using Args = std::vector<std::string>;

std::vector<Args> parse_all(RespParser& p) {
  std::vector<Args> out;
  Args args;
  std::string error;
  while (p.next(args, error) == RespParser::Status::kRequest) out.push_back(args);
  return out;
}

TEST(Resp, ParsesArraysAtEveryByteBoundaryAndPipelined) {
  const std::string wire =
      "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nx!\r\n"  // a value with CR LF inside
      "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
      "*1\r\n$0\r\n\r\n";
  const std::vector<Args> want = {{"SET", "k", "v\r\nx!"}, {"GET", "k"}, {""}};
  for (size_t split = 0; split <= wire.size(); ++split) {
    RespParser p;
    p.feed(wire.substr(0, split));
    auto got = parse_all(p);
    p.feed(wire.substr(split));
    auto rest = parse_all(p);
    got.insert(got.end(), rest.begin(), rest.end());
    EXPECT_EQ(got, want) << "split at " << split;
    EXPECT_EQ(p.buffered(), 0u);
  }
  // One byte at a time.
  RespParser p;
  std::vector<Args> got;
  for (char c : wire) {
    p.feed(std::string_view(&c, 1));
    auto some = parse_all(p);
    got.insert(got.end(), some.begin(), some.end());
  }
  EXPECT_EQ(got, want);
}

TEST(Resp, ParsesInlineCommands) {
  RespParser p;
  p.feed("PING\r\nset  k \"a b\\n\\x41\" 'c d'\n\r\n  \nGET k\r\n");
  EXPECT_EQ(parse_all(p),
            (std::vector<Args>{{"PING"}, {"set", "k", "a b\nA", "c d"}, {"GET", "k"}}));
}

TEST(Resp, MalformedRequestsGetRedisStyleErrors) {
  struct Case {
    std::string wire;
    std::string error;
  } cases[] = {
      {"*x\r\n", "ERR Protocol error: invalid multibulk length"},
      {"*99999999999\r\n", "ERR Protocol error: invalid multibulk length"},
      {"*1\r\n:5\r\n", "ERR Protocol error: expected '$', got ':'"},
      {"*1\r\n$-3\r\n", "ERR Protocol error: invalid bulk length"},
      {"*1\r\n$abc\r\n", "ERR Protocol error: invalid bulk length"},
      {"*1\r\n$999999999999\r\n", "ERR Protocol error: invalid bulk length"},
      {"*1\r\n$2\r\nabcd\r\n", "ERR Protocol error: bulk string not terminated by CRLF"},
      {"SET \"k v\r\n", "ERR Protocol error: unbalanced quotes in request"},
      {std::string(70000, 'a'), "ERR Protocol error: too big inline request"},
      {"*1" + std::string(100, '1'), "ERR Protocol error: invalid multibulk length"},
  };
  for (const auto& c : cases) {
    RespParser p;
    p.feed(c.wire);
    Args args;
    std::string error;
    EXPECT_EQ(p.next(args, error), RespParser::Status::kError) << c.wire.substr(0, 40);
    EXPECT_EQ(error, c.error) << c.wire.substr(0, 40);
  }
}

// Finding 7: one request is bounded in total bytes, not only per argument, and the parser refuses
// it as soon as its declared sizes exceed the limit — before buffering what they announce.
TEST(Resp, ARequestAboveTheQueryBufferLimitIsRefusedBeforeItsBytesArrive) {
  RespLimits limits;
  limits.max_request_bytes = 1000;
  const std::string too_big =
      "ERR Protocol error: request larger than the query buffer limit "
      "(1000 bytes)";
  auto bulk = [](size_t n) {
    return "$" + std::to_string(n) + "\r\n" + std::string(n, 'x') + "\r\n";
  };
  {  // Exactly at the limit: served.
    const std::string head = "*2\r\n$3\r\nSET\r\n";
    const size_t n = 1000 - head.size() - 8;  // "$NNN\r\n" + "\r\n"
    RespParser p(limits);
    p.feed(head + bulk(n));
    ASSERT_EQ(head.size() + bulk(n).size(), 1000u);
    EXPECT_EQ(parse_all(p).size(), 1u);
  }
  {  // One argument announcing more: refused at its length line, nothing of it buffered.
    RespParser p(limits);
    p.feed("*2\r\n$3\r\nSET\r\n$995\r\n");
    Args args;
    std::string error;
    EXPECT_EQ(p.next(args, error), RespParser::Status::kError);
    EXPECT_EQ(error, too_big);
  }
  {  // Many small arguments that add up: refused once they pass the limit.
    RespParser p(limits);
    std::string wire = "*100\r\n";
    for (int k = 0; k < 100; ++k) wire += bulk(20);
    Args args;
    std::string error;
    RespParser::Status status = RespParser::Status::kNeedMore;
    for (size_t at = 0; at < wire.size() && status == RespParser::Status::kNeedMore; at += 64) {
      p.feed(wire.substr(at, 64));
      EXPECT_LE(p.buffered(), 1000u + 64);
      status = p.next(args, error);
    }
    EXPECT_EQ(status, RespParser::Status::kError);
    EXPECT_EQ(error, too_big);
  }
  {  // A count whose smallest possible arguments would not fit: refused at once.
    RespParser p(limits);
    p.feed("*200\r\n");
    Args args;
    std::string error;
    EXPECT_EQ(p.next(args, error), RespParser::Status::kError);
    EXPECT_EQ(error, too_big);
  }
}

TEST(Resp, IncompleteRequestsWait) {
  for (std::string wire :
       {"*2\r\n$3\r\nGET\r\n", "*2\r\n$3\r\nGET\r\n$1\r\n", "*2\r\n$3\r\nGE", "*2\r", "GET k"}) {
    RespParser p;
    p.feed(wire);
    Args args;
    std::string error;
    EXPECT_EQ(p.next(args, error), RespParser::Status::kNeedMore) << wire;
  }
}

TEST(Resp, WritesRESP2AndRESP3) {
  RespWriter w2(2), w3(3);
  for (RespWriter* w : {&w2, &w3}) {
    w->simple("OK");
    w->error("ERR bad\r\nthing");
    w->integer(-7);
    w->bulk("a\r\nb");
    w->null();
    w->map(1);
    w->bulk("k");
    w->boolean(true);
  }
  EXPECT_EQ(w2.data(),
            "+OK\r\n-ERR bad  thing\r\n:-7\r\n$4\r\na\r\nb\r\n$-1\r\n*2\r\n$1\r\nk\r\n:1\r\n");
  EXPECT_EQ(w3.data(),
            "+OK\r\n-ERR bad  thing\r\n:-7\r\n$4\r\na\r\nb\r\n_\r\n%1\r\n$1\r\nk\r\n#t\r\n");
}

TEST(Resp, FuzzedInputNeverCrashesAndValidRequestsRoundTrip) {
  Rng rng(42);
  for (int i = 0; i < 20000; ++i) {
    // A valid request, mutated or not, then garbage.
    RespWriter w;
    const size_t n = 1 + rng.below(4);
    w.array(n);
    Args sent;
    for (size_t a = 0; a < n; ++a) {
      std::string s(rng.below(20), '\0');
      for (auto& c : s) c = static_cast<char>(rng.below(256));
      sent.push_back(s);
      w.bulk(s);
    }
    std::string wire = w.take();
    const bool mutate = rng.chance(0.5);
    if (mutate) {
      for (int m = 0; m < 3; ++m) wire[rng.below(wire.size())] = static_cast<char>(rng.below(256));
    }
    RespParser p({.max_bulk_bytes = 1 << 10, .max_arguments = 64, .max_inline_bytes = 256});
    p.feed(wire);
    Args args;
    std::string error;
    auto status = p.next(args, error);
    if (!mutate) {
      ASSERT_EQ(status, RespParser::Status::kRequest);
      EXPECT_EQ(args, sent);
    }
    // Keep going on whatever is left, as a connection would until an error.
    for (int k = 0; k < 10 && status == RespParser::Status::kRequest; ++k)
      status = p.next(args, error);
    if (status == RespParser::Status::kError) {
      EXPECT_EQ(error.rfind("ERR Protocol error", 0), 0u);
    }
  }
}

}  // namespace
}  // namespace synod::net
