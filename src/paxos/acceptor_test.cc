// The single-decree acceptor's rules ("Paxos Made Simple", section 2.2), one table row per case:
//   P1a — promise Prepare(b) unless a higher ballot was promised, and report the highest accepted
//         proposal; refuse naming the higher ballot;
//   P2  — accept (b, v) unless a higher ballot was promised;
// plus the durability contract: the state to persist comes back with the reply, and an acceptor
// rebuilt from that state alone answers exactly as the live one would.
#include "paxos/acceptor.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/rng.h"

namespace synod::paxos {
namespace {

Ballot B(uint64_t round, uint32_t node) {
  return Ballot{round, NodeId{node}};
}

Value V(uint64_t client, uint64_t seq) {
  return Value{{Command{CommandId{client, seq}, "x"}}};
}

std::string describe(const std::optional<Proposal>& proposal) {
  if (!proposal) return "none";
  return to_string(proposal->ballot) + "=" + to_string(proposal->value);
}

std::string describe(const Acceptor::Reply& reply) {
  if (const auto* p = std::get_if<Promise>(&reply)) {
    return "Promise " + to_string(p->ballot) + " " + describe(p->accepted);
  }
  if (const auto* a = std::get_if<Accepted>(&reply)) {
    return "Accepted " + to_string(a->ballot) + " " + to_string(a->value);
  }
  const auto& r = std::get<Reject>(reply);
  return "Reject " + to_string(r.ballot) + " promised " + to_string(r.promised);
}

std::string describe(const std::optional<Acceptor::State>& state) {
  if (!state) return "-";
  return "promised " + to_string(state->promised) + " accepted " + describe(state->accepted);
}

Acceptor::State S(Ballot promised, std::optional<Proposal> accepted = std::nullopt) {
  return Acceptor::State{promised, std::move(accepted)};
}

// Phase 1 rows. `persist` is what the acceptor hands back to make durable ("-": nothing).
struct PrepareCase {
  const char* name;
  Acceptor::State before;
  Ballot ballot;
  std::string reply;
  std::string persist;
};

const std::vector<PrepareCase>& prepare_cases() {
  static const std::vector<PrepareCase> cases = {
      {"fresh acceptor promises", S({}), B(1, 1), "Promise 1.1 none", "promised 1.1 accepted none"},
      {"higher ballot promised", S(B(1, 1)), B(2, 2), "Promise 2.2 none",
       "promised 2.2 accepted none"},
      {"node id breaks a round tie upward", S(B(2, 1)), B(2, 2), "Promise 2.2 none",
       "promised 2.2 accepted none"},
      {"equal ballot is promised again, nothing new to persist", S(B(2, 1)), B(2, 1),
       "Promise 2.1 none", "-"},
      {"lower round refused naming the promise", S(B(2, 1)), B(1, 3), "Reject 1.3 promised 2.1",
       "-"},
      {"same round lower node refused", S(B(2, 2)), B(2, 1), "Reject 2.1 promised 2.2", "-"},
      {"reports the accepted proposal", S(B(1, 1), Proposal{B(1, 1), V(1, 1)}), B(3, 2),
       "Promise 3.2 1.1=[c1.1]", "promised 3.2 accepted 1.1=[c1.1]"},
      {"reports it again on an equal ballot", S(B(3, 2), Proposal{B(1, 1), V(1, 1)}), B(3, 2),
       "Promise 3.2 1.1=[c1.1]", "-"},
      {"refuses below the promise even with a proposal", S(B(3, 2), Proposal{B(1, 1), V(1, 1)}),
       B(2, 3), "Reject 2.3 promised 3.2", "-"},
  };
  return cases;
}

// Phase 2 rows.
struct AcceptCase {
  const char* name;
  Acceptor::State before;
  Ballot ballot;
  Value value;
  std::string reply;
  std::string persist;
};

const std::vector<AcceptCase>& accept_cases() {
  static const std::vector<AcceptCase> cases = {
      {"fresh acceptor accepts (and thereby promises)", S({}), B(1, 1), V(1, 1),
       "Accepted 1.1 [c1.1]", "promised 1.1 accepted 1.1=[c1.1]"},
      {"accepts at its promise", S(B(2, 1)), B(2, 1), V(1, 1), "Accepted 2.1 [c1.1]",
       "promised 2.1 accepted 2.1=[c1.1]"},
      {"accepts above its promise, raising it", S(B(2, 1)), B(4, 3), V(1, 1), "Accepted 4.3 [c1.1]",
       "promised 4.3 accepted 4.3=[c1.1]"},
      {"refuses below its promise", S(B(2, 1)), B(1, 1), V(1, 1), "Reject 1.1 promised 2.1", "-"},
      {"refuses same round lower node", S(B(2, 2)), B(2, 1), V(1, 1), "Reject 2.1 promised 2.2",
       "-"},
      {"a newer proposal replaces the old one", S(B(1, 1), Proposal{B(1, 1), V(1, 1)}), B(2, 2),
       V(2, 1), "Accepted 2.2 [c2.1]", "promised 2.2 accepted 2.2=[c2.1]"},
      {"a duplicate Accept is answered again", S(B(1, 1), Proposal{B(1, 1), V(1, 1)}), B(1, 1),
       V(1, 1), "Accepted 1.1 [c1.1]", "promised 1.1 accepted 1.1=[c1.1]"},
      {"refuses an old ballot after promising a newer one", S(B(5, 1), Proposal{B(1, 1), V(1, 1)}),
       B(3, 2), V(2, 1), "Reject 3.2 promised 5.1", "-"},
  };
  return cases;
}

struct Result {
  std::string reply;
  std::string persist;
  bool operator==(const Result&) const = default;
};

Result run_prepare(const PrepareCase& c, Bugs bugs = {}) {
  Acceptor acceptor(c.before, bugs);
  Acceptor::Output out = acceptor.on_prepare(Prepare{c.ballot});
  return {describe(out.reply), describe(out.persist)};
}

Result run_accept(const AcceptCase& c, Bugs bugs = {}) {
  Acceptor acceptor(c.before, bugs);
  Acceptor::Output out = acceptor.on_accept(Accept{c.ballot, c.value});
  return {describe(out.reply), describe(out.persist)};
}

TEST(AcceptorTest, PrepareRules) {
  for (const PrepareCase& c : prepare_cases()) {
    SCOPED_TRACE(c.name);
    const Result got = run_prepare(c);
    EXPECT_EQ(got.reply, c.reply);
    EXPECT_EQ(got.persist, c.persist);
  }
}

TEST(AcceptorTest, AcceptRules) {
  for (const AcceptCase& c : accept_cases()) {
    SCOPED_TRACE(c.name);
    const Result got = run_accept(c);
    EXPECT_EQ(got.reply, c.reply);
    EXPECT_EQ(got.persist, c.persist);
  }
}

TEST(AcceptorTest, RuleFunctions) {
  EXPECT_TRUE(may_promise(Ballot{}, B(1, 1)));
  EXPECT_TRUE(may_promise(B(2, 1), B(2, 1)));
  EXPECT_TRUE(may_promise(B(2, 1), B(2, 2)));
  EXPECT_FALSE(may_promise(B(2, 2), B(2, 1)));
  EXPECT_FALSE(may_promise(B(3, 1), B(2, 9)));
  EXPECT_TRUE(may_accept(B(2, 1), B(2, 1), {}));
  EXPECT_FALSE(may_accept(B(2, 1), B(1, 1), {}));
  Bugs bugs;
  bugs.accept_lower_ballot = true;
  EXPECT_TRUE(may_accept(B(2, 1), B(1, 1), bugs));
  EXPECT_FALSE(may_promise(B(2, 1), B(1, 1)));  // the bug does not touch phase 1
}

// Rounds no honest proposer reaches are refused, so that ballot arithmetic never wraps and one
// absurd ballot cannot lift every acceptor's promise to the ceiling.
TEST(AcceptorTest, ImplausibleRoundsAreRefused) {
  EXPECT_FALSE(may_promise(B(2, 1), B(UINT64_MAX, 1)));
  EXPECT_FALSE(may_accept(B(2, 1), B(UINT64_MAX, 1), {}));
  EXPECT_TRUE(may_promise(B(2, 1), B(2 + kMaxRoundStep, 1)));
  EXPECT_FALSE(may_promise(B(2, 1), B(3 + kMaxRoundStep, 1)));
  // A replica that heard of a higher round follows it there.
  EXPECT_TRUE(may_promise(B(2, 1), B(3 + kMaxRoundStep, 1), 3 + kMaxRoundStep));
  EXPECT_FALSE(may_promise(B(kMaxBallotRound, 1), B(kMaxBallotRound + 1, 1), kMaxBallotRound));
  Acceptor acceptor({}, {});
  const auto out = acceptor.on_prepare(Prepare{B(UINT64_MAX, 1)});
  EXPECT_FALSE(out.persist.has_value());
  EXPECT_TRUE(acceptor.state().promised.is_zero());
}

TEST(AcceptorTest, InMemoryStateFollowsEachAnswer) {
  Acceptor acceptor;
  EXPECT_EQ(acceptor.state(), S({}));
  (void)acceptor.on_prepare(Prepare{B(2, 1)});
  EXPECT_EQ(acceptor.state(), S(B(2, 1)));
  (void)acceptor.on_accept(Accept{B(1, 3), V(1, 1)});  // refused: no change
  EXPECT_EQ(acceptor.state(), S(B(2, 1)));
  (void)acceptor.on_accept(Accept{B(2, 1), V(1, 1)});
  EXPECT_EQ(acceptor.state(), S(B(2, 1), Proposal{B(2, 1), V(1, 1)}));
  (void)acceptor.on_prepare(Prepare{B(1, 2)});  // refused: no change
  EXPECT_EQ(acceptor.state(), S(B(2, 1), Proposal{B(2, 1), V(1, 1)}));
}

TEST(AcceptorTest, RecoveryPromiseIsAtLeastTheAcceptedBallot) {
  // The promise record was lost (or never written) but the acceptance survived: accepting (b, v)
  // promised b, so the restarted acceptor must still refuse anything below b.
  Acceptor acceptor(S(Ballot{}, Proposal{B(3, 2), V(1, 1)}));
  EXPECT_EQ(acceptor.state().promised, B(3, 2));
  EXPECT_EQ(describe(acceptor.on_prepare(Prepare{B(3, 1)}).reply), "Reject 3.1 promised 3.2");
  EXPECT_EQ(describe(acceptor.on_accept(Accept{B(2, 9), V(2, 2)}).reply),
            "Reject 2.9 promised 3.2");
  // A durable promise above the accepted ballot is kept as it is.
  Acceptor higher(S(B(7, 1), Proposal{B(3, 2), V(1, 1)}));
  EXPECT_EQ(higher.state().promised, B(7, 1));
}

// A driver that persists each Output.persist before sending, and crashes after every step: the
// acceptor rebuilt from the disk alone must hold exactly the state the live one had, so every
// answer already sent stays true. Random operations from a fixed seed.
TEST(AcceptorTest, RestartFromDurableStateKeepsEveryAnswer) {
  Rng rng(20240611);
  for (int run = 0; run < 50; ++run) {
    Acceptor::State disk;
    Acceptor live(disk);
    for (int op = 0; op < 40; ++op) {
      const Ballot ballot = B(rng.between(1, 6), static_cast<uint32_t>(rng.between(1, 3)));
      Acceptor::Output out = rng.chance(0.5)
                                 ? live.on_prepare(Prepare{ballot})
                                 : live.on_accept(Accept{ballot, V(1, rng.between(1, 3))});
      if (out.persist) disk = *out.persist;
      ASSERT_EQ(disk, live.state()) << "run " << run << " op " << op;
      Acceptor restarted(disk);
      ASSERT_EQ(restarted.state(), live.state()) << "run " << run << " op " << op;
      if (rng.chance(0.3)) live = restarted;
    }
  }
}

// Each planted bug changes exactly the rows of the rule it breaks, and nothing else.
TEST(AcceptorTest, AcceptLowerBallotBreaksOnlyP2BelowThePromise) {
  Bugs bugs;
  bugs.accept_lower_ballot = true;
  for (const PrepareCase& c : prepare_cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(run_prepare(c, bugs), run_prepare(c));
  }
  int changed = 0;
  for (const AcceptCase& c : accept_cases()) {
    SCOPED_TRACE(c.name);
    const Result correct = run_accept(c);
    const Result buggy = run_accept(c, bugs);
    const bool below_promise = c.ballot < c.before.promised;
    if (!below_promise) {
      EXPECT_EQ(buggy, correct);
      continue;
    }
    ++changed;
    // Accepts anyway, and keeps its (higher) promise.
    EXPECT_EQ(buggy.reply, "Accepted " + to_string(c.ballot) + " " + to_string(c.value));
    EXPECT_EQ(buggy.persist, "promised " + to_string(c.before.promised) + " accepted " +
                                 to_string(c.ballot) + "=" + to_string(c.value));
  }
  EXPECT_EQ(changed, 3);
}

TEST(AcceptorTest, NoPersistPromiseLosesOnlyThePromiseRecord) {
  Bugs bugs;
  bugs.no_persist_promise = true;
  int changed = 0;
  for (const PrepareCase& c : prepare_cases()) {
    SCOPED_TRACE(c.name);
    const Result correct = run_prepare(c);
    const Result buggy = run_prepare(c, bugs);
    EXPECT_EQ(buggy.reply, correct.reply);  // the answer still goes out...
    if (correct.persist == "-") {
      EXPECT_EQ(buggy.persist, "-");
      continue;
    }
    ++changed;
    // ...but what reaches the disk promises only what the accepted proposal implies.
    Acceptor acceptor(c.before, bugs);
    Acceptor::Output out = acceptor.on_prepare(Prepare{c.ballot});
    ASSERT_TRUE(out.persist.has_value());
    const Ballot implied = c.before.accepted ? c.before.accepted->ballot : Ballot{};
    EXPECT_EQ(out.persist->promised, implied);
    EXPECT_EQ(out.persist->accepted, c.before.accepted);
    EXPECT_EQ(acceptor.state().promised, c.ballot);  // memory still holds the promise
  }
  EXPECT_EQ(changed, 4);
  // Phase 2 is untouched: accepting b promises b, and that is durable through the acceptance.
  for (const AcceptCase& c : accept_cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(run_accept(c, bugs), run_accept(c));
  }
}

TEST(AcceptorTest, NoPersistPromiseLetsARestartBreakItsPromise) {
  Bugs bugs;
  bugs.no_persist_promise = true;
  Acceptor acceptor({}, bugs);
  Acceptor::Output promise = acceptor.on_prepare(Prepare{B(5, 1)});
  ASSERT_EQ(describe(promise.reply), "Promise 5.1 none");
  ASSERT_TRUE(promise.persist.has_value());
  Acceptor restarted(*promise.persist, bugs);
  // The promise of 5.1 went out, yet after the crash a lower ballot is accepted.
  EXPECT_EQ(describe(restarted.on_accept(Accept{B(2, 2), V(2, 1)}).reply), "Accepted 2.2 [c2.1]");
  // The correct acceptor, restarted from its disk, refuses it.
  Acceptor correct;
  Acceptor correct_restarted(*correct.on_prepare(Prepare{B(5, 1)}).persist);
  EXPECT_EQ(describe(correct_restarted.on_accept(Accept{B(2, 2), V(2, 1)}).reply),
            "Reject 2.2 promised 5.1");
}

TEST(AcceptorTest, BugsThatDoNotTouchTheAcceptorChangeNothing) {
  for (const std::string& name :
       {std::string("minority-quorum"), std::string("ignore-promised-value"),
        std::string("leader-skip-phase1")}) {
    SCOPED_TRACE(name);
    Bugs bugs;
    ASSERT_TRUE(enable_bug(name, bugs));
    for (const PrepareCase& c : prepare_cases()) EXPECT_EQ(run_prepare(c, bugs), run_prepare(c));
    for (const AcceptCase& c : accept_cases()) EXPECT_EQ(run_accept(c, bugs), run_accept(c));
  }
}

TEST(BugsTest, NamesRoundTrip) {
  ASSERT_EQ(bug_names().size(), 34u);
  for (const std::string& name : bug_names()) {
    Bugs bugs;
    EXPECT_TRUE(enable_bug(name, bugs)) << name;
    EXPECT_TRUE(bugs.any()) << name;
  }
  Bugs none;
  EXPECT_FALSE(enable_bug("no-such-bug", none));
  EXPECT_FALSE(none.any());
}

}  // namespace
}  // namespace synod::paxos
