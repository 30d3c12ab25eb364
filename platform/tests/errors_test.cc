#include "platform/errors.h"

#include <string>

#include "absl/strings/cord.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace parcours {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kBadRequestUrl[] = "type.googleapis.com/google.rpc.BadRequest";
constexpr char kPreconditionUrl[] = "type.googleapis.com/google.rpc.PreconditionFailure";
constexpr char kResourceInfoUrl[] = "type.googleapis.com/google.rpc.ResourceInfo";

template <typename Message>
Message PayloadOf(const absl::Status& status, const char* url) {
  Message m;
  auto payload = status.GetPayload(url);
  EXPECT_TRUE(payload.has_value()) << "no payload " << url << " in " << status;
  if (payload) {
    EXPECT_TRUE(m.ParseFromString(std::string(*payload)));
  }
  return m;
}

// Decodes grpc::Status binary details as a client would.
google::rpc::Status DecodeDetails(const grpc::Status& status) {
  google::rpc::Status proto;
  EXPECT_TRUE(proto.ParseFromString(status.error_details()));
  return proto;
}

TEST(InvalidArgument, NamesEveryFieldInMessageAndDetails) {
  absl::Status s = InvalidArgument({{"certification.code", "must not be empty"},
                                    {"page_size", "must not be negative"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "invalid certification.code: must not be empty; invalid page_size: must not be negative");
  auto br = PayloadOf<google::rpc::BadRequest>(s, kBadRequestUrl);
  ASSERT_EQ(br.field_violations_size(), 2);
  EXPECT_EQ(br.field_violations(0).field(), "certification.code");
  EXPECT_EQ(br.field_violations(0).description(), "must not be empty");
  EXPECT_EQ(br.field_violations(1).field(), "page_size");
}

TEST(InvalidArgument, SingleField) {
  absl::Status s = InvalidArgument("name", "is required");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "invalid name: is required");
  auto br = PayloadOf<google::rpc::BadRequest>(s, kBadRequestUrl);
  ASSERT_EQ(br.field_violations_size(), 1);
  EXPECT_EQ(br.field_violations(0).field(), "name");
}

TEST(FailedPrecondition, ListsEveryViolation) {
  absl::Status s = FailedPrecondition(
      {{"VERSION_NOT_DRAFT", "certifications/X/versions/1", "version 1 is published"},
       {"HAS_CHILDREN", "certifications/X", "certification has blocks"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("version 1 is published"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("certification has blocks"));
  auto pf = PayloadOf<google::rpc::PreconditionFailure>(s, kPreconditionUrl);
  ASSERT_EQ(pf.violations_size(), 2);
  EXPECT_EQ(pf.violations(0).type(), "VERSION_NOT_DRAFT");
  EXPECT_EQ(pf.violations(0).subject(), "certifications/X/versions/1");
  EXPECT_EQ(pf.violations(1).type(), "HAS_CHILDREN");
}

TEST(ResourceErrors, MessagesAndResourceInfo) {
  absl::Status nf = NotFound("certifications/X");
  EXPECT_EQ(nf.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(nf.message(), "certifications/X not found");
  auto info = PayloadOf<google::rpc::ResourceInfo>(nf, kResourceInfoUrl);
  EXPECT_EQ(info.resource_name(), "certifications/X");
  EXPECT_EQ(info.resource_type(), "certifications");

  absl::Status ae = AlreadyExists("certifications/X/versions/2");
  EXPECT_EQ(ae.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ae.message(), "certifications/X/versions/2 already exists");
  EXPECT_EQ(PayloadOf<google::rpc::ResourceInfo>(ae, kResourceInfoUrl).resource_type(), "versions");

  absl::Status em = EtagMismatch("certifications/X");
  EXPECT_EQ(em.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(em.message(), "etag mismatch for certifications/X: it changed since it was read");
  EXPECT_EQ(PayloadOf<google::rpc::ResourceInfo>(em, kResourceInfoUrl).resource_name(),
            "certifications/X");
}

TEST(Violations, EmptyIsOkElseInvalidArgument) {
  Violations v;
  EXPECT_TRUE(v.empty());
  EXPECT_TRUE(v.ToStatus().ok());
  v.Add("a", "bad");
  v.Add("b.c", "worse");
  absl::Status s = v.ToStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  auto br = PayloadOf<google::rpc::BadRequest>(s, kBadRequestUrl);
  ASSERT_EQ(br.field_violations_size(), 2);
  EXPECT_EQ(br.field_violations(0).field(), "a");
  EXPECT_EQ(br.field_violations(1).field(), "b.c");
}

TEST(ToGrpcStatus, OkIsOk) { EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok()); }

TEST(ToGrpcStatus, CarriesBadRequestDetails) {
  grpc::Status g = ToGrpcStatus(InvalidArgument({{"certification.code", "must not be empty"},
                                                 {"page_size", "must not be negative"}}));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(g.error_message(), HasSubstr("certification.code"));
  google::rpc::Status proto = DecodeDetails(g);
  EXPECT_EQ(proto.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(proto.message(), g.error_message());
  ASSERT_EQ(proto.details_size(), 1);
  EXPECT_EQ(proto.details(0).type_url(), kBadRequestUrl);
  google::rpc::BadRequest br;
  ASSERT_TRUE(proto.details(0).UnpackTo(&br));
  ASSERT_EQ(br.field_violations_size(), 2);
  EXPECT_EQ(br.field_violations(0).field(), "certification.code");
  EXPECT_EQ(br.field_violations(1).field(), "page_size");
}

TEST(ToGrpcStatus, KeepsCodesAndDomainMessages) {
  grpc::Status g = ToGrpcStatus(NotFound("certifications/X"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(g.error_message(), "certifications/X not found");
  google::rpc::ResourceInfo info;
  google::rpc::Status proto = DecodeDetails(g);
  ASSERT_EQ(proto.details_size(), 1);
  ASSERT_TRUE(proto.details(0).UnpackTo(&info));
  EXPECT_EQ(info.resource_name(), "certifications/X");

  EXPECT_EQ(ToGrpcStatus(EtagMismatch("x/y")).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("db down, retry")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(absl::PermissionDeniedError("no")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ToGrpcStatus(absl::DeadlineExceededError("slow")).error_message(), "slow");
}

TEST(ToGrpcStatus, NeverLeaksInternalMessages) {
  for (absl::StatusCode code :
       {absl::StatusCode::kInternal, absl::StatusCode::kUnknown, absl::StatusCode::kDataLoss}) {
    absl::Status s(code, "SELECT * FROM certifications WHERE password='hunter2' failed");
    s.SetPayload("type.googleapis.com/google.rpc.DebugInfo", absl::Cord("stack trace here"));
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), static_cast<int>(code));
    EXPECT_EQ(g.error_message(), "internal error");
    EXPECT_THAT(g.error_details(), Not(HasSubstr("SELECT")));
    EXPECT_THAT(g.error_details(), Not(HasSubstr("stack trace")));
    EXPECT_TRUE(g.error_details().empty());
  }
}

TEST(FromGrpcStatus, RoundTripsPayloads) {
  absl::Status original = InvalidArgument("page_token", "is not valid");
  absl::Status back = FromGrpcStatus(ToGrpcStatus(original));
  EXPECT_EQ(back.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(back.message(), original.message());
  auto br = PayloadOf<google::rpc::BadRequest>(back, kBadRequestUrl);
  ASSERT_EQ(br.field_violations_size(), 1);
  EXPECT_EQ(br.field_violations(0).field(), "page_token");

  absl::Status pf = FromGrpcStatus(ToGrpcStatus(FailedPrecondition("T", "s", "d")));
  EXPECT_EQ(pf.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(PayloadOf<google::rpc::PreconditionFailure>(pf, kPreconditionUrl).violations(0).type(),
            "T");
}

TEST(FromGrpcStatus, PlainAndMalformedDetails) {
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  absl::Status plain = FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down"));
  EXPECT_EQ(plain.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(plain.message(), "down");
  absl::Status junk =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "gone", "\xff\xff\xff not proto"));
  EXPECT_EQ(junk.code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(junk.GetPayload(kBadRequestUrl).has_value());
}

}  // namespace
}  // namespace parcours

namespace parcours {
namespace {

TEST(StorageErrorTest, SqlTextNeverReachesTheClient) {
  const char* sql = "mysql: Duplicate entry 'X' for key 'PRIMARY' in INSERT INTO certification_certifiers";
  for (auto [code, expected] : std::vector<std::pair<absl::StatusCode, grpc::StatusCode>>{
           {absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
           {absl::StatusCode::kAborted, grpc::StatusCode::ABORTED},
           {absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
           {absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL}}) {
    absl::Status status = StorageError(code, sql);
    EXPECT_TRUE(IsStorageError(status));
    grpc::Status wire = ToGrpcStatus(status);
    EXPECT_EQ(wire.error_code(), expected);
    EXPECT_EQ(wire.error_message().find("INSERT"), std::string::npos) << wire.error_message();
    EXPECT_EQ(wire.error_message().find("Duplicate"), std::string::npos) << wire.error_message();
    EXPECT_TRUE(wire.error_details().empty());
  }
  // A commit whose outcome is unknown says so (and never "retry later", which would apply it twice).
  grpc::Status unknown = ToGrpcStatus(StorageError(absl::StatusCode::kUnknown, sql));
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_NE(unknown.error_message().find("may have been applied"), std::string::npos) << unknown.error_message();
  EXPECT_EQ(unknown.error_message().find("Duplicate"), std::string::npos) << unknown.error_message();
  // A domain ALREADY_EXISTS keeps its message.
  EXPECT_FALSE(IsStorageError(AlreadyExists("certifications/X")));
  EXPECT_NE(ToGrpcStatus(AlreadyExists("certifications/X")).error_message().find("certifications/X"),
            std::string::npos);
}

}  // namespace
}  // namespace parcours
