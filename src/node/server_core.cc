#include "node/server_core.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "base/planted_bugs.h"

namespace synod::node {

Result<std::unique_ptr<ServerCore>> ServerCore::open(storage::FileSystem& fs, Options options,
                                                     uint64_t seed) {
  storage::Recovered recovered;
  auto storage = storage::ReplicaStorage::open(fs, options.log, &recovered);
  if (!storage.is_ok()) return storage.status();
  paxos::DurableState durable = std::move(recovered.state);
  if (recovered.snapshot) {
    durable.snapshot =
        paxos::SnapshotRef{recovered.snapshot->slot,
                           std::make_shared<const std::string>(std::move(recovered.snapshot->data)),
                           recovered.snapshot->membership};
  }
  // The core compares incarnations as 64 bits; its peers' come from their Hellos, folded alike
  // (net/peer_transport.h).
  if (options.incarnation_from_identity) {
    options.config.incarnation = fold64((*storage)->identity().incarnation);
    // A directory initialized for a member added at run time (--join) has no bootstrap
    // configuration: the replica learns its configuration from its peers, on every start
    // (--peers names whom to ask, not who votes).
    if ((*storage)->identity().origin == storage::Identity::Origin::kJoin)
      options.config.join = true;
  }
  std::unique_ptr<ServerCore> core(new ServerCore(std::move(options), std::move(*storage)));
  core->durable_horizon_ = durable.time_horizon;
  const Slot snapshot_slot = durable.snapshot.slot;
  core->replica_ = std::make_unique<paxos::Replica>(core->options_.config, durable, seed);
  core->replica_->set_chosen_log(core->storage_->log().chosen_log());
  // The recovered snapshot's bytes are installed into the store by the first flush(); peers are
  // served from its file.
  if (snapshot_slot > 0) core->replica_->serve_snapshot_from(core->snapshot_reader(snapshot_slot));
  return core;
}

bool ServerCore::plant_bug(std::string_view name, Options& o) {
  const PlantedBugInfo* info = find_planted_bug(name);
  if (info == nullptr) return false;
  if (info->layer == BugLayer::kProtocol) {
    if (!paxos::enable_bug(name, o.config.bugs)) return false;
    o.log.bug_skip_fdatasync = o.config.bugs.skip_fdatasync;        // the log's, not the core's
    o.bug_wiped_replica_votes = o.config.bugs.wiped_replica_votes;  // the server's pins, too
    return true;
  }
  if (info->layer != BugLayer::kReplica) return false;
  static constexpr std::pair<std::string_view, bool Options::*> kFlags[] = {
      {"early-undurable-ballot", &Options::bug_early_undurable_ballot},
      {"self-answers-early", &Options::bug_self_answers_early},
      {"compact-before-snapshot-durable", &Options::bug_compact_before_snapshot_durable},
      {"ack-on-propose", &Options::bug_ack_on_propose},
      {"wall-clock-expiry", &Options::bug_wall_clock_expiry},
      {"reads-at-local-clock", &Options::bug_reads_at_local_clock},
      {"time-told-before-ready", &Options::bug_time_told_before_ready},
  };
  for (const auto& [bug, flag] : kFlags) {
    if (name == bug) {
      o.*flag = true;
      return true;
    }
  }
  if (name == "unsynced-checkpoint") return o.log.bug_unsynced_checkpoint = true;
  if (name == "marker-in-payload") return o.log.bug_marker_in_payload = true;
  if (name == "sessions-evicted-by-clock") return o.store.bug_sessions_evicted_by_clock = true;
  if (name == "exec-ignores-watch") return o.store.bug_exec_ignores_watch = true;
  return false;
}

uint64_t ServerCore::cluster_time_ms() {
  const paxos::Replica& r = *replica_;
  if (r.role() != paxos::Role::kLeader)
    return std::max({last_ms_, r.time_seen_ms(), store_.clock_ms()});
  const uint64_t now = monotonic_ms();
  if (r.ballot() != clock_ballot_) {
    start_clock(now);
  } else if (!(r.time_floor() == clock_floor_)) {
    raise_clock(now);
  }
  // (max: a monotonic clock that did step back would pause the cluster clock, not rewind it)
  if (now > base_monotonic_ms_)
    last_ms_ = std::max(last_ms_, base_ms_ + (now - base_monotonic_ms_));
  return last_ms_;
}

// Every time a read or write was served at under an earlier ballot is at most the time of the
// highest ballot that an acceptor of this leader's promise quorum saw, or below the horizon one
// of them recovered (the quorum that confirmed the read, or accepted the write, intersects this
// one, and answered before promising): see docs/core.md, "Time". The base is a time a leader of
// that ballot reached, so it adds no time; the horizon is waited out instead. Neither this
// replica's own clock as an earlier leader nor the times of lower ballots count: a leader that
// was cut off ran its clock on, unconfirmed, while its successor's paused.
void ServerCore::start_clock(uint64_t monotonic) {
  const paxos::Replica::TimeFloor& floor = replica_->time_floor();
  clock_floor_ = floor;
  const uint64_t step = options_.config.time_horizon_step_ms;
  uint64_t base = floor.seen_ms;
  ready_at_ms_ = 0;
  // A recovered horizon of the same or a higher ballot covers times its acceptor saw before it
  // restarted: start at most one step below it (the horizon less one step is a time that
  // acceptor saw), and wait it out. One of a lower ballot is covered by the higher ballot's base.
  if (floor.horizon.ms != 0 && !(floor.horizon.ballot < floor.ballot)) {
    if (floor.ballot < floor.horizon.ballot) base = 0;
    base = std::max(base, floor.horizon.ms > step ? floor.horizon.ms - step : 0);
    ready_at_ms_ = floor.horizon.ms;
  }
  if (base == 0) base = store_.clock_ms();
  if (base == 0) base = wall_ms();  // the cluster's birth: nothing was ever served
  clock_ballot_ = replica_->ballot();
  base_ms_ = base;
  base_monotonic_ms_ = monotonic;
  last_ms_ = base;
}

void ServerCore::raise_clock(uint64_t monotonic) {
  uint64_t current = last_ms_;
  if (monotonic > base_monotonic_ms_)
    current = std::max(current, base_ms_ + (monotonic - base_monotonic_ms_));
  const uint64_t ready_at = ready_at_ms_;
  start_clock(monotonic);
  if (base_ms_ < current) {
    base_ms_ = last_ms_ = current;
    base_monotonic_ms_ = monotonic;
  }
  ready_at_ms_ = std::max(ready_at_ms_, ready_at);
}

// A leader that is still waiting out a horizon tells no time: its clock may start up to a step
// below times that were served in lower ballots (start_clock), and an acceptor keeps the time of
// the highest ballot it saw. Had its Accepts carried that clock, a later leader would take it for
// this ballot's time, which "covers every time served below it" — and, with the horizon of a
// lower ballot ignored, would serve below a time already served, so a key a read saw expired
// would come back (found by sim --disk-faults, 3 replicas seed 18211 and 5 replicas seed 30789:
// a leader elected on a restarted acceptor's horizon crashed before it was ready). Until it is
// ready its ballot has no time, and acceptors keep the lower ballot's, with its horizons.
void ServerCore::tell_time() {
  if (replica_->role() != paxos::Role::kLeader) return;
  if (clock_ready() || options_.bug_time_told_before_ready)
    replica_->set_time_ms(cluster_time_ms());
}

void ServerCore::note_durable_horizon() {
  bool raised = false;
  while (!horizons_.empty() && horizons_.front().first <= durable_) {
    if (horizons_.front().second.supersedes(durable_horizon_)) {
      raised = true;
      durable_horizon_ = horizons_.front().second;
    }
    horizons_.pop_front();
  }
  if (raised) serve_reads();
}

void ServerCore::submit(uint64_t client, uint64_t seq, std::vector<std::string> args, Done done) {
  const paxos::CommandId id{client, seq};
  if (replica_->role() == paxos::Role::kLeader && !clock_ready()) {
    return done(
        kv::Reply::error("TRYAGAIN the new leader's clock has not yet passed its "
                         "predecessors'; the command was not applied"));
  }
  const uint64_t time_ms = options_.bug_wall_clock_expiry ? wall_ms() : cluster_time_ms();
  if (is_member_change(args)) return submit_member_change(id, time_ms, std::move(args), done);
  kv::KvCommand command{client, seq, time_ms, std::move(args)};
  const auto status = replica_->propose(paxos::Command{id, kv::encode_command(command)});
  if (status == paxos::ProposeStatus::kQueued) {
    if (options_.bug_ack_on_propose) return done(kv::Reply::ok());
    waiting_[id].push_back(std::move(done));
    return;
  }
  if (status == paxos::ProposeStatus::kTooLarge) {
    return done(
        too_large(options_.config.max_command_bytes, kv::encoded_command_bytes(command.args)));
  }
  if (status == paxos::ProposeStatus::kBusy) {
    done(kv::Reply::error("TRYAGAIN the leader is overloaded; the command was not applied"));
  } else {
    done(not_leader("the command was not applied"));
  }
}

void ServerCore::read(std::vector<std::string> args, Done done) {
  if (replica_->role() == paxos::Role::kLeader && !clock_ready()) {
    return done(
        kv::Reply::error("TRYAGAIN the new leader's clock has not yet passed its "
                         "predecessors'; the read was not served"));
  }
  const uint64_t id = ++next_read_id_;
  const uint64_t now_ms = options_.bug_reads_at_local_clock ? wall_ms() : cluster_time_ms();
  const auto status = replica_->read_index(id);
  if (status == paxos::ReadStatus::kQueued) {
    reads_.emplace(id, WaitingRead{std::move(args), now_ms, std::move(done), {}, false, 0});
  } else if (status == paxos::ReadStatus::kBusy) {
    done(kv::Reply::error("TRYAGAIN the leader is overloaded; the read was not served"));
  } else {
    done(not_leader("the read was not served"));
  }
}

void ServerCore::read_index(IndexDone done) {
  if (replica_->role() == paxos::Role::kLeader && !clock_ready()) return done(false, 0, 0);
  const uint64_t id = ++next_read_id_;
  const uint64_t now_ms = options_.bug_reads_at_local_clock ? wall_ms() : cluster_time_ms();
  if (replica_->read_index(id) != paxos::ReadStatus::kQueued) return done(false, 0, 0);
  WaitingRead w;
  w.now_ms = now_ms;
  w.index_done = std::move(done);
  reads_.emplace(id, std::move(w));
}

namespace {

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool parse_node_id(const std::string& text, NodeId& id) {
  uint32_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v == 0) return false;
  id = NodeId{v};
  return true;
}

}  // namespace

bool ServerCore::is_member_change(const std::vector<std::string>& args) {
  if (args.size() < 2 || lower_ascii(args[0]) != "member") return false;
  const std::string sub = lower_ascii(args[1]);
  return sub == "add-learner" || sub == "promote" || sub == "remove" || sub == "swap" ||
         sub == "transfer";
}

kv::Reply ServerCore::transfer_reply(NodeId target, paxos::ProposeStatus status) const {
  using kv::Reply;
  switch (status) {
    case paxos::ProposeStatus::kQueued:
      return Reply::simple("OK handing leadership over to " + to_string(target));
    case paxos::ProposeStatus::kNotLeader:
      return not_leader("no transfer was started");
    case paxos::ProposeStatus::kInvalid:
      return Reply::error("ERR " + to_string(target) + " is not a voter of " +
                          replica_->membership()->describe() + " other than the leader");
    default:
      return Reply::error(
          "TRYAGAIN the leader is recovering or a configuration change is in progress; no "
          "transfer was started");
  }
}

// The leader itself is to leave: it hands leadership to the most caught-up voter first, and the
// operator's retry (synod member retries TRYAGAIN) reaches the new leader, which makes the change.
void ServerCore::hand_over_first(NodeId self, const Done& done) {
  const NodeId target = most_caught_up_voter();
  if (!target.valid()) {
    return done(kv::Reply::error("ERR " + to_string(self) +
                                 " is the only voter: add and promote another member first; the "
                                 "change was not made"));
  }
  const paxos::ProposeStatus status = replica_->transfer_leadership(target);
  if (status != paxos::ProposeStatus::kQueued) return done(transfer_reply(target, status));
  done(kv::Reply::error("TRYAGAIN " + to_string(self) + " leads: handing leadership over to " +
                        to_string(target) + " first; ask again (the change was not made)"));
}

void ServerCore::submit_member_change(const paxos::CommandId& id, uint64_t time_ms,
                                      std::vector<std::string> args, Done done) {
  using Kind = paxos::MembershipChange::Kind;
  using kv::Reply;
  const paxos::MembershipRef& current = replica_->membership();
  if (replica_->role() != paxos::Role::kLeader || current == nullptr)
    return done(not_leader("the change was not made"));
  const std::string sub = lower_ascii(args[1]);
  const std::string epoch = "OK epoch " + std::to_string(current->epoch);
  paxos::MembershipChange change;
  auto usage = [&] {
    return done(Reply::error(
        "ERR usage: MEMBER ADD-LEARNER host:port [id] | MEMBER PROMOTE id | MEMBER REMOVE id | "
        "MEMBER SWAP learner-id old-id | MEMBER TRANSFER [id]"));
  };
  // Whether learner `learner` has caught up (see kCaughtUpSlots); answers TRYAGAIN if not.
  auto caught_up = [&](NodeId learner) {
    const Slot commit = replica_->commit();
    const Slot reported = replica_->peer_commit(learner);
    if (reported > 0 && reported + kCaughtUpSlots >= commit) return true;
    done(Reply::error("TRYAGAIN learner " + to_string(learner) +
                      " has not caught up yet (it reported slot " + std::to_string(reported) +
                      " of the leader's " + std::to_string(commit) +
                      "; is it running, started with --join?); the change was not made"));
    return false;
  };
  if (sub == "add-learner") {
    if (args.size() != 3 && args.size() != 4) return usage();
    change.kind = Kind::kAddLearner;
    change.address = args[2];
    if (args.size() == 4 && !parse_node_id(args[3], change.id)) return usage();
    for (const paxos::Member& m : current->members) {
      if (m.address != change.address) continue;
      // A retry of a request that added it (or the same request twice): the same answer.
      if (!m.voter && (!change.id.valid() || change.id == m.id))
        return done(Reply::integer_of(int64_t(m.id.value)));
      return done(Reply::error("ERR " + change.address + " is the peer address of " +
                               to_string(m.id) + " already"));
    }
  } else if (sub == "promote" || sub == "remove") {
    if (args.size() != 3 || !parse_node_id(args[2], change.id)) return usage();
    change.kind = sub == "promote" ? Kind::kPromote : Kind::kRemove;
    const paxos::Member* m = current->find(change.id);
    if (m == nullptr && change.id.value < current->next_id) {
      if (change.kind == Kind::kRemove) return done(Reply::simple(epoch));  // removed already
      return done(Reply::error("ERR " + to_string(change.id) + " is not a member (" +
                               current->describe() + ")"));
    }
    if (m != nullptr && m->voter && change.kind == Kind::kPromote)
      return done(Reply::simple(epoch));  // promoted already
    if (change.kind == Kind::kPromote && m != nullptr && !caught_up(change.id)) return;
    if (change.kind == Kind::kRemove && change.id == replica_->id())
      return hand_over_first(change.id, done);
  } else if (sub == "transfer") {
    // MEMBER TRANSFER [id]: hand leadership to voter `id` (the most caught-up voter if none).
    NodeId target;
    if (args.size() > 3 || (args.size() == 3 && !parse_node_id(args[2], target))) return usage();
    if (!target.valid()) target = most_caught_up_voter();
    if (target == replica_->id()) return done(Reply::simple("OK " + to_string(target) + " leads"));
    return done(transfer_reply(target, replica_->transfer_leadership(target)));
  } else if (sub == "swap") {
    if (args.size() != 4 || !parse_node_id(args[2], change.id) ||
        !parse_node_id(args[3], change.old_id))
      return usage();
    change.kind = Kind::kReplace;
    const paxos::Member* m = current->find(change.id);
    if (m != nullptr && m->voter && !current->is_member(change.old_id))
      return done(Reply::simple(epoch));  // swapped already
    if (change.old_id == replica_->id()) return hand_over_first(change.old_id, done);
    if (m != nullptr && !m->voter && !caught_up(change.id)) return;
  } else {
    return usage();
  }
  auto next = paxos::apply_change(*current, change);
  if (!next.is_ok()) return done(Reply::error("ERR " + next.status().message()));
  const NodeId added = change.kind == Kind::kAddLearner ? NodeId{next->next_id - 1} : NodeId{};
  kv::KvCommand command{id.client, id.seq, time_ms, std::move(args)};
  const auto status =
      replica_->propose_membership(paxos::Command{id, kv::encode_command(command)}, *next);
  switch (status) {
    case paxos::ProposeStatus::kQueued:
      waiting_[id].push_back([added, done = std::move(done)](const Reply& r) {
        // ADD-LEARNER answers the new member's id once the change is chosen.
        if (added.valid() && r.kind == Reply::Kind::kSimple)
          return done(Reply::integer_of(int64_t(added.value)));
        done(r);
      });
      return;
    case paxos::ProposeStatus::kUnheard:
      return done(
          Reply::error("TRYAGAIN the leader has not heard from the new voter yet (is it "
                       "running, started with --join?); the change was not made"));
    case paxos::ProposeStatus::kStale:
      return done(Reply::error(
          "TRYAGAIN another configuration change is in progress; the change was not made"));
    case paxos::ProposeStatus::kInvalid:
      return done(Reply::error("ERR the configuration after the change would be unsafe (" +
                               next->describe() + "); the change was not made"));
    case paxos::ProposeStatus::kBusy:
      return done(Reply::error("TRYAGAIN the leader is overloaded; the change was not made"));
    case paxos::ProposeStatus::kTooLarge:
      return done(Reply::error("ERR the configuration is too large; the change was not made"));
    case paxos::ProposeStatus::kNotLeader:
      return done(not_leader("the change was not made"));
  }
}

kv::Reply too_large(size_t max_command_bytes, size_t bytes) {
  return kv::Reply::error("ERR command of " + std::to_string(bytes) +
                          " bytes exceeds the maximum of " + std::to_string(max_command_bytes) +
                          " (max-command-bytes)");
}

kv::Reply ServerCore::not_leader(const char* consequence) const {
  const NodeId leader = replica_->leader();
  if (leader.valid() && leader != replica_->id()) {
    return kv::Reply::error("TRYAGAIN not the leader; n" + std::to_string(leader.value) +
                            " leads; " + consequence);
  }
  return kv::Reply::error(std::string("TRYAGAIN no leader yet; ") + consequence);
}

Result<std::vector<paxos::Envelope>> ServerCore::flush() {
  if (!sync_status_.is_ok()) return sync_status_;
  std::vector<paxos::Envelope> out;
  // Our own acceptor's answers, stepped back in, produce more effects: loop until quiet.
  for (int round = 0;; ++round) {
    SYNOD_ASSERT(round < 1000, "the core does not quiesce");
    release(out);
    note_durable_horizon();
    tell_time();
    // Read after every read_index() this Ready answers (Replica::set_clock_ms), on the same
    // monotonic clock the cluster time runs on.
    if (options_.config.read_lease_ms > 0) replica_->set_clock_ms(monotonic_ms());
    paxos::Ready ready = replica_->take_ready();
    if (observer_) {
      for (const auto& event : ready.events) observer_->event(event);
    }
    if (ready.empty()) {
      auto advanced = start_sync();
      if (!advanced.is_ok()) return advanced.status();
      if (!*advanced) break;
      continue;
    }
    SYNOD_RETURN_IF_ERROR(run(ready, out));
  }
  return out;
}

void ServerCore::deliver(std::vector<paxos::Envelope>& messages,
                         std::vector<paxos::Envelope>& out) {
  for (auto& e : messages) {
    if (observer_) observer_->released(e);
    if (e.to == replica_->id()) {
      replica_->step(e);
    } else {
      out.push_back(std::move(e));
    }
  }
}

void ServerCore::release(std::vector<paxos::Envelope>& out) {
  while (!held_.empty() && held_.front().needs <= durable_) {
    auto messages = std::move(held_.front().messages);
    held_.pop_front();
    deliver(messages, out);
  }
}

Result<bool> ServerCore::start_sync() {
  if (!sync_runner_ || storage_->sync_in_flight() || durable_ == appended_) return false;
  auto pending = storage_->begin_sync();
  if (!pending.is_ok()) return pending.status();
  const uint64_t target = appended_;
  if (observer_ && *pending) observer_->sync_started(target - durable_);
  if (!*pending) {  // already durable (starting a new segment syncs the old one)
    durable_ = target;
    return true;
  }
  storage::ReplicaStorage* storage = storage_.get();
  sync_runner_([storage] { return storage->sync_file(); },
               [this, target](Status synced) {
                 Status s = storage_->end_sync(synced);
                 if (s.is_ok()) {
                   durable_ = target;
                 } else if (sync_status_.is_ok()) {
                   sync_status_ = s;
                 }
               });
  // A runner may also run it at once, on this thread.
  if (!sync_status_.is_ok()) return sync_status_;
  return durable_ == target;
}

namespace {

// A proposer's request: it vouches for no acceptor state, so it may leave before the sync.
bool is_request(const paxos::Message& m) {
  return std::holds_alternative<paxos::PrepareMsg>(m) ||
         std::holds_alternative<paxos::AcceptMsg>(m) ||
         std::holds_alternative<paxos::CatchupRequestMsg>(m) ||
         std::holds_alternative<paxos::SnapshotRequestMsg>(m);
}

}  // namespace

Status ServerCore::run(paxos::Ready& ready, std::vector<paxos::Envelope>& out) {
  // 0. Requests may leave at once (see set_early_send) — unless the ballot they carry is not yet
  // durable: this batch raises the promise, or an earlier one that did is still being synced. A
  // ballot must be on disk before any message carrying it leaves: a replica that crashed with
  // Prepare(b) or Accept(b, v) out but promise b unsynced could pick b again after its restart
  // and propose a second value in the same ballot, which Paxos forbids. Requests to this replica
  // itself go to its acceptor at once too; what it accepts is synced before it answers.
  if (early_send_ && ((!ready.persist.promised && promise_epoch_ <= durable_) ||
                      options_.bug_early_undurable_ballot)) {
    std::vector<paxos::Envelope> to_self;
    std::erase_if(ready.messages, [&](paxos::Envelope& e) {
      if (!is_request(e.message)) return false;
      if (e.to == replica_->id()) {
        to_self.push_back(std::move(e));
      } else {
        early_send_(e);
      }
      return true;
    });
    for (const auto& e : to_self) replica_->step(e);
  }
  // 1. Persist and sync.
  if (ready.persist.snapshot) {
    const Slot slot = ready.persist.snapshot->slot;
    SYNOD_RETURN_IF_ERROR(storage_->save_snapshot(
        {slot, *ready.persist.snapshot->data, ready.persist.snapshot->membership}));
    // Peers are served from the file from now on: the core lets go of the bytes.
    if (replica_->snapshot_slot() == slot) replica_->serve_snapshot_from(snapshot_reader(slot));
  }
  if (!ready.persist.empty()) {
    storage_->append(ready.persist);
    // Promises and acceptances are what the acceptor vouches for: synced before anything leaves.
    // Chosen marks are only a cache of a fact a quorum of acceptors already holds durably (a
    // replica that loses them in a crash learns them again), so a batch of nothing but chosen
    // marks goes to the file without its own fdatasync and is synced with the next batch that
    // needs one. This saves the leader one fdatasync per round of commits.
    // So is a new time horizon: answers carrying a time past the synced one wait for it.
    const bool vouches = ready.persist.promised || !ready.persist.accepted.empty() ||
                         ready.persist.time_horizon.has_value();
    if (vouches) {
      ++appended_;
      if (ready.persist.promised) promise_epoch_ = appended_;
      if (ready.persist.time_horizon)
        horizons_.emplace_back(appended_, *ready.persist.time_horizon);
      if (!sync_runner_) {
        if (observer_) observer_->sync_started(1);
        SYNOD_RETURN_IF_ERROR(storage_->sync());
        durable_ = appended_;
        note_durable_horizon();
      }
    }
  }
  // 2. Messages may leave once everything appended so far is durable (with a sync runner, they
  // wait for the sync that covers it); our own acceptor's answers come back the same way.
  if (durable_ < appended_ && options_.bug_self_answers_early) {
    std::vector<paxos::Envelope> to_self;
    std::erase_if(ready.messages, [&](paxos::Envelope& e) {
      if (e.to != replica_->id() || is_request(e.message)) return false;
      to_self.push_back(std::move(e));
      return true;
    });
    deliver(to_self, out);
  }
  if (durable_ < appended_ && !options_.config.bugs.ack_before_sync) {
    if (!ready.messages.empty()) held_.push_back({appended_, std::move(ready.messages)});
  } else {
    deliver(ready.messages, out);
  }
  // 3. Install, apply, answer.
  if (ready.install) {
    auto restored = kv::Store::restore(*ready.install->data, options_.store);
    if (!restored.is_ok()) return restored.status();
    if (garbage_) garbage_(std::make_shared<kv::Store>(std::move(store_)));
    store_ = std::move(*restored);
    store_.set_disposer(garbage_);
    applied_ = ready.install->slot;
    last_snapshot_ = std::max(last_snapshot_, applied_);
    log_bytes_ = 0;
    last_snapshot_bytes_ = ready.install->data->size();
    if (observer_) observer_->snapshot_installed(applied_, ready.install->data->size());
  }
  for (const auto& entry : ready.committed) apply(entry);
  for (const auto& outcome : ready.outcomes) {
    if (outcome.outcome == paxos::Outcome::kFailed) {
      reply(outcome.id, kv::Reply::error("TRYAGAIN leadership changed before the command was "
                                         "proposed; the command was not applied"));
    } else if (outcome.outcome == paxos::Outcome::kUnknown) {
      reply(outcome.id, kv::Reply::error("UNKNOWN leadership changed; the command may or may "
                                         "not take effect: retry it with the same id"));
    } else if (waiting_.count(outcome.id) != 0) {
      // Chosen, but applied as part of an installed snapshot, not by apply(): the state
      // machine's exactly-once memory has its reply.
      auto remembered = store_.remembered_reply(outcome.id.client, outcome.id.seq);
      reply(outcome.id, remembered ? *remembered
                                   : kv::Reply::error("UNKNOWN the command was chosen but its "
                                                      "reply is no longer known"));
    }
    // Otherwise kChosen was answered by apply(), with the state machine's reply.
  }
  for (const auto& result : ready.reads) {
    auto it = reads_.find(result.read_id);
    if (it == reads_.end()) continue;
    if (it->second.index_done && !result.ok) {
      IndexDone done = std::move(it->second.index_done);
      reads_.erase(it);
      done(false, 0, 0);
      continue;
    }
    if (result.ok) {
      it->second.confirmed = true;
      it->second.slot = result.slot;
      continue;
    }
    Done done = std::move(it->second.done);
    reads_.erase(it);
    done(kv::Reply::error("TRYAGAIN leadership changed; the read was not served"));
  }
  serve_reads();
  if (snapshot_due()) {
    start_snapshot();
    if (!sync_status_.is_ok()) return sync_status_;
  }
  return Status::ok();
}

bool ServerCore::snapshot_due() const {
  if (snapshot_in_flight_) return false;
  // Each replica waits its own multiple of the intervals, 1 to 1.5 (by its id): replicas that
  // snapshotted at the same slot forked at once, and on a machine that runs several of them the
  // children and their copy-on-write faults together starved the loops into elections.
  const NodeId self = options_.config.self;
  const bool by_slots =
      options_.snapshot_every > 0 && applied_ >= last_snapshot_ &&
      applied_ - last_snapshot_ >= staggered_interval(self, options_.snapshot_every);
  const bool by_bytes = options_.snapshot_log_bytes > 0 &&
                        log_bytes_ >= staggered_interval(self, std::max(options_.snapshot_log_bytes,
                                                                        last_snapshot_bytes_));
  return by_slots || by_bytes;
}

void ServerCore::start_snapshot() {
  const Slot slot = applied_;
  last_snapshot_ = slot;  // the next is due snapshot_every slots on, whether this one works or not
  log_bytes_ = 0;
  snapshot_in_flight_ = true;
  if (options_.bug_compact_before_snapshot_durable) {
    Status compacted = storage_->log().compact(slot);
    if (!compacted.is_ok() && sync_status_.is_ok()) sync_status_ = compacted;
  }
  // Runs on an image of this object as it is now (a forked child's copy-on-write memory, or at
  // once): it may touch nothing but the store it encodes and the partial file it writes.
  // Timed on the replica's own clock (the simulator's, in the simulator): this object reads no
  // clock of its own.
  SnapshotWork work = [this, slot,
                       membership = replica_->membership_at(slot)]() -> Result<SnapshotMade> {
    const uint64_t started = raw_monotonic_ms();
    std::string data = store_.snapshot();
    const uint64_t encoded = raw_monotonic_ms();
    SnapshotMade made{slot, data.size(), paxos::snapshot_digest(data), encoded - started, 0};
    SYNOD_RETURN_IF_ERROR(storage_->write_snapshot({slot, std::move(data), membership}));
    made.write_ms = raw_monotonic_ms() - encoded;
    return made;
  };
  auto done = [this, slot](Result<SnapshotMade> made) { finish_snapshot(slot, std::move(made)); };
  if (snapshot_runner_) {
    snapshot_runner_(std::move(work), std::move(done));
  } else {
    done(work());
  }
}

void ServerCore::finish_snapshot(Slot slot, Result<SnapshotMade> made) {
  snapshot_in_flight_ = false;
  if (!made.is_ok()) {
    if (observer_) observer_->snapshot_failed(slot, made.status());
    // What it left is removed here, or else by the next adoption or restart.
    (void)storage_->discard_snapshot(slot);
    return;
  }
  SYNOD_ASSERT(made->slot == slot, "a snapshot's work made another snapshot");
  const uint64_t started = raw_monotonic_ms();
  auto adopted = storage_->adopt_snapshot(slot);
  if (!adopted.is_ok()) {
    if (sync_status_.is_ok()) sync_status_ = adopted.status();
    return;
  }
  if (!*adopted) return;  // a snapshot as new (a peer's) came first
  last_snapshot_bytes_ = made->bytes;
  replica_->compact(slot, paxos::SnapshotBytes{made->bytes, made->digest, snapshot_reader(slot)});
  if (observer_)
    observer_->snapshot_saved(slot, made->bytes, made->encode_ms, made->write_ms,
                              raw_monotonic_ms() - started);
  // Writes that came while the child ran may already make the next one due: taken now, not at the
  // next write, which may never come (the log since this snapshot is held in memory until then).
  if (snapshot_due()) start_snapshot();
}

paxos::SnapshotReader ServerCore::snapshot_reader(Slot slot) {
  return [this, slot](uint64_t offset, size_t n) -> std::optional<std::string> {
    auto bytes = storage_->read_snapshot(slot, offset, n);
    if (!bytes.is_ok()) {
      if (observer_) observer_->snapshot_unreadable(slot, bytes.status());
      return std::nullopt;
    }
    return std::move(*bytes);
  };
}

void ServerCore::apply(const paxos::SlotValue& entry) {
  if (entry.value.membership) {
    // A configuration change: the core adopted it; the state machine has nothing to apply, and the
    // request that asked for it is answered with the new configuration's epoch.
    for (const auto& command : entry.value.commands) {
      reply(command.id,
            kv::Reply::simple("OK epoch " + std::to_string(entry.value.membership->epoch)));
    }
    applied_ = entry.slot;
    if (observer_) observer_->applied(entry);
    return;
  }
  for (const auto& command : entry.value.commands) {
    log_bytes_ += command.payload.size();
    auto decoded = kv::decode_command(command.payload);
    const kv::Reply r = decoded.is_ok() ? store_.apply(*decoded)
                                        : kv::Reply::error("ERR undecodable command in the log");
    reply(command.id, r);
  }
  applied_ = entry.slot;
  if (observer_) observer_->applied(entry);
}

void ServerCore::serve_reads() {
  // Collected first: an answer may call back into this object (a client's next request).
  std::vector<std::pair<Done, kv::Reply>> answers;
  std::vector<std::function<void()>> indexes;
  for (auto it = reads_.begin(); it != reads_.end();) {
    WaitingRead& w = it->second;
    // A follower's read index waits for the follower's state machine, not this one. A read's
    // time must be below this replica's synced horizon: its acceptor counted towards the quorum
    // that confirmed the read, so it must not forget after a crash that it saw that time.
    // (The planted bug keeps the old behaviour, which had no such time.)
    const bool time_durable =
        options_.bug_reads_at_local_clock ||
        (durable_horizon_.ballot == replica_->ballot() && w.now_ms <= durable_horizon_.ms);
    if (!w.confirmed || (!w.index_done && applied_ < w.slot) || !time_durable) {
      ++it;
      continue;
    }
    if (w.index_done) {
      indexes.push_back([done = std::move(w.index_done), slot = w.slot, time = w.now_ms] {
        done(true, slot, time);
      });
    } else {
      answers.emplace_back(std::move(w.done), store_.read(w.args, w.now_ms));
    }
    it = reads_.erase(it);
  }
  for (auto& index : indexes) index();
  for (auto& [done, answer] : answers) done(answer);
}

void ServerCore::reply(const paxos::CommandId& id, const kv::Reply& r) {
  auto it = waiting_.find(id);
  if (it == waiting_.end()) return;
  auto callbacks = std::move(it->second);
  waiting_.erase(it);
  for (auto& done : callbacks) done(r);
}

NodeId ServerCore::most_caught_up_voter() const {
  const paxos::Replica& r = *replica_;
  if (r.role() != paxos::Role::kLeader || r.membership() == nullptr) return kNoNode;
  NodeId best = kNoNode;
  Slot best_commit = 0;
  for (NodeId voter : r.membership()->voters()) {
    if (voter == r.id()) continue;
    const Slot commit = r.peer_commit(voter);
    if (!best.valid() || commit > best_commit) {
      best = voter;
      best_commit = commit;
    }
  }
  return best;
}

}  // namespace synod::node
