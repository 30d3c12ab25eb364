// RegionService: a Région, its own territory only.
#include "absl/strings/str_cat.h"
#include "gateway/src/services.h"
#include "parcours/gateway/v1/region.grpc.pb.h"
#include "platform/aip.h"
#include "platform/errors.h"

namespace parcours::gateway {

absl::StatusOr<cep::v1::QueryIndicatorsRequest> RegionalQuery(const std::string& region,
                                                              const v1::QueryIndicatorsRequest& request) {
  // The filter fields of cep-svc's QueryIndicators (one per parcours.cep.v1.Dimension), with
  // every operator of the filter subset: the gateway only needs to find the terms on `region`;
  // cep-svc validates the rest as usual.
  static const auto* allowed = [] {
    auto* list = new std::vector<std::string>();
    for (const char* field : {"operator", "region", "sex", "age_band", "status", "qualification_level", "level",
                              "demand", "service_kind", "outcome_kind", "satisfaction"}) {
      for (const char* op : {"=", "!=", ":", "<", "<=", ">", ">="}) list->push_back(absl::StrCat(field, op));
    }
    return list;
  }();
  auto terms = aip::ParseFilter(request.filter(), *allowed, aip::RepeatedFields::kAnded);
  if (!terms.ok()) return terms.status();
  for (const aip::FilterTerm& term : *terms) {
    if (term.field == "region" && (term.op != "=" || term.value != region)) {
      return InvalidArgument("filter", absl::StrCat("a region queries its own territory only: the filter may name ",
                                                    "region = \"", region, "\" and no other region"));
    }
  }
  cep::v1::QueryIndicatorsRequest out;
  out.set_measure(request.measure());
  out.set_from_month(request.from_month());
  out.set_to_month(request.to_month());
  *out.mutable_group_by() = request.group_by();
  out.set_total_over_period(request.total_over_period());
  out.set_suppress_small_cells(true);
  // The principal id is a validated identifier ([A-Za-z0-9._-]): safe inside quotes.
  std::string filter = absl::StrCat("region = \"", region, "\"");
  if (!terms->empty()) absl::StrAppend(&filter, " AND ", request.filter());
  out.set_filter(std::move(filter));
  return out;
}

namespace {

namespace cepv1 = ::parcours::cep::v1;
using Cep = cepv1::CepService;

class RegionServiceImpl final : public v1::RegionService::CallbackService {
 public:
  explicit RegionServiceImpl(Gateway& gw) : gw_(gw) {}
  static constexpr char kService[] = "parcours.gateway.v1.RegionService";

  grpc::ServerUnaryReactor* QueryIndicators(grpc::CallbackServerContext* ctx, const v1::QueryIndicatorsRequest* req,
                                            cepv1::QueryIndicatorsResponse* resp) override {
    static const std::string method = FullMethod(kService, "QueryIndicators");
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    // The caller's region is known once it is admitted: the query is built inside the validation.
    absl::StatusOr<cepv1::QueryIndicatorsRequest> query;
    std::optional<Admission> admitted = gw_.AdmitValidated(ctx, reactor, method, req, [&](const Admission& a) {
      query = RegionalQuery(a.caller.principal.id, *req);
      return query.status();
    });
    if (!admitted) return reactor;
    auto owned = std::make_shared<const cepv1::QueryIndicatorsRequest>(*std::move(query));
    const cepv1::QueryIndicatorsRequest* backend_request = owned.get();
    gw_.Forward(ctx, reactor, *std::move(admitted), backend_request, resp, *gw_.backends().cep,
                &Cep::Stub::async::QueryIndicators, std::move(owned));
    return reactor;
  }

  // cep-svc restricts the report to the operators serving the forwarded region.
  PARCOURS_GATEWAY_FORWARD(GetComplianceReport, cepv1::GetComplianceReportRequest, cepv1::ComplianceReport, cep, Cep)

 private:
  Gateway& gw_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewRegionService(Gateway& gateway) { return std::make_unique<RegionServiceImpl>(gateway); }

}  // namespace parcours::gateway
