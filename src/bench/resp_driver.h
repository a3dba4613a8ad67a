// The RESP driver of `synod bench kv`: SET key value / GET key, or transactions (MULTI ... EXEC
// of 4 commands, EVALSHA of a 2-call script loaded by SCRIPT LOAD when each connection opens),
// over many non-blocking connections on one thread (Asio), for Synod and for Redis. Every reply
// of a transaction is validated (+OK and +QUEUED, EXEC's array of 4, EVALSHA's counter); one
// that is not as expected counts as an error. Connections are spread round-robin
// over the endpoints; a connection that fails (reset, refused, a request unanswered past the
// timeout) counts its requests in flight as errors, waits briefly and reconnects to the next
// endpoint, so a load survives the loss of one server.
#pragma once

#include "bench/load.h"

namespace synod::bench {

// Runs the load to its end; the report is empty (finished = false) only if the window was
// never reached, for instance because prefill could not complete.
Report run_resp_load(const LoadOptions& options);

}  // namespace synod::bench
