// referential-svc's logic (request in, resource or domain error out; no gRPC types) and the
// thin gRPC adapter over it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "parcours/referential/v1/referential.grpc.pb.h"
#include "platform/aip.h"
#include "platform/clock.h"
#include "platform/thread_pool.h"
#include "referential-svc/src/repository.h"

namespace parcours::referential {

struct ReferentialOptions {
  // A cached published tree is trusted for this long before its state (PUBLISHED -> RETIRED by
  // another replica) is re-read; the tree itself never changes.
  absl::Duration version_state_ttl = absl::Seconds(5);
  // Published versions kept in memory.
  int version_cache_entries = 2000;
};

class Referential {
 public:
  Referential(Repository& repository, const Clock& clock, aip::PageTokenCodec page_tokens,
              ReferentialOptions options = {});

  absl::StatusOr<pb::Certification> CreateCertification(const pb::CreateCertificationRequest& request);
  absl::StatusOr<pb::Certification> GetCertification(const pb::GetCertificationRequest& request);
  absl::StatusOr<pb::ListCertificationsResponse> ListCertifications(
      const pb::ListCertificationsRequest& request);
  absl::StatusOr<pb::Certification> UpdateCertification(const pb::UpdateCertificationRequest& request);
  absl::Status DeleteCertification(const pb::DeleteCertificationRequest& request);

  absl::StatusOr<pb::Version> CreateVersion(const pb::CreateVersionRequest& request);
  absl::StatusOr<pb::Version> GetVersion(const pb::GetVersionRequest& request);
  // The hot read path: the version already serialised. Published versions are cached with their
  // encodings, so a hit costs no copy and no serialisation.
  using Bytes = std::shared_ptr<const std::string>;
  absl::StatusOr<Bytes> GetVersionBytes(const pb::GetVersionRequest& request);
  // Never blocks: the bytes when the version is cached and fresh, nullopt when answering needs
  // the database (call GetVersionBytes from a thread that may block), or a validation error.
  absl::StatusOr<std::optional<Bytes>> TryGetVersionBytesFromCache(const pb::GetVersionRequest& request);
  absl::StatusOr<pb::ListVersionsResponse> ListVersions(const pb::ListVersionsRequest& request);
  absl::StatusOr<pb::Version> UpdateVersion(const pb::UpdateVersionRequest& request);
  absl::Status DeleteVersion(const pb::DeleteVersionRequest& request);
  absl::StatusOr<pb::Version> PublishVersion(const pb::PublishVersionRequest& request);
  absl::StatusOr<pb::Version> RetireVersion(const pb::RetireVersionRequest& request);

  // Loads a référentiel document (the seed's data file format): creates the certification, or
  // brings it to the document's fields when they differ; creates a version with the document's
  // tree unless the newest version already has it; publishes it when asked. Returns the
  // version's name.
  absl::StatusOr<std::string> LoadDocument(const pb::ReferentialDocument& document);

  // One fiche of France compétences' export (fc_export.h) dated `export_date`, checked whole
  // before anything is written (INVALID_ARGUMENT with the field paths): creates the
  // certification, or updates the `carried` fields (the Certification fields that export has)
  // when they differ, keeping the others, each certifier's principal id and, unless the export
  // carries it, its state (etag-checked), and records the export's date; gives it a DRAFT
  // version holding the fiche's tree (blocs and their texts, correspondences, attested
  // capabilities, the jury composition's text) when it has no version yet (and the fiche has
  // blocs, or is an RS, judged as a whole). When `tree_carried` (the XML's whole tree, not the
  // CSV's bloc titles), a re-import refreshes that DRAFT while nobody has edited it (the version
  // keeps its export's date until an edit; a draft the importer made before that, never updated
  // and with the importer's description, counts too), unless it came from a newer export.
  // Edited, published and later versions are curation's: a re-import leaves them alone.
  // An export older than the one the certification's fields came from writes nothing (`stale`):
  // it would bring back what a newer export replaced (a replaced fiche made active again).
  struct Imported {
    bool created = false;
    bool updated = false;
    bool stale = false;
    google::type::Date newer_export_date;  // when stale: the date of the export the fields came from
    std::string new_version;        // name of the DRAFT created, else empty
    std::string refreshed_version;  // name of the DRAFT whose tree the fiche replaced, else empty
  };
  // `certifier_state_carried`: the export says which certifiers are active (the XML does, the CSV
  // does not: a known certifier then keeps its stored state).
  absl::StatusOr<Imported> ImportFiche(const pb::ReferentialDocument& fiche, const std::vector<std::string>& carried,
                                       bool certifier_state_carried, bool tree_carried,
                                       const google::type::Date& export_date);

 private:
  struct CachedVersion {
    std::shared_ptr<const pb::Version> version;
    Bytes full;   // serialised VERSION_VIEW_FULL (and UNSPECIFIED)
    Bytes basic;  // serialised VERSION_VIEW_BASIC
    absl::Time checked;
  };
  // The certification named by `certification.code()`, created from it when absent, else with
  // its `fields` brought to the document's (see service.cc); `updated` when they differed.
  // With an `export_date` (an import), the certification records it, and `stale` is set (nothing
  // written) when its fields came from a newer export.
  absl::StatusOr<pb::Certification> Upsert(const pb::Certification& certification,
                                           const std::vector<std::string>& fields, bool certifier_state_carried,
                                           const google::type::Date* export_date, bool* created, bool* updated,
                                           bool* stale);
  // The certification named by `certification.code()`, created from it when absent.
  absl::StatusOr<pb::Certification> FindOrCreate(const pb::Certification& certification,
                                                 const google::type::Date* export_date, bool* created);
  // CreateCertification and UpdateCertification, also setting the output-only export_date when
  // `export_date` is given (the importer), clearing or keeping it when not (an API call).
  absl::StatusOr<pb::Certification> CreateCertificationAs(const pb::CreateCertificationRequest& request,
                                                          const google::type::Date* export_date);
  absl::StatusOr<pb::Certification> UpdateCertificationAs(const pb::UpdateCertificationRequest& request,
                                                          const google::type::Date* export_date);
  // CreateVersion, the new DRAFT recording `export_date` when given (the importer).
  absl::StatusOr<pb::Version> CreateVersionAs(const pb::CreateVersionRequest& request,
                                              const google::type::Date* export_date);
  // The newest version of `code` (FULL view), if it has any.
  absl::StatusOr<std::optional<pb::Version>> NewestVersion(const std::string& code);

  static CachedVersion Encode(std::shared_ptr<const pb::Version> version, absl::Time checked);
  absl::StatusOr<CachedVersion> CachedGetVersion(const std::string& code, int number);
  void CacheStore(const pb::Version& version);

  Repository& repository_;
  const Clock& clock_;
  aip::PageTokenCodec page_tokens_;
  ReferentialOptions options_;

  absl::Mutex cache_mu_;
  absl::flat_hash_map<std::string, CachedVersion> cache_ ABSL_GUARDED_BY(cache_mu_);
};

// The gRPC service over `logic`; GetVersion's cache misses run on `pool`.
std::unique_ptr<grpc::Service> NewGrpcService(Referential& logic, ThreadPool& pool);

}  // namespace parcours::referential
