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
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "parcours/cep/v1/cep.pb.h"
#include "platform/db/db.h"
#include "platform/store.h"

namespace parcours::cep {

using ::parcours::AuditEntry;
using ::parcours::Versioned;

namespace pb = ::parcours::cep::v1;

struct Designation {
  std::string operator_id;
  std::string region;
  int start_yyyymmdd = 0;
  int end_yyyymmdd = 0;  // 0 = open-ended
};

class CepTx {
 public:
  virtual ~CepTx() = default;

  // Operators: id = last segment of the name. Designations are returned inside the operator.
  virtual absl::Status InsertOperator(const pb::Operator& op) = 0;                        // ALREADY_EXISTS
  virtual absl::StatusOr<Versioned<pb::Operator>> GetOperator(const std::string& id) = 0;  // NOT_FOUND
  virtual absl::Status AddDesignation(const Designation& d) = 0;
  virtual absl::StatusOr<std::vector<Designation>> ListDesignations(const std::string& region) = 0;

  virtual absl::StatusOr<std::vector<pb::LevelCatalogue>> ListLevelCatalogues() = 0;

  // Beneficiaries: keyed by pseudonym (last segment of the name). Insert is a no-op returning
  // false when the pseudonym exists (the same person registered by another operator).
  virtual absl::StatusOr<bool> InsertBeneficiaryIfAbsent(const pb::Beneficiary& b, absl::Time now) = 0;
  virtual absl::StatusOr<pb::Beneficiary> GetBeneficiary(const std::string& pseudonym) = 0;  // NOT_FOUND
  virtual absl::Status PutContact(const std::string& pseudonym, const std::string& operator_id,
                                  const pb::ContactDetails& contact) = 0;
  virtual absl::StatusOr<std::optional<pb::ContactDetails>> GetContact(const std::string& pseudonym,
                                                                       const std::string& operator_id) = 0;

  // Cases: `operator` and `beneficiary` names carry the column values. external_id unique per
  // operator (ALREADY_EXISTS on a second insert).
  virtual absl::Status InsertCase(const pb::Case& c, absl::Time now) = 0;
  virtual absl::StatusOr<Versioned<pb::Case>> GetCase(const std::string& id) = 0;  // NOT_FOUND
  virtual absl::StatusOr<std::optional<std::string>> FindCaseByExternalId(const std::string& operator_id,
                                                                          const std::string& external_id) = 0;
  virtual absl::Status PutCase(const pb::Case& c, int64_t expected_version, absl::Time now) = 0;
  // Cases of a beneficiary at any operator (for access checks and dedup), ordered by id.
  virtual absl::StatusOr<std::vector<pb::Case>> CasesOfBeneficiary(const std::string& pseudonym) = 0;

  virtual absl::Status InsertTransfer(const pb::Transfer& t, absl::Time now) = 0;
  virtual absl::StatusOr<Versioned<pb::Transfer>> GetTransfer(const std::string& id) = 0;
  virtual absl::Status PutTransfer(const pb::Transfer& t, int64_t expected_version) = 0;

  virtual absl::Status Audit(const AuditEntry& entry) = 0;
  // Appends an event; its cursor is assigned by the store (returned).
  virtual absl::StatusOr<int64_t> AppendActivity(const pb::ActivityEvent& event, absl::Time now) = 0;

  virtual absl::StatusOr<std::optional<std::string>> LookupRequest(const std::string& method,
                                                                   const std::string& request_id,
                                                                   const google::protobuf::Message& request) = 0;
  virtual absl::Status RecordRequest(const std::string& method, const std::string& request_id,
                                     const google::protobuf::Message& request,
                                     const std::string& resource_name, absl::Time now) = 0;
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
};

std::unique_ptr<CepRepository> NewSqlRepository(db::Db& db);

}  // namespace parcours::cep
