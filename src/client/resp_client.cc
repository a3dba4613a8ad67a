#include "client/resp_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
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

RespClient::~RespClient() {
  close();
}

RespClient::RespClient(RespClient&& other) noexcept
    : fd_(other.fd_), timeout_ms_(other.timeout_ms_), parser_(std::move(other.parser_)) {
  other.fd_ = -1;
}

RespClient& RespClient::operator=(RespClient&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    timeout_ms_ = other.timeout_ms_;
    parser_ = std::move(other.parser_);
    other.fd_ = -1;
  }
  return *this;
}

void RespClient::close() {
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

Status RespClient::send_raw(std::string_view bytes) {
  if (fd_ < 0) return Status::io_error("not connected");
  const uint64_t deadline = now_ms() + timeout_ms_;
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      const uint64_t now = now_ms();
      if (now >= deadline) {
        close();
        return Status::io_error("send timed out");
      }
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, static_cast<int>(deadline - now));
      continue;
    }
    const std::string why = std::strerror(errno);
    close();
    return Status::io_error("send: " + why);
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
    const uint64_t now = now_ms();
    if (now >= deadline) {
      close();
      return Status::io_error("timed out waiting for a reply");
    }
    pollfd p{fd_, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(deadline - now));
    if (rc <= 0) continue;
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      parser_.feed(std::string_view(buf, static_cast<size_t>(n)));
    } else if (n == 0) {
      close();
      return Status::io_error("connection closed by the server");
    } else if (errno != EAGAIN && errno != EINTR) {
      const std::string why = std::strerror(errno);
      close();
      return Status::io_error("recv: " + why);
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
