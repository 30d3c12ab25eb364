// Persistence of cep-svc: operators and designations, level catalogues, pseudonymous
// beneficiaries and their per-operator contact details, cases, transfers, the audit trail and the
// activity log (the data-sharing feed's source). One interface, one SQL implementation on both
// dialects of platform/db, one conformance suite (tests/repository_conformance_test.cc).
//
// Use cases run in one transaction through CepRepository::Transact. Aggregates are stored whole
// (protobuf document + the columns queries filter on) with a `version` column for optimistic
// concurrency: Put* fails with ABORTED when the stored version is not the one read.
// Every change of a case appends its activity event in the same transaction (AppendActivity), so
// the feed never misses an acknowledged change.
//
// Retention: a case carries a notice date (column only, not in the Case resource), set by the
// retention pass (MarkNoticed) and cleared by PutCase whenever the case's last activity moves.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cep-svc/src/indicators.h"
#include "google/protobuf/message.h"
#include "parcours/cep/v1/cep.pb.h"
#include "platform/db/db.h"
#include "platform/idempotency.h"
#include "platform/store.h"

namespace parcours::cep {

using ::parcours::AuditEntry;
using ::parcours::RequestKey;
using ::parcours::Versioned;

namespace pb = ::parcours::cep::v1;

struct Designation {
  std::string operator_id;
  std::string region;
  int start_yyyymmdd = 0;
  int end_yyyymmdd = 0;  // 0 = open-ended
};

// The retention state of one operator's contact row.
struct ContactRetention {
  int64_t last_activity = 0;  // unix micros
  int notice_date = 0;        // yyyymmdd, 0 = none
};

class CepTx {
 public:
  virtual ~CepTx() = default;

  // Operators: id = last segment of the name. Designations are returned inside the operator.
  virtual absl::Status InsertOperator(const pb::Operator& op) = 0;                        // ALREADY_EXISTS
  virtual absl::StatusOr<Versioned<pb::Operator>> GetOperator(const std::string& id) = 0;  // NOT_FOUND
  // The operator without its designations (one read, for the checks every call makes).
  virtual absl::StatusOr<pb::Operator> FindOperator(const std::string& id) = 0;  // NOT_FOUND
  // Adds a designation to the operator at `expected_version` (the version its etag was checked
  // against) and moves that version on: NOT_FOUND, or ABORTED when the version moved on meanwhile.
  virtual absl::Status AddDesignation(const Designation& d, int64_t expected_version) = 0;
  // Locks the region's designations until the transaction ends (its designation_locks row):
  // taken before the overlap check, so two designations of one region cannot both pass it.
  virtual absl::Status LockDesignations(const std::string& region) = 0;
  // The time (unix micros) of the operator's last own activity before `before` (exclusive), read
  // under the activity lock that every append takes: an event being appended meanwhile commits
  // first and is seen (a decision that the operator is silent cannot miss it).
  virtual absl::StatusOr<std::optional<int64_t>> LastOwnActivityLocked(const std::string& operator_id,
                                                                         int64_t before) = 0;
  // Replaces the operator's document (not its designations) if still at `expected_version`:
  // ABORTED when it moved on, NOT_FOUND when absent.
  virtual absl::Status PutOperator(const pb::Operator& op, int64_t expected_version) = 0;
  virtual absl::StatusOr<std::vector<Designation>> ListDesignations(const std::string& region) = 0;

  virtual absl::StatusOr<std::vector<pb::LevelCatalogue>> ListLevelCatalogues() = 0;

  // Beneficiaries: keyed by pseudonym (last segment of the name). Insert is a no-op returning
  // false when the pseudonym exists (the same person registered by another operator).
  virtual absl::StatusOr<bool> InsertBeneficiaryIfAbsent(const pb::Beneficiary& b, absl::Time now) = 0;
  virtual absl::StatusOr<pb::Beneficiary> GetBeneficiary(const std::string& pseudonym) = 0;  // NOT_FOUND
  // Locks the rows of these people (those that exist) until the transaction ends, in key order.
  // Every transaction that decides from a person's files or contact copies (open, import,
  // register, contact update, transfer, erasure, retention) takes it first: otherwise READ
  // COMMITTED lets an erasure miss a file opened meanwhile, or a transfer delete a contact copy
  // updated meanwhile, and both commit.
  virtual absl::Status LockBeneficiaries(std::vector<std::string> pseudonyms) = 0;
  // One operator's own record of a person: its contact details and the situation it registered
  // (department, region, status and qualification level of `situation`; its other fields are not
  // read). Another operator's registration changes neither: the shared beneficiary row keeps the
  // first registration's situation and what every operator agrees on (birth year, sex). The write
  // is the row's activity: `now` becomes its last activity and its retention notice is cleared.
  virtual absl::Status PutContact(const std::string& pseudonym, const std::string& operator_id,
                                  const pb::ContactDetails& contact, const pb::Beneficiary& situation,
                                  absl::Time now) = 0;
  virtual absl::StatusOr<std::optional<pb::ContactDetails>> GetContact(const std::string& pseudonym,
                                                                       const std::string& operator_id) = 0;
  // The retention state of one operator's contact row; nullopt when it has none.
  virtual absl::StatusOr<std::optional<ContactRetention>> GetContactRetention(const std::string& pseudonym,
                                                                              const std::string& operator_id) = 0;
  // Records the notice on the row while its last activity is still `expected_last_activity`;
  // false (nothing changed) when a write moved it on since.
  virtual absl::StatusOr<bool> MarkContactNoticed(const std::string& pseudonym, const std::string& operator_id,
                                                  int notice_yyyymmdd, int64_t expected_last_activity) = 0;
  // Whether any operator has a contact row of the person.
  virtual absl::StatusOr<bool> AnyContact(const std::string& pseudonym) = 0;
  // The operators (ids, in order) that have a contact row of the person.
  virtual absl::StatusOr<std::vector<std::string>> ContactOperators(const std::string& pseudonym) = 0;
  // Erasure and retention. DeleteContact removes one operator's copy; DeleteContacts every copy.
  virtual absl::Status DeleteContact(const std::string& pseudonym, const std::string& operator_id) = 0;
  virtual absl::Status DeleteContacts(const std::string& pseudonym) = 0;
  // Sets `anonymised`; the coarse attributes (birth year, sex, department, region, status,
  // qualification level) are all a beneficiary row holds, and they stay. NOT_FOUND.
  virtual absl::Status MarkBeneficiaryAnonymised(const std::string& pseudonym) = 0;
  // A person registered again after anonymisation: the attributes of `b` replace the old ones and
  // `anonymised` is cleared. Returns false (and changes nothing) unless the row was anonymised.
  virtual absl::StatusOr<bool> ReviveBeneficiary(const pb::Beneficiary& b) = 0;

  // Cases: `operator` and `beneficiary` names carry the column values. external_id unique per
  // operator (ALREADY_EXISTS on a second insert). Every case write moves the indicator rollups
  // in the same transaction (indicators.h): InsertCase counts the case under `subject` (the
  // beneficiary as of the opening, kept with the case), PutCase by the difference with the stored
  // version.
  virtual absl::Status InsertCase(const pb::Case& c, const indicators::Subject& subject, absl::Time now) = 0;
  virtual absl::StatusOr<Versioned<pb::Case>> GetCase(const std::string& id) = 0;  // NOT_FOUND
  // The beneficiary's situation the case is counted under (its opening's). NOT_FOUND.
  virtual absl::StatusOr<indicators::Subject> GetCaseSubject(const std::string& id) = 0;
  virtual absl::StatusOr<std::optional<std::string>> FindCaseByExternalId(const std::string& operator_id,
                                                                          const std::string& external_id) = 0;
  // Also clears the case's retention notice when c.last_activity_time differs from the stored one.
  virtual absl::Status PutCase(const pb::Case& c, int64_t expected_version, absl::Time now) = 0;
  // The retention notice of a case: yyyymmdd, 0 = none. NOT_FOUND.
  virtual absl::StatusOr<int> GetNoticeDate(const std::string& case_id) = 0;
  // Records the notice on the case read at `expected_version` (ABORTED when it moved on since:
  // a touch between the read and the notice wins). The version (etag) does not change: the
  // notice is not part of the Case resource.
  virtual absl::Status MarkNoticed(const std::string& case_id, int notice_yyyymmdd, int64_t expected_version) = 0;
  // The beneficiaries among `pseudonyms` an operator may see: it holds an open or closed case of
  // them, or registered them (its contact row exists).
  virtual absl::StatusOr<std::set<std::string>> BeneficiariesSeenBy(const std::string& operator_id,
                                                                    const std::vector<std::string>& pseudonyms) = 0;
  // Cases of a beneficiary at any operator (for access checks and dedup), ordered by id.
  virtual absl::StatusOr<std::vector<pb::Case>> CasesOfBeneficiary(const std::string& pseudonym) = 0;

  virtual absl::Status InsertTransfer(const pb::Transfer& t, absl::Time now) = 0;
  virtual absl::StatusOr<Versioned<pb::Transfer>> GetTransfer(const std::string& id) = 0;
  virtual absl::Status PutTransfer(const pb::Transfer& t, int64_t expected_version) = 0;
  // Transfers of a case (sent from it), ordered by id.
  virtual absl::StatusOr<std::vector<Versioned<pb::Transfer>>> TransfersOfCase(const std::string& case_id) = 0;

  virtual absl::Status Audit(const AuditEntry& entry) = 0;
  virtual absl::Status Audits(const std::vector<AuditEntry>& entries) = 0;  // one statement per chunk
  // Appends an event; its cursor is assigned by the store (returned). The row records whether
  // the event is the operator's own activity (IsOwnActivity), which compliance counts.
  virtual absl::StatusOr<int64_t> AppendActivity(const pb::ActivityEvent& event, absl::Time now) = 0;

  // --- Bulk import (ImportCases: one transaction per batch) ---------------------------------
  // Multi-row statements, chunked under both dialects' limits (placeholders, statement size).
  // Each produces the rows the single-row methods above would, in the order given.

  // The stored beneficiaries among `pseudonyms`, by pseudonym (absent ones are left out).
  virtual absl::StatusOr<std::map<std::string, pb::Beneficiary>> GetBeneficiaries(
      const std::vector<std::string>& pseudonyms) = 0;
  // GetBeneficiaries restricted to those BeneficiariesSeenBy(operator_id) lists, in one read, each
  // with the situation this operator recorded (PutContact) when it has a contact row.
  virtual absl::StatusOr<std::map<std::string, pb::Beneficiary>> GetBeneficiariesSeenBy(
      const std::string& operator_id, const std::vector<std::string>& pseudonyms) = 0;
  // InsertBeneficiaryIfAbsent for each row: an existing pseudonym (stored, or earlier in `rows`)
  // keeps its first attributes. Returns how many rows were inserted.
  virtual absl::StatusOr<int64_t> InsertBeneficiariesIfAbsent(const std::vector<pb::Beneficiary>& rows,
                                                              absl::Time now) = 0;
  // For each person of `situations` (by name) without a contact row of `operator_id`: one with no
  // contact details and that situation (what RegisterBeneficiary without contact details
  // records: the operator knows the person, as it registered them).
  virtual absl::Status InsertContactsIfAbsent(const std::vector<pb::Beneficiary>& situations,
                                              const std::string& operator_id, absl::Time now) = 0;
  // The cases among `external_ids` of an operator: external id -> case name ("cases/{id}").
  virtual absl::StatusOr<std::map<std::string, std::string>> FindCasesByExternalIds(
      const std::string& operator_id, const std::vector<std::string>& external_ids) = 0;
  // The keyed hash of an anonymised case's external id, kept once the id itself is cleared
  // (ErasedExternalIdHash); a hash already kept is left as it is.
  virtual absl::Status RememberErasedExternalId(const std::string& operator_id, const std::string& hash) = 0;
  // The hashes among `hashes` kept for the operator.
  virtual absl::StatusOr<std::set<std::string>> FindErasedExternalIds(const std::string& operator_id,
                                                                      const std::vector<std::string>& hashes) = 0;
  // InsertCase for each row, except that a row whose (operator, external_id) is already stored,
  // or taken by an earlier row of `rows`, is skipped instead of failing: inserted[i] says which.
  // subjects[i] is the beneficiary rows[i] is counted under (indicators::SubjectOf).
  virtual absl::StatusOr<std::vector<bool>> InsertCases(const std::vector<pb::Case>& rows,
                                                        const std::vector<indicators::Subject>& subjects,
                                                        absl::Time now) = 0;
  // AppendActivity for each event, in order (cursors ascending), the activity lock taken once;
  // one round trip fewer than AppendActivity (no cursor read back), so the use cases append
  // with it: the lock is held from here to the commit.
  virtual absl::Status AppendActivities(const std::vector<pb::ActivityEvent>& events, absl::Time now) = 0;

  virtual absl::StatusOr<std::optional<std::string>> LookupRequest(const std::string& method,
                                                                   const std::string& request_id,
                                                                   const google::protobuf::Message& request) = 0;
  virtual absl::Status RecordRequest(const std::string& method, const std::string& request_id,
                                     const google::protobuf::Message& request,
                                     const std::string& resource_name, absl::Time now) = 0;
  // The same for many keys of one method, one statement each (platform/idempotency.h).
  virtual absl::StatusOr<std::vector<absl::StatusOr<std::optional<std::string>>>> LookupRequests(
      const std::string& method, const std::vector<RequestKey>& keys) = 0;
  virtual absl::Status RecordRequests(const std::string& method, const std::vector<RequestKey>& keys,
                                      const std::vector<std::string>& resource_names, absl::Time now) = 0;
};

struct CaseQuery {
  std::string operator_id;  // required scope
  std::optional<pb::CaseState> state;
  std::string level;
  int opened_from_yyyymmdd = 0;  // 0 = any
  std::string after_id;
  int limit = 50;
};

struct TransferQuery {
  std::string operator_id;  // sent or received by it
  std::optional<pb::TransferState> state;
  std::string after_id;
  int limit = 50;
};

// Cases of one state whose last activity is before `inactive_before`, in (last_activity, id)
// order after the keyset (after_last_activity, after_id): the retention pass's scan.
struct InactiveCaseQuery {
  pb::CaseState state = pb::CASE_STATE_UNSPECIFIED;
  int64_t inactive_before = 0;  // unix micros, exclusive
  int64_t after_last_activity = INT64_MIN;
  std::string after_id;
  int limit = 200;
};

struct InactiveCase {
  std::string id;
  int64_t last_activity = 0;  // unix micros
  int notice_date = 0;        // yyyymmdd, 0 = none
};

// Registrations without a file: contact rows of an operator that holds no open or closed case of
// the person, whose last activity is before `inactive_before`, in (last_activity, pseudonym,
// operator_id) order after the keyset. What the case's retention does not reach.
struct InactiveRegistrationQuery {
  int64_t inactive_before = 0;  // unix micros, exclusive
  int64_t after_last_activity = INT64_MIN;
  std::string after_pseudonym;
  std::string after_operator;
  int limit = 200;
};

struct InactiveRegistration {
  std::string pseudonym;
  std::string operator_id;
  int64_t last_activity = 0;  // unix micros
  int notice_date = 0;        // yyyymmdd, 0 = none
};

// Events an operator's own work produces count for the data-sharing duty; the platform's events
// on its cases (RETENTION_NOTICE, ANONYMISED, ERASED) do not, nor a file leaving it by a transfer
// another operator accepted (CASE_TRANSFERRED_AWAY).
inline bool IsOwnActivity(pb::ActivityKind kind) {
  return kind != pb::ACTIVITY_KIND_RETENTION_NOTICE && kind != pb::ACTIVITY_KIND_ANONYMISED &&
         kind != pb::ACTIVITY_KIND_ERASED && kind != pb::ACTIVITY_KIND_CASE_TRANSFERRED_AWAY;
}

struct OperatorQuery {
  std::optional<pb::OperatorKind> kind;
  std::string region;
  std::string after_id;
  int limit = 50;
};

class CepRepository {
 public:
  virtual ~CepRepository() = default;
  virtual absl::Status Transact(const std::function<absl::Status(CepTx&)>& fn) = 0;
  virtual absl::StatusOr<std::vector<pb::Case>> ListCases(const CaseQuery& query) = 0;
  virtual absl::StatusOr<std::vector<pb::Transfer>> ListTransfers(const TransferQuery& query) = 0;
  virtual absl::StatusOr<std::vector<pb::Operator>> ListOperators(const OperatorQuery& query) = 0;
  virtual absl::StatusOr<std::vector<AuditEntry>> ListAudit(const std::string& resource) = 0;
  // Events with cursor > after, in cursor order, at most `limit`.
  virtual absl::StatusOr<std::vector<pb::ActivityEvent>> ReadActivity(int64_t after, int limit) = 0;
  // The same, only the events of one operator (an empty id reads nothing).
  virtual absl::StatusOr<std::vector<pb::ActivityEvent>> ReadOperatorActivity(const std::string& operator_id,
                                                                              int64_t after, int limit) = 0;
  // Per operator id: the time (unix micros) of its last own activity (IsOwnActivity) before
  // `before` (exclusive); operators without any are absent from the map.
  virtual absl::StatusOr<std::map<std::string, int64_t>> LastOwnActivity(const std::vector<std::string>& operator_ids,
                                                                         int64_t before) = 0;
  virtual absl::StatusOr<std::vector<InactiveCase>> ListInactiveCases(const InactiveCaseQuery& query) = 0;
  // Gives the contact rows without a last activity (written by a binary before migration 0007)
  // `now_micros`: their retention clock starts when the pass first sees them.
  virtual absl::Status DateUndatedContacts(int64_t now_micros) = 0;
  virtual absl::StatusOr<std::vector<InactiveRegistration>> ListInactiveRegistrations(
      const InactiveRegistrationQuery& query) = 0;

  // --- Indicators ---
  // Rows of one cuboid: every cell grouped as the query says, with SUM(value).
  virtual absl::StatusOr<std::vector<std::pair<indicators::Cell, int64_t>>> QueryRollup(
      const indicators::RollupQuery& query) = 0;
  // Every stored rollup cell that is not zero.
  virtual absl::StatusOr<indicators::Rollup> ReadRollup() = 0;
  // The rollups recomputed from every stored case (zeros dropped): what ReadRollup must equal.
  virtual absl::StatusOr<indicators::Rollup> RecomputeRollup() = 0;
  // Replaces the stored rollups with the recomputation (`cep-svc rebuild-indicators`).
  virtual absl::Status RebuildRollup() = 0;
};

std::unique_ptr<CepRepository> NewSqlRepository(db::Db& db);

// Adds to the stored rollups what a migration's change to a case's contribution adds for the
// cases stored before it (rows of `indicator_backfill`, migration 0009), chunk by chunk, each
// chunk in one transaction with its progress. Run by `cep-svc migrate` after the schema
// migrations; idempotent, resumable, safe to run from several processes at once. Returns the
// cases counted.
absl::StatusOr<int64_t> BackfillRollups(db::Db& db);

// FAILED_PRECONDITION while a backfill is pending: a server writing cases before it ends would
// have the backfill count their new contributions twice. Checked by `serve` at start.
absl::Status CheckRollupsComplete(db::Db& db);

}  // namespace parcours::cep
