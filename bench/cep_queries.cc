// cep_queries: the indicator-query benchmark of cep-svc (see bench/README.md, run_cep_queries.sh).
//
//   cep_queries --target HOST:PORT [--repeat 50] [--warmup 1] [--kinds entries_month,...]
//               [--month 2017-03] [--year 2017] [--from_month 2015-01] [--to_month 2018-07]
//
// Runs QueryIndicators as principal "national" against a cep-svc holding the synthetic national
// dataset (imported by cep_import), one kind of query after the other, each --warmup times
// untimed then --repeat times timed, one call at a time. A call's latency runs from the call to
// the last byte of the response received (the response is received as bytes; parsing it, to
// count the cells, is not timed). Prints per kind the cells returned, the response's size, the
// sum of the values, p50 / p99 / max in ms and the target as OK / MISSED (not enforced), then one
// JSON line. Exits 1 if a call fails.
#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bench/latency.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/impl/rpc_method.h"
#include "parcours/cep/v1/cep.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:8443", "cep-svc address host:port");
ABSL_FLAG(int, repeat, 50, "Timed calls per kind of query (sequential)");
ABSL_FLAG(int, warmup, 1, "Untimed calls per kind before the timed ones");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(120), "Deadline of each call");
ABSL_FLAG(std::string, principal, "national", "x-parcours-principal of the calls");
ABSL_FLAG(std::string, kinds, "",
          "Comma-separated kinds to run (entries_month, entries_year, active_month, active_year, "
          "national_table, socle_cross_year); empty = all");
ABSL_FLAG(std::string, month, "2017-03", "The month of the *_month kinds");
ABSL_FLAG(int, year, 2017, "The year of the *_year kinds and of socle_cross_year");
ABSL_FLAG(std::string, from_month, "2015-01", "First month of national_table (the dataset's first)");
ABSL_FLAG(std::string, to_month, "2018-07", "Last month of national_table (the dataset's last)");

namespace {

namespace pb = ::parcours::cep::v1;
using Clock = std::chrono::steady_clock;
using parcours::bench::CodeName;
using parcours::bench::kNumCodes;
using parcours::bench::Percentile;

constexpr char kPrincipalMetadata[] = "x-parcours-principal";  // platform/principal.h

struct Kind {
  std::string name;
  pb::QueryIndicatorsRequest request;
  uint32_t p50_target_ms = 0;  // 0: no p50 target
  uint32_t p99_target_ms = 0;
};

struct KindResult {
  std::vector<uint32_t> latencies_us;  // successful timed calls, sorted at the end
  std::array<uint64_t, kNumCodes> codes{};
  std::string first_error;
  size_t cells = 0;  // of the last successful call
  size_t bytes = 0;
  int64_t value_sum = 0;
  bool cells_vary = false;  // two successful calls returned different cell counts
};

std::string DimensionName(pb::Dimension d) {
  std::string s = pb::Dimension_Name(d);
  const std::string prefix = "DIMENSION_";
  if (s.rfind(prefix, 0) == 0) s = s.substr(prefix.size());
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string GroupName(const pb::QueryIndicatorsRequest& r) {
  std::vector<std::string> names;
  for (int d : r.group_by()) names.push_back(DimensionName(static_cast<pb::Dimension>(d)));
  return absl::StrJoin(names, ",");
}

std::string PeriodName(const pb::QueryIndicatorsRequest& r) {
  return r.from_month() == r.to_month() ? r.from_month() : absl::StrCat(r.from_month(), "..", r.to_month());
}

std::string MeasureName(pb::Measure m) {
  return m == pb::MEASURE_ENTRIES ? "entries" : m == pb::MEASURE_ACTIVE_BENEFICIARIES ? "active" : "?";
}

pb::QueryIndicatorsRequest Query(pb::Measure measure, const std::string& from, const std::string& to,
                                 const std::vector<pb::Dimension>& group_by) {
  pb::QueryIndicatorsRequest r;
  r.set_measure(measure);
  r.set_from_month(from);
  r.set_to_month(to);
  for (pb::Dimension d : group_by) r.add_group_by(d);
  return r;
}

std::vector<Kind> AllKinds() {
  const std::string month = absl::GetFlag(FLAGS_month);
  const int year = absl::GetFlag(FLAGS_year);
  const std::string jan = absl::StrFormat("%04d-01", year), dec = absl::StrFormat("%04d-12", year);
  const std::vector<pb::Dimension> table = {pb::DIMENSION_OPERATOR, pb::DIMENSION_REGION, pb::DIMENSION_SEX,
                                            pb::DIMENSION_STATUS};
  const std::vector<pb::Dimension> national = {pb::DIMENSION_REGION, pb::DIMENSION_SEX, pb::DIMENSION_AGE_BAND,
                                               pb::DIMENSION_STATUS, pb::DIMENSION_LEVEL};
  const std::vector<pb::Dimension> socle = {pb::DIMENSION_OPERATOR, pb::DIMENSION_REGION, pb::DIMENSION_SEX,
                                            pb::DIMENSION_AGE_BAND, pb::DIMENSION_STATUS, pb::DIMENSION_LEVEL,
                                            pb::DIMENSION_DEMAND};
  std::vector<Kind> kinds;
  // (a), (b), (c): the operator x region x sex x status table, a month and a year month by month.
  kinds.push_back({"entries_month", Query(pb::MEASURE_ENTRIES, month, month, table), 50, 200});
  kinds.push_back({"entries_year", Query(pb::MEASURE_ENTRIES, jan, dec, table), 50, 200});
  kinds.push_back({"active_month", Query(pb::MEASURE_ACTIVE_BENEFICIARIES, month, month, table), 50, 200});
  kinds.push_back({"active_year", Query(pb::MEASURE_ACTIVE_BENEFICIARIES, jan, dec, table), 50, 200});
  // (d): the national table over the whole dataset, and the socle's full cross over a year.
  kinds.push_back({"national_table",
                   Query(pb::MEASURE_ENTRIES, absl::GetFlag(FLAGS_from_month), absl::GetFlag(FLAGS_to_month), national),
                   0, 500});
  kinds.push_back({"socle_cross_year", Query(pb::MEASURE_ENTRIES, jan, dec, socle), 0, 500});
  return kinds;
}

std::string TargetText(const Kind& k) {
  if (k.p50_target_ms == 0) return absl::StrCat("p99<=", k.p99_target_ms, "ms");
  return absl::StrCat("p50<=", k.p50_target_ms, "ms,p99<=", k.p99_target_ms, "ms");
}

bool Parse(const grpc::ByteBuffer& buffer, pb::QueryIndicatorsResponse* out) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  bytes.reserve(buffer.Length());
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out->ParseFromString(bytes);
}

double Ms(uint32_t us) { return static_cast<double>(us) / 1000.0; }

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("cep_queries --target HOST:PORT [--repeat 50] [--warmup 1] [--kinds a,b]");
  absl::ParseCommandLine(argc, argv);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);  // as loadgen
  const std::string target = absl::GetFlag(FLAGS_target);
  const int repeat = absl::GetFlag(FLAGS_repeat);
  const int warmup = std::max(0, absl::GetFlag(FLAGS_warmup));
  const auto timeout = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_timeout));
  const std::string principal = absl::GetFlag(FLAGS_principal);
  if (repeat < 1) {
    std::fprintf(stderr, "cep_queries: --repeat must be >= 1\n");
    return 2;
  }

  std::vector<Kind> kinds = AllKinds();
  if (!absl::GetFlag(FLAGS_kinds).empty()) {
    std::set<std::string> wanted;
    for (absl::string_view k : absl::StrSplit(absl::GetFlag(FLAGS_kinds), ',', absl::SkipEmpty())) {
      wanted.insert(std::string(k));
    }
    std::vector<Kind> kept;
    for (Kind& k : kinds) {
      if (wanted.erase(k.name) > 0) kept.push_back(std::move(k));
    }
    if (!wanted.empty()) {
      std::fprintf(stderr, "cep_queries: unknown kind %s\n", wanted.begin()->c_str());
      return 2;
    }
    kinds = std::move(kept);
  }

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // the socle's full cross over a year is tens of MB
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
    std::fprintf(stderr, "cep_queries: cannot connect to %s\n", target.c_str());
    return 1;
  }
  const std::string method_name = absl::StrCat("/", pb::CepService::service_full_name(), "/QueryIndicators");
  const grpc::internal::RpcMethod method(method_name.c_str(), grpc::internal::RpcMethod::NORMAL_RPC, channel);

  std::printf("cep_queries: %s as %s, %d timed calls per kind after %d warm-up, one call at a time\n",
              target.c_str(), principal.c_str(), repeat, warmup);
  std::fflush(stdout);
  std::vector<KindResult> results(kinds.size());
  for (size_t k = 0; k < kinds.size(); ++k) {
    const std::string bytes = kinds[k].request.SerializeAsString();
    grpc::Slice slice(bytes);
    const grpc::ByteBuffer request(&slice, 1);
    KindResult& r = results[k];
    size_t last_cells = 0;
    bool seen = false;
    for (int i = 0; i < warmup + repeat; ++i) {
      grpc::ClientContext context;
      context.AddMetadata(kPrincipalMetadata, principal);
      context.set_deadline(std::chrono::system_clock::now() + timeout);
      grpc::ByteBuffer response;
      const auto t0 = Clock::now();
      grpc::Status status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
          channel.get(), method, &context, request, &response);
      const auto t1 = Clock::now();
      int code = parcours::bench::CodeIndex(status.error_code());
      pb::QueryIndicatorsResponse parsed;
      if (status.ok() && !Parse(response, &parsed)) {
        code = static_cast<int>(grpc::StatusCode::DATA_LOSS);
        status = grpc::Status(grpc::StatusCode::DATA_LOSS, "response does not parse as QueryIndicatorsResponse");
      }
      if (!status.ok()) {
        r.codes[static_cast<size_t>(code)]++;  // warm-up failures count too
        if (r.first_error.empty()) r.first_error = absl::StrCat(CodeName(code), ": ", status.error_message());
        continue;
      }
      if (seen && static_cast<size_t>(parsed.cells_size()) != last_cells) r.cells_vary = true;
      seen = true;
      last_cells = static_cast<size_t>(parsed.cells_size());
      r.cells = last_cells;
      r.bytes = response.Length();
      r.value_sum = 0;
      for (const pb::IndicatorCell& c : parsed.cells()) r.value_sum += c.value();
      if (i < warmup) continue;
      r.codes[0]++;
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count();
      r.latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
    }
    std::sort(r.latencies_us.begin(), r.latencies_us.end());
  }

  std::printf("%-17s %-8s %-17s %-48s %8s %10s %9s %8s %8s %8s  %s\n", "kind", "measure", "period", "group by",
              "cells", "bytes", "sum", "p50 ms", "p99 ms", "max ms", "target");
  uint64_t errors = 0;
  std::array<uint64_t, kNumCodes> codes{};
  std::string kinds_json;
  bool all_met = true;
  for (size_t k = 0; k < kinds.size(); ++k) {
    const Kind& kind = kinds[k];
    const KindResult& r = results[k];
    const uint32_t p50 = Percentile(r.latencies_us, 50), p99 = Percentile(r.latencies_us, 99);
    const uint32_t max = r.latencies_us.empty() ? 0 : r.latencies_us.back();
    const bool met = !r.latencies_us.empty() &&
                     (kind.p50_target_ms == 0 || Ms(p50) <= kind.p50_target_ms) && Ms(p99) <= kind.p99_target_ms;
    all_met = all_met && met;
    uint64_t kind_errors = 0;
    for (int c = 1; c < kNumCodes; ++c) {
      kind_errors += r.codes[static_cast<size_t>(c)];
      codes[static_cast<size_t>(c)] += r.codes[static_cast<size_t>(c)];
    }
    errors += kind_errors;
    std::printf("%-17s %-8s %-17s %-48s %8zu %10zu %9lld %8.1f %8.1f %8.1f  %s %s%s\n", kind.name.c_str(),
                MeasureName(kind.request.measure()).c_str(), PeriodName(kind.request).c_str(),
                GroupName(kind.request).c_str(), r.cells, r.bytes, static_cast<long long>(r.value_sum), Ms(p50),
                Ms(p99), Ms(max), TargetText(kind).c_str(), met ? "OK" : "MISSED",
                r.cells_vary ? " (cell count varied between calls)" : "");
    if (kind_errors > 0) {
      std::printf("  %s: %llu failed calls, first %s\n", kind.name.c_str(),
                  static_cast<unsigned long long>(kind_errors), r.first_error.c_str());
    }
    absl::StrAppend(&kinds_json, kinds_json.empty() ? "" : ",",
                    absl::StrFormat("\"%s\":{\"measure\":\"%s\",\"period\":\"%s\",\"group_by\":\"%s\",\"cells\":%zu,"
                                    "\"response_bytes\":%zu,\"value_sum\":%lld,\"calls\":%zu,\"p50_ms\":%.2f,"
                                    "\"p99_ms\":%.2f,\"max_ms\":%.2f,\"target\":\"%s\",\"met\":%s,\"errors\":%llu}",
                                    kind.name, MeasureName(kind.request.measure()), PeriodName(kind.request),
                                    GroupName(kind.request), r.cells, r.bytes, static_cast<long long>(r.value_sum),
                                    r.latencies_us.size(), Ms(p50), Ms(p99), Ms(max), TargetText(kind),
                                    met ? "true" : "false", static_cast<unsigned long long>(kind_errors)));
  }
  std::string errors_json;
  for (int c = 1; c < kNumCodes; ++c) {
    if (codes[static_cast<size_t>(c)] == 0) continue;
    absl::StrAppend(&errors_json, errors_json.empty() ? "" : ",", "\"", CodeName(c),
                    "\":", codes[static_cast<size_t>(c)]);
  }
  std::printf("targets      %s (printed, not enforced; with %d calls p99 is the %s call)\n",
              all_met ? "all met" : "some MISSED", repeat,
              repeat < 100 ? "slowest" : "99th percentile");
  std::printf("%s\n", absl::StrFormat("{\"scenario\":\"cep_queries\",\"target\":\"%s\",\"principal\":\"%s\","
                                      "\"repeat\":%d,\"warmup\":%d,\"kinds\":{%s},\"all_targets_met\":%s,"
                                      "\"errors\":%llu,\"errors_by_code\":{%s}}",
                                      target, principal, repeat, warmup, kinds_json, all_met ? "true" : "false",
                                      static_cast<unsigned long long>(errors), errors_json)
                          .c_str());
  std::fflush(stdout);
  return errors == 0 ? 0 : 1;
}
