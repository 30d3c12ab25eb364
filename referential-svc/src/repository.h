// Persistence of certifications and versions. One interface, one SQL implementation that runs
// on both dialects of platform/db, one conformance suite (tests/repository_conformance_test.cc).
//
// The repository knows storage, not rules: the service decides what may change and passes a
// mutation that the repository applies under optimistic concurrency (the `version` column,
// also the etag).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "parcours/referential/v1/referential.pb.h"
#include "platform/db/db.h"

namespace parcours::referential {

namespace pb = ::parcours::referential::v1;

// request_id idempotency of a create: when `request_id` is non-empty, a create already done
// under the same key returns the resource created then.
struct IdempotencyKey {
  std::string method;
  std::string request_id;
  const google::protobuf::Message* request = nullptr;
};

struct CertificationQuery {
  std::optional<pb::CertificationKind> kind;
  std::optional<pb::QualificationLevel> level;
  std::optional<bool> active;
  std::string certifier;       // exact certifier name
  std::string title_contains;  // folded with FoldForSearch
  std::string after_code;      // keyset cursor: codes strictly greater
  int limit = 50;
};

// Mutations run inside the repository's transaction on the stored resource; returning an
// error aborts the change and is returned as is.
using CertificationMutation = std::function<absl::Status(pb::Certification&)>;
using VersionMutation = std::function<absl::Status(pb::Version&)>;

class Repository {
 public:
  virtual ~Repository() = default;

  // ALREADY_EXISTS if the code is taken.
  virtual absl::StatusOr<pb::Certification> CreateCertification(const pb::Certification& certification,
                                                                 const IdempotencyKey& key,
                                                                 absl::Time now) = 0;
  virtual absl::StatusOr<pb::Certification> GetCertification(absl::string_view code) = 0;
  virtual absl::StatusOr<std::vector<pb::Certification>> ListCertifications(
      const CertificationQuery& query) = 0;
  // ABORTED if expected_version is set and differs (or a concurrent writer won).
  virtual absl::StatusOr<pb::Certification> UpdateCertification(absl::string_view code,
                                                                 std::optional<int64_t> expected_version,
                                                                 const CertificationMutation& mutate,
                                                                 absl::Time now) = 0;
  // FAILED_PRECONDITION if any version was ever published; drafts go with it.
  virtual absl::Status DeleteCertification(absl::string_view code,
                                           std::optional<int64_t> expected_version) = 0;

  // Creates version number last+1 of the certification, in state DRAFT.
  virtual absl::StatusOr<pb::Version> CreateVersion(absl::string_view code, const pb::Version& version,
                                                    const IdempotencyKey& key, absl::Time now) = 0;
  virtual absl::StatusOr<pb::Version> GetVersion(absl::string_view code, int number) = 0;
  // Newest first; numbers strictly below `before_number` when it is > 0.
  virtual absl::StatusOr<std::vector<pb::Version>> ListVersions(absl::string_view code, int before_number,
                                                                int limit, bool with_tree) = 0;
  // The mutation may change the tree, the description and the state; publish_time is set when
  // the state becomes PUBLISHED, and the certification's current_version follows the newest
  // PUBLISHED version.
  virtual absl::StatusOr<pb::Version> UpdateVersion(absl::string_view code, int number,
                                                    std::optional<int64_t> expected_version,
                                                    const VersionMutation& mutate, absl::Time now) = 0;
  // FAILED_PRECONDITION unless DRAFT.
  virtual absl::Status DeleteVersion(absl::string_view code, int number,
                                     std::optional<int64_t> expected_version) = 0;
  // Cheap read of a version's state and etag (for the cache of published trees).
  virtual absl::StatusOr<std::pair<pb::VersionState, std::string>> GetVersionState(absl::string_view code,
                                                                                    int number) = 0;
};

std::unique_ptr<Repository> NewSqlRepository(db::Db& db);

// Resource names.
std::string CertificationName(absl::string_view code);
std::string VersionName(absl::string_view code, int number);

// Clears what the service sets, never the caller (name, etag, state, timestamps, current_version):
// what is left is the resource's content, as stored and as compared.
void ClearOutputFields(pb::Certification& certification);
void ClearOutputFields(pb::Version& version);

// Lower-cases ASCII and the Latin-1 letters of French (É -> é ...) so a title search is
// case-insensitive the same way on SQLite and MySQL.
std::string FoldForSearch(absl::string_view text);

}  // namespace parcours::referential
