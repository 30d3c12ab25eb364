// gateway_bench: what the gateway costs on top of the backends (see bench/README.md,
// run_gateway.sh).
//
//   gateway_bench --gateway HOST:PORT --referential HOST:PORT --cep HOST:PORT --evaluation HOST:PORT
//                 --token JWT [--operator_id op-bench] [--inflight 64] [--duration 10s] [--warmup 2s]
//
// Set-up (directly on the backends, with x-parcours-principal): operator --operator_id
// (France Travail, as national; kept if it exists), one beneficiary and one case as
// operator:<id>, one candidacy on --version as certifier:CPNE-IA (evaluation-svc; the seed CQP's
// certifier), and a VAE outcome on the case naming that candidacy. GetBeneficiaryJourney of that case then has all three
// backends to call; one call checks that the journey is complete (no `missing`).
//
// Runs: an asynchronous client (callback API, no thread per call): --inflight slots, each with
// one call in flight, re-issued as soon as it completes; one connection per --per_channel slots.
// Requests are serialised once and responses kept as bytes (never parsed), as loadgen does.
// Calls that start during --warmup are not counted, then every call completed inside --duration
// is. Runs, in this order, repeated --rounds times (3), all in one process against the same servers:
//   direct_gv@1, gateway_gv@1          ReferentialService/GetVersion (x-parcours-principal
//                                      operator:<id>) vs OperatorService/GetVersion (bearer token)
//   direct_gv@N, gateway_gv@N          the same at --inflight
//   echo@N                             BenchService/Echo on the gateway's port (the floor)
//   journey@N                          OperatorService/GetBeneficiaryJourney (bearer token)
// Prints each run (calls/s, p50/p99/p99.9/max µs, errors by code), then `row` lines (figure, the
// median of the rounds with their range, target, OK/MISSED: added p50 at 1 in flight <= 0.25 ms,
// gateway/direct throughput at N >= 0.5, journey/echo throughput >= 0.2) and one JSON line. Targets are printed, not enforced; exits 1
// if the set-up or any call fails.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/async_run.h"
#include "bench/latency.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "parcours/bench/v1/bench.grpc.pb.h"
#include "parcours/cep/v1/cep.grpc.pb.h"
#include "parcours/evaluation/v1/evaluation.grpc.pb.h"
#include "parcours/gateway/v1/operator.grpc.pb.h"
#include "parcours/referential/v1/referential.grpc.pb.h"

ABSL_FLAG(std::string, gateway, "", "Gateway API address host:port (plaintext)");
ABSL_FLAG(std::string, referential, "", "referential-svc address host:port");
ABSL_FLAG(std::string, cep, "", "cep-svc address host:port");
ABSL_FLAG(std::string, evaluation, "", "evaluation-svc address host:port");
ABSL_FLAG(std::string, token, "", "Bearer JWT of principal operator:<--operator_id>");
ABSL_FLAG(std::string, operator_id, "op-bench", "The operator created and used");
ABSL_FLAG(std::string, version, "certifications/CQP-TMSA/versions/1", "Version read and pinned by the candidacy");
ABSL_FLAG(int, inflight, 64, "Calls in flight for the throughput runs");
ABSL_FLAG(int, per_channel, 4, "Slots sharing one channel (TCP connection)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "Measured duration of each run");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(2), "Warm-up before measuring, in each run");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5), "Deadline of each call");
ABSL_FLAG(int, rounds, 3, "Rounds of the six runs; each figure is the median of the rounds'");
ABSL_FLAG(bool, parts, false,
          "Also run the journey's backend reads directly (diagnostic: where a journey's time goes)");
ABSL_FLAG(std::string, watch, "",
          "Servers whose CPU time per call each run prints, name=pid,... (with the client's own)");
ABSL_FLAG(std::string, run_id, "", "Part of the external ids of the set-up; empty = from the clock");

namespace {

namespace cep = ::parcours::cep::v1;
namespace ev = ::parcours::evaluation::v1;
namespace ref = ::parcours::referential::v1;
namespace gw = ::parcours::gateway::v1;
namespace benchpb = ::parcours::bench::v1;
using Clock = std::chrono::steady_clock;
using parcours::bench::AsyncRun;
using parcours::bench::Call;
using parcours::bench::CodeIndex;
using parcours::bench::CodeName;
using parcours::bench::kNumCodes;
using parcours::bench::NewChannel;
using parcours::bench::Percentile;
using parcours::bench::RunResult;

constexpr char kPrincipalMetadata[] = "x-parcours-principal";  // platform/principal.h
constexpr double kTargetAddedP50Ms = 0.25;
constexpr double kTargetGatewayRatio = 0.5;
constexpr double kTargetJourneyRatio = 0.2;

void PrintRun(const RunResult& r) {
  const auto& l = r.latencies_us;
  std::printf("%-14s %3d in flight  ok %8zu  %8.0f calls/s  p50 %6u us  p99 %6u us  p99.9 %6u us  max %7u us  errors %llu",
              r.name.c_str(), r.inflight, l.size(), r.Rps(), r.P50(), Percentile(l, 99), Percentile(l, 99.9),
              l.empty() ? 0 : l.back(), static_cast<unsigned long long>(r.Errors()));
  for (int c = 1; c < kNumCodes; ++c) {
    if (r.codes[static_cast<size_t>(c)] != 0) {
      std::printf(" %s=%llu", CodeName(c), static_cast<unsigned long long>(r.codes[static_cast<size_t>(c)]));
    }
  }
  std::printf("\n");
  for (int c = 1; c < kNumCodes; ++c) {
    if (r.codes[static_cast<size_t>(c)] != 0) {
      std::printf("               first %s: %s\n", CodeName(c), r.first_message[static_cast<size_t>(c)].c_str());
    }
  }
  if (!r.cpu_us_per_call.empty()) std::printf("               %s\n", parcours::bench::CpuLine(r.cpu_us_per_call).c_str());
  std::fflush(stdout);
}

std::string RunJson(const RunResult& r) {
  const auto& l = r.latencies_us;
  return absl::StrFormat(
      "{\"run\":\"%s@%d\",\"rps\":%.1f,\"p50_us\":%u,\"p99_us\":%u,\"p999_us\":%u,\"max_us\":%u,\"errors\":%llu}", r.name,
      r.inflight, r.Rps(), r.P50(), Percentile(l, 99), Percentile(l, 99.9), l.empty() ? 0 : l.back(),
      static_cast<unsigned long long>(r.Errors()));
}

// --- Set-up: blocking calls with x-parcours-principal.

template <typename Fn>
bool SetupCall(const char* what, const std::string& principal, Fn fn) {
  grpc::ClientContext ctx;
  ctx.AddMetadata(kPrincipalMetadata, principal);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const grpc::Status s = fn(&ctx);
  if (s.ok()) return true;
  if (std::string(what) == "CreateOperator" && s.error_code() == grpc::StatusCode::ALREADY_EXISTS) return true;
  std::fprintf(stderr, "gateway_bench: %s as %s: %s: %s\n", what, principal.c_str(), CodeName(s.error_code()),
               s.error_message().c_str());
  return false;
}

void SetDate(const absl::CivilDay& day, google::type::Date* d) {
  d->set_year(static_cast<int32_t>(day.year()));
  d->set_month(day.month());
  d->set_day(day.day());
}

// Creates operator, beneficiary, case, candidacy and the VAE outcome; the case name in `case_name`.
bool Setup(const std::string& cep_target, const std::string& eval_target, const std::string& operator_id,
           const std::string& version, const std::string& run_id, std::string* case_name,
           std::string* candidacy_name) {
  auto cep_stub = cep::CepService::NewStub(NewChannel(cep_target, 0));
  auto eval_stub = ev::EvaluationService::NewStub(NewChannel(eval_target, 0));
  const std::string op = absl::StrCat("operator:", operator_id);

  cep::CreateOperatorRequest create_op;
  create_op.set_operator_id(operator_id);
  create_op.mutable_operator_()->set_display_name("France Travail (gateway bench)");
  create_op.mutable_operator_()->set_kind(cep::OPERATOR_KIND_FRANCE_TRAVAIL);
  create_op.mutable_operator_()->add_regions("53");
  cep::Operator op_out;
  if (!SetupCall("CreateOperator", "national",
                 [&](grpc::ClientContext* c) { return cep_stub->CreateOperator(c, create_op, &op_out); })) {
    return false;
  }

  cep::RegisterBeneficiaryRequest reg;
  reg.set_external_id(absl::StrCat("gwbench-", run_id));
  reg.mutable_beneficiary()->set_birth_year(1980);
  reg.mutable_beneficiary()->set_sex(cep::SEX_FEMALE);
  reg.mutable_beneficiary()->set_department("35");
  reg.mutable_beneficiary()->set_status(cep::EMPLOYMENT_STATUS_JOB_SEEKER);
  reg.mutable_beneficiary()->set_qualification_level(4);
  cep::Beneficiary ben;
  if (!SetupCall("RegisterBeneficiary", op,
                 [&](grpc::ClientContext* c) { return cep_stub->RegisterBeneficiary(c, reg, &ben); })) {
    return false;
  }

  absl::TimeZone paris;
  if (!absl::LoadTimeZone("Europe/Paris", &paris)) paris = absl::UTCTimeZone();  // as cep-svc
  const absl::CivilDay today = absl::ToCivilDay(absl::Now(), paris);
  cep::OpenCaseRequest open;
  open.mutable_case_()->set_beneficiary(ben.name());
  open.mutable_case_()->set_level("2019/2");
  open.mutable_case_()->add_demands(cep::DEMAND_KIND_PROJECT);
  SetDate(today, open.mutable_case_()->mutable_opening_date());
  open.set_request_id(absl::StrCat("gwbench-", run_id));
  cep::Case kase;
  if (!SetupCall("OpenCase", op, [&](grpc::ClientContext* c) { return cep_stub->OpenCase(c, open, &kase); })) {
    return false;
  }

  ev::CreateCandidacyRequest cand;
  cand.mutable_candidacy()->set_candidate_id(absl::StrCat("gwbench-", run_id));
  cand.mutable_candidacy()->set_candidate_display_name("Candidate (gateway bench)");
  cand.mutable_candidacy()->set_referential_version(version);
  cand.mutable_candidacy()->set_cep_case(kase.name());  // the journey shows it on this case only
  cand.set_request_id(absl::StrCat("gwbench-", run_id));
  ev::Candidacy candidacy;
  if (!SetupCall("CreateCandidacy", "certifier:CPNE-IA",
                 [&](grpc::ClientContext* c) { return eval_stub->CreateCandidacy(c, cand, &candidacy); })) {
    return false;
  }

  cep::RecordOutcomeRequest outcome;
  outcome.set_name(kase.name());
  outcome.mutable_outcome()->set_kind(cep::OUTCOME_KIND_VAE);
  outcome.mutable_outcome()->set_candidacy(candidacy.name());
  SetDate(today, outcome.mutable_outcome()->mutable_date());
  if (!SetupCall("RecordOutcome", op,
                 [&](grpc::ClientContext* c) { return cep_stub->RecordOutcome(c, outcome, &kase); })) {
    return false;
  }
  *case_name = kase.name();
  *candidacy_name = candidacy.name();
  return true;
}

// One parsed call through the generated stubs, before the runs: a wrong target, token or name
// fails here instead of producing a run of errors.
bool Check(const std::string& gateway, const std::string& referential, const std::string& bearer,
           const std::string& op, const std::string& version, const std::string& case_name) {
  auto gw_channel = NewChannel(gateway, 0);
  auto op_stub = gw::OperatorService::NewStub(gw_channel);
  ref::GetVersionRequest gv;
  gv.set_name(version);
  ref::Version v_gw, v_direct;
  if (!SetupCall("OperatorService/GetVersion (check)", op, [&](grpc::ClientContext* c) {
        c->AddMetadata("authorization", bearer);
        return op_stub->GetVersion(c, gv, &v_gw);
      })) {
    return false;
  }
  auto ref_stub = ref::ReferentialService::NewStub(NewChannel(referential, 0));
  if (!SetupCall("ReferentialService/GetVersion (check)", op,
                 [&](grpc::ClientContext* c) { return ref_stub->GetVersion(c, gv, &v_direct); })) {
    return false;
  }
  gw::GetBeneficiaryJourneyRequest jr;
  jr.set_case_(case_name);
  gw::BeneficiaryJourney journey;
  if (!SetupCall("GetBeneficiaryJourney (check)", op, [&](grpc::ClientContext* c) {
        c->AddMetadata("authorization", bearer);
        return op_stub->GetBeneficiaryJourney(c, jr, &journey);
      })) {
    return false;
  }
  auto echo_stub = benchpb::BenchService::NewStub(gw_channel);
  benchpb::EchoRequest er;
  er.set_payload(std::string(16, 'x'));
  benchpb::EchoResponse eo;
  if (!SetupCall("BenchService/Echo on the gateway (check)", op, [&](grpc::ClientContext* c) {
        c->AddMetadata("authorization", bearer);
        return echo_stub->Echo(c, er, &eo);
      })) {
    return false;
  }
  std::printf("check      GetVersion %zu bytes via gateway, %zu direct; journey: %d VAE part(s), %d block(s), "
              "%d missing part(s)\n",
              v_gw.ByteSizeLong(), v_direct.ByteSizeLong(), journey.vae_size(),
              journey.vae_size() > 0 ? journey.vae(0).blocs_size() : 0, journey.missing_size());
  for (const gw::MissingPart& m : journey.missing()) {
    std::printf("           missing part %d %s: %s\n", static_cast<int>(m.part()), m.resource().c_str(),
                m.reason().c_str());
  }
  if (journey.vae_size() != 1 || journey.missing_size() != 0) {
    std::fprintf(stderr, "gateway_bench: the journey is not complete (expected 1 VAE part, nothing missing)\n");
    return false;
  }
  std::fflush(stdout);
  return true;
}

void Row(const char* figure, const std::string& measured, const char* target, bool ok) {
  std::printf("row %-52s %-26s %-14s %s\n", figure, measured.c_str(), target, ok ? "OK" : "MISSED");
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "gateway_bench --gateway HOST:PORT --referential HOST:PORT --cep HOST:PORT --evaluation HOST:PORT "
      "--token JWT [--inflight 64] [--duration 10s]");
  absl::ParseCommandLine(argc, argv);
  const std::string gateway = absl::GetFlag(FLAGS_gateway);
  const std::string referential = absl::GetFlag(FLAGS_referential);
  const std::string cep_target = absl::GetFlag(FLAGS_cep);
  const std::string eval_target = absl::GetFlag(FLAGS_evaluation);
  const std::string token = absl::GetFlag(FLAGS_token);
  const std::string operator_id = absl::GetFlag(FLAGS_operator_id);
  const std::string version = absl::GetFlag(FLAGS_version);
  const int inflight = absl::GetFlag(FLAGS_inflight);
  const int per_channel = std::max(1, absl::GetFlag(FLAGS_per_channel));
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const absl::Duration warmup = absl::GetFlag(FLAGS_warmup);
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (gateway.empty() || referential.empty() || cep_target.empty() || eval_target.empty() || token.empty()) {
    std::fprintf(stderr, "gateway_bench: --gateway, --referential, --cep, --evaluation and --token are required\n");
    return 2;
  }
  const int rounds_wanted = absl::GetFlag(FLAGS_rounds);
  if (inflight < 1 || rounds_wanted < 1 || duration <= absl::ZeroDuration() || warmup < absl::ZeroDuration()) {
    std::fprintf(stderr, "gateway_bench: --inflight and --rounds must be >= 1, --duration > 0, --warmup >= 0\n");
    return 2;
  }
  std::string run_id = absl::GetFlag(FLAGS_run_id);
  if (run_id.empty()) run_id = absl::StrCat(absl::ToUnixMillis(absl::Now()));
  const std::string op = absl::StrCat("operator:", operator_id);
  const std::string bearer = absl::StrCat("Bearer ", token);

  std::string case_name, candidacy_name;
  if (!Setup(cep_target, eval_target, operator_id, version, run_id, &case_name, &candidacy_name)) return 1;
  std::printf("set-up     %s: %s, VAE outcome -> %s (%s)\n", op.c_str(), case_name.c_str(), candidacy_name.c_str(),
              version.c_str());
  if (!Check(gateway, referential, bearer, op, version, case_name)) return 1;

  ref::GetVersionRequest gv;
  gv.set_name(version);
  gw::GetBeneficiaryJourneyRequest jr;
  jr.set_case_(case_name);
  benchpb::EchoRequest er;
  er.set_payload(std::string(16, 'x'));
  const Call direct_gv{referential, "/parcours.referential.v1.ReferentialService/GetVersion", gv.SerializeAsString(),
                       {kPrincipalMetadata, op}};
  const Call gateway_gv{gateway, "/parcours.gateway.v1.OperatorService/GetVersion", gv.SerializeAsString(),
                        {"authorization", bearer}};
  const Call echo{gateway, "/parcours.bench.v1.BenchService/Echo", er.SerializeAsString(), {"authorization", bearer}};
  const Call journey{gateway, "/parcours.gateway.v1.OperatorService/GetBeneficiaryJourney", jr.SerializeAsString(),
                     {"authorization", bearer}};

  std::printf("runs       %s measured after %s warm-up each; async client, %d slots per connection\n",
              absl::FormatDuration(duration).c_str(), absl::FormatDuration(warmup).c_str(), per_channel);
  std::fflush(stdout);
  std::vector<parcours::bench::WatchedProcess> watched;
  if (!parcours::bench::ParseWatched(absl::GetFlag(FLAGS_watch), &watched)) {
    std::fprintf(stderr, "gateway_bench: --watch wants name=pid,name=pid\n");
    return 2;
  }
  std::vector<RunResult> results;
  auto run = [&](const char* name, const Call& call, int n) -> RunResult {
    AsyncRun r(call, n, per_channel, warmup, duration, timeout);
    r.Watch(watched);
    results.push_back(r.Run(name));
    PrintRun(results.back());
    return results.back();
  };
  // Each round runs every pair back to back (the baseline, then what is compared with it), so a
  // figure's two runs share the machine's state of the moment; the figure printed is the median
  // of the rounds' (this machine's throughput drifts by a third between minutes).
  struct Figures {
    double added_ms;
    uint32_t g1_p50, d1_p50;
    double gv_ratio, gn_rps, dn_rps;
    double j_ratio, jn_rps, en_rps;
  };
  std::vector<Figures> rounds;
  for (int round = 1; round <= rounds_wanted; ++round) {
    if (rounds_wanted > 1) std::printf("round %d of %d\n", round, rounds_wanted);
    const RunResult d1 = run("direct_gv", direct_gv, 1);
    const RunResult g1 = run("gateway_gv", gateway_gv, 1);
    const RunResult dn = run("direct_gv", direct_gv, inflight);
    const RunResult gn = run("gateway_gv", gateway_gv, inflight);
    const RunResult en = run("echo_gateway", echo, inflight);
    const RunResult jn = run("journey", journey, inflight);
    rounds.push_back({(static_cast<double>(g1.P50()) - static_cast<double>(d1.P50())) / 1000.0, g1.P50(), d1.P50(),
                      dn.Rps() > 0 ? gn.Rps() / dn.Rps() : 0, gn.Rps(), dn.Rps(),
                      en.Rps() > 0 ? jn.Rps() / en.Rps() : 0, jn.Rps(), en.Rps()});
  }
  if (absl::GetFlag(FLAGS_parts)) {  // printed only: not in the rows, the JSON or the exit status
    auto diag = [&](const char* name, const Call& call) {
      AsyncRun r(call, inflight, per_channel, warmup, duration, timeout);
      r.Watch(watched);
      PrintRun(r.Run(name));
    };
    cep::GetCaseRequest gc;
    gc.set_name(case_name);
    ev::GetCandidacyProgressRequest gp;
    gp.set_name(candidacy_name);
    diag("part_case", {cep_target, "/parcours.cep.v1.CepService/GetCase", gc.SerializeAsString(),
                      {kPrincipalMetadata, op}});
    diag("part_progress", {eval_target, "/parcours.evaluation.v1.EvaluationService/GetCandidacyProgress",
                           gp.SerializeAsString(), {kPrincipalMetadata, "national"}});
    diag("echo_cep", {cep_target, "/parcours.bench.v1.BenchService/Echo", er.SerializeAsString(),
                     {kPrincipalMetadata, op}});
  }

  // The round whose `key` is the median (the lower middle for an even count), and the range.
  auto median = [&](double Figures::*key) -> const Figures& {
    std::vector<const Figures*> sorted;
    for (const Figures& f : rounds) sorted.push_back(&f);
    std::sort(sorted.begin(), sorted.end(), [key](const Figures* a, const Figures* b) { return a->*key < b->*key; });
    return *sorted[(sorted.size() - 1) / 2];
  };
  auto range = [&](double Figures::*key, int decimals) -> std::string {
    if (rounds.size() < 2) return "";
    double lo = rounds.front().*key, hi = lo;
    for (const Figures& f : rounds) lo = std::min(lo, f.*key), hi = std::max(hi, f.*key);
    return absl::StrFormat(" [%.*f..%.*f]", decimals, lo, decimals, hi);
  };
  const Figures& m1a = median(&Figures::added_ms);
  const Figures& m1b = median(&Figures::gv_ratio);
  const Figures& m2 = median(&Figures::j_ratio);
  const double added_ms = m1a.added_ms, gv_ratio = m1b.gv_ratio, j_ratio = m2.j_ratio;
  std::printf("\n");
  if (rounds.size() > 1) std::printf("row (median of %zu rounds, [lowest..highest])\n", rounds.size());
  Row("1a GetVersion p50 added by the gateway, 1 in flight",
      absl::StrFormat("%.3f ms (%u - %u us)", added_ms, m1a.g1_p50, m1a.d1_p50) + range(&Figures::added_ms, 3),
      "<= 0.25 ms", added_ms <= kTargetAddedP50Ms);
  Row(absl::StrFormat("1b GetVersion gateway/direct calls/s, %d in flight", inflight).c_str(),
      absl::StrFormat("%.2f (%.0f / %.0f)", gv_ratio, m1b.gn_rps, m1b.dn_rps) + range(&Figures::gv_ratio, 2),
      ">= 0.5", gv_ratio >= kTargetGatewayRatio);
  Row(absl::StrFormat("2  GetBeneficiaryJourney/echo calls/s, %d in flight", inflight).c_str(),
      absl::StrFormat("%.2f (%.0f / %.0f)", j_ratio, m2.jn_rps, m2.en_rps) + range(&Figures::j_ratio, 2),
      ">= 0.2", j_ratio >= kTargetJourneyRatio);

  std::string json = absl::StrFormat(
      "{\"scenario\":\"gateway\",\"inflight\":%d,\"duration_s\":%.1f,\"rounds\":%zu,\"added_p50_ms\":%.3f,"
      "\"gv_ratio\":%.3f,\"journey_ratio\":%.3f,\"runs\":[",
      inflight, absl::ToDoubleSeconds(duration), rounds.size(), added_ms, gv_ratio, j_ratio);
  uint64_t errors = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    absl::StrAppend(&json, i ? "," : "", RunJson(results[i]));
    errors += results[i].Errors();
  }
  absl::StrAppend(&json, "],\"errors\":", errors, "}");
  std::printf("%s\n", json.c_str());
  return errors == 0 ? 0 : 1;
}
