// Wiring of the gateway from its configuration: backends, rate limiter, the four audience
// services. main.cc and the tests build the gateway through this; the Authenticator is injected
// (main.cc makes the real one from the auth.* keys, tests a fake).
//
// Config keys (besides server.*, read by the server runner, and auth.*, read by main.cc):
//   backends.referential.address  127.0.0.1:50051
//   backends.evaluation.address   127.0.0.1:50052
//   backends.cep.address          127.0.0.1:50053
//   backends.default_deadline     10s   deadline of a backend call when the caller set none
//   backends.part_deadline        2s    cap of the optional parts of GetBeneficiaryJourney
//   backends.max_message_bytes    16 MiB, both ways on backend channels (the API port's inbound
//                                 limit is server.max_receive_message_bytes, 4 MiB)
//   backends.retry_max_attempts   3     (UNAVAILABLE, idempotent calls only: backends.h)
//   backends.retry_initial_backoff 50ms
//   rate_limit.rate               50    calls per second per principal (0: no limit)
//   rate_limit.burst              100
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/auth/authenticator.h"
#include "platform/clock.h"
#include "platform/config.h"
#include "platform/db/db.h"
#include "platform/service_main.h"

namespace parcours::gateway {

// RunServiceMain wants a database from every app; the gateway stores nothing, so it gets an
// empty in-memory SQLite (never written; `gateway migrate` does nothing).
inline constexpr char kNoDatabaseDsn[] = "sqlite::memory:";

class App : public ServiceApp {
 public:
  // `clock` (the rate limiter's) is the system clock when null; it must outlive the app.
  static absl::StatusOr<std::unique_ptr<App>> Create(const Config& config,
                                                     std::unique_ptr<Authenticator> authenticator,
                                                     const Clock* clock = nullptr);
  std::vector<grpc::Service*> services() override = 0;
  db::Db& db() override = 0;
};

}  // namespace parcours::gateway
