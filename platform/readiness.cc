#include "platform/readiness.h"

#include <chrono>
#include <utility>

namespace parcours {

ReadinessLoop::ReadinessLoop(Check check, absl::Duration period, absl::Duration timeout,
                             std::function<void(bool, const std::string&)> on_change)
    : check_(std::move(check)), period_(period), timeout_(timeout), on_change_(std::move(on_change)) {
  thread_ = std::thread([this] { Run(); });
}

ReadinessLoop::~ReadinessLoop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool ReadinessLoop::SleepFor(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::microseconds(absl::ToInt64Microseconds(d)), [&] { return stopping_; });
  return !stopping_;
}

void ReadinessLoop::Report(bool ready, const std::string& reason) {
  if (ready == ready_) return;
  ready_ = ready;
  on_change_(ready, reason);
}

void ReadinessLoop::Run() {
  while (SleepFor(period_)) {
    std::future<absl::Status> result = std::async(std::launch::async, check_);
    if (result.wait_for(std::chrono::microseconds(absl::ToInt64Microseconds(timeout_))) !=
        std::future_status::ready) {
      Report(false, "the readiness check did not answer in " + absl::FormatDuration(timeout_));
      // Wait for it, a period at a time, so that stopping is not held by more than one check.
      while (result.wait_for(std::chrono::microseconds(absl::ToInt64Microseconds(period_))) !=
             std::future_status::ready) {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) break;
      }
      if (result.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;  // ~future waits
    }
    const absl::Status status = result.get();
    Report(status.ok(), status.ok() ? "" : std::string(status.message()));
  }
}

}  // namespace parcours
