// `synod server` (one replica), `synod local` (a local cluster of processes in the foreground)
// and `synod demo` (a narrated failover on three local processes).
#pragma once

namespace CLI {
class App;
}

namespace synod::tools {

void add_server_commands(CLI::App& app, int& exit_code);

}  // namespace synod::tools
