#include "node/router.h"

#include <algorithm>
#include <utility>

#include "kv/transaction.h"

namespace synod::node {

namespace {

bool starts_with(const kv::Reply& r, std::string_view prefix) {
  return r.kind == kv::Reply::Kind::kError && r.text.compare(0, prefix.size(), prefix) == 0;
}

constexpr std::pair<const char*, Router::PlantedBug> kPlantedBugs[] = {
    {"stale-follower-reads", Router::PlantedBug::kStaleFollowerReads},
    {"ack-before-chosen", Router::PlantedBug::kAckBeforeChosen},
    {"follower-read-before-apply", Router::PlantedBug::kFollowerReadBeforeApply},
    {"forward-retry-new-id", Router::PlantedBug::kForwardRetryNewId},
    {"duplicate-forwards-run", Router::PlantedBug::kDuplicateForwardsRun},
    {"multi-split", Router::PlantedBug::kMultiSplit},
    {"forward-refusal-trusted", Router::PlantedBug::kForwardRefusalTrusted},
};

}  // namespace

const std::vector<std::string>& Router::planted_bug_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [name, bug] : kPlantedBugs) out.emplace_back(name);
    return out;
  }();
  return names;
}

std::optional<Router::PlantedBug> Router::parse_planted_bug(std::string_view name) {
  if (name.empty()) return PlantedBug::kNone;
  for (const auto& [known, bug] : kPlantedBugs)
    if (name == known) return bug;
  return std::nullopt;
}

// A request in progress: one client command, through every attempt until its answer.
struct Router::Op {
  uint64_t number = 0;  // arrival order
  std::shared_ptr<Session> session;
  Done done;
  std::vector<std::string> args;
  bool read = false;
  uint64_t client = 0, seq = 0;
  uint64_t deadline_ms = 0;
  uint64_t retry_at_ms = 0;  // between attempts: when to try again
  uint64_t forward_id = 0;   // while forwarded: the request id awaited
  NodeId forward_to;         // ... from this peer
  uint64_t forward_deadline_ms = 0;
  bool maybe_applied = false;         // some attempt may have taken effect
  bool maybe_applied_before = false;  // ... some attempt before the current one
  bool finished = false;  // answered (or dropped with its session): later results are ignored
  kv::Reply last_refusal;
};

bool Router::Arrival::operator()(const std::shared_ptr<Op>& a, const std::shared_ptr<Op>& b) const {
  return a->number < b->number;
}

Router::Router(ServerCore& core, RouterPeers& peers, RouterClock& clock, Options options)
    : core_(core), peers_(peers), clock_(clock), options_(std::move(options)), ids_(options_.seed) {
  next_request_id_ = (ids_.next() >> 1) | 1;
}

Router::~Router() {
  stop();
}

void Router::start() {
  if (started_ || stopped_) return;
  started_ = true;
  clock_.after(options_.tick_ms, [this, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.expired()) tick();
  });
}

void Router::stop() {
  stopped_ = true;
}

std::shared_ptr<Router::Session> Router::open_session() {
  return std::make_shared<Session>(ids_.next() | 1);  // 0 means untracked
}

void Router::tick() {
  if (stopped_) return;
  core_.tick();
  const uint64_t now = clock_.now_ms();
  // A new leader: forwards to the old one are sent again at once (writes keep their command id,
  // so one that did reach the old leader is still applied at most once).
  const NodeId leader = core_.replica().leader();
  const bool leader_changed = leader != last_leader_;
  last_leader_ = leader;
  // Read-index requests unanswered too long, or to an old leader: their reads go again (a late
  // reply is ignored). Every read not yet answered is in waiting_.
  OpSet reindex;
  std::erase_if(index_requests_, [&](auto& entry) {
    if (entry.second.deadline_ms > now && !leader_changed) return false;
    reindex.insert(entry.second.ops.begin(), entry.second.ops.end());
    return true;
  });
  // Ops between attempts, forwards unanswered too long, reads whose index request expired, and
  // requests past their deadline.
  std::vector<std::shared_ptr<Op>> due;
  for (const auto& op : waiting_)
    if ((op->retry_at_ms && op->retry_at_ms <= now) ||
        (op->forward_id && (op->forward_deadline_ms <= now || leader_changed)) ||
        op->deadline_ms <= now || reindex.count(op))
      due.push_back(op);
  for (const auto& op : due) {
    waiting_.erase(op);
    if (op->forward_id) {
      forwarded_.erase(op->forward_id);
      op->forward_id = 0;
    }
    op->retry_at_ms = 0;
    attempt(op);
  }
  wake();
  clock_.after(options_.tick_ms, [this, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.expired()) tick();
  });
}

void Router::after_flush() {
  if (stopped_) return;
  serve_indexed_reads();
  send_index_request();
}

// The planted bug multi-split: a transaction's commands, each its own log entry, proposed one
// after another, so that other clients' commands come between them and a failover (or a
// connection cut) can leave half of the transaction applied.
struct Router::SplitExec {
  std::vector<std::vector<std::string>> parts;  // EXEC entries of one command each
  size_t next = 0;
  std::vector<kv::Reply> replies;
  Done done;
};

void Router::execute(const std::shared_ptr<Session>& session, std::vector<std::string> args,
                     Done done) {
  // Refused here, before it is proposed or forwarded: no message could carry it.
  if (const size_t bytes = kv::encoded_command_bytes(args); bytes > options_.max_command_bytes)
    return done(too_large(options_.max_command_bytes, bytes));
  if (options_.bug == PlantedBug::kMultiSplit && !args.empty() && args[0] == "EXEC") {
    if (auto tx = kv::decode_exec(args); tx && tx->commands.size() > 1) {
      // One EXEC entry per queued command, the first carrying the watches.
      auto split = std::make_shared<SplitExec>();
      for (size_t i = 0; i < tx->commands.size(); ++i) {
        kv::Transaction part;
        if (i == 0) part.watches = std::move(tx->watches);
        part.commands.push_back(std::move(tx->commands[i]));
        split->parts.push_back(kv::encode_exec(part));
      }
      split->done = std::move(done);
      return execute_part(session, split);
    }
  }
  auto op = std::make_shared<Op>();
  op->number = next_op_++;
  op->session = session;
  op->done = std::move(done);
  // EVAL_RO / EVALSHA_RO of a script this replica has cached is a read too (kv/scripting.h).
  op->read = core_.store().serves_as_read(args);
  (op->read ? counters_.reads : counters_.writes)++;
  op->args = std::move(args);
  op->client = session->client();
  if (!op->read) op->seq = session->next_seq(core_.store().first_seq());
  op->deadline_ms = clock_.now_ms() + options_.request_timeout_ms;
  // A connection's commands take effect in the order it sent them, as with Redis. Writes go to
  // the log in order and reads may run together, but a read waits for the connection's earlier
  // writes (its read index would not cover a write still queued) and a write for its earlier
  // reads (a read sees the state machine as of when it is served, which must not include it).
  if (!session->deferred_.empty() || must_wait(*session, *op)) {
    session->deferred_.push_back(op);
    return;
  }
  start_op(op);
}

void Router::execute_part(const std::shared_ptr<Session>& session,
                          const std::shared_ptr<SplitExec>& split) {
  execute(session, split->parts[split->next],
          [this, session, split, alive = std::weak_ptr<int>(alive_)](const kv::Reply& reply) {
            // An abort (the first part's watches), an error or UNKNOWN ends the transaction
            // here, with the parts before it applied.
            if (reply.kind != kv::Reply::Kind::kArray) return split->done(reply);
            split->replies.insert(split->replies.end(), reply.elements.begin(),
                                  reply.elements.end());
            if (++split->next == split->parts.size())
              return split->done(kv::Reply::array(std::move(split->replies)));
            // From the timer, not from inside the state machine's callback.
            clock_.after(0, [this, session, split, alive] {
              if (!alive.expired() && !stopped_ && !session->closed_) execute_part(session, split);
            });
          });
}

bool Router::must_wait(const Session& session, const Op& op) {
  return op.read ? session.writes_in_progress_ > 0 : session.reads_in_progress_ > 0;
}

void Router::start_op(const std::shared_ptr<Op>& op) {
  ++(op->read ? op->session->reads_in_progress_ : op->session->writes_in_progress_);
  op->deadline_ms = clock_.now_ms() + options_.request_timeout_ms;
  attempt(op);
}

void Router::attempt(const std::shared_ptr<Op>& op) {
  if (op->finished) return;
  if (clock_.now_ms() >= op->deadline_ms) {
    ++counters_.unknown;
    if (op->maybe_applied)
      return finish(
          op,
          kv::Reply::error("UNKNOWN no answer from the cluster in time; the command may or may not "
                           "have taken effect"));
    std::string why = op->last_refusal.text;
    if (why.empty())
      why = "TRYAGAIN no leader could be reached in time; the command was not applied";
    return finish(op, kv::Reply::error(why));
  }
  const NodeId self = options_.id;
  const NodeId leader = core_.replica().leader();
  const bool leads = core_.replica().role() == paxos::Role::kLeader;
  auto done = [this, op](const kv::Reply& r) {
    if (op->read && !op->finished && r.kind != kv::Reply::Kind::kError) served(op->client);
    on_result(op, r);
  };
  if (options_.bug == PlantedBug::kStaleFollowerReads && op->read && !leads) {
    served(op->client);
    return finish(op, core_.store().read(op->args, clock_.wall_ms()));
  }
  if (options_.bug == PlantedBug::kAckBeforeChosen && !op->read && leads) {
    core_.submit(op->client, op->seq, op->args, [](const kv::Reply&) {});
    wake();
    return finish(op, kv::Reply::ok());
  }
  if (leads || !leader.valid() || leader == self) {
    waiting_.insert(op);
    if (op->read) {
      core_.read(op->args, done);
    } else {
      op->maybe_applied_before = op->maybe_applied;
      op->maybe_applied = true;  // it may reach an acceptor from here on
      core_.submit(op->client, op->seq, op->args, done);
    }
    wake();
    return;
  }
  if (op->read && options_.follower_reads) {
    // Served here, by a read index the leader gives for the whole batch (send_index_request).
    waiting_.insert(op);
    index_gathering_.push_back(op);
    wake();
    return;
  }
  // Forward to the leader; the reply (or its absence) comes back through on_forward_reply/tick.
  ++counters_.forwarded;
  op->forward_id = next_request_id_++;
  op->forward_to = leader;
  op->forward_deadline_ms = clock_.now_ms() + options_.forward_timeout_ms;
  if (!op->read) {
    // The planted bug forward-retry-new-id sends a write that may already have been applied
    // again under a new command id, which the state machine cannot tell from a new command.
    if (options_.bug == PlantedBug::kForwardRetryNewId && op->maybe_applied)
      op->seq = op->session->next_seq(core_.store().first_seq());
    op->maybe_applied_before = op->maybe_applied;
    op->maybe_applied = true;
  }
  forwarded_[op->forward_id] = op;
  waiting_.insert(op);
  peers_.send_forward(leader, {op->forward_id, op->read, op->client, op->seq, op->args});
}

void Router::on_result(const std::shared_ptr<Op>& op, const kv::Reply& reply) {
  if (op->finished) return;
  waiting_.erase(op);
  if (starts_with(reply, "TRYAGAIN")) {
    // Definitely not applied by this attempt: try again shortly (a leader may be elected).
    op->last_refusal = reply;
    op->maybe_applied = op->maybe_applied_before;
    return retry_later(op);
  }
  if (starts_with(reply, "UNKNOWN")) {
    op->maybe_applied = true;
    return retry_later(op);  // the same id: applied at most once
  }
  if (starts_with(reply, "SESSIONEXPIRED") || starts_with(reply, "ERR command too old")) {
    // The state machine no longer knows this (client, seq): it refused this attempt, as it will
    // every later one with the same seq.
    op->maybe_applied = op->maybe_applied_before;
    if (!op->maybe_applied && !op->session->closed_) {
      // No attempt can take effect, so the command never did: send it again with a seq the store
      // does not doubt (it doubted this one because other clients' sessions were evicted since
      // the seq was given: the table turned over while the command was on its way).
      op->seq = op->session->next_seq(core_.store().first_seq());
      op->last_refusal = kv::Reply::error(
          "TRYAGAIN the session table turned over faster than the command reached the log; the "
          "command was not applied");
      return retry_later(op);
    }
    ++counters_.unknown;
    return finish(op, kv::Reply::error("UNKNOWN this connection's exactly-once session expired "
                                       "(the session table is full): the command may or may not "
                                       "have taken effect"));
  }
  finish(op, reply);
}

void Router::retry_later(const std::shared_ptr<Op>& op) {
  ++counters_.retries;
  op->retry_at_ms = clock_.now_ms() + options_.tick_ms;
  waiting_.insert(op);
}

void Router::finish(const std::shared_ptr<Op>& op, const kv::Reply& reply) {
  if (op->finished) return;
  op->finished = true;
  waiting_.erase(op);
  if (op->forward_id) forwarded_.erase(op->forward_id);
  Session& session = *op->session;
  if (session.closed_) return;
  if (op->done) op->done(reply);
  if (session.closed_) return;  // the answer closed the connection
  --(op->read ? session.reads_in_progress_ : session.writes_in_progress_);
  // What waited goes now, in order, until one must wait again.
  while (!session.deferred_.empty() && !must_wait(session, *session.deferred_.front())) {
    auto next = session.deferred_.front();
    session.deferred_.pop_front();
    start_op(next);
  }
}

bool Router::take_forward(NodeId from, uint64_t request_id) {
  TakenForwards& taken = taken_forwards_[from];
  const uint64_t now = clock_.now_ms();
  while (!taken.order.empty() && (taken.order.size() >= kForwardMemory ||
                                  taken.order.front().first + kForwardMemoryMs < now)) {
    taken.ids.erase(taken.order.front().second);
    taken.order.pop_front();
  }
  if (!taken.ids.insert(request_id).second) return false;
  taken.order.emplace_back(now, request_id);
  return true;
}

void Router::on_forward(NodeId from, net::Forward& f) {
  const uint64_t id = f.request_id;
  if (options_.bug != PlantedBug::kDuplicateForwardsRun && !take_forward(from, id)) {
    log("dropped a copy of forward #" + std::to_string(id) + " from n" +
        std::to_string(from.value) + ", taken before");
    return;
  }
  ++counters_.forwards_served;
  const bool read = f.read;
  const uint64_t client = f.client;
  auto done = [this, from, id, read, client](const kv::Reply& r) {
    if (read && r.kind != kv::Reply::Kind::kError) served(client);
    std::string bytes;
    kv::encode_reply(bytes, r);
    // A reply may be larger than any command (one that returns a value APPENDs built up): one
    // too large for a frame is answered with an error instead.
    if (bytes.size() + 64 > options_.max_frame_bytes) {
      const size_t size = bytes.size();
      bytes.clear();
      kv::encode_reply(bytes, kv::Reply::error("ERR the reply of " + std::to_string(size) +
                                               " bytes is too large to forward; ask the leader"));
    }
    if (!stopped_) peers_.send_forward_reply(from, {id, std::move(bytes)});
  };
  if (f.args.empty() || (kv::classify(f.args[0]) == kv::CommandClass::kUnknown &&
                         !ServerCore::is_member_change(f.args)))
    return done(kv::Reply::error("ERR not a replicated command"));
  // Never forwarded again: on a replica that is not the leader the core refuses at once
  // (TRYAGAIN, naming the leader it believes in), and the sender looks for the leader itself.
  if (f.read)
    core_.read(std::move(f.args), done);
  else
    core_.submit(f.client, f.seq, std::move(f.args), done);
  wake();
}

void Router::on_forward_reply(NodeId from, net::ForwardReply& r) {
  auto it = forwarded_.find(r.request_id);
  if (it == forwarded_.end() || it->second->forward_to != from) return;  // late, or not ours
  auto op = it->second;
  forwarded_.erase(it);
  op->forward_id = 0;
  auto reply = kv::decode_reply(r.reply);
  if (!reply.is_ok()) {
    log("undecodable reply to a forwarded command");
    waiting_.erase(op);
    return retry_later(op);
  }
  // A refusal speaks for the copy of the forward that it answers, not for the write: the network
  // may have delivered another copy to an earlier incarnation of the same replica (its memory of
  // the forwards it took died with it), which proposed it, so this write may yet be applied
  // (sim --disk-faults, seed 40640 of 50,000 with 3 replicas: a client told "not applied" of a
  // write that was chosen). Its later attempts keep its id, so it is applied at most once, and
  // if none succeeds its client hears UNKNOWN.
  // (duplicate-forwards-run plants the router before both fixes: the leader runs a copy it took
  // before, and its refusal of the first copy is trusted.)
  if (!op->read && starts_with(*reply, "TRYAGAIN") &&
      options_.bug != PlantedBug::kForwardRefusalTrusted &&
      options_.bug != PlantedBug::kDuplicateForwardsRun)
    op->maybe_applied_before = true;
  on_result(op, *reply);
}

// The leader's side of a follower read: confirm leadership with a quorum, answer with the read
// index, and send the follower a heartbeat right away so that it learns the chosen prefix up to
// that slot without waiting for the next one.
void Router::on_read_index_request(NodeId from, uint64_t request_id) {
  ++counters_.index_requests_served;
  // The reads' time is the cluster time now, when the index is fixed, as for reads on the
  // leader (ServerCore::read_index): state through the index at a later time could show a key
  // expired that a write after the index (acknowledged before that time) had kept alive.
  core_.read_index([this, from, request_id](bool ok, Slot slot, uint64_t time_ms) {
    if (stopped_) return;
    if (ok) core_.share_commit(from, slot);
    peers_.send_read_index_reply(from, {request_id, ok, slot, time_ms});
  });
  wake();
}

// One read-index request per flush, for every read gathered since the previous one (the leader
// batches requests that arrive together into one confirmation round).
void Router::send_index_request() {
  if (index_gathering_.empty() || stopped_) return;
  const NodeId leader = core_.replica().leader();
  auto ops = std::move(index_gathering_);
  index_gathering_.clear();
  if (!leader.valid() || leader == options_.id || core_.replica().role() == paxos::Role::kLeader) {
    for (const auto& op : ops) {  // leadership moved: each read finds its way again
      waiting_.erase(op);
      attempt(op);
    }
    return;
  }
  ++counters_.index_requests;
  const uint64_t id = next_request_id_++;
  index_requests_[id] =
      IndexRequest{leader, clock_.now_ms() + options_.forward_timeout_ms, std::move(ops)};
  peers_.send_read_index_request(leader, {id});
}

void Router::on_read_index_reply(NodeId from, const net::ReadIndexReply& r) {
  auto it = index_requests_.find(r.request_id);
  if (it == index_requests_.end() || it->second.to != from) return;  // late, or not ours
  auto ops = std::move(it->second.ops);
  index_requests_.erase(it);
  for (const auto& op : ops) {
    if (op->finished) continue;
    if (r.ok) {
      index_ready_.push_back({op, r.slot, r.leader_ms});
    } else {
      on_result(op, kv::Reply::error("TRYAGAIN leadership changed; the read was not served"));
    }
  }
  serve_indexed_reads();
  wake();
}

// Reads given an index are served once this replica's state machine reflects that slot: it then
// holds every write acknowledged before the read was asked, and only chosen commands.
void Router::serve_indexed_reads() {
  const Slot applied = core_.applied();
  std::vector<IndexedRead> ready;
  std::erase_if(index_ready_, [&](IndexedRead& r) {
    if (r.op->finished) return true;
    // The planted bug follower-read-before-apply serves as soon as the index arrives.
    if (applied < r.slot && options_.bug != PlantedBug::kFollowerReadBeforeApply) return false;
    ready.push_back(std::move(r));
    return true;
  });
  for (auto& r : ready) {
    ++counters_.follower_reads;
    served(r.op->client);
    finish(r.op, core_.store().read(r.op->args, r.leader_ms));
  }
}

}  // namespace synod::node
