// A check that a lock taken inside a transaction orders two transactions (conformance suites:
// LockCandidacy, LockBeneficiaries, LockDesignations). `first` runs in a transaction, takes the
// lock, calls `hold()`, then writes; `second` starts once the lock is held, takes the same lock,
// then reads. hold() returns 300 ms after the second has started, so without the lock the second
// reads before the first's write commits (READ COMMITTED shows it nothing); with the lock it waits
// and reads the write. The caller asserts what the second read.
#pragma once

#include <functional>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace parcours::testing {

struct LockRaceResult {
  absl::Status first = absl::UnknownError("not run");
  absl::Status second = absl::UnknownError("not run");
};

inline LockRaceResult RunLockRace(const std::function<absl::Status(const std::function<void()>& hold)>& first,
                                  const std::function<absl::Status()>& second) {
  absl::Notification locked;
  absl::Notification second_starting;
  LockRaceResult out;
  std::thread writer([&] {
    out.first = first([&] {
      locked.Notify();
      second_starting.WaitForNotification();
      absl::SleepFor(absl::Milliseconds(300));  // the second is now at its lock (or past it, unlocked)
    });
    if (!locked.HasBeenNotified()) locked.Notify();  // `first` failed before its lock: do not hang
  });
  locked.WaitForNotification();
  second_starting.Notify();
  out.second = second();
  writer.join();
  return out;
}

}  // namespace parcours::testing
