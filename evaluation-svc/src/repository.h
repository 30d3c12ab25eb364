// Persistence of evaluation-svc: candidacies, jury sessions, score sheets, deliberations, the
// ledger of acquired blocs and the audit trail. One interface, one SQL implementation on both
// dialects of platform/db, one conformance suite (tests/repository_conformance_test.cc).
//
// A use case often changes several aggregates at once (scheduling touches a session and a
// candidacy; the last signature seals a deliberation, moves the candidacy and fills the ledger),
// so the repository hands out a transaction with typed operations. Aggregates are stored whole
// (protobuf document + the columns lists filter on) with a `version` column for optimistic
// concurrency: Put* fails with ABORTED when the stored version is not the one read.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "parcours/evaluation/v1/evaluation.pb.h"
#include "platform/db/db.h"
#include "platform/store.h"

namespace parcours::evaluation {

using ::parcours::AuditEntry;
using ::parcours::Versioned;

namespace pb = ::parcours::evaluation::v1;

struct LedgerEntry {
  std::string candidate_id;
  std::string certification_code;
  std::string bloc_code;
  int acquired_yyyymmdd = 0;
  int expiry_yyyymmdd = 0;  // 0 = permanent
  std::string source_deliberation;  // resource name
};

// A bloc an issued certificate counted from the ledger, and one result whose entry held it then.
struct LedgerUse {
  std::string candidacy_id;         // the certificate's candidacy (id)
  std::string bloc_code;            // the bloc of that candidacy's certification
  std::string source_deliberation;  // the result (deliberation name) whose entry held it

  bool operator==(const LedgerUse& o) const {
    return candidacy_id == o.candidacy_id && bloc_code == o.bloc_code && source_deliberation == o.source_deliberation;
  }
};

// A score sheet of an earlier jury of a candidacy (EvaluationTx::SetAsideScoreSheets).
struct PastScoreSheet {
  std::string session_id;  // the session whose jury it was given to
  std::string member_id;
  pb::ScoreSheet sheet;     // name and update_time set, as ListScoreSheets returns them
  absl::Time set_aside_time;
};

// Operations inside one transaction. Ids are the last segment of resource names.
class EvaluationTx {
 public:
  virtual ~EvaluationTx() = default;

  // Candidacies. Insert fails with ALREADY_EXISTS on a taken id. Put writes the whole aggregate
  // (the `name` carries the id) if the stored version is still `expected_version`, else ABORTED.
  virtual absl::Status InsertCandidacy(const pb::Candidacy& candidacy, absl::Time now) = 0;
  virtual absl::StatusOr<Versioned<pb::Candidacy>> GetCandidacy(const std::string& id) = 0;  // NOT_FOUND
  // GetCandidacy, and the row stays locked until the transaction ends: for a decision that rests
  // on the candidacy's other rows (score sheets, deliberations) which a concurrent transaction
  // may write without touching the candidacy's version. Both sides lock it, so one waits.
  virtual absl::StatusOr<Versioned<pb::Candidacy>> LockCandidacy(const std::string& id) = 0;  // NOT_FOUND
  virtual absl::Status PutCandidacy(const pb::Candidacy& candidacy, int64_t expected_version,
                                    absl::Time now) = 0;

  virtual absl::Status InsertSession(const pb::JurySession& session, absl::Time now) = 0;
  virtual absl::StatusOr<Versioned<pb::JurySession>> GetSession(const std::string& id) = 0;
  virtual absl::Status PutSession(const pb::JurySession& session, int64_t expected_version,
                                  absl::Time now) = 0;

  // Score sheets: one per (candidacy, member), replaced whole.
  virtual absl::Status PutScoreSheet(const std::string& candidacy_id, const std::string& member_id,
                                     const pb::ScoreSheet& sheet, absl::Time now) = 0;
  virtual absl::StatusOr<std::optional<pb::ScoreSheet>> GetScoreSheet(const std::string& candidacy_id,
                                                                      const std::string& member_id) = 0;
  // Every sheet of a candidacy, keyed by member id, ordered by member id.
  virtual absl::StatusOr<std::vector<std::pair<std::string, pb::ScoreSheet>>> ListScoreSheets(
      const std::string& candidacy_id) = 0;

  // Moves every sheet of a candidacy out of score_sheets into past_score_sheets, under the
  // session (id) whose jury they were given to: when the candidacy goes before another jury, the
  // earlier jury's sheets no longer count (ListScoreSheets no longer returns them) and none is
  // lost. Returns how many were moved.
  virtual absl::StatusOr<int> SetAsideScoreSheets(const std::string& candidacy_id, const std::string& session_id,
                                                  absl::Time now) = 0;
  // The sheets set aside for a candidacy, in (set-aside time, session id, member id) order.
  virtual absl::StatusOr<std::vector<PastScoreSheet>> ListPastScoreSheets(const std::string& candidacy_id) = 0;

  // Deliberations: rounds 1, 2, ... of a candidacy.
  virtual absl::Status InsertDeliberation(const std::string& candidacy_id, int round,
                                          const pb::Deliberation& deliberation, absl::Time now) = 0;
  virtual absl::StatusOr<Versioned<pb::Deliberation>> GetDeliberation(const std::string& candidacy_id,
                                                                      int round) = 0;  // NOT_FOUND
  // Highest round, 0 when none.
  virtual absl::StatusOr<int> LatestDeliberationRound(const std::string& candidacy_id) = 0;
  virtual absl::Status PutDeliberation(const std::string& candidacy_id, int round,
                                       const pb::Deliberation& deliberation, int64_t expected_version,
                                       absl::Time now) = 0;

  // The ledger.
  virtual absl::Status AddLedgerEntry(const LedgerEntry& entry) = 0;
  // Removes every entry granted by a deliberation (on revocation).
  virtual absl::Status RemoveLedgerEntries(const std::string& source_deliberation) = 0;
  virtual absl::StatusOr<std::vector<LedgerEntry>> ListLedger(const std::string& candidate_id) = 0;
  // ListLedger, locking the candidate's entries until the transaction ends. IssueCertificate reads
  // the ledger so: a revocation of one of the results it counts waits for it (the revocation
  // deletes their entries), then sees the uses it recorded; under READ COMMITTED both would
  // otherwise commit.
  virtual absl::StatusOr<std::vector<LedgerEntry>> LockLedger(const std::string& candidate_id) = 0;
  // What issued certificates counted from the ledger (see LedgerUse).
  virtual absl::Status AddLedgerUses(const std::vector<LedgerUse>& uses) = 0;
  // The uses of one result's entries, and of any result by one candidacy's certificate; both in
  // (candidacy, bloc, source) order.
  virtual absl::StatusOr<std::vector<LedgerUse>> ListLedgerUsesOfResult(const std::string& source_deliberation) = 0;
  virtual absl::StatusOr<std::vector<LedgerUse>> ListLedgerUsesByCandidacy(const std::string& candidacy_id) = 0;
  virtual absl::Status RemoveLedgerUsesOfResult(const std::string& source_deliberation) = 0;

  virtual absl::Status Audit(const AuditEntry& entry) = 0;

  // request_id idempotency (platform/idempotency.h) in this transaction.
  virtual absl::StatusOr<std::optional<std::string>> LookupRequest(const std::string& method,
                                                                   const std::string& request_id,
                                                                   const google::protobuf::Message& request) = 0;
  virtual absl::Status RecordRequest(const std::string& method, const std::string& request_id,
                                     const google::protobuf::Message& request,
                                     const std::string& resource_name, absl::Time now) = 0;
};

struct CandidacyQuery {
  std::string certifier;           // required scope
  std::string certification_code;  // optional filter
  std::string candidate_id;        // optional filter
  std::optional<pb::CandidacyState> state;
  std::string session;             // sessions/{id}, optional
  std::string after_id;            // keyset cursor
  int limit = 50;
};

struct SessionQuery {
  std::string certifier;
  int date_yyyymmdd = 0;  // 0 = any
  std::optional<pb::SessionState> state;
  std::string after_id;
  int limit = 50;
};

// Sealed deliberations (the current result of their candidacy), for the national statistics.
// Keyset order: (candidacy_id, round).
struct SealedResultQuery {
  std::string certification_code;   // optional filter
  std::string after_candidacy_id;   // keyset cursor: strictly after (after_candidacy_id, after_round)
  int after_round = 0;
  int limit = 500;
};

struct SealedResult {
  std::string candidacy_id;
  int round = 0;
  std::string certification_code;
  pb::Deliberation deliberation;  // name and state set, as GetDeliberation returns it
};

class EvaluationRepository {
 public:
  virtual ~EvaluationRepository() = default;
  // Runs fn in one transaction (commit when it returns OK).
  virtual absl::Status Transact(const std::function<absl::Status(EvaluationTx&)>& fn) = 0;
  virtual absl::StatusOr<std::vector<pb::Candidacy>> ListCandidacies(const CandidacyQuery& query) = 0;
  virtual absl::StatusOr<std::vector<pb::JurySession>> ListSessions(const SessionQuery& query) = 0;
  // Candidacies whose latest deliberation round is SEALED (their current result), that round with
  // the candidacy's certification code, in keyset order.
  virtual absl::StatusOr<std::vector<SealedResult>> ListSealedResults(const SealedResultQuery& query) = 0;
  // Audit trail of a resource, oldest first (for tests and operators).
  virtual absl::StatusOr<std::vector<AuditEntry>> ListAudit(const std::string& resource) = 0;
};

std::unique_ptr<EvaluationRepository> NewSqlRepository(db::Db& db);

}  // namespace parcours::evaluation
