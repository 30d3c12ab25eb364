// A small strict JSON reader (RFC 8259) for JWT headers, claims and JWKS documents: enough for
// those, nothing more. Rejects duplicate object keys (RFC 7515 §4 allows it, and it removes any
// doubt about which `alg` or `aud` was meant), nesting deeper than 32 and trailing content.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace parcours::gateway::json {

struct Value {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;  // in document order

  bool is_string() const { return type == Type::kString; }
  bool is_number() const { return type == Type::kNumber; }
  bool is_object() const { return type == Type::kObject; }
  bool is_array() const { return type == Type::kArray; }
  // The member named `key` of an object; nullptr when absent or not an object.
  const Value* Find(std::string_view key) const;
};

// INVALID_ARGUMENT with a short reason (never the input) when `text` is not one JSON value.
absl::StatusOr<Value> Parse(std::string_view text);

}  // namespace parcours::gateway::json
