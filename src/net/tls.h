// TLS for the client port and the peer port (OpenSSL, through Asio's SSL streams).
//
// One set of files serves both ports (docs/operations.md, "Deploying with TLS"): the replica's
// certificate chain and key, and the cluster's CA. On the peer port TLS is mutual: each side's
// certificate must chain to the CA and name, as a subjectAltName URI `synod://node/<id>`, the node
// id that side claims — the id dialled (outbound) or the id in the peer's Hello (inbound). A
// certificate that names no node, several, or another one is refused, so a key stolen from one
// replica cannot speak for another.
//
// TlsContexts holds the current OpenSSL contexts; reload() rebuilds them from the same files and
// keeps the old ones if anything fails (new connections then use the new contexts; established
// ones keep theirs, which each Stream holds alive).
#pragma once

#include <openssl/x509.h>

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/types.h"

namespace synod::net {

// --tls-auth-clients, as Redis's tls-auth-clients: does a client need a certificate from the CA?
enum class ClientAuth { kNo, kOptional, kYes };
Result<ClientAuth> parse_client_auth(std::string_view text);  // "yes", "no", "optional"

struct TlsFiles {
  std::string cert_file;     // PEM: the replica's certificate, then any intermediates
  std::string key_file;      // PEM: its private key (unencrypted)
  std::string ca_cert_file;  // PEM: the CA that peers' (and clients') certificates chain to
  ClientAuth auth_clients = ClientAuth::kYes;
  bool enabled() const { return !cert_file.empty(); }
};

// The subjectAltName URI that names node `id` in a peer certificate: "synod://node/<id>".
std::string node_uri(NodeId id);
// The node ids named by `cert`'s subjectAltName URIs of that form (others are ignored).
std::vector<uint32_t> certificate_node_ids(X509* cert);
// Why `cert` may not speak as `node` (nullopt: it names exactly that node). A null `cert` is
// refused too.
std::optional<std::string> certificate_refusal(X509* cert, NodeId node);
// "subject ..., expires ..." of the certificate in `cert_file`, for the log ("" if unreadable).
std::string describe_certificate_file(const std::string& cert_file);

// A TLS record starts with its content type; a handshake's is 22. A connection to a TLS port whose
// first byte is anything else speaks plaintext (a RESP command starts with '*' or a letter; a peer
// frame with its length).
inline bool starts_tls_handshake(uint8_t first_byte) {
  return first_byte == 0x16;
}

class TlsContexts {
 public:
  // Loads `files`; an error names the file and what is wrong with it.
  static Result<std::unique_ptr<TlsContexts>> load(TlsFiles files);
  // Rebuilds both contexts from the same paths; on failure keeps the current ones.
  [[nodiscard]] Status reload();

  // For TLS clients on the client port (server side; client certificates per auth_clients).
  std::shared_ptr<asio::ssl::context> clients() const { return clients_; }
  // For the peer port, both directions: mutual, both certificates checked against the CA.
  std::shared_ptr<asio::ssl::context> peers() const { return peers_; }
  const TlsFiles& files() const { return files_; }

 private:
  explicit TlsContexts(TlsFiles files) : files_(std::move(files)) {}
  TlsFiles files_;
  std::shared_ptr<asio::ssl::context> clients_;
  std::shared_ptr<asio::ssl::context> peers_;
};

// One connection's bytes: a TCP socket, or TLS over one. The TLS stream keeps its context alive,
// so a reload never pulls it from under an established connection.
class Stream {
 public:
  explicit Stream(asio::ip::tcp::socket socket) : plain_(std::move(socket)) {}
  Stream(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> context)
      : context_(std::move(context)),
        tls_(std::make_unique<asio::ssl::stream<asio::ip::tcp::socket>>(std::move(socket),
                                                                        *context_)) {}

  bool tls() const { return tls_ != nullptr; }
  asio::ip::tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  // The peer's certificate after a TLS handshake (owned by the stream; null if none).
  X509* peer_certificate() const {
    return tls_ ? SSL_get0_peer_certificate(tls_->native_handle()) : nullptr;
  }

  template <typename Handler>
  void async_handshake(asio::ssl::stream_base::handshake_type type, Handler&& handler) {
    tls_->async_handshake(type, std::forward<Handler>(handler));
  }
  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_)
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    else
      plain_->async_read_some(buffers, std::forward<Handler>(handler));
  }
  // What can be read at once, without waiting (0 if nothing, or on any error, which the next
  // async read then meets): over TLS, the records that arrived behind the one an async read
  // returned. Not while a write is in flight on this stream: a TLS read may have to write too.
  size_t read_now(const asio::mutable_buffer& buffer) {
    asio::error_code ec;
    if (!socket().non_blocking()) socket().non_blocking(true, ec);
    if (ec) return 0;
    const size_t n = tls_ ? tls_->read_some(buffer, ec) : plain_->read_some(buffer, ec);
    return ec ? 0 : n;
  }
  template <typename Buffers, typename Handler>
  void async_write(const Buffers& buffers, Handler&& handler) {
    if (tls_)
      asio::async_write(*tls_, buffers, std::forward<Handler>(handler));
    else
      asio::async_write(*plain_, buffers, std::forward<Handler>(handler));
  }
  // Closes the socket without a TLS close_notify: the connection is being dropped, not ended
  // politely, and waiting on a peer that stopped reading is what the bounds exist to avoid.
  void close() {
    asio::error_code ignored;
    socket().close(ignored);
  }

 private:
  std::shared_ptr<asio::ssl::context> context_;  // declared first: outlives tls_
  std::optional<asio::ip::tcp::socket> plain_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket>> tls_;
};

// Peeks at the first byte of `socket` without taking it; calls `done(ec, is_tls)` where is_tls
// says whether it starts a TLS handshake. For refusing plaintext clearly on a TLS port.
template <typename Handler>
void peek_tls(asio::ip::tcp::socket& socket, std::shared_ptr<uint8_t> byte, Handler&& done) {
  socket.async_receive(
      asio::buffer(byte.get(), 1), asio::socket_base::message_peek,
      [byte, done = std::forward<Handler>(done)](const asio::error_code& ec, size_t n) mutable {
        done(ec, !ec && n == 1 && starts_tls_handshake(*byte));
      });
}

// The OpenSSL error an asio error carries, readable ("certificate verify failed", ...).
std::string tls_error(const asio::error_code& ec);

}  // namespace synod::net
