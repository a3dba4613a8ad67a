// The etcd driver of `synod bench kv`: etcd's v3 KV API over gRPC (Put, and Range with its
// default linearizable semantics; for Transaction::kMulti a Txn of Put k1, Put k2, Put counter
// and Range k3, as etcd has no INCR, its answer checked for those 4 results; no kEvalsha), with the
// async API on one completion queue polled by the calling thread. Each of `connections` connections
// is its own channel (its own TCP connection, HTTP/2 multiplexing `pipeline` calls). A call that
// fails is an error; its connection moves to the next endpoint and goes on after a short pause, so
// a load survives the loss of a member.
#pragma once

#include "bench/load.h"

namespace synod::bench {

Report run_etcd_load(const LoadOptions& options);

}  // namespace synod::bench
