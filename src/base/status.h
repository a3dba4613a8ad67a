// Expected failures — bad input, I/O errors, corrupt files — travel as Status or Result<T>, never
// as exceptions or assertions. A Status names what failed in words an operator can act on.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "base/assert.h"

namespace synod {

class [[nodiscard]] Status {
 public:
  enum class Code { kOk, kIoError, kCorruption, kNotFound, kInvalidArgument };

  Status() = default;
  static Status ok() { return Status(); }
  static Status io_error(std::string msg) { return Status(Code::kIoError, std::move(msg)); }
  static Status corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status not_found(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status invalid_argument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }

  bool is_ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

inline std::string Status::to_string() const {
  switch (code_) {
    case Code::kOk:
      return "ok";
    case Code::kIoError:
      return "I/O error: " + message_;
    case Code::kCorruption:
      return "corruption: " + message_;
    case Code::kNotFound:
      return "not found: " + message_;
    case Code::kInvalidArgument:
      return "invalid argument: " + message_;
  }
  return message_;
}

// A value or the Status saying why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {
    SYNOD_ASSERT(!std::get<Status>(v_).is_ok(), "a Result's error status must not be ok");
  }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() {
    SYNOD_ASSERT(is_ok(), "value() of a failed Result");
    return std::get<T>(v_);
  }
  const T& value() const {
    SYNOD_ASSERT(is_ok(), "value() of a failed Result");
    return std::get<T>(v_);
  }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace synod

// Returns early from the enclosing function with a failed Status.
#define SYNOD_RETURN_IF_ERROR(expr)                   \
  do {                                                \
    ::synod::Status synod_status_ = (expr);           \
    if (!synod_status_.is_ok()) return synod_status_; \
  } while (0)
