// cep_import: the bulk-import benchmark of cep-svc (see bench/README.md, run_cep_import.sh).
//
//   cep_import --target HOST:PORT [--total 5791059] [--seed 20150101] [--batch 1000]
//              [--workers 4] [--operator-sharding=true] [--create-operators]
//
// Streams the synthetic national dataset (cep_dataset.h) through ImportCases. Worker w takes the
// rows i with i % workers == w (CepDataset::Shard) and sends each row on the stream of its
// operator (principal "operator:<CepOperatorIdOf(external_id)>"), opened on first use: one
// ImportCases stream per (worker, operator), each message carrying --batch rows. With
// --operator-sharding=false every row goes to operator "ft" (one stream per worker).
// Prints rows/s, elapsed seconds and the summed response counts, then one JSON line.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
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
#include "bench/cep_dataset.h"
#include "grpcpp/grpcpp.h"
#include "parcours/cep/v1/cep.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:8443", "cep-svc address host:port");
ABSL_FLAG(bool, operator_sharding, true,
          "One stream per operator present in the rows (principal operator:<id>); false: every row as operator:ft");
ABSL_FLAG(int, workers, 4, "Worker threads; worker w sends the rows i with i % workers == w");
ABSL_FLAG(int64_t, total, parcours::bench::kCepSeedEntries, "Rows of the dataset");
ABSL_FLAG(int, batch, 1000, "Rows per ImportCasesRequest message");
ABSL_FLAG(uint64_t, seed, 20150101, "Seed of the dataset");
ABSL_FLAG(bool, create_operators, false,
          "First create every operator of CepOperators() as principal national (existing ones are kept); "
          "not timed");

namespace {

namespace pb = ::parcours::cep::v1;
using parcours::bench::CepDataset;

constexpr char kPrincipalMetadata[] = "x-parcours-principal";  // platform/principal.h

struct Totals {
  std::mutex mu;
  int64_t rows_sent = 0;
  int64_t rows_received = 0;
  int64_t created = 0;
  int64_t unchanged = 0;
  int64_t errors = 0;       // entries listed
  int64_t failed_streams = 0;
  std::vector<std::string> samples;  // first errors / failures
  int64_t streams = 0;
};

struct Stream {
  grpc::ClientContext ctx;
  pb::ImportCasesResponse response;
  std::unique_ptr<grpc::ClientWriter<pb::ImportCasesRequest>> writer;
  pb::ImportCasesRequest pending;
  bool broken = false;
  int64_t sent = 0;
};

void Worker(int index, int workers, const std::shared_ptr<grpc::Channel>& channel, Totals& totals) {
  auto stub = pb::CepService::NewStub(channel);
  const bool sharding = absl::GetFlag(FLAGS_operator_sharding);
  const int batch = std::max(1, absl::GetFlag(FLAGS_batch));
  CepDataset dataset(absl::GetFlag(FLAGS_seed), absl::GetFlag(FLAGS_total));
  dataset.Shard(index, workers);
  std::map<std::string, std::unique_ptr<Stream>> streams;
  auto flush = [&](Stream& s) {
    if (s.pending.cases_size() == 0) return;
    if (!s.broken && !s.writer->Write(s.pending)) s.broken = true;
    s.sent += s.pending.cases_size();
    s.pending.Clear();
  };
  pb::ImportedCase row;
  while (dataset.Next(&row)) {
    const std::string op = sharding ? dataset.operator_id() : "ft";
    std::unique_ptr<Stream>& s = streams[op];
    if (!s) {
      s = std::make_unique<Stream>();
      s->ctx.AddMetadata(kPrincipalMetadata, absl::StrCat("operator:", op));
      s->writer = stub->ImportCases(&s->ctx, &s->response);
    }
    *s->pending.add_cases() = row;
    if (s->pending.cases_size() >= batch) flush(*s);
  }
  for (auto& [op, s] : streams) {
    flush(*s);
    s->writer->WritesDone();
  }
  for (auto& [op, s] : streams) {
    grpc::Status status = s->writer->Finish();
    std::lock_guard<std::mutex> lock(totals.mu);
    ++totals.streams;
    totals.rows_sent += s->sent;
    if (!status.ok()) {
      ++totals.failed_streams;
      if (totals.samples.size() < 10) {
        totals.samples.push_back(absl::StrCat("operator:", op, ": ", status.error_code(), " ", status.error_message()));
      }
      continue;
    }
    totals.rows_received += s->response.rows_received();
    totals.created += s->response.cases_created();
    totals.unchanged += s->response.cases_unchanged();
    totals.errors += s->response.errors_size();
    for (const pb::ImportRowError& e : s->response.errors()) {
      if (totals.samples.size() >= 10) break;
      totals.samples.push_back(absl::StrCat("operator:", op, " line ", e.line(), " ", e.external_id(), " ", e.field(),
                                            ": ", e.reason()));
    }
  }
}

// CreateOperator for every operator of the dataset (national networks serve every region; the
// dataset's kinds are all designated by law, so no designation is needed). False on a failure.
bool CreateOperators(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = pb::CepService::NewStub(channel);
  int created = 0;
  for (const parcours::bench::CepOperator& op : parcours::bench::CepOperators()) {
    grpc::ClientContext ctx;
    ctx.AddMetadata(kPrincipalMetadata, "national");
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    pb::CreateOperatorRequest req;
    req.set_operator_id(op.id);
    req.mutable_operator_()->set_display_name(op.display_name);
    req.mutable_operator_()->set_kind(op.kind);
    for (const std::string& r : op.regions) req.mutable_operator_()->add_regions(r);
    pb::Operator out;
    grpc::Status s = stub->CreateOperator(&ctx, req, &out);
    if (s.ok()) {
      ++created;
    } else if (s.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
      std::fprintf(stderr, "cep_import: CreateOperator %s: %d %s\n", op.id.c_str(), s.error_code(),
                   s.error_message().c_str());
      return false;
    }
  }
  std::printf("cep_import: %d operators created (%zu in the dataset)\n", created,
              parcours::bench::CepOperators().size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Accept --operator-sharding as well as --operator_sharding.
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> fixed;
  for (std::string& a : args) {
    if (a.rfind("--", 0) == 0) {
      const size_t end = std::min(a.find('='), a.size());
      std::replace(a.begin() + 2, a.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
    }
    fixed.push_back(a.data());
  }
  absl::SetProgramUsageMessage("cep_import --target HOST:PORT [--total N] [--batch 1000] [--workers 4]");
  absl::ParseCommandLine(static_cast<int>(fixed.size()), fixed.data());
  const int workers = std::max(1, absl::GetFlag(FLAGS_workers));
  const std::string target = absl::GetFlag(FLAGS_target);

  if (absl::GetFlag(FLAGS_create_operators) &&
      !CreateOperators(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))) {
    return 1;
  }

  Totals totals;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    grpc::ChannelArguments args_w;
    args_w.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one TCP connection per worker
    args_w.SetMaxSendMessageSize(-1);
    auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args_w);
    threads.emplace_back([w, workers, channel, &totals] { Worker(w, workers, channel, totals); });
  }
  for (std::thread& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = secs > 0 ? static_cast<double>(totals.rows_received) / secs : 0;

  std::printf("cep_import: %lld rows sent on %lld streams (%d workers), %.1f s, %.0f rows/s\n",
              static_cast<long long>(totals.rows_sent), static_cast<long long>(totals.streams), workers, secs, rate);
  std::printf("  received %lld  created %lld  unchanged %lld  errors listed %lld  failed streams %lld\n",
              static_cast<long long>(totals.rows_received), static_cast<long long>(totals.created),
              static_cast<long long>(totals.unchanged), static_cast<long long>(totals.errors),
              static_cast<long long>(totals.failed_streams));
  for (const std::string& s : totals.samples) std::printf("  %s\n", s.c_str());
  std::printf(
      "{\"rows_sent\":%lld,\"rows_received\":%lld,\"created\":%lld,\"unchanged\":%lld,\"errors\":%lld,"
      "\"failed_streams\":%lld,\"streams\":%lld,\"workers\":%d,\"elapsed_s\":%.3f,\"rows_per_s\":%.1f}\n",
      static_cast<long long>(totals.rows_sent), static_cast<long long>(totals.rows_received),
      static_cast<long long>(totals.created), static_cast<long long>(totals.unchanged),
      static_cast<long long>(totals.errors), static_cast<long long>(totals.failed_streams),
      static_cast<long long>(totals.streams), workers, secs, rate);
  return totals.failed_streams == 0 ? 0 : 1;
}
