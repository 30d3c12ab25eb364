#include "platform/group_commit.h"

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace parcours {
namespace {

TEST(GroupCommitTest, AloneARecordIsWrittenAtOnceInItsOwnBatch) {
  std::vector<std::vector<int>> batches;
  GroupCommit<int> commit([&](const std::vector<int>& records) {
    batches.push_back(records);
    return absl::OkStatus();
  });
  EXPECT_TRUE(commit.Submit(1).ok());
  EXPECT_TRUE(commit.Submit(std::vector<int>{2, 3}).ok());
  EXPECT_EQ(batches, (std::vector<std::vector<int>>{{1}, {2, 3}}));
  EXPECT_EQ(commit.batches_written(), 2);
}

TEST(GroupCommitTest, RecordsQueuedDuringAWriteShareTheNextBatchAndEachIsWrittenOnce) {
  // The first write blocks until the others have queued: they must then go in one batch.
  absl::Notification release;
  std::atomic<int> first{0};
  std::vector<std::vector<int>> batches;
  GroupCommit<int> commit([&](const std::vector<int>& records) {
    if (first.fetch_add(1) == 0) release.WaitForNotification();
    batches.push_back(records);
    return absl::OkStatus();
  });
  std::thread writer([&] { EXPECT_TRUE(commit.Submit(0).ok()); });
  while (first.load() == 0) std::this_thread::yield();
  constexpr int kWaiters = 16;
  std::vector<std::thread> waiters;
  std::atomic<int> answered{0};
  for (int i = 1; i <= kWaiters; ++i) {
    waiters.emplace_back([&, i] {
      EXPECT_TRUE(commit.Submit(i).ok());
      answered.fetch_add(1);
    });
  }
  // Nobody answers before its record is written.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(answered.load(), 0);
  release.Notify();
  writer.join();
  for (auto& t : waiters) t.join();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0], std::vector<int>{0});
  std::map<int, int> seen;
  for (int r : batches[1]) ++seen[r];
  EXPECT_EQ(seen.size(), static_cast<size_t>(kWaiters));
  for (const auto& [record, count] : seen) EXPECT_EQ(count, 1) << record;
}

TEST(GroupCommitTest, AFailedWriteFailsEveryCallerOfItsBatchAndNoOther) {
  int calls = 0;
  GroupCommit<int> commit([&](const std::vector<int>& records) {
    ++calls;
    for (int r : records) {
      if (r < 0) return absl::UnavailableError("database down");
    }
    return absl::OkStatus();
  });
  absl::Status failed = commit.Submit(-1);
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(commit.Submit(1).ok());  // the next batch is not poisoned
  EXPECT_EQ(calls, 2);
}

TEST(GroupCommitTest, ManyThreadsUnderLoadShareBatches) {
  std::atomic<int> written{0};
  GroupCommit<int> commit([&](const std::vector<int>& records) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // a commit takes time
    written.fetch_add(static_cast<int>(records.size()));
    return absl::OkStatus();
  });
  constexpr int kThreads = 8, kEach = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) EXPECT_TRUE(commit.Submit(i).ok());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(written.load(), kThreads * kEach);
  EXPECT_LT(commit.batches_written(), kThreads * kEach);
}

TEST(GroupCommitTest, WithTwoWritersTwoBatchesAreWrittenAtOnceNeverThree) {
  // The first two writes block until a third record has queued: it must wait, not start a third.
  absl::Notification release;
  std::atomic<int> writing{0}, most{0}, started{0};
  GroupCommit<int> commit(
      [&](const std::vector<int>&) {
        const int now = writing.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        if (started.fetch_add(1) < 2) release.WaitForNotification();
        writing.fetch_sub(1);
        return absl::OkStatus();
      },
      /*max_writers=*/2);
  std::thread a([&] { EXPECT_TRUE(commit.Submit(1).ok()); });
  while (started.load() < 1) std::this_thread::yield();
  std::thread b([&] { EXPECT_TRUE(commit.Submit(2).ok()); });
  while (started.load() < 2) std::this_thread::yield();  // two writes at once
  std::atomic<bool> third_answered{false};
  std::thread c([&] {
    EXPECT_TRUE(commit.Submit(3).ok());
    third_answered = true;
  });
  while (commit.pending() < 1) std::this_thread::yield();  // queued
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(started.load(), 2);  // the third waits for a free writer
  EXPECT_EQ(commit.pending(), 1u);
  EXPECT_FALSE(third_answered.load());
  release.Notify();
  a.join();
  b.join();
  c.join();
  EXPECT_TRUE(third_answered.load());
  EXPECT_EQ(most.load(), 2);
  EXPECT_EQ(commit.batches_written(), 3);
}

TEST(GroupCommitTest, ManyThreadsWithTwoWritersEachRecordWrittenOnce) {
  std::mutex mu;
  std::map<int, int> seen;
  GroupCommit<int> commit(
      [&](const std::vector<int>& records) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        std::lock_guard<std::mutex> lock(mu);
        for (int r : records) ++seen[r];
        return absl::OkStatus();
      },
      /*max_writers=*/2);
  constexpr int kThreads = 8, kEach = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) EXPECT_TRUE(commit.Submit(t * kEach + i).ok());
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(seen.size(), static_cast<size_t>(kThreads * kEach));
  for (const auto& [record, count] : seen) EXPECT_EQ(count, 1) << record;
  EXPECT_LT(commit.batches_written(), kThreads * kEach);
}

}  // namespace
}  // namespace parcours
