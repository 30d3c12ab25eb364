// cep-svc's logic (principal + request in, resource or domain error out; no gRPC types) and the
// thin gRPC adapter over it.
//
// Callers (platform/principal.h): "national" manages the operator directory and designations;
// "operator:<id>" (an operator of the directory) works on beneficiaries, cases and transfers, and
// sees only its own files (another operator's case is NOT_FOUND, a transferred-away case too);
// any CEP principal (national, region, operator) reads the directory and the level catalogues.
// Every other principal is PERMISSION_DENIED.
//
// Every read and change of a personal file (case, beneficiary, contact details) is written to the
// audit trail in the same transaction: principal, method, resource; never personal data.
//
// The data-sharing feed (StreamActivity) is for "national" (every event) and each operator (its
// own events); compliance for "national" (every operator) and "region:<code>" (the operators of
// its region); the retention pass for "national"; erasure for an operator that sees the
// beneficiary (GetBeneficiary's rule).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "parcours/cep/v1/cep.grpc.pb.h"
#include "platform/aip.h"
#include "platform/clock.h"
#include "platform/errors.h"
#include "platform/group_commit.h"
#include "platform/principal.h"
#include "cep-svc/src/repository.h"

namespace parcours::cep {

struct ImportOptions {
  // import.max_batch_rows: the most rows ImportCases writes in one transaction, shared among the
  // streams open at the time (rules.h ImportBatchRows).
  int max_batch_rows = 4000;
};

// The data-sharing feed's pace (config keys feed.poll_interval, feed.batch_size).
struct FeedOptions {
  absl::Duration poll_interval = absl::Milliseconds(200);  // follow: how often to look for new events
  int batch_size = 500;                                     // events read per query
};

class Cep {
 public:
  // `pseudonym_key`: the secret of the keyed hash that turns an external identifier into a
  // beneficiary pseudonym (rules.h Pseudonym).
  Cep(CepRepository& repository, const Clock& clock, aip::PageTokenCodec page_tokens, std::string pseudonym_key,
      FeedOptions feed = {}, ImportOptions import = {});

  using P = Principal;
  // Operators (national) and level catalogues.
  absl::StatusOr<pb::Operator> CreateOperator(const P& p, const pb::CreateOperatorRequest& r);
  absl::StatusOr<pb::Operator> GetOperator(const P& p, const pb::GetOperatorRequest& r);
  absl::StatusOr<pb::ListOperatorsResponse> ListOperators(const P& p, const pb::ListOperatorsRequest& r);
  absl::StatusOr<pb::Operator> DesignateOperator(const P& p, const pb::DesignateOperatorRequest& r);
  absl::StatusOr<pb::Operator> WithdrawOperator(const P& p, const pb::WithdrawOperatorRequest& r);
  absl::StatusOr<pb::ListLevelCataloguesResponse> ListLevelCatalogues(const P& p,
                                                                       const pb::ListLevelCataloguesRequest& r);

  // Beneficiaries.
  absl::StatusOr<pb::Beneficiary> RegisterBeneficiary(const P& p, const pb::RegisterBeneficiaryRequest& r);
  absl::StatusOr<pb::Beneficiary> GetBeneficiary(const P& p, const pb::GetBeneficiaryRequest& r);
  absl::StatusOr<pb::ContactDetails> UpdateContactDetails(const P& p, const pb::UpdateContactDetailsRequest& r);

  // Cases.
  absl::StatusOr<pb::Case> OpenCase(const P& p, const pb::OpenCaseRequest& r);
  // Transactions shared by OpenCase calls so far (tests, diagnostics).
  int64_t case_opening_batches() const { return case_openings_.batches_written(); }
  // OpenCase calls queued for the next batch (tests).
  size_t case_openings_queued() const { return case_openings_.pending(); }
  absl::StatusOr<pb::Case> GetCase(const P& p, const pb::GetCaseRequest& r);
  absl::StatusOr<pb::ListCasesResponse> ListCases(const P& p, const pb::ListCasesRequest& r);
  absl::StatusOr<pb::Case> UpdateCase(const P& p, const pb::UpdateCaseRequest& r);
  absl::StatusOr<pb::Case> ChangeLevel(const P& p, const pb::ChangeLevelRequest& r);
  absl::StatusOr<pb::Case> RecordService(const P& p, const pb::RecordServiceRequest& r);
  absl::StatusOr<pb::Case> RecordOutcome(const P& p, const pb::RecordOutcomeRequest& r);
  absl::StatusOr<pb::Case> RecordSatisfaction(const P& p, const pb::RecordSatisfactionRequest& r);
  absl::StatusOr<pb::Case> CloseCase(const P& p, const pb::CloseCaseRequest& r);
  absl::StatusOr<pb::Case> ReopenCase(const P& p, const pb::ReopenCaseRequest& r);

  // Transfers.
  absl::StatusOr<pb::Transfer> RequestTransfer(const P& p, const pb::RequestTransferRequest& r);
  absl::StatusOr<pb::Transfer> AcceptTransfer(const P& p, const pb::AcceptTransferRequest& r);
  absl::StatusOr<pb::Transfer> RejectTransfer(const P& p, const pb::RejectTransferRequest& r);
  absl::StatusOr<pb::Transfer> CancelTransfer(const P& p, const pb::CancelTransferRequest& r);
  absl::StatusOr<pb::ListTransfersResponse> ListTransfers(const P& p, const pb::ListTransfersRequest& r);

  // Retention and erasure. Erasure anonymises every case of the beneficiary at every operator
  // (ERASED events), deletes every operator's contact details and marks the beneficiary
  // anonymised, in one transaction. The retention pass gives a 30-day notice to cases inactive
  // for 2 years and anonymises noticed cases still inactive 30 days later (ANONYMISED events);
  // running it twice on one date changes nothing the second time.
  absl::StatusOr<pb::ErasureReceipt> RequestErasure(const P& p, const pb::RequestErasureRequest& r);
  absl::StatusOr<pb::RetentionReport> RunRetention(const P& p, const pb::RunRetentionRequest& r);

  // Bulk import of an operator's history (the caller "operator:<id>"): rows come from `next`
  // (false at the end of the stream), numbered from 1. Each row gets the checks of
  // RegisterBeneficiary + OpenCase (+ RecordService, RecordOutcome, CloseCase); a bad row is
  // reported and skipped, a row whose external id the operator already has changes nothing.
  // Rows are handled in batches, one transaction each (multi-row statements, one audit entry, the
  // activity lock taken once, one CASE_IMPORTED event per case): ImportOptions::max_batch_rows
  // shared among the open streams, at least kImportBatchRows unless the maximum is lower (rules.h
  // ImportBatchRows), so one operator importing alone gets the largest transactions. At most
  // kImportConcurrentBatches batches are worked on at once, whatever the number of streams: the
  // others wait with one batch each and their further rows unread (gRPC flow control holds the
  // client back), so memory follows the number of streams (about 1,000 rows each), not the volume.
  static constexpr int kImportBatchRows = 1000;
  static constexpr int kImportConcurrentBatches = 2;
  static constexpr int kImportMaxErrors = 1000;
  // `next` reads the next message (false at the end of the stream, or when the call ended);
  // `cancelled` tells which: a cancelled stream (the client gone, a deadline, a drain) writes no
  // partial tail and answers CANCELLED; the batches written before it stay (a replay of the same
  // rows counts them unchanged).
  using ImportSource = std::function<bool(pb::ImportCasesRequest*)>;
  absl::StatusOr<pb::ImportCasesResponse> ImportCases(const P& p, const ImportSource& next,
                                                      const std::function<bool()>& cancelled);

  // Per operator, its last own activity before the end of `as_of` (default today) and whether it
  // had none in the 6 months before.
  absl::StatusOr<pb::QueryIndicatorsResponse> QueryIndicators(const P& p, const pb::QueryIndicatorsRequest& r);
  absl::StatusOr<pb::ComplianceReport> GetComplianceReport(const P& p, const pb::GetComplianceReportRequest& r);

  // The data-sharing feed: events after the cursor, in cursor order, through `sink`. With follow,
  // polls for new events until `cancelled` says the call is over (client cancel, deadline, server
  // shutdown); without, returns at the end. `write` returns false when the client is gone.
  struct FeedSink {
    std::function<bool(const pb::ActivityEvent&)> write;
    std::function<bool()> cancelled;
  };
  absl::Status StreamActivity(const P& p, const pb::StreamActivityRequest& r, const FeedSink& sink);

 private:
  // An operator's data sharing as of a day (end of that day, Paris time): its last own activity,
  // and whether it shared nothing for 6 months (GetComplianceReport, WithdrawOperator).
  struct Sharing {
    std::optional<int64_t> last_micros;
    bool silent_six_months = true;
  };
  // One per id, in order.
  absl::StatusOr<std::vector<Sharing>> SharingAsOf(const std::vector<std::string>& operator_ids, int as_of);
  // The compliance rule on one operator's last own activity (unix micros, none: never shared).
  static Sharing SharingFrom(std::optional<int64_t> last_micros, int as_of);

  // A change of one case by its holder: the case is read in a transaction, the caller's scope and
  // the etag checked, `change` applied (it may add activity events), then the case is written
  // back, its events appended and the change audited, all in that transaction.
  using CaseChange = std::function<absl::Status(pb::Case&, CepTx&, std::vector<pb::ActivityEvent>&)>;
  struct CaseRef {
    std::string name;        // cases/{id}
    std::string name_field;  // "name" or "case.name"
    std::string etag;
    std::string etag_field;
    // An append keyed by the caller's request id (RecordService, RecordOutcome,
    // RecordSatisfaction): a retry returns the case as it is now instead of appending again.
    std::string request_id;
    const google::protobuf::Message* request = nullptr;  // what the key's hash covers
  };
  absl::StatusOr<pb::Case> ChangeCase(const P& p, const CaseRef& ref, Violations& v, const std::string& action,
                                      const CaseChange& change);
  // The party that decides on a pending transfer: its receiver (accept, reject) or its sender
  // (cancel), which holds the case as long as the transfer is pending.
  enum class TransferParty { kReceiver, kSender };
  // A decision on a pending transfer by `party`. The other party sees the transfer and gets
  // PERMISSION_DENIED; any other operator NOT_FOUND, as for a transfer that does not exist.
  using TransferDecision = std::function<absl::Status(pb::Transfer&, CepTx&)>;
  absl::StatusOr<pb::Transfer> DecideTransfer(const P& p, const std::string& name, Violations& v, TransferParty party,
                                              const std::string& action, const TransferDecision& decide);
  // The beneficiary's region and an event of `kind` about `c` dated `yyyymmdd` (its month).
  // `beneficiary`: the case's beneficiary when the caller has just read it (else it is read).
  absl::StatusOr<pb::ActivityEvent> EventFor(CepTx& tx, const pb::Case& c, pb::ActivityKind kind, int yyyymmdd,
                                             const pb::Beneficiary* beneficiary = nullptr);
  // The level catalogues: only migrations write them, so they are read once per process.
  absl::StatusOr<std::shared_ptr<const std::vector<pb::LevelCatalogue>>> LevelCatalogues(CepTx& tx);
  // Scrubs and anonymises one case (history entry by `actor`, with `reason`), withdraws and
  // scrubs its transfers, appends its `kind` event (dated `yyyymmdd`) and audits `action` by `p`;
  // contacts are the caller's.
  absl::Status AnonymiseCase(CepTx& tx, Versioned<pb::Case>& c, const P& p, const std::string& actor,
                             const std::string& action, pb::ActivityKind kind, const std::string& reason,
                             int yyyymmdd, absl::Time now);
  // One case of the retention pass, in its own transaction. Returns whether it changed the case.
  absl::StatusOr<bool> NoticeCase(const P& p, const std::string& id, int as_of, int64_t inactive_before,
                                  absl::Time now);
  absl::StatusOr<bool> ExpireCase(const P& p, const std::string& id, int as_of, int64_t inactive_before,
                                  absl::Time now);
  // One registration without a file (InactiveRegistrationQuery) of the retention pass, in its own
  // transaction: noticed, or deleted once its notice ran out. Returns whether it changed it.
  absl::StatusOr<bool> NoticeRegistration(const P& p, const InactiveRegistration& r, int64_t inactive_before,
                                          absl::Time now);
  absl::StatusOr<bool> ExpireRegistration(const P& p, const InactiveRegistration& r, int as_of,
                                          int64_t inactive_before, absl::Time now);
  // The feed event of a registration's retention (no case: the registration has none).
  absl::StatusOr<pb::ActivityEvent> RegistrationEvent(CepTx& tx, const InactiveRegistration& r, pb::ActivityKind kind,
                                                      int yyyymmdd, absl::Time now);

  struct ImportRun;  // service.cc
  absl::Status ImportBatch(const P& p, ImportRun& run, std::vector<pb::ImportedCase>& rows);

  CepRepository& repository_;
  // The audit rows of reads (GetCase, GetBeneficiary, ListCases), written in shared
  // transactions; each read answers once its row is committed.
  GroupCommit<AuditEntry> read_audit_;
  // A validated OpenCase waiting for its batch: borrowed from the caller, who waits in Submit
  // until its result is set.
  struct CaseOpening {
    const P* p = nullptr;
    const pb::OpenCaseRequest* r = nullptr;
    absl::StatusOr<pb::Case>* result = nullptr;
  };
  // Writes a batch of OpenCase requests: together, then one by one when that transaction fails.
  absl::Status WriteCaseOpenings(const std::vector<CaseOpening>& jobs);
  // One transaction for `jobs`; on success every job's result is set (its case or the rule that
  // refused it), on failure none is.
  absl::Status OpenCasesTogether(const std::vector<CaseOpening>& jobs);
  GroupCommit<CaseOpening> case_openings_;
  absl::Mutex catalogues_mu_;
  std::shared_ptr<const std::vector<pb::LevelCatalogue>> catalogues_ ABSL_GUARDED_BY(catalogues_mu_);
  const Clock& clock_;
  aip::PageTokenCodec page_tokens_;
  std::string pseudonym_key_;
  FeedOptions feed_;
  ImportOptions import_;
  std::atomic<int> import_streams_{0};  // ImportCases calls running
  absl::Mutex import_mu_;
  int import_batches_ ABSL_GUARDED_BY(import_mu_) = 0;  // batches being worked on
};

// `feed_write_timeout` (config feed.write_timeout): a feed write that the client does not take
// within it (a reader that stopped reading) cancels the call, so it never holds a thread forever.
std::unique_ptr<grpc::Service> NewGrpcService(Cep& logic, absl::Duration feed_write_timeout = absl::Seconds(30));

}  // namespace parcours::cep
