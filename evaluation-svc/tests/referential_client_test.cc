// The referential client against a real referential-svc (in-process, SQLite, real gRPC channel):
// mapping of errors, deadline, and what is cached for how long.
#include "evaluation-svc/src/referential_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/rpc/error_details.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "parcours/referential/v1/referential.grpc.pb.h"
#include "platform/clock.h"
#include "platform/config.h"
#include "platform/db/db.h"
#include "platform/server.h"
#include "platform/testing/mariadb.h"
#include "platform/testing/national_context.h"
#include "referential-svc/src/app.h"

namespace parcours::evaluation {
namespace {

const char kSeedFile[] = PARCOURS_SOURCE_DIR "/referential-svc/data/cqp-technicien-maintenance-alimentaire.json";
const char kSeedVersion[] = "certifications/CQP-TMSA/versions/1";
const char kPreconditionFailureUrl[] = "type.googleapis.com/google.rpc.PreconditionFailure";

// Violation types of the PreconditionFailure payload of a status.
std::set<std::string> PreconditionTypes(const absl::Status& status) {
  std::set<std::string> types;
  auto payload = status.GetPayload(kPreconditionFailureUrl);
  if (!payload) return types;
  google::rpc::PreconditionFailure failure;
  if (!failure.ParseFromString(std::string(*payload))) return types;
  for (const auto& v : failure.violations()) types.insert(v.type());
  return types;
}

class ReferentialClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dsn = parcours::testing::FreshSqliteDatabase();
    {
      auto db = db::Open(dsn);
      ASSERT_TRUE(db.ok()) << db.status();
      auto migrated = referential::Migrate(**db);
      ASSERT_TRUE(migrated.ok()) << migrated.status();
    }
    auto app = referential::App::Create(Config::FromMap({{"database.dsn", dsn}}));
    ASSERT_TRUE(app.ok()) << app.status();
    app_ = *std::move(app);
    absl::Status loaded = app_->LoadDocument(kSeedFile);
    ASSERT_TRUE(loaded.ok()) << loaded;

    ServerOptions options;
    options.service_name = "referential-svc";
    options.metrics_listen = "";
    runner_ = std::make_unique<ServerRunner>(options);
    for (grpc::Service* s : app_->services()) runner_->AddService(s);
    absl::Status started = runner_->Start();
    ASSERT_TRUE(started.ok()) << started;
    target_ = absl::StrCat("127.0.0.1:", runner_->port());
    stub_ = ref::ReferentialService::NewStub(
        grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (runner_) runner_->Shutdown();
  }

  std::unique_ptr<ReferentialClient> NewClient(ReferentialClientOptions options = {}) {
    return NewGrpcReferentialClient(grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()),
                                    clock_, options);
  }

  // A DRAFT copy of the seed version (a valid tree, so it can be published).
  ref::Version MustCreateDraftCopy() {
    ref::CreateVersionRequest req;
    req.set_parent("certifications/CQP-TMSA");
    req.set_source_version(kSeedVersion);
    ref::Version out;
    testing::NationalContext ctx;
    grpc::Status s = stub_->CreateVersion(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  ref::Version MustPublish(const ref::Version& draft) {
    ref::PublishVersionRequest req;
    req.set_name(draft.name());
    req.set_etag(draft.etag());
    ref::Version out;
    testing::NationalContext ctx;
    grpc::Status s = stub_->PublishVersion(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(out.state(), ref::VERSION_STATE_PUBLISHED);
    return out;
  }

  void MustRetire(const std::string& name) {
    ref::RetireVersionRequest req;
    req.set_name(name);
    ref::Version out;
    testing::NationalContext ctx;
    grpc::Status s = stub_->RetireVersion(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(out.state(), ref::VERSION_STATE_RETIRED);
  }

  FakeClock clock_{absl::FromUnixSeconds(1700000000)};
  std::unique_ptr<referential::App> app_;
  std::unique_ptr<ServerRunner> runner_;
  std::string target_;
  std::unique_ptr<ref::ReferentialService::Stub> stub_;
};

TEST_F(ReferentialClientTest, ReturnsTheSeedVersionThenServesItFromCacheWhenTheServerIsDown) {
  ReferentialClientOptions options;
  options.deadline = absl::Milliseconds(300);
  auto client = NewClient(options);

  auto first = client->GetVersion(kSeedVersion);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)->name(), kSeedVersion);
  EXPECT_EQ((*first)->state(), ref::VERSION_STATE_PUBLISHED);
  ASSERT_EQ((*first)->blocs_size(), 5);  // FULL view: the whole tree
  EXPECT_EQ((*first)->scales_size(), 2);

  auto second = client->GetVersion(kSeedVersion);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->get(), first->get());  // the same object: no second fetch

  runner_->Shutdown();

  auto cached = client->GetVersion(kSeedVersion);
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(cached->get(), first->get());
  EXPECT_EQ((*cached)->blocs_size(), 5);

  const absl::Time start = absl::Now();
  auto uncached = client->GetVersion("certifications/CQP-TMSA/versions/2");
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_EQ(uncached.status().code(), absl::StatusCode::kUnavailable) << uncached.status();
  EXPECT_EQ(uncached.status().message(), "referential-svc unavailable");
  EXPECT_LT(elapsed, absl::Seconds(2));
}

TEST_F(ReferentialClientTest, AServerThatNeverAnswersIsUnavailableAfterTheDeadline) {
  // A TCP listener that never speaks HTTP/2: connections complete in the backlog and hang.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  ReferentialClientOptions options;
  options.deadline = absl::Milliseconds(300);
  auto client = NewGrpcReferentialClient(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()),
      clock_, options);
  const absl::Time start = absl::Now();
  auto version = client->GetVersion(kSeedVersion);
  const absl::Duration elapsed = absl::Now() - start;
  ::close(fd);
  EXPECT_EQ(version.status().code(), absl::StatusCode::kUnavailable) << version.status();
  EXPECT_EQ(version.status().message(), "referential-svc unavailable");
  EXPECT_GE(elapsed, absl::Milliseconds(250));  // it did wait for the deadline...
  EXPECT_LT(elapsed, absl::Seconds(2));         // ...and not much longer
}

TEST_F(ReferentialClientTest, UnknownOrMalformedVersionIsFailedPreconditionVersionUnknown) {
  auto client = NewClient();
  for (const std::string name : {"certifications/CQP-TMSA/versions/9",   // NOT_FOUND
                                 "certifications/RNCP99999/versions/1",  // NOT_FOUND
                                 "not-a-version-name"}) {                // INVALID_ARGUMENT
    auto version = client->GetVersion(name);
    EXPECT_EQ(version.status().code(), absl::StatusCode::kFailedPrecondition) << name << ": " << version.status();
    EXPECT_EQ(PreconditionTypes(version.status()), std::set<std::string>{"REFERENTIAL_VERSION_UNKNOWN"})
        << name << ": " << version.status();
  }
  // Errors are not cached: once it exists, the same name resolves.
  ref::Version draft = MustCreateDraftCopy();
  ASSERT_EQ(draft.name(), "certifications/CQP-TMSA/versions/2");
  MustPublish(draft);
  auto now_known = client->GetVersion("certifications/CQP-TMSA/versions/2");
  ASSERT_TRUE(now_known.ok()) << now_known.status();
  EXPECT_EQ((*now_known)->state(), ref::VERSION_STATE_PUBLISHED);
}

TEST_F(ReferentialClientTest, ADraftIsReturnedButNeverCached) {
  auto client = NewClient();
  ref::Version draft = MustCreateDraftCopy();
  ASSERT_EQ(draft.state(), ref::VERSION_STATE_DRAFT);

  auto as_draft = client->GetVersion(draft.name());
  ASSERT_TRUE(as_draft.ok()) << as_draft.status();
  EXPECT_EQ((*as_draft)->state(), ref::VERSION_STATE_DRAFT);
  EXPECT_EQ((*as_draft)->blocs_size(), 5);
  auto again = client->GetVersion(draft.name());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE(again->get(), as_draft->get());  // fetched again

  MustPublish(draft);
  // No clock advance: a cached DRAFT would still be served here.
  auto published = client->GetVersion(draft.name());
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ((*published)->state(), ref::VERSION_STATE_PUBLISHED);
}

TEST_F(ReferentialClientTest, APublishedEntryIsReReadAfterTheStateTtlAndRetiredIsFinal) {
  ReferentialClientOptions options;
  options.state_ttl = absl::Seconds(10);
  options.deadline = absl::Milliseconds(300);
  auto client = NewClient(options);

  auto published = client->GetVersion(kSeedVersion);
  ASSERT_TRUE(published.ok()) << published.status();
  ASSERT_EQ((*published)->state(), ref::VERSION_STATE_PUBLISHED);

  MustRetire(kSeedVersion);

  clock_.Advance(absl::Seconds(9));
  auto within_ttl = client->GetVersion(kSeedVersion);
  ASSERT_TRUE(within_ttl.ok()) << within_ttl.status();
  EXPECT_EQ((*within_ttl)->state(), ref::VERSION_STATE_PUBLISHED);  // still trusted from cache
  EXPECT_EQ(within_ttl->get(), published->get());

  clock_.Advance(absl::Seconds(2));  // 11 s > state_ttl
  auto after_ttl = client->GetVersion(kSeedVersion);
  ASSERT_TRUE(after_ttl.ok()) << after_ttl.status();
  EXPECT_EQ((*after_ttl)->state(), ref::VERSION_STATE_RETIRED);
  EXPECT_EQ((*after_ttl)->blocs_size(), 5);

  // RETIRED is final: served from cache however old, even with referential-svc down.
  runner_->Shutdown();
  clock_.Advance(absl::Hours(24));
  auto retired = client->GetVersion(kSeedVersion);
  ASSERT_TRUE(retired.ok()) << retired.status();
  EXPECT_EQ(retired->get(), after_ttl->get());
  EXPECT_EQ((*retired)->state(), ref::VERSION_STATE_RETIRED);
}

TEST_F(ReferentialClientTest, AStalePublishedEntryIsNotServedWhenItCannotBeReRead) {
  ReferentialClientOptions options;
  options.state_ttl = absl::Seconds(10);
  options.deadline = absl::Milliseconds(300);
  auto client = NewClient(options);
  ASSERT_TRUE(client->GetVersion(kSeedVersion).ok());

  runner_->Shutdown();
  ASSERT_TRUE(client->GetVersion(kSeedVersion).ok());  // fresh enough
  clock_.Advance(absl::Seconds(11));
  // It might have been retired meanwhile: the client does not guess.
  EXPECT_EQ(client->GetVersion(kSeedVersion).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ReferentialClientTest, TheCacheHoldsAtMostMaxEntries) {
  MustPublish(MustCreateDraftCopy());  // certifications/CQP-TMSA/versions/2
  const std::string v2 = "certifications/CQP-TMSA/versions/2";

  ReferentialClientOptions options;
  options.max_entries = 1;
  options.deadline = absl::Milliseconds(300);
  auto client = NewClient(options);
  ASSERT_TRUE(client->GetVersion(kSeedVersion).ok());
  auto second = client->GetVersion(v2);  // evicts versions/1
  ASSERT_TRUE(second.ok()) << second.status();

  runner_->Shutdown();
  auto cached = client->GetVersion(v2);
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(cached->get(), second->get());
  EXPECT_EQ(client->GetVersion(kSeedVersion).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ReferentialClientTest, CertificationIsReadCachedForTheStateTtlAndUnknownIsFailedPrecondition) {
  ReferentialClientOptions options;
  options.state_ttl = absl::Seconds(10);
  options.deadline = absl::Milliseconds(300);
  auto client = NewClient(options);
  const std::string name = "certifications/CQP-TMSA";

  auto certification = client->GetCertification(name);
  ASSERT_TRUE(certification.ok()) << certification.status();
  EXPECT_EQ(certification->title(), "Technicien de maintenance du secteur alimentaire");
  EXPECT_EQ(certification->kind(), ref::CERTIFICATION_KIND_CQP);

  for (const std::string unknown : {"certifications/RNCP99999", "not-a-certification-name"}) {
    auto missing = client->GetCertification(unknown);
    EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition) << unknown << ": " << missing.status();
    EXPECT_EQ(PreconditionTypes(missing.status()), std::set<std::string>{"REFERENTIAL_CERTIFICATION_UNKNOWN"})
        << unknown << ": " << missing.status();
  }

  ref::UpdateCertificationRequest update;
  *update.mutable_certification() = *certification;
  update.mutable_certification()->set_title("Titre révisé");
  update.mutable_update_mask()->add_paths("title");
  {
    ref::Certification out;
    testing::NationalContext ctx;
    grpc::Status s = stub_->UpdateCertification(&ctx, update, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  clock_.Advance(absl::Seconds(9));
  auto cached = client->GetCertification(name);
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(cached->title(), "Technicien de maintenance du secteur alimentaire");
  clock_.Advance(absl::Seconds(2));
  auto reread = client->GetCertification(name);
  ASSERT_TRUE(reread.ok()) << reread.status();
  EXPECT_EQ(reread->title(), "Titre révisé");

  runner_->Shutdown();
  auto while_down = client->GetCertification(name);
  ASSERT_TRUE(while_down.ok()) << while_down.status();
  EXPECT_EQ(while_down->title(), "Titre révisé");
  clock_.Advance(absl::Seconds(11));
  auto stale = client->GetCertification(name);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kUnavailable) << stale.status();
  EXPECT_EQ(stale.status().message(), "referential-svc unavailable");
}

}  // namespace
}  // namespace parcours::evaluation
