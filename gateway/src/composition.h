// What the gateway methods that read several backends share (journey.cc, dashboard.cc): a slot
// per backend read, and the read that fills it. Each read runs under the caller's deadline capped
// at backends.part_deadline and is retried on UNAVAILABLE (a read is idempotent); its status is
// kept in the slot, so the method can list what it could not read instead of failing.
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

// Starts `method` with `request` as principal `as` into `slot`, then runs `then()`.
template <typename Stub, typename Req, typename Resp, typename Then>
void ReadPart(Gateway& gw, const grpc::CallbackServerContext& ctx, const Admission& admission, Stub& stub,
              AsyncUnary<Stub, Req, Resp> method, const Principal& as, const Req* request, Part<Resp>* slot,
              Then then) {
  slot->attempted = true;
  CallBackend(
      gw.backends(), stub, method, request, &slot->response, /*idempotent=*/true,
      [&gw, &ctx, &admission, as] {
        return gw.BackendContext(ctx, admission, as, gw.backends().options.part_deadline);
      },
      [slot, then = std::move(then)](grpc::Status status) {
        slot->status = std::move(status);
        then();
      });
}

}  // namespace parcours::gateway
