// The node-id check of peer certificates (net/tls.h): a peer may speak only for the one node its
// certificate names as a subjectAltName URI synod://node/<id>. Certificates are built in-process
// (only their names matter here; chaining to the CA is OpenSSL's check, tried end to end in
// tools/tls_e2e_test.cc).
#include "net/tls.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <memory>

namespace synod::net {
namespace {

struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
using Cert = std::unique_ptr<X509, X509Free>;

// A certificate with `san` as its subjectAltName ("URI:synod://node/1,DNS:x"; "" for none).
Cert certificate(const std::string& san) {
  Cert cert(X509_new());
  if (!san.empty()) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, nullptr, cert.get(), nullptr, nullptr, 0);
    X509V3_set_ctx_nodb(&ctx);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
    EXPECT_NE(ext, nullptr) << san;
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  return cert;
}

TEST(Tls, NodeUriNamesTheNode) {
  EXPECT_EQ(node_uri(NodeId{7}), "synod://node/7");
  auto cert = certificate("URI:" + node_uri(NodeId{7}));
  EXPECT_EQ(certificate_node_ids(cert.get()), std::vector<uint32_t>{7});
}

TEST(Tls, ACertificateMaySpeakForTheNodeItNames) {
  auto cert = certificate("URI:synod://node/1,DNS:localhost,IP:127.0.0.1");
  EXPECT_EQ(certificate_refusal(cert.get(), NodeId{1}), std::nullopt);
}

TEST(Tls, ACertificateForAnotherNodeIsRefused) {
  auto cert = certificate("URI:synod://node/2");
  const auto refusal = certificate_refusal(cert.get(), NodeId{1});
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(*refusal, "it claims n1 but its certificate names n2");
}

TEST(Tls, ACertificateNamingNoNodeIsRefused) {
  for (const std::string san :
       {"", "DNS:synod-node-1", "DNS:localhost,IP:127.0.0.1", "URI:https://node/1",
        "URI:synod://node/", "URI:synod://node/1x", "URI:synod://node/-1", "URI:synod://nodes/1"}) {
    auto cert = certificate(san);
    const auto refusal = certificate_refusal(cert.get(), NodeId{1});
    ASSERT_TRUE(refusal.has_value()) << san;
    EXPECT_EQ(*refusal, "its certificate names no node (a subjectAltName URI synod://node/1)")
        << san;
  }
}

// One key must not speak for two replicas: stealing it would then forge both.
TEST(Tls, ACertificateNamingSeveralNodesIsRefused) {
  auto cert = certificate("URI:synod://node/1,URI:synod://node/2");
  const auto refusal = certificate_refusal(cert.get(), NodeId{1});
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(*refusal, "it claims n1 but its certificate names n1, n2");
  // The same name twice is still one node.
  auto twice = certificate("URI:synod://node/3,URI:synod://node/3");
  EXPECT_EQ(certificate_refusal(twice.get(), NodeId{3}), std::nullopt);
}

TEST(Tls, NoCertificateIsRefused) {
  EXPECT_EQ(certificate_refusal(nullptr, NodeId{1}), "it presented no certificate");
}

TEST(Tls, ClientAuthParsesAsRedisWritesIt) {
  EXPECT_EQ(*parse_client_auth("yes"), ClientAuth::kYes);
  EXPECT_EQ(*parse_client_auth("no"), ClientAuth::kNo);
  EXPECT_EQ(*parse_client_auth("optional"), ClientAuth::kOptional);
  EXPECT_FALSE(parse_client_auth("true").is_ok());
}

TEST(Tls, OnlyAHandshakeRecordStartsTls) {
  EXPECT_TRUE(starts_tls_handshake(0x16));
  for (const char c : {'*', 'P', '\x00', '\x15', '\x17'})
    EXPECT_FALSE(starts_tls_handshake(static_cast<uint8_t>(c))) << int(c);
}

TEST(Tls, MissingOrMismatchedFilesAreRefusedWithTheirName) {
  auto missing = TlsContexts::load({.cert_file = "/nonexistent/n1.crt",
                                    .key_file = "/nonexistent/n1.key",
                                    .ca_cert_file = "/nonexistent/ca.crt"});
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().to_string().find("--tls-cert-file /nonexistent/n1.crt"),
            std::string::npos)
      << missing.status().to_string();
}

}  // namespace
}  // namespace synod::net
