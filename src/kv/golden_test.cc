// Byte-for-byte compatibility with Redis: every file of testdata/kv holds commands and the RESP2
// replies a real Redis 7.0 gave them (recorded by scripts/kv-golden), and a fresh Store must
// answer each command with the same bytes. Writes are applied from the log, reads served as
// reads, all at one log time in 2023, so that an absolute expiry in the past is past here too
// (relative expiry is tested in store_test.cc, on the log clock).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "kv/store.h"

namespace synod::kv {
namespace {

constexpr uint64_t kNowMs = 1'700'000'000'000;

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= line.size()) {
    size_t end = line.find(' ', start);
    if (end == std::string::npos) end = line.size();
    std::string w = line.substr(start, end - start);
    std::string b;
    if (w != "\"\"") {
      for (size_t i = 0; i < w.size(); ++i) {
        if (w[i] == '\\' && i + 3 < w.size() + 0 && w[i + 1] == 'x') {
          b.push_back(static_cast<char>(std::stoi(w.substr(i + 2, 2), nullptr, 16)));
          i += 3;
        } else {
          b.push_back(w[i]);
        }
      }
    }
    out.push_back(b);
    start = end + 1;
  }
  return out;
}

void resp(std::string& out, const Reply& r) {
  switch (r.kind) {
    case Reply::Kind::kSimple:
      out += "+" + r.text + "\r\n";
      return;
    case Reply::Kind::kError:
      out += "-" + r.text + "\r\n";
      return;
    case Reply::Kind::kInteger:
      out += ":" + std::to_string(r.integer) + "\r\n";
      return;
    case Reply::Kind::kBulk:
      out += "$" + std::to_string(r.text.size()) + "\r\n" + r.text + "\r\n";
      return;
    case Reply::Kind::kNull:
      out += "$-1\r\n";
      return;
    case Reply::Kind::kNullArray:
      out += "*-1\r\n";
      return;
    case Reply::Kind::kArray:
      out += "*" + std::to_string(r.elements.size()) + "\r\n";
      for (const auto& e : r.elements) resp(out, e);
      return;
  }
}

std::string escape(const std::string& raw) {
  std::string out;
  for (unsigned char c : raw) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// An array reply's elements sorted (nested arrays too), for a command whose order Redis leaves to
// itself.
Reply sorted(Reply r) {
  if (r.kind != Reply::Kind::kArray) return r;
  for (auto& e : r.elements) e = sorted(std::move(e));
  std::sort(r.elements.begin(), r.elements.end(), [](const Reply& a, const Reply& b) {
    std::string x, y;
    resp(x, a);
    resp(y, b);
    return x < y;
  });
  return r;
}

std::string unescape_resp(const std::string& escaped) {
  std::string out;
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] != '\\' || i + 1 == escaped.size()) {
      out.push_back(escaped[i]);
      continue;
    }
    const char c = escaped[++i];
    if (c == 'r') {
      out.push_back('\r');
    } else if (c == 'n') {
      out.push_back('\n');
    } else if (c == 'x') {
      out.push_back(static_cast<char>(std::stoi(escaped.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Parses one RESP2 reply (as Redis sent it) back into a Reply, for multiset comparisons.
Reply parse_resp(const std::string& s, size_t& pos) {
  const size_t eol = s.find("\r\n", pos);
  const char t = s[pos];
  const std::string line = s.substr(pos + 1, eol - pos - 1);
  pos = eol + 2;
  if (t == '+') return Reply::simple(line);
  if (t == '-') return Reply::error(line);
  if (t == ':') return Reply::integer_of(std::stoll(line));
  const long long n = std::stoll(line);
  if (t == '$') {
    if (n < 0) return Reply::null();
    Reply r = Reply::bulk(s.substr(pos, static_cast<size_t>(n)));
    pos += static_cast<size_t>(n) + 2;
    return r;
  }
  if (n < 0) return Reply::null_array();
  std::vector<Reply> e;
  for (long long i = 0; i < n; ++i) e.push_back(parse_resp(s, pos));
  return Reply::array(std::move(e));
}

std::vector<std::filesystem::path> golden_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& f :
       std::filesystem::directory_iterator(std::filesystem::path(SYNOD_SOURCE_DIR) / "testdata/kv"))
    if (f.path().extension() == ".txt") files.push_back(f.path());
  std::sort(files.begin(), files.end());
  return files;
}

TEST(Golden, EveryReplyIsByteForByteRedis) {
  const auto files = golden_files();
  ASSERT_FALSE(files.empty());
  for (const auto& path : files) {
    std::ifstream in(path);
    std::string line, command;
    bool unordered = false;
    Store store;
    Reply got;
    int n = 0;
    while (std::getline(in, line)) {
      if (line.rfind("< ", 0) == 0) {
        ++n;
        std::string want = unescape_resp(line.substr(2));
        if (unordered) {
          size_t pos = 0;
          EXPECT_EQ(sorted(got), sorted(parse_resp(want, pos)))
              << path.filename() << ": " << command;
        } else {
          std::string mine;
          resp(mine, got);
          EXPECT_EQ(escape(mine), escape(want)) << path.filename() << ": " << command;
        }
        continue;
      }
      if (line.empty() || line[0] == '#') continue;
      unordered = line.rfind("!unordered ", 0) == 0;
      command = unordered ? line.substr(11) : line;
      const auto args = words(command);
      got = classify(args[0]) == CommandClass::kRead ? store.read(args, kNowMs)
                                                     : store.apply({0, 0, kNowMs, args});
    }
    EXPECT_GT(n, 0) << path;
  }
}

}  // namespace
}  // namespace synod::kv
