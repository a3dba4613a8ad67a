#include "bench/etcd_driver.h"

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>

#include "etcd_kv.grpc.pb.h"

namespace synod::bench {

namespace {

using etcdserverpb::KV;

// Transaction::kMulti in one Txn: Put k1, Put k2, Put counter (etcd has no INCR), Range k3.
void build_txn(etcdserverpb::TxnRequest& txn, const Op& op, const std::string& value) {
  txn.Clear();
  for (uint64_t key : {op.key, op.key2}) {
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(Workload::key_name(key));
    put->set_value(value);
  }
  auto* counter = txn.add_success()->mutable_request_put();
  counter->set_key(Workload::counter_name(op.counter));
  counter->set_value(value);
  txn.add_success()->mutable_request_range()->set_key(Workload::key_name(op.key3));
}

// Why a Txn's answer is not the 4 results build_txn asked for; empty if it is.
std::string unexpected_txn(const etcdserverpb::TxnResponse& r) {
  using ResponseOp = etcdserverpb::ResponseOp;
  const auto& ops = r.responses();
  if (r.succeeded() && ops.size() == 4 && ops[0].response_case() == ResponseOp::kResponsePut &&
      ops[1].response_case() == ResponseOp::kResponsePut &&
      ops[2].response_case() == ResponseOp::kResponsePut &&
      ops[3].response_case() == ResponseOp::kResponseRange)
    return "";
  return "Txn: not [put, put, put, range] but " + std::to_string(ops.size()) + " results" +
         (r.succeeded() ? "" : ", not succeeded");
}

struct Connection {
  size_t endpoint = 0;
  std::shared_ptr<KV::Stub> stub;
  int inflight = 0;
};

// One request slot of a connection: an RPC in flight, or a pause after a failure. Its address
// is the completion-queue tag.
struct Call {
  size_t connection = 0;
  Op op;
  Clock::time_point start;
  bool waiting = false;            // the tag is the alarm of a pause, not an RPC
  std::shared_ptr<KV::Stub> stub;  // keeps the channel alive while the RPC runs
  std::unique_ptr<grpc::ClientContext> context;
  etcdserverpb::PutRequest put;
  etcdserverpb::PutResponse put_reply;
  etcdserverpb::RangeRequest range;
  etcdserverpb::RangeResponse range_reply;
  etcdserverpb::TxnRequest txn;
  etcdserverpb::TxnResponse txn_reply;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::PutResponse>> put_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::RangeResponse>> range_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::TxnResponse>> txn_reader;
  grpc::Status status;
  grpc::Alarm alarm;
};

class Driver {
 public:
  explicit Driver(const LoadOptions& options)
      : options_(options), workload_(options), recorder_(options) {}

  Report run() {
    for (int i = 0; i < options_.connections; ++i) {
      Connection c;
      c.endpoint = static_cast<size_t>(i) % options_.endpoints.size();
      c.stub = make_stub(c.endpoint);
      connections_.push_back(std::move(c));
    }
    if (workload_.prefilled()) recorder_.begin(Clock::now());
    const auto prefill_deadline = Clock::now() + std::chrono::seconds(120);
    for (size_t c = 0; c < connections_.size(); ++c)
      for (int p = 0; p < options_.pipeline; ++p) {
        calls_.push_back(std::make_unique<Call>());
        calls_.back()->connection = c;
        start(calls_.back().get());
      }
    int live = options_.connections * options_.pipeline;
    bool cancelled = false;
    while (live > 0) {
      void* tag = nullptr;
      bool ok = false;
      const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(10);
      const auto r = cq_.AsyncNext(&tag, &ok, deadline);
      const auto now = Clock::now();
      recorder_.tick(now);
      if (!workload_.prefilled() && now > prefill_deadline) stop_ = true;
      if (recorder_.done()) stop_ = true;
      if (stop_ && !cancelled) {
        cancelled = true;
        for (auto& c : calls_)
          if (c->context) c->context->TryCancel();
      }
      if (r != grpc::CompletionQueue::NextStatus::GOT_EVENT) continue;
      Call* call = static_cast<Call*>(tag);
      if (!complete(call, now)) --live;
    }
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
    }
    return recorder_.report();
  }

 private:
  std::shared_ptr<KV::Stub> make_stub(size_t endpoint) {
    grpc::ChannelArguments args;
    // A channel of its own per connection: separate TCP connections, as with RESP.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("synod.bench.channel", next_channel_++);
    auto channel = grpc::CreateCustomChannel(options_.endpoints[endpoint].to_string(),
                                             grpc::InsecureChannelCredentials(), args);
    return std::shared_ptr<KV::Stub>(KV::NewStub(channel));
  }

  Op next_op() { return workload_.next(); }

  void start(Call* call) {
    Connection& conn = connections_[call->connection];
    call->waiting = false;
    call->op = next_op();
    call->start = Clock::now();
    call->stub = conn.stub;
    call->context = std::make_unique<grpc::ClientContext>();
    call->context->set_deadline(std::chrono::system_clock::now() +
                                std::chrono::milliseconds(options_.request_timeout_ms));
    const std::string key = Workload::key_name(call->op.key);
    if (call->op.kind == OpKind::kMulti) {
      build_txn(call->txn, call->op, workload_.value());
      call->txn_reader = call->stub->PrepareAsyncTxn(call->context.get(), call->txn, &cq_);
      call->txn_reader->StartCall();
      call->txn_reader->Finish(&call->txn_reply, &call->status, call);
    } else if (call->op.kind == OpKind::kRead) {
      call->range.set_key(key);
      call->range_reader = call->stub->PrepareAsyncRange(call->context.get(), call->range, &cq_);
      call->range_reader->StartCall();
      call->range_reader->Finish(&call->range_reply, &call->status, call);
    } else {
      call->put.set_key(key);
      call->put.set_value(workload_.value());
      call->put_reader = call->stub->PrepareAsyncPut(call->context.get(), call->put, &cq_);
      call->put_reader->StartCall();
      call->put_reader->Finish(&call->put_reply, &call->status, call);
    }
  }

  // Handles one completion; false when the slot retires (the run is stopping).
  bool complete(Call* call, Clock::time_point now) {
    if (call->waiting) {
      if (stop_) return retire(call);
      start(call);
      return true;
    }
    const bool failed = !call->status.ok();
    if (call->op.kind == OpKind::kPrefill) {
      if (failed) {
        workload_.retry(call->op);
      } else {
        workload_.prefill_answered();
        if (workload_.prefilled()) recorder_.begin(now);
      }
    } else if (failed) {
      recorder_.failure(call->op, now, call->status.error_message());
    } else if (const std::string why = call->op.kind == OpKind::kMulti
                                           ? unexpected_txn(call->txn_reply)
                                           : std::string();
               !why.empty()) {
      recorder_.failure(call->op, now, why);  // the connection is sound: it goes on
    } else {
      recorder_.success(call->op, call->start, now);
    }
    call->context.reset();
    call->put_reader.reset();
    call->range_reader.reset();
    call->txn_reader.reset();
    if (recorder_.done()) stop_ = true;
    if (stop_) return retire(call);
    if (!failed) {
      start(call);
      return true;
    }
    // Move this connection to the next endpoint (once per failure burst) and pause.
    Connection& conn = connections_[call->connection];
    if (conn.stub == call->stub) {
      conn.endpoint = (conn.endpoint + 1) % options_.endpoints.size();
      conn.stub = make_stub(conn.endpoint);
    }
    call->stub.reset();
    call->waiting = true;
    call->alarm.Set(
        &cq_,
        std::chrono::system_clock::now() + std::chrono::milliseconds(options_.reconnect_delay_ms),
        call);
    return true;
  }

  bool retire(Call* call) {
    call->stub.reset();
    return false;
  }

  const LoadOptions& options_;
  Workload workload_;
  Recorder recorder_;
  grpc::CompletionQueue cq_;
  std::vector<Connection> connections_;
  std::vector<std::unique_ptr<Call>> calls_;  // every slot; owned here, tags on the queue
  int next_channel_ = 0;
  bool stop_ = false;
};

}  // namespace

Report run_etcd_load(const LoadOptions& options) {
  Driver driver(options);
  return driver.run();
}

}  // namespace synod::bench
