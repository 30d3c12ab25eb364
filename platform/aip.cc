#include "platform/aip.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "platform/crypto.h"
#include "platform/errors.h"

namespace parcours::aip {
namespace {

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '~' || c == '-';
}

// Debian's Abseil is built with its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0).
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsVariable(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

// --- Resource names -------------------------------------------------------------------------

absl::StatusOr<std::vector<std::string>> ParseName(std::string_view pattern, std::string_view name,
                                                   std::string_view field) {
  const std::string field_str(field);
  if (name.empty()) return InvalidArgument(field_str, "is required");
  const std::vector<std::string> want = absl::StrSplit(AV(pattern), '/');
  const std::vector<std::string> got = absl::StrSplit(AV(name), '/');
  const std::string form = absl::StrCat("must have the form ", AV(pattern));
  if (want.size() != got.size()) return InvalidArgument(field_str, form);
  std::vector<std::string> segments;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!IsVariable(want[i])) {
      if (want[i] != got[i]) return InvalidArgument(field_str, form);
      continue;
    }
    const std::string var = want[i].substr(1, want[i].size() - 2);
    if (got[i].empty()) {
      return InvalidArgument(field_str, absl::StrCat(form, " (", var, " is empty)"));
    }
    if (!std::all_of(got[i].begin(), got[i].end(), IsNameChar)) {
      return InvalidArgument(
          field_str,
          absl::StrCat(form, " (", var, " may only contain letters, digits and . _ ~ -)"));
    }
    segments.emplace_back(got[i]);
  }
  return segments;
}

std::string FormatName(std::string_view pattern, const std::vector<std::string>& segments) {
  std::string out;
  out.reserve(pattern.size() + 16);
  size_t next = 0;
  size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] == '{') {
      const size_t close = pattern.find('}', i);
      if (close != std::string_view::npos) {
        if (next < segments.size()) out += segments[next];
        ++next;
        i = close + 1;
        continue;
      }
    }
    out += pattern[i];
    ++i;
  }
  return out;
}

// --- Page tokens ----------------------------------------------------------------------------
//
// token   = base64url-nopad(mac || payload)
// mac     = HMAC-SHA256(key, payload)                         (32 bytes)
// payload = version (1 byte, 0x01) || SHA-256(scope) (32 bytes) || cursor

namespace {

constexpr unsigned char kTokenVersion = 1;
constexpr size_t kMacSize = 32;
constexpr size_t kScopeHashSize = 32;
constexpr size_t kHeaderSize = kMacSize + 1 + kScopeHashSize;

std::string Sha256(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

bool SecureEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

absl::Status BadToken(std::string description) {
  return InvalidArgument("page_token", std::move(description));
}

}  // namespace

PageTokenCodec::PageTokenCodec(std::string key) : key_(std::move(key)) {}

std::string PageTokenCodec::Encode(std::string_view scope, std::string_view cursor) const {
  std::string payload;
  payload.reserve(1 + kScopeHashSize + cursor.size());
  payload.push_back(static_cast<char>(kTokenVersion));
  payload += Sha256(scope);
  payload.append(cursor.data(), cursor.size());
  return absl::WebSafeBase64Escape(absl::StrCat(HmacSha256(key_, payload), payload));
}

absl::StatusOr<std::string> PageTokenCodec::Decode(std::string_view scope,
                                                   std::string_view token) const {
  if (token.empty()) return std::string();
  constexpr char kInvalid[] = "is not a valid page token (malformed or altered)";
  std::string raw;
  if (!absl::WebSafeBase64Unescape(AV(token), &raw)) return BadToken(kInvalid);
  // Only the canonical encoding is accepted: otherwise several strings (padding, unused low
  // bits of the last character) would decode to the same bytes.
  if (absl::WebSafeBase64Escape(raw) != token) return BadToken(kInvalid);
  if (raw.size() < kHeaderSize) return BadToken(kInvalid);
  const std::string_view raw_view(raw);
  const std::string_view mac = raw_view.substr(0, kMacSize);
  const std::string_view payload = raw_view.substr(kMacSize);
  if (!SecureEqual(mac, HmacSha256(key_, payload))) return BadToken(kInvalid);
  if (static_cast<unsigned char>(payload[0]) != kTokenVersion) return BadToken(kInvalid);
  if (!SecureEqual(payload.substr(1, kScopeHashSize), Sha256(scope))) {
    return BadToken(
        "was issued for a different request: keep the same parent, filter and order_by as the "
        "request that returned it");
  }
  return std::string(payload.substr(1 + kScopeHashSize));
}

absl::StatusOr<int> PageSize(int32_t requested, int default_size, int max_size) {
  if (requested < 0) return InvalidArgument("page_size", "must not be negative");
  if (requested == 0) return std::min(default_size, max_size);
  return std::min<int>(requested, max_size);
}

// --- Field masks ----------------------------------------------------------------------------

absl::StatusOr<std::vector<std::string>> ResolveMask(const google::protobuf::FieldMask& mask,
                                                     const std::vector<std::string>& allowed,
                                                     const google::protobuf::Message& patch) {
  if (mask.paths().empty()) {
    const google::protobuf::Reflection* reflection = patch.GetReflection();
    std::vector<std::string> populated;
    for (const std::string& path : allowed) {
      const google::protobuf::FieldDescriptor* field = patch.GetDescriptor()->FindFieldByName(path);
      if (field == nullptr) {
        populated.push_back(path);  // not a field of the patch: the caller's own path, kept as before
      } else if (field->is_repeated() ? reflection->FieldSize(patch, field) > 0 : reflection->HasField(patch, field)) {
        populated.push_back(path);
      }
    }
    return populated;
  }
  std::vector<FieldViolation> violations;
  std::vector<std::string> paths;
  for (const std::string& path : mask.paths()) {
    if (path == "*") {
      violations.push_back(
          {"update_mask", "\"*\" (full replacement) is not supported: list the paths to update"});
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), path) == allowed.end()) {
      violations.push_back({"update_mask",
                            absl::StrCat("path \"", path, "\" is unknown or cannot be updated",
                                         allowed.empty() ? "" : " (updatable: ",
                                         absl::StrJoin(allowed, ", "), allowed.empty() ? "" : ")")});
      continue;
    }
    if (std::find(paths.begin(), paths.end(), path) == paths.end()) paths.push_back(path);
  }
  if (!violations.empty()) return InvalidArgument(std::move(violations));
  return paths;
}

// --- Etags ----------------------------------------------------------------------------------

std::string Etag(int64_t version) { return absl::StrCat("\"", version, "\""); }

absl::StatusOr<std::optional<int64_t>> ParseEtag(std::string_view etag, std::string_view field) {
  if (etag.empty()) return std::optional<int64_t>();
  auto bad = [&] {
    return InvalidArgument(std::string(field), "is not an etag returned by this service");
  };
  if (etag.size() < 3 || etag.front() != '"' || etag.back() != '"') return bad();
  const std::string_view digits = etag.substr(1, etag.size() - 2);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad();
  }
  int64_t version = 0;
  if (!absl::SimpleAtoi(AV(digits), &version)) return bad();
  return std::optional<int64_t>(version);
}

// --- Filters --------------------------------------------------------------------------------

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsBareChar(char c) { return IsAlpha(c) || IsDigit(c) || c == '.' || c == '-'; }

class FilterParser {
 public:
  explicit FilterParser(std::string_view in) : in_(in) {}

  absl::StatusOr<std::vector<FilterTerm>> Parse() {
    std::vector<FilterTerm> terms;
    SkipSpace();
    if (AtEnd()) return terms;
    while (true) {
      FilterTerm term;
      if (absl::Status s = ParseField(term.field); !s.ok()) return s;
      SkipSpace();
      if (absl::Status s = ParseOp(term.op); !s.ok()) return s;
      SkipSpace();
      if (absl::Status s = ParseValue(term.value); !s.ok()) return s;
      terms.push_back(std::move(term));
      SkipSpace();
      if (AtEnd()) break;
      const size_t at = pos_;
      const std::string_view word = ReadWord();
      if (word != "AND") {
        if (word == "OR" || word == "NOT" || word == "and" || word == "or" || word == "not") {
          return Error(at, absl::StrCat("\"", AV(word),
                                        "\" is not supported: terms are joined by AND "
                                        "(upper case)"));
        }
        return Error(at, "expected AND between terms");
      }
      if (!AtEnd() && !IsSpace(in_[pos_])) return Error(pos_, "expected a space after AND");
      SkipSpace();
      if (AtEnd()) return Error(pos_, "expected a term after AND");
    }
    return terms;
  }

 private:
  bool AtEnd() const { return pos_ >= in_.size(); }
  void SkipSpace() {
    while (!AtEnd() && IsSpace(in_[pos_])) ++pos_;
  }
  std::string_view ReadWord() {
    const size_t start = pos_;
    while (!AtEnd() && IsBareChar(in_[pos_])) ++pos_;
    return in_.substr(start, pos_ - start);
  }

  absl::Status Error(size_t at, std::string_view what) const {
    return InvalidArgument("filter", absl::StrCat("syntax error at column ", at + 1, ": ", AV(what)));
  }

  // field := ident ("." ident)*, ident := [A-Za-z_][A-Za-z0-9_]*
  absl::Status ParseField(std::string& field) {
    const size_t start = pos_;
    while (true) {
      if (AtEnd() || !IsAlpha(in_[pos_])) return Error(pos_, "expected a field name");
      while (!AtEnd() && (IsAlpha(in_[pos_]) || IsDigit(in_[pos_]))) ++pos_;
      if (AtEnd() || in_[pos_] != '.') break;
      ++pos_;
    }
    field.assign(in_.substr(start, pos_ - start));
    return absl::OkStatus();
  }

  absl::Status ParseOp(std::string& op) {
    if (AtEnd()) return Error(pos_, "expected an operator (=, !=, :, <, <=, > or >=)");
    const char c = in_[pos_];
    const bool has_eq = pos_ + 1 < in_.size() && in_[pos_ + 1] == '=';
    if (c == '=' || c == ':') {
      op.assign(1, c);
      ++pos_;
    } else if ((c == '!' || c == '<' || c == '>') && has_eq) {
      op = std::string(1, c) + "=";
      pos_ += 2;
    } else if (c == '<' || c == '>') {
      op.assign(1, c);
      ++pos_;
    } else {
      return Error(pos_, "expected an operator (=, !=, :, <, <=, > or >=)");
    }
    if (!AtEnd() && (in_[pos_] == '=' || in_[pos_] == '<' || in_[pos_] == '>')) {
      return Error(pos_ - op.size(), "unsupported operator");
    }
    return absl::OkStatus();
  }

  absl::Status ParseValue(std::string& value) {
    if (AtEnd()) return Error(pos_, "expected a value");
    if (in_[pos_] == '"') {
      const size_t open = pos_++;
      value.clear();
      while (true) {
        if (AtEnd()) return Error(open, "unterminated quoted string");
        const char c = in_[pos_++];
        if (c == '"') break;
        if (c == '\\') {
          if (AtEnd()) return Error(open, "unterminated quoted string");
          const char e = in_[pos_];
          if (e != '"' && e != '\\') {
            return Error(pos_ - 1, "unsupported escape (only \\\" and \\\\ are allowed)");
          }
          value.push_back(e);
          ++pos_;
          continue;
        }
        value.push_back(c);
      }
      if (!AtEnd() && !IsSpace(in_[pos_])) {
        return Error(pos_, "expected a space after the quoted value");
      }
      return absl::OkStatus();
    }
    const size_t start = pos_;
    const std::string_view word = ReadWord();
    if (word.empty()) {
      return Error(start, "expected a value (a bare word of [A-Za-z0-9_.-] or a quoted string)");
    }
    if (!AtEnd() && !IsSpace(in_[pos_])) {
      return Error(pos_, "unexpected character in value (quote values with other characters)");
    }
    value.assign(word);
    return absl::OkStatus();
  }

  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<std::vector<FilterTerm>> ParseFilter(std::string_view filter, const std::vector<std::string>& allowed,
                                                    RepeatedFields repeated) {
  absl::StatusOr<std::vector<FilterTerm>> terms = FilterParser(filter).Parse();
  if (!terms.ok()) return terms.status();
  std::vector<std::string> conditions;  // "field op" already given
  for (const FilterTerm& term : *terms) {
    if (term.value.empty()) {
      return InvalidArgument("filter", absl::StrCat("\"", term.field, " ", term.op, "\" has an empty value"));
    }
    if (repeated == RepeatedFields::kRefused) {
      std::string condition = absl::StrCat(term.field, " ", term.op);
      if (std::find(conditions.begin(), conditions.end(), condition) != conditions.end()) {
        return InvalidArgument("filter", absl::StrCat("\"", condition, "\" is given twice: one value per condition"));
      }
      conditions.push_back(std::move(condition));
    }
    const std::string key = absl::StrCat(term.field, term.op);
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return InvalidArgument(
          "filter", absl::StrCat("\"", term.field, " ", term.op, "\" is not supported",
                                 allowed.empty() ? std::string(" (this list accepts no filter)")
                                                 : absl::StrCat(" (supported: ",
                                                                absl::StrJoin(allowed, ", "), ")")));
    }
  }
  return terms;
}

// --- Request ids ----------------------------------------------------------------------------

absl::Status CheckRequestId(std::string_view request_id, std::string_view field) {
  if (request_id.empty()) return absl::OkStatus();
  if (request_id.size() > 64) {
    return InvalidArgument(std::string(field), "must be at most 64 characters");
  }
  const bool ok = std::all_of(request_id.begin(), request_id.end(), [](char c) {
    return IsAlpha(c) || IsDigit(c) || c == '.' || c == ':' || c == '-';
  });
  if (!ok) {
    return InvalidArgument(std::string(field), "may only contain letters, digits and . _ : -");
  }
  return absl::OkStatus();
}

}  // namespace parcours::aip
