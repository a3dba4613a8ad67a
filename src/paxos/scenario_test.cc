// Protocol scenarios as data, in the spirit of etcd-io/raft's testdata: each file in
// testdata/scenarios/ is one test case, a script run against a TestCluster
// (testing/test_cluster.h). A failed expectation is reported at file:line with the last events.
//
// The language, one command per line ('#' starts a comment; NODE is n1, n2, ...; '*' as NODE
// means every replica that is up; CMD is c<client>.<seq>; BALLOT is <round>.<node>; VALUE is as
// traces print it: noop or [c1.1,c1.2]):
//
//   cluster N [seed=S] [bug=NAME] [max-inflight=K] [max-batch=K] [max-queue=K] [max-entries=K]
//   tick NODE [COUNT]           tick one replica (no delivery)
//   tick-all [COUNT]            tick every up replica COUNT times (no delivery)
//   heartbeat NODE              tick NODE heartbeat_interval_ticks times
//   campaign NODE               tick NODE until it starts phase 1 with a new ballot
//   propose NODE CMD... [-> queued|not-leader|busy]
//                               propose the commands together (one Ready: batched); each must
//                               get the given status (default queued)
//   deliver [FILTER...]         one round: deliver queued messages that match (default: all)
//   drop [FILTER...]            discard queued messages that match (default: all)
//   stabilize                   deliver rounds until nothing is in flight
//   run COUNT                   COUNT times: tick every up replica, then stabilize
//   partition NODE... | NODE... [| ...]     cut links between the groups;  isolate NODE;  heal
//   crash NODE / restart NODE   lose memory and queued inbound messages / rebuild from disk
//   print                       dump the cluster's state to stdout (a debugging aid)
//
//   FILTER is FROM->TO[:Type] with '*' for any node, or :Type alone (Type: Prepare, Promise,
//   Accept, Accepted, Reject, CatchupRequest, CatchupReply).
//
//   expect role NODE... ROLE               follower | candidate | leader
//   expect leader NODE                     NODE leads and no other up replica does
//   expect hint NODE... LEADER|none        what the replicas believe the leader is
//   expect ballot NODE BALLOT / expect promised NODE... BALLOT
//   expect commit NODE... SLOT             the chosen prefix
//   expect log NODE... = VALUE...          the entries the state machine applied, in order
//   expect chosen NODE SLOT VALUE|none
//   expect accepted NODE SLOT BALLOT VALUE | expect accepted NODE SLOT none
//   expect outcome NODE CMD chosen SLOT | unknown | failed | none
//   expect in-flight COUNT [FILTER...]
//   expect violation TEXT...               the harness's checks fired with a message containing
//                                          TEXT (e.g. under a planted bug); any violation not
//                                          expected this way fails the scenario.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "paxos/testing/test_cluster.h"

namespace synod::paxos {
namespace {

using testing::ClusterOptions;
using testing::MessageFilter;
using testing::TestCluster;

// A script error or a failed expectation: what went wrong, for the line being run.
struct Failure {
  std::string message;
};

std::vector<std::string> split(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

std::string join(const std::vector<std::string>& words, size_t from = 0) {
  std::string out;
  for (size_t i = from; i < words.size(); ++i) {
    if (i > from) out += ' ';
    out += words[i];
  }
  return out;
}

uint64_t parse_number(const std::string& word) {
  const auto digit = [](char ch) { return ch >= '0' && ch <= '9'; };
  if (word.empty() || !std::all_of(word.begin(), word.end(), digit)) {
    throw Failure{"expected a number, got '" + word + "'"};
  }
  return std::stoull(word);
}

NodeId parse_node(const std::string& word) {
  if (word.size() < 2 || word[0] != 'n')
    throw Failure{"expected a node like n1, got '" + word + "'"};
  return NodeId{static_cast<uint32_t>(parse_number(word.substr(1)))};
}

CommandId parse_command_id(const std::string& word) {
  const size_t dot = word.find('.');
  if (word.size() < 4 || word[0] != 'c' || dot == std::string::npos) {
    throw Failure{"expected a command like c1.2, got '" + word + "'"};
  }
  return CommandId{parse_number(word.substr(1, dot - 1)), parse_number(word.substr(dot + 1))};
}

Ballot parse_ballot(const std::string& word) {
  const size_t dot = word.find('.');
  if (dot == std::string::npos) throw Failure{"expected a ballot like 2.1, got '" + word + "'"};
  return Ballot{parse_number(word.substr(0, dot)),
                NodeId{static_cast<uint32_t>(parse_number(word.substr(dot + 1)))}};
}

MessageFilter parse_filter(const std::string& word) {
  MessageFilter filter;
  std::string link = word;
  const size_t colon = word.find(':');
  if (colon != std::string::npos) {
    filter.type = word.substr(colon + 1);
    link = word.substr(0, colon);
  }
  if (link.empty() || link == "*") return filter;
  const size_t arrow = link.find("->");
  if (arrow == std::string::npos) throw Failure{"expected FROM->TO[:Type], got '" + word + "'"};
  const std::string from = link.substr(0, arrow);
  const std::string to = link.substr(arrow + 2);
  if (from != "*") filter.from = parse_node(from);
  if (to != "*") filter.to = parse_node(to);
  return filter;
}

std::vector<MessageFilter> parse_filters(const std::vector<std::string>& words, size_t from) {
  std::vector<MessageFilter> filters;
  for (size_t i = from; i < words.size(); ++i) filters.push_back(parse_filter(words[i]));
  if (filters.empty()) filters.push_back(MessageFilter{});
  return filters;
}

bool matches_any(const std::vector<MessageFilter>& filters, const Envelope& envelope) {
  return std::any_of(filters.begin(), filters.end(),
                     [&](const MessageFilter& f) { return f.matches(envelope); });
}

std::string applied_log(const std::vector<SlotValue>& entries) {
  std::string out;
  for (const SlotValue& entry : entries) {
    if (!out.empty()) out += ' ';
    out += to_string(entry.value);
  }
  return out;
}

class Scenario {
 public:
  Scenario(std::string name, std::string text) : name_(std::move(name)), text_(std::move(text)) {}

  // Runs the script; every failure is reported to GoogleTest at name:line.
  void run() {
    std::istringstream in(text_);
    std::string raw;
    int number = 0;
    while (std::getline(in, raw)) {
      ++number;
      const std::string line = raw.substr(0, raw.find('#'));
      const std::vector<std::string> words = split(line);
      if (words.empty()) continue;
      if (words[0] != "expect") report_unexpected_violations();
      line_ = number;
      try {
        execute(words);
      } catch (const Failure& failure) {
        fail(number, join(words) + "\n  " + failure.message);
      }
      if (cluster_ && cluster_->violations().size() > violations_seen_) {
        if (!violation_line_) violation_line_ = number;
        violations_seen_ = cluster_->violations().size();
      }
    }
    report_unexpected_violations();
  }

 private:
  void fail(int line, const std::string& message) {
    std::string trace = cluster_ ? cluster_->recent_trace(25) : "";
    ADD_FAILURE_AT(name_.c_str(), line) << message << "\n  recent events:\n" << trace;
  }

  void report_unexpected_violations() {
    if (!cluster_ || cluster_->violations().empty()) return;
    std::string text;
    for (const std::string& v : cluster_->violations()) text += "\n  violation: " + v;
    fail(violation_line_.value_or(line_), "the harness's checks failed:" + text);
    cluster_->clear_violations();
    violations_seen_ = 0;
    violation_line_.reset();
  }

  TestCluster& cluster() {
    if (!cluster_) throw Failure{"no cluster yet: start with 'cluster N'"};
    return *cluster_;
  }

  // NODE arguments, with '*' meaning every up replica.
  std::vector<NodeId> nodes(const std::vector<std::string>& words, size_t from, size_t to) {
    std::vector<NodeId> out;
    for (size_t i = from; i < to; ++i) {
      if (words[i] == "*") {
        for (NodeId id : cluster().members()) {
          if (cluster().is_up(id)) out.push_back(id);
        }
      } else {
        const NodeId id = parse_node(words[i]);
        if (!cluster_->is_up(id)) throw Failure{to_string(id) + " is down"};
        out.push_back(id);
      }
    }
    if (out.empty()) throw Failure{"no replica named"};
    return out;
  }

  NodeId up_node(const std::string& word) {
    const NodeId id = parse_node(word);
    if (std::find(cluster().members().begin(), cluster().members().end(), id) ==
        cluster().members().end()) {
      throw Failure{"no replica " + word};
    }
    return id;
  }

  Replica& replica(const std::string& word) {
    const NodeId id = up_node(word);
    if (!cluster().is_up(id)) throw Failure{word + " is down"};
    return cluster().replica(id);
  }

  static void need(const std::vector<std::string>& words, size_t at_least) {
    if (words.size() < at_least) throw Failure{"too few arguments"};
  }

  void execute(const std::vector<std::string>& w) {
    const std::string& op = w[0];
    if (op == "cluster") return make_cluster(w);
    if (op == "expect") return expect(w);
    if (op == "tick") {
      need(w, 2);
      const int count = w.size() > 2 ? static_cast<int>(parse_number(w[2])) : 1;
      replica(w[1]);
      return cluster().tick(up_node(w[1]), count);
    }
    if (op == "tick-all") {
      return cluster().tick_all(w.size() > 1 ? static_cast<int>(parse_number(w[1])) : 1);
    }
    if (op == "heartbeat") {
      need(w, 2);
      const NodeId id = up_node(w[1]);
      return cluster().tick(id,
                            static_cast<int>(cluster().config_for(id).heartbeat_interval_ticks));
    }
    if (op == "campaign") {
      need(w, 2);
      replica(w[1]);
      cluster().campaign(up_node(w[1]));  // failing to campaign is reported as a violation
      return;
    }
    if (op == "propose") return propose(w);
    if (op == "deliver") {
      const std::vector<MessageFilter> filters = parse_filters(w, 1);
      cluster().deliver_if([&](const Envelope& e) { return matches_any(filters, e); });
      return;
    }
    if (op == "drop") {
      const std::vector<MessageFilter> filters = parse_filters(w, 1);
      cluster().drop_if([&](const Envelope& e) { return matches_any(filters, e); });
      return;
    }
    if (op == "stabilize") {
      if (!cluster().stabilize()) throw Failure{"messages kept flowing"};
      return;
    }
    if (op == "run") {
      need(w, 2);
      return cluster().run(static_cast<int>(parse_number(w[1])));
    }
    if (op == "partition") return partition(w);
    if (op == "isolate") {
      need(w, 2);
      return cluster().isolate(up_node(w[1]));
    }
    if (op == "heal") return cluster().heal();
    if (op == "crash") {
      need(w, 2);
      replica(w[1]);
      return cluster().crash(up_node(w[1]));
    }
    if (op == "restart") {
      need(w, 2);
      const NodeId id = up_node(w[1]);
      if (cluster().is_up(id)) throw Failure{w[1] + " is up"};
      return cluster().restart(id);
    }
    if (op == "print") return print();
    throw Failure{"unknown command '" + op + "'"};
  }

  void make_cluster(const std::vector<std::string>& w) {
    need(w, 2);
    const size_t size = parse_number(w[1]);
    if (size < 1 || size > 9) throw Failure{"cluster size must be 1..9"};
    ClusterOptions options;
    struct Limits {
      std::optional<size_t> inflight, batch, queue, entries;
    } limits;
    for (size_t i = 2; i < w.size(); ++i) {
      const size_t eq = w[i].find('=');
      if (eq == std::string::npos) throw Failure{"expected key=value, got '" + w[i] + "'"};
      const std::string key = w[i].substr(0, eq);
      const std::string value = w[i].substr(eq + 1);
      if (key == "seed") {
        options.seed = parse_number(value);
      } else if (key == "bug") {
        if (!enable_bug(value, options.bugs)) throw Failure{"no planted bug '" + value + "'"};
      } else if (key == "max-inflight") {
        limits.inflight = parse_number(value);
      } else if (key == "max-batch") {
        limits.batch = parse_number(value);
      } else if (key == "max-queue") {
        limits.queue = parse_number(value);
      } else if (key == "max-entries") {
        limits.entries = parse_number(value);
      } else {
        throw Failure{"unknown option '" + key + "'"};
      }
    }
    options.configure = [limits](Config& config) {
      if (limits.inflight) config.max_inflight_slots = *limits.inflight;
      if (limits.batch) config.max_batch_commands = *limits.batch;
      if (limits.queue) config.max_queued_commands = *limits.queue;
      if (limits.entries) config.max_entries_per_message = *limits.entries;
    };
    cluster_ = std::make_unique<TestCluster>(size, std::move(options));
    violations_seen_ = 0;
    violation_line_.reset();
  }

  void propose(const std::vector<std::string>& w) {
    need(w, 3);
    Replica& target = replica(w[1]);
    size_t end = w.size();
    std::string want = "queued";
    for (size_t i = 2; i < w.size(); ++i) {
      if (w[i] != "->") continue;
      if (i + 2 != w.size()) throw Failure{"expected '-> STATUS' at the end"};
      want = w[i + 1];
      end = i;
    }
    std::string problems;
    for (size_t i = 2; i < end; ++i) {
      const CommandId id = parse_command_id(w[i]);
      const ProposeStatus status = target.propose(Command{id, w[i]});
      const std::string got = status == ProposeStatus::kQueued      ? "queued"
                              : status == ProposeStatus::kNotLeader ? "not-leader"
                                                                    : "busy";
      if (got != want) problems += w[i] + " got " + got + ", want " + want + "; ";
    }
    cluster().process(up_node(w[1]));
    if (!problems.empty()) throw Failure{problems};
  }

  void partition(const std::vector<std::string>& w) {
    std::vector<std::vector<NodeId>> groups(1);
    for (size_t i = 1; i < w.size(); ++i) {
      if (w[i] == "|") {
        groups.emplace_back();
      } else {
        groups.back().push_back(up_node(w[i]));
      }
    }
    if (groups.size() < 2) throw Failure{"a partition needs groups separated by '|'"};
    cluster().partition(groups);
  }

  void print() {
    std::printf("--- %s:%d\n", name_.c_str(), line_);
    for (NodeId id : cluster().members()) {
      if (!cluster().is_up(id)) {
        std::printf("%s down\n", to_string(id).c_str());
        continue;
      }
      const Replica& r = cluster().replica(id);
      std::printf("%s %s ballot=%s promised=%s commit=%llu log=%s\n", to_string(id).c_str(),
                  to_string(r.role()), synod::to_string(r.ballot()).c_str(),
                  synod::to_string(r.promised()).c_str(),
                  static_cast<unsigned long long>(r.commit()),
                  applied_log(cluster().applied(id)).c_str());
    }
    for (const Envelope& e : cluster().in_flight()) std::printf("  %s\n", to_string(e).c_str());
  }

  // --- Expectations.

  void expect(const std::vector<std::string>& w) {
    need(w, 2);
    const std::string& what = w[1];
    if (what == "role") return expect_role(w);
    if (what == "leader") return expect_leader(w);
    if (what == "hint") return expect_hint(w);
    if (what == "ballot" || what == "promised") return expect_ballot(w);
    if (what == "commit") return expect_commit(w);
    if (what == "log") return expect_log(w);
    if (what == "chosen") return expect_chosen(w);
    if (what == "accepted") return expect_accepted(w);
    if (what == "outcome") return expect_outcome(w);
    if (what == "in-flight") return expect_in_flight(w);
    if (what == "violation") return expect_violation(w);
    throw Failure{"unknown expectation '" + what + "'"};
  }

  void expect_role(const std::vector<std::string>& w) {
    need(w, 4);
    std::string problems;
    for (NodeId id : nodes(w, 2, w.size() - 1)) {
      const std::string got = to_string(cluster().replica(id).role());
      if (got != w.back()) problems += to_string(id) + " is " + got + "; ";
    }
    if (!problems.empty()) throw Failure{problems};
  }

  void expect_leader(const std::vector<std::string>& w) {
    need(w, 3);
    const NodeId want = parse_node(w[2]);
    std::string got;
    for (NodeId id : cluster().leaders()) got += (got.empty() ? "" : " ") + to_string(id);
    if (got != to_string(want)) throw Failure{"leaders: [" + got + "]"};
  }

  void expect_hint(const std::vector<std::string>& w) {
    need(w, 4);
    std::string problems;
    for (NodeId id : nodes(w, 2, w.size() - 1)) {
      const NodeId hint = cluster().replica(id).leader();
      const std::string got = hint.valid() ? to_string(hint) : "none";
      if (got != w.back()) problems += to_string(id) + " thinks " + got + "; ";
    }
    if (!problems.empty()) throw Failure{problems};
  }

  void expect_ballot(const std::vector<std::string>& w) {
    need(w, 4);
    const Ballot want = parse_ballot(w.back());
    std::string problems;
    for (NodeId id : nodes(w, 2, w.size() - 1)) {
      const Replica& r = cluster().replica(id);
      const Ballot got = w[1] == "ballot" ? r.ballot() : r.promised();
      if (got != want) problems += to_string(id) + " has " + synod::to_string(got) + "; ";
    }
    if (!problems.empty()) throw Failure{problems};
  }

  void expect_commit(const std::vector<std::string>& w) {
    need(w, 4);
    const Slot want = parse_number(w.back());
    std::string problems;
    for (NodeId id : nodes(w, 2, w.size() - 1)) {
      const Slot got = cluster().replica(id).commit();
      if (got != want) problems += to_string(id) + " is at " + std::to_string(got) + "; ";
    }
    if (!problems.empty()) throw Failure{problems};
  }

  void expect_log(const std::vector<std::string>& w) {
    const auto eq = std::find(w.begin(), w.end(), "=");
    if (eq == w.end()) throw Failure{"expected 'expect log NODE... = VALUE...'"};
    const size_t at = static_cast<size_t>(eq - w.begin());
    const std::string want = join(w, at + 1);
    std::string problems;
    for (NodeId id : nodes(w, 2, at)) {
      const std::string got = applied_log(cluster().applied(id));
      if (got != want) problems += to_string(id) + " applied '" + got + "'; ";
    }
    if (!problems.empty()) throw Failure{problems};
  }

  void expect_chosen(const std::vector<std::string>& w) {
    need(w, 5);
    const Replica& r = replica(w[2]);
    const Slot slot = parse_number(w[3]);
    auto it = r.chosen().find(slot);
    const std::string got = it == r.chosen().end() ? "none" : to_string(it->second);
    if (got != join(w, 4)) throw Failure{"chosen: " + got};
  }

  void expect_accepted(const std::vector<std::string>& w) {
    need(w, 5);
    const Replica& r = replica(w[2]);
    const Slot slot = parse_number(w[3]);
    auto it = r.accepted().find(slot);
    const std::string got = it == r.accepted().end() ? "none"
                                                     : synod::to_string(it->second.ballot) + " " +
                                                           to_string(it->second.value);
    if (got != join(w, 4)) throw Failure{"accepted: " + got};
  }

  void expect_outcome(const std::vector<std::string>& w) {
    need(w, 5);
    const NodeId id = up_node(w[2]);
    const CommandId cmd = parse_command_id(w[3]);
    std::string got = "none";
    int count = 0;
    for (const ProposalOutcome& outcome : cluster().outcomes(id)) {
      if (outcome.id != cmd) continue;
      ++count;
      got = paxos::to_string(outcome.outcome);
      if (outcome.outcome == Outcome::kChosen) got += " " + std::to_string(outcome.slot);
    }
    if (count > 1) throw Failure{"the proposal got " + std::to_string(count) + " outcomes"};
    if (got != join(w, 4)) throw Failure{"outcome: " + got};
  }

  void expect_in_flight(const std::vector<std::string>& w) {
    need(w, 3);
    const size_t want = parse_number(w[2]);
    const std::vector<MessageFilter> filters = parse_filters(w, 3);
    size_t got = 0;
    std::string listing;
    for (const Envelope& e : cluster().in_flight()) {
      if (!matches_any(filters, e)) continue;
      ++got;
      listing += "\n    " + to_string(e);
    }
    if (got != want) throw Failure{std::to_string(got) + " in flight:" + listing};
  }

  void expect_violation(const std::vector<std::string>& w) {
    need(w, 3);
    const std::string text = join(w, 2);
    const std::vector<std::string>& all = cluster().violations();
    const bool found = std::any_of(all.begin(), all.end(), [&](const std::string& v) {
      return v.find(text) != std::string::npos;
    });
    if (!found) {
      std::string listing;
      for (const std::string& v : all) listing += "\n    " + v;
      throw Failure{"no violation mentions '" + text +
                    "'; violations:" + (listing.empty() ? " none" : listing)};
    }
    cluster().clear_violations();
    violations_seen_ = 0;
    violation_line_.reset();
  }

  std::string name_;
  std::string text_;
  std::unique_ptr<TestCluster> cluster_;
  int line_ = 0;
  size_t violations_seen_ = 0;
  std::optional<int> violation_line_;
};

// --- One test per file in testdata/scenarios.

std::filesystem::path scenario_dir() {
  return std::filesystem::path(SYNOD_SOURCE_DIR) / "testdata" / "scenarios";
}

std::vector<std::string> scenario_files() {
  std::vector<std::string> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(scenario_dir(), error)) {
    if (entry.path().extension() == ".txt") files.push_back(entry.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class ScenarioTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ScenarioTest, Run) {
  const std::filesystem::path path = scenario_dir() / GetParam();
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  Scenario(path.string(), text.str()).run();
}

// "02_leader_crash.txt" runs as ScenarioTest.Run/02_leader_crash.
std::string test_name(const ::testing::TestParamInfo<std::string>& param) {
  std::string name = param.param.substr(0, param.param.rfind('.'));
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Files, ScenarioTest, ::testing::ValuesIn(scenario_files()), test_name);

TEST(ScenarioFilesTest, TheProtocolScenariosAreThere) {
  const std::vector<std::string> files = scenario_files();
  EXPECT_GE(files.size(), 6u) << "in " << scenario_dir();
}

// --- The interpreter itself can fail, at the right line.

void run_script(const char* text) {
  Scenario("inline.txt", text).run();
}

struct Reported {
  int line;
  std::string message;
};

// Runs a script, capturing (instead of reporting) the failures it produces.
std::vector<Reported> failures_of(const char* text) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    run_script(text);
  }
  std::vector<Reported> out;
  for (int i = 0; i < results.size(); ++i) {
    const ::testing::TestPartResult& result = results.GetTestPartResult(i);
    EXPECT_STREQ(result.file_name(), "inline.txt");
    out.push_back({result.line_number(), result.message()});
  }
  return out;
}

bool mentions(const Reported& failure, const std::string& text) {
  return failure.message.find(text) != std::string::npos;
}

TEST(ScenarioInterpreterTest, AWrongExpectationFailsAtItsLine) {
  std::vector<Reported> failures = failures_of(
      "cluster 3\n"
      "campaign n1\n"
      "stabilize\n"
      "expect role n1 follower\n"
      "propose n1 c1.1\n"
      "stabilize\n"
      "expect log n1 = [c1.2]\n");
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(failures[0].line, 4);
  EXPECT_TRUE(mentions(failures[0], "n1 is leader")) << failures[0].message;
  EXPECT_EQ(failures[1].line, 7);
  EXPECT_TRUE(mentions(failures[1], "n1 applied '[c1.1]'")) << failures[1].message;

  failures = failures_of("cluster 3\npropose n2 c1.1\n");
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].line, 2);
  EXPECT_TRUE(mentions(failures[0], "got not-leader")) << failures[0].message;

  failures = failures_of("cluster 3\n\n# comment\nfrobnicate n1\n");
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].line, 4);
  EXPECT_TRUE(mentions(failures[0], "unknown command")) << failures[0].message;

  failures = failures_of("tick n1\n");
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_TRUE(mentions(failures[0], "no cluster yet")) << failures[0].message;
}

TEST(ScenarioInterpreterTest, AViolationFailsUnlessExpected) {
  // The planted bug sends promises that are not durable; the harness notices at line 2, where
  // n1 answers its own Prepare.
  const std::vector<Reported> failures = failures_of(
      "cluster 3 bug=no-persist-promise\n"
      "campaign n1\n"
      "stabilize\n");
  ASSERT_FALSE(failures.empty());
  EXPECT_EQ(failures[0].line, 2);
  EXPECT_TRUE(mentions(failures[0], "promised only")) << failures[0].message;
  // Expected, it passes; and an expected violation that does not happen fails.
  run_script(
      "cluster 3 bug=no-persist-promise\n"
      "campaign n1\n"
      "expect violation promised only\n"
      "stabilize\n"
      "expect violation promised only\n");
  const std::vector<Reported> missing = failures_of(
      "cluster 3\n"
      "campaign n1\n"
      "stabilize\n"
      "expect violation promised only\n");
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].line, 4);
}

TEST(ScenarioInterpreterTest, ARightScriptPasses) {
  run_script(
      "cluster 3\n"
      "campaign n2   # a comment\n"
      "stabilize\n"
      "expect leader n2\n"
      "expect role n1 n3 follower\n"
      "propose n2 c1.1 c1.2\n"
      "propose n1 c1.3 -> not-leader\n"
      "stabilize\n"
      "expect log n2 = [c1.1,c1.2]\n"
      "expect outcome n2 c1.1 chosen 1\n"
      "expect in-flight 0\n");
}

}  // namespace
}  // namespace synod::paxos
