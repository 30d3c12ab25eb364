// jury_cycle: full VAE jury cycles against evaluation-svc, one candidacy at a time per worker.
//
//   jury_cycle --target 127.0.0.1:PORT --referential_target 127.0.0.1:PORT
//              [--version certifications/CQP-TMSA/versions/1] [--concurrency 8]
//              [--candidates 200] [--members 3]
//
// Fetches the référentiel version once (ReferentialService/GetVersion) for its compétence codes,
// then each worker (a thread, one call in flight) takes the next candidacy until --candidates
// are done and walks it through the seed's jury scenario: candidacy, admissibility, dossier, its
// own jury session (president employer F, employee M, qualified person F), preparation, start,
// passage, one score sheet per member, deliberation (PARTIAL: BC1 80, BC2 75, BC4 72 acquired;
// BC3 60, BC5 55 not), signatures, synthesis grid (PDF), certificate. Every call is timed and
// recorded per RPC method; a failed call abandons its cycle and is counted by method and code.
// Prints a human summary, then one JSON line for scripts. Exits 1 if any call failed.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "bench/latency.h"
#include "parcours/evaluation/v1/evaluation.grpc.pb.h"
#include "parcours/referential/v1/referential.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50052", "evaluation-svc address host:port");
ABSL_FLAG(std::string, referential_target, "127.0.0.1:50051",
          "referential-svc address host:port (the version tree is fetched once, at start)");
ABSL_FLAG(std::string, version, "certifications/CQP-TMSA/versions/1",
          "Référentiel version of the candidacies (PUBLISHED, blocs BC1..BC5)");
ABSL_FLAG(int, concurrency, 8, "Workers (threads), one candidacy and one call in flight each");
ABSL_FLAG(int, candidates, 200, "Candidacies in total (full cycles), shared by the workers");
ABSL_FLAG(int, members, 3,
          "Jury members per session (>= 3: president employer F, employee M, qualified person F, "
          "then employer / employee / qualified person alternating M / F)");
ABSL_FLAG(int, workers_per_channel, 4, "Workers sharing one channel (TCP connection)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "Deadline of each call");
ABSL_FLAG(std::string, certifier, "CPNE-IA",
          "Certifier id of the caller (certifier:<id>): a certifier of the version's certification");
ABSL_FLAG(std::string, run_id, "",
          "Prefix of candidate, member and request ids (default: from the clock and pid, so that "
          "runs against the same database never share a candidate's ledger)");

namespace {

namespace pb = ::parcours::evaluation::v1;
namespace ref = ::parcours::referential::v1;
using Clock = std::chrono::steady_clock;
using Stub = pb::EvaluationService::Stub;

constexpr char kPrincipalMetadata[] = "x-parcours-principal";
using parcours::bench::CodeName;
using parcours::bench::kNumCodes;

// The RPCs of a cycle, in cycle order.
enum Method {
  kCreateCandidacy,
  kRequestAdmissibility,
  kDecideAdmissibility,
  kFileDossier,
  kCreateJurySession,
  kScheduleCandidacy,
  kConfirmPreparation,
  kStartJurySession,
  kRecordPassage,
  kSubmitScoreSheet,
  kOpenDeliberation,
  kRecordDecision,
  kSignDeliberation,
  kRenderSynthesisGrid,
  kIssueCertificate,
  kNumMethods
};
const char* const kMethodNames[kNumMethods] = {
    "CreateCandidacy",   "RequestAdmissibility", "DecideAdmissibility", "FileDossier",
    "CreateJurySession", "ScheduleCandidacy",    "ConfirmPreparation",  "StartJurySession",
    "RecordPassage",     "SubmitScoreSheet",     "OpenDeliberation",    "RecordDecision",
    "SignDeliberation",  "RenderSynthesisGrid",  "IssueCertificate"};

// The seed's first jury: BC1, BC2, BC4 acquired (threshold 70), BC3 and BC5 not.
const std::map<std::string, int> kPercents = {
    {"BC1", 80}, {"BC2", 75}, {"BC3", 60}, {"BC4", 72}, {"BC5", 55}};

struct WorkerResult {
  std::array<std::vector<uint32_t>, kNumMethods> latencies_us;  // successful calls
  std::vector<uint32_t> cycles_us;                              // completed cycles
  std::array<std::array<uint64_t, kNumCodes>, kNumMethods> errors{};
  size_t grid_bytes = 0;  // size of the last synthesis grid
};

// The first message of each (method, code) seen, for the report.
class ErrorLog {
 public:
  void Add(Method m, const grpc::Status& status, const std::string& subject) {
    absl::MutexLock lock(&mu_);
    const auto key = std::make_pair(static_cast<int>(m), static_cast<int>(status.error_code()));
    if (first_.count(key)) return;
    first_[key] = absl::StrCat(subject, ": ", status.error_message());
  }
  std::vector<std::string> Lines() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const auto& [key, message] : first_) {
      out.push_back(absl::StrCat(kMethodNames[key.first], " ", CodeName(key.second), " (first: ", message, ")"));
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::map<std::pair<int, int>, std::string> first_;
};

uint32_t Percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

uint32_t Micros(Clock::duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return static_cast<uint32_t>(std::clamp<int64_t>(us, 0, UINT32_MAX));
}

std::shared_ptr<grpc::Channel> Connect(const std::string& target, int index) {
  grpc::ChannelArguments args;
  args.SetInt("parcours.jury_cycle.channel_index", index);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) return nullptr;
  return channel;
}

// What every cycle needs, built once.
struct Plan {
  std::string version;
  std::string certifier_principal;
  std::string run_id;
  std::vector<pb::ScoreSheet> sheets;  // one per member
  pb::RecordDecisionRequest decision;  // name set per cycle
  google::type::Date date;
  int members = 3;
  std::chrono::nanoseconds timeout{};
};

// One worker: its stub, its jury members, its results.
class Worker {
 public:
  Worker(const Plan& plan, std::shared_ptr<grpc::Channel> channel, int index, WorkerResult* result, ErrorLog* log)
      : plan_(plan), stub_(pb::EvaluationService::NewStub(std::move(channel))), result_(result), log_(log) {
    for (int m = 0; m < plan.members; ++m) {
      pb::JuryMember member;
      // Per worker (and run): a worker's sessions never share a member with another worker's.
      member.set_member_id(absl::StrFormat("%s-w%02d-j%d", plan.run_id, index, m + 1));
      static const char* const kNames[] = {"Anne Leroy", "Marc Petit", "Sofia Durand"};
      member.set_display_name(m < 3 ? kNames[m] : absl::StrCat("Membre ", m + 1));
      const int college = m % 3;  // 0 employer, 1 employee, 2 qualified person
      member.set_college(college == 0   ? pb::COLLEGE_EMPLOYER
                         : college == 1 ? pb::COLLEGE_EMPLOYEE
                                        : pb::COLLEGE_QUALIFIED_PERSON);
      member.set_function(college == 0 ? "Responsable maintenance" : "Technicien de maintenance");
      member.set_president(m == 0);
      member.set_qualified(true);
      // F, M, F, then M, F, M, ...
      member.set_gender(m < 3 ? (m == 1 ? pb::GENDER_MALE : pb::GENDER_FEMALE)
                              : (m % 2 == 1 ? pb::GENDER_FEMALE : pb::GENDER_MALE));
      members_.push_back(member);
      principals_.push_back(absl::StrCat("jury-member:", member.member_id()));
    }
  }

  // One full cycle for candidacy number `n`; false if a call failed (the cycle is abandoned).
  bool Cycle(int n) {
    const auto start = Clock::now();
    const std::string& certifier = plan_.certifier_principal;
    const std::string& president = principals_[0];
    const std::string id = absl::StrFormat("%s-c%06d", plan_.run_id, n);

    pb::CreateCandidacyRequest create;
    create.mutable_candidacy()->set_candidate_id(id);
    create.mutable_candidacy()->set_candidate_display_name(absl::StrCat("Candidat ", n));
    create.mutable_candidacy()->set_referential_version(plan_.version);
    create.set_request_id(id);
    pb::Candidacy c;
    if (!Call(kCreateCandidacy, certifier, &Stub::CreateCandidacy, create, &c, id)) return false;
    const std::string name = c.name();

    pb::RequestAdmissibilityRequest ask;
    ask.set_name(name);
    if (!Call(kRequestAdmissibility, certifier, &Stub::RequestAdmissibility, ask, &c, name)) return false;
    pb::DecideAdmissibilityRequest decide;
    decide.set_name(name);
    decide.set_admissible(true);
    decide.set_reason("trois ans d'expérience en maintenance");
    if (!Call(kDecideAdmissibility, certifier, &Stub::DecideAdmissibility, decide, &c, name)) return false;
    pb::FileDossierRequest file;
    file.set_name(name);
    if (!Call(kFileDossier, certifier, &Stub::FileDossier, file, &c, name)) return false;

    pb::CreateJurySessionRequest create_session;
    *create_session.mutable_session()->mutable_date() = plan_.date;
    create_session.mutable_session()->set_place("Rennes");
    for (const auto& m : members_) *create_session.mutable_session()->add_members() = m;
    create_session.set_request_id(absl::StrCat(id, "-session"));
    pb::JurySession s;
    if (!Call(kCreateJurySession, certifier, &Stub::CreateJurySession, create_session, &s, name)) return false;
    const std::string session = s.name();

    pb::ScheduleCandidacyRequest schedule;
    schedule.set_session(session);
    schedule.set_candidacy(name);
    if (!Call(kScheduleCandidacy, certifier, &Stub::ScheduleCandidacy, schedule, &s, session)) return false;
    for (const std::string& member : principals_) {
      pb::ConfirmPreparationRequest prepare;
      prepare.set_session(session);
      prepare.set_referential_read(true);
      prepare.set_no_conflict_of_interest(true);
      if (!Call(kConfirmPreparation, member, &Stub::ConfirmPreparation, prepare, &s, session)) return false;
    }
    pb::StartJurySessionRequest go;
    go.set_name(session);
    if (!Call(kStartJurySession, certifier, &Stub::StartJurySession, go, &s, session)) return false;
    pb::RecordPassageRequest passage;
    passage.set_session(session);
    passage.set_candidacy(name);
    passage.set_attendance(pb::ATTENDANCE_PRESENT);
    passage.set_presentation_seconds(540);
    passage.set_exchange_seconds(570);
    passage.set_question_count(8);
    if (!Call(kRecordPassage, president, &Stub::RecordPassage, passage, &s, session)) return false;

    for (size_t m = 0; m < principals_.size(); ++m) {
      pb::SubmitScoreSheetRequest submit;
      submit.set_candidacy(name);
      *submit.mutable_sheet() = plan_.sheets[m];
      pb::ScoreSheet sheet;
      if (!Call(kSubmitScoreSheet, principals_[m], &Stub::SubmitScoreSheet, submit, &sheet, name)) return false;
    }

    pb::OpenDeliberationRequest open;
    open.set_candidacy(name);
    pb::Deliberation d;
    if (!Call(kOpenDeliberation, president, &Stub::OpenDeliberation, open, &d, name)) return false;
    const std::string deliberation = d.name();
    pb::RecordDecisionRequest decision = plan_.decision;
    decision.set_name(deliberation);
    if (!Call(kRecordDecision, president, &Stub::RecordDecision, decision, &d, deliberation)) return false;
    for (const std::string& member : principals_) {
      pb::SignDeliberationRequest sign;
      sign.set_name(deliberation);
      if (!Call(kSignDeliberation, member, &Stub::SignDeliberation, sign, &d, deliberation)) return false;
    }

    pb::RenderSynthesisGridRequest render;
    render.set_name(deliberation);
    pb::Document grid;
    if (!Call(kRenderSynthesisGrid, certifier, &Stub::RenderSynthesisGrid, render, &grid, deliberation)) return false;
    result_->grid_bytes = grid.content().size();
    pb::IssueCertificateRequest issue;
    issue.set_name(name);
    if (!Call(kIssueCertificate, certifier, &Stub::IssueCertificate, issue, &c, name)) return false;

    result_->cycles_us.push_back(Micros(Clock::now() - start));
    return true;
  }

 private:
  // Calls `method` as `principal`; records its latency (success) or its code (failure).
  template <typename Req, typename Resp>
  bool Call(Method m, const std::string& principal,
            grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const Req& request,
            Resp* response, const std::string& subject) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + plan_.timeout);
    context.AddMetadata(kPrincipalMetadata, principal);
    const auto t0 = Clock::now();
    grpc::Status status = (stub_.get()->*method)(&context, request, response);
    const auto t1 = Clock::now();
    if (status.ok()) {
      result_->latencies_us[m].push_back(Micros(t1 - t0));
      return true;
    }
    int code = static_cast<int>(status.error_code());
    if (code <= 0 || code >= kNumCodes) code = static_cast<int>(grpc::StatusCode::UNKNOWN);
    result_->errors[m][static_cast<size_t>(code)]++;
    log_->Add(m, status, subject);
    return false;
  }

  const Plan& plan_;
  std::unique_ptr<Stub> stub_;
  std::vector<pb::JuryMember> members_;
  std::vector<std::string> principals_;
  WorkerResult* result_;
  ErrorLog* log_;
};

// Builds the per-member score sheets and the decision from the version tree.
bool MakePlan(const ref::Version& version, int members, Plan* plan, std::string* error) {
  std::vector<std::string> codes;
  for (const auto& bloc : version.blocs()) codes.push_back(bloc.code());
  std::vector<std::string> expected;
  for (const auto& [bloc, percent] : kPercents) expected.push_back(bloc);
  std::vector<std::string> sorted = codes;
  std::sort(sorted.begin(), sorted.end());
  if (sorted != expected) {
    *error = absl::StrCat(version.name(), " has blocs [", absl::StrJoin(codes, ", "),
                          "]; the scenario's decision needs exactly [", absl::StrJoin(expected, ", "), "]");
    return false;
  }
  int interview_levels = 0;  // 0: no INTERVIEW scale, interview_level must be 0
  for (const auto& scale : version.scales()) {
    if (scale.kind() == ref::SCALE_KIND_INTERVIEW) interview_levels = scale.levels_size();
  }
  for (int m = 0; m < members; ++m) {
    const int offset = (m % 3 - 1) * 3;  // -3, 0, +3: members do not agree exactly
    pb::ScoreSheet sheet;
    for (const auto& bloc : version.blocs()) {
      const int percent = kPercents.at(bloc.code());
      for (const auto& comp : bloc.competences()) {
        auto* cs = sheet.add_competence_scores();
        cs->set_competence_code(comp.code());
        cs->set_mark(percent >= 70 ? pb::DOSSIER_MARK_CLEAR : pb::DOSSIER_MARK_PARTIAL);
        cs->set_percent(percent);
      }
      auto* bs = sheet.add_bloc_scores();
      bs->set_bloc_code(bloc.code());
      bs->set_percent(std::clamp(percent + offset, 0, 100));
      bs->set_interview_level(interview_levels == 0 ? 0 : std::min(percent >= 70 ? 3 : 2, interview_levels));
    }
    plan->sheets.push_back(std::move(sheet));
  }
  for (const auto& [bloc, percent] : kPercents) {
    auto* a = plan->decision.add_appreciations();
    a->set_bloc_code(bloc);
    a->set_common_percent(percent);
    a->set_comment(percent >= 70 ? "Maîtrise démontrée" : "À consolider");
  }
  plan->decision.set_proposal(pb::PROPOSAL_KIND_PARTIAL);
  plan->decision.set_comment("Validation partielle : BC1, BC2, BC4");
  return true;
}

std::string Stats(const std::vector<uint32_t>& sorted) {
  return absl::StrFormat("\"count\":%zu,\"p50_us\":%u,\"p99_us\":%u,\"max_us\":%u", sorted.size(),
                         Percentile(sorted, 50), Percentile(sorted, 99), sorted.empty() ? 0 : sorted.back());
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "jury_cycle --target host:port --referential_target host:port [--version NAME] "
      "[--concurrency 8] [--candidates 200] [--members 3]");
  absl::ParseCommandLine(argc, argv);
  // As in loadgen and the server runner: no absl::Mutex deadlock detection on every gRPC lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::string target = absl::GetFlag(FLAGS_target);
  const std::string referential_target = absl::GetFlag(FLAGS_referential_target);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const int candidates = absl::GetFlag(FLAGS_candidates);
  const int members = absl::GetFlag(FLAGS_members);
  const int per_channel = std::max(1, absl::GetFlag(FLAGS_workers_per_channel));
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);

  if (concurrency < 1 || candidates < 1 || members < 3 || members > 20 || timeout <= absl::ZeroDuration()) {
    std::fprintf(stderr,
                 "jury_cycle: --concurrency and --candidates must be >= 1, --members 3..20, --timeout > 0\n");
    return 2;
  }

  Plan plan;
  plan.version = absl::GetFlag(FLAGS_version);
  plan.certifier_principal = absl::StrCat("certifier:", absl::GetFlag(FLAGS_certifier));
  plan.run_id = absl::GetFlag(FLAGS_run_id);
  if (plan.run_id.empty()) {
    plan.run_id = absl::StrFormat("bench-%x%x", absl::ToUnixSeconds(absl::Now()), static_cast<unsigned>(getpid()));
  }
  plan.members = members;
  plan.timeout = absl::ToChronoNanoseconds(timeout);
  const absl::CivilDay today = absl::ToCivilDay(absl::Now(), absl::UTCTimeZone());
  plan.date.set_year(static_cast<int32_t>(today.year()));
  plan.date.set_month(today.month());
  plan.date.set_day(today.day());

  // The version tree, once: its compétence codes go into every score sheet.
  ref::Version version;
  {
    auto channel = Connect(referential_target, 0);
    if (!channel) {
      std::fprintf(stderr, "jury_cycle: cannot connect to referential-svc at %s\n", referential_target.c_str());
      return 1;
    }
    auto stub = ref::ReferentialService::NewStub(channel);
    ref::GetVersionRequest get;
    get.set_name(plan.version);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    context.AddMetadata(kPrincipalMetadata, plan.certifier_principal);
    grpc::Status status = stub->GetVersion(&context, get, &version);
    if (!status.ok()) {
      std::fprintf(stderr, "jury_cycle: GetVersion %s failed: %s: %s\n", plan.version.c_str(),
                   CodeName(status.error_code()), status.error_message().c_str());
      return 1;
    }
  }
  std::string plan_error;
  if (!MakePlan(version, members, &plan, &plan_error)) {
    std::fprintf(stderr, "jury_cycle: %s\n", plan_error.c_str());
    return 2;
  }
  int competences = 0;
  for (const auto& bloc : version.blocs()) competences += bloc.competences_size();

  // Channels: distinct args and a local subchannel pool, so each gets its own TCP connection.
  const int num_channels = (concurrency + per_channel - 1) / per_channel;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < num_channels; ++i) {
    auto channel = Connect(target, i);
    if (!channel) {
      std::fprintf(stderr, "jury_cycle: cannot connect to evaluation-svc at %s\n", target.c_str());
      return 1;
    }
    channels.push_back(std::move(channel));
  }

  std::vector<WorkerResult> results(static_cast<size_t>(concurrency));
  ErrorLog log;
  std::atomic<int> next{0};
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < concurrency; ++w) {
    workers.emplace_back([&, w] {
      WorkerResult& r = results[static_cast<size_t>(w)];
      for (auto& l : r.latencies_us) l.reserve(static_cast<size_t>(candidates / concurrency + 1) * 4);
      Worker worker(plan, channels[static_cast<size_t>(w / per_channel)], w, &r, &log);
      for (int n = next.fetch_add(1); n < candidates; n = next.fetch_add(1)) worker.Cycle(n);
    });
  }
  for (auto& t : workers) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  std::array<std::vector<uint32_t>, kNumMethods> latencies;
  std::vector<uint32_t> cycles;
  std::array<uint64_t, kNumCodes> codes{};
  std::array<uint64_t, kNumMethods> method_errors{};
  size_t grid_bytes = 0;
  for (const auto& r : results) {
    for (int m = 0; m < kNumMethods; ++m) {
      latencies[m].insert(latencies[m].end(), r.latencies_us[m].begin(), r.latencies_us[m].end());
      for (int c = 1; c < kNumCodes; ++c) {
        codes[static_cast<size_t>(c)] += r.errors[m][static_cast<size_t>(c)];
        method_errors[m] += r.errors[m][static_cast<size_t>(c)];
      }
    }
    cycles.insert(cycles.end(), r.cycles_us.begin(), r.cycles_us.end());
    grid_bytes = std::max(grid_bytes, r.grid_bytes);
  }
  uint64_t calls = 0, errors = 0;
  for (auto& l : latencies) {
    std::sort(l.begin(), l.end());
    calls += l.size();
  }
  for (int c = 1; c < kNumCodes; ++c) errors += codes[static_cast<size_t>(c)];
  std::sort(cycles.begin(), cycles.end());
  const double cps = static_cast<double>(cycles.size()) / seconds;
  const double rps = static_cast<double>(calls) / seconds;

  std::printf("scenario     jury_cycle (%s: %d blocs, %d compétences)\n", plan.version.c_str(),
              version.blocs_size(), competences);
  std::printf("target       %s, %d workers on %d connections, %d members per jury, run id %s\n", target.c_str(),
              concurrency, num_channels, members, plan.run_id.c_str());
  std::printf("candidacies  %zu of %d completed in %.3f s\n", cycles.size(), candidates, seconds);
  std::printf("throughput   %.1f candidacies/s, %.0f calls/s (%d calls per cycle)\n", cps, rps, 13 + 3 * members);
  std::printf("cycle        p50 %u us, p99 %u us, max %u us\n", Percentile(cycles, 50), Percentile(cycles, 99),
              cycles.empty() ? 0 : cycles.back());
  std::printf("grid         %zu bytes (PDF)\n", grid_bytes);
  std::printf("%-22s %7s %10s %10s %10s %7s\n", "rpc", "ok", "p50 us", "p99 us", "max us", "errors");
  for (int m = 0; m < kNumMethods; ++m) {
    const auto& l = latencies[m];
    std::printf("%-22s %7zu %10u %10u %10u %7llu\n", kMethodNames[m], l.size(), Percentile(l, 50), Percentile(l, 99),
                l.empty() ? 0 : l.back(), static_cast<unsigned long long>(method_errors[m]));
  }
  std::string errors_json;
  std::printf("errors       %llu", static_cast<unsigned long long>(errors));
  for (int c = 1; c < kNumCodes; ++c) {
    if (codes[static_cast<size_t>(c)] == 0) continue;
    std::printf(" %s=%llu", CodeName(c), static_cast<unsigned long long>(codes[static_cast<size_t>(c)]));
    absl::StrAppend(&errors_json, errors_json.empty() ? "" : ",", "\"", CodeName(c),
                    "\":", codes[static_cast<size_t>(c)]);
  }
  std::printf("\n");
  for (const std::string& line : log.Lines()) std::printf("error        %s\n", line.c_str());

  std::string rpc_json;
  for (int m = 0; m < kNumMethods; ++m) {
    absl::StrAppend(&rpc_json, m == 0 ? "" : ",", "\"", kMethodNames[m], "\":{", Stats(latencies[m]),
                    ",\"errors\":", method_errors[m], "}");
  }
  std::printf("%s\n",
              absl::StrFormat("{\"scenario\":\"jury_cycle\",\"target\":\"%s\",\"version\":\"%s\","
                              "\"concurrency\":%d,\"connections\":%d,\"members\":%d,\"candidates\":%d,"
                              "\"completed\":%zu,\"duration_s\":%.3f,\"candidacies_per_s\":%.2f,"
                              "\"calls\":%llu,\"rps\":%.1f,\"cycle_p50_us\":%u,\"cycle_p99_us\":%u,"
                              "\"cycle_max_us\":%u,\"grid_bytes\":%zu,\"rpc\":{%s},"
                              "\"errors\":%llu,\"errors_by_code\":{%s}}",
                              target, plan.version, concurrency, num_channels, members, candidates, cycles.size(),
                              seconds, cps, static_cast<unsigned long long>(calls), rps, Percentile(cycles, 50),
                              Percentile(cycles, 99), cycles.empty() ? 0 : cycles.back(), grid_bytes, rpc_json,
                              static_cast<unsigned long long>(errors), errors_json)
                  .c_str());
  std::fflush(stdout);
  return errors == 0 && static_cast<int>(cycles.size()) == candidates ? 0 : 1;
}
