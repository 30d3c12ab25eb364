// The gateway's typed clients of the three backends, the one place their channels are made, and
// the one retry rule.
//
// Retries: only on UNAVAILABLE (an UNKNOWN, e.g. a commit whose outcome the backend could not
// tell, goes back to the caller) and only for idempotent calls — a read, or a create or append whose request_id is set (policy.h
// IsIdempotent decides from the policy table) — at most
// `retry_max_attempts` attempts with jittered exponential backoff from `retry_initial_backoff`,
// never past the call's deadline, each attempt a fresh ClientContext (same deadline, principal,
// trace and request ids). Done here (CallBackend) rather than by a gRPC retry policy in the
// service config: gRPC commits a call as soon as response headers arrive, and the backends'
// server runner sends headers (x-request-id) with every error, so a gRPC retry policy would
// only ever retry connection-level failures, never a backend answering UNAVAILABLE. Streams are
// never retried. (gRPC's transparent retries of calls that never left the client still apply.)
//
// Deadlines: every backend call gets one. The caller's deadline is propagated (with its
// cancellation); when the caller set none, `default_deadline` applies. The optional parts of a
// composition (GetBeneficiaryJourney's evaluation and référentiel reads) are also capped at
// `part_deadline`, so a slow optional backend cannot eat the whole budget.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/alarm.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/client_callback.h"
#include "parcours/cep/v1/cep.grpc.pb.h"
#include "parcours/evaluation/v1/evaluation.grpc.pb.h"
#include "parcours/referential/v1/referential.grpc.pb.h"
#include "platform/config.h"

namespace parcours::gateway {

struct BackendOptions {
  absl::Duration default_deadline = absl::Seconds(10);  // backends.default_deadline
  absl::Duration part_deadline = absl::Seconds(2);      // backends.part_deadline
  int max_message_bytes = 16 << 20;                     // backends.max_message_bytes (both ways)
  int retry_max_attempts = 3;                           // backends.retry_max_attempts (1..5; 1 = none)
  absl::Duration retry_initial_backoff = absl::Milliseconds(50);  // backends.retry_initial_backoff
  int connections = 2;                                  // backends.connections (1..16, per backend)
  static absl::StatusOr<BackendOptions> FromConfig(const Config& config);
};

// One backend reached through `connections` channels, each with its own connections (a local
// subchannel pool), used in turn call by call. One HTTP/2 connection reads and writes on one
// thread at a time: with a single one, a busy gateway forwards to a backend from one core only.
// `*pool` and `pool->` give the next channel's typed stub.
template <typename Service>
class BackendPool {
 public:
  using Stub = typename Service::Stub;

  BackendPool() = default;
  explicit BackendPool(std::vector<std::shared_ptr<grpc::Channel>> channels) : channels_(std::move(channels)) {
    for (const auto& channel : channels_) stubs_.push_back(Service::NewStub(channel));
  }
  BackendPool(BackendPool&& other) noexcept : channels_(std::move(other.channels_)), stubs_(std::move(other.stubs_)) {}
  BackendPool& operator=(BackendPool&& other) noexcept {
    channels_ = std::move(other.channels_);
    stubs_ = std::move(other.stubs_);
    return *this;
  }

  Stub& operator*() const { return *stubs_[Next()]; }
  Stub* operator->() const { return stubs_[Next()].get(); }
  const std::vector<std::shared_ptr<grpc::Channel>>& channels() const { return channels_; }

 private:
  size_t Next() const { return next_.fetch_add(1, std::memory_order_relaxed) % stubs_.size(); }

  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<Stub>> stubs_;
  mutable std::atomic<uint32_t> next_{0};
};

struct Backends {
  BackendOptions options;
  BackendPool<referential::v1::ReferentialService> referential;
  BackendPool<evaluation::v1::EvaluationService> evaluation;
  BackendPool<cep::v1::CepService> cep;

  // Config keys: backends.referential.address (127.0.0.1:50051), backends.evaluation.address
  // (127.0.0.1:50052), backends.cep.address (127.0.0.1:50053), each with its mTLS keys
  // (`<prefix>.tls_ca_file`, `.tls_cert_file`, `.tls_key_file`, `.tls_server_name`:
  // platform/tls.h MakeChannel, the one place channels are made), and the BackendOptions keys.
  static absl::StatusOr<std::unique_ptr<Backends>> Create(const Config& config);
};

template <typename Stub, typename Req, typename Resp>
using AsyncUnary = void (Stub::async::*)(grpc::ClientContext*, const Req*, Resp*, std::function<void(grpc::Status)>);

// Starts one attempt of a unary call (a typed stub method, or a raw call whose reply stays
// encoded in a grpc::ByteBuffer).
template <typename Req, typename Resp>
using UnaryInvoker = std::function<void(grpc::ClientContext*, const Req*, Resp*, std::function<void(grpc::Status)>)>;

// A backend method called with a typed request and an undecoded reply: the reply's bytes are
// what the gateway sends back (zero copy: the ByteBuffer shares the received slices). The
// method is registered on the channel once (as generated stubs do).
class RawBackendMethod {
 public:
  RawBackendMethod(const std::vector<std::shared_ptr<grpc::Channel>>& channels, std::string full_name)
      : name_(std::move(full_name)) {
    for (const auto& channel : channels) {
      methods_.push_back(std::make_unique<Registered>(channel, name_));
    }
  }
  RawBackendMethod(const RawBackendMethod&) = delete;
  RawBackendMethod& operator=(const RawBackendMethod&) = delete;

  // Each call (and each retry) goes to the next channel of the pool.
  template <typename Req>
  UnaryInvoker<Req, grpc::ByteBuffer> Invoker() const {
    return [this](grpc::ClientContext* ctx, const Req* req, grpc::ByteBuffer* resp,
                  std::function<void(grpc::Status)> done) {
      const Registered& m = *methods_[next_.fetch_add(1, std::memory_order_relaxed) % methods_.size()];
      grpc::internal::CallbackUnaryCall<Req, grpc::ByteBuffer, grpc::protobuf::MessageLite, grpc::ByteBuffer>(
          m.channel.get(), m.rpc, ctx, req, resp, std::move(done));
    };
  }
  const std::string& name() const { return name_; }

 private:
  struct Registered {
    Registered(std::shared_ptr<grpc::Channel> c, const std::string& name)
        : channel(std::move(c)), rpc(name.c_str(), grpc::internal::RpcMethod::NORMAL_RPC, channel) {}
    const std::shared_ptr<grpc::Channel> channel;
    const grpc::internal::RpcMethod rpc;
  };
  const std::string name_;
  std::vector<std::unique_ptr<Registered>> methods_;
  mutable std::atomic<uint32_t> next_{0};
};

namespace internal {

// The delay before attempt `attempt` + 1 (attempt >= 1): initial * 2^(attempt-1), jittered
// by +-50 %, at most 2 s.
absl::Duration RetryDelay(const BackendOptions& options, int attempt);

template <typename Req, typename Resp>
class BackendCall {
 public:
  BackendCall(const grpc::ServerContextBase* caller, UnaryInvoker<Req, Resp> invoke, const Req* request,
              Resp* response, bool retry, const BackendOptions& options,
              std::function<std::unique_ptr<grpc::ClientContext>()> make_context, std::function<void(grpc::Status)> done)
      : caller_(caller), invoke_(std::move(invoke)), request_(request), response_(response), retry_(retry),
        options_(options), make_context_(std::move(make_context)), done_(std::move(done)) {}

  void Run() {
    ++attempt_;
    ctx_ = make_context_();
    // Every attempt ends by the first one's deadline: a default deadline (the caller set none)
    // is the call's, not each attempt's.
    if (attempt_ == 1) {
      deadline_ = ctx_->deadline();
    } else {
      ctx_->set_deadline(std::min(ctx_->deadline(), deadline_));
    }
    invoke_(ctx_.get(), request_, response_, [this](grpc::Status status) { OnDone(std::move(status)); });
  }

 private:
  void OnDone(grpc::Status status) {
    // A backend that is shutting down cancels the calls it accepted but had not started: to the
    // caller that backend was unavailable (and an idempotent call may go to another replica). When
    // the caller itself cancelled, the propagated cancellation lands here too, and then nobody
    // reads the answer: it stays CANCELLED, not retried (a retry would be cancelled at once by
    // the same propagation) and not audited as an unavailable backend.
    if (status.error_code() == grpc::StatusCode::CANCELLED && caller_ != nullptr && caller_->IsCancelled()) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the caller cancelled the call"));
      return;
    }
    if (status.error_code() == grpc::StatusCode::CANCELLED) {
      // Unless the call is idempotent: the backend may have cancelled it while its handler was
      // writing (a drain deadline), so "retry" could apply a change twice.
      status = retry_ ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the backend cancelled the call (shutting down)")
                      : grpc::Status(grpc::StatusCode::UNKNOWN,
                                     "the backend cancelled the call while shutting down: the change may have "
                                     "been applied; read it back (or retry with the same request_id)");
    }
    // UNAVAILABLE only: an UNKNOWN (a backend's commit whose outcome it could not tell,
    // platform/db/db.h, or an unmapped failure) goes back to the caller, whose message says to
    // read back or retry with the same request_id.
    const bool transient = status.error_code() == grpc::StatusCode::UNAVAILABLE;
    if (transient && retry_ && attempt_ < options_.retry_max_attempts) {
      const auto delay = std::chrono::duration_cast<std::chrono::system_clock::duration>(
          absl::ToChronoNanoseconds(RetryDelay(options_, attempt_)));
      const auto at = std::chrono::system_clock::now() + delay;
      if (at < ctx_->deadline()) {
        response_->Clear();
        alarm_ = std::make_unique<grpc::Alarm>();
        alarm_->Set(at, [this](bool) { Run(); });
        return;
      }
    }
    Finish(std::move(status));
  }

  void Finish(grpc::Status status) {
    std::function<void(grpc::Status)> done = std::move(done_);
    delete this;  // the ClientContext of a completed call may go inside its callback
    done(std::move(status));
  }

  const grpc::ServerContextBase* const caller_;
  const UnaryInvoker<Req, Resp> invoke_;
  const Req* const request_;
  Resp* const response_;
  const bool retry_;
  const BackendOptions& options_;
  const std::function<std::unique_ptr<grpc::ClientContext>()> make_context_;
  std::function<void(grpc::Status)> done_;
  int attempt_ = 0;
  std::chrono::system_clock::time_point deadline_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::Alarm> alarm_;
};

}  // namespace internal

// One unary backend call made for `caller` (may be null): `make_context` gives each attempt its
// context; `done` runs once with the final status (on a gRPC thread). `request` and `response` must live until then.
// `invoke` starts one attempt (a typed stub method below, or RawBackendMethod::Invoker: the
// reply then stays encoded; Clear() on a ByteBuffer empties it before a retry like on a message).
template <typename Req, typename Resp>
void CallBackend(const Backends& backends, const grpc::ServerContextBase* caller, UnaryInvoker<Req, Resp> invoke,
                 const Req* request, Resp* response, bool idempotent,
                 std::function<std::unique_ptr<grpc::ClientContext>()> make_context,
                 std::function<void(grpc::Status)> done) {
  (new internal::BackendCall<Req, Resp>(caller, std::move(invoke), request, response, idempotent, backends.options,
                                        std::move(make_context), std::move(done)))
      ->Run();
}

template <typename Stub, typename Req, typename Resp>
void CallBackend(const Backends& backends, const grpc::ServerContextBase* caller, Stub& stub,
                 AsyncUnary<Stub, Req, Resp> method, const Req* request, Resp* response, bool idempotent,
                 std::function<std::unique_ptr<grpc::ClientContext>()> make_context,
                 std::function<void(grpc::Status)> done) {
  CallBackend<Req, Resp>(
      backends, caller,
      [&stub, method](grpc::ClientContext* ctx, const Req* req, Resp* resp, std::function<void(grpc::Status)> cb) {
        (stub.async()->*method)(ctx, req, resp, std::move(cb));
      },
      request, response, idempotent, std::move(make_context), std::move(done));
}

}  // namespace parcours::gateway
