// The model checker's world for `synod check --replica`: N production paxos::Replica objects
// (src/paxos/replica.h, production Config defaults), wired together by a model network and model
// disks, with clients that propose a few values. One World is everything that can differ between
// two runs; ReplicaModel enumerates the actions enabled in a world and applies one,
// deterministically. docs/model-checker.md describes the state space and what it leaves out.
//
// Fault model:
//   - the network is a multiset of envelopes (at most `max_in_flight` distinct ones; a send
//     beyond that is lost): any envelope may be delivered, in any order; delivered and kept (a
//     duplicate, at most `duplicates` in all); or dropped, when the network is full (a loss at
//     any other time is matched by never delivering it);
//   - time is abstract: any armed timer of any replica may fire at any moment
//     (Replica::fire_timer; elections and the other timers each within a budget), and each random
//     choice of a peer that a timer makes is explored; the search starts once n1 has won the
//     first election, unless `warm_start` is off;
//   - a replica may crash and restart from what it made durable, at most `crashes` times in all.
//     Persisting and sending are one step (the driver's contract, ready.h) except under the
//     planted ack-before-sync, where messages leave first and the sync is a step of its own;
//   - a leader may be asked to propose each client value once, to take a snapshot, or to serve a
//     read;
//   - with `reconfig`, one more replica (n4 of three) joins as a learner during the warm start,
//     and a leader may be asked to propose one configuration change (promote the learner, or
//     replace the highest voter by it), at most `changes` times in all (a change that is lost
//     or overwritten by a new leader may be asked for again);
//   - with `wipes`, a voter may lose its directory and restart empty as a new incarnation (after
//     the warm start has bound every incarnation in the configuration);
//   - with `lease_periods`, every replica runs with lease reads (paxos::Config::read_lease_ms),
//     and time, otherwise abstract, is counted in lease periods: it passes (one step) at most
//     that many times, every replica's clock reads it, and a lease lasts until it next passes. A
//     replica's stickiness runs out, and its election timer fires as a follower, only once time
//     has passed since it last accepted a leader's Accept or (re)started: the bound on
//     clock-rate error that makes a lease shorter than an election timeout of ticks.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "paxos/bugs.h"
#include "paxos/config.h"
#include "paxos/membership.h"
#include "paxos/quorum.h"
#include "paxos/replica.h"

namespace synod::check {

// The configuration change a leader may be asked to propose (`synod check --replica --reconfig`).
enum class Reconfig : uint8_t {
  kNone,
  kPromote,  // the learner becomes a voter: 3 voters -> 4
  kReplace,  // the learner becomes a voter and the highest voter leaves, in one change
};
const char* to_string(Reconfig reconfig);

struct ReplicaBounds {
  int replicas = 3;
  int values = 2;         // client values A, B, ...: each proposed once, to some leader
  int elections = 2;      // election timers fired, in all
  int crashes = 1;        // crash-restarts, in all
  int max_in_flight = 2;  // distinct envelopes in the network; a send beyond is lost
  int duplicates = 1;     // deliveries that keep their message in the network, in all
  int timers = 0;         // heartbeat, retransmit, quorum-check and catch-up timers fired, in all
  // (The defaults are the largest bounds whose every state is explored in about a minute: see
  // docs/model-checker.md for what each bound costs.)
  // Start from a cluster in which n1 has won the first election (its Prepares and every Promise
  // delivered, the network empty; it counts as one of the elections): the states before hold no
  // value, and skipping them brings bugs that need a leader and a successor within reach.
  bool warm_start = true;
  int compactions = 0;   // snapshots taken, in all
  int reads = 0;         // read_index() calls, in all
  bool vouching = true;  // also check that every answer is backed by durable state
  Reconfig reconfig = Reconfig::kNone;
  int changes = 1;  // with `reconfig`: configuration changes proposed, in all
  // Voters whose data directory is lost: each restarts empty, as a joiner with a fresh
  // incarnation (paxos::Config::incarnation). With wipes, every replica has an incarnation, and
  // the warm start ends once n1 has bound them all in the configuration.
  int wipes = 0;
  // The highest founding voter is down through the warm start (with wipes): it hears nothing of
  // n1's election or of its binding, and comes back knowing only the bootstrap configuration, in
  // which every voter is unbound. (A wiped replica's peers refuse it once they know the binding or
  // met its old incarnation; this is the voter that did neither.)
  bool absent = false;
  // Leader transfers an operator asks a leader for (MEMBER TRANSFER, SIGTERM), in all: each to
  // any other voter, whenever a leader has none in progress.
  int transfers = 0;
  // Lease reads on, and time passes at most this many times (0: leases off, time abstract).
  int lease_periods = 0;
  // Chosen values are let go of as soon as they may be (paxos::Config::log_memory_bytes 0; a
  // server lets go of the oldest once it holds more than its budget): handed out and durably
  // marked chosen. They are read back from the replica's durable chosen marks, the model's log.
  bool release = false;
};

struct ReplicaModelConfig {
  ReplicaBounds bounds;
  paxos::QuorumSystem quorum;       // what the replicas count with
  paxos::QuorumSystem true_quorum;  // what "chosen" means (differs only under minority-quorum)
  paxos::Bugs bugs;
};

// Why the planted bug `name` cannot be found by exploring the Replica, or nothing if it can.
std::optional<std::string> replica_bug_not_applicable(std::string_view name);

struct WorldAction {
  enum class Kind : uint8_t {
    kDeliver,
    kDrop,
    kDuplicate,  // deliver one copy and keep the message, as if it had been sent twice
    kTimer,
    kPropose,
    kCrash,
    kSync,
    kCompact,
    kRead,
    kChange,    // a leader proposes the configuration change of ReplicaBounds::reconfig
    kWipe,      // a voter restarts with an empty directory and a fresh incarnation
    kTransfer,  // a leader is asked to hand leadership to the voter `arg` (index)
    kTime       // a lease period passes (lease_periods)
  };
  Kind kind = Kind::kDeliver;
  uint8_t replica = 0;  // index (node id - 1)
  uint8_t arg = 0;      // kTimer: the timer; kPropose: the value; kDeliver: 1 if the receiver
                        // first stops hearing its leader (Replica::forget_leader); kTransfer:
                        // the target's index
  int8_t peer = -1;     // kTimer kCatchup: the peer a random choice picks (-1: no choice)
  uint16_t index = 0;   // kDeliver, kDrop, kDuplicate: the envelope's rank in the network
};

struct ReplicaBox {
  std::optional<paxos::Replica> replica;  // always set; optional only to be rebuilt on restart
  paxos::DurableState durable;
  std::vector<paxos::PersistBatch> unsynced;  // ack-before-sync: answered for, not yet durable
  uint64_t incarnation = 0;                   // its directory's (0 unless wipes are explored)
  bool wiped = false;                         // restarted with an empty directory
  // With leases: the time it last accepted an Accept from a leader, or (re)started.
  int heard_at = 0;
  // ReplicaModel::encode's bytes for this box, kept while no step changes it (empty: not yet
  // encoded; ReplicaBoxes::mutable_at empties it).
  mutable std::string encoded;
};

// The replicas of a world, shared with the worlds stepped from it until one of them changes a
// replica (copy on write): a step changes one or two replicas, and copying every replica of every
// successor, with its log and buffers, was a quarter of a search. Reading is through a const
// reference; changing is through mutable_at(), which first copies a replica another world shares.
class ReplicaBoxes {
 public:
  size_t size() const { return boxes_.size(); }
  const ReplicaBox& operator[](size_t i) const { return *boxes_[i]; }
  // `copied` says whether it was copied here (a replica's log view must then be bound anew).
  ReplicaBox& mutable_at(size_t i, bool* copied) {
    *copied = boxes_[i].use_count() > 1;
    if (*copied) boxes_[i] = std::make_shared<ReplicaBox>(*boxes_[i]);
    boxes_[i]->encoded.clear();
    return *boxes_[i];
  }
  void push_back(ReplicaBox box) { boxes_.push_back(std::make_shared<ReplicaBox>(std::move(box))); }

  class const_iterator {
   public:
    using inner = std::vector<std::shared_ptr<ReplicaBox>>::const_iterator;
    explicit const_iterator(inner it) : it_(it) {}
    const ReplicaBox& operator*() const { return **it_; }
    const_iterator& operator++() {
      ++it_;
      return *this;
    }
    bool operator==(const const_iterator&) const = default;

   private:
    inner it_;
  };
  const_iterator begin() const { return const_iterator(boxes_.begin()); }
  const_iterator end() const { return const_iterator(boxes_.end()); }

 private:
  std::vector<std::shared_ptr<ReplicaBox>> boxes_;
};

struct World {
  ReplicaBoxes boxes;
  std::map<std::string, uint8_t> network;  // encoded envelope -> copies in flight (1 or 2)
  // Budgets used.
  int elections = 0;
  int timers = 0;
  int duplicates = 0;
  int crashes = 0;
  int compactions = 0;
  int reads = 0;
  int changes = 0;
  int wipes = 0;
  int transfers = 0;
  int time = 0;           // lease periods passed
  uint32_t proposed = 0;  // bit v: value v was proposed
  // Ghosts the replicas never read. Per (slot, ballot): the value and the replicas that made
  // accepting it durable, ever — which defines "chosen". Per slot, the first value any replica
  // learned. The highest slot of a write acknowledged to its client, and per read its floor (the
  // highest slot acknowledged or in the chosen prefix when it was asked).
  std::map<std::pair<Slot, Ballot>, std::pair<paxos::Value, paxos::NodeSet>> votes;
  std::map<Slot, paxos::Value> learned;
  Slot acknowledged = 0;
  std::map<uint64_t, Slot> read_floors;
  std::optional<std::string> violation;
};

class ReplicaModel {
 public:
  explicit ReplicaModel(ReplicaModelConfig config);

  const ReplicaModelConfig& config() const { return config_; }
  World initial() const;
  // The steps initial() took from the empty cluster (warm start), for traces.
  const std::vector<std::string>& initial_steps() const { return initial_steps_; }
  // Every action enabled in `world`, in a fixed order.
  std::vector<WorldAction> actions(const World& world) const;
  void step(World& world, const WorldAction& action) const;
  // Everything that can influence the future, canonically: equal encodings, equal futures.
  std::string encode(const World& world) const;
  // The first safety property `world` breaks, in words.
  std::optional<std::string> violation(const World& world) const { return world.violation; }

  // One line per replica, for traces.
  std::vector<std::string> describe(const World& world) const;
  std::string describe(const World& world, const WorldAction& action) const;
  static std::string describe_envelope(const std::string& encoded);

 private:
  // Replicas in the world: the bootstrap voters, and the learner a reconfiguration adds.
  int replica_count() const;
  paxos::Config config_for(int replica, const ReplicaBox& box) const;
  // The configuration that governs `slot` by the values learned below it (docs/core.md,
  // "Membership"), and its quorum system without planted bugs: what "chosen" means there.
  paxos::MembershipRef governing(const World& world, Slot slot) const;
  const paxos::QuorumSystem& true_quorum_at(const World& world, Slot slot) const;
  const paxos::QuorumSystem& true_quorum_of(const paxos::MembershipRef& m) const;
  // The highest slot up to which every slot is chosen now: a phase-2 quorum of the configuration
  // the chosen values below it make govern it accepted one value there durably, in one ballot.
  Slot chosen_prefix(const World& world) const;
  std::optional<paxos::Membership> next_membership(const paxos::Membership& now) const;
  void propose_change(World& world, int replica, const paxos::Membership& next, uint64_t seq) const;
  void check_membership(World& world, int replica) const;
  paxos::Value value_of(int value) const;
  void settle(World& world, int replica) const;
  // Replica `replica`'s box, to be changed: copied first if another world shares it, and the
  // copy bound to its own log (bind_log).
  ReplicaBox& box_to_change(World& world, int replica) const;
  // Points the box's replica's paxos::ChosenLog at the box's own durable state (with `release`):
  // a copied box holds a copy of the replica, which must read its own box's disk.
  void bind_log(ReplicaBox& box) const;
  void make_durable(World& world, int replica, const paxos::PersistBatch& batch) const;
  void send(World& world, const paxos::Envelope& envelope) const;
  void check_vouched(World& world, int replica, const paxos::Envelope& envelope) const;
  void check_learned(World& world, int replica, Slot slot, const paxos::Value& value) const;
  void check_leader_learning(World& world, int replica, bool was_leading, Slot commit_before,
                             const paxos::Envelope& envelope) const;
  void fail(World& world, std::string what) const;

  ReplicaModelConfig config_;
  mutable std::vector<std::string> initial_steps_;
  // Per number of peers k, per index p < k: a seed whose first pick among k is the p-th.
  std::vector<std::vector<uint64_t>> peer_seeds_;
  paxos::MembershipRef bootstrap_;
  // The quorum systems of the configurations met so far (few: one per change).
  mutable std::vector<std::pair<paxos::Membership, paxos::QuorumSystem>> true_quorums_;
  // While the warm start runs, no send is lost to the in-flight bound.
  mutable bool warming_ = false;
  mutable bool starting_ = false;  // in initial(): the absent replica hears and says nothing
  // The replica down through the warm start (ReplicaBounds::absent), or -1.
  int absent_replica() const {
    return config_.bounds.absent && config_.bounds.wipes > 0 ? config_.bounds.replicas - 1 : -1;
  }
};

}  // namespace synod::check
