// referential-svc over a real gRPC channel, on SQLite and on MariaDB: what an integrator calling
// the API would check.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "parcours/referential/v1/referential.grpc.pb.h"
#include "platform/config.h"
#include "platform/db/db.h"
#include "platform/server.h"
#include "platform/testing/mariadb.h"
#include "platform/testing/national_context.h"
#include "platform/testing/status_details.h"
#include "referential-svc/src/app.h"
#include "referential-svc/src/fc_export.h"

namespace parcours::referential {
namespace {

using ::parcours::testing::BadFields;
using ::parcours::testing::NationalContext;
using ::parcours::testing::PreconditionTypes;
namespace pb = ::parcours::referential::v1;

const char kSeedFile[] = PARCOURS_SOURCE_DIR "/referential-svc/data/cqp-technicien-maintenance-alimentaire.json";



pb::Certification MakeCertification(const std::string& code, pb::CertificationKind kind,
                                    const std::string& title) {
  pb::Certification c;
  c.set_code(code);
  c.set_kind(kind);
  c.set_title(title);
  c.set_level(kind == pb::CERTIFICATION_KIND_RNCP ? pb::QUALIFICATION_LEVEL_NIV4 : pb::QUALIFICATION_LEVEL_NONE);
  c.set_active(true);
  c.add_certifiers()->set_name("CPNE Alimentaire");
  return c;
}

// A version that breaks several publication rules at once.
pb::Version BrokenVersion() {
  pb::Version v;
  pb::Bloc* b1 = v.add_blocs();
  b1->set_code("BC1");
  b1->set_title("Organiser");  // no compétence
  pb::Bloc* b2 = v.add_blocs();
  b2->set_code("BC1");  // duplicate code
  b2->set_title("Réaliser");
  pb::Competence* c = b2->add_competences();
  c->set_code("C1.1");
  c->set_text("Examiner les informations");
  v.mutable_validation_rules()->set_bloc_threshold_percent(70);
  v.mutable_validation_rules()->mutable_jury()->set_min_members(1);  // too small
  v.mutable_validation_rules()->mutable_jury()->set_min_qualified_members(1);
  // no scales at all
  return v;
}

class ReferentialServiceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string dsn;
    if (GetParam() == "mysql") {
      auto fresh = testing::FreshMysqlDatabase();
      ASSERT_TRUE(fresh.ok()) << fresh.status();
      dsn = *fresh;
    } else {
      dsn = testing::FreshSqliteDatabase();
    }
    Config config = Config::FromMap({{"database.dsn", dsn}});
    {
      auto db = db::Open(dsn);
      ASSERT_TRUE(db.ok()) << db.status();
      ASSERT_TRUE(Migrate(**db).ok());
    }
    auto app = App::Create(config);
    ASSERT_TRUE(app.ok()) << app.status();
    app_ = *std::move(app);
    ServerOptions options;
    options.service_name = "referential-svc";
    options.metrics_listen = "";
    runner_ = std::make_unique<ServerRunner>(options);
    for (grpc::Service* s : app_->services()) runner_->AddService(s);
    ASSERT_TRUE(runner_->Start().ok());
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", runner_->port()),
                                       grpc::InsecureChannelCredentials());
    stub_ = pb::ReferentialService::NewStub(channel);
  }

  void TearDown() override {
    if (runner_) runner_->Shutdown();
  }

  grpc::Status Create(const pb::Certification& c, pb::Certification* out, const std::string& request_id = "") {
    pb::CreateCertificationRequest req;
    *req.mutable_certification() = c;
    req.set_request_id(request_id);
    NationalContext ctx;
    return stub_->CreateCertification(&ctx, req, out);
  }

  pb::Certification MustCreate(const pb::Certification& c) {
    pb::Certification out;
    grpc::Status s = Create(c, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  int CountCertifications() {
    int total = 0;
    std::string token;
    do {
      pb::ListCertificationsRequest req;
      req.set_page_size(100);
      req.set_page_token(token);
      pb::ListCertificationsResponse resp;
      NationalContext ctx;
      grpc::Status s = stub_->ListCertifications(&ctx, req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) return -1;
      total += resp.certifications_size();
      token = resp.next_page_token();
    } while (!token.empty());
    return total;
  }

  std::vector<std::string> ListCodes(const std::string& filter, int page_size, int* pages = nullptr) {
    std::vector<std::string> codes;
    std::string token;
    int n = 0;
    do {
      pb::ListCertificationsRequest req;
      req.set_page_size(page_size);
      req.set_filter(filter);
      req.set_page_token(token);
      pb::ListCertificationsResponse resp;
      NationalContext ctx;
      grpc::Status s = stub_->ListCertifications(&ctx, req, &resp);
      EXPECT_TRUE(s.ok()) << filter << ": " << s.error_message();
      if (!s.ok()) break;
      for (const auto& c : resp.certifications()) codes.push_back(c.code());
      token = resp.next_page_token();
      ++n;
    } while (!token.empty() && n < 100);
    if (pages) *pages = n;
    return codes;
  }

  pb::Version MustCreateVersion(const std::string& code, const pb::Version& v) {
    pb::CreateVersionRequest req;
    req.set_parent(absl::StrCat("certifications/", code));
    *req.mutable_version() = v;
    pb::Version out;
    NationalContext ctx;
    grpc::Status s = stub_->CreateVersion(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  std::unique_ptr<App> app_;
  std::unique_ptr<ServerRunner> runner_;
  std::unique_ptr<pb::ReferentialService::Stub> stub_;
};

TEST_P(ReferentialServiceTest, CreateGetListFilterAndPaginateToTheEnd) {
  MustCreate(MakeCertification("RNCP40344", pb::CERTIFICATION_KIND_RNCP, "Auxiliaire spécialisé vétérinaire"));
  MustCreate(MakeCertification("CQP-TMSA", pb::CERTIFICATION_KIND_CQP, "Technicien de maintenance du secteur alimentaire"));
  MustCreate(MakeCertification("CQP-CL", pb::CERTIFICATION_KIND_CQP, "Conducteur de ligne"));
  MustCreate(MakeCertification("RS5000", pb::CERTIFICATION_KIND_RS, "Habilitation électrique"));
  pb::Certification inactive = MakeCertification("RNCP1197", pb::CERTIFICATION_KIND_RNCP, "Technico-commercial");
  inactive.set_active(false);
  inactive.mutable_certifiers(0)->set_name("AUTRE");
  inactive.set_level(pb::QUALIFICATION_LEVEL_NIV6);
  MustCreate(inactive);

  pb::GetCertificationRequest get;
  get.set_name("certifications/CQP-TMSA");
  pb::Certification got;
  NationalContext ctx;
  ASSERT_TRUE(stub_->GetCertification(&ctx, get, &got).ok());
  EXPECT_EQ(got.title(), "Technicien de maintenance du secteur alimentaire");
  EXPECT_EQ(got.name(), "certifications/CQP-TMSA");
  EXPECT_FALSE(got.etag().empty());

  int pages = 0;
  EXPECT_EQ(ListCodes("", 2, &pages),
            (std::vector<std::string>{"CQP-CL", "CQP-TMSA", "RNCP1197", "RNCP40344", "RS5000"}));
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(ListCodes("kind = CQP", 1), (std::vector<std::string>{"CQP-CL", "CQP-TMSA"}));
  EXPECT_EQ(ListCodes("kind = RNCP AND active = true", 10), (std::vector<std::string>{"RNCP40344"}));
  EXPECT_EQ(ListCodes("active = false", 10), (std::vector<std::string>{"RNCP1197"}));
  EXPECT_EQ(ListCodes("level = NIV6", 10), (std::vector<std::string>{"RNCP1197"}));
  EXPECT_EQ(ListCodes("certifier = \"AUTRE\"", 10), (std::vector<std::string>{"RNCP1197"}));
  EXPECT_EQ(ListCodes("title : \"MAINTENANCE\"", 10), (std::vector<std::string>{"CQP-TMSA"}));
  EXPECT_EQ(ListCodes("title : \"ÉLECTRIQUE\"", 10), (std::vector<std::string>{"RS5000"}));

  // A condition given twice, or with an empty value, is refused: it used to replace the first
  // (CQP and RS listed the RS fiches) or to be dropped (every certifier).
  for (const char* filter : {"kind = CQP AND kind = RS", "certifier = \"\"", "title : \"\""}) {
    pb::ListCertificationsRequest req;
    req.set_filter(filter);
    pb::ListCertificationsResponse resp;
    NationalContext refused_ctx;
    grpc::Status s = stub_->ListCertifications(&refused_ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << filter;
  }
}

TEST_P(ReferentialServiceTest, PageTokenFromAnotherListOrTamperedIsRefused) {
  for (const char* code : {"CQP-A1", "CQP-A2", "CQP-A3"}) {
    MustCreate(MakeCertification(code, pb::CERTIFICATION_KIND_CQP, "Titre"));
  }
  pb::ListCertificationsRequest req;
  req.set_page_size(1);
  req.set_filter("kind = CQP");
  pb::ListCertificationsResponse resp;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->ListCertifications(&ctx, req, &resp).ok());
  }
  ASSERT_FALSE(resp.next_page_token().empty());
  // Same token, other filter.
  req.set_filter("kind = RNCP");
  req.set_page_token(resp.next_page_token());
  {
    NationalContext ctx;
    pb::ListCertificationsResponse other;
    grpc::Status s = stub_->ListCertifications(&ctx, req, &other);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(BadFields(s), std::vector<std::string>{"page_token"});
  }
  // Tampered token.
  std::string tampered = resp.next_page_token();
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  req.set_filter("kind = CQP");
  req.set_page_token(tampered);
  {
    NationalContext ctx;
    pb::ListCertificationsResponse other;
    grpc::Status s = stub_->ListCertifications(&ctx, req, &other);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

// AIP-134: without a mask, an update changes the fields the request sets and nothing else. It
// used to replace every updatable field: a title alone deactivated the certification and emptied
// its certifiers (no candidacy could then be opened on it).
TEST_P(ReferentialServiceTest, UpdateWithoutMaskChangesOnlyWhatTheRequestSets) {
  pb::Certification created = MustCreate(MakeCertification("CQP-Y", pb::CERTIFICATION_KIND_CQP, "Premier titre"));
  ASSERT_TRUE(created.active());
  ASSERT_EQ(created.certifiers_size(), 1);
  pb::UpdateCertificationRequest update;
  update.mutable_certification()->set_name(created.name());
  update.mutable_certification()->set_title("Titre seul");
  pb::Certification updated;
  {
    NationalContext ctx;
    grpc::Status s = stub_->UpdateCertification(&ctx, update, &updated);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(updated.title(), "Titre seul");
  EXPECT_TRUE(updated.active());
  EXPECT_EQ(updated.certifiers_size(), 1);
  EXPECT_EQ(updated.level(), created.level());
  // Clearing takes a mask naming the field.
  update.mutable_certification()->set_active(false);
  update.mutable_update_mask()->add_paths("active");
  {
    NationalContext ctx;
    grpc::Status s = stub_->UpdateCertification(&ctx, update, &updated);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_FALSE(updated.active());
  EXPECT_EQ(updated.title(), "Titre seul");
  // An identity field set to another value is refused, not silently ignored.
  pb::UpdateCertificationRequest rekind;
  rekind.mutable_certification()->set_name(created.name());
  rekind.mutable_certification()->set_kind(pb::CERTIFICATION_KIND_RS);
  pb::Certification out;
  NationalContext ctx;
  grpc::Status refused = stub_->UpdateCertification(&ctx, rekind, &out);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << refused.error_message();
}

TEST_P(ReferentialServiceTest, UpdateWithStaleEtagIsAbortedAndChangesNothing) {
  pb::Certification created = MustCreate(MakeCertification("CQP-X", pb::CERTIFICATION_KIND_CQP, "Premier titre"));
  pb::UpdateCertificationRequest update;
  *update.mutable_certification() = created;
  update.mutable_certification()->set_title("Deuxième titre");
  update.mutable_update_mask()->add_paths("title");
  pb::Certification updated;
  {
    NationalContext ctx;
    grpc::Status s = stub_->UpdateCertification(&ctx, update, &updated);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(updated.title(), "Deuxième titre");
  EXPECT_NE(updated.etag(), created.etag());

  // The first etag is stale now.
  update.mutable_certification()->set_title("Troisième titre");
  {
    NationalContext ctx;
    pb::Certification out;
    grpc::Status s = stub_->UpdateCertification(&ctx, update, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  }
  pb::GetCertificationRequest get;
  get.set_name("certifications/CQP-X");
  pb::Certification now;
  NationalContext ctx;
  ASSERT_TRUE(stub_->GetCertification(&ctx, get, &now).ok());
  EXPECT_EQ(now.title(), "Deuxième titre");

  // Immutable and unknown paths.
  for (const char* path : {"code", "kind", "no_such_field"}) {
    pb::UpdateCertificationRequest bad;
    *bad.mutable_certification() = now;
    bad.mutable_update_mask()->add_paths(path);
    NationalContext c2;
    pb::Certification out;
    grpc::Status s = stub_->UpdateCertification(&c2, bad, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << path;
    EXPECT_EQ(BadFields(s), std::vector<std::string>{"update_mask"}) << path;
  }
}

TEST_P(ReferentialServiceTest, PublishWithErrorsListsEachViolationAndKeepsTheDraft) {
  MustCreate(MakeCertification("CQP-B", pb::CERTIFICATION_KIND_CQP, "Titre"));
  pb::Version draft = MustCreateVersion("CQP-B", BrokenVersion());
  ASSERT_EQ(draft.state(), pb::VERSION_STATE_DRAFT);
  pb::PublishVersionRequest publish;
  publish.set_name(draft.name());
  publish.set_etag(draft.etag());
  pb::Version out;
  NationalContext ctx;
  grpc::Status s = stub_->PublishVersion(&ctx, publish, &out);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  std::set<std::string> types = PreconditionTypes(s);
  for (const char* expected : {"BLOC_WITHOUT_COMPETENCES", "DUPLICATE_BLOC_CODE", "SCALE_MISSING", "JURY_TOO_SMALL"}) {
    EXPECT_TRUE(types.count(expected)) << expected << " missing from: " << s.error_message();
  }
  pb::GetVersionRequest get;
  get.set_name(draft.name());
  pb::Version still;
  NationalContext c2;
  ASSERT_TRUE(stub_->GetVersion(&c2, get, &still).ok());
  EXPECT_EQ(still.state(), pb::VERSION_STATE_DRAFT);
  EXPECT_EQ(still.etag(), draft.etag());
}

TEST_P(ReferentialServiceTest, SeedLoadsPublishesAndAPublishedVersionNeverChanges) {
  ASSERT_TRUE(app_->LoadDocument(kSeedFile).ok());
  ASSERT_TRUE(app_->LoadDocument(kSeedFile).ok());  // idempotent: no second version

  pb::ListVersionsRequest list;
  list.set_parent("certifications/CQP-TMSA");
  pb::ListVersionsResponse versions;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->ListVersions(&ctx, list, &versions).ok());
  }
  ASSERT_EQ(versions.versions_size(), 1);
  EXPECT_EQ(versions.versions(0).blocs_size(), 0);  // BASIC view in lists

  pb::GetVersionRequest get;
  get.set_name("certifications/CQP-TMSA/versions/1");
  pb::Version published;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->GetVersion(&ctx, get, &published).ok());
  }
  EXPECT_EQ(published.state(), pb::VERSION_STATE_PUBLISHED);
  ASSERT_EQ(published.blocs_size(), 5);
  int competences = 0;
  for (const auto& b : published.blocs()) competences += b.competences_size();
  EXPECT_EQ(competences, 19);
  EXPECT_EQ(published.scales_size(), 2);

  pb::GetCertificationRequest get_cert;
  get_cert.set_name("certifications/CQP-TMSA");
  pb::Certification cert;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->GetCertification(&ctx, get_cert, &cert).ok());
  }
  EXPECT_EQ(cert.current_version(), "certifications/CQP-TMSA/versions/1");

  // Editing, deleting or re-publishing a published version: FAILED_PRECONDITION, nothing changes.
  pb::UpdateVersionRequest update;
  *update.mutable_version() = published;
  update.mutable_version()->mutable_blocs(0)->set_title("Changé");
  update.mutable_update_mask()->add_paths("blocs");
  {
    NationalContext ctx;
    pb::Version out;
    grpc::Status s = stub_->UpdateVersion(&ctx, update, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_TRUE(PreconditionTypes(s).count("VERSION_NOT_DRAFT"));
  }
  {
    pb::DeleteVersionRequest del;
    del.set_name(published.name());
    NationalContext ctx;
    google::protobuf::Empty out;
    EXPECT_EQ(stub_->DeleteVersion(&ctx, del, &out).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    pb::PublishVersionRequest again;
    again.set_name(published.name());
    NationalContext ctx;
    pb::Version out;
    EXPECT_EQ(stub_->PublishVersion(&ctx, again, &out).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    pb::DeleteCertificationRequest del;
    del.set_name("certifications/CQP-TMSA");
    NationalContext ctx;
    google::protobuf::Empty out;
    EXPECT_EQ(stub_->DeleteCertification(&ctx, del, &out).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  pb::Version after;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->GetVersion(&ctx, get, &after).ok());
  }
  EXPECT_EQ(after.blocs(0).title(), published.blocs(0).title());
  EXPECT_EQ(after.etag(), published.etag());

  // A revision starts as a copy; retiring the first keeps it readable.
  pb::CreateVersionRequest revise;
  revise.set_parent("certifications/CQP-TMSA");
  revise.set_source_version(published.name());
  revise.mutable_version()->set_description("Révision 2");
  pb::Version revision;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->CreateVersion(&ctx, revise, &revision).ok());
  }
  EXPECT_EQ(revision.name(), "certifications/CQP-TMSA/versions/2");
  EXPECT_EQ(revision.state(), pb::VERSION_STATE_DRAFT);
  EXPECT_EQ(revision.blocs_size(), 5);
  EXPECT_EQ(revision.description(), "Révision 2");
  // Attested capabilities given with the request are the revision's (they were dropped).
  revise.mutable_version()->set_attested_capabilities("Capacités révisées");
  pb::Version with_capabilities;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->CreateVersion(&ctx, revise, &with_capabilities).ok());
  }
  EXPECT_EQ(with_capabilities.attested_capabilities(), "Capacités révisées");
  EXPECT_EQ(with_capabilities.blocs_size(), 5);
  {
    pb::DeleteVersionRequest del;
    del.set_name(with_capabilities.name());
    NationalContext ctx;
    google::protobuf::Empty out;
    ASSERT_TRUE(stub_->DeleteVersion(&ctx, del, &out).ok());
  }
  pb::RetireVersionRequest retire;
  retire.set_name(published.name());
  {
    NationalContext ctx;
    pb::Version out;
    ASSERT_TRUE(stub_->RetireVersion(&ctx, retire, &out).ok());
    EXPECT_EQ(out.state(), pb::VERSION_STATE_RETIRED);
  }
  {
    NationalContext ctx;
    pb::Version out;
    ASSERT_TRUE(stub_->GetVersion(&ctx, get, &out).ok());
    EXPECT_EQ(out.state(), pb::VERSION_STATE_RETIRED);
    EXPECT_EQ(out.blocs_size(), 5);
  }
}

TEST_P(ReferentialServiceTest, UnknownResourcesAreNotFound) {
  {
    pb::GetCertificationRequest get;
    get.set_name("certifications/RNCP99999");
    NationalContext ctx;
    pb::Certification out;
    EXPECT_EQ(stub_->GetCertification(&ctx, get, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    pb::GetVersionRequest get;
    get.set_name("certifications/RNCP99999/versions/1");
    NationalContext ctx;
    pb::Version out;
    EXPECT_EQ(stub_->GetVersion(&ctx, get, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    pb::CreateVersionRequest create;
    create.set_parent("certifications/RNCP99999");
    NationalContext ctx;
    pb::Version out;
    EXPECT_EQ(stub_->CreateVersion(&ctx, create, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

// Only France compétences changes the référentiels: a write without the principal the gateway
// forwards is UNAUTHENTICATED, one as anyone else PERMISSION_DENIED, and nothing changes; the
// reads stay open to every caller (evaluation-svc reads them without a principal).
TEST_P(ReferentialServiceTest, OnlyTheNationalPrincipalChangesTheReferentiels) {
  const pb::Certification stored = MustCreate(MakeCertification("CQP-OWN", pb::CERTIFICATION_KIND_CQP, "Titre"));
  const pb::Version draft = MustCreateVersion("CQP-OWN", BrokenVersion());
  // Calls `method` as `principal` ("" = without one).
  auto call = [&](const std::string& principal, auto method, const auto& request, auto* response) {
    grpc::ClientContext ctx;
    if (!principal.empty()) ctx.AddMetadata(kPrincipalMetadata, principal);
    return ((*stub_).*method)(&ctx, request, response);
  };
  using Stub = pb::ReferentialService::Stub;
  pb::CreateCertificationRequest create_certification;
  *create_certification.mutable_certification() = MakeCertification("CQP-INTRUS", pb::CERTIFICATION_KIND_CQP, "Intrus");
  pb::UpdateCertificationRequest update_certification;
  update_certification.mutable_certification()->set_name(stored.name());
  update_certification.mutable_certification()->set_title("Changé");
  update_certification.mutable_update_mask()->add_paths("title");
  pb::DeleteCertificationRequest delete_certification;
  delete_certification.set_name(stored.name());
  pb::CreateVersionRequest create_version;
  create_version.set_parent(stored.name());
  pb::UpdateVersionRequest update_version;
  *update_version.mutable_version() = draft;
  update_version.mutable_update_mask()->add_paths("blocs");
  pb::PublishVersionRequest publish;
  publish.set_name(draft.name());
  pb::RetireVersionRequest retire;
  retire.set_name(draft.name());
  pb::DeleteVersionRequest delete_version;
  delete_version.set_name(draft.name());
  for (const std::string principal : {"", "operator:ft", "certifier:CPNE-IA", "region:53", "jury-member:J1"}) {
    SCOPED_TRACE(principal.empty() ? "no principal" : principal);
    const grpc::StatusCode expected =
        principal.empty() ? grpc::StatusCode::UNAUTHENTICATED : grpc::StatusCode::PERMISSION_DENIED;
    pb::Certification certification;
    pb::Version version;
    google::protobuf::Empty empty;
    EXPECT_EQ(call(principal, &Stub::CreateCertification, create_certification, &certification).error_code(), expected);
    EXPECT_EQ(call(principal, &Stub::UpdateCertification, update_certification, &certification).error_code(), expected);
    EXPECT_EQ(call(principal, &Stub::DeleteCertification, delete_certification, &empty).error_code(), expected);
    EXPECT_EQ(call(principal, &Stub::CreateVersion, create_version, &version).error_code(), expected);
    EXPECT_EQ(call(principal, &Stub::UpdateVersion, update_version, &version).error_code(), expected);
    EXPECT_EQ(call(principal, &Stub::PublishVersion, publish, &version).error_code(), expected);
    EXPECT_EQ(call(principal, &Stub::RetireVersion, retire, &version).error_code(), expected);
    EXPECT_EQ(call(principal, &Stub::DeleteVersion, delete_version, &empty).error_code(), expected);
    // Reads: open, and nothing above changed anything.
    pb::GetCertificationRequest get_certification;
    get_certification.set_name(stored.name());
    ASSERT_TRUE(call(principal, &Stub::GetCertification, get_certification, &certification).ok());
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(certification, stored)) << certification.DebugString();
    pb::GetVersionRequest get_version;
    get_version.set_name(draft.name());
    ASSERT_TRUE(call(principal, &Stub::GetVersion, get_version, &version).ok());
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(version, draft)) << version.DebugString();
  }
  EXPECT_EQ(CountCertifications(), 1);
}

TEST_P(ReferentialServiceTest, DuplicateCodeIsAlreadyExists) {
  MustCreate(MakeCertification("CQP-DUP", pb::CERTIFICATION_KIND_CQP, "Un"));
  pb::Certification out;
  grpc::Status s = Create(MakeCertification("CQP-DUP", pb::CERTIFICATION_KIND_CQP, "Deux"), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(CountCertifications(), 1);
}

TEST_P(ReferentialServiceTest, SameRequestIdTwiceCreatesOneResource) {
  pb::Certification first, second;
  auto c = MakeCertification("CQP-IDEM", pb::CERTIFICATION_KIND_CQP, "Idempotent");
  ASSERT_TRUE(Create(c, &first, "req-0001").ok());
  grpc::Status again = Create(c, &second, "req-0001");
  ASSERT_TRUE(again.ok()) << again.error_message();
  EXPECT_EQ(first.name(), second.name());
  EXPECT_EQ(CountCertifications(), 1);

  pb::CreateVersionRequest create;
  create.set_parent("certifications/CQP-IDEM");
  create.set_request_id("req-v-1");
  pb::Version v1, v2;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->CreateVersion(&ctx, create, &v1).ok());
  }
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->CreateVersion(&ctx, create, &v2).ok());
  }
  EXPECT_EQ(v1.name(), v2.name());
  pb::ListVersionsRequest list;
  list.set_parent("certifications/CQP-IDEM");
  pb::ListVersionsResponse versions;
  NationalContext ctx;
  ASSERT_TRUE(stub_->ListVersions(&ctx, list, &versions).ok());
  EXPECT_EQ(versions.versions_size(), 1);
}

struct BadCase {
  std::string label;
  std::string field;
};

TEST_P(ReferentialServiceTest, MalformedInputIsInvalidArgumentNamingTheFieldAndWritesNothing) {
  std::vector<std::pair<BadCase, pb::Certification>> cases;
  auto base = MakeCertification("CQP-OK", pb::CERTIFICATION_KIND_CQP, "Titre");
  {
    auto c = base;
    c.set_code("");
    cases.push_back({{"empty code", "certification.code"}, c});
  }
  {
    auto c = base;
    c.set_title(std::string(501, 'a'));
    cases.push_back({{"over-long title", "certification.title"}, c});
  }
  {
    auto c = base;
    c.set_kind(static_cast<pb::CertificationKind>(42));
    cases.push_back({{"bad enum", "certification.kind"}, c});
  }
  {
    auto c = base;
    c.set_title("");
    cases.push_back({{"empty title", "certification.title"}, c});
  }
  {
    auto c = base;
    c.mutable_certifiers(0)->set_siret("123");
    cases.push_back({{"bad siret", "certification.certifiers[0].siret"}, c});
  }
  for (const auto& [bad, cert] : cases) {
    pb::Certification out;
    grpc::Status s = Create(cert, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.label;
    std::vector<std::string> fields = BadFields(s);
    EXPECT_NE(std::find(fields.begin(), fields.end(), bad.field), fields.end())
        << bad.label << ": " << s.error_message();
  }
  {
    pb::ListCertificationsRequest list;
    list.set_page_size(-1);
    NationalContext ctx;
    pb::ListCertificationsResponse out;
    grpc::Status s = stub_->ListCertifications(&ctx, list, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(BadFields(s), std::vector<std::string>{"page_size"});
  }
  {
    pb::ListCertificationsRequest list;
    list.set_filter("colour = red");
    NationalContext ctx;
    pb::ListCertificationsResponse out;
    grpc::Status s = stub_->ListCertifications(&ctx, list, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(BadFields(s), std::vector<std::string>{"filter"});
  }
  {
    pb::GetVersionRequest get;
    get.set_name("certifications/CQP-OK/versions/zero");
    NationalContext ctx;
    pb::Version out;
    grpc::Status s = stub_->GetVersion(&ctx, get, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(BadFields(s), std::vector<std::string>{"name"});
  }
  EXPECT_EQ(CountCertifications(), 0);

  // A malformed draft edit changes nothing either.
  MustCreate(base);
  pb::Version draft = MustCreateVersion("CQP-OK", pb::Version());
  pb::UpdateVersionRequest update;
  *update.mutable_version() = draft;
  update.mutable_version()->mutable_validation_rules()->set_bloc_threshold_percent(150);
  update.mutable_update_mask()->add_paths("validation_rules");
  NationalContext ctx;
  pb::Version out;
  grpc::Status s = stub_->UpdateVersion(&ctx, update, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadFields(s), std::vector<std::string>{"version.validation_rules.bloc_threshold_percent"});
  pb::GetVersionRequest get;
  get.set_name(draft.name());
  pb::Version after;
  NationalContext c2;
  ASSERT_TRUE(stub_->GetVersion(&c2, get, &after).ok());
  EXPECT_EQ(after.etag(), draft.etag());
}

// The data file is the source of what it loads: loading it again brings the certification back
// to it (an older copy of the seed had no certifier id), and leaves the identical version alone.
TEST_P(ReferentialServiceTest, LoadingADocumentAgainBringsItsCertificationBack) {
  const std::string seed = PARCOURS_SOURCE_DIR "/referential-svc/data/cqp-technicien-maintenance-alimentaire.json";
  ASSERT_TRUE(app_->LoadDocument(seed).ok());
  pb::GetCertificationRequest get;
  get.set_name("certifications/CQP-TMSA");
  pb::Certification loaded;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->GetCertification(&ctx, get, &loaded).ok());
  }
  ASSERT_EQ(loaded.certifiers(0).principal_id(), "CPNE-IA");
  pb::UpdateCertificationRequest older;
  *older.mutable_certification() = loaded;
  older.mutable_certification()->set_title("Ancien intitulé");
  older.mutable_certification()->mutable_certifiers(0)->clear_principal_id();
  pb::Certification changed;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->UpdateCertification(&ctx, older, &changed).ok());
  }
  ASSERT_EQ(changed.title(), "Ancien intitulé");
  ASSERT_TRUE(app_->LoadDocument(seed).ok());
  pb::Certification again;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->GetCertification(&ctx, get, &again).ok());
  }
  EXPECT_EQ(again.title(), loaded.title());
  EXPECT_EQ(again.certifiers(0).principal_id(), "CPNE-IA");
  pb::ListVersionsRequest list;
  list.set_parent("certifications/CQP-TMSA");
  pb::ListVersionsResponse versions;
  NationalContext ctx;
  ASSERT_TRUE(stub_->ListVersions(&ctx, list, &versions).ok());
  EXPECT_EQ(versions.versions_size(), 1);
}

// The XML fixtures' names lost their export's date (the flux has none inside). Their source
// (mcp-rncp's fixture builder) records the export of 2026-08-16; RNCP40344 in it was decided on
// 28/03/2025: either way newer than the CSV sample of 2024-02-22.
google::type::Date FixturesXmlDate() {
  google::type::Date d;
  d.set_year(2026);
  d.set_month(8);
  d.set_day(16);
  return d;
}

// France compétences' CSV export (the sample in shared/fixtures/rncp) through the service logic:
// every fiche stored as read, the CAP with a DRAFT holding its six blocs; a second import changes
// nothing; a later export where a fiche changed updates it and leaves its versions alone.
TEST_P(ReferentialServiceTest, CsvExportImportsEveryFicheOnceThenFollowsItsChanges) {
  const std::string sample = PARCOURS_SOURCE_DIR "/../shared/fixtures/rncp/csv-2024-02-22";
  std::ostringstream report;
  absl::Status imported = app_->ImportCsvExport(sample, report);
  ASSERT_TRUE(imported.ok()) << imported << "\n" << report.str();
  EXPECT_NE(report.str().find("9 fiches: 9 created, 0 updated, 0 unchanged, 0 refused"), std::string::npos)
      << report.str();

  pb::GetCertificationRequest get;
  get.set_name("certifications/RS6117");
  pb::Certification rs;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->GetCertification(&ctx, get, &rs).ok());
  }
  EXPECT_EQ(rs.kind(), pb::CERTIFICATION_KIND_RS);
  EXPECT_TRUE(rs.active());
  ASSERT_EQ(rs.certifiers_size(), 2);
  EXPECT_EQ(rs.certifiers(1).principal_id(), "31504294500032");
  ASSERT_EQ(rs.predecessor_codes_size(), 1);
  EXPECT_EQ(rs.predecessor_codes(0), "RNCP19468");
  auto versions = [&](const std::string& code) {
    pb::ListVersionsRequest list;
    list.set_parent("certifications/" + code);
    list.set_view(pb::VERSION_VIEW_FULL);
    pb::ListVersionsResponse out;
    NationalContext ctx;
    EXPECT_TRUE(stub_->ListVersions(&ctx, list, &out).ok());
    return out;
  };
  pb::ListVersionsResponse cap = versions("RNCP509");
  ASSERT_EQ(cap.versions_size(), 1);
  EXPECT_EQ(cap.versions(0).state(), pb::VERSION_STATE_DRAFT);
  ASSERT_EQ(cap.versions(0).blocs_size(), 6);
  EXPECT_EQ(cap.versions(0).blocs(5).code(), "RNCP509BC06");
  EXPECT_EQ(versions("RNCP1197").versions_size(), 0);  // no blocs in the export: nothing to curate yet
  EXPECT_EQ(versions("RS6117").versions_size(), 1);    // judged as a whole

  // France compétences sets, through the API, what the CSV does not say: a deadline, and another
  // id for a certifier than its SIRET. Re-imports keep both.
  {
    pb::UpdateCertificationRequest update;
    *update.mutable_certification() = rs;
    update.mutable_certification()->mutable_issuance_deadline()->set_year(2027);
    update.mutable_certification()->mutable_issuance_deadline()->set_month(9);
    update.mutable_certification()->mutable_issuance_deadline()->set_day(29);
    update.mutable_certification()->mutable_certifiers(0)->set_principal_id("CNBP");
    update.mutable_certification()->mutable_certifiers(1)->set_active(false);  // the CSV has no state
    update.mutable_update_mask()->add_paths("issuance_deadline");
    update.mutable_update_mask()->add_paths("certifiers");
    NationalContext ctx;
    ASSERT_TRUE(stub_->UpdateCertification(&ctx, update, &rs).ok());
  }
  report.str("");
  ASSERT_TRUE(app_->ImportCsvExport(sample, report).ok()) << report.str();
  EXPECT_NE(report.str().find("0 created, 0 updated, 9 unchanged"), std::string::npos) << report.str();
  EXPECT_EQ(versions("RNCP509").versions_size(), 1);

  // A later export: RS6117 is no longer active.
  const std::string later = ::testing::TempDir() + "/fc-export-later-" + GetParam();
  std::filesystem::remove_all(later);
  std::filesystem::copy(sample, later);
  for (const auto& entry : std::filesystem::directory_iterator(later)) {
    const std::string file = entry.path().filename().string();
    if (file.find("_Standard_") == std::string::npos) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t row = text.find("\"RS6117\"");
    const size_t active = text.find("\"ACTIVE\"", row);
    ASSERT_NE(active, std::string::npos);
    text.replace(active, std::string("\"ACTIVE\"").size(), "\"INACTIVE\"");
    std::filesystem::permissions(entry.path(), std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
    std::ofstream(entry.path(), std::ios::binary | std::ios::trunc) << text;
  }
  report.str("");
  ASSERT_TRUE(app_->ImportCsvExport(later, report).ok()) << report.str();
  EXPECT_NE(report.str().find("RS6117 updated"), std::string::npos) << report.str();
  EXPECT_NE(report.str().find("0 created, 1 updated, 8 unchanged"), std::string::npos) << report.str();
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->GetCertification(&ctx, get, &rs).ok());
  }
  EXPECT_FALSE(rs.active());
  EXPECT_EQ(rs.issuance_deadline().year(), 2027);
  EXPECT_EQ(rs.certifiers(0).principal_id(), "CNBP");
  EXPECT_EQ(rs.certifiers(1).principal_id(), "31504294500032");
  EXPECT_TRUE(rs.certifiers(0).active());
  EXPECT_FALSE(rs.certifiers(1).active());
  EXPECT_EQ(versions("RS6117").versions_size(), 1);

  // A fiche with a malformed bloc is refused whole: no certification is left behind.
  const std::string bad = ::testing::TempDir() + "/fc-export-bad-" + GetParam();
  std::filesystem::remove_all(bad);
  std::filesystem::create_directories(bad);
  std::ofstream(bad + "/export_fiches_CSV_Standard_2024_03_01.csv")
      << "\"Numero_Fiche\";\"Intitule\";\"Nomenclature_Europe_Niveau\";\"Actif\"\r\n"
      << "\"RNCP99001\";\"Titre à blocs\";\"NIV5\";\"ACTIVE\"\r\n";
  std::ofstream(bad + "/export_fiches_CSV_Blocs_De_Compétences_2024_03_01.csv")
      << "\"Numero_Fiche\";\"Bloc_Competences_Code\";\"Bloc_Competences_Libelle\"\r\n"
      << "\"RNCP99001\";\"RNCP99001BC01\";\"\"\r\n";
  report.str("");
  absl::Status refused = app_->ImportCsvExport(bad, report);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(report.str().find("RNCP99001 refused"), std::string::npos) << report.str();
  EXPECT_NE(report.str().find("version.blocs[0].title"), std::string::npos) << report.str();
  get.set_name("certifications/RNCP99001");
  NationalContext missing;
  EXPECT_EQ(stub_->GetCertification(&missing, get, &rs).error_code(), grpc::StatusCode::NOT_FOUND);
}

// The XML export stores what the CSV lacks: the blocs' texts, the correspondences, the deadline.
TEST_P(ReferentialServiceTest, XmlExportImportsTheBlocsTextsCorrespondencesAndDeadline) {
  const std::string dir = PARCOURS_SOURCE_DIR "/../shared/fixtures/rncp/";
  std::ostringstream report;
  absl::Status imported = app_->ImportXmlExport({dir + "rncp_fiche_RNCP40344.xml", dir + "rs_fiche_RS5000.xml"},
                                                FixturesXmlDate(), report);
  ASSERT_TRUE(imported.ok()) << imported << "\n" << report.str();
  EXPECT_NE(report.str().find("2 fiches: 2 created"), std::string::npos) << report.str();
  pb::GetCertificationRequest get;
  get.set_name("certifications/RNCP40344");
  pb::Certification c;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->GetCertification(&ctx, get, &c).ok());
  }
  EXPECT_EQ(c.issuance_deadline().year(), 2032);
  pb::GetVersionRequest version;
  version.set_name("certifications/RNCP40344/versions/1");
  version.set_view(pb::VERSION_VIEW_FULL);
  pb::Version v;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->GetVersion(&ctx, version, &v).ok());
  }
  EXPECT_EQ(v.state(), pb::VERSION_STATE_DRAFT);
  ASSERT_EQ(v.blocs_size(), 4);
  EXPECT_FALSE(v.blocs(3).competences_text().empty());
  EXPECT_FALSE(v.blocs(3).assessment_methods().empty());
  EXPECT_EQ(v.correspondences_size(), 8);
  // Malformed XML: nothing imported, the file and line named.
  const std::string broken = ::testing::TempDir() + "/broken-" + GetParam() + ".xml";
  std::ofstream(broken) << "<FICHES><FICHE><NUMERO_FICHE>RS9</NUMERO_FICHE></FICHES>";
  report.str("");
  absl::Status bad = app_->ImportXmlExport({broken}, FixturesXmlDate(), report);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("line 1"), std::string::npos) << bad;
  get.set_name("certifications/RS9");
  NationalContext ctx;
  EXPECT_EQ(stub_->GetCertification(&ctx, get, &c).error_code(), grpc::StatusCode::NOT_FOUND);
}

// The XML flux (2026-08-16) has RS5000 inactive, decided 24/05/2019, replaced by RS6604; the
// older CSV export (2024-02-22) still had it active, decided 13/06/2019, without successor.
// Whichever order they are imported in, the newer export's fields stay: an older export is
// reported stale and writes nothing (evaluation-svc opens candidacies on `active`).
TEST_P(ReferentialServiceTest, AnOlderExportNeverTakesBackWhatANewerOneSet) {
  const std::string fixtures = PARCOURS_SOURCE_DIR "/../shared/fixtures/rncp/";
  const std::string csv = fixtures + "csv-2024-02-22";
  // The XML under the name France compétences gives its files, which dates it.
  const std::string named = ::testing::TempDir() + "/export_fiches_RS_V4_1_2026-08-16.xml";
  std::filesystem::remove(named);
  std::filesystem::copy_file(fixtures + "rs_fiche_RS5000.xml", named);
  auto rs5000 = [&] {
    pb::GetCertificationRequest get;
    get.set_name("certifications/RS5000");
    pb::Certification c;
    NationalContext ctx;
    EXPECT_TRUE(stub_->GetCertification(&ctx, get, &c).ok());
    return c;
  };
  auto expect_xml_fields = [&](const pb::Certification& c) {
    EXPECT_FALSE(c.active());
    ASSERT_EQ(c.successor_codes_size(), 1);
    EXPECT_EQ(c.successor_codes(0), "RS6604");
    EXPECT_EQ(c.registration_date().year(), 2019);
    EXPECT_EQ(c.registration_date().month(), 5);
    EXPECT_EQ(c.registration_date().day(), 24);
    EXPECT_EQ(c.export_date().year(), 2026);
    EXPECT_EQ(c.export_date().month(), 8);
    EXPECT_EQ(c.export_date().day(), 16);
  };

  // XML, then the older CSV: RS5000 is stale, the other fiches are imported.
  std::ostringstream report;
  ASSERT_TRUE(app_->ImportXmlExport({named}, std::nullopt, report).ok()) << report.str();
  expect_xml_fields(rs5000());
  const std::string etag = rs5000().etag();
  report.str("");
  ASSERT_TRUE(app_->ImportCsvExport(csv, report).ok()) << report.str();
  EXPECT_NE(report.str().find("RS5000 stale: the export of 2024-02-22 is older than the one of 2026-08-16"),
            std::string::npos)
      << report.str();
  EXPECT_NE(report.str().find("9 fiches: 8 created, 0 updated, 0 unchanged, 0 refused, 1 stale"), std::string::npos)
      << report.str();
  expect_xml_fields(rs5000());
  EXPECT_EQ(rs5000().etag(), etag);  // nothing written
  // The same export again: idempotent.
  report.str("");
  ASSERT_TRUE(app_->ImportXmlExport({named}, std::nullopt, report).ok()) << report.str();
  EXPECT_NE(report.str().find("RS5000 unchanged"), std::string::npos) << report.str();
  EXPECT_EQ(rs5000().etag(), etag);

  // CSV, then the newer XML: the XML's fields win; the CSV once more is stale.
  pb::DeleteCertificationRequest drop;
  drop.set_name("certifications/RS5000");
  {
    NationalContext ctx;
    google::protobuf::Empty empty;
    ASSERT_TRUE(stub_->DeleteCertification(&ctx, drop, &empty).ok());
  }
  report.str("");
  ASSERT_TRUE(app_->ImportCsvExport(csv, report).ok()) << report.str();
  EXPECT_NE(report.str().find("RS5000 created"), std::string::npos) << report.str();
  EXPECT_TRUE(rs5000().active());
  EXPECT_EQ(rs5000().export_date().year(), 2024);
  report.str("");
  ASSERT_TRUE(app_->ImportXmlExport({named}, std::nullopt, report).ok()) << report.str();
  EXPECT_NE(report.str().find("RS5000 updated"), std::string::npos) << report.str();
  expect_xml_fields(rs5000());
  report.str("");
  ASSERT_TRUE(app_->ImportCsvExport(csv, report).ok()) << report.str();
  EXPECT_NE(report.str().find("RS5000 stale"), std::string::npos) << report.str();
  expect_xml_fields(rs5000());

  // The date is the import's to record: a caller cannot set it, nor back-date one.
  pb::CreateCertificationRequest create;
  *create.mutable_certification() = MakeCertification("RS9001", pb::CERTIFICATION_KIND_RS, "Certification");
  create.mutable_certification()->mutable_export_date()->set_year(2099);
  create.mutable_certification()->mutable_export_date()->set_month(1);
  create.mutable_certification()->mutable_export_date()->set_day(1);
  pb::Certification made;
  {
    NationalContext ctx;
    ASSERT_TRUE(stub_->CreateCertification(&ctx, create, &made).ok());
  }
  EXPECT_FALSE(made.has_export_date());
  pb::UpdateCertificationRequest update;
  *update.mutable_certification() = rs5000();
  update.mutable_certification()->mutable_export_date()->set_year(2000);
  update.mutable_update_mask()->add_paths("export_date");
  {
    NationalContext ctx;
    pb::Certification out;
    EXPECT_EQ(stub_->UpdateCertification(&ctx, update, &out).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  // An XML file whose name carries no date is refused before anything is read.
  report.str("");
  absl::Status undated = app_->ImportXmlExport({fixtures + "rs_fiche_RS5000.xml"}, std::nullopt, report);
  EXPECT_EQ(undated.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(undated.message().find("rs_fiche_RS5000.xml: no export date in its name"), std::string::npos) << undated;
  google::type::Date other = FixturesXmlDate();
  other.set_year(2025);
  absl::Status contradicted = app_->ImportXmlExport({named}, other, report);
  EXPECT_EQ(contradicted.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(contradicted.message().find("dates it 2026-08-16, not 2025-08-16"), std::string::npos) << contradicted;
}

// The CSV's Rome table doubles apostrophes ("d''affaires"), the XML does not: RNCP4049 from
// the CSV, then the same fiche from an XML export of the same day, then the CSV again, must
// each leave it unchanged (it used to flip its H1102 label, "updated" every time).
TEST_P(ReferentialServiceTest, TheCsvAndTheXmlOfTheSameDayGiveTheSameRomeLabels) {
  const std::string csv = PARCOURS_SOURCE_DIR "/../shared/fixtures/rncp/csv-2024-02-22";
  std::ostringstream report;
  ASSERT_TRUE(app_->ImportCsvExport(csv, report).ok()) << report.str();
  // RNCP4049 as the XML flux writes it, with the CSV's values.
  const std::string xml = ::testing::TempDir() + "/export_fiches_RNCP_V4_1_2024-02-22.xml";
  std::ofstream(xml, std::ios::binary | std::ios::trunc)
      << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<FICHES><VERSION_FLUX>4.1</VERSION_FLUX><FICHE>"
         "<NUMERO_FICHE>RNCP4049</NUMERO_FICHE>"
         "<ANCIENNES_CERTIFICATIONS><ANCIENNE_CERTIFICATION><ID_FICHE_ANCIENNE_CERTIFICATION>RNCP1197"
         "</ID_FICHE_ANCIENNE_CERTIFICATION></ANCIENNE_CERTIFICATION></ANCIENNES_CERTIFICATIONS>"
         "<NOUVELLES_CERTIFICATIONS><NOUVELLE_CERTIFICATION><ID_FICHE_NOUVELLE_CERTIFICATION>RNCP22094"
         "</ID_FICHE_NOUVELLE_CERTIFICATION></NOUVELLE_CERTIFICATION></NOUVELLES_CERTIFICATIONS>"
         "<INTITULE>Chef de projet commercial pour l'agroalimentaire</INTITULE>"
         "<NOMENCLATURE_EUROPE><NIVEAU>NIV6</NIVEAU><LIBELLE>Niveau 6</LIBELLE></NOMENCLATURE_EUROPE>"
         "<CODES_NSF><NSF><CODE>221w</CODE><LIBELLE>Commercialisation de produits alimentaires</LIBELLE></NSF>"
         "</CODES_NSF><CODES_ROME>"
         "<ROME><CODE>D1407</CODE><LIBELLE>Relation technico-commerciale</LIBELLE></ROME>"
         "<ROME><CODE>D1406</CODE><LIBELLE>Management en force de vente</LIBELLE></ROME>"
         "<ROME><CODE>H1102</CODE><LIBELLE>Management et ingénierie d'affaires</LIBELLE></ROME>"
         "</CODES_ROME><DATE_DECISION>02/02/2011</DATE_DECISION>"
         "<DATE_FIN_ENREGISTREMENT>02/02/2015</DATE_FIN_ENREGISTREMENT>"
         "<TYPE_ENREGISTREMENT>Enregistrement sur demande</TYPE_ENREGISTREMENT><ACTIF>Non</ACTIF>"
         "</FICHE></FICHES>\n";
  report.str("");
  ASSERT_TRUE(app_->ImportXmlExport({xml}, std::nullopt, report).ok()) << report.str();
  EXPECT_NE(report.str().find("RNCP4049 unchanged"), std::string::npos) << report.str();
  report.str("");
  ASSERT_TRUE(app_->ImportCsvExport(csv, report).ok()) << report.str();
  EXPECT_NE(report.str().find("RNCP4049 unchanged"), std::string::npos) << report.str();
  EXPECT_NE(report.str().find("9 fiches: 0 created, 0 updated, 9 unchanged"), std::string::npos) << report.str();
  pb::GetCertificationRequest get;
  get.set_name("certifications/RNCP4049");
  pb::Certification c;
  NationalContext ctx;
  ASSERT_TRUE(stub_->GetCertification(&ctx, get, &c).ok());
  ASSERT_EQ(c.rome_codes_size(), 3);
  EXPECT_EQ(c.rome_codes(2).label(), "Management et ingénierie d'affaires");
}

// A re-import fills the DRAFT an import made while nobody has edited it, also one made before
// the importer read the jury's composition and CAPACITES_ATTESTEES; never an edited or a
// published version.
TEST_P(ReferentialServiceTest, AReImportRefreshesTheImportsUneditedDraftOnly) {
  const std::string fixtures = PARCOURS_SOURCE_DIR "/../shared/fixtures/rncp/";
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  auto version = [&](const std::string& name) {
    pb::GetVersionRequest get;
    get.set_name(name);
    get.set_view(pb::VERSION_VIEW_FULL);
    pb::Version v;
    NationalContext ctx;
    EXPECT_TRUE(stub_->GetVersion(&ctx, get, &v).ok());
    return v;
  };
  google::type::Date later = FixturesXmlDate();
  later.set_month(9);

  // What the importer stored before it read them: the certification, a DRAFT with the blocs.
  auto docs = FichesFromXml(read(fixtures + "rncp_fiche_RNCP40344.xml"));
  ASSERT_TRUE(docs.ok()) << docs.status();
  {
    pb::CreateCertificationRequest create;
    *create.mutable_certification() = docs->front().certification();
    pb::Certification out;
    NationalContext ctx;
    ASSERT_TRUE(stub_->CreateCertification(&ctx, create, &out).ok());
  }
  {
    pb::CreateVersionRequest create;
    create.set_parent("certifications/RNCP40344");
    *create.mutable_version() = docs->front().version();
    create.mutable_version()->clear_attested_capabilities();
    create.mutable_version()->clear_validation_rules();
    pb::Version out;
    NationalContext ctx;
    ASSERT_TRUE(stub_->CreateVersion(&ctx, create, &out).ok());
    EXPECT_FALSE(out.has_export_date());
  }
  std::ostringstream report;
  ASSERT_TRUE(app_->ImportXmlExport({fixtures + "rncp_fiche_RNCP40344.xml"}, FixturesXmlDate(), report).ok())
      << report.str();
  EXPECT_NE(report.str().find("RNCP40344 updated, certifications/RNCP40344/versions/1 refreshed (DRAFT, 4 blocs)"),
            std::string::npos)
      << report.str();
  pb::Version v = version("certifications/RNCP40344/versions/1");
  EXPECT_EQ(v.state(), pb::VERSION_STATE_DRAFT);
  EXPECT_EQ(v.validation_rules().jury().description().rfind("Le jury national de certification est composé de :", 0),
            0u)
      << v.validation_rules().jury().description();
  EXPECT_EQ(v.attested_capabilities().rfind("Accueillir un propriétaire d'animal", 0), 0u);
  ASSERT_EQ(v.blocs_size(), 4);
  EXPECT_FALSE(v.blocs(3).competences_text().empty());
  EXPECT_EQ(v.correspondences_size(), 8);
  EXPECT_EQ(v.export_date().year(), 2026);
  // The same export again changes nothing.
  report.str("");
  ASSERT_TRUE(app_->ImportXmlExport({fixtures + "rncp_fiche_RNCP40344.xml"}, FixturesXmlDate(), report).ok());
  EXPECT_NE(report.str().find("RNCP40344 unchanged"), std::string::npos) << report.str();
  EXPECT_EQ(version(v.name()).etag(), v.etag());
  // A curator's edit makes the draft curation's: a newer export leaves it alone.
  {
    pb::UpdateVersionRequest update;
    *update.mutable_version() = v;
    update.mutable_version()->set_description("Curated: scales to come");
    update.mutable_update_mask()->add_paths("description");
    NationalContext ctx;
    ASSERT_TRUE(stub_->UpdateVersion(&ctx, update, &v).ok());
  }
  EXPECT_FALSE(v.has_export_date());
  const std::string newer_rncp = ::testing::TempDir() + "/export_fiches_RNCP_V4_1_2026-09-16.xml";
  std::ofstream(newer_rncp, std::ios::binary | std::ios::trunc)
      << absl::StrReplaceAll(read(fixtures + "rncp_fiche_RNCP40344.xml"),
                             {{"Accueillir un propriétaire", "Recevoir un propriétaire"}});
  report.str("");
  ASSERT_TRUE(app_->ImportXmlExport({newer_rncp}, std::nullopt, report).ok()) << report.str();
  EXPECT_NE(report.str().find("RNCP40344 unchanged"), std::string::npos) << report.str();
  pb::Version kept = version(v.name());
  EXPECT_EQ(kept.etag(), v.etag());
  EXPECT_EQ(kept.description(), "Curated: scales to come");
  EXPECT_EQ(kept.attested_capabilities().rfind("Accueillir", 0), 0u);

  // RS5000: its import-made DRAFT follows a newer export until it is published.
  report.str("");
  ASSERT_TRUE(app_->ImportXmlExport({fixtures + "rs_fiche_RS5000.xml"}, FixturesXmlDate(), report).ok());
  pb::Version rs = version("certifications/RS5000/versions/1");
  EXPECT_EQ(rs.attested_capabilities().rfind("Les compétences attestées par la certification", 0), 0u);
  EXPECT_EQ(rs.validation_rules().jury().description(), "Un jury composé de 3 personnes, dont au moins un professionnel.");
  const std::string rs_text = read(fixtures + "rs_fiche_RS5000.xml");
  auto with_capabilities = [&](const std::string& text) {
    const size_t from = rs_text.find("<CAPACITES_ATTESTEES>") + std::string("<CAPACITES_ATTESTEES>").size();
    const size_t to = rs_text.find("</CAPACITES_ATTESTEES>");
    return rs_text.substr(0, from) + text + rs_text.substr(to);
  };
  report.str("");
  ASSERT_TRUE(app_->ImportXmlExport({fixtures + "rs_fiche_RS5000.xml"}, later,
                                    report).ok());  // a newer date, the same tree: nothing to refresh
  EXPECT_NE(report.str().find("RS5000 unchanged"), std::string::npos) << report.str();
  const std::string newer_rs = ::testing::TempDir() + "/export_fiches_RS_V4_1_2026-10-01.xml";
  std::ofstream(newer_rs, std::ios::binary | std::ios::trunc) << with_capabilities("C1. Concevoir un projet");
  report.str("");
  ASSERT_TRUE(app_->ImportXmlExport({newer_rs}, std::nullopt, report).ok()) << report.str();
  EXPECT_NE(report.str().find("RS5000 updated, certifications/RS5000/versions/1 refreshed (DRAFT, 0 blocs)"),
            std::string::npos)
      << report.str();
  rs = version("certifications/RS5000/versions/1");
  EXPECT_EQ(rs.attested_capabilities(), "C1. Concevoir un projet");
  EXPECT_EQ(rs.export_date().month(), 10);
  {
    pb::PublishVersionRequest publish;
    publish.set_name(rs.name());
    publish.set_etag(rs.etag());
    NationalContext ctx;
    ASSERT_TRUE(stub_->PublishVersion(&ctx, publish, &rs).ok());
  }
  const std::string newest_rs = ::testing::TempDir() + "/export_fiches_RS_V4_1_2026-11-02.xml";
  std::ofstream(newest_rs, std::ios::binary | std::ios::trunc) << with_capabilities("C1. Concevoir autrement");
  report.str("");
  ASSERT_TRUE(app_->ImportXmlExport({newest_rs}, std::nullopt, report).ok()) << report.str();
  EXPECT_NE(report.str().find("RS5000 unchanged"), std::string::npos) << report.str();
  pb::Version published = version(rs.name());
  EXPECT_EQ(published.state(), pb::VERSION_STATE_PUBLISHED);
  EXPECT_EQ(published.etag(), rs.etag());
  EXPECT_EQ(published.attested_capabilities(), "C1. Concevoir un projet");
}

INSTANTIATE_TEST_SUITE_P(Backends, ReferentialServiceTest, ::testing::Values("sqlite", "mysql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace parcours::referential
