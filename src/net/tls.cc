#include "net/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <charconv>
#include <cstdio>
#include <set>

namespace synod::net {

namespace {

constexpr std::string_view kNodeUriPrefix = "synod://node/";

std::string names(const std::set<uint32_t>& ids) {
  std::string out;
  for (uint32_t id : ids) out += (out.empty() ? "n" : ", n") + std::to_string(id);
  return out;
}

// The settings both contexts share: TLS 1.2 or later, the replica's certificate and key, the CA.
Status configure(asio::ssl::context& ctx, const TlsFiles& files, bool need_ca) {
  asio::error_code ec;
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1,
                  ec);
  if (ec) return Status::invalid_argument("TLS options: " + tls_error(ec));
  ctx.use_certificate_chain_file(files.cert_file, ec);
  if (ec)
    return Status::invalid_argument("--tls-cert-file " + files.cert_file + ": " + tls_error(ec));
  ctx.use_private_key_file(files.key_file, asio::ssl::context::pem, ec);
  if (ec)
    return Status::invalid_argument("--tls-key-file " + files.key_file + ": " + tls_error(ec));
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
    return Status::invalid_argument("--tls-key-file " + files.key_file +
                                    " is not the key of --tls-cert-file " + files.cert_file);
  if (files.ca_cert_file.empty()) {
    if (need_ca) return Status::invalid_argument("--tls-ca-cert-file is required");
  } else {
    ctx.load_verify_file(files.ca_cert_file, ec);
    if (ec)
      return Status::invalid_argument("--tls-ca-cert-file " + files.ca_cert_file + ": " +
                                      tls_error(ec));
  }
  // Verified clients may resume sessions; OpenSSL refuses resumption without a context id.
  static const unsigned char kSessionContext[] = "synod";
  SSL_CTX_set_session_id_context(ctx.native_handle(), kSessionContext, sizeof(kSessionContext) - 1);
  return Status::ok();
}

Result<std::shared_ptr<asio::ssl::context>> make_clients_context(const TlsFiles& files) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SYNOD_RETURN_IF_ERROR(configure(*ctx, files, files.auth_clients != ClientAuth::kNo));
  asio::error_code ec;
  switch (files.auth_clients) {
    case ClientAuth::kNo:
      ctx->set_verify_mode(asio::ssl::verify_none, ec);
      break;
    case ClientAuth::kOptional:
      ctx->set_verify_mode(asio::ssl::verify_peer, ec);
      break;
    case ClientAuth::kYes:
      ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert, ec);
      break;
  }
  if (ec) return Status::invalid_argument("TLS verify mode: " + tls_error(ec));
  return ctx;
}

Result<std::shared_ptr<asio::ssl::context>> make_peers_context(const TlsFiles& files) {
  // Both directions: a replica dials (client) and accepts (server) with the same context.
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls);
  SYNOD_RETURN_IF_ERROR(configure(*ctx, files, /*need_ca=*/true));
  asio::error_code ec;
  ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert, ec);
  if (ec) return Status::invalid_argument("TLS verify mode: " + tls_error(ec));
  return ctx;
}

}  // namespace

Result<ClientAuth> parse_client_auth(std::string_view text) {
  if (text == "yes") return ClientAuth::kYes;
  if (text == "no") return ClientAuth::kNo;
  if (text == "optional") return ClientAuth::kOptional;
  return Status::invalid_argument("--tls-auth-clients must be yes, no or optional, not '" +
                                  std::string(text) + "'");
}

std::string node_uri(NodeId id) {
  return std::string(kNodeUriPrefix) + std::to_string(id.value);
}

std::vector<uint32_t> certificate_node_ids(X509* cert) {
  std::vector<uint32_t> ids;
  if (cert == nullptr) return ids;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return ids;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    const std::string_view text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                                static_cast<size_t>(ASN1_STRING_length(uri)));
    if (text.substr(0, kNodeUriPrefix.size()) != kNodeUriPrefix) continue;
    const std::string_view digits = text.substr(kNodeUriPrefix.size());
    uint32_t id = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    // "synod://node/1x" names no node: a typo must not pass for node 1.
    if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty())
      ids.push_back(id);
  }
  GENERAL_NAMES_free(names);
  return ids;
}

std::optional<std::string> certificate_refusal(X509* cert, NodeId node) {
  if (cert == nullptr) return "it presented no certificate";
  const std::vector<uint32_t> list = certificate_node_ids(cert);
  const std::set<uint32_t> ids(list.begin(), list.end());
  if (ids.empty())
    return "its certificate names no node (a subjectAltName URI " + node_uri(node) + ")";
  if (ids != std::set<uint32_t>{node.value})
    return "it claims n" + std::to_string(node.value) + " but its certificate names " + names(ids);
  return std::nullopt;
}

std::string describe_certificate_file(const std::string& cert_file) {
  FILE* f = std::fopen(cert_file.c_str(), "r");
  if (f == nullptr) return "";
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (cert == nullptr) return "";
  std::string out;
  BIO* bio = BIO_new(BIO_s_mem());
  BIO_puts(bio, "subject ");
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_ONELINE);
  BIO_puts(bio, ", expires ");
  ASN1_TIME_print(bio, X509_get0_notAfter(cert));
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  if (n > 0) out.assign(data, static_cast<size_t>(n));
  BIO_free(bio);
  X509_free(cert);
  return out;
}

std::string tls_error(const asio::error_code& ec) {
  // OpenSSL's reason string ("certificate verify failed") says more than asio's category name.
  if (ec.category() == asio::error::get_ssl_category()) {
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    if (reason != nullptr) return reason;
  }
  return ec.message();
}

Result<std::unique_ptr<TlsContexts>> TlsContexts::load(TlsFiles files) {
  std::unique_ptr<TlsContexts> t(new TlsContexts(std::move(files)));
  SYNOD_RETURN_IF_ERROR(t->reload());
  return t;
}

Status TlsContexts::reload() {
  auto clients = make_clients_context(files_);
  if (!clients.is_ok()) return clients.status();
  auto peers = make_peers_context(files_);
  if (!peers.is_ok()) return peers.status();
  clients_ = std::move(*clients);
  peers_ = std::move(*peers);
  return Status::ok();
}

}  // namespace synod::net
