// TLS end to end (docs/operations.md, "Deploying with TLS", tried step by step): certificates made
// at test time by scripts/tls-certs (the openssl CLI), a 3-replica cluster of real processes with
// mutual TLS between replicas and a TLS client port, and real clients: redis-cli --tls, redis-py
// with ssl=True, `openssl s_client` as a rogue peer. A peer speaking plaintext, one without a
// certificate, one with a certificate from another CA, and one with a valid certificate for
// another node are each refused and logged while the cluster keeps serving.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "net/wire.h"
#include "process/local_cluster.h"
#include "tools/e2e_support.h"

namespace synod::tools {
namespace {

using process::LocalCluster;

// run_shell, trailing newlines removed.
Ran run(const std::string& cmd) {
  Ran ran = run_shell(cmd);
  while (!ran.output.empty() && ran.output.back() == '\n') ran.output.pop_back();
  return ran;
}

// `synod ARGS...` in the background, its output in `log`; stopped with SIGTERM (then SIGKILL) when
// destroyed.
class Child {
 public:
  Child(std::vector<std::string> args, const std::string& log) {
    args.insert(args.begin(), SYNOD_BINARY);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (!stop(10000)) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // SIGTERM, then its exit code once it has exited within `timeout_ms` (nullopt if not).
  std::optional<int> stop(int timeout_ms) {
    if (exit_code_) return exit_code_;
    ::kill(pid_, SIGTERM);
    eventually(
        [&] {
          int status = 0;
          if (::waitpid(pid_, &status, WNOHANG) == pid_)
            exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          return exit_code_.has_value();
        },
        timeout_ms);
    return exit_code_;
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

class TlsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/synod-tls-e2e-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    certs_ = dir_ + "/tls";
    const Ran made = run(SYNOD_SOURCE_DIR "/scripts/tls-certs " + certs_ + " 3");
    ASSERT_EQ(made.exit_code, 0) << made.output;
    ca_ = certs_ + "/ca.crt";
  }

  void TearDown() override {
    if (cluster_) {
      for (int id : cluster_->reap())
        ADD_FAILURE() << "n" << id << " exited: " << cluster_->log_path(id);
      cluster_->stop_all();
    }
    if (!HasFailure()) std::system(("rm -rf " + dir_).c_str());
  }

  // The options of docs/operations.md, each replica with its own certificate (n{id}), from
  // `certs` (the test's by default).
  // `auth_clients` "": left to `extra` (a --config file).
  void start(const std::string& auth_clients, std::string certs = "",
             std::vector<std::string> extra = {}) {
    if (certs.empty()) certs = certs_;
    LocalCluster::Options o;
    o.binary = SYNOD_BINARY;
    o.dir = dir_ + "/cluster";
    o.replicas = 3;
    // Six client ports: plaintext (the harness's INFO, on loopback) and TLS.
    uint16_t client_ports = 0;
    ASSERT_TRUE(LocalCluster::pick_free_ports(6, client_ports, o.peer_port).is_ok());
    o.client_port = client_ports;
    o.tls_client_port = static_cast<uint16_t>(client_ports + 3);
    o.extra_args = {"--tls-cert-file", certs + "/n{id}.crt", "--tls-key-file",
                    certs + "/n{id}.key"};
    if (!auth_clients.empty()) {
      for (const std::string& a : {std::string("--tls-ca-cert-file"), certs + "/ca.crt",
                                   std::string("--tls-auth-clients"), auth_clients})
        o.extra_args.push_back(a);
    }
    o.extra_args.insert(o.extra_args.end(), extra.begin(), extra.end());
    cluster_ = std::make_unique<LocalCluster>(o);
    ASSERT_TRUE(cluster_->start_all().is_ok());
    ASSERT_TRUE(cluster_->wait_until_serving(15000).is_ok());
  }

  int wait_for_leader() {
    int found = 0;
    eventually([&] { return (found = cluster_->leader()) != 0; });
    return found;
  }

  uint16_t tls_port(int id) const { return cluster_->tls_client_port(id); }
  std::string log(int id) const { return slurp(cluster_->log_path(id)); }
  bool logged(int id, const std::string& text) const {
    return eventually([&] { return log(id).find(text) != std::string::npos; }, 10000);
  }
  // A line of replica `id`'s log whose message starts with `start` and ends with `end`.
  bool logged_line(int id, const std::string& start, const std::string& end) const {
    return eventually(
        [&] {
          std::istringstream lines(log(id));
          for (std::string line; std::getline(lines, line);) {
            // "TIME LEVEL NODE EVENT: message" (base/log.h): the message starts with `start`.
            const size_t at = line.find(": ");
            if (at != std::string::npos && line.compare(at + 2, start.size(), start) == 0 &&
                line.size() >= end.size() &&
                line.compare(line.size() - end.size(), end.size(), end) == 0)
              return true;
          }
          return false;
        },
        10000);
  }

  // redis-cli over TLS to replica `id`, verifying its certificate against the CA.
  Ran cli(int id, const std::string& args, const std::string& client_cert = "") {
    std::string cmd = "timeout 20 redis-cli -h 127.0.0.1 -p " + std::to_string(tls_port(id)) +
                      " --tls --cacert " + ca_;
    if (!client_cert.empty())
      cmd += " --cert " + client_cert + ".crt --key " + client_cert + ".key";
    return run(cmd + " " + args);
  }

  // `openssl s_client` as a peer dialling replica `id`'s peer port: it sends a Hello claiming
  // `claim` and waits until the replica closes the connection (exit 124 if it never does).
  Ran rogue_peer(int id, NodeId claim, const std::string& cert_args) {
    const std::string hello = dir_ + "/hello-" + std::to_string(claim.value);
    std::ofstream(hello, std::ios::binary) << net::encode_hello({1, claim});
    return run("timeout 10 openssl s_client -quiet -connect 127.0.0.1:" +
               std::to_string(cluster_->peer_port(id)) + " -CAfile " + ca_ + " " + cert_args +
               " < " + hello);
  }

  // A CA and a certificate of its own, naming node `node` as a real one would.
  std::string self_signed(NodeId node) {
    const std::string base = dir_ + "/rogue";
    const Ran made =
        run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
            "-days 1 -subj /CN=rogue -addext subjectAltName=URI:synod://node/" +
            std::to_string(node.value) + " -keyout " + base + ".key -out " + base + ".crt");
    EXPECT_EQ(made.exit_code, 0) << made.output;
    return base;
  }

  // The SHA-256 fingerprint of the certificate replica `id` serves TLS clients now.
  std::string served_fingerprint(int id) {
    return run("openssl s_client -connect 127.0.0.1:" + std::to_string(tls_port(id)) + " -CAfile " +
               ca_ +
               " </dev/null 2>/dev/null | openssl x509 -noout -fingerprint "
               "-sha256")
        .output;
  }
  std::string file_fingerprint(const std::string& path) {
    return run("openssl x509 -noout -fingerprint -sha256 -in " + path).output;
  }

  std::string dir_, certs_, ca_;
  std::unique_ptr<LocalCluster> cluster_;
};

// The cluster agrees over mutual TLS and serves redis-cli and redis-py over TLS; plaintext on the
// client port is refused with a clear error and a log line; four kinds of rogue peer are refused
// and logged (the replica names each reason) while the cluster keeps serving writes.
TEST_F(TlsE2E, ClusterServesOverTlsAndRefusesRoguePeers) {
  start("no");
  const int leader = wait_for_leader();
  ASSERT_NE(leader, 0);
  const int follower = leader % 3 + 1;
  EXPECT_EQ(cli(leader, "SET tls:k v1").output, "OK");
  EXPECT_EQ(cli(follower, "GET tls:k").output, "v1");      // a follower's linearizable read
  EXPECT_EQ(cli(follower, "SET tls:k2 v2").output, "OK");  // forwarded over mutual TLS
  EXPECT_TRUE(logged(1, "(mutual TLS)"));
  EXPECT_TRUE(logged(1, "TLS certificate subject CN = synod-node-1, expires "));

  // Plaintext clients on the TLS port: told so, closed, logged.
  const Ran plain =
      run("timeout 10 redis-cli -h 127.0.0.1 -p " + std::to_string(tls_port(1)) + " PING");
  EXPECT_NE(plain.output.find("this port speaks TLS only"), std::string::npos) << plain.output;
  EXPECT_TRUE(logged(1, "refused a plaintext client from 127.0.0.1:"));

  // redis-py, ssl=True (and plaintext redis-py refused).
  const Ran py = run("/usr/bin/python3 " SYNOD_SOURCE_DIR "/src/tools/tls_e2e.py " +
                     std::to_string(tls_port(follower)) + " " + ca_);
  EXPECT_EQ(py.exit_code, 0) << py.output;

  // Rogue peers at n1's peer port. Plaintext, with a valid Hello as n2:
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(cluster_->peer_port(1));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    const std::string hello = net::encode_hello({1, NodeId{2}});
    ASSERT_EQ(::write(fd, hello.data(), hello.size()), static_cast<ssize_t>(hello.size()));
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[64];
    // Closed: an end of stream, or a reset (the replica closed with our Hello unread). A timeout
    // (EAGAIN) would be a replica that kept the connection.
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET))
        << "the replica kept a plaintext peer: " << n << " " << std::strerror(errno);
    ::close(fd);
  }
  EXPECT_TRUE(logged(1, "plaintext on the TLS peer port (refused)"));
  // No certificate at all:
  EXPECT_NE(rogue_peer(1, NodeId{2}, "").exit_code, 124);
  EXPECT_TRUE(logged(1, "TLS handshake: peer did not return a certificate"));
  // A certificate naming n2, from a CA of its own:
  const std::string rogue = self_signed(NodeId{2});
  EXPECT_NE(rogue_peer(1, NodeId{2}, "-cert " + rogue + ".crt -key " + rogue + ".key").exit_code,
            124);
  EXPECT_TRUE(logged(1, "TLS handshake: certificate verify failed"));
  // n2's real certificate, claiming to be n3:
  EXPECT_NE(
      rogue_peer(1, NodeId{3}, "-cert " + certs_ + "/n2.crt -key " + certs_ + "/n2.key").exit_code,
      124);
  EXPECT_TRUE(logged(1, "it claims n3 but its certificate names n2"));

  // The cluster kept serving through all of it.
  const int now_leader = wait_for_leader();
  ASSERT_NE(now_leader, 0);
  EXPECT_EQ(cli(now_leader, "SET tls:after rogues").output, "OK");
  for (int id = 1; id <= 3; ++id) EXPECT_EQ(cli(id, "GET tls:after").output, "rogues") << id;
}

// A replica started with another replica's certificate (n3 holding n2's) is shut out both ways:
// n1 refuses to send to it (the certificate at n3's address names n2) and refuses its Hello as
// n3; n1 and n2 carry on as a majority.
TEST_F(TlsE2E, AReplicaWithAnotherNodesCertificateIsShutOut) {
  const std::string impostor = dir_ + "/impostor";
  ASSERT_EQ(run("mkdir -p " + impostor + " && cp " + certs_ + "/ca.crt " + certs_ + "/n1.* " +
                certs_ + "/n2.* " + impostor + " && cp " + certs_ + "/n2.crt " + impostor +
                "/n3.crt && cp " + certs_ + "/n2.key " + impostor + "/n3.key")
                .exit_code,
            0);
  start("no", impostor);
  const int leader = wait_for_leader();
  ASSERT_TRUE(leader == 1 || leader == 2) << leader;
  EXPECT_EQ(cli(leader, "SET tls:k majority").output, "OK");
  for (int id : {1, 2}) {
    EXPECT_TRUE(logged_line(id,
                            "refused peer at 127.0.0.1:" + std::to_string(cluster_->peer_port(3)),
                            ": it claims n3 but its certificate names n2"))
        << id;
    EXPECT_TRUE(logged_line(id, "closed inbound connection from 127.0.0.1:",
                            ": it claims n3 but its certificate names n2"))
        << id;
  }
  EXPECT_EQ(cli(leader % 2 + 1, "GET tls:k").output, "majority");
  EXPECT_EQ(cluster_->info(3)["applied_slot"], "0") << "n3 learned from a cluster that refused it";
}

// --tls-auth-clients yes: a client without a certificate, or with one from another CA, is refused
// at the handshake (and logged); one with a certificate from the cluster's CA is served, by
// redis-cli and by redis-py.
TEST_F(TlsE2E, ClientCertificatesAreRequiredWhenConfigured) {
  // The CA and the client rule from a --config file, as docs/synod-server.example.toml has them.
  const std::string config = dir_ + "/tls.toml";
  std::ofstream(config) << "[server]\ntls-ca-cert-file = \"" << ca_
                        << "\"\ntls-auth-clients = \"yes\"\n";
  start("", "", {"--config", config});
  ASSERT_NE(wait_for_leader(), 0);
  const Ran anonymous = cli(1, "PING");
  EXPECT_NE(anonymous.output, "PONG");
  EXPECT_TRUE(logged(1, "refused a TLS client from 127.0.0.1:"));
  EXPECT_TRUE(logged(1, "peer did not return a certificate"));
  const std::string rogue = self_signed(NodeId{1});
  EXPECT_NE(cli(1, "PING", rogue).output, "PONG");
  EXPECT_TRUE(logged(1, "certificate verify failed"));
  EXPECT_EQ(cli(1, "PING", certs_ + "/client").output, "PONG");
  EXPECT_EQ(cli(2, "SET tls:cert yes", certs_ + "/client").output, "OK");
  const Ran py = run("/usr/bin/python3 " SYNOD_SOURCE_DIR "/src/tools/tls_e2e.py " +
                     std::to_string(tls_port(3)) + " " + ca_ + " " + certs_ + "/client.crt " +
                     certs_ + "/client.key");
  EXPECT_EQ(py.exit_code, 0) << py.output;
}

// SIGHUP reloads the files: new connections get the new certificate (the replica that was not
// signalled keeps its old one), peers keep agreeing; a broken file is refused with a log line
// and the previous certificate stays in service.
TEST_F(TlsE2E, SighupReloadsCertificatesAndKeepsThemOnABadFile) {
  start("no");
  ASSERT_NE(wait_for_leader(), 0);
  const std::string old1 = served_fingerprint(1);
  const std::string old2 = served_fingerprint(2);
  ASSERT_EQ(old1, file_fingerprint(certs_ + "/n1.crt"));
  ASSERT_FALSE(old1.empty());

  // The documented rotation: reissue from the same CA, then SIGHUP.
  const Ran reissued = run(SYNOD_SOURCE_DIR "/scripts/tls-certs " + certs_ + " 3");
  ASSERT_EQ(reissued.exit_code, 0) << reissued.output;
  const std::string new1 = file_fingerprint(certs_ + "/n1.crt");
  ASSERT_NE(new1, old1);
  cluster_->kill(1, SIGHUP);
  EXPECT_TRUE(logged(1, "TLS reloaded: certificate subject CN = synod-node-1"));
  EXPECT_EQ(served_fingerprint(1), new1);
  EXPECT_EQ(served_fingerprint(2), old2);  // not signalled: unchanged
  // n1's new certificate is good for peers too: a restarted n2 dials it and the cluster agrees.
  cluster_->kill(2, SIGKILL);
  ASSERT_TRUE(cluster_->start(2).is_ok());
  ASSERT_TRUE(cluster_->wait_until_serving(15000).is_ok());
  const int leader = wait_for_leader();
  ASSERT_NE(leader, 0);
  EXPECT_EQ(cli(leader, "SET tls:rotated yes").output, "OK");
  EXPECT_TRUE(eventually([&] { return cli(2, "GET tls:rotated").output == "yes"; }));

  // A broken certificate file: the reload is refused and the current certificate stays.
  std::ofstream(certs_ + "/n1.crt", std::ios::trunc) << "not a certificate\n";
  cluster_->kill(1, SIGHUP);
  EXPECT_TRUE(logged(1, "TLS reload failed, still using the previous certificates: "));
  EXPECT_TRUE(logged(1, "--tls-cert-file " + certs_ + "/n1.crt"));
  EXPECT_EQ(served_fingerprint(1), new1);
  EXPECT_EQ(cli(1, "PING").output, "PONG");
}

// docs/operations.md's exposed replica: --listen none, clients on --tls-listen only. A single
// replica (a cluster of one) answers over TLS and has no plaintext port.
TEST_F(TlsE2E, AReplicaWithListenNoneServesOnlyTls) {
  uint16_t client_ports = 0, peer_port = 0;
  ASSERT_TRUE(LocalCluster::pick_free_ports(2, client_ports, peer_port).is_ok());
  const uint16_t tls = static_cast<uint16_t>(client_ports + 1);
  const std::string log = dir_ + "/n1.log";
  Child server({"server", "--id", "1", "--peers", "1=127.0.0.1:" + std::to_string(peer_port),
                "--listen", "none", "--tls-listen", "127.0.0.1:" + std::to_string(tls), "--data",
                dir_ + "/n1", "--tls-cert-file", certs_ + "/n1.crt", "--tls-key-file",
                certs_ + "/n1.key", "--tls-ca-cert-file", ca_, "--tls-auth-clients", "no"},
               log);
  const std::string cli = "timeout 20 redis-cli -h 127.0.0.1 -p " + std::to_string(tls) +
                          " --tls --cacert " + ca_ + " ";
  EXPECT_TRUE(eventually([&] { return run(cli + "SET tls:only yes").output == "OK"; }))
      << slurp(log);
  EXPECT_EQ(run(cli + "GET tls:only").output, "yes");
  EXPECT_NE(slurp(log).find("serving clients on (no plaintext port) and TLS 127.0.0.1:" +
                            std::to_string(tls)),
            std::string::npos)
      << slurp(log);
  EXPECT_EQ(server.stop(10000), 0) << slurp(log);
}

// `synod local --tls-port P -- <TLS options with {id}>` runs a TLS cluster on one machine (the
// recipe in docs/operations.md): every replica serves redis-cli over TLS.
TEST_F(TlsE2E, LocalRunsATlsCluster) {
  uint16_t client_ports = 0, peer_ports = 0;
  ASSERT_TRUE(LocalCluster::pick_free_ports(6, client_ports, peer_ports).is_ok());
  const uint16_t tls = static_cast<uint16_t>(client_ports + 3);
  const std::string log = dir_ + "/local.log";
  Child local({"local", "--data", dir_ + "/local", "--port", std::to_string(client_ports),
               "--peer-port", std::to_string(peer_ports), "--tls-port", std::to_string(tls), "--",
               "--tls-cert-file", certs_ + "/n{id}.crt", "--tls-key-file", certs_ + "/n{id}.key",
               "--tls-ca-cert-file", ca_, "--tls-auth-clients", "no"},
              log);
  ASSERT_TRUE(eventually([&] { return slurp(log).find(" leads.") != std::string::npos; }))
      << slurp(log);
  EXPECT_NE(slurp(log).find("TLS clients 127.0.0.1:" + std::to_string(tls + 2)), std::string::npos)
      << slurp(log);
  const auto cli = [&](int id, const std::string& args) {
    return run("timeout 20 redis-cli -h 127.0.0.1 -p " + std::to_string(tls + id - 1) +
               " --tls --cacert " + ca_ + " " + args)
        .output;
  };
  EXPECT_EQ(cli(2, "SET tls:local yes"), "OK");
  for (int id = 1; id <= 3; ++id) EXPECT_EQ(cli(id, "GET tls:local"), "yes") << id;
  EXPECT_NE(slurp(dir_ + "/local/n1.log").find("(mutual TLS)"), std::string::npos);
  EXPECT_EQ(local.stop(15000), 0) << slurp(log);
}

// Unusable TLS options stop the server at start with exit status 2 and a reason naming the option
// (never a replica that runs without the TLS it was asked for).
TEST_F(TlsE2E, UnusableTlsOptionsAreRefusedAtStart) {
  const std::string base = "timeout 20 " SYNOD_BINARY
                           " server --id 1 --peers 1=127.0.0.1:1 --data " +
                           dir_ + "/refused ";
  const auto refused = [&](const std::string& args, const std::string& why) {
    const Ran ran = run(base + args);
    EXPECT_EQ(ran.exit_code, 2) << args << ": " << ran.output;
    EXPECT_NE(ran.output.find(why), std::string::npos) << args << ": " << ran.output;
  };
  const std::string n1 = " --tls-cert-file " + certs_ + "/n1.crt --tls-key-file " + certs_ +
                         "/n1.key --tls-ca-cert-file " + ca_;
  refused("--listen 127.0.0.1:1 --tls-listen 127.0.0.1:2",
          "--tls-listen needs --tls-cert-file and --tls-key-file");
  refused("--tls-cert-file " + certs_ + "/n1.crt",
          "--tls-cert-file and --tls-key-file go together");
  refused("--tls-cert-file " + certs_ + "/n1.crt --tls-key-file " + certs_ + "/n2.key",
          "--tls-key-file " + certs_ + "/n2.key: key values mismatch");
  refused("--tls-cert-file " + certs_ + "/n1.crt --tls-key-file " + certs_ + "/n1.key",
          "--tls-ca-cert-file is required");
  refused(n1 + " --tls-auth-clients maybe", "--tls-auth-clients");
  refused("--tls-cert-file " + certs_ + "/n1.crt --tls-key-file " + certs_ +
              "/n1.key --tls-ca-cert-file " + dir_ + "/missing.crt",
          "--tls-ca-cert-file " + dir_ + "/missing.crt");
  refused("--listen none", "no client port: --listen none needs --tls-listen");
}

}  // namespace
}  // namespace synod::tools
