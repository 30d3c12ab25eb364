// loadgen: closed-loop gRPC load generator for the bench/ scenarios.
//
//   loadgen --target 127.0.0.1:PORT --scenario echo|get_version [--name NAME]
//           [--concurrency 32] [--duration 10s] [--warmup 2s]
//
// Each worker is a thread issuing blocking unary calls back to back (one in flight per worker).
// Workers share channels, one per 4 workers, each with its own TCP connection. Calls that start
// during the warm-up are not counted; after warm-up, every completed call inside the measured
// window is. Prints a human summary, then one JSON line for scripts.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bench/latency.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/impl/rpc_method.h"
#include "parcours/bench/v1/bench.grpc.pb.h"
#include "parcours/referential/v1/referential.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:8443", "Server address host:port");
ABSL_FLAG(std::string, scenario, "echo", "echo | get_version");
ABSL_FLAG(std::string, name, "certifications/CQP-TMSA/versions/1", "Resource name for get_version");
ABSL_FLAG(int, concurrency, 32, "Workers (threads), one call in flight each");
ABSL_FLAG(int, workers_per_channel, 4, "Workers sharing one channel (TCP connection)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "Measured duration");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(2), "Warm-up before measuring");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5), "Deadline of each call");
ABSL_FLAG(int, payload_bytes, 16, "Echo payload size");
ABSL_FLAG(bool, decode, false,
          "Parse each response with the generated stubs. Off by default: responses are received "
          "as bytes, so that on a machine shared with the server the client spends as little CPU "
          "as possible (a 20 KB Version costs the client more to parse than the server to send)");

namespace {

using Clock = std::chrono::steady_clock;

using parcours::bench::CodeName;
using parcours::bench::kNumCodes;
using parcours::bench::Percentile;

struct WorkerResult {
  std::vector<uint32_t> latencies_us;  // successful calls in the measured window
  std::array<uint64_t, kNumCodes> codes{};
};

// One call of the scenario; returns its status.
class Caller {
 public:
  virtual ~Caller() = default;
  virtual grpc::Status Call(grpc::ClientContext* context) = 0;
  // When set, Call() records the serialized size of the response (used on the first call).
  bool measure_size = false;
  size_t last_response_bytes = 0;
};

class EchoCaller final : public Caller {
 public:
  EchoCaller(const std::shared_ptr<grpc::Channel>& channel, int payload_bytes)
      : stub_(parcours::bench::v1::BenchService::NewStub(channel)) {
    request_.set_payload(std::string(static_cast<size_t>(std::max(payload_bytes, 0)), 'x'));
  }
  grpc::Status Call(grpc::ClientContext* context) override {
    parcours::bench::v1::EchoResponse response;
    grpc::Status status = stub_->Echo(context, request_, &response);
    if (measure_size) last_response_bytes = response.ByteSizeLong();
    return status;
  }

 private:
  std::unique_ptr<parcours::bench::v1::BenchService::Stub> stub_;
  parcours::bench::v1::EchoRequest request_;
};

class GetVersionCaller final : public Caller {
 public:
  GetVersionCaller(const std::shared_ptr<grpc::Channel>& channel, const std::string& name)
      : stub_(parcours::referential::v1::ReferentialService::NewStub(channel)) {
    request_.set_name(name);
  }
  grpc::Status Call(grpc::ClientContext* context) override {
    parcours::referential::v1::Version response;
    grpc::Status status = stub_->GetVersion(context, request_, &response);
    if (measure_size) last_response_bytes = response.ByteSizeLong();
    return status;
  }

 private:
  std::unique_ptr<parcours::referential::v1::ReferentialService::Stub> stub_;
  parcours::referential::v1::GetVersionRequest request_;
};

// The same calls without decoding the response: request serialized once, response kept as
// bytes. Uses the blocking call the generated stubs use (grpcpp/impl/client_unary_call.h).
class RawCaller final : public Caller {
 public:
  RawCaller(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
            const google::protobuf::Message& request)
      : channel_(channel),
        method_name_(method),
        method_(method_name_.c_str(), grpc::internal::RpcMethod::NORMAL_RPC, channel) {
    const std::string bytes = request.SerializeAsString();
    grpc::Slice slice(bytes);
    request_ = grpc::ByteBuffer(&slice, 1);
  }
  grpc::Status Call(grpc::ClientContext* context) override {
    grpc::ByteBuffer response;
    grpc::Status status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
        channel_.get(), method_, context, request_, &response);
    if (measure_size) last_response_bytes = response.Length();
    return status;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::string method_name_;
  grpc::internal::RpcMethod method_;
  grpc::ByteBuffer request_;
};

std::unique_ptr<Caller> MakeCaller(const std::string& scenario, bool decode,
                                   const std::shared_ptr<grpc::Channel>& channel,
                                   const std::string& name, int payload_bytes) {
  if (scenario == "echo") {
    if (decode) return std::make_unique<EchoCaller>(channel, payload_bytes);
    parcours::bench::v1::EchoRequest request;
    request.set_payload(std::string(static_cast<size_t>(std::max(payload_bytes, 0)), 'x'));
    return std::make_unique<RawCaller>(
        channel, absl::StrCat("/", parcours::bench::v1::BenchService::service_full_name(), "/Echo"),
        request);
  }
  if (decode) return std::make_unique<GetVersionCaller>(channel, name);
  parcours::referential::v1::GetVersionRequest request;
  request.set_name(name);
  return std::make_unique<RawCaller>(
      channel,
      absl::StrCat("/", parcours::referential::v1::ReferentialService::service_full_name(),
                   "/GetVersion"),
      request);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "loadgen --target host:port --scenario echo|get_version [--concurrency N] "
      "[--duration 10s] [--warmup 2s]");
  absl::ParseCommandLine(argc, argv);
  // As in the server runner: Debian's Abseil keeps absl::Mutex deadlock detection (a lock graph
  // and a stack trace per acquisition) on, which gRPC pays on every call.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::string target = absl::GetFlag(FLAGS_target);
  const std::string scenario = absl::GetFlag(FLAGS_scenario);
  const std::string name = absl::GetFlag(FLAGS_name);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const int per_channel = std::max(1, absl::GetFlag(FLAGS_workers_per_channel));
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const absl::Duration warmup = absl::GetFlag(FLAGS_warmup);
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  const int payload_bytes = absl::GetFlag(FLAGS_payload_bytes);
  const bool decode = absl::GetFlag(FLAGS_decode);

  if (scenario != "echo" && scenario != "get_version") {
    std::fprintf(stderr, "loadgen: unknown --scenario %s (echo | get_version)\n", scenario.c_str());
    return 2;
  }
  if (concurrency < 1 || duration <= absl::ZeroDuration() || warmup < absl::ZeroDuration()) {
    std::fprintf(stderr, "loadgen: --concurrency must be >= 1, --duration > 0, --warmup >= 0\n");
    return 2;
  }

  // Channels: distinct args and a local subchannel pool, so each gets its own TCP connection.
  const int num_channels = (concurrency + per_channel - 1) / per_channel;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < num_channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("parcours.loadgen.channel_index", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      std::fprintf(stderr, "loadgen: cannot connect to %s\n", target.c_str());
      return 1;
    }
    channels.push_back(std::move(channel));
  }

  // A first call, so that a wrong target or name fails loudly instead of as 100% errors.
  size_t response_bytes = 0;
  {
    // The probe always decodes: it checks that the server answers with the right message.
    std::unique_ptr<Caller> probe = MakeCaller(scenario, true, channels[0], name, payload_bytes);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    probe->measure_size = true;
    grpc::Status status = probe->Call(&context);
    response_bytes = probe->last_response_bytes;
    if (!status.ok()) {
      std::fprintf(stderr, "loadgen: first %s call failed: %s: %s\n", scenario.c_str(),
                   CodeName(status.error_code()), status.error_message().c_str());
      return 1;
    }
  }

  const auto start = Clock::now();
  const auto measure_from = start + absl::ToChronoNanoseconds(warmup);
  const auto measure_until = measure_from + absl::ToChronoNanoseconds(duration);
  const auto call_timeout = absl::ToChronoNanoseconds(timeout);

  std::vector<WorkerResult> results(static_cast<size_t>(concurrency));
  std::vector<std::thread> workers;
  for (int w = 0; w < concurrency; ++w) {
    workers.emplace_back([&, w] {
      WorkerResult& r = results[static_cast<size_t>(w)];
      const auto& channel = channels[static_cast<size_t>(w / per_channel)];
      std::unique_ptr<Caller> caller = MakeCaller(scenario, decode, channel, name, payload_bytes);
      r.latencies_us.reserve(1 << 16);
      while (true) {
        const auto t0 = Clock::now();
        if (t0 >= measure_until) break;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + call_timeout);
        grpc::Status status = caller->Call(&context);
        const auto t1 = Clock::now();
        if (t0 < measure_from || t1 > measure_until) continue;  // warm-up or overflow
        int code = static_cast<int>(status.error_code());
        if (code < 0 || code >= kNumCodes) code = static_cast<int>(grpc::StatusCode::UNKNOWN);
        r.codes[static_cast<size_t>(code)]++;
        if (status.ok()) {
          const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count();
          r.latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
        }
      }
    });
  }
  for (auto& t : workers) t.join();

  std::vector<uint32_t> latencies;
  std::array<uint64_t, kNumCodes> codes{};
  for (const auto& r : results) {
    latencies.insert(latencies.end(), r.latencies_us.begin(), r.latencies_us.end());
    for (size_t c = 0; c < kNumCodes; ++c) codes[c] += r.codes[c];
  }
  std::sort(latencies.begin(), latencies.end());
  uint64_t errors = 0;
  for (int c = 1; c < kNumCodes; ++c) errors += codes[static_cast<size_t>(c)];
  const double seconds = absl::ToDoubleSeconds(duration);
  const double rps = static_cast<double>(latencies.size()) / seconds;
  const uint32_t p50 = Percentile(latencies, 50), p99 = Percentile(latencies, 99),
                 p999 = Percentile(latencies, 99.9);
  const uint32_t max = latencies.empty() ? 0 : latencies.back();

  std::printf("scenario     %s (%s)\n", scenario.c_str(),
              scenario == "get_version" ? name.c_str() : "BenchService/Echo");
  std::printf("target       %s, %d workers on %d connections, responses %s\n", target.c_str(),
              concurrency, num_channels, decode ? "decoded" : "not decoded");
  std::printf("duration     %s after %s warm-up\n", absl::FormatDuration(duration).c_str(),
              absl::FormatDuration(warmup).c_str());
  std::printf("response     %zu bytes\n", response_bytes);
  std::printf("ok calls     %zu\n", latencies.size());
  std::printf("throughput   %.0f calls/s\n", rps);
  std::printf("latency      p50 %u us, p99 %u us, p99.9 %u us, max %u us\n", p50, p99, p999, max);
  std::string errors_json;
  std::printf("errors       %llu", static_cast<unsigned long long>(errors));
  for (int c = 1; c < kNumCodes; ++c) {
    if (codes[static_cast<size_t>(c)] == 0) continue;
    std::printf(" %s=%llu", CodeName(c),
                static_cast<unsigned long long>(codes[static_cast<size_t>(c)]));
    absl::StrAppend(&errors_json, errors_json.empty() ? "" : ",", "\"", CodeName(c),
                    "\":", codes[static_cast<size_t>(c)]);
  }
  std::printf("\n");
  std::printf("%s\n", absl::StrFormat("{\"scenario\":\"%s\",\"target\":\"%s\",\"concurrency\":%d,"
                                      "\"connections\":%d,\"decode\":%s,\"response_bytes\":%zu,"
                                      "\"duration_s\":%.3f,\"ok\":%zu,\"rps\":%.1f,"
                                      "\"p50_us\":%u,\"p99_us\":%u,\"p999_us\":%u,\"max_us\":%u,"
                                      "\"errors\":%llu,\"errors_by_code\":{%s}}",
                                      scenario, target, concurrency, num_channels,
                                      decode ? "true" : "false", response_bytes, seconds,
                                      latencies.size(), rps, p50, p99, p999, max,
                                      static_cast<unsigned long long>(errors), errors_json)
                          .c_str());
  std::fflush(stdout);
  return 0;
}
