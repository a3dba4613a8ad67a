#include "net/resp.h"

#include <charconv>
#include <utility>

namespace synod::net {
namespace {

// Parses a signed decimal that fills `text` exactly.
bool parse_int(std::string_view text, int64_t& v) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

void RespParser::compact() {
  if (pos_ == buffer_.size()) {
    buffer_.clear();
    pos_ = 0;
  } else if (pos_ > (1 << 16) && pos_ * 2 > buffer_.size()) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
}

RespParser::Status RespParser::next(std::vector<std::string>& args, std::string& error) {
  for (;;) {
    compact();
    if (pos_ >= buffer_.size()) return Status::kNeedMore;
    Status s = buffer_[pos_] == '*' ? parse_multibulk(args, error) : parse_inline(args, error);
    if (s == Status::kRequest && args.empty()) continue;  // an empty line or "*0"
    return s;
  }
}

RespParser::Status RespParser::parse_inline(std::vector<std::string>& args, std::string& error) {
  const size_t eol = buffer_.find('\n', pos_);
  if (eol == std::string::npos) {
    if (buffer_.size() - pos_ > limits_.max_inline_bytes) {
      error = "ERR Protocol error: too big inline request";
      return Status::kError;
    }
    return Status::kNeedMore;
  }
  if (eol - pos_ > limits_.max_inline_bytes) {
    error = "ERR Protocol error: too big inline request";
    return Status::kError;
  }
  std::string_view line(buffer_.data() + pos_, eol - pos_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos_ = eol + 1;
  args.clear();
  // Words separated by spaces or tabs; "double" and 'single' quotes group, with \-escapes in
  // double quotes (\n, \r, \t, \\, \", \xHH), as redis-cli's inline syntax.
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    std::string word;
    if (line[i] == '"' || line[i] == '\'') {
      const char quote = line[i++];
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == quote) {
          closed = true;
          break;
        }
        if (c == '\\' && quote == '"' && i < line.size()) {
          char e = line[i++];
          switch (e) {
            case 'n':
              c = '\n';
              break;
            case 'r':
              c = '\r';
              break;
            case 't':
              c = '\t';
              break;
            case 'x':
              if (i + 2 <= line.size()) {
                int v = 0;
                auto [p, ec] = std::from_chars(line.data() + i, line.data() + i + 2, v, 16);
                if (ec == std::errc() && p == line.data() + i + 2) {
                  c = static_cast<char>(v);
                  i += 2;
                  break;
                }
              }
              c = 'x';
              break;
            default:
              c = e;
          }
        }
        word.push_back(c);
      }
      if (!closed || (i < line.size() && line[i] != ' ' && line[i] != '\t')) {
        error = "ERR Protocol error: unbalanced quotes in request";
        return Status::kError;
      }
    } else {
      while (i < line.size() && line[i] != ' ' && line[i] != '\t') word.push_back(line[i++]);
    }
    args.push_back(std::move(word));
  }
  return Status::kRequest;
}

RespParser::Status RespParser::parse_multibulk(std::vector<std::string>& args, std::string& error) {
  // Parse without consuming until the whole request is buffered, then consume it at once.
  size_t p = pos_;
  auto read_line = [&](std::string_view& line) -> bool {
    const size_t eol = buffer_.find("\r\n", p);
    if (eol == std::string::npos) return false;
    line = std::string_view(buffer_.data() + p, eol - p);
    p = eol + 2;
    return true;
  };
  std::string_view line;
  if (!read_line(line)) {
    if (buffer_.size() - pos_ > 64) {
      error = "ERR Protocol error: invalid multibulk length";
      return Status::kError;
    }
    return Status::kNeedMore;
  }
  int64_t count = 0;
  if (!parse_int(line.substr(1), count) || count > static_cast<int64_t>(limits_.max_arguments)) {
    error = "ERR Protocol error: invalid multibulk length";
    return Status::kError;
  }
  // Each argument takes at least "$0\r\n\r\n"; more than the limit can hold is refused now.
  const auto too_big = [&](size_t request_bytes) {
    if (request_bytes <= limits_.max_request_bytes) return false;
    error = "ERR Protocol error: request larger than the query buffer limit (" +
            std::to_string(limits_.max_request_bytes) + " bytes)";
    return true;
  };
  if (too_big((p - pos_) + static_cast<size_t>(std::max<int64_t>(count, 0)) * 6))
    return Status::kError;
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(0, std::min<int64_t>(count, 1024))));
  for (int64_t i = 0; i < count; ++i) {
    if (p >= buffer_.size()) return Status::kNeedMore;
    if (buffer_[p] != '$') {
      error = std::string("ERR Protocol error: expected '$', got '") + buffer_[p] + "'";
      return Status::kError;
    }
    if (!read_line(line)) {
      if (buffer_.size() - p > 64) {
        error = "ERR Protocol error: invalid bulk length";
        return Status::kError;
      }
      return Status::kNeedMore;
    }
    int64_t len = 0;
    if (!parse_int(line.substr(1), len) || len < 0 ||
        static_cast<uint64_t>(len) > limits_.max_bulk_bytes) {
      error = "ERR Protocol error: invalid bulk length";
      return Status::kError;
    }
    const auto n = static_cast<size_t>(len);
    // What is read so far, this argument, and at least 6 bytes for each one still to come.
    const auto rest = static_cast<size_t>(count - i - 1) * 6;
    if (too_big((p - pos_) + n + 2 + rest)) return Status::kError;
    if (buffer_.size() - p < n + 2) return Status::kNeedMore;
    if (buffer_[p + n] != '\r' || buffer_[p + n + 1] != '\n') {
      error = "ERR Protocol error: bulk string not terminated by CRLF";
      return Status::kError;
    }
    out.emplace_back(buffer_.data() + p, n);
    p += n + 2;
  }
  pos_ = p;
  args = std::move(out);
  return Status::kRequest;
}

void RespWriter::simple(std::string_view s) {
  out_ += '+';
  out_ += s;
  out_ += "\r\n";
}

void RespWriter::error(std::string_view s) {
  out_ += '-';
  // An error line must not contain CR or LF.
  for (char c : s) out_ += (c == '\r' || c == '\n') ? ' ' : c;
  out_ += "\r\n";
}

void RespWriter::integer(int64_t v) {
  out_ += ':';
  out_ += std::to_string(v);
  out_ += "\r\n";
}

void RespWriter::bulk(std::string_view s) {
  out_ += '$';
  out_ += std::to_string(s.size());
  out_ += "\r\n";
  out_ += s;
  out_ += "\r\n";
}

void RespWriter::null() {
  out_ += protocol_ >= 3 ? "_\r\n" : "$-1\r\n";
}

void RespWriter::null_array() {
  out_ += protocol_ >= 3 ? "_\r\n" : "*-1\r\n";
}

void RespWriter::array(size_t n) {
  out_ += '*';
  out_ += std::to_string(n);
  out_ += "\r\n";
}

void RespWriter::map(size_t n) {
  out_ += protocol_ >= 3 ? '%' : '*';
  out_ += std::to_string(protocol_ >= 3 ? n : 2 * n);
  out_ += "\r\n";
}

void RespWriter::boolean(bool v) {
  if (protocol_ >= 3)
    out_ += v ? "#t\r\n" : "#f\r\n";
  else
    integer(v ? 1 : 0);
}

}  // namespace synod::net
