// The bench/ clients' closed loop on gRPC's callback API (no thread per call), so that on a
// machine shared with the servers the client takes as little CPU as it can.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "absl/time/time.h"
#include "bench/latency.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace parcours::bench {

// A plaintext channel with its own TCP connection (distinct channel arguments per index).
inline std::shared_ptr<grpc::Channel> NewChannel(const std::string& target, int index) {
  grpc::ChannelArguments args;
  args.SetInt("parcours.bench.channel_index", index);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

// What a run calls: a full method name, the serialised request, one metadata pair. When
// `next_request` is set, each call sends next_request(n) instead (n = 0, 1, 2, ... across the
// run's slots), for calls that must differ (a case per beneficiary).
struct Call {
  std::string target;
  std::string method;
  std::string request;
  std::pair<std::string, std::string> metadata;
  std::function<std::string(int64_t)> next_request = nullptr;
};

// CPU seconds (user + system) a process has used so far, from /proc/PID/stat (pid 0: this
// process); -1 when it cannot be read.
inline double ProcessCpuSeconds(int pid) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/stat") : "/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t end_of_name = stat.rfind(')');  // the name may hold spaces
  if (end_of_name == std::string::npos) return -1;
  // After ") ": state (field 3) ... utime (14), stime (15).
  size_t pos = end_of_name + 2;
  for (int field = 3; field < 14; ++field) {
    pos = stat.find(' ', pos);
    if (pos == std::string::npos) return -1;
    ++pos;
  }
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(stat.c_str() + pos, "%llu %llu", &utime, &stime) != 2) return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A process whose CPU time a run reports per call (pid 0: the client itself).
struct WatchedProcess {
  std::string name;
  int pid = 0;
};

// "name=pid,name=pid" (as --watch gives it) with the client itself first; false on a malformed
// entry.
inline bool ParseWatched(const std::string& spec, std::vector<WatchedProcess>* out) {
  out->assign(1, WatchedProcess{"client", 0});
  size_t start = 0;
  while (start < spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    const std::string item = spec.substr(start, end - start);
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    const std::string pid = item.substr(eq + 1);
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) return false;
    out->push_back({item.substr(0, eq), std::stoi(pid)});
    start = end + 1;
  }
  return true;
}

// "cpu us/call  client 31  gateway 80 ..." for a run that watched processes; empty otherwise.
inline std::string CpuLine(const std::vector<std::pair<std::string, double>>& cpu) {
  if (cpu.empty()) return "";
  std::string line = "cpu us/call";
  double total = 0;
  for (const auto& [name, us] : cpu) {
    line += "  " + name + " " + (us < 0 ? std::string("?") : std::to_string(static_cast<int64_t>(us + 0.5)));
    if (us > 0) total += us;
  }
  return line + "  (all " + std::to_string(static_cast<int64_t>(total + 0.5)) + ")";
}

struct RunResult {
  std::string name;
  int inflight = 0;
  std::vector<uint32_t> latencies_us;  // successful calls in the window, sorted
  std::array<uint64_t, kNumCodes> codes{};
  std::array<std::string, kNumCodes> first_message;
  double seconds = 0;
  int64_t issued = 0;  // calls started, warm-up included
  // Per watched process: CPU microseconds per call over the whole run (warm-up included, as
  // `issued`); -1 when unknown.
  std::vector<std::pair<std::string, double>> cpu_us_per_call;

  uint64_t Errors() const {
    uint64_t n = 0;
    for (int c = 1; c < kNumCodes; ++c) n += codes[static_cast<size_t>(c)];
    return n;
  }
  double Rps() const { return seconds > 0 ? static_cast<double>(latencies_us.size()) / seconds : 0; }
  uint32_t P50() const { return Percentile(latencies_us, 50); }
};

// Closed loop: `inflight` slots, each re-issuing its call from the completion of the previous
// one until the window closes; one connection per `per_channel` slots. Responses are kept as
// bytes (never parsed). Calls that start during the warm-up are not counted, then every call
// completed inside the window is.
class AsyncRun {
 public:
  AsyncRun(const Call& call, int inflight, int per_channel, absl::Duration warmup, absl::Duration duration,
           absl::Duration timeout)
      : call_(call), timeout_(absl::ToChronoNanoseconds(timeout)), slots_(static_cast<size_t>(inflight)) {
    grpc::Slice slice(call.request);
    request_ = grpc::ByteBuffer(&slice, 1);
    const int channels = (inflight + per_channel - 1) / per_channel;
    for (int i = 0; i < channels; ++i) {
      auto channel = NewChannel(call.target, i);
      channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5));
      stubs_.push_back(std::make_unique<grpc::GenericStub>(channel));
    }
    for (size_t i = 0; i < slots_.size(); ++i) {
      slots_[i].stub = stubs_[i / static_cast<size_t>(per_channel)].get();
      slots_[i].latencies_us.reserve(1 << 16);
    }
    const auto start = std::chrono::steady_clock::now();
    measure_from_ = start + absl::ToChronoNanoseconds(warmup);
    measure_until_ = measure_from_ + absl::ToChronoNanoseconds(duration);
    seconds_ = absl::ToDoubleSeconds(duration);
  }

  // Reports the CPU time per call of these processes (Run's RunResult::cpu_us_per_call).
  void Watch(std::vector<WatchedProcess> processes) { watched_ = std::move(processes); }

  RunResult Run(const std::string& name) {
    std::vector<double> cpu_before;
    for (const WatchedProcess& w : watched_) cpu_before.push_back(ProcessCpuSeconds(w.pid));
    active_ = static_cast<int>(slots_.size());
    for (Slot& s : slots_) Issue(&s);
    {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [this] { return active_ == 0; });
    }
    RunResult out;
    out.name = name;
    out.inflight = static_cast<int>(slots_.size());
    out.seconds = seconds_;
    out.issued = issued_.load();
    for (size_t i = 0; i < watched_.size(); ++i) {
      const double after = ProcessCpuSeconds(watched_[i].pid);
      const bool known = cpu_before[i] >= 0 && after >= 0 && out.issued > 0;
      out.cpu_us_per_call.emplace_back(watched_[i].name,
                                       known ? (after - cpu_before[i]) * 1e6 / static_cast<double>(out.issued) : -1);
    }
    for (Slot& s : slots_) {
      out.latencies_us.insert(out.latencies_us.end(), s.latencies_us.begin(), s.latencies_us.end());
      for (size_t c = 0; c < kNumCodes; ++c) {
        out.codes[c] += s.codes[c];
        if (out.first_message[c].empty()) out.first_message[c] = s.first_message[c];
      }
    }
    std::sort(out.latencies_us.begin(), out.latencies_us.end());
    return out;
  }

 private:
  using Clock = std::chrono::steady_clock;

  struct Slot {
    grpc::GenericStub* stub = nullptr;
    std::unique_ptr<grpc::ClientContext> context;
    grpc::ByteBuffer request;  // with Call::next_request
    grpc::ByteBuffer response;
    Clock::time_point t0;
    std::vector<uint32_t> latencies_us;
    std::array<uint64_t, kNumCodes> codes{};
    std::array<std::string, kNumCodes> first_message;
  };

  void Issue(Slot* s) {
    s->t0 = Clock::now();
    if (s->t0 >= measure_until_) {
      std::lock_guard<std::mutex> lock(mu_);
      if (--active_ == 0) done_cv_.notify_all();
      return;
    }
    const grpc::ByteBuffer* request = &request_;
    const int64_t n = issued_++;
    if (call_.next_request) {
      const std::string bytes = call_.next_request(n);
      grpc::Slice slice(bytes);
      s->request = grpc::ByteBuffer(&slice, 1);
      request = &s->request;
    }
    s->context = std::make_unique<grpc::ClientContext>();
    s->context->set_deadline(std::chrono::system_clock::now() + timeout_);
    s->context->AddMetadata(call_.metadata.first, call_.metadata.second);
    s->response.Clear();
    s->stub->UnaryCall(s->context.get(), call_.method, grpc::StubOptions(), request, &s->response,
                       [this, s](grpc::Status status) { Done(s, status); });
  }

  void Done(Slot* s, const grpc::Status& status) {
    const auto t1 = Clock::now();
    if (s->t0 >= measure_from_ && t1 <= measure_until_) {
      const int code = CodeIndex(status.error_code());
      s->codes[static_cast<size_t>(code)]++;
      if (status.ok()) {
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t1 - s->t0).count();
        s->latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
      } else if (s->first_message[static_cast<size_t>(code)].empty()) {
        s->first_message[static_cast<size_t>(code)] = status.error_message();
      }
    }
    Issue(s);
  }

  const Call& call_;
  const std::chrono::nanoseconds timeout_;
  grpc::ByteBuffer request_;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
  std::vector<Slot> slots_;
  Clock::time_point measure_from_, measure_until_;
  double seconds_ = 0;
  std::atomic<int64_t> issued_{0};
  std::vector<WatchedProcess> watched_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  int active_ = 0;
};

}  // namespace parcours::bench
