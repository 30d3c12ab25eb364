// OperatorService: a CEP operator, its own files. cep-svc scopes every case-file method to the
// forwarded operator principal.
#include "gateway/src/services.h"
#include "parcours/gateway/v1/operator.grpc.pb.h"

namespace parcours::gateway {
namespace {

namespace ref = ::parcours::referential::v1;
namespace cepv1 = ::parcours::cep::v1;
using Ref = ref::ReferentialService;
using Cep = cepv1::CepService;

class OperatorServiceImpl final : public v1::OperatorService::CallbackService {
 public:
  using Self = OperatorServiceImpl;
  explicit OperatorServiceImpl(Gateway& gw) : gw_(gw) {
    // Reads: the backend's reply is passed through undecoded (gateway.h).
    PARCOURS_GATEWAY_FORWARD_RAW(GetCase, cepv1::GetCaseRequest, cepv1::Case, cep, Cep);
    PARCOURS_GATEWAY_FORWARD_RAW(ListCases, cepv1::ListCasesRequest, cepv1::ListCasesResponse, cep, Cep);
    PARCOURS_GATEWAY_FORWARD_RAW(GetCertification, ref::GetCertificationRequest, ref::Certification, referential, Ref);
    PARCOURS_GATEWAY_FORWARD_RAW(ListCertifications, ref::ListCertificationsRequest, ref::ListCertificationsResponse, referential, Ref);
    PARCOURS_GATEWAY_FORWARD_RAW(GetVersion, ref::GetVersionRequest, ref::Version, referential, Ref);
    PARCOURS_GATEWAY_FORWARD_RAW(ListVersions, ref::ListVersionsRequest, ref::ListVersionsResponse, referential, Ref);
  }
  static constexpr char kService[] = "parcours.gateway.v1.OperatorService";

  PARCOURS_GATEWAY_FORWARD(RegisterBeneficiary, cepv1::RegisterBeneficiaryRequest, cepv1::Beneficiary, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(GetBeneficiary, cepv1::GetBeneficiaryRequest, cepv1::Beneficiary, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(UpdateContactDetails, cepv1::UpdateContactDetailsRequest, cepv1::ContactDetails, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(OpenCase, cepv1::OpenCaseRequest, cepv1::Case, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(UpdateCase, cepv1::UpdateCaseRequest, cepv1::Case, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(ChangeLevel, cepv1::ChangeLevelRequest, cepv1::Case, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(RecordService, cepv1::RecordServiceRequest, cepv1::Case, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(RecordOutcome, cepv1::RecordOutcomeRequest, cepv1::Case, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(RecordSatisfaction, cepv1::RecordSatisfactionRequest, cepv1::Case, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(CloseCase, cepv1::CloseCaseRequest, cepv1::Case, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(ReopenCase, cepv1::ReopenCaseRequest, cepv1::Case, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(RequestTransfer, cepv1::RequestTransferRequest, cepv1::Transfer, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(AcceptTransfer, cepv1::AcceptTransferRequest, cepv1::Transfer, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(RejectTransfer, cepv1::RejectTransferRequest, cepv1::Transfer, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(CancelTransfer, cepv1::CancelTransferRequest, cepv1::Transfer, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(ListTransfers, cepv1::ListTransfersRequest, cepv1::ListTransfersResponse, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(RequestErasure, cepv1::RequestErasureRequest, cepv1::ErasureReceipt, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(GetOperator, cepv1::GetOperatorRequest, cepv1::Operator, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(ListOperators, cepv1::ListOperatorsRequest, cepv1::ListOperatorsResponse, cep, Cep)
  PARCOURS_GATEWAY_FORWARD(ListLevelCatalogues, cepv1::ListLevelCataloguesRequest, cepv1::ListLevelCataloguesResponse, cep, Cep)


  grpc::ServerReadReactor<cepv1::ImportCasesRequest>* ImportCases(grpc::CallbackServerContext* ctx,
                                                                  cepv1::ImportCasesResponse* response) override {
    return gateway::ImportCases(gw_, ctx, response);
  }

  grpc::ServerUnaryReactor* GetBeneficiaryJourney(grpc::CallbackServerContext* ctx,
                                                  const v1::GetBeneficiaryJourneyRequest* request,
                                                  v1::BeneficiaryJourney* response) override {
    return gateway::GetBeneficiaryJourney(gw_, ctx, request, response);
  }

 private:
  Gateway& gw_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewOperatorService(Gateway& gateway) {
  return std::make_unique<OperatorServiceImpl>(gateway);
}

}  // namespace parcours::gateway
