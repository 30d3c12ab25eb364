// Helpers for resource-oriented APIs after Google's AIPs: resource names, page tokens,
// field masks, etags, filters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/message.h"

namespace parcours::aip {

// --- Resource names -------------------------------------------------------------------------
// Matches `name` against a pattern like "certifications/{certification}/versions/{version}" and
// returns the variable segments in order. INVALID_ARGUMENT on `field` when it does not match or a
// segment is empty or holds characters outside [A-Za-z0-9._~-].
absl::StatusOr<std::vector<std::string>> ParseName(std::string_view pattern, std::string_view name,
                                                   std::string_view field);
// Fills a pattern with segments: FormatName("certifications/{c}", {"RNCP1"}).
std::string FormatName(std::string_view pattern, const std::vector<std::string>& segments);

// --- Page tokens ----------------------------------------------------------------------------
// Opaque, tamper-proof: base64url(HMAC-SHA256(key, payload) || payload). The payload binds the
// token to the list it came from (`scope`: method + parent + filter), so a token used with
// another list, altered or forged fails with INVALID_ARGUMENT on "page_token".
class PageTokenCodec {
 public:
  explicit PageTokenCodec(std::string key);  // key: secret bytes (from a file in production)
  std::string Encode(std::string_view scope, std::string_view cursor) const;
  // Returns the cursor; "" for an empty token (first page).
  absl::StatusOr<std::string> Decode(std::string_view scope, std::string_view token) const;

 private:
  std::string key_;
};

// Validates page_size (negative -> INVALID_ARGUMENT on "page_size"); 0 -> default_size;
// above max_size -> max_size.
absl::StatusOr<int> PageSize(int32_t requested, int default_size = 50, int max_size = 1000);

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;  // "" on the last page
};

// One page of a keyset-paginated list: decodes the token into a cursor, asks `fetch(cursor,
// limit)` for up to limit = page size + 1 items after it (the extra one tells whether a next page
// exists), and encodes the cursor of the page's last item, `cursor_of(item)`, as the next token.
template <typename T, typename Fetch, typename CursorOf>
absl::StatusOr<Page<T>> Paginate(const PageTokenCodec& codec, std::string_view scope, int32_t page_size,
                                 std::string_view page_token, Fetch fetch, CursorOf cursor_of) {
  absl::StatusOr<int> size = PageSize(page_size);
  if (!size.ok()) return size.status();
  absl::StatusOr<std::string> cursor = codec.Decode(scope, page_token);
  if (!cursor.ok()) return cursor.status();
  absl::StatusOr<std::vector<T>> items = fetch(*cursor, *size + 1);
  if (!items.ok()) return items.status();
  Page<T> page;
  page.items = *std::move(items);
  if (static_cast<int>(page.items.size()) > *size) {
    page.items.resize(*size);
    page.next_page_token = codec.Encode(scope, cursor_of(page.items.back()));
  }
  return page;
}

// --- Field masks ----------------------------------------------------------------------------
// Checks every path is in `allowed` (top-level field names of `patch`; INVALID_ARGUMENT on
// "update_mask" naming the path). An empty mask means the allowed fields `patch` populates
// (AIP-134): an update naming only a title changes only the title, instead of resetting every
// other field to its default. Clearing a field takes a mask naming it. Returns the effective paths.
absl::StatusOr<std::vector<std::string>> ResolveMask(const google::protobuf::FieldMask& mask,
                                                     const std::vector<std::string>& allowed,
                                                     const google::protobuf::Message& patch);

// --- Etags ----------------------------------------------------------------------------------
// Etag of a row's `version` column: "\"<version>\"" (strong etag, opaque to clients).
std::string Etag(int64_t version);
// Empty etag -> nullopt (no check). A malformed etag -> INVALID_ARGUMENT on `field`.
absl::StatusOr<std::optional<int64_t>> ParseEtag(std::string_view etag, std::string_view field);

// --- Filters --------------------------------------------------------------------------------
// The documented subset of AIP-160: a conjunction of comparisons joined by AND.
//   term    := field op value
//   op      := "=" | "!=" | ":" | "<" | "<=" | ">" | ">="   (":" = has / contains)
//   value   := "quoted string" | bareword | true | false | number
struct FilterTerm {
  std::string field;
  std::string op;
  std::string value;  // unquoted
};
// How a list treats one condition given twice (same field and operator). Most lists keep one
// value per condition, so a second term would silently replace the first ("kind = CQP AND
// kind = RS" listing RS): refused.
// A store that ANDs every term (the indicators) accepts them.
enum class RepeatedFields { kRefused, kAnded };
// Unknown fields or operators not in `allowed` ("field op" pairs, e.g. {"kind=", "title:"}), an
// empty value ("certifier = \"\"" would drop the condition), or a condition given twice under
// kRefused -> INVALID_ARGUMENT on "filter" with the offending term.
absl::StatusOr<std::vector<FilterTerm>> ParseFilter(std::string_view filter, const std::vector<std::string>& allowed,
                                                    RepeatedFields repeated = RepeatedFields::kRefused);

// --- Request ids ----------------------------------------------------------------------------
// request_id must be empty or 1..64 chars of [A-Za-z0-9._:-] (UUIDs fit).
absl::Status CheckRequestId(std::string_view request_id, std::string_view field = "request_id");

}  // namespace parcours::aip
