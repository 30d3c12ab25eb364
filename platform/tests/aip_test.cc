#include "platform/aip.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "google/protobuf/api.pb.h"
#include "google/rpc/error_details.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "platform/months.h"

namespace parcours::aip {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The field violations of an INVALID_ARGUMENT status, as (field, description) pairs.
std::vector<std::pair<std::string, std::string>> Violations(const absl::Status& status) {
  std::vector<std::pair<std::string, std::string>> out;
  auto payload = status.GetPayload("type.googleapis.com/google.rpc.BadRequest");
  if (!payload) return out;
  google::rpc::BadRequest bad_request;
  if (!bad_request.ParseFromString(std::string(*payload))) return out;
  for (const auto& v : bad_request.field_violations()) out.emplace_back(v.field(), v.description());
  return out;
}

// Expects INVALID_ARGUMENT whose BadRequest has exactly one violation on `field`; returns its
// description.
std::string ExpectInvalid(const absl::Status& status, const std::string& field) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  auto v = Violations(status);
  EXPECT_EQ(v.size(), 1u) << status;
  if (v.empty()) return "";
  EXPECT_EQ(v[0].first, field) << status;
  return v[0].second;
}

// --- Names ----------------------------------------------------------------------------------

TEST(ParseName, ExtractsSegments) {
  auto segs = ParseName("certifications/{certification}/versions/{version}",
                        "certifications/RNCP-1.2_x~y/versions/3", "name");
  ASSERT_TRUE(segs.ok()) << segs.status();
  EXPECT_THAT(*segs, ElementsAre("RNCP-1.2_x~y", "3"));
}

TEST(ParseName, RejectsMismatches) {
  const std::string pattern = "certifications/{certification}/versions/{version}";
  for (const char* bad : {"", "certifications/X", "certifications/X/versions/", "certifications//versions/1",
                          "certs/X/versions/1", "certifications/X/versions/1/extra",
                          "certifications/X/revisions/1", "certifications/X Y/versions/1",
                          "certifications/X%2F/versions/1", "certifications/é/versions/1",
                          "/certifications/X/versions/1"}) {
    auto segs = ParseName(pattern, bad, "parent");
    ASSERT_FALSE(segs.ok()) << bad;
    ExpectInvalid(segs.status(), "parent");
  }
}

TEST(ParseName, ErrorSaysTheExpectedForm) {
  auto segs = ParseName("certifications/{certification}", "foo/bar", "name");
  ASSERT_FALSE(segs.ok());
  EXPECT_THAT(ExpectInvalid(segs.status(), "name"), HasSubstr("certifications/{certification}"));
  EXPECT_THAT(std::string(segs.status().message()), HasSubstr("name"));
}

TEST(FormatName, FillsVariables) {
  EXPECT_EQ(FormatName("certifications/{c}", {"RNCP1"}), "certifications/RNCP1");
  EXPECT_EQ(FormatName("certifications/{c}/versions/{v}", {"A", "7"}), "certifications/A/versions/7");
}

TEST(FormatName, RoundTripsWithParseName) {
  const std::string pattern = "a/{x}/b/{y}";
  auto segs = ParseName(pattern, FormatName(pattern, {"one", "two"}), "name");
  ASSERT_TRUE(segs.ok()) << segs.status();
  EXPECT_THAT(*segs, ElementsAre("one", "two"));
}

// --- Page tokens ----------------------------------------------------------------------------

class PageTokenTest : public ::testing::Test {
 protected:
  PageTokenCodec codec_{"0123456789abcdef0123456789abcdef"};
  const std::string scope_ = "ListVersions|certifications/A|filter=state=DRAFT";
};

TEST_F(PageTokenTest, RoundTrips) {
  for (const std::string& cursor : {std::string("c42"), std::string(""), std::string("\0\xff|x", 4),
                                   std::string(500, 'z')}) {
    const std::string token = codec_.Encode(scope_, cursor);
    EXPECT_EQ(token.find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos)
        << "not base64url without padding: " << token;
    auto decoded = codec_.Decode(scope_, token);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, cursor);
  }
}

TEST_F(PageTokenTest, EmptyTokenIsFirstPage) {
  auto decoded = codec_.Decode(scope_, "");
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, "");
}

TEST_F(PageTokenTest, CursorIsNotReadableInClear) {
  const std::string token = codec_.Encode(scope_, "secret-cursor");
  EXPECT_EQ(token.find("secret-cursor"), std::string::npos);
}

TEST_F(PageTokenTest, RejectsEveryFlippedCharacter) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  // Cursor lengths 9, 10, 11 cover the three base64 tails (0, 4 or 2 unused bits at the end).
  for (const char* cursor : {"cursor-12", "cursor-123", "cursor-1234"}) {
    const std::string token = codec_.Encode(scope_, cursor);
    for (size_t i = 0; i < token.size(); ++i) {
      std::string bad = token;
      // Replace by the next character of the alphabet: still valid base64url.
      bad[i] = alphabet[(alphabet.find(token[i]) + 1) % alphabet.size()];
      auto decoded = codec_.Decode(scope_, bad);
      ASSERT_FALSE(decoded.ok()) << "flip at " << i << " of " << token << " accepted";
      ExpectInvalid(decoded.status(), "page_token");
    }
  }
}

TEST_F(PageTokenTest, RejectsFlippedDecodedByte) {
  const std::string token = codec_.Encode(scope_, "cursor-123");
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token, &raw));
  for (size_t i = 0; i < raw.size(); ++i) {
    std::string bad = raw;
    bad[i] ^= 0x01;
    auto decoded = codec_.Decode(scope_, absl::WebSafeBase64Escape(bad));
    ASSERT_FALSE(decoded.ok()) << "byte " << i;
    ExpectInvalid(decoded.status(), "page_token");
  }
}

TEST_F(PageTokenTest, RejectsTruncatedAndExtended) {
  for (const char* cursor : {"cursor-12", "cursor-123", "cursor-1234"}) {
    const std::string token = codec_.Encode(scope_, cursor);
    for (size_t n : {size_t{1}, size_t{4}, token.size() / 2, token.size() - 1}) {
      auto decoded = codec_.Decode(scope_, token.substr(0, n));
      ASSERT_FALSE(decoded.ok()) << n;
      ExpectInvalid(decoded.status(), "page_token");
    }
    for (const std::string suffix : {"A", "AA", "AAAA", "=", "==", " ", "\n"}) {
      auto decoded = codec_.Decode(scope_, token + suffix);
      ASSERT_FALSE(decoded.ok()) << token << suffix;
      ExpectInvalid(decoded.status(), "page_token");
    }
  }
}

TEST_F(PageTokenTest, RejectsTokenFromAnotherScope) {
  const std::string token = codec_.Encode("ListVersions|certifications/A|filter=state=DRAFT", "c1");
  for (const char* other : {"ListVersions|certifications/A|filter=state=PUBLISHED",
                            "ListVersions|certifications/B|filter=state=DRAFT", ""}) {
    auto decoded = codec_.Decode(other, token);
    ASSERT_FALSE(decoded.ok()) << other;
    EXPECT_THAT(ExpectInvalid(decoded.status(), "page_token"), HasSubstr("different request"));
  }
}

TEST_F(PageTokenTest, RejectsTokenSignedWithAnotherKey) {
  PageTokenCodec other("another key entirely, 32 bytes!!");
  auto decoded = codec_.Decode(scope_, other.Encode(scope_, "c1"));
  ASSERT_FALSE(decoded.ok());
  ExpectInvalid(decoded.status(), "page_token");
}

TEST_F(PageTokenTest, RejectsGarbage) {
  for (const std::string& garbage :
       {std::string("not a token"), std::string("!!!!"), std::string("abc/def+ghi"),
        std::string("%%%"), std::string("A"), std::string(1000, '.'), std::string("\0\0", 2)}) {
    auto decoded = codec_.Decode(scope_, garbage);
    ASSERT_FALSE(decoded.ok()) << garbage;
    ExpectInvalid(decoded.status(), "page_token");
  }
}

TEST_F(PageTokenTest, RejectsValidBase64OfGarbage) {
  for (const std::string& raw : {std::string("hello"), std::string(64, 'x'), std::string(65, '\0'),
                                std::string(200, '\x7f')}) {
    auto decoded = codec_.Decode(scope_, absl::WebSafeBase64Escape(raw));
    ASSERT_FALSE(decoded.ok()) << raw.size();
    ExpectInvalid(decoded.status(), "page_token");
  }
}

TEST(PageSize, DefaultsClampsAndRejectsNegative) {
  EXPECT_EQ(*PageSize(0), 50);
  EXPECT_EQ(*PageSize(0, 20, 100), 20);
  EXPECT_EQ(*PageSize(7), 7);
  EXPECT_EQ(*PageSize(1000), 1000);
  EXPECT_EQ(*PageSize(1001), 1000);
  EXPECT_EQ(*PageSize(500, 20, 100), 100);
  for (int32_t bad : {-1, INT32_MIN}) {
    auto size = PageSize(bad);
    ASSERT_FALSE(size.ok());
    ExpectInvalid(size.status(), "page_size");
    EXPECT_THAT(std::string(size.status().message()), HasSubstr("page_size"));
  }
}

// --- Field masks ----------------------------------------------------------------------------

google::protobuf::FieldMask Mask(std::vector<std::string> paths) {
  google::protobuf::FieldMask mask;
  for (auto& p : paths) mask.add_paths(p);
  return mask;
}

// AIP-134: without a mask, the fields the patch populates (scalars not at their default,
// messages present, lists not empty), never a reset of the others.
TEST(ResolveMask, EmptyMeansThePopulatedAllowedFields) {
  const std::vector<std::string> allowed = {"name", "methods", "version", "source_context"};
  google::protobuf::Api patch;
  auto paths = ResolveMask(Mask({}), allowed, patch);
  ASSERT_TRUE(paths.ok());
  EXPECT_TRUE(paths->empty());
  patch.set_version("v2");
  patch.mutable_source_context();
  paths = ResolveMask(Mask({}), allowed, patch);
  ASSERT_TRUE(paths.ok());
  EXPECT_THAT(*paths, ElementsAre("version", "source_context"));
  patch.add_methods()->set_name("Get");
  patch.set_syntax(google::protobuf::SYNTAX_PROTO3);  // populated, but not an allowed path
  paths = ResolveMask(Mask({}), allowed, patch);
  ASSERT_TRUE(paths.ok());
  EXPECT_THAT(*paths, ElementsAre("methods", "version", "source_context"));
  // A mask still clears what it names.
  paths = ResolveMask(Mask({"name"}), allowed, patch);
  ASSERT_TRUE(paths.ok());
  EXPECT_THAT(*paths, ElementsAre("name"));
}

TEST(ResolveMask, KeepsAllowedPathsAndDropsDuplicates) {
  auto paths = ResolveMask(Mask({"description", "title", "description"}), {"title", "description"}, google::protobuf::Api());
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_THAT(*paths, ElementsAre("description", "title"));
}

TEST(ResolveMask, UnknownPathIsNamed) {
  auto paths = ResolveMask(Mask({"title", "code"}), {"title", "description"}, google::protobuf::Api());
  ASSERT_FALSE(paths.ok());
  EXPECT_THAT(ExpectInvalid(paths.status(), "update_mask"), HasSubstr("\"code\""));
  EXPECT_THAT(std::string(paths.status().message()), HasSubstr("code"));
}

TEST(ResolveMask, NestedPathMustBeExact) {
  auto paths = ResolveMask(Mask({"title.text"}), {"title"}, google::protobuf::Api());
  ASSERT_FALSE(paths.ok());
  ExpectInvalid(paths.status(), "update_mask");
}

TEST(ResolveMask, WildcardIsRefused) {
  auto paths = ResolveMask(Mask({"*"}), {"title"}, google::protobuf::Api());
  ASSERT_FALSE(paths.ok());
  ExpectInvalid(paths.status(), "update_mask");
}

// --- Etags ----------------------------------------------------------------------------------

TEST(Etag, RoundTrips) {
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{42}, INT64_MAX}) {
    auto parsed = ParseEtag(Etag(v), "etag");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    ASSERT_TRUE(parsed->has_value());
    EXPECT_EQ(**parsed, v);
  }
  EXPECT_EQ(Etag(7), "\"7\"");
}

TEST(Etag, EmptyMeansNoCheck) {
  auto parsed = ParseEtag("", "etag");
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->has_value());
}

TEST(Etag, RejectsMalformed) {
  for (const char* bad : {"7", "\"\"", "\"", "\"abc\"", "W/\"7\"", "\"-1\"", "\"+1\"", "\" 1\"",
                          "\"99999999999999999999\"", "\"7\"x"}) {
    auto parsed = ParseEtag(bad, "certification.etag");
    ASSERT_FALSE(parsed.ok()) << bad;
    ExpectInvalid(parsed.status(), "certification.etag");
  }
}

// --- Filters --------------------------------------------------------------------------------

const std::vector<std::string> kAllowed = {"kind=", "kind!=", "title:", "state=", "owner.id="};

TEST(ParseFilter, EmptyIsNoTerm) {
  for (const char* empty : {"", "   ", "\t\n"}) {
    auto terms = ParseFilter(empty, kAllowed);
    ASSERT_TRUE(terms.ok()) << terms.status();
    EXPECT_TRUE(terms->empty());
  }
}

TEST(ParseFilter, ParsesConjunction) {
  auto terms = ParseFilter(R"(  kind=RNCP AND   title : "data \"science\" \\ AND x"  AND owner.id=u-1.2 )",
                      kAllowed);
  ASSERT_TRUE(terms.ok()) << terms.status();
  ASSERT_EQ(terms->size(), 3u);
  EXPECT_EQ((*terms)[0].field, "kind");
  EXPECT_EQ((*terms)[0].op, "=");
  EXPECT_EQ((*terms)[0].value, "RNCP");
  EXPECT_EQ((*terms)[1].field, "title");
  EXPECT_EQ((*terms)[1].op, ":");
  EXPECT_EQ((*terms)[1].value, R"(data "science" \ AND x)");
  EXPECT_EQ((*terms)[2].field, "owner.id");
  EXPECT_EQ((*terms)[2].op, "=");
  EXPECT_EQ((*terms)[2].value, "u-1.2");
}

TEST(ParseFilter, NotEqualsAndLiterals) {
  auto terms = ParseFilter("kind != true AND state = -12.5", kAllowed);
  ASSERT_TRUE(terms.ok()) << terms.status();
  ASSERT_EQ(terms->size(), 2u);
  EXPECT_EQ((*terms)[0].op, "!=");
  EXPECT_EQ((*terms)[0].value, "true");
  EXPECT_EQ((*terms)[1].value, "-12.5");
}

// An empty value would drop the condition at most stores: refused rather than ignored.
TEST(ParseFilter, QuotedEmptyValueIsRefused) {
  auto terms = ParseFilter(R"(kind = RNCP AND title:"")", kAllowed);
  ASSERT_FALSE(terms.ok());
  EXPECT_EQ(terms.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(terms.status().message()), HasSubstr("title :"));
}

// One value per condition, unless the store ANDs the terms: a second one would replace the first.
TEST(ParseFilter, ConditionGivenTwiceIsRefusedUnlessAnded) {
  auto twice = ParseFilter("kind = CQP AND kind = RS", kAllowed);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(twice.status().message()), HasSubstr("kind ="));
  auto anded = ParseFilter("kind = CQP AND kind = RS", kAllowed, RepeatedFields::kAnded);
  ASSERT_TRUE(anded.ok()) << anded.status();
  EXPECT_EQ(anded->size(), 2u);
  // Two operators on one field are two conditions.
  EXPECT_TRUE(ParseFilter("kind = CQP AND kind != RS", kAllowed).ok());
}

TEST(ParseFilter, ComparisonOperatorsParseWhenAllowed) {
  auto terms = ParseFilter("opened >= 2024-01-01 AND opened < 2025-01-01", {"opened>=", "opened<"});
  ASSERT_TRUE(terms.ok()) << terms.status();
  ASSERT_EQ(terms->size(), 2u);
  EXPECT_EQ((*terms)[0].op, ">=");
  EXPECT_EQ((*terms)[0].value, "2024-01-01");
  EXPECT_EQ((*terms)[1].op, "<");
  // Syntactically fine, but not an allowed comparison of this list.
  auto refused = ParseFilter("opened > 2024-01-01", {"opened>="});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseFilter, RejectsSyntaxErrors) {
  for (const char* bad : {
           "kind",                     // no operator
           "kind =",                   // no value
           "kind = RNCP AND",          // dangling AND
           "AND kind = RNCP",          // leading AND
           "kind = RNCP and state=x",  // lower-case and
           "kind = RNCP OR state=x",   // OR unsupported
           "kind = RNCP state = x",    // implicit AND unsupported
           "NOT kind = RNCP",          // NOT unsupported
           "(kind = RNCP)",            // parentheses unsupported
           "kind => 3",                // unsupported operator
           "kind <> 3",                // unsupported operator
           "kind == 3",                // unsupported operator
           "kind = \"open",            // unterminated string
           "kind = \"a\\nb\"",         // unsupported escape
           "kind = \"x\\",             // escape at end
           "kind = a*b",               // character outside barewords
           "kind = RNCP ANDstate = x", // AND glued to next term
           "1kind = x",                // field must start with a letter
           "kind. = x",                // empty path segment
       }) {
    auto terms = ParseFilter(bad, kAllowed);
    ASSERT_FALSE(terms.ok()) << bad;
    EXPECT_THAT(ExpectInvalid(terms.status(), "filter"), HasSubstr("column")) << bad;
  }
}

TEST(ParseFilter, ErrorSaysWhere) {
  auto terms = ParseFilter("kind = RNCP OR state = x", kAllowed);
  ASSERT_FALSE(terms.ok());
  EXPECT_THAT(ExpectInvalid(terms.status(), "filter"), HasSubstr("column 13"));
}

TEST(ParseFilter, RejectsTermsNotAllowed) {
  for (const char* bad : {"title = x", "code = x", "kind : x", "owner = x"}) {
    auto terms = ParseFilter(bad, kAllowed);
    ASSERT_FALSE(terms.ok()) << bad;
    ExpectInvalid(terms.status(), "filter");
  }
  auto terms = ParseFilter("kind = a AND secret_field = b", kAllowed);
  ASSERT_FALSE(terms.ok());
  EXPECT_THAT(ExpectInvalid(terms.status(), "filter"), HasSubstr("secret_field"));
}

// --- Request ids ----------------------------------------------------------------------------

TEST(CheckRequestId, AcceptsEmptyAndUuids) {
  EXPECT_TRUE(CheckRequestId("").ok());
  EXPECT_TRUE(CheckRequestId("123e4567-e89b-12d3-a456-426614174000").ok());
  EXPECT_TRUE(CheckRequestId("job:42.retry_1").ok());
  EXPECT_TRUE(CheckRequestId(std::string(64, 'a')).ok());
}

TEST(CheckRequestId, RejectsBadIds) {
  ExpectInvalid(CheckRequestId(std::string(65, 'a')), "request_id");
  ExpectInvalid(CheckRequestId("has space"), "request_id");
  ExpectInvalid(CheckRequestId("semi;colon"), "request_id");
  ExpectInvalid(CheckRequestId("slash/id", "batch.request_id"), "batch.request_id");
}

// One month parser for the gateway and cep-svc: what one accepts the other does.
TEST(ParseYearMonthTest, OnlyFourDigitsDashTwoDigits) {
  ASSERT_TRUE(ParseYearMonth("2017-03").has_value());
  EXPECT_EQ(*ParseYearMonth("2017-03"), absl::CivilMonth(2017, 3));
  EXPECT_EQ(*ParseYearMonth("1900-12"), absl::CivilMonth(1900, 12));
  for (const char* bad : {"", "2017-3", "2017-003", "2017/03", "+017-03", " 2017-03", "2017-+3", "2017- 3",
                          "2017-00", "2017-13", "1899-12", "20170-3", "abcd-ef", "2017-03 "}) {
    EXPECT_FALSE(ParseYearMonth(bad).has_value()) << "\"" << bad << "\"";
  }
}

}  // namespace
}  // namespace parcours::aip
