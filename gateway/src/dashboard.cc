// NationalService.GetNationalDashboard: the VAE path of a period, composed from cep-svc (three
// indicator queries over the period by region: entries, entries with a skills-recognition
// demand, VAE outcomes) and evaluation-svc (the jury results sealed in the period, per
// certification). The four reads start at once (composition.h) as the caller ("national": both
// backends give it aggregates only). A side that could not be read is listed in `missing` and its
// fields left empty; when neither could be read the call fails with cep-svc's status.
#include <map>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "gateway/src/composition.h"
#include "gateway/src/services.h"
#include "platform/errors.h"
#include "platform/months.h"

namespace parcours::gateway {
namespace {

namespace cepv1 = ::parcours::cep::v1;
namespace ev = ::parcours::evaluation::v1;

google::type::Date DateOf(absl::CivilDay day) {
  google::type::Date d;
  d.set_year(static_cast<int32_t>(day.year()));
  d.set_month(day.month());
  d.set_day(day.day());
  return d;
}

void AddCounts(const ev::CertificationOutcomeCount& from, ev::CertificationOutcomeCount* to) {
  to->set_decided(to->decided() + from.decided());
  to->set_total(to->total() + from.total());
  to->set_partial(to->partial() + from.partial());
  to->set_refusal(to->refusal() + from.refusal());
  to->set_candidate_absent(to->candidate_absent() + from.candidate_absent());
  to->set_candidate_excused(to->candidate_excused() + from.candidate_excused());
}

class Dashboard final : public ComposedCall {
 public:
  Dashboard(Gateway& gw, grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
            v1::NationalDashboard* response, Admission admission)
      : ComposedCall(gw, ctx, reactor, std::move(admission)), response_(response) {}

  void Start(const v1::GetNationalDashboardRequest& request, absl::CivilMonth from, absl::CivilMonth to) {
    response_->set_from_month(request.from_month());
    response_->set_to_month(request.to_month());
    for (cepv1::QueryIndicatorsRequest* q : {&entries_request_, &skills_request_, &vae_request_}) {
      q->set_measure(cepv1::MEASURE_ENTRIES);
      q->set_from_month(request.from_month());
      q->set_to_month(request.to_month());
      q->add_group_by(cepv1::DIMENSION_REGION);
      q->set_total_over_period(true);
    }
    skills_request_.set_filter("demand = SKILLS_RECOGNITION");
    vae_request_.set_measure(cepv1::MEASURE_OUTCOMES);
    vae_request_.set_filter("outcome_kind = VAE");
    *results_request_.mutable_from_date() = DateOf(absl::CivilDay(from));
    *results_request_.mutable_to_date() = DateOf(absl::CivilDay(to + 1) - 1);

    const Principal& as = admission_.caller.principal;
    auto& cep = *gw_.backends().cep;
    for (auto [request_part, slot] : {std::pair{&entries_request_, &entries_}, std::pair{&skills_request_, &skills_},
                                      std::pair{&vae_request_, &vae_}}) {
      Read(cep, &Cep::Stub::async::QueryIndicators, as, request_part, slot, [this] { Release(); });
    }
    Read(*gw_.backends().evaluation, &ev::EvaluationService::Stub::async::GetOutcomeStatistics, as, &results_request_,
         &results_, [this] { Release(); });
  }

 private:
  using Cep = cepv1::CepService;

  void Release() {
    {
      absl::MutexLock lock(&mu_);
      if (--pending_ > 0) return;
    }
    Assemble();
  }

  void Assemble() {
    std::optional<grpc::Status> cep_failure;
    for (const Part<cepv1::QueryIndicatorsResponse>* part : {&entries_, &skills_, &vae_}) {
      if (!part->status.ok() && !cep_failure) cep_failure = part->status;
    }
    if (cep_failure && !results_.status.ok()) {
      response_->Clear();
      End(*cep_failure);
      return;
    }
    if (cep_failure) {
      AddMissing(v1::DashboardMissingPart::PART_CEP_FIGURES, *cep_failure);
    } else {
      std::map<std::string, v1::DashboardCepFigures> regions;
      v1::DashboardCepFigures* national = response_->mutable_national();
      // Each query's cells (one key: the region grouped by) count for their region and the nation.
      using Plus = void (*)(v1::DashboardCepFigures&, int64_t);
      auto add = [&](const cepv1::QueryIndicatorsResponse& r, Plus plus) {
        for (const cepv1::IndicatorCell& cell : r.cells()) {
          if (cell.keys_size() != 1) continue;
          v1::DashboardCepFigures& f = regions[cell.keys(0)];
          f.set_region(cell.keys(0));
          plus(f, cell.value());
          plus(*national, cell.value());
        }
      };
      add(entries_.response, [](v1::DashboardCepFigures& f, int64_t n) { f.set_entries(f.entries() + n); });
      add(skills_.response, [](v1::DashboardCepFigures& f, int64_t n) {
        f.set_skills_recognition_entries(f.skills_recognition_entries() + n);
      });
      add(vae_.response, [](v1::DashboardCepFigures& f, int64_t n) { f.set_vae_outcomes(f.vae_outcomes() + n); });
      for (auto& [code, figures] : regions) *response_->add_regions() = std::move(figures);
    }
    if (!results_.status.ok()) {
      AddMissing(v1::DashboardMissingPart::PART_VAE_RESULTS, results_.status);
    } else {
      ev::CertificationOutcomeCount* all = response_->mutable_all_certifications();
      for (ev::CertificationOutcomeCount& c : *results_.response.mutable_certifications()) {
        AddCounts(c, all);
        *response_->add_certifications() = std::move(c);
      }
    }
    End(grpc::Status::OK);
  }

  void AddMissing(v1::DashboardMissingPart::Part part, const grpc::Status& status) {
    v1::DashboardMissingPart* m = response_->add_missing();
    m->set_part(part);
    m->set_code(static_cast<google::rpc::Code>(status.error_code()));
    m->set_reason(status.error_message());
  }

  v1::NationalDashboard* response_;

  cepv1::QueryIndicatorsRequest entries_request_, skills_request_, vae_request_;
  ev::GetOutcomeStatisticsRequest results_request_;
  Part<cepv1::QueryIndicatorsResponse> entries_, skills_, vae_;
  Part<ev::OutcomeStatistics> results_;

  absl::Mutex mu_;
  int pending_ ABSL_GUARDED_BY(mu_) = 4;  // the four reads
};

}  // namespace

grpc::ServerUnaryReactor* GetNationalDashboard(Gateway& gateway, grpc::CallbackServerContext* ctx,
                                               const v1::GetNationalDashboardRequest* request,
                                               v1::NationalDashboard* response) {
  static const std::string method = FullMethod("parcours.gateway.v1.NationalService", "GetNationalDashboard");
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::optional<absl::CivilMonth> from = ParseYearMonth(request->from_month());
  std::optional<absl::CivilMonth> to = ParseYearMonth(request->to_month());
  std::optional<Admission> admitted = gateway.AdmitValidated(ctx, reactor, method, request, [&](const Admission&) {
    Violations v;
    if (!from) v.Add("from_month", "must be a month YYYY-MM");
    if (!to) v.Add("to_month", "must be a month YYYY-MM");
    if (from && to && *to < *from) v.Add("to_month", "must not be before from_month");
    if (from && to && *to - *from >= kMaxPeriodMonths) {
      v.Add("to_month", absl::StrCat("the period is at most ", kMaxPeriodMonths, " months"));
    }
    return v.ToStatus();
  });
  if (!admitted) return reactor;
  auto* dashboard = new Dashboard(gateway, ctx, reactor, response, *std::move(admitted));
  dashboard->Start(*request, *from, *to);
  return reactor;
}

}  // namespace parcours::gateway
