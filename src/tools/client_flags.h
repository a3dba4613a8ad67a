// The connection flags of Synod's client commands (`synod status`, `synod snapshot save`), as
// redis-cli spells them: --tls, --cacert, --cert, --key, --sni, --insecure for TLS; --user and
// --pass for AUTH, the password also from the environment variable SYNOD_AUTH (as redis-cli's
// REDISCLI_AUTH) so that it need not appear on the command line or in `ps`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "base/status.h"
#include "client/resp_client.h"

namespace synod::tools {

// The environment variable that holds the password when --pass is not given.
inline constexpr const char* kAuthEnvironmentVariable = "SYNOD_AUTH";

struct ClientFlags {
  bool tls = false;
  std::string cacert, cert, key, sni;
  bool insecure = false;
  std::string user;
  std::string pass;

  // The options these flags ask for, with `timeout_ms`; an error for flags that do not go
  // together (--cacert without --tls, --cert without --key, --user without a password).
  Result<client::ClientOptions> options(uint32_t timeout_ms) const;
};

void add_client_flags(CLI::App& cmd, ClientFlags& flags);

}  // namespace synod::tools
