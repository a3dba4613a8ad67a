#include "tools/client_flags.h"

namespace synod::tools {

void add_client_flags(CLI::App& cmd, ClientFlags& flags) {
  const std::string tls = "TLS";
  const std::string auth = "Authentication";
  cmd.add_flag("--tls", flags.tls, "connect over TLS (to the members' --tls-listen ports)")
      ->group(tls);
  cmd.add_option("--cacert", flags.cacert,
                 "PEM CA the servers' certificates must chain to (default: the system's)")
      ->group(tls);
  cmd.add_option("--cert", flags.cert, "client certificate, for --tls-auth-clients yes")
      ->group(tls);
  cmd.add_option("--key", flags.key, "the client certificate's private key")->group(tls);
  cmd.add_option("--sni", flags.sni,
                 "server name to send and check (default: the host of each endpoint)")
      ->group(tls);
  cmd.add_flag("--insecure", flags.insecure,
               "do not check the servers' certificates (encrypted, not authenticated)")
      ->group(tls);
  cmd.add_option("--user", flags.user, "AUTH as this ACL user (default: requirepass's user)")
      ->group(auth);
  cmd.add_option("-a,--pass", flags.pass,
                 std::string("password for AUTH; safer in the environment variable ") +
                     kAuthEnvironmentVariable + ", which is read when this is not given")
      ->envname(kAuthEnvironmentVariable)
      ->group(auth);
}

Result<client::ClientOptions> ClientFlags::options(uint32_t timeout_ms) const {
  client::ClientOptions o;
  o.timeout_ms = timeout_ms;
  const bool tls_files = !cacert.empty() || !cert.empty() || !key.empty() || !sni.empty();
  if (!tls && (tls_files || insecure))
    return Status::invalid_argument("--cacert, --cert, --key, --sni and --insecure need --tls");
  if (cert.empty() != key.empty()) return Status::invalid_argument("--cert and --key go together");
  o.tls = {.enabled = tls,
           .ca_cert_file = cacert,
           .cert_file = cert,
           .key_file = key,
           .sni = sni,
           .insecure = insecure};
  if (!user.empty() && pass.empty())
    return Status::invalid_argument(std::string("--user needs a password: --pass or ") +
                                    kAuthEnvironmentVariable);
  o.user = user;
  if (!pass.empty()) o.password = pass;
  return o;
}

}  // namespace synod::tools
