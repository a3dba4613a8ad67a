// The chaos harness's pure parts: reply classification, the history's JSON Lines (read back by
// the checker's own parser), the key budget, the fault list and the lost-write rules. The runs
// against real processes are in cmake/chaos_tests.cmake.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "chaos/final_reads.h"
#include "chaos/history_recorder.h"
#include "chaos/nemesis.h"
#include "chaos/workload.h"

namespace synod::chaos {
namespace {

using lincheck::Operation;
using lincheck::OpKind;

Operation make(OpKind kind, int64_t client = 1) {
  Operation op;
  op.kind = kind;
  op.client = client;
  op.key = "k0";
  return op;
}

Operation put(const std::string& v, int64_t call, std::optional<int64_t> ret, bool ok = true) {
  Operation op = make(OpKind::kPut);
  op.value = v;
  op.call_ns = call;
  op.return_ns = ret;
  op.ok = ret && ok;
  return op;
}

Operation final_get(std::optional<std::string> v, int64_t call) {
  Operation op = make(OpKind::kGet, 99);
  op.call_ns = call;
  op.return_ns = call + 1;
  op.ok = true;
  op.found = v.has_value();
  op.output = v.value_or("");
  return op;
}

TEST(RecordReply, ErrorsAreDefiniteOrUnknownAsTheServerSays) {
  Operation op = make(OpKind::kPut);
  record_reply(op, kv::Reply::error("TRYAGAIN no leader"), 7);
  EXPECT_EQ(op.return_ns, 7);
  EXPECT_EQ(op.error, "TRYAGAIN no leader");
  record_reply(op, kv::Reply::error("UNKNOWN may have happened"), 8);
  EXPECT_TRUE(op.outcome_unknown());
  EXPECT_FALSE(op.error);
  record_reply(op, Status::io_error("timed out"), 9);
  EXPECT_TRUE(op.outcome_unknown());
  record_reply(op, kv::Reply::ok(), 10);
  EXPECT_TRUE(op.ok);
  EXPECT_EQ(op.return_ns, 10);
}

TEST(RecordReply, CasNilIsAMismatchAndGetNilIsMissing) {
  Operation cas = make(OpKind::kCas);
  record_reply(cas, kv::Reply::null(), 5);
  EXPECT_EQ(cas.return_ns, 5);
  EXPECT_FALSE(cas.ok);
  EXPECT_FALSE(cas.error);
  Operation get = make(OpKind::kGet);
  record_reply(get, kv::Reply::null(), 5);
  EXPECT_TRUE(get.ok);
  EXPECT_EQ(get.found, false);
  record_reply(get, kv::Reply::bulk("c1-1"), 6);
  EXPECT_EQ(get.found, true);
  EXPECT_EQ(get.output, "c1-1");
  Operation del = make(OpKind::kDel);
  record_reply(del, kv::Reply::integer_of(1), 5);
  EXPECT_TRUE(del.ok);
  EXPECT_EQ(del.found, true);
  // A reply of the wrong shape proves nothing: unknown.
  record_reply(del, kv::Reply::bulk("?"), 6);
  EXPECT_TRUE(del.outcome_unknown());
}

TEST(Commands, CasUsesIfeqOrNx) {
  Operation cas = make(OpKind::kCas);
  cas.expect = "a";
  cas.new_value = "b";
  EXPECT_EQ(command_for(cas), (std::vector<std::string>{"SET", "k0", "b", "IFEQ", "a"}));
  cas.expect_absent = true;
  EXPECT_EQ(command_for(cas), (std::vector<std::string>{"SET", "k0", "b", "NX"}));
}

TEST(HistoryLines, EveryKindReadsBackThroughTheCheckersParser) {
  std::vector<Operation> ops;
  ops.push_back(put("c1-1", 10, 20));
  ops.push_back(put("c1-2", 30, std::nullopt));
  Operation failed = put("c1-3", 40, 50, false);
  failed.error = "TRYAGAIN no leader";
  ops.push_back(failed);
  Operation cas = make(OpKind::kCas);
  cas.expect_absent = true;
  cas.new_value = "c1-4";
  cas.call_ns = 60;
  cas.return_ns = 70;
  ops.push_back(cas);
  ops.push_back(final_get("c1-\"4\"", 80));
  ops.push_back(final_get(std::nullopt, 90));
  Operation del = make(OpKind::kDel);
  del.call_ns = 100;
  del.return_ns = 110;
  del.ok = true;
  del.found = false;
  ops.push_back(del);
  for (const Operation& op : ops) {
    auto back = lincheck::parse_operation(to_json_line(op), 1);
    ASSERT_TRUE(back.is_ok()) << to_json_line(op) << ": " << back.status().to_string();
    EXPECT_EQ(back->kind, op.kind);
    EXPECT_EQ(back->value, op.value);
    EXPECT_EQ(back->new_value, op.new_value);
    EXPECT_EQ(back->expect_absent, op.expect_absent);
    EXPECT_EQ(back->return_ns, op.return_ns);
    EXPECT_EQ(back->ok, op.ok);
    EXPECT_EQ(back->found, op.found);
    EXPECT_EQ(back->output, op.output);
    EXPECT_EQ(back->error, op.error);
  }
  HistoryRecorder r;
  for (const Operation& op : ops) r.add(op);
  const OutcomeCounts c = count_outcomes(r.history());
  EXPECT_EQ(c.total, 7u);
  EXPECT_EQ(c.unknown, 1u);
  EXPECT_EQ(c.failed, 1u);
  EXPECT_EQ(c.acknowledged, 5u);
}

TEST(KeyBudget, UsesAFewKeysAtATimeAndEachAtMostItsShare) {
  KeyBudget budget(10, 5, 2);
  Rng rng(1);
  std::map<int, int> taken;
  for (int i = 0; i < 10; ++i) {
    const int k = budget.claim(rng);
    EXPECT_LT(k, 3) << "only the first two keys with budget are in use";
    ++taken[k];
  }
  for (int i = 10; i < 50; ++i) ++taken[budget.claim(rng)];
  for (const auto& [k, n] : taken) EXPECT_LE(n, 5) << "k" << k;
  EXPECT_EQ(taken[0], 5);
}

// A spent budget once ended the clients (and the run) early, before any fault: 24 keys' budget
// went in a second of a 60 s run. Fresh keys follow instead, each with its own budget.
TEST(KeyBudget, FreshKeysFollowOnceTheFirstOnesAreSpent) {
  KeyBudget budget(2, 3, 4);  // more active keys asked for than keys: two at a time
  Rng rng(7);
  std::map<int, int> taken;
  for (int i = 0; i < 300; ++i) {
    const int k = budget.claim(rng);
    ++taken[k];
    EXPECT_LT(k, i / 3 + 2) << "a key opened before the ones before it were spent";
  }
  EXPECT_EQ(budget.keys_used(), 101);  // 100 spent, and the one opened by the last claim
  for (const auto& [k, n] : taken) EXPECT_LE(n, 3) << "k" << k;
  EXPECT_EQ(taken.size(), 101u);
}

TEST(FaultList, ParsesEveryKindIncludingClock) {
  auto all = parse_fault_list("kill,pause,partition,restart-all,kill");
  ASSERT_TRUE(all.is_ok());
  EXPECT_EQ(all->size(), 4u);
  auto clock = parse_fault_list("kill,clock");
  ASSERT_TRUE(clock.is_ok());
  EXPECT_EQ(*clock, (std::vector<FaultKind>{FaultKind::kKill, FaultKind::kClock}));
  auto replace = parse_fault_list("kill,pause,partition,replace");
  ASSERT_TRUE(replace.is_ok());
  EXPECT_EQ(replace->back(), FaultKind::kReplace);
  EXPECT_EQ(fault_name(FaultKind::kReplace), "replace");
  EXPECT_FALSE(parse_fault_list("kill,bogus").is_ok());
  EXPECT_FALSE(parse_fault_list("").is_ok());
}

FinalReadReport check(std::vector<Operation> ops) {
  return check_final_reads(lincheck::History{std::move(ops)}, 99, {"k0"});
}

TEST(FinalReads, TheLastAcknowledgedPutMustBeRead) {
  EXPECT_TRUE(check({put("a", 10, 20), put("b", 30, 40), final_get("b", 100)}).lost.empty());
  const auto lost = check({put("a", 10, 20), put("b", 30, 40), final_get("a", 100)});
  ASSERT_EQ(lost.lost.size(), 1u);
  EXPECT_NE(lost.lost[0].find("last write"), std::string::npos) << lost.lost[0];
}

TEST(FinalReads, AnUnknownOrOverlappingWriteMayBeLast) {
  EXPECT_TRUE(
      check({put("a", 10, 20), put("b", 30, std::nullopt), final_get("a", 100)}).lost.empty());
  EXPECT_TRUE(check({put("a", 10, 40), put("b", 30, 50), final_get("a", 100)}).lost.empty());
}

TEST(FinalReads, AValueNoWriteProducedOrAMissingKeyWithoutDelIsLost) {
  EXPECT_EQ(check({put("a", 10, std::nullopt), final_get("zz", 100)}).lost.size(), 1u);
  EXPECT_EQ(check({put("a", 10, 20), put("b", 15, 30), final_get(std::nullopt, 100)}).lost.size(),
            1u);
  Operation del = make(OpKind::kDel);
  del.call_ns = 12;
  EXPECT_TRUE(
      check({put("a", 10, 20), put("b", 11, 30), del, final_get(std::nullopt, 100)}).lost.empty());
  // Nothing acknowledged: the key may never have been written.
  EXPECT_TRUE(check({put("a", 10, std::nullopt), final_get(std::nullopt, 100)}).lost.empty());
}

// A txn on k0 and k1: {get, get}, {put, put} or {cas, put}.
Operation txn(OpKind first, int64_t call, std::optional<int64_t> ret, bool ok = true) {
  Operation a = make(first);
  Operation b = make(first == OpKind::kGet ? OpKind::kGet : OpKind::kPut);
  b.key = "k1";
  if (first == OpKind::kPut) a.value = "a1";
  if (first == OpKind::kCas) {
    a.expect = "a0";
    a.new_value = "a1";
  }
  if (first != OpKind::kGet) b.value = "b1";
  Operation op = make(OpKind::kTxn);
  op.key.clear();
  op.parts = {a, b};
  op.call_ns = call;
  op.return_ns = ret;
  op.ok = ret && ok;
  return op;
}

TEST(Transactions, CommandsAreMultiExecOrThePairScript) {
  using Commands = std::vector<std::vector<std::string>>;
  EXPECT_EQ(commands_for(txn(OpKind::kGet, 0, 1)),
            (Commands{{"MULTI"}, {"GET", "k0"}, {"GET", "k1"}, {"EXEC"}}));
  EXPECT_EQ(commands_for(txn(OpKind::kPut, 0, 1)),
            (Commands{{"MULTI"}, {"SET", "k0", "a1"}, {"SET", "k1", "b1"}, {"EXEC"}}));
  EXPECT_EQ(commands_for(txn(OpKind::kCas, 0, 1)),
            (Commands{{"EVALSHA", kv::sha1_hex(kCasPairScript), "2", "k0", "k1", "0", "a0", "a1",
                       "b1"}}));
  EXPECT_EQ(partner_key(4), 5);
  EXPECT_EQ(partner_key(5), 4);
}

TEST(Transactions, RepliesDecideOrLeaveUnknown) {
  Operation read = txn(OpKind::kGet, 0, std::nullopt);
  record_reply(read, kv::Reply::array({kv::Reply::bulk("x"), kv::Reply::null()}), 5);
  EXPECT_TRUE(read.ok);
  EXPECT_EQ(read.parts[0].output, "x");
  EXPECT_EQ(read.parts[1].found, false);
  Operation write = txn(OpKind::kPut, 0, std::nullopt);
  record_reply(write, kv::Reply::array({kv::Reply::ok(), kv::Reply::ok()}), 5);
  EXPECT_TRUE(write.ok);
  record_reply(write, kv::Reply::array({kv::Reply::ok()}), 5);
  EXPECT_TRUE(write.outcome_unknown());
  Operation cas = txn(OpKind::kCas, 0, std::nullopt);
  record_reply(cas, kv::Reply::integer_of(0), 5);
  EXPECT_EQ(cas.return_ns, 5);
  EXPECT_FALSE(cas.ok);
  record_reply(cas, kv::Reply::error("NOSCRIPT No matching script."), 6);
  EXPECT_EQ(cas.error, "NOSCRIPT No matching script.");
  record_reply(cas, kv::Reply::error("EXECABORT Transaction discarded"), 6);
  EXPECT_TRUE(cas.error.has_value());
  record_reply(cas, kv::Reply::error("UNKNOWN may have happened"), 7);
  EXPECT_TRUE(cas.outcome_unknown());
}

TEST(Transactions, HistoryLinesReadBackThroughTheCheckersParser) {
  std::vector<Operation> ops = {txn(OpKind::kPut, 10, 20), txn(OpKind::kCas, 30, 40, false),
                                txn(OpKind::kCas, 50, std::nullopt), txn(OpKind::kGet, 60, 70)};
  ops[3].parts[0].found = true;
  ops[3].parts[0].output = "a1";
  ops[3].parts[1].found = false;
  for (const Operation& op : ops) {
    auto back = lincheck::parse_operation(to_json_line(op), 1);
    ASSERT_TRUE(back.is_ok()) << to_json_line(op) << ": " << back.status().to_string();
    EXPECT_EQ(back->kind, OpKind::kTxn);
    EXPECT_EQ(back->ok, op.ok);
    EXPECT_EQ(back->return_ns, op.return_ns);
    ASSERT_EQ(back->parts.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(back->parts[i].kind, op.parts[i].kind);
      EXPECT_EQ(back->parts[i].key, op.parts[i].key);
      EXPECT_EQ(back->parts[i].value, op.parts[i].value);
      EXPECT_EQ(back->parts[i].expect, op.parts[i].expect);
      EXPECT_EQ(back->parts[i].new_value, op.parts[i].new_value);
      if (op.parts[i].kind == OpKind::kGet) {
        EXPECT_EQ(back->parts[i].found != false, op.parts[i].found != false);
        EXPECT_EQ(back->parts[i].output, op.parts[i].output);
      }
    }
  }
}

TEST(FinalReads, ATransactionsWritesCountForEachKey) {
  const auto both = [](std::vector<Operation> ops, std::optional<std::string> k0,
                       std::optional<std::string> k1) {
    ops.push_back(final_get(k0, 100));
    Operation r1 = final_get(k1, 101);
    r1.key = "k1";
    ops.push_back(r1);
    return check_final_reads(lincheck::History{std::move(ops)}, 99, {"k0", "k1"}).lost.size();
  };
  EXPECT_EQ(both({put("a0", 1, 2), txn(OpKind::kPut, 10, 20)}, "a1", "b1"), 0u);
  // The txn, acknowledged last, lost on one key.
  EXPECT_EQ(both({put("a0", 1, 2), txn(OpKind::kPut, 10, 20)}, "a0", "b1"), 1u);
  // A pair script that did not match wrote nothing: its values are nobody's.
  EXPECT_EQ(both({put("a0", 1, 2), txn(OpKind::kCas, 10, 20, false)}, "a0", "b1"), 1u);
  // An unknown one may have written both.
  EXPECT_EQ(both({put("a0", 1, 2), txn(OpKind::kCas, 10, std::nullopt)}, "a1", "b1"), 0u);
}

TEST(FinalReads, AKeyNeverReadIsReported) {
  const auto r = check({put("a", 10, 20)});
  EXPECT_EQ(r.unread, std::vector<std::string>{"k0"});
}

}  // namespace
}  // namespace synod::chaos
