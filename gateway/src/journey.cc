// OperatorService.GetBeneficiaryJourney: one of the operator's cases (cep-svc), and for each VAE
// outcome of it the candidacy's progress (evaluation-svc) with the référentiel's labels
// (referential-svc).
//
// Access: the case is read from cep-svc with the caller's principal: another operator's case is
// NOT_FOUND there, and any cep-svc failure fails the call with cep-svc's status. Only what that
// case links is read next, and a candidacy is shown only if it names the case back
// (Candidacy.cep_case, set by the certifier from the referral): the operator writes the case's
// link, so the link alone proves nothing; an unlinked candidacy is NOT_FOUND in `missing`, as a
// candidacy that does not exist. evaluation-svc scopes candidacies to certifiers and jury members, so
// the gateway reads the linked candidacy with its current deliberation (GetCandidacyProgress, one
// call) as "national", which evaluation-svc answers with its statistics view (no candidate
// identity, no free text: see evaluation.proto); referential-svc gets the operator's principal.
//
// Partial failure rule: the case is required; the VAE parts are optional. Each optional part is
// fetched in parallel (all outcomes at once; then version and certification together), under the
// caller's deadline capped at backends.part_deadline. A part that could not be read is listed in
// `missing` with the backend's code and message; the journey is never silently partial. A
// candidacy that could not be read also lists its jury result as missing; a candidacy without
// any deliberation yet has no jury result, which is not missing.
//
// Cache: the labels of a version out of DRAFT (immutable) and certification titles (1 min) are
// kept in the gateway's LabelCache (label_cache.h); on a hit the journey calls only cep-svc and
// evaluation-svc. A hit is not "missing" even with referential-svc down: the labels are known.
#include <algorithm>
#include <deque>
#include <memory>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gateway/src/composition.h"
#include "gateway/src/services.h"
#include "platform/aip.h"
#include "platform/errors.h"

namespace parcours::gateway {
namespace {

namespace cepv1 = ::parcours::cep::v1;
namespace ev = ::parcours::evaluation::v1;
namespace ref = ::parcours::referential::v1;

// A case may link many candidacies; each costs up to three backend calls.
constexpr int kMaxVaeOutcomes = 16;

struct VaePart {
  std::string candidacy;
  std::string version;        // from the candidacy
  std::string certification;  // certifications/{code}
  Part<ev::CandidacyProgress> progress_part;
  Part<ref::Version> version_part;
  Part<ref::Certification> certification_part;
  std::shared_ptr<const ref::Version> version_labels;  // set when version_part.status is OK
};

v1::MissingPart* AddMissing(v1::BeneficiaryJourney* out, v1::MissingPart::Part part, const std::string& resource,
                            const grpc::Status& status) {
  v1::MissingPart* m = out->add_missing();
  m->set_part(part);
  m->set_resource(resource);
  m->set_code(static_cast<google::rpc::Code>(status.error_code()));
  m->set_reason(status.error_message());
  return m;
}

class Journey final : public ComposedCall {
 public:
  Journey(Gateway& gw, grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
          v1::BeneficiaryJourney* response, Admission admission)
      : ComposedCall(gw, ctx, reactor, std::move(admission)), response_(response) {}

  void Start(const std::string& case_name) {
    get_case_.set_name(case_name);
    CallBackend(
        gw_.backends(), ctx_, *gw_.backends().cep, &cepv1::CepService::Stub::async::GetCase, &get_case_,
        response_->mutable_case_(), /*idempotent=*/true,
        [this] { return gw_.BackendContext(*ctx_, admission_, admission_.caller.principal); },
        [this](grpc::Status status) { OnCase(std::move(status)); });
  }

 private:
  void OnCase(grpc::Status status) {
    if (!status.ok()) {
      // cep-svc decides: NOT_FOUND for another operator's case, exactly as for a missing one.
      response_->Clear();
      End(status);
      return;
    }
    std::set<std::string> seen;
    int skipped = 0;
    for (const cepv1::Outcome& outcome : response_->case_().outcomes()) {
      if (outcome.kind() != cepv1::OUTCOME_KIND_VAE || outcome.candidacy().empty()) continue;
      if (!seen.insert(outcome.candidacy()).second) continue;
      if (static_cast<int>(vae_.size()) >= kMaxVaeOutcomes) {
        ++skipped;
        continue;
      }
      auto part = std::make_unique<VaePart>();
      part->candidacy = outcome.candidacy();
      vae_.push_back(std::move(part));
    }
    if (skipped > 0) {
      AddMissing(response_, v1::MissingPart::PART_CANDIDACY, "",
                 grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              absl::StrCat("the journey shows the first ", kMaxVaeOutcomes, " VAE outcomes; ", skipped,
                                           " more are not shown")));
    }
    std::vector<VaePart*> to_read;
    for (auto& part : vae_) {
      if (aip::ParseName("candidacies/{candidacy}", part->candidacy, "candidacy").ok()) {
        to_read.push_back(part.get());
      } else {
        part->progress_part.status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                                  "the case outcome links a malformed candidacy name");
        part->progress_part.attempted = true;
      }
    }
    {
      absl::MutexLock lock(&mu_);
      pending_ = static_cast<int>(to_read.size()) + 1;  // +1: this step's own hold
    }
    const Principal statistics_view{Principal::Kind::kNational, ""};
    for (VaePart* part : to_read) {
      ev::GetCandidacyProgressRequest* get = &progress_requests_.emplace_back();
      get->set_name(part->candidacy);
      Read(*gw_.backends().evaluation, &ev::EvaluationService::Stub::async::GetCandidacyProgress, statistics_view,
           get, &part->progress_part, [this, part] { OnCandidacy(part); });
    }
    Release();
  }

  // The names this file has had: the case, and at every former holder when it came by transfer
  // (a candidacy linked before the transfer names the case as it was then).
  bool NamesThisFile(const std::string& cep_case) const {
    const cepv1::Case& c = response_->case_();
    if (cep_case == c.name() || (c.has_received() && cep_case == c.received().from_case())) return true;
    const auto& former = c.received().former_cases();
    return std::find(former.begin(), former.end(), cep_case) != former.end();
  }

  void OnCandidacy(VaePart* part) {
    if (part->progress_part.status.ok() && !NamesThisFile(part->progress_part.response.candidacy().cep_case())) {
      // The operator wrote the outcome's link, the certifier the candidacy's: only a candidacy
      // that names this file back is shown. Any other is, to the operator, a candidacy that does
      // not exist (evaluation-svc's own answer for one), whatever its state.
      part->progress_part.response.Clear();
      part->progress_part.status = ToGrpcStatus(NotFound(part->candidacy));
    }
    if (part->progress_part.status.ok()) {
      const ev::Candidacy& c = part->progress_part.response.candidacy();
      auto segments = aip::ParseName("certifications/{certification}/versions/{version}", c.referential_version(),
                                     "referential_version");
      if (segments.ok()) {
        part->version = c.referential_version();
        part->certification = absl::StrCat("certifications/", segments->front());
        // A published version's labels never change, a certification title rarely: a hit in
        // the gateway's LabelCache (label_cache.h) spares the référentiel call.
        std::shared_ptr<const ref::Version> cached_version = gw_.labels().FindVersion(part->version);
        std::string cached_title;
        const bool title_hit = gw_.labels().FindTitle(part->certification, &cached_title);
        if (cached_version != nullptr) {
          part->version_labels = std::move(cached_version);
          part->version_part.status = grpc::Status::OK;
          part->version_part.attempted = true;
        }
        if (title_hit) {
          part->certification_part.response.set_title(cached_title);
          part->certification_part.status = grpc::Status::OK;
          part->certification_part.attempted = true;
        }
        ref::GetVersionRequest* get_version = nullptr;
        ref::GetCertificationRequest* get_certification = nullptr;
        {
          absl::MutexLock lock(&mu_);  // candidacies complete on several threads at once
          if (part->version_labels == nullptr) {
            ++pending_;
            get_version = &version_requests_.emplace_back();
          }
          if (!title_hit) {
            ++pending_;
            get_certification = &certification_requests_.emplace_back();
          }
        }
        if (get_version != nullptr) {
          get_version->set_name(part->version);
          get_version->set_view(ref::VERSION_VIEW_FULL);
          Read(*gw_.backends().referential, &ref::ReferentialService::Stub::async::GetVersion,
               admission_.caller.principal, get_version, &part->version_part, [this, part] {
                 if (part->version_part.status.ok()) {
                   part->version_labels = gw_.labels().StoreVersion(part->version_part.response);
                 }
                 Release();
               });
        }
        if (get_certification != nullptr) {
          get_certification->set_name(part->certification);
          Read(*gw_.backends().referential, &ref::ReferentialService::Stub::async::GetCertification,
               admission_.caller.principal, get_certification, &part->certification_part, [this, part] {
                 if (part->certification_part.status.ok()) {
                   gw_.labels().StoreTitle(part->certification, part->certification_part.response.title());
                 }
                 Release();
               });
        }
      }
    }
    Release();
  }

  void Release() {
    {
      absl::MutexLock lock(&mu_);
      if (--pending_ > 0) return;
    }
    Assemble();
    End(grpc::Status::OK);
  }

  void Assemble() {
    for (const auto& part : vae_) {
      v1::VaeJourney* j = response_->add_vae();
      j->set_candidacy(part->candidacy);
      const auto& progress = part->progress_part;
      if (!progress.status.ok()) {
        AddMissing(response_, v1::MissingPart::PART_CANDIDACY, part->candidacy, progress.status);
        // The same read brings the jury result: unknown too, unless the candidacy is gone.
        if (progress.status.error_code() != grpc::StatusCode::NOT_FOUND &&
            progress.status.error_code() != grpc::StatusCode::INVALID_ARGUMENT) {
          AddMissing(response_, v1::MissingPart::PART_JURY_RESULT, absl::StrCat(part->candidacy, "/deliberations/-"),
                     progress.status);
        }
        continue;
      }
      const ev::Candidacy& c = progress.response.candidacy();
      const ev::Deliberation& deliberation = progress.response.current_deliberation();
      j->set_state(c.state());
      j->set_referential_version(c.referential_version());
      j->set_certification_title(c.certification_title());
      std::set<std::string> acquired(c.held_blocs().begin(), c.held_blocs().end());
      if (deliberation.state() == ev::DELIBERATION_STATE_SEALED) {
        j->set_jury_proposal(deliberation.proposal());
        *j->mutable_jury_seal_time() = deliberation.seal_time();
        acquired.insert(deliberation.proposed_blocs().begin(), deliberation.proposed_blocs().end());
      }
      const std::set<std::string> targeted(c.target_blocs().begin(), c.target_blocs().end());
      const std::set<std::string> held(c.held_blocs().begin(), c.held_blocs().end());
      auto add_bloc = [&](const std::string& code, const ref::Bloc* labels) {
        v1::JourneyBloc* b = j->add_blocs();
        b->set_code(code);
        if (labels != nullptr) {
          b->set_title(labels->title());
          b->set_short_label(labels->short_label());
        }
        b->set_targeted(true);
        b->set_held(held.count(code) > 0);
        b->set_acquired(acquired.count(code) > 0);
      };
      if (part->version_part.status.ok() && part->version_labels != nullptr) {
        for (const ref::Bloc& bloc : part->version_labels->blocs()) {
          if (targeted.count(bloc.code()) > 0) add_bloc(bloc.code(), &bloc);
        }
      } else {
        for (const std::string& code : c.target_blocs()) add_bloc(code, nullptr);
        AddMissing(response_, v1::MissingPart::PART_REFERENTIAL,
                   part->version.empty() ? c.referential_version() : part->version, part->version_part.status);
      }
      if (part->certification_part.status.ok()) {
        j->set_certification_title(part->certification_part.response.title());
      } else if (part->version_part.status.ok()) {  // one marker is enough when both failed
        AddMissing(response_, v1::MissingPart::PART_REFERENTIAL, part->certification, part->certification_part.status);
      }
    }
  }

  v1::BeneficiaryJourney* response_;

  cepv1::GetCaseRequest get_case_;
  std::vector<std::unique_ptr<VaePart>> vae_;
  // Requests live until the journey ends; deques keep their addresses stable.
  std::deque<ev::GetCandidacyProgressRequest> progress_requests_;
  std::deque<ref::GetVersionRequest> version_requests_ ABSL_GUARDED_BY(mu_);
  std::deque<ref::GetCertificationRequest> certification_requests_ ABSL_GUARDED_BY(mu_);

  absl::Mutex mu_;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

grpc::ServerUnaryReactor* GetBeneficiaryJourney(Gateway& gateway, grpc::CallbackServerContext* ctx,
                                                const v1::GetBeneficiaryJourneyRequest* request,
                                                v1::BeneficiaryJourney* response) {
  static const std::string method = FullMethod("parcours.gateway.v1.OperatorService", "GetBeneficiaryJourney");
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::optional<Admission> admitted = gateway.AdmitValidated(ctx, reactor, method, request, [&](const Admission&) {
    return aip::ParseName("cases/{case}", request->case_(), "case").status();
  });
  if (!admitted) return reactor;
  auto* journey = new Journey(gateway, ctx, reactor, response, *std::move(admitted));
  journey->Start(request->case_());
  return reactor;
}

}  // namespace parcours::gateway
