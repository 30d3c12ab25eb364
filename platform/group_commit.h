// GroupCommit: many threads each need one small record durably written before they answer (the
// audit row of a read); instead of one transaction each, whoever finds the writer idle writes
// everything queued so far in one call, and the others wait for the batch that holds their
// record. Under no contention a record is written alone, at once (no timer, no added latency);
// under load the batch grows while the previous one commits, so the number of commits follows
// the database's pace, not the callers'.
//
// Submit returns the status of the write of the batch that held the record: a caller never
// answers before its record is committed, and learns when it was not.
//
// `max_writers` batches may be written at once (1 by default): with 2, a batch is prepared while
// the previous one waits on the database, so the CPU is not idle during its round trips. Each
// batch has its own condition variable: when a batch is written only its callers wake, plus one
// caller of the next batch, which writes it.
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
  // Writes a batch (in one transaction); called by at most max_writers threads at once.
  using WriteBatch = std::function<absl::Status(const std::vector<Record>&)>;

  explicit GroupCommit(WriteBatch write, int max_writers = 1)
      : write_(std::move(write)), max_writers_(max_writers < 1 ? 1 : max_writers) {}
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
      if (mine == pending_ && writers_ < max_writers_) {
        // Write what is queued (ours among it); later arrivals start the next batch.
        pending_ = nullptr;
        ++writers_;
        mu_.Unlock();
        absl::Status status = write_(mine->records);
        mu_.Lock();
        mine->status = std::move(status);
        mine->done = true;
        --writers_;
        ++batches_written_;
        mine->written.SignalAll();
        if (pending_ != nullptr) pending_->written.Signal();  // one of them writes it
        break;
      }
      mine->written.Wait(&mu_);
    }
    return mine->status;
  }

  // Records waiting for the next batch (tests and metrics).
  size_t pending() const {
    absl::MutexLock lock(&mu_);
    return pending_ == nullptr ? 0 : pending_->records.size();
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
    absl::CondVar written;  // done, or (pending batch) a writer is free
  };

  const WriteBatch write_;
  const int max_writers_;
  mutable absl::Mutex mu_;
  std::shared_ptr<Batch> pending_ ABSL_GUARDED_BY(mu_);
  int writers_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t batches_written_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace parcours
