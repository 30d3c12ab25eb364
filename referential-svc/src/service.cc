#include "referential-svc/src/service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "platform/dates.h"
#include "platform/errors.h"
#include "platform/idempotency.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "platform/grpc_reply.h"
#include "platform/principal.h"
#include "referential-svc/src/fc_export.h"
#include "referential-svc/src/validation.h"

namespace parcours::referential {
namespace {

constexpr char kCertificationPattern[] = "certifications/{certification}";
constexpr char kVersionPattern[] = "certifications/{certification}/versions/{version}";

const std::vector<std::string>& CertificationMaskPaths() {
  static const auto* paths = new std::vector<std::string>{
      "title", "abbreviation", "level", "certifiers", "registration_date", "registration_end_date",
      "issuance_deadline", "active", "predecessor_codes", "successor_codes", "registration_type",
      "nsf_codes", "formacodes", "rome_codes"};
  return *paths;
}

const std::vector<std::string>& VersionMaskPaths() {
  static const auto* paths = new std::vector<std::string>{
      "description", "blocs", "scales", "validation_rules", "correspondences", "attested_capabilities"};
  return *paths;
}

absl::StatusOr<std::string> ParseCertificationName(const std::string& name, const std::string& field) {
  auto parts = aip::ParseName(kCertificationPattern, name, field);
  if (!parts.ok()) return parts.status();
  return (*parts)[0];
}

struct VersionId {
  std::string code;
  int number;
};

absl::StatusOr<VersionId> ParseVersionName(const std::string& name, const std::string& field) {
  auto parts = aip::ParseName(kVersionPattern, name, field);
  if (!parts.ok()) return parts.status();
  int number = 0;
  if (!absl::SimpleAtoi((*parts)[1], &number) || number <= 0) {
    return InvalidArgument(std::string(field), "the version segment must be a positive number");
  }
  return VersionId{(*parts)[0], number};
}

// Copies one masked field of a certification (the mask paths are top-level fields).
void CopyCertificationField(const std::string& path, const pb::Certification& from, pb::Certification& to) {
  const google::protobuf::Descriptor* d = pb::Certification::descriptor();
  const google::protobuf::FieldDescriptor* field = d->FindFieldByName(path);
  const google::protobuf::Reflection* r = pb::Certification::GetReflection();
  r->ClearField(&to, field);
  if (field->is_repeated()) {
    for (int i = 0; i < r->FieldSize(from, field); ++i) {
      if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
        r->AddString(&to, field, r->GetRepeatedString(from, field, i));
      } else {
        r->AddMessage(&to, field)->CopyFrom(r->GetRepeatedMessage(from, field, i));
      }
    }
  } else if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
    if (r->HasField(from, field)) r->MutableMessage(&to, field)->CopyFrom(r->GetMessage(from, field));
  } else {
    switch (field->cpp_type()) {
      case google::protobuf::FieldDescriptor::CPPTYPE_STRING:
        r->SetString(&to, field, r->GetString(from, field));
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_BOOL:
        r->SetBool(&to, field, r->GetBool(from, field));
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_ENUM:
        r->SetEnumValue(&to, field, r->GetEnumValue(from, field));
        break;
      default:
        break;
    }
  }
}

void CopyVersionField(const std::string& path, const pb::Version& from, pb::Version& to) {
  if (path == "description") to.set_description(from.description());
  if (path == "blocs") *to.mutable_blocs() = from.blocs();
  if (path == "scales") *to.mutable_scales() = from.scales();
  if (path == "validation_rules") *to.mutable_validation_rules() = from.validation_rules();
  if (path == "correspondences") *to.mutable_correspondences() = from.correspondences();
  if (path == "attested_capabilities") to.set_attested_capabilities(from.attested_capabilities());
}

// The content of a version that publication freezes (what LoadDocument compares).
bool SameTree(const pb::Version& a, const pb::Version& b) {
  pb::Version x = a, y = b;
  ClearOutputFields(x);
  ClearOutputFields(y);
  x.clear_export_date();
  y.clear_export_date();
  return google::protobuf::util::MessageDifferencer::Equals(x, y);
}

// A DRAFT as an import made it, nobody having edited it since: one that records its export's
// date (UpdateVersion clears it), or one the importer made before versions recorded it (never
// updated since its creation, the importer's description).
bool ImportedUnedited(const pb::Version& v) {
  if (v.state() != pb::VERSION_STATE_DRAFT) return false;
  if (v.has_export_date()) return true;
  auto etag = aip::ParseEtag(v.etag(), "etag");
  return etag.ok() && etag->has_value() && **etag == 1 && v.description() == kImportedVersionDescription;
}

absl::Status NotDraft(const pb::Version& v) {
  return FailedPrecondition("VERSION_NOT_DRAFT", v.name(),
                            absl::StrCat(v.name(), " is ", pb::VersionState_Name(v.state()),
                                         ": a published version never changes; create a new version"));
}

absl::StatusOr<std::optional<int64_t>> Etag(const std::string& etag, const std::string& field) {
  return aip::ParseEtag(etag, field);
}

absl::StatusOr<pb::CertificationKind> ParseKind(const std::string& value) {
  pb::CertificationKind kind;
  if (pb::CertificationKind_Parse(absl::StrCat("CERTIFICATION_KIND_", value), &kind) ||
      pb::CertificationKind_Parse(std::string(value), &kind)) {
    if (kind != pb::CERTIFICATION_KIND_UNSPECIFIED) return kind;
  }
  return InvalidArgument("filter", absl::StrCat("kind must be CQP, RNCP or RS, not \"", value, "\""));
}

absl::StatusOr<pb::QualificationLevel> ParseLevel(const std::string& value) {
  pb::QualificationLevel level;
  if (pb::QualificationLevel_Parse(absl::StrCat("QUALIFICATION_LEVEL_", value), &level) ||
      pb::QualificationLevel_Parse(std::string(value), &level)) {
    if (level != pb::QUALIFICATION_LEVEL_UNSPECIFIED) return level;
  }
  return InvalidArgument("filter", absl::StrCat("level must be NONE or NIV3..NIV8, not \"", value, "\""));
}

}  // namespace

Referential::Referential(Repository& repository, const Clock& clock, aip::PageTokenCodec page_tokens,
                         ReferentialOptions options)
    : repository_(repository), clock_(clock), page_tokens_(std::move(page_tokens)), options_(options) {}

// --- Certifications ---------------------------------------------------------------------------

absl::StatusOr<pb::Certification> Referential::CreateCertification(
    const pb::CreateCertificationRequest& request) {
  return CreateCertificationAs(request, nullptr);
}

absl::StatusOr<pb::Certification> Referential::CreateCertificationAs(const pb::CreateCertificationRequest& request,
                                                                     const google::type::Date* export_date) {
  Violations v;
  if (!request.has_certification()) v.Add("certification", "is required");
  pb::Certification c = request.certification();
  // Output only: what an import records, never what a caller says.
  c.clear_export_date();
  if (export_date != nullptr) *c.mutable_export_date() = *export_date;
  CheckCertification(c, "certification", v);
  if (!c.name().empty() && c.name() != CertificationName(c.code())) {
    v.Add("certification.name", "must be empty or certifications/{code}");
  }
  if (absl::Status s = aip::CheckRequestId(request.request_id()); !s.ok()) return s;
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  IdempotencyKey key{"CreateCertification", request.request_id(), &request};
  return CreateOnceRacing(request.request_id(), [&] { return repository_.CreateCertification(c, key, clock_.Now()); });
}

absl::StatusOr<pb::Certification> Referential::GetCertification(const pb::GetCertificationRequest& request) {
  absl::StatusOr<std::string> code = ParseCertificationName(request.name(), "name");
  if (!code.ok()) return code.status();
  return repository_.GetCertification(*code);
}

absl::StatusOr<pb::ListCertificationsResponse> Referential::ListCertifications(
    const pb::ListCertificationsRequest& request) {
  if (absl::Status s = aip::PageSize(request.page_size()).status(); !s.ok()) return s;  // before the filter
  auto terms = aip::ParseFilter(request.filter(), {"kind=", "certifier=", "active=", "level=", "title:"});
  if (!terms.ok()) return terms.status();
  CertificationQuery query;
  for (const aip::FilterTerm& term : *terms) {
    if (term.field == "kind") {
      auto kind = ParseKind(term.value);
      if (!kind.ok()) return kind.status();
      query.kind = *kind;
    } else if (term.field == "level") {
      auto level = ParseLevel(term.value);
      if (!level.ok()) return level.status();
      query.level = *level;
    } else if (term.field == "active") {
      if (term.value != "true" && term.value != "false") {
        return InvalidArgument("filter", "active must be true or false");
      }
      query.active = term.value == "true";
    } else if (term.field == "certifier") {
      query.certifier = term.value;
    } else if (term.field == "title") {
      query.title_contains = term.value;
    }
  }
  const std::string scope = absl::StrCat("ListCertifications\n", request.filter());
  auto page = aip::Paginate<pb::Certification>(
      page_tokens_, scope, request.page_size(), request.page_token(),
      [&](const std::string& cursor, int limit) {
        query.after_code = cursor;
        query.limit = limit;
        return repository_.ListCertifications(query);
      },
      [](const pb::Certification& c) { return c.code(); });
  if (!page.ok()) return page.status();
  pb::ListCertificationsResponse response;
  for (pb::Certification& c : page->items) *response.add_certifications() = std::move(c);
  response.set_next_page_token(page->next_page_token);
  return response;
}

absl::StatusOr<pb::Certification> Referential::UpdateCertification(
    const pb::UpdateCertificationRequest& request) {
  return UpdateCertificationAs(request, nullptr);
}

absl::StatusOr<pb::Certification> Referential::UpdateCertificationAs(const pb::UpdateCertificationRequest& request,
                                                                     const google::type::Date* export_date) {
  const pb::Certification& patch = request.certification();
  absl::StatusOr<std::string> code = ParseCertificationName(patch.name(), "certification.name");
  if (!code.ok()) return code.status();
  for (const std::string& path : request.update_mask().paths()) {
    if (path == "code" || path == "kind" || path == "name") {
      return InvalidArgument("update_mask", absl::StrCat(path, " is immutable"));
    }
  }
  auto paths = aip::ResolveMask(request.update_mask(), CertificationMaskPaths(), patch);
  if (!paths.ok()) return paths.status();
  auto etag = Etag(patch.etag(), "certification.etag");
  if (!etag.ok()) return etag.status();
  return repository_.UpdateCertification(
      *code, *etag,
      [&](pb::Certification& stored) -> absl::Status {
        // Without a mask the fields set are the update: an identity field set to another value
        // is refused, not ignored.
        if (!patch.code().empty() && patch.code() != stored.code()) {
          return InvalidArgument("certification.code", "is immutable");
        }
        if (patch.kind() != pb::CERTIFICATION_KIND_UNSPECIFIED && patch.kind() != stored.kind()) {
          return InvalidArgument("certification.kind", "is immutable");
        }
        for (const std::string& path : *paths) CopyCertificationField(path, patch, stored);
        if (export_date != nullptr) *stored.mutable_export_date() = *export_date;
        Violations v;
        CheckCertification(stored, "certification", v);
        return v.ToStatus();
      },
      clock_.Now());
}

absl::Status Referential::DeleteCertification(const pb::DeleteCertificationRequest& request) {
  absl::StatusOr<std::string> code = ParseCertificationName(request.name(), "name");
  if (!code.ok()) return code.status();
  auto etag = Etag(request.etag(), "etag");
  if (!etag.ok()) return etag.status();
  return repository_.DeleteCertification(*code, *etag);
}

// --- Versions ---------------------------------------------------------------------------------

absl::StatusOr<pb::Version> Referential::CreateVersion(const pb::CreateVersionRequest& request) {
  return CreateVersionAs(request, nullptr);
}

absl::StatusOr<pb::Version> Referential::CreateVersionAs(const pb::CreateVersionRequest& request,
                                                         const google::type::Date* export_date) {
  absl::StatusOr<std::string> code = ParseCertificationName(request.parent(), "parent");
  if (!code.ok()) return code.status();
  if (absl::Status s = aip::CheckRequestId(request.request_id()); !s.ok()) return s;
  pb::Version version;
  version.set_description(request.version().description());
  *version.mutable_blocs() = request.version().blocs();
  *version.mutable_scales() = request.version().scales();
  if (request.version().has_validation_rules()) {
    *version.mutable_validation_rules() = request.version().validation_rules();
  }
  *version.mutable_correspondences() = request.version().correspondences();
  version.set_attested_capabilities(request.version().attested_capabilities());
  if (!request.source_version().empty()) {
    auto source = ParseVersionName(request.source_version(), "source_version");
    if (!source.ok()) return source.status();
    if (source->code != *code) {
      return InvalidArgument("source_version", "must be a version of the parent certification");
    }
    if (request.version().blocs_size() > 0 || request.version().scales_size() > 0 ||
        request.version().has_validation_rules() || request.version().correspondences_size() > 0) {
      return InvalidArgument("version", "must not carry a tree when source_version is set");
    }
    auto copied = repository_.GetVersion(source->code, source->number);
    if (!copied.ok()) return copied.status();
    std::string description = version.description();
    std::string attested_capabilities = version.attested_capabilities();
    version = *copied;
    version.set_description(description);
    // Given with the request, the revision's own; else the source's, as the rest of the tree.
    if (!attested_capabilities.empty()) version.set_attested_capabilities(attested_capabilities);
    version.clear_export_date();  // a revision is a curator's, not the export's
  }
  if (export_date != nullptr) *version.mutable_export_date() = *export_date;
  Violations v;
  CheckVersion(version, "version", v);
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  IdempotencyKey key{"CreateVersion", request.request_id(), &request};
  absl::StatusOr<pb::Version> created = repository_.CreateVersion(*code, version, key, clock_.Now());
  if (absl::IsAlreadyExists(created.status()) && !request.request_id().empty()) {
    return repository_.CreateVersion(*code, version, key, clock_.Now());
  }
  return created;
}

Referential::CachedVersion Referential::Encode(std::shared_ptr<const pb::Version> version, absl::Time checked) {
  CachedVersion entry{std::move(version), nullptr, nullptr, checked};
  entry.full = std::make_shared<const std::string>(entry.version->SerializeAsString());
  pb::Version basic = *entry.version;
  basic.clear_blocs();
  basic.clear_scales();
  basic.clear_correspondences();
  entry.basic = std::make_shared<const std::string>(basic.SerializeAsString());
  return entry;
}

absl::StatusOr<Referential::CachedVersion> Referential::CachedGetVersion(const std::string& code, int number) {
  const std::string name = VersionName(code, number);
  const absl::Time now = clock_.Now();
  std::optional<CachedVersion> cached;
  {
    absl::ReaderMutexLock lock(&cache_mu_);
    auto it = cache_.find(name);
    if (it != cache_.end()) {
      // RETIRED is final; a PUBLISHED tree is re-checked for retirement after the TTL.
      if (it->second.version->state() == pb::VERSION_STATE_RETIRED ||
          now - it->second.checked < options_.version_state_ttl) {
        return it->second;
      }
      cached = it->second;
    }
  }
  if (cached) {
    auto state = repository_.GetVersionState(code, number);
    if (!state.ok()) return state.status();
    if (state->first == cached->version->state() && state->second == cached->version->etag()) {
      absl::MutexLock lock(&cache_mu_);
      cache_[name].checked = now;
      return *cached;
    }
  }
  auto loaded = repository_.GetVersion(code, number);
  if (!loaded.ok()) return loaded.status();
  CachedVersion entry = Encode(std::make_shared<const pb::Version>(*std::move(loaded)), now);
  if (entry.version->state() != pb::VERSION_STATE_DRAFT) {
    absl::MutexLock lock(&cache_mu_);
    if (static_cast<int>(cache_.size()) >= options_.version_cache_entries) cache_.erase(cache_.begin());
    cache_[name] = entry;
  }
  return entry;
}

void Referential::CacheStore(const pb::Version& version) {
  absl::MutexLock lock(&cache_mu_);
  if (version.state() == pb::VERSION_STATE_DRAFT) {
    cache_.erase(version.name());
  } else if (cache_.contains(version.name())) {
    cache_[version.name()] = Encode(std::make_shared<const pb::Version>(version), clock_.Now());
  }
}

namespace {

struct VersionRequest {
  std::string code;
  int number;
  bool full;
};

absl::StatusOr<VersionRequest> CheckGetVersion(const pb::GetVersionRequest& request) {
  auto id = ParseVersionName(request.name(), "name");
  if (!id.ok()) return id.status();
  if (!pb::VersionView_IsValid(request.view())) {
    return InvalidArgument("view", "must be BASIC or FULL");
  }
  return VersionRequest{id->code, id->number, request.view() != pb::VERSION_VIEW_BASIC};
}

}  // namespace

absl::StatusOr<pb::Version> Referential::GetVersion(const pb::GetVersionRequest& request) {
  auto checked = CheckGetVersion(request);
  if (!checked.ok()) return checked.status();
  auto entry = CachedGetVersion(checked->code, checked->number);
  if (!entry.ok()) return entry.status();
  pb::Version out = *entry->version;
  if (!checked->full) {
    out.clear_blocs();
    out.clear_scales();
    out.clear_correspondences();
  }
  return out;
}

absl::StatusOr<Referential::Bytes> Referential::GetVersionBytes(const pb::GetVersionRequest& request) {
  auto checked = CheckGetVersion(request);
  if (!checked.ok()) return checked.status();
  auto entry = CachedGetVersion(checked->code, checked->number);
  if (!entry.ok()) return entry.status();
  return checked->full ? entry->full : entry->basic;
}

absl::StatusOr<std::optional<Referential::Bytes>> Referential::TryGetVersionBytesFromCache(
    const pb::GetVersionRequest& request) {
  auto checked = CheckGetVersion(request);
  if (!checked.ok()) return checked.status();
  const absl::Time now = clock_.Now();
  absl::ReaderMutexLock lock(&cache_mu_);
  auto it = cache_.find(request.name());
  if (it == cache_.end() || (it->second.version->state() != pb::VERSION_STATE_RETIRED &&
                             now - it->second.checked >= options_.version_state_ttl)) {
    return std::optional<Bytes>();
  }
  return std::optional<Bytes>(checked->full ? it->second.full : it->second.basic);
}

absl::StatusOr<pb::ListVersionsResponse> Referential::ListVersions(const pb::ListVersionsRequest& request) {
  absl::StatusOr<std::string> code = ParseCertificationName(request.parent(), "parent");
  if (!code.ok()) return code.status();
  if (!pb::VersionView_IsValid(request.view())) {
    return InvalidArgument("view", "must be BASIC or FULL");
  }
  const std::string scope = absl::StrCat("ListVersions\n", request.parent(), "\n", request.view());
  auto page = aip::Paginate<pb::Version>(
      page_tokens_, scope, request.page_size(), request.page_token(),
      [&](const std::string& cursor, int limit) -> absl::StatusOr<std::vector<pb::Version>> {
        int before = 0;
        if (!cursor.empty() && !absl::SimpleAtoi(cursor, &before)) {
          return InvalidArgument("page_token", "is not a token of this list");
        }
        return repository_.ListVersions(*code, before, limit, request.view() == pb::VERSION_VIEW_FULL);
      },
      [](const pb::Version& v) { return v.name().substr(v.name().rfind('/') + 1); });
  if (!page.ok()) return page.status();
  pb::ListVersionsResponse response;
  for (pb::Version& v : page->items) *response.add_versions() = std::move(v);
  response.set_next_page_token(page->next_page_token);
  return response;
}

absl::StatusOr<pb::Version> Referential::UpdateVersion(const pb::UpdateVersionRequest& request) {
  const pb::Version& patch = request.version();
  auto id = ParseVersionName(patch.name(), "version.name");
  if (!id.ok()) return id.status();
  auto paths = aip::ResolveMask(request.update_mask(), VersionMaskPaths(), patch);
  if (!paths.ok()) return paths.status();
  auto etag = Etag(patch.etag(), "version.etag");
  if (!etag.ok()) return etag.status();
  Violations v;
  CheckVersion(patch, "version", v);
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  auto updated = repository_.UpdateVersion(
      id->code, id->number, *etag,
      [&](pb::Version& stored) -> absl::Status {
        if (stored.state() != pb::VERSION_STATE_DRAFT) return NotDraft(stored);
        for (const std::string& path : *paths) CopyVersionField(path, patch, stored);
        stored.clear_export_date();  // edited: no longer the export's alone, a re-import leaves it
        return absl::OkStatus();
      },
      clock_.Now());
  return updated;
}

absl::Status Referential::DeleteVersion(const pb::DeleteVersionRequest& request) {
  auto id = ParseVersionName(request.name(), "name");
  if (!id.ok()) return id.status();
  auto etag = Etag(request.etag(), "etag");
  if (!etag.ok()) return etag.status();
  return repository_.DeleteVersion(id->code, id->number, *etag);
}

absl::StatusOr<pb::Version> Referential::PublishVersion(const pb::PublishVersionRequest& request) {
  auto id = ParseVersionName(request.name(), "name");
  if (!id.ok()) return id.status();
  auto etag = Etag(request.etag(), "etag");
  if (!etag.ok()) return etag.status();
  auto certification = repository_.GetCertification(id->code);
  if (!certification.ok()) return certification.status();
  auto published = repository_.UpdateVersion(
      id->code, id->number, *etag,
      [&](pb::Version& stored) -> absl::Status {
        if (stored.state() != pb::VERSION_STATE_DRAFT) return NotDraft(stored);
        std::vector<PreconditionViolation> violations =
            PublicationViolations(stored, certification->kind(), stored.name());
        if (!violations.empty()) return FailedPrecondition(std::move(violations));
        stored.set_state(pb::VERSION_STATE_PUBLISHED);
        return absl::OkStatus();
      },
      clock_.Now());
  if (published.ok()) CacheStore(*published);
  return published;
}

absl::StatusOr<pb::Version> Referential::RetireVersion(const pb::RetireVersionRequest& request) {
  auto id = ParseVersionName(request.name(), "name");
  if (!id.ok()) return id.status();
  auto etag = Etag(request.etag(), "etag");
  if (!etag.ok()) return etag.status();
  auto retired = repository_.UpdateVersion(
      id->code, id->number, *etag,
      [&](pb::Version& stored) -> absl::Status {
        if (stored.state() != pb::VERSION_STATE_PUBLISHED) {
          return FailedPrecondition("VERSION_NOT_PUBLISHED", stored.name(),
                                    absl::StrCat(stored.name(), " is ", pb::VersionState_Name(stored.state()),
                                                 ": only a PUBLISHED version can be retired"));
        }
        stored.set_state(pb::VERSION_STATE_RETIRED);
        return absl::OkStatus();
      },
      clock_.Now());
  if (retired.ok()) CacheStore(*retired);
  return retired;
}

absl::StatusOr<pb::Certification> Referential::FindOrCreate(const pb::Certification& certification,
                                                             const google::type::Date* export_date, bool* created) {
  pb::GetCertificationRequest get;
  get.set_name(CertificationName(certification.code()));
  absl::StatusOr<pb::Certification> existing = GetCertification(get);
  *created = false;
  if (!absl::IsNotFound(existing.status())) return existing;
  pb::CreateCertificationRequest create;
  *create.mutable_certification() = certification;
  existing = CreateCertificationAs(create, export_date);
  *created = existing.ok();
  return existing;
}

absl::StatusOr<std::optional<pb::Version>> Referential::NewestVersion(const std::string& code) {
  pb::ListVersionsRequest list;
  list.set_parent(CertificationName(code));
  list.set_page_size(1);
  list.set_view(pb::VERSION_VIEW_FULL);
  auto newest = ListVersions(list);
  if (!newest.ok()) return newest.status();
  if (newest->versions_size() == 0) return std::nullopt;
  return newest->versions(0);
}

absl::StatusOr<pb::Certification> Referential::Upsert(const pb::Certification& certification,
                                                       const std::vector<std::string>& fields,
                                                       bool certifier_state_carried,
                                                       const google::type::Date* export_date, bool* created,
                                                       bool* updated, bool* stale) {
  *updated = false;
  *stale = false;
  absl::StatusOr<pb::Certification> existing = FindOrCreate(certification, export_date, created);
  if (!existing.ok() || *created) return existing;
  // Fields a newer export set are not taken back to an older one's (the update below is
  // etag-checked: a concurrent import of a newer export in between makes it ABORTED).
  if (export_date != nullptr && DateKey(existing->export_date()) > DateKey(*export_date)) {
    *stale = true;
    return existing;
  }
  // The stored certification with `fields` taken from the document; the others (set through the
  // API, or by another source) stay. A certifier keeps the id it acts under when the document
  // names none or only its SIRET (the importers' default) and France compétences gave it another.
  pb::Certification wanted = *existing;
  pb::Certification from_document = certification;
  std::vector<const google::protobuf::FieldDescriptor*> selected;
  for (const std::string& path : fields) {
    if (const auto* f = pb::Certification::descriptor()->FindFieldByName(path)) selected.push_back(f);
  }
  pb::Certification::GetReflection()->SwapFields(&wanted, &from_document, selected);
  for (pb::Certifier& c : *wanted.mutable_certifiers()) {
    for (const pb::Certifier& before : existing->certifiers()) {
      const bool same = c.siret().empty() ? before.siret().empty() && before.name() == c.name()
                                          : before.siret() == c.siret();
      if (!same) continue;
      if (!before.principal_id().empty() && (c.principal_id().empty() || c.principal_id() == c.siret())) {
        c.set_principal_id(before.principal_id());
      }
      // A document without the certifiers' state (the CSV lists them all as current) does not
      // switch back on one made inactive by another source or through the API.
      if (!certifier_state_carried) c.set_active(before.active());
    }
  }
  const bool changed = !google::protobuf::util::MessageDifferencer::Equals(*existing, wanted);
  // The same fields confirmed by a newer export: only the date is recorded (not an update).
  const bool newer = export_date != nullptr && DateKey(existing->export_date()) != DateKey(*export_date);
  if (!changed && !newer) return existing;
  pb::UpdateCertificationRequest update;  // with the stored etag: a concurrent edit is ABORTED
  *update.mutable_certification() = wanted;
  for (const auto* f : selected) update.mutable_update_mask()->add_paths(f->name());
  existing = UpdateCertificationAs(update, export_date);
  *updated = existing.ok() && changed;
  return existing;
}

absl::StatusOr<std::string> Referential::LoadDocument(const pb::ReferentialDocument& document) {
  const std::string code = document.certification().code();
  bool created = false, updated = false, stale = false;
  // The document is the source of the certification: every field is brought to it.
  if (auto c = Upsert(document.certification(), CertificationMaskPaths(), /*certifier_state_carried=*/true,
                      /*export_date=*/nullptr, &created, &updated, &stale);
      !c.ok()) {
    return c.status();
  }
  auto newest = NewestVersion(code);
  if (!newest.ok()) return newest.status();
  pb::Version version;
  if (newest->has_value() && SameTree(**newest, document.version())) {
    version = **newest;
  } else {
    pb::CreateVersionRequest create;
    create.set_parent(CertificationName(code));
    *create.mutable_version() = document.version();
    auto created = CreateVersion(create);
    if (!created.ok()) return created.status();
    version = *created;
  }
  if (document.publish() && version.state() == pb::VERSION_STATE_DRAFT) {
    pb::PublishVersionRequest publish;
    publish.set_name(version.name());
    publish.set_etag(version.etag());
    auto published = PublishVersion(publish);
    if (!published.ok()) return published.status();
  }
  return version.name();
}

absl::StatusOr<Referential::Imported> Referential::ImportFiche(const pb::ReferentialDocument& fiche,
                                                              const std::vector<std::string>& carried,
                                                              bool certifier_state_carried, bool tree_carried,
                                                              const google::type::Date& export_date) {
  const std::string code = fiche.certification().code();
  const bool has_tree =
      fiche.version().blocs_size() > 0 || fiche.certification().kind() == pb::CERTIFICATION_KIND_RS;
  // The whole fiche is checked before anything is written: a refused fiche leaves nothing behind.
  Violations v;
  CheckCertification(fiche.certification(), "certification", v);
  if (has_tree) CheckVersion(fiche.version(), "version", v);
  if (DateKey(export_date) == 0) {
    v.Add("export_date", "is required: the date of the export the fiche comes from");
  } else {
    CheckDate(export_date, "export_date", v);
  }
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;

  Imported out;
  absl::StatusOr<pb::Certification> existing = Upsert(fiche.certification(), carried, certifier_state_carried,
                                                      &export_date, &out.created, &out.updated, &out.stale);
  if (!existing.ok()) return existing.status();
  if (out.stale) {
    out.newer_export_date = existing->export_date();
    return out;
  }

  if (!has_tree) return out;
  auto newest = NewestVersion(code);
  if (!newest.ok()) return newest.status();
  if (!newest->has_value()) {
    pb::CreateVersionRequest create;
    create.set_parent(CertificationName(code));
    *create.mutable_version() = fiche.version();
    auto created = CreateVersionAs(create, &export_date);
    if (!created.ok()) return created.status();
    out.new_version = created->name();
    return out;
  }
  // The newest version is refreshed only while it is the import's own DRAFT, untouched, from
  // this export or an older one, and by an export that carries the whole tree (the CSV has only
  // the blocs' titles: refreshing from it would drop the XML's texts).
  const pb::Version& draft = **newest;
  if (!tree_carried || !ImportedUnedited(draft) || DateKey(draft.export_date()) > DateKey(export_date)) return out;
  const bool tree_changed = !SameTree(draft, fiche.version());
  if (!tree_changed && DateKey(draft.export_date()) == DateKey(export_date)) return out;
  auto id = ParseVersionName(draft.name(), "version.name");
  if (!id.ok()) return id.status();
  auto etag = Etag(draft.etag(), "version.etag");
  if (!etag.ok()) return etag.status();
  auto refreshed = repository_.UpdateVersion(  // etag-checked: an edit in between wins (ABORTED)
      id->code, id->number, *etag,
      [&](pb::Version& stored) -> absl::Status {
        if (!ImportedUnedited(stored)) return NotDraft(stored);
        // The whole tree becomes the fiche's (rules stay absent when it has none).
        pb::Version tree = fiche.version();
        ClearOutputFields(tree);
        stored.clear_description();
        stored.clear_blocs();
        stored.clear_scales();
        stored.clear_validation_rules();
        stored.clear_correspondences();
        stored.clear_attested_capabilities();
        stored.MergeFrom(tree);
        *stored.mutable_export_date() = export_date;
        return absl::OkStatus();
      },
      clock_.Now());
  if (!refreshed.ok()) return refreshed.status();
  if (tree_changed) out.refreshed_version = refreshed->name();
  return out;
}

// --- gRPC adapter -----------------------------------------------------------------------------

namespace {

// A ByteBuffer over the cached encoding, without copying it: the slice keeps the string alive.
grpc::ByteBuffer SharedBuffer(const Referential::Bytes& bytes) {
  auto* hold = new Referential::Bytes(bytes);
  grpc::Slice slice(
      const_cast<char*>((*hold)->data()), (*hold)->size(),
      [](void* p) { delete static_cast<Referential::Bytes*>(p); }, hold);
  return grpc::ByteBuffer(&slice, 1);
}

// The référentiels are France compétences' to change: a write needs the national principal the
// gateway forwards (a backend re-checks scope, whoever reaches it); reads are open to every
// caller, evaluation-svc's included.
absl::Status NationalWrite(const grpc::ServerContext& ctx) {
  absl::StatusOr<Principal> p = PrincipalOf(ctx);
  if (!p.ok()) return p.status();
  return NationalOnly(*p, "change référentiels");
}

// Every method on the sync API (they block on the database), except GetVersion: it runs on the
// callback API with raw bytes, so a cache hit is answered in the polling thread with the cached
// encoding; a miss is handed to `pool` (callback reactions must not block).
using GetVersionOnCallbackApi =
    pb::ReferentialService::WithRawCallbackMethod_GetVersion<pb::ReferentialService::Service>;

class GrpcService final : public GetVersionOnCallbackApi {
 public:
  GrpcService(Referential& logic, ThreadPool& pool) : logic_(logic), pool_(pool) {}
  using Ctx = grpc::ServerContext;

  grpc::ServerUnaryReactor* GetVersion(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
                                       grpc::ByteBuffer* response) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    pb::GetVersionRequest request;
    grpc::ByteBuffer copy(*raw);  // Deserialize consumes its buffer; copying shares the slices
    if (!grpc::SerializationTraits<pb::GetVersionRequest>::Deserialize(&copy, &request).ok()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request is not a GetVersionRequest"));
      return reactor;
    }
    absl::StatusOr<std::optional<Referential::Bytes>> hit = logic_.TryGetVersionBytesFromCache(request);
    if (!hit.ok()) {
      reactor->Finish(Reply(hit.status()));
    } else if (hit->has_value()) {
      *response = SharedBuffer(**hit);
      reactor->Finish(grpc::Status::OK);
    } else {
      pool_.Schedule([this, request = std::move(request), reactor, response] {
        absl::StatusOr<Referential::Bytes> bytes = logic_.GetVersionBytes(request);
        if (!bytes.ok()) {
          reactor->Finish(Reply(bytes.status()));
          return;
        }
        *response = SharedBuffer(*bytes);
        reactor->Finish(grpc::Status::OK);
      });
    }
    return reactor;
  }

  grpc::Status CreateCertification(Ctx* ctx, const pb::CreateCertificationRequest* r, pb::Certification* out) override {
    if (absl::Status s = NationalWrite(*ctx); !s.ok()) return Reply(s);
    return Reply(logic_.CreateCertification(*r), out);
  }
  grpc::Status GetCertification(Ctx*, const pb::GetCertificationRequest* r, pb::Certification* out) override {
    return Reply(logic_.GetCertification(*r), out);
  }
  grpc::Status ListCertifications(Ctx*, const pb::ListCertificationsRequest* r,
                                  pb::ListCertificationsResponse* out) override {
    return Reply(logic_.ListCertifications(*r), out);
  }
  grpc::Status UpdateCertification(Ctx* ctx, const pb::UpdateCertificationRequest* r, pb::Certification* out) override {
    if (absl::Status s = NationalWrite(*ctx); !s.ok()) return Reply(s);
    return Reply(logic_.UpdateCertification(*r), out);
  }
  grpc::Status DeleteCertification(Ctx* ctx, const pb::DeleteCertificationRequest* r,
                                   google::protobuf::Empty*) override {
    if (absl::Status s = NationalWrite(*ctx); !s.ok()) return Reply(s);
    return Reply(logic_.DeleteCertification(*r));
  }
  grpc::Status CreateVersion(Ctx* ctx, const pb::CreateVersionRequest* r, pb::Version* out) override {
    if (absl::Status s = NationalWrite(*ctx); !s.ok()) return Reply(s);
    return Reply(logic_.CreateVersion(*r), out);
  }
  grpc::Status ListVersions(Ctx*, const pb::ListVersionsRequest* r, pb::ListVersionsResponse* out) override {
    return Reply(logic_.ListVersions(*r), out);
  }
  grpc::Status UpdateVersion(Ctx* ctx, const pb::UpdateVersionRequest* r, pb::Version* out) override {
    if (absl::Status s = NationalWrite(*ctx); !s.ok()) return Reply(s);
    return Reply(logic_.UpdateVersion(*r), out);
  }
  grpc::Status DeleteVersion(Ctx* ctx, const pb::DeleteVersionRequest* r, google::protobuf::Empty*) override {
    if (absl::Status s = NationalWrite(*ctx); !s.ok()) return Reply(s);
    return Reply(logic_.DeleteVersion(*r));
  }
  grpc::Status PublishVersion(Ctx* ctx, const pb::PublishVersionRequest* r, pb::Version* out) override {
    if (absl::Status s = NationalWrite(*ctx); !s.ok()) return Reply(s);
    return Reply(logic_.PublishVersion(*r), out);
  }
  grpc::Status RetireVersion(Ctx* ctx, const pb::RetireVersionRequest* r, pb::Version* out) override {
    if (absl::Status s = NationalWrite(*ctx); !s.ok()) return Reply(s);
    return Reply(logic_.RetireVersion(*r), out);
  }

 private:
  Referential& logic_;
  ThreadPool& pool_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewGrpcService(Referential& logic, ThreadPool& pool) {
  return std::make_unique<GrpcService>(logic, pool);
}

}  // namespace parcours::referential
