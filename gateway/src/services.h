// The four audience services of parcours.gateway.v1 (protos/parcours/gateway/v1/), each a thin
// layer over Gateway (gateway.h): 1:1 methods are one line each; RegionService.QueryIndicators
// rewrites its request; OperatorService.ImportCases proxies a client stream,
// GetBeneficiaryJourney composes three backends (journey.cc) and NationalService's
// GetNationalDashboard two (dashboard.cc).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "gateway/src/gateway.h"
#include "grpcpp/grpcpp.h"
#include "parcours/cep/v1/cep.pb.h"
#include "parcours/gateway/v1/national.pb.h"
#include "parcours/gateway/v1/operator.pb.h"
#include "parcours/gateway/v1/region.pb.h"

namespace parcours::gateway {

std::unique_ptr<grpc::Service> NewNationalService(Gateway& gateway);
std::unique_ptr<grpc::Service> NewRegionService(Gateway& gateway);
std::unique_ptr<grpc::Service> NewOperatorService(Gateway& gateway);
std::unique_ptr<grpc::Service> NewCertifierService(Gateway& gateway);

// RegionService.QueryIndicators' backend request for the caller's `region`: the caller's query
// with `region = "<region>"` added to the filter and suppress_small_cells on. A filter term on
// `region` other than `region = "<region>"` is INVALID_ARGUMENT on "filter" (chosen over an empty
// answer: the caller learns its mistake, and region codes are public so nothing leaks).
absl::StatusOr<cep::v1::QueryIndicatorsRequest> RegionalQuery(const std::string& region,
                                                              const v1::QueryIndicatorsRequest& request);

// NationalService.GetNationalDashboard (dashboard.cc).
grpc::ServerUnaryReactor* GetNationalDashboard(Gateway& gateway, grpc::CallbackServerContext* ctx,
                                               const v1::GetNationalDashboardRequest* request,
                                               v1::NationalDashboard* response);

// OperatorService.GetBeneficiaryJourney and ImportCases (journey.cc, import.cc).
grpc::ServerUnaryReactor* GetBeneficiaryJourney(Gateway& gateway, grpc::CallbackServerContext* ctx,
                                                const v1::GetBeneficiaryJourneyRequest* request,
                                                v1::BeneficiaryJourney* response);
grpc::ServerReadReactor<cep::v1::ImportCasesRequest>* ImportCases(Gateway& gateway, grpc::CallbackServerContext* ctx,
                                                                   cep::v1::ImportCasesResponse* response);

}  // namespace parcours::gateway
