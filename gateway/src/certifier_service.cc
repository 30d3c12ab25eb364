// CertifierService: certifiers and jury members. Every method is 1:1 with a backend method;
// evaluation-svc scopes each call to the forwarded principal.
#include "gateway/src/services.h"
#include "parcours/gateway/v1/certifier.grpc.pb.h"

namespace parcours::gateway {
namespace {

namespace ref = ::parcours::referential::v1;
namespace ev = ::parcours::evaluation::v1;
using Ref = ref::ReferentialService;
using Eval = ev::EvaluationService;

class CertifierServiceImpl final : public v1::CertifierService::CallbackService {
 public:
  using Self = CertifierServiceImpl;
  explicit CertifierServiceImpl(Gateway& gw) : gw_(gw) {
    // Reads: the backend's reply is passed through undecoded (gateway.h).
    PARCOURS_GATEWAY_FORWARD_RAW(GetCertification, ref::GetCertificationRequest, ref::Certification, referential, Ref);
    PARCOURS_GATEWAY_FORWARD_RAW(ListCertifications, ref::ListCertificationsRequest, ref::ListCertificationsResponse, referential, Ref);
    PARCOURS_GATEWAY_FORWARD_RAW(GetVersion, ref::GetVersionRequest, ref::Version, referential, Ref);
    PARCOURS_GATEWAY_FORWARD_RAW(ListVersions, ref::ListVersionsRequest, ref::ListVersionsResponse, referential, Ref);
  }
  static constexpr char kService[] = "parcours.gateway.v1.CertifierService";

  PARCOURS_GATEWAY_FORWARD(CreateCandidacy, ev::CreateCandidacyRequest, ev::Candidacy, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(GetCandidacy, ev::GetCandidacyRequest, ev::Candidacy, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(ListCandidacies, ev::ListCandidaciesRequest, ev::ListCandidaciesResponse, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(RequestAdmissibility, ev::RequestAdmissibilityRequest, ev::Candidacy, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(DecideAdmissibility, ev::DecideAdmissibilityRequest, ev::Candidacy, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(FileDossier, ev::FileDossierRequest, ev::Candidacy, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(WithdrawCandidacy, ev::WithdrawCandidacyRequest, ev::Candidacy, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(IssueCertificate, ev::IssueCertificateRequest, ev::Candidacy, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(CreateJurySession, ev::CreateJurySessionRequest, ev::JurySession, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(GetJurySession, ev::GetJurySessionRequest, ev::JurySession, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(ListJurySessions, ev::ListJurySessionsRequest, ev::ListJurySessionsResponse, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(UpdateJurySession, ev::UpdateJurySessionRequest, ev::JurySession, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(ScheduleCandidacy, ev::ScheduleCandidacyRequest, ev::JurySession, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(ConfirmPreparation, ev::ConfirmPreparationRequest, ev::JurySession, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(StartJurySession, ev::StartJurySessionRequest, ev::JurySession, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(RecordPassage, ev::RecordPassageRequest, ev::JurySession, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(GetSessionReport, ev::GetSessionReportRequest, ev::SessionReport, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(SubmitScoreSheet, ev::SubmitScoreSheetRequest, ev::ScoreSheet, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(GetScoreSheet, ev::GetScoreSheetRequest, ev::ScoreSheet, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(OpenDeliberation, ev::OpenDeliberationRequest, ev::Deliberation, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(GetDeliberation, ev::GetDeliberationRequest, ev::Deliberation, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(RecordDecision, ev::RecordDecisionRequest, ev::Deliberation, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(SignDeliberation, ev::SignDeliberationRequest, ev::Deliberation, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(RevokeDeliberation, ev::RevokeDeliberationRequest, ev::Deliberation, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(ListAcquiredBlocs, ev::ListAcquiredBlocsRequest, ev::ListAcquiredBlocsResponse, evaluation, Eval)
  PARCOURS_GATEWAY_FORWARD(RenderSynthesisGrid, ev::RenderSynthesisGridRequest, ev::Document, evaluation, Eval)


 private:
  Gateway& gw_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewCertifierService(Gateway& gateway) {
  return std::make_unique<CertifierServiceImpl>(gateway);
}

}  // namespace parcours::gateway
