// What the gateway methods that read several backends share (journey.cc, dashboard.cc): the call
// object that lives from admission to the answer, a slot per backend read, and the read that
// fills it. Each read runs under the caller's deadline capped at backends.part_deadline and is
// retried on UNAVAILABLE (a read is idempotent); its status is kept in the slot, so the method can
// list what it could not read instead of failing.
#pragma once

#include <utility>

#include "gateway/src/gateway.h"

namespace parcours::gateway {

template <typename Resp>
struct Part {
  Resp response;
  grpc::Status status = grpc::Status(grpc::StatusCode::CANCELLED, "not attempted");
  bool attempted = false;
};

// A composed call, created with `new` once admitted; End() answers and deletes it.
class ComposedCall {
 public:
  ComposedCall(const ComposedCall&) = delete;
  ComposedCall& operator=(const ComposedCall&) = delete;

 protected:
  ComposedCall(Gateway& gw, grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor, Admission admission)
      : gw_(gw), ctx_(ctx), reactor_(reactor), admission_(std::move(admission)) {}
  virtual ~ComposedCall() = default;

  // Starts `method` with `request` as principal `as` into `slot`, then runs `then()`.
  template <typename Stub, typename Req, typename Resp, typename Then>
  void Read(Stub& stub, AsyncUnary<Stub, Req, Resp> method, const Principal& as, const Req* request, Part<Resp>* slot,
            Then then) {
    slot->attempted = true;
    CallBackend(
        gw_.backends(), ctx_, stub, method, request, &slot->response, /*idempotent=*/true,
        [this, as] { return gw_.BackendContext(*ctx_, admission_, as, gw_.backends().options.part_deadline); },
        [slot, then = std::move(then)](grpc::Status status) {
          slot->status = std::move(status);
          then();
        });
  }

  // Audits the call, deletes this, then finishes the reactor with `status`.
  void End(const grpc::Status& status) {
    gw_.Finished(admission_, nullptr, status);
    grpc::ServerUnaryReactor* reactor = reactor_;
    delete this;
    reactor->Finish(status);
  }

  Gateway& gw_;
  grpc::CallbackServerContext* const ctx_;
  grpc::ServerUnaryReactor* const reactor_;
  const Admission admission_;
};

}  // namespace parcours::gateway
