// cep_open_cases: the case-creation benchmark of cep-svc (see bench/README.md, run_cep_queries.sh).
//
//   cep_open_cases --target HOST:PORT [--inflight 16] [--duration 20s] [--warmup 2s]
//                  [--beneficiaries N] [--opening_date YYYY-MM-DD] [--baseline=true]
//
// Set-up (not timed as the run): creates the operator --operator_id (France Travail, serving the
// 18 INSEE regions) as principal "national" (kept if it exists), then registers --beneficiaries
// beneficiaries as operator:<id> (department 35, job seekers, qualification level 4, birth years
// 1960..2004 and both sexes in turn), --inflight at a time.
//
// Runs: closed loop on the callback API (bench/async_run.h: no thread per call), --inflight calls
// in flight, one connection per --workers_per_channel of them. First the
// baseline, parcours.bench.v1.BenchService/Echo on the same server (server.bench_echo), then
// OpenCase as operator:<id> (level --level, demand PROJECT, opening date --opening_date or today
// in Europe/Paris, as the service's clock), each case on the next registered beneficiary (round
// robin; a beneficiary gets a second case only when all have one). Calls that start during
// --warmup are not counted, then every call completed inside --duration is. Prints, per run, RPS,
// p50 / p99 / p99.9 / max latency of the successful calls and errors by code, the ratio
// OpenCase / Echo and the targets (>= 6,000 OpenCase/s, p99 <= 10 ms) as OK / MISSED (not
// enforced), then one JSON line. Exits 1 if the set-up or any call fails.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/async_run.h"
#include "bench/latency.h"
#include "grpcpp/grpcpp.h"
#include "parcours/bench/v1/bench.grpc.pb.h"
#include "parcours/cep/v1/cep.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:8443", "cep-svc address host:port");
ABSL_FLAG(int, inflight, 16, "Calls in flight");
ABSL_FLAG(int, workers_per_channel, 4, "Calls in flight sharing one channel (TCP connection)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(20), "Measured duration of each run");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(2), "Warm-up before measuring, in each run");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5), "Deadline of each call");
ABSL_FLAG(int64_t, beneficiaries, 0,
          "Beneficiaries registered before the run; 0 = 6000 x (warmup + duration) seconds, one per case "
          "opened at the target rate");
ABSL_FLAG(std::string, operator_id, "ft-bench", "The France Travail operator created and used");
ABSL_FLAG(std::string, opening_date, "", "Opening date YYYY-MM-DD of the cases; empty = today (Europe/Paris)");
ABSL_FLAG(std::string, level, "2019/2", "Level of the cases");
ABSL_FLAG(std::string, run_id, "", "Part of the beneficiaries' external ids; empty = from the clock");
ABSL_FLAG(bool, baseline, true, "Run BenchService/Echo at the same in-flight count first");
ABSL_FLAG(int, payload_bytes, 16, "Echo payload size");
ABSL_FLAG(std::string, watch, "",
          "Servers whose CPU time per call each run prints, name=pid,... (with the client's own)");

namespace {

namespace pb = ::parcours::cep::v1;
namespace benchpb = ::parcours::bench::v1;
using Clock = std::chrono::steady_clock;
using parcours::bench::AsyncRun;
using parcours::bench::Call;
using parcours::bench::CodeName;
using parcours::bench::kNumCodes;
using parcours::bench::Percentile;
using parcours::bench::RunResult;

constexpr char kPrincipalMetadata[] = "x-parcours-principal";  // platform/principal.h
constexpr double kTargetRps = 6000;
constexpr double kTargetP99Ms = 10;
// The 18 INSEE regions: France Travail serves them all.
constexpr const char* kRegions[] = {"11", "24", "27", "28", "32", "44", "52", "53", "75",
                                    "76", "84", "93", "94", "01", "02", "03", "04", "06"};

// The set-up's connections, one per `per_channel` of `threads`; empty if one cannot connect.
std::vector<std::shared_ptr<grpc::Channel>> Channels(const std::string& target, int threads, int per_channel) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < (threads + per_channel - 1) / per_channel; ++i) {
    auto channel = parcours::bench::NewChannel(target, i);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) return {};
    channels.push_back(std::move(channel));
  }
  return channels;
}

void PrintRun(const char* name, const RunResult& r) {
  const auto& l = r.latencies_us;
  std::printf("%-10s ok %8zu   %8.0f calls/s   p50 %6u us   p99 %6u us   p99.9 %6u us   max %7u us   errors %llu",
              name, l.size(), r.Rps(), Percentile(l, 50), Percentile(l, 99), Percentile(l, 99.9),
              l.empty() ? 0 : l.back(), static_cast<unsigned long long>(r.Errors()));
  for (int c = 1; c < kNumCodes; ++c) {
    if (r.codes[static_cast<size_t>(c)] != 0) {
      std::printf(" %s=%llu", CodeName(c), static_cast<unsigned long long>(r.codes[static_cast<size_t>(c)]));
    }
  }
  std::printf("\n");
  for (int c = 1; c < kNumCodes; ++c) {
    if (r.codes[static_cast<size_t>(c)] != 0) {
      std::printf("           first %s: %s\n", CodeName(c), r.first_message[static_cast<size_t>(c)].c_str());
    }
  }
  if (!r.cpu_us_per_call.empty()) std::printf("           %s\n", parcours::bench::CpuLine(r.cpu_us_per_call).c_str());
}

std::string RunJson(const RunResult& r) {
  const auto& l = r.latencies_us;
  std::string codes;
  for (int c = 1; c < kNumCodes; ++c) {
    if (r.codes[static_cast<size_t>(c)] == 0) continue;
    absl::StrAppend(&codes, codes.empty() ? "" : ",", "\"", CodeName(c), "\":", r.codes[static_cast<size_t>(c)]);
  }
  return absl::StrFormat(
      "{\"ok\":%zu,\"rps\":%.1f,\"p50_us\":%u,\"p99_us\":%u,\"p999_us\":%u,\"max_us\":%u,\"errors\":%llu,"
      "\"errors_by_code\":{%s}}",
      l.size(), r.Rps(), Percentile(l, 50), Percentile(l, 99), Percentile(l, 99.9), l.empty() ? 0 : l.back(),
      static_cast<unsigned long long>(r.Errors()), codes);
}

// CreateOperator as national; an existing operator is kept. False on another failure.
bool CreateOperator(const std::shared_ptr<grpc::Channel>& channel, const std::string& id, std::string* what) {
  auto stub = pb::CepService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata(kPrincipalMetadata, "national");
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  pb::CreateOperatorRequest req;
  req.set_operator_id(id);
  req.mutable_operator_()->set_display_name("France Travail (bench)");
  req.mutable_operator_()->set_kind(pb::OPERATOR_KIND_FRANCE_TRAVAIL);
  for (const char* r : kRegions) req.mutable_operator_()->add_regions(r);
  pb::Operator out;
  const grpc::Status s = stub->CreateOperator(&ctx, req, &out);
  if (s.ok()) {
    *what = "created";
    return true;
  }
  if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
    *what = "already there";
    return true;
  }
  std::fprintf(stderr, "cep_open_cases: CreateOperator %s: %s: %s\n", id.c_str(), CodeName(s.error_code()),
               s.error_message().c_str());
  return false;
}

// Registers `count` beneficiaries, `inflight` calls at a time; their names in `names`. False
// (after a message) if a registration fails.
bool RegisterBeneficiaries(const std::vector<std::shared_ptr<grpc::Channel>>& channels, int inflight,
                           int per_channel, const std::string& principal, const std::string& run_id, int64_t count,
                           std::vector<std::string>* names) {
  names->assign(static_cast<size_t>(count), "");
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int w = 0; w < inflight; ++w) {
    threads.emplace_back([&, w] {
      auto stub = pb::CepService::NewStub(channels[static_cast<size_t>(w / per_channel)]);
      for (int64_t i = next++; i < count && !failed; i = next++) {
        grpc::ClientContext ctx;
        ctx.AddMetadata(kPrincipalMetadata, principal);
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        pb::RegisterBeneficiaryRequest req;
        req.set_external_id(absl::StrCat("bench-", run_id, "-", i));
        pb::Beneficiary* b = req.mutable_beneficiary();
        b->set_birth_year(1960 + static_cast<int>(i % 45));
        b->set_sex(i % 2 == 0 ? pb::SEX_FEMALE : pb::SEX_MALE);
        b->set_department("35");
        b->set_status(pb::EMPLOYMENT_STATUS_JOB_SEEKER);
        b->set_qualification_level(4);
        pb::Beneficiary out;
        const grpc::Status s = stub->RegisterBeneficiary(&ctx, req, &out);
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (!failed.exchange(true)) {
            std::fprintf(stderr, "cep_open_cases: RegisterBeneficiary #%lld: %s: %s\n", static_cast<long long>(i),
                         CodeName(s.error_code()), s.error_message().c_str());
          }
          return;
        }
        (*names)[static_cast<size_t>(i)] = out.name();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return !failed;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "cep_open_cases --target HOST:PORT [--inflight 16] [--duration 20s] [--warmup 2s] [--beneficiaries N]");
  absl::ParseCommandLine(argc, argv);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);  // as loadgen
  const std::string target = absl::GetFlag(FLAGS_target);
  const int inflight = absl::GetFlag(FLAGS_inflight);
  const int per_channel = std::max(1, absl::GetFlag(FLAGS_workers_per_channel));
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const absl::Duration warmup = absl::GetFlag(FLAGS_warmup);
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  const std::string operator_id = absl::GetFlag(FLAGS_operator_id);
  const std::string principal = absl::StrCat("operator:", operator_id);
  const std::string level = absl::GetFlag(FLAGS_level);
  if (inflight < 1 || duration <= absl::ZeroDuration() || warmup < absl::ZeroDuration()) {
    std::fprintf(stderr, "cep_open_cases: --inflight must be >= 1, --duration > 0, --warmup >= 0\n");
    return 2;
  }
  int64_t beneficiaries = absl::GetFlag(FLAGS_beneficiaries);
  if (beneficiaries <= 0) {
    beneficiaries = static_cast<int64_t>(std::ceil(kTargetRps * absl::ToDoubleSeconds(warmup + duration)));
  }

  absl::CivilDay opening;
  const std::string opening_flag = absl::GetFlag(FLAGS_opening_date);
  if (opening_flag.empty()) {
    absl::TimeZone paris;
    if (!absl::LoadTimeZone("Europe/Paris", &paris)) paris = absl::UTCTimeZone();  // as cep-svc
    opening = absl::ToCivilDay(absl::Now(), paris);
  } else if (!absl::ParseCivilTime(opening_flag, &opening)) {
    std::fprintf(stderr, "cep_open_cases: --opening_date %s is not YYYY-MM-DD\n", opening_flag.c_str());
    return 2;
  }
  std::vector<parcours::bench::WatchedProcess> watched;
  if (!parcours::bench::ParseWatched(absl::GetFlag(FLAGS_watch), &watched)) {
    std::fprintf(stderr, "cep_open_cases: --watch wants name=pid,name=pid\n");
    return 2;
  }
  std::string run_id = absl::GetFlag(FLAGS_run_id);
  if (run_id.empty()) run_id = absl::StrCat(absl::ToUnixMillis(absl::Now()));

  const std::vector<std::shared_ptr<grpc::Channel>> channels = Channels(target, inflight, per_channel);
  if (channels.empty()) {
    std::fprintf(stderr, "cep_open_cases: cannot connect to %s\n", target.c_str());
    return 1;
  }
  std::printf("cep_open_cases: %s, %d calls in flight on %zu connections, %s per run after %s warm-up\n",
              target.c_str(), inflight, channels.size(), absl::FormatDuration(duration).c_str(),
              absl::FormatDuration(warmup).c_str());
  std::fflush(stdout);

  // --- Set-up.
  std::string operator_state;
  if (!CreateOperator(channels[0], operator_id, &operator_state)) return 1;
  std::vector<std::string> names;
  const auto reg_start = Clock::now();
  if (!RegisterBeneficiaries(channels, inflight, per_channel, principal, run_id, beneficiaries, &names)) return 1;
  const double reg_s = std::chrono::duration<double>(Clock::now() - reg_start).count();
  const double reg_rate = reg_s > 0 ? static_cast<double>(beneficiaries) / reg_s : 0;
  std::printf("set-up     operator %s (France Travail, %zu regions) %s; %lld beneficiaries registered in %.1f s "
              "(%.0f/s, %d in flight)\n",
              operator_id.c_str(), std::size(kRegions), operator_state.c_str(), static_cast<long long>(beneficiaries),
              reg_s, reg_rate, inflight);
  std::fflush(stdout);

  // --- Baseline: Echo, the same client, the same in-flight count.
  RunResult echo;
  const bool baseline = absl::GetFlag(FLAGS_baseline);
  if (baseline) {
    benchpb::EchoRequest echo_request;
    echo_request.set_payload(std::string(static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_payload_bytes))), 'x'));
    const Call call{target, "/parcours.bench.v1.BenchService/Echo", echo_request.SerializeAsString(),
                    {kPrincipalMetadata, principal}};
    AsyncRun run(call, inflight, per_channel, warmup, duration, timeout);
    run.Watch(watched);
    echo = run.Run("echo");
    PrintRun("echo", echo);
    std::fflush(stdout);
  }

  // --- OpenCase.
  const Call open_call{target, "/parcours.cep.v1.CepService/OpenCase", "", {kPrincipalMetadata, principal},
                       [&](int64_t i) {
                         pb::OpenCaseRequest req;
                         pb::Case* c = req.mutable_case_();
                         c->set_beneficiary(names[static_cast<size_t>(i % static_cast<int64_t>(names.size()))]);
                         c->mutable_opening_date()->set_year(static_cast<int32_t>(opening.year()));
                         c->mutable_opening_date()->set_month(opening.month());
                         c->mutable_opening_date()->set_day(opening.day());
                         c->set_level(level);
                         c->add_demands(pb::DEMAND_KIND_PROJECT);
                         return req.SerializeAsString();
                       }};
  AsyncRun open_run(open_call, inflight, per_channel, warmup, duration, timeout);
  open_run.Watch(watched);
  const RunResult open = open_run.Run("open_case");
  PrintRun("open_case", open);
  const int64_t attempted = open.issued;
  const int64_t reused = std::max<int64_t>(0, attempted - beneficiaries);
  const double ratio = echo.Rps() > 0 ? open.Rps() / echo.Rps() : 0;
  const double p99_ms = Percentile(open.latencies_us, 99) / 1000.0;
  const bool rps_ok = open.Rps() >= kTargetRps, p99_ok = !open.latencies_us.empty() && p99_ms <= kTargetP99Ms;
  if (baseline) std::printf("ratio      open_case / echo = %.3f (calls/s)\n", ratio);
  std::printf("cases      %lld OpenCase calls in all (warm-up included), opening date %s, level %s, demand PROJECT; "
              "%lld on a beneficiary that already had a case\n",
              static_cast<long long>(attempted), absl::FormatCivilTime(opening).c_str(), level.c_str(),
              static_cast<long long>(reused));
  std::printf("targets    >= %.0f OpenCase/s: %s   p99 <= %.0f ms: %s   (printed, not enforced)\n", kTargetRps,
              rps_ok ? "OK" : "MISSED", kTargetP99Ms, p99_ok ? "OK" : "MISSED");
  std::printf("%s\n",
              absl::StrFormat("{\"scenario\":\"cep_open_cases\",\"target\":\"%s\",\"inflight\":%d,\"connections\":%zu,"
                              "\"duration_s\":%.3f,\"warmup_s\":%.3f,\"beneficiaries\":%lld,\"register_per_s\":%.1f,"
                              "\"opening_date\":\"%s\",\"cases_attempted\":%lld,\"beneficiaries_reused\":%lld,"
                              "\"open_case\":%s,\"echo\":%s,\"ratio\":%.4f,\"rps_target_met\":%s,"
                              "\"p99_target_met\":%s}",
                              target, inflight, channels.size(), absl::ToDoubleSeconds(duration),
                              absl::ToDoubleSeconds(warmup), static_cast<long long>(beneficiaries), reg_rate,
                              absl::FormatCivilTime(opening), static_cast<long long>(attempted),
                              static_cast<long long>(reused), RunJson(open), baseline ? RunJson(echo) : "null", ratio,
                              rps_ok ? "true" : "false", p99_ok ? "true" : "false")
                  .c_str());
  std::fflush(stdout);
  return open.Errors() == 0 && echo.Errors() == 0 ? 0 : 1;
}
