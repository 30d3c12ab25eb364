// evaluation-svc's logic (principal + request in, resource or domain error out; no gRPC types)
// and the thin gRPC adapter over it.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "parcours/evaluation/v1/evaluation.grpc.pb.h"
#include "platform/aip.h"
#include "platform/clock.h"
#include "platform/principal.h"
#include "evaluation-svc/src/referential_client.h"
#include "evaluation-svc/src/repository.h"

namespace parcours::evaluation {

struct EvaluationOptions {
  int default_divergence_gap = 20;
};

class Evaluation {
 public:
  Evaluation(EvaluationRepository& repository, ReferentialClient& referential, const Clock& clock,
             aip::PageTokenCodec page_tokens, EvaluationOptions options = {});

  using P = Principal;
  absl::StatusOr<pb::Candidacy> CreateCandidacy(const P& p, const pb::CreateCandidacyRequest& r);
  absl::StatusOr<pb::Candidacy> GetCandidacy(const P& p, const pb::GetCandidacyRequest& r);
  absl::StatusOr<pb::CandidacyProgress> GetCandidacyProgress(const P& p, const pb::GetCandidacyProgressRequest& r);
  absl::StatusOr<pb::ListCandidaciesResponse> ListCandidacies(const P& p, const pb::ListCandidaciesRequest& r);
  absl::StatusOr<pb::Candidacy> RequestAdmissibility(const P& p, const pb::RequestAdmissibilityRequest& r);
  absl::StatusOr<pb::Candidacy> DecideAdmissibility(const P& p, const pb::DecideAdmissibilityRequest& r);
  absl::StatusOr<pb::Candidacy> FileDossier(const P& p, const pb::FileDossierRequest& r);
  absl::StatusOr<pb::Candidacy> WithdrawCandidacy(const P& p, const pb::WithdrawCandidacyRequest& r);
  absl::StatusOr<pb::Candidacy> IssueCertificate(const P& p, const pb::IssueCertificateRequest& r);

  absl::StatusOr<pb::JurySession> CreateJurySession(const P& p, const pb::CreateJurySessionRequest& r);
  absl::StatusOr<pb::JurySession> GetJurySession(const P& p, const pb::GetJurySessionRequest& r);
  absl::StatusOr<pb::ListJurySessionsResponse> ListJurySessions(const P& p, const pb::ListJurySessionsRequest& r);
  absl::StatusOr<pb::JurySession> UpdateJurySession(const P& p, const pb::UpdateJurySessionRequest& r);
  absl::StatusOr<pb::JurySession> ScheduleCandidacy(const P& p, const pb::ScheduleCandidacyRequest& r);
  absl::StatusOr<pb::JurySession> ConfirmPreparation(const P& p, const pb::ConfirmPreparationRequest& r);
  absl::StatusOr<pb::JurySession> StartJurySession(const P& p, const pb::StartJurySessionRequest& r);
  absl::StatusOr<pb::JurySession> RecordPassage(const P& p, const pb::RecordPassageRequest& r);
  absl::StatusOr<pb::SessionReport> GetSessionReport(const P& p, const pb::GetSessionReportRequest& r);

  absl::StatusOr<pb::ScoreSheet> SubmitScoreSheet(const P& p, const pb::SubmitScoreSheetRequest& r);
  absl::StatusOr<pb::ScoreSheet> GetScoreSheet(const P& p, const pb::GetScoreSheetRequest& r);

  absl::StatusOr<pb::Deliberation> OpenDeliberation(const P& p, const pb::OpenDeliberationRequest& r);
  absl::StatusOr<pb::Deliberation> GetDeliberation(const P& p, const pb::GetDeliberationRequest& r);
  absl::StatusOr<pb::Deliberation> RecordDecision(const P& p, const pb::RecordDecisionRequest& r);
  absl::StatusOr<pb::Deliberation> SignDeliberation(const P& p, const pb::SignDeliberationRequest& r);
  absl::StatusOr<pb::Deliberation> RevokeDeliberation(const P& p, const pb::RevokeDeliberationRequest& r);

  absl::StatusOr<pb::ListAcquiredBlocsResponse> ListAcquiredBlocs(const P& p, const pb::ListAcquiredBlocsRequest& r);
  absl::StatusOr<pb::Document> RenderSynthesisGrid(const P& p, const pb::RenderSynthesisGridRequest& r);

  // National only: VAE results per certification and bloc over the current sealed results.
  absl::StatusOr<pb::OutcomeStatistics> GetOutcomeStatistics(const P& p, const pb::GetOutcomeStatisticsRequest& r);

 private:
  struct Access;
  using CandidacyChange = std::function<absl::Status(pb::Candidacy&, EvaluationTx&)>;
  // Reads the candidacy in a transaction, checks the caller's scope and the etag, applies the
  // change, writes it back and audits it.
  absl::StatusOr<pb::Candidacy> ChangeCandidacy(const P& p, const std::string& name, const std::string& etag,
                                                const std::string& action, const CandidacyChange& change);
  using SessionChange = std::function<absl::Status(pb::JurySession&, EvaluationTx&)>;
  // Who may change a session besides its certifier.
  enum class Who { kCertifier, kCertifierOrPresident, kMember };
  // The request's field paths of the session's name and etag (empty for a request without
  // one), which INVALID_ARGUMENT names.
  struct SessionFields {
    const char* name;
    const char* etag;
  };
  // `audit_detail`, when given, is the audit row's detail as `change` left it.
  absl::StatusOr<pb::JurySession> ChangeSession(const P& p, const std::string& name, const std::string& etag,
                                                const SessionFields& fields, const std::string& action, Who who,
                                                const SessionChange& change,
                                                const std::string* audit_detail = nullptr);
  // What an etag read before refuses: any change of the deliberation, or only a decision recorded
  // since (a signature: the other members' signatures do not change what the member read).
  enum class EtagCovers { kDeliberation, kDecision };
  // `etag` (may be empty): the deliberation's version the caller read; ABORTED if what it covers
  // moved on.
  absl::StatusOr<pb::Deliberation> CurrentRound(const P& p, const std::string& deliberation_name,
                                                const std::string& etag, EtagCovers covers, const std::string& action,
                                                const std::function<absl::Status(pb::Deliberation&, pb::Candidacy&,
                                                                                 const pb::JurySession&,
                                                                                 EvaluationTx&)>& change);

  EvaluationRepository& repository_;
  ReferentialClient& referential_;
  const Clock& clock_;
  aip::PageTokenCodec page_tokens_;
  EvaluationOptions options_;
};

std::unique_ptr<grpc::Service> NewGrpcService(Evaluation& logic);

}  // namespace parcours::evaluation
