// NationalService: France compétences. Every method is 1:1 with a backend method but
// GetNationalDashboard (dashboard.cc).
#include "gateway/src/services.h"
#include "parcours/gateway/v1/national.grpc.pb.h"

namespace parcours::gateway {
namespace {

namespace ref = ::parcours::referential::v1;
namespace cepv1 = ::parcours::cep::v1;
namespace evalv1 = ::parcours::evaluation::v1;
using Ref = ref::ReferentialService;
using Cep = cepv1::CepService;
using Eval = evalv1::EvaluationService;
using Empty = google::protobuf::Empty;

class NationalServiceImpl final : public v1::NationalService::CallbackService {
 public:
  using Self = NationalServiceImpl;
  explicit NationalServiceImpl(Gateway& gw) : gw_(gw) {
    // Reads: the backend's reply is passed through undecoded (gateway.h).
    PARCOURS_GATEWAY_FORWARD_RAW(GetCertification, ref::GetCertificationRequest, ref::Certification, referential, Ref);
    PARCOURS_GATEWAY_FORWARD_RAW(ListCertifications, ref::ListCertificationsRequest, ref::ListCertificationsResponse, referential, Ref);
    PARCOURS_GATEWAY_FORWARD_RAW(GetVersion, ref::GetVersionRequest, ref::Version, referential, Ref);
    PARCOURS_GATEWAY_FORWARD_RAW(ListVersions, ref::ListVersionsRequest, ref::ListVersionsResponse, referential, Ref);
  }
  static constexpr char kService[] = "parcours.gateway.v1.NationalService";

  PARCOURS_GATEWAY_FORWARD(CreateCertification, ref::CreateCertificationRequest, ref::Certification, referential, Ref)
  PARCOURS_GATEWAY_FORWARD(UpdateCertification, ref::UpdateCertificationRequest, ref::Certification, referential, Ref)
  PARCOURS_GATEWAY_FORWARD(DeleteCertification, ref::DeleteCertificationRequest, Empty, referential, Ref)
  PARCOURS_GATEWAY_FORWARD(CreateVersion, ref::CreateVersionRequest, ref::Version, referential, Ref)
  PARCOURS_GATEWAY_FORWARD(UpdateVersion, ref::UpdateVersionRequest, ref::Version, referential, Ref)
  PARCOURS_GATEWAY_FORWARD(DeleteVersion, ref::DeleteVersionRequest, Empty, referential, Ref)
  PARCOURS_GATEWAY_FORWARD(PublishVersion, ref::PublishVersionRequest, ref::Version, referential, Ref)
  PARCOURS_GATEWAY_FORWARD(RetireVersion, ref::RetireVersionRequest, ref::Version, referential, Ref)

  PARCOURS_GATEWAY_FORWARD(CreateOperator, cepv1::CreateOperatorRequest, cepv1::Operator, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(GetOperator, cepv1::GetOperatorRequest, cepv1::Operator, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(ListOperators, cepv1::ListOperatorsRequest, cepv1::ListOperatorsResponse, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(DesignateOperator, cepv1::DesignateOperatorRequest, cepv1::Operator, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(WithdrawOperator, cepv1::WithdrawOperatorRequest, cepv1::Operator, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(QueryIndicators, cepv1::QueryIndicatorsRequest, cepv1::QueryIndicatorsResponse, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(GetComplianceReport, cepv1::GetComplianceReportRequest, cepv1::ComplianceReport, cep, Cep)

  PARCOURS_GATEWAY_FORWARD(GetOutcomeStatistics, evalv1::GetOutcomeStatisticsRequest, evalv1::OutcomeStatistics, evaluation, Eval)

  grpc::ServerUnaryReactor* GetNationalDashboard(grpc::CallbackServerContext* ctx,
                                                 const v1::GetNationalDashboardRequest* req,
                                                 v1::NationalDashboard* resp) override {
    return gateway::GetNationalDashboard(gw_, ctx, req, resp);
  }

 private:
  Gateway& gw_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewNationalService(Gateway& gateway) {
  return std::make_unique<NationalServiceImpl>(gateway);
}

}  // namespace parcours::gateway
