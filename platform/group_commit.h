// GroupCommit: many threads each need one small record durably written before they answer (the
// audit row of a read); instead of one transaction each, whoever finds the writer idle writes
// everything queued so far in one call, and the others wait for the batch that holds their
// record. Under no contention a record is written alone, at once (no timer, no added latency);
// under load the batch grows while the previous one commits, so the number of commits follows
// the database's pace, not the callers'.
//
// Submit returns the status of the write of the batch that held the record: a caller never
// answers before its record is committed, and learns when it was not.
#pragma once

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace parcours {

template <typename Record>
class GroupCommit {
 public:
  // Writes a batch (in one transaction); never called concurrently with itself.
  using WriteBatch = std::function<absl::Status(const std::vector<Record>&)>;

  explicit GroupCommit(WriteBatch write) : write_(std::move(write)) {}
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  absl::Status Submit(Record record) {
    std::vector<Record> one;
    one.push_back(std::move(record));
    return Submit(std::move(one));
  }

  // Several records, written in the same batch.
  absl::Status Submit(std::vector<Record> records) {
    absl::MutexLock lock(&mu_);
    if (pending_ == nullptr) pending_ = std::make_shared<Batch>();
    std::shared_ptr<Batch> mine = pending_;
    for (Record& r : records) mine->records.push_back(std::move(r));
    while (!mine->done) {
      if (writing_) {
        idle_.Wait(&mu_);
        continue;
      }
      // Write what is queued (ours among it); later arrivals start the next batch.
      std::shared_ptr<Batch> batch = std::move(pending_);
      pending_ = nullptr;
      writing_ = true;
      mu_.Unlock();
      absl::Status status = write_(batch->records);
      mu_.Lock();
      batch->status = std::move(status);
      batch->done = true;
      writing_ = false;
      ++batches_written_;
      idle_.SignalAll();
    }
    return mine->status;
  }

  // Batches written so far (tests and metrics).
  int64_t batches_written() const {
    absl::MutexLock lock(&mu_);
    return batches_written_;
  }

 private:
  struct Batch {
    std::vector<Record> records;
    bool done = false;
    absl::Status status;
  };

  const WriteBatch write_;
  mutable absl::Mutex mu_;
  absl::CondVar idle_;
  std::shared_ptr<Batch> pending_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  int64_t batches_written_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace parcours
