// A periodic readiness check (e.g. "the database answers") that runs on its own thread and
// reports each change. A check that does not answer within `timeout` counts as failed at once
// (a database host gone silent would hold a query for the driver's 300 s read timeout); its
// result still counts when it comes.
#pragma once

#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace parcours {

class ReadinessLoop {
 public:
  using Check = std::function<absl::Status()>;
  // `on_change(ready, reason)`: called on the loop's thread when readiness changes (it starts
  // ready: the process checked its dependencies before serving).
  ReadinessLoop(Check check, absl::Duration period, absl::Duration timeout,
                std::function<void(bool ready, const std::string& reason)> on_change);
  // Stops the loop; waits for a check in flight (bounded by the check's own timeouts).
  ~ReadinessLoop();
  ReadinessLoop(const ReadinessLoop&) = delete;
  ReadinessLoop& operator=(const ReadinessLoop&) = delete;

 private:
  void Run();
  void Report(bool ready, const std::string& reason);
  // Sleeps up to `d`; false when stopping.
  bool SleepFor(absl::Duration d);

  const Check check_;
  const absl::Duration period_;
  const absl::Duration timeout_;
  const std::function<void(bool, const std::string&)> on_change_;
  bool ready_ = true;  // loop thread only
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace parcours
