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
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
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
  // `adjust`: changes to the cluster's options (a TLS-only client side, users).
  void start(const std::string& auth_clients, std::string certs = "",
             std::vector<std::string> extra = {},
             const std::function<void(LocalCluster::Options&)>& adjust = {}) {
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
    if (adjust) adjust(o);
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
  // Lines of replica `id`'s log containing `text`.
  size_t count_in_log(int id, const std::string& text) const {
    std::istringstream in(log(id));
    size_t n = 0;
    for (std::string line; std::getline(in, line);) n += line.find(text) != std::string::npos;
    return n;
  }
  // The log at `path` has exactly `count` lines containing `text` (waited for, then held).
  static bool logged_in(const std::string& path, const std::string& text, size_t count) {
    const auto lines = [&] {
      std::istringstream in(slurp(path));
      size_t n = 0;
      for (std::string line; std::getline(in, line);) n += line.find(text) != std::string::npos;
      return n;
    };
    return eventually([&] { return lines() >= count; }, 10000) && lines() == count;
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
    std::ofstream(hello, std::ios::binary) << net::encode_hello({1, claim, Incarnation{1, 1}});
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
    const std::string hello = net::encode_hello({1, NodeId{2}, Incarnation{1, 1}});
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

// docs/operations.md, "Moving to a new CA", step by step: a 3-replica mutual-TLS cluster moves
// from CA1 to CA2 through a CA bundle and SIGHUPs, never losing its majority: after every step a
// write through the leader is acknowledged and read back from every replica, and replicas
// restarted midway (new peer connections, certificates from both CAs) and at the end (CA2 only)
// rejoin. Afterwards a certificate from CA1 is refused.
TEST_F(TlsE2E, TheClusterMovesToANewCaWithoutDowntime) {
  const std::string live = dir_ + "/live", ca2 = dir_ + "/ca2";
  ASSERT_EQ(
      run("mkdir -p " + live + " && cp " + certs_ + "/ca.crt " + certs_ + "/n* " + live).exit_code,
      0);
  start("no", live);
  int step = 0;
  // A write acknowledged, then read back from every replica over TLS (a client that trusts both
  // CAs, as clients do during the move).
  const auto serving = [&](const std::string& what) {
    const std::string key = "ca:step" + std::to_string(++step);
    const int leader = wait_for_leader();
    ASSERT_NE(leader, 0) << what;
    EXPECT_TRUE(eventually([&] {
      return cli(leader, "--cacert " + dir_ + "/clients-ca.crt SET " + key + " ok").output == "OK";
    })) << what;
    for (int id = 1; id <= 3; ++id) {
      if (!cluster_->running(id)) continue;
      EXPECT_TRUE(eventually([&] {
        return cli(id, "--cacert " + dir_ + "/clients-ca.crt GET " + key).output == "ok";
      })) << what
          << ": n" << id;
    }
  };
  const auto reload = [&](int id) {
    const size_t before = count_in_log(id, "TLS reloaded: ");
    cluster_->kill(id, SIGHUP);
    EXPECT_TRUE(eventually([&] { return count_in_log(id, "TLS reloaded: ") > before; }, 10000))
        << "n" << id << " did not reload";
  };
  const auto restart = [&](int id) {
    cluster_->kill(id, SIGKILL);
    ASSERT_TRUE(cluster_->start(id).is_ok());
    ASSERT_TRUE(cluster_->wait_until_serving(15000).is_ok());
  };
  ASSERT_EQ(run("cp " + live + "/ca.crt " + dir_ + "/clients-ca.crt").exit_code, 0);
  serving("before");

  // 1. The new CA and every replica's certificate from it, in a directory of their own.
  ASSERT_EQ(run(SYNOD_SOURCE_DIR "/scripts/tls-certs " + ca2 + " 3").exit_code, 0);
  // 2. Both CAs in the bundle every replica (and client) trusts; reload every replica.
  ASSERT_EQ(
      run("cat " + certs_ + "/ca.crt " + ca2 + "/ca.crt > " + live + "/ca.crt.new && mv " + live +
          "/ca.crt.new " + live + "/ca.crt && cp " + live + "/ca.crt " + dir_ + "/clients-ca.crt")
          .exit_code,
      0);
  for (int id = 1; id <= 3; ++id) reload(id);
  serving("bundle");
  // 3. Each replica's certificate from the new CA, one replica at a time.
  for (int id = 1; id <= 3; ++id) {
    ASSERT_EQ(run("cp " + ca2 + "/n" + std::to_string(id) + ".crt " + ca2 + "/n" +
                  std::to_string(id) + ".key " + live)
                  .exit_code,
              0);
    reload(id);
    EXPECT_EQ(served_fingerprint(id), file_fingerprint(ca2 + "/n" + std::to_string(id) + ".crt"));
    serving("n" + std::to_string(id) + " reissued");
    // Midway (n1 and n2 on CA2, n3 on CA1): n1 restarts and dials both kinds of peer.
    if (id == 2) {
      restart(1);
      serving("n1 restarted with certificates from both CAs in the cluster");
    }
  }
  // 4. The old CA out of the bundle; reload every replica. Each restarted in turn rejoins
  // through connections checked against the new CA alone.
  ASSERT_EQ(run("cp " + ca2 + "/ca.crt " + live + "/ca.crt && cp " + ca2 + "/ca.crt " + dir_ +
                "/clients-ca.crt")
                .exit_code,
            0);
  for (int id = 1; id <= 3; ++id) reload(id);
  serving("old CA dropped");
  for (int id = 1; id <= 3; ++id) {
    restart(id);
    serving("n" + std::to_string(id) + " restarted on CA2 only");
  }
  // A certificate from the old CA is refused now.
  EXPECT_NE(
      rogue_peer(1, NodeId{2}, "-cert " + certs_ + "/n2.crt -key " + certs_ + "/n2.key").exit_code,
      124);
  EXPECT_TRUE(logged(1, "TLS handshake: certificate verify failed"));
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

// A connection that starts a TLS handshake and never finishes it is closed after
// --handshake-timeout-ms, on the client port and the peer port alike, with one log line; a flood
// of plaintext clients at the TLS port is refused every time but logged once.
TEST_F(TlsE2E, UnfinishedHandshakesAreClosedAndRefusalFloodsLoggedOnce) {
  uint16_t client_ports = 0, peer_port = 0;
  ASSERT_TRUE(LocalCluster::pick_free_ports(2, client_ports, peer_port).is_ok());
  const uint16_t tls = static_cast<uint16_t>(client_ports + 1);
  const std::string log = dir_ + "/n1.log";
  Child server({"server",
                "--id",
                "1",
                "--peers",
                "1=127.0.0.1:" + std::to_string(peer_port),
                "--listen",
                "none",
                "--tls-listen",
                "127.0.0.1:" + std::to_string(tls),
                "--data",
                dir_ + "/n1",
                "--tls-cert-file",
                certs_ + "/n1.crt",
                "--tls-key-file",
                certs_ + "/n1.key",
                "--tls-ca-cert-file",
                ca_,
                "--tls-auth-clients",
                "no",
                "--handshake-timeout-ms",
                "300"},
               log);
  const std::string cli = "timeout 20 redis-cli -h 127.0.0.1 -p " + std::to_string(tls) +
                          " --tls --cacert " + ca_ + " ";
  ASSERT_TRUE(eventually([&] { return run(cli + "PING").output == "PONG"; })) << slurp(log);

  // Opens a connection, sends `bytes` and nothing more; how long until the replica closes it (-1:
  // not within 10 s).
  const auto until_closed = [](uint16_t port, const std::string& bytes) -> int64_t {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const auto start = std::chrono::steady_clock::now();
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return -1;
    EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[64];
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    const bool closed = n == 0 || (n < 0 && errno == ECONNRESET);
    ::close(fd);
    if (!closed) return -1;
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start)
        .count();
  };
  const std::string hello_start(1, '\x16');  // a TLS record's first byte, and no more
  const int64_t client_ms = until_closed(tls, hello_start);
  EXPECT_GE(client_ms, 300);
  EXPECT_TRUE(logged_in(log, ": TLS handshake not finished within 300 ms", 1)) << slurp(log);
  const int64_t peer_ms = until_closed(peer_port, hello_start);
  EXPECT_GE(peer_ms, 300);
  EXPECT_TRUE(logged_in(log, ": TLS handshake not finished within 300 ms", 2)) << slurp(log);

  // 20 plaintext clients at the TLS port (well within 10 s): each told so, one line in the log.
  for (int i = 0; i < 20; ++i) {
    const Ran plain = run("timeout 10 redis-cli -h 127.0.0.1 -p " + std::to_string(tls) + " PING");
    EXPECT_NE(plain.output.find("this port speaks TLS only"), std::string::npos) << plain.output;
  }
  EXPECT_TRUE(logged_in(log, "refused a plaintext client from 127.0.0.1:", 1)) << slurp(log);
  // 40 plaintext peers with garbage: one line too.
  for (int i = 0; i < 40; ++i) EXPECT_GE(until_closed(peer_port, "garbage garbage"), 0);
  EXPECT_TRUE(logged_in(log, "plaintext on the TLS peer port (refused)", 1)) << slurp(log);
  EXPECT_EQ(run(cli + "PING").output, "PONG");
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

// docs/operations.md's exposed cluster: clients on TLS only (--listen none), requirepass and ACL
// users. `synod status` and `synod snapshot save` reach it with --tls --cacert and --user, the
// password from SYNOD_AUTH (or --pass); without them each fails with the server's reason and exit
// status 1. redis-cli and redis-py work over TLS with AUTH, and the ACL holds over TLS.
TEST_F(TlsE2E, StatusAndSnapshotSaveReachATlsOnlyClusterWithUsers) {
  const auto sha256sum = [&](const std::string& password) {
    return run("printf %s '" + password + "' | sha256sum").output.substr(0, 64);
  };
  const std::string users = dir_ + "/users.acl", config = dir_ + "/users.toml";
  std::ofstream(users) << "user reader on #" << sha256sum("r-pw")
                       << " ~* &* -@all +@read +@connection\n"
                       << "user writer on #" << sha256sum("w-pw")
                       << " ~* &* +@all -@admin -@dangerous\n"
                       << "user admin on #" << sha256sum("a-pw") << " ~* &* +@all\n";
  std::ofstream(config) << "[server]\nrequirepass = \"default-pw\"\naclfile = \"" << users
                        << "\"\n";
  start("no", "", {"--config", config}, [&](LocalCluster::Options& o) {
    o.client_port = 0;  // --listen none: no plaintext client port at all
    o.client_tls.enabled = true;
    o.client_tls.ca_cert_file = ca_;
    o.auth = {"AUTH", "admin", "a-pw"};
  });
  const int leader = wait_for_leader();
  ASSERT_NE(leader, 0);
  std::string endpoints;
  for (int id = 1; id <= 3; ++id)
    endpoints += (id > 1 ? "," : "") + std::string("127.0.0.1:") + std::to_string(tls_port(id));
  const std::string status = "timeout 30 " SYNOD_BINARY " status --endpoints " + endpoints;
  const std::string tls = " --tls --cacert " + ca_;

  // Each missing piece is named, and the cluster is not called healthy.
  const Ran plaintext = run(status);
  EXPECT_EQ(plaintext.exit_code, 1) << plaintext.output;
  EXPECT_NE(plaintext.output.find("this port speaks TLS only"), std::string::npos)
      << plaintext.output;
  const Ran no_ca = run(status + " --tls");  // the system's CAs do not know the cluster's
  EXPECT_EQ(no_ca.exit_code, 1) << no_ca.output;
  EXPECT_NE(no_ca.output.find("certificate verify failed"), std::string::npos) << no_ca.output;
  const Ran other_name = run(status + tls + " --sni db9.example --user admin --pass a-pw");
  EXPECT_EQ(other_name.exit_code, 1) << other_name.output;
  EXPECT_NE(other_name.output.find("hostname mismatch"), std::string::npos) << other_name.output;
  const Ran no_password = run(status + tls);
  EXPECT_EQ(no_password.exit_code, 1) << no_password.output;
  EXPECT_NE(no_password.output.find("NOAUTH"), std::string::npos) << no_password.output;
  const Ran wrong = run(status + tls + " --user admin --pass guess");
  EXPECT_EQ(wrong.exit_code, 1) << wrong.output;
  EXPECT_NE(wrong.output.find("WRONGPASS"), std::string::npos) << wrong.output;
  const Ran user_only = run("env -u SYNOD_AUTH " + status + tls + " --user admin");
  EXPECT_EQ(user_only.exit_code, 2) << user_only.output;
  EXPECT_NE(user_only.output.find("--user needs a password"), std::string::npos)
      << user_only.output;

  // With them: the table, healthy; the password from the environment or from --pass.
  const Ran healthy = run("SYNOD_AUTH=a-pw " + status + tls + " --user admin");
  EXPECT_EQ(healthy.exit_code, 0) << healthy.output;
  EXPECT_NE(healthy.output.find("cluster: healthy: n" + std::to_string(leader) + " leads"),
            std::string::npos)
      << healthy.output;
  EXPECT_EQ(run(status + tls + " -a default-pw").exit_code, 0);  // requirepass's default user

  // redis-cli over TLS with AUTH: the users' rights hold.
  const auto cli_as = [&](int id, const std::string& user, const std::string& pass,
                          const std::string& args) {
    return cli(id, "--no-auth-warning --user " + user + " --pass " + pass + " " + args).output;
  };
  EXPECT_EQ(cli(leader, "GET tls:k").output, "NOAUTH Authentication required.");
  EXPECT_EQ(cli_as(leader % 3 + 1, "writer", "w-pw", "SET tls:users before-backup"), "OK");
  EXPECT_EQ(cli_as(leader, "reader", "r-pw", "GET tls:users"), "before-backup");
  EXPECT_EQ(cli_as(leader, "reader", "r-pw", "SET tls:users x"),
            "NOPERM this user has no permissions to run the 'set' command");
  // redis-py over TLS with a user and its password (and refused without, or with a wrong one).
  const Ran py = run("/usr/bin/python3 " SYNOD_SOURCE_DIR "/src/tools/tls_e2e.py " +
                     std::to_string(tls_port(leader % 3 + 1)) + " " + ca_ + " --auth writer w-pw");
  EXPECT_EQ(py.exit_code, 0) << py.output;

  // An online backup through a follower, over TLS, as admin: it holds the write made before.
  const std::string save =
      "timeout 60 " SYNOD_BINARY " snapshot save " + dir_ +
      "/backup.synod --endpoint 127.0.0.1:" + std::to_string(tls_port(leader % 3 + 1)) + tls;
  const Ran refused = run(save + " --user reader --pass r-pw");
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("NOPERM"), std::string::npos) << refused.output;
  const Ran saved = run("SYNOD_AUTH=a-pw " + save + " --user admin");
  ASSERT_EQ(saved.exit_code, 0) << saved.output;
  EXPECT_NE(saved.output.find("checksums verified"), std::string::npos) << saved.output;
  const Ran dumped = run("strings " + dir_ + "/backup.synod | grep -c before-backup");
  EXPECT_EQ(dumped.output, "1") << "the backup lacks the write acknowledged before it";
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
