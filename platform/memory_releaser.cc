#include "platform/memory_releaser.h"

#include <malloc.h>

#include <utility>

namespace parcours {

MemoryReleaser::MemoryReleaser(absl::Duration interval, std::function<void()> release)
    : interval_(interval),
      release_(release ? std::move(release) : std::function<void()>([] { malloc_trim(0); })) {
  thread_ = std::thread([this] { Loop(); });
}

MemoryReleaser::~MemoryReleaser() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void MemoryReleaser::Loop() {
  absl::MutexLock lock(&mu_);
  for (;;) {
    // Wakes at the interval, or at once when stopped.
    mu_.AwaitWithTimeout(absl::Condition(&stop_), interval_);
    if (stop_) return;
    mu_.Unlock();
    release_();
    mu_.Lock();
  }
}

}  // namespace parcours
