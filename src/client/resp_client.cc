#include "client/resp_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstring>

namespace synod::client {

namespace {

constexpr size_t kMaxBulkBytes = 512 << 20;
constexpr int64_t kMaxElements = 1 << 24;

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

ReplyParser::Status ReplyParser::parse(size_t& pos, kv::Reply& reply, std::string& error,
                                       int depth) {
  if (depth > 16) {
    error = "reply nested too deeply";
    return Status::kError;
  }
  const size_t eol = buffer_.find("\r\n", pos);
  if (eol == std::string::npos) return Status::kNeedMore;
  if (eol == pos) {
    error = "empty reply line";
    return Status::kError;
  }
  const char type = buffer_[pos];
  const std::string_view line(buffer_.data() + pos + 1, eol - pos - 1);
  auto number = [&](int64_t& v) {
    auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
    if (ec != std::errc() || end != line.data() + line.size()) {
      error = "bad number in reply: " + std::string(line.substr(0, 32));
      return false;
    }
    return true;
  };
  // A reply that is this one line.
  auto one_line = [&](kv::Reply r) {
    reply = std::move(r);
    pos = eol + 2;
    return Status::kReply;
  };
  switch (type) {
    case '+':
      return one_line(kv::Reply::simple(std::string(line)));
    case '-':
      return one_line(kv::Reply::error(std::string(line)));
    case ':': {
      int64_t v = 0;
      if (!number(v)) return Status::kError;
      return one_line(kv::Reply::integer_of(v));
    }
    case '_':
      return one_line(kv::Reply::null());
    case '#':
      return one_line(kv::Reply::integer_of(line == "t" ? 1 : 0));
    case ',':
      return one_line(kv::Reply::bulk(std::string(line)));
    case '$':
    case '=':
    case '!': {
      int64_t n = 0;
      if (!number(n)) return Status::kError;
      if (n < 0) return one_line(kv::Reply::null());
      if (static_cast<uint64_t>(n) > kMaxBulkBytes) {
        error = "bulk reply too large";
        return Status::kError;
      }
      const size_t start = eol + 2;
      if (buffer_.size() < start + static_cast<size_t>(n) + 2) return Status::kNeedMore;
      std::string text = buffer_.substr(start, static_cast<size_t>(n));
      if (type == '=' && text.size() >= 4) text = text.substr(4);  // "txt:" prefix
      reply = type == '!' ? kv::Reply::error(std::move(text)) : kv::Reply::bulk(std::move(text));
      pos = start + static_cast<size_t>(n) + 2;
      return Status::kReply;
    }
    case '*':
    case '%':
    case '~':
    case '>': {
      int64_t n = 0;
      if (!number(n)) return Status::kError;
      if (n < 0) return one_line(kv::Reply::null());
      if (type == '%') n *= 2;
      if (n > kMaxElements) {
        error = "aggregate reply too large";
        return Status::kError;
      }
      size_t p = eol + 2;
      std::vector<kv::Reply> elements(static_cast<size_t>(n));
      for (auto& e : elements) {
        const Status s = parse(p, e, error, depth + 1);
        if (s != Status::kReply) return s;
      }
      reply = kv::Reply::array(std::move(elements));
      pos = p;
      return Status::kReply;
    }
    default:
      error = "unknown reply type byte " + std::to_string(static_cast<unsigned char>(type));
      return Status::kError;
  }
}

ReplyParser::Status ReplyParser::next(kv::Reply& reply, std::string& error) {
  size_t pos = pos_;
  const Status s = parse(pos, reply, error, 0);
  if (s == Status::kReply) {
    pos_ = pos;
    if (pos_ == buffer_.size()) {
      buffer_.clear();
      pos_ = 0;
    } else if (pos_ > (1 << 20)) {
      buffer_.erase(0, pos_);
      pos_ = 0;
    }
  }
  return s;
}

std::string encode_command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out += a;
    out += "\r\n";
  }
  return out;
}

struct RespClient::Tls {
  ~Tls() {
    if (ssl != nullptr) SSL_free(ssl);
    if (ctx != nullptr) SSL_CTX_free(ctx);
  }
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
};

namespace {

// OpenSSL's queued errors, most recent last, as one line ("" if none); clears the queue.
std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof(text));
    out += (out.empty() ? "" : "; ") + std::string(text);
  }
  return out;
}

// After a read or write that moved nothing: `wait` 0 is a failure (`error`); otherwise waits until
// `fd` is ready for `wait`, or fails with `timed_out` once `deadline` has passed. On failure the
// caller closes the connection.
Status wait_for_io(int fd, short wait, const std::string& error, uint64_t deadline,
                   const char* timed_out) {
  if (wait == 0) return Status::io_error(error);
  const uint64_t now = now_ms();
  if (now >= deadline) return Status::io_error(timed_out);
  pollfd p{fd, wait, 0};
  ::poll(&p, 1, static_cast<int>(deadline - now));
  return Status::ok();
}

bool is_ip_address(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

}  // namespace

RespClient::RespClient() = default;

RespClient::~RespClient() {
  close();
}

RespClient::RespClient(RespClient&& other) noexcept
    : fd_(other.fd_),
      tls_(std::move(other.tls_)),
      timeout_ms_(other.timeout_ms_),
      parser_(std::move(other.parser_)) {
  other.fd_ = -1;
}

RespClient& RespClient::operator=(RespClient&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    tls_ = std::move(other.tls_);
    timeout_ms_ = other.timeout_ms_;
    parser_ = std::move(other.parser_);
    other.fd_ = -1;
  }
  return *this;
}

void RespClient::close() {
  tls_.reset();  // no close_notify: the connection is dropped, as the server's side does
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  parser_ = ReplyParser();
}

Result<RespClient> RespClient::connect(const std::string& host, uint16_t port,
                                       uint32_t timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    return Status::invalid_argument("cannot resolve " + host + ": " + gai_strerror(rc));
  std::string last_error = "no address";
  for (addrinfo* a = res; a; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, static_cast<int>(timeout_ms));
      int err = 0;
      socklen_t len = sizeof(err);
      if (rc == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
        rc = 0;
      } else {
        errno = rc == 0 ? ETIMEDOUT : (err ? err : errno);
        rc = -1;
      }
    }
    if (rc == 0) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      ::freeaddrinfo(res);
      RespClient c;
      c.fd_ = fd;
      c.timeout_ms_ = timeout_ms;
      return c;
    }
    last_error = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return Status::io_error("cannot connect to " + host + ":" + std::to_string(port) + ": " +
                          last_error);
}

Result<RespClient> RespClient::connect(const std::string& host, uint16_t port,
                                       const ClientOptions& options) {
  auto c = connect(host, port, options.timeout_ms);
  if (!c.is_ok() || (!options.tls.enabled && !options.password)) return c;
  const std::string where = host + ":" + std::to_string(port);
  if (options.tls.enabled) {
    if (Status s = c->handshake(host, options.tls); !s.is_ok())
      return Status::io_error("TLS handshake with " + where + ": " + s.message());
  }
  if (options.password) {
    std::vector<std::string> auth = {"AUTH"};
    if (!options.user.empty()) auth.push_back(options.user);
    auth.push_back(*options.password);
    auto reply = c->call(auth);
    if (!reply.is_ok())
      return Status::io_error("AUTH at " + where + ": " + reply.status().message());
    if (reply->kind == kv::Reply::Kind::kError)
      return Status::invalid_argument("AUTH at " + where + " refused: " + reply->text);
  }
  return c;
}

Status RespClient::handshake(const std::string& host, const TlsOptions& options) {
  ERR_clear_error();
  tls_ = std::make_unique<Tls>();
  tls_->ctx = SSL_CTX_new(TLS_client_method());
  if (tls_->ctx == nullptr) return Status::io_error("SSL_CTX_new: " + openssl_errors());
  SSL_CTX_set_min_proto_version(tls_->ctx, TLS1_2_VERSION);
  // A server that drops the connection without close_notify has ended it, as plaintext's EOF.
  SSL_CTX_set_options(tls_->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (!options.insecure) {
    const int loaded =
        options.ca_cert_file.empty()
            ? SSL_CTX_set_default_verify_paths(tls_->ctx)
            : SSL_CTX_load_verify_locations(tls_->ctx, options.ca_cert_file.c_str(), nullptr);
    if (loaded != 1)
      return Status::invalid_argument("--cacert " + options.ca_cert_file + ": " + openssl_errors());
    SSL_CTX_set_verify(tls_->ctx, SSL_VERIFY_PEER, nullptr);
  }
  if (!options.cert_file.empty() &&
      (SSL_CTX_use_certificate_chain_file(tls_->ctx, options.cert_file.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(tls_->ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
       SSL_CTX_check_private_key(tls_->ctx) != 1))
    return Status::invalid_argument("--cert " + options.cert_file + " / --key " + options.key_file +
                                    ": " + openssl_errors());
  tls_->ssl = SSL_new(tls_->ctx);
  if (tls_->ssl == nullptr || SSL_set_fd(tls_->ssl, fd_) != 1)
    return Status::io_error("SSL_new: " + openssl_errors());
  const std::string name = options.sni.empty() ? host : options.sni;
  // SSL_set_tlsext_host_name, without the macro's C cast.
  if (!is_ip_address(name))
    SSL_ctrl(tls_->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(name.c_str()));
  if (!options.insecure) {
    X509_VERIFY_PARAM* param = SSL_get0_param(tls_->ssl);
    const int named = is_ip_address(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                                          : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
    if (named != 1) return Status::invalid_argument("cannot check the server's name " + name);
  }
  const uint64_t deadline = now_ms() + timeout_ms_;
  for (;;) {
    const int rc = SSL_connect(tls_->ssl);
    if (rc == 1) return Status::ok();
    const int error = SSL_get_error(tls_->ssl, rc);
    const uint64_t now = now_ms();
    if ((error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) && now < deadline) {
      pollfd p{fd_, static_cast<short>(error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
      ::poll(&p, 1, static_cast<int>(deadline - now));
      continue;
    }
    std::string why = error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE
                          ? "timed out"
                          : openssl_errors();
    if (const long verify = SSL_get_verify_result(tls_->ssl); verify != X509_V_OK)
      why = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    if (why.empty()) why = "the server closed the connection (does this port speak TLS?)";
    close();
    return Status::io_error(why);
  }
}

ssize_t RespClient::recv_some(char* buf, size_t n, short& wait, std::string& error) {
  wait = 0;
  if (!tls_) {
    const ssize_t got = ::recv(fd_, buf, n, 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      wait = POLLIN;
    else if (got < 0)
      error = std::string("recv: ") + std::strerror(errno);
    return got;
  }
  ERR_clear_error();
  const int got = SSL_read(tls_->ssl, buf, static_cast<int>(std::min<size_t>(n, INT32_MAX)));
  if (got > 0) return got;
  const int e = SSL_get_error(tls_->ssl, got);
  if (e == SSL_ERROR_ZERO_RETURN) return 0;
  if (e == SSL_ERROR_WANT_READ) wait = POLLIN;
  if (e == SSL_ERROR_WANT_WRITE) wait = POLLOUT;
  if (wait == 0) error = "TLS read: " + openssl_errors();
  return -1;
}

ssize_t RespClient::send_some(std::string_view bytes, short& wait, std::string& error) {
  wait = 0;
  if (!tls_) {
    const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      wait = POLLOUT;
    else if (sent <= 0)
      error = std::string("send: ") + std::strerror(errno);
    return sent;
  }
  ERR_clear_error();
  const int sent = SSL_write(tls_->ssl, bytes.data(),
                             static_cast<int>(std::min<size_t>(bytes.size(), INT32_MAX)));
  if (sent > 0) return sent;
  const int e = SSL_get_error(tls_->ssl, sent);
  if (e == SSL_ERROR_WANT_READ) wait = POLLIN;
  if (e == SSL_ERROR_WANT_WRITE) wait = POLLOUT;
  if (wait == 0) error = "TLS write: " + openssl_errors();
  return -1;
}

Status RespClient::send_raw(std::string_view bytes) {
  if (fd_ < 0) return Status::io_error("not connected");
  const uint64_t deadline = now_ms() + timeout_ms_;
  while (!bytes.empty()) {
    short wait = 0;
    std::string error;
    const ssize_t n = send_some(bytes, wait, error);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (Status s = wait_for_io(fd_, wait, error, deadline, "send timed out"); !s.is_ok()) {
      close();
      return s;
    }
  }
  return Status::ok();
}

Result<kv::Reply> RespClient::read_reply() {
  if (fd_ < 0) return Status::io_error("not connected");
  const uint64_t deadline = now_ms() + timeout_ms_;
  char buf[64 << 10];
  for (;;) {
    kv::Reply reply;
    std::string error;
    const auto s = parser_.next(reply, error);
    if (s == ReplyParser::Status::kReply) return reply;
    if (s == ReplyParser::Status::kError) {
      close();
      return Status::corruption("bad reply: " + error);
    }
    // Read first, poll only when told to: TLS may hold decrypted bytes the socket no longer has.
    short wait = 0;
    const ssize_t n = recv_some(buf, sizeof(buf), wait, error);
    if (n > 0) {
      parser_.feed(std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (n == 0) {
      close();
      return Status::io_error("connection closed by the server");
    }
    if (Status waited = wait_for_io(fd_, wait, error, deadline, "timed out waiting for a reply");
        !waited.is_ok()) {
      close();
      return waited;
    }
  }
}

Result<kv::Reply> RespClient::call(const std::vector<std::string>& args) {
  SYNOD_RETURN_IF_ERROR(send_raw(encode_command(args)));
  return read_reply();
}

Result<std::vector<kv::Reply>> RespClient::pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  std::string out;
  for (const auto& c : commands) out += encode_command(c);
  SYNOD_RETURN_IF_ERROR(send_raw(out));
  std::vector<kv::Reply> replies;
  for (size_t i = 0; i < commands.size(); ++i) {
    auto r = read_reply();
    if (!r.is_ok()) return r.status();
    replies.push_back(std::move(*r));
  }
  return replies;
}

std::map<std::string, std::string> parse_info(std::string_view text) {
  std::map<std::string, std::string> fields;
  while (!text.empty()) {
    size_t eol = text.find("\r\n");
    const std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos && line[0] != '#')
      fields.emplace(line.substr(0, colon), line.substr(colon + 1));
  }
  return fields;
}

std::string to_string(const kv::Reply& r) {
  switch (r.kind) {
    case kv::Reply::Kind::kSimple:
      return r.text;
    case kv::Reply::Kind::kError:
      return "(error) " + r.text;
    case kv::Reply::Kind::kInteger:
      return "(integer) " + std::to_string(r.integer);
    case kv::Reply::Kind::kBulk:
      return "\"" + r.text + "\"";
    case kv::Reply::Kind::kNull:
    case kv::Reply::Kind::kNullArray:
      return "(nil)";
    case kv::Reply::Kind::kArray: {
      std::string out = "[";
      for (size_t i = 0; i < r.elements.size(); ++i)
        out += (i ? ", " : "") + to_string(r.elements[i]);
      return out + "]";
    }
  }
  return "?";
}

}  // namespace synod::client
