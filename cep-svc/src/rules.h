// The CEP rules that need no storage: field formats, who may open a case when (designation),
// the case state machine, the French territory (departments and regions), age bands, the keyed
// pseudonym. Pure functions, tested alone (tests/rules_test.cc).
//
// Errors: INVALID_ARGUMENT with field paths (platform/errors.h Violations); FAILED_PRECONDITION
// with a rule type for a rule the caller breaks.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "parcours/cep/v1/cep.pb.h"
#include "platform/dates.h"
#include "platform/errors.h"

namespace parcours::cep {

namespace pb = ::parcours::cep::v1;

struct Designation;  // repository.h

// --- Dates (DateKey, AddMonths, FormatDateKey: platform/dates.h) ------------------------------
google::type::Date DateFromKey(int key);

// --- Territory ----------------------------------------------------------------------------------
// INSEE region of a department code ("35" -> "53", "2A" -> "94", "974" -> "04"); "" if unknown.
std::string RegionOfDepartment(const std::string& department);
bool IsRegion(const std::string& region);  // one of the 18 INSEE region codes

// --- Pseudonym ----------------------------------------------------------------------------------
// Keyed hash (HMAC-SHA256 with `key`) of the external identifier, hex, 32 characters: the same
// person gives the same pseudonym at every operator; the identifier itself is never stored.
std::string Pseudonym(const std::string& key, const std::string& external_id);
// What is kept of an anonymised case's external id: a keyed hash, apart from the pseudonyms.
std::string ErasedExternalIdHash(const std::string& key, const std::string& case_external_id);

// France's civil calendar (Europe/Paris): today's yyyymmdd, and the zone itself.
absl::TimeZone FranceTimeZone();
int Today(absl::Time now);
// A date of something that happened (an opening, a service, an outcome, a closing, an answer, a
// retention pass) cannot be after `today`: "must not be in the future" on `field`. Invalid or
// unset dates are left to the other checks.
void CheckNotFuture(const google::type::Date& d, int today, const std::string& field, Violations& v);

// --- Field checks (INVALID_ARGUMENT paths under `prefix`) ---------------------------------------
// Whether a key starts or ends with white space. MariaDB's utf8mb4_bin collation is PAD SPACE:
// "E-1" and "E-1 " are one key there and two in SQLite; keys compared by SQL refuse them.
bool HasEdgeSpace(const std::string& key);
// Operator: display_name required (<= 255), kind specified, regions valid INSEE codes, no repeats.
void CheckOperator(const pb::Operator& op, const std::string& prefix, Violations& v);
// Designation period: region valid, start valid, end unset or >= start.
void CheckDesignation(const pb::DesignationPeriod& period, const std::string& prefix, Violations& v);
// Beneficiary attributes: birth_year 1900..this year - 14, sex specified, department known and
// region equal to its region (or empty: the service fills it with RegionOfDepartment), status specified,
// qualification_level 0..8.
void CheckBeneficiary(const pb::Beneficiary& b, int this_year, const std::string& prefix, Violations& v);
// Contact details: lengths; e-mail shape when present.
void CheckContact(const pb::ContactDetails& c, const std::string& prefix, Violations& v);
// A case at opening: beneficiary name "beneficiaries/{p}", valid opening_date, level non-empty,
// demands specified and not repeated, at least one demand; external_id at most 128 characters,
// no white space at either end (HasEdgeSpace); project steps well formed.
void CheckNewCase(const pb::Case& c, const std::string& prefix, Violations& v);
void CheckProject(const pb::ProjectDocument& p, const std::string& prefix, Violations& v);
void CheckService(const pb::DeliveredService& s, const std::string& prefix, Violations& v);
// Outcome: kind specified; VAE needs candidacy "candidacies/{id}", other kinds none; valid date.
void CheckOutcome(const pb::Outcome& o, const std::string& prefix, Violations& v);
// Satisfaction: when specified, score 1..5, valid date.
void CheckSatisfaction(const pb::Satisfaction& s, const std::string& prefix, Violations& v);

// --- Designation --------------------------------------------------------------------------------
// May `op` open a case on `date` (yyyymmdd) for a beneficiary of `region`?
// France Travail, APEC, Missions locales, Cap emploi: designated by law, in the regions they list;
// OPACIF_FONGECIF: only before 2020-01-01 (the 2018 law handed employed people to regional
// operators); REGIONAL_EMPLOYED: a designation of `designations` for that region covering the
// date. FAILED_PRECONDITION "OPERATOR_NOT_DESIGNATED" otherwise, naming the operator, region, date.
absl::Status CheckDesignated(const pb::Operator& op, const std::string& operator_id,
                             const std::vector<Designation>& designations, const std::string& region, int date);
// A new period must not overlap another period of the same region for any REGIONAL_EMPLOYED
// operator: FAILED_PRECONDITION "DESIGNATION_OVERLAP".
absl::Status CheckNoOverlap(const std::vector<Designation>& existing, const Designation& added);

// --- Case state machine -------------------------------------------------------------------------
// OPEN -> CLOSED (close), CLOSED -> OPEN (reopen), OPEN -> TRANSFERRED (transfer accepted; a
// closed file is reopened first), any but ANONYMISED -> ANONYMISED (retention, erasure).
bool CaseTransitionAllowed(pb::CaseState from, pb::CaseState to);
// FAILED_PRECONDITION "INVALID_TRANSITION" naming the current state; appends the history entry.
absl::Status TransitionCase(pb::Case& c, pb::CaseState to, const std::string& actor, absl::Time now,
                            const std::string& reason);
// TransitionCase to CLOSED on `closing_date` (kept on the history entry as its effective date:
// a reopening clears the case's closing date, the indicators still need it) with `reason`.
absl::Status CloseCaseOn(pb::Case& c, const google::type::Date& closing_date, const std::string& actor, absl::Time now,
                         const std::string& reason);

// Case-level rules on recorded facts (FAILED_PRECONDITION): a service or outcome dated before the
// opening ("DATE_BEFORE_OPENING"); closing before the opening or before the last service
// ("CLOSING_DATE"); satisfaction END only once CLOSED ("CASE_NOT_CLOSED") and SIX_MONTHS only
// from closing + 6 months ("TOO_EARLY_FOR_SIX_MONTHS"); one answer per `when` ("ALREADY_ANSWERED").
absl::Status CheckServiceFits(const pb::Case& c, const pb::DeliveredService& s);
absl::Status CheckOutcomeFits(const pb::Case& c, const pb::Outcome& o);
absl::Status CheckClosing(const pb::Case& c, const google::type::Date& closing_date);
absl::Status CheckSatisfactionFits(const pb::Case& c, const pb::Satisfaction& s);

// A case its holder handed over (TRANSFERRED, or anonymised after it was TRANSFERRED): the former
// holder's record, which the former holder no longer sees.
bool TransferredAway(const pb::Case& c);

// --- Retention, erasure, compliance -------------------------------------------------------------
// Files inactive for 2 years get a 30-day notice, then are anonymised; an operator sharing nothing
// for 6 months is silent. Dates are civil days (yyyymmdd).
inline constexpr int kRetentionMonths = 24;
inline constexpr int kNoticeDays = 30;
inline constexpr int kSilentMonths = 6;
// A case is inactive as of `as_of` when its last activity is before this day (as_of - 24 months).
int InactiveBefore(int as_of);
// A notice given on `notice` has run its course on `as_of` (at least 30 days later).
bool NoticeExpired(int notice, int as_of);
// An operator is silent as of `as_of` when it has no own activity from this day (as_of - 6 months) on.
int SilentUnlessActiveSince(int as_of);
// Whether the operator has been in the directory for the whole silence window as of `as_of`
// (one from before creation times were kept counts as old enough).
bool OldEnoughToBeSilent(const pb::Operator& op, int as_of);

// What anonymisation keeps of a case: what statistics use (operator, dates, level, demands,
// service, outcome and satisfaction kinds, dates and scores, state changes with their actors and
// times; the person's coarse attributes stay on the case's row). It clears every free text and
// link to the person: the project document, the operator's external id, the closing reason, VAE
// candidacy links and state change reasons; the beneficiary becomes `surrogate` (random), since
// the pseudonym is the keyed hash of the person's identifier: whoever still knows it could
// register the person again and find the file under the name it gets back.
void ScrubCase(pb::Case& c, const std::string& surrogate);

// --- Bulk import --------------------------------------------------------------------------------

// Rows per transaction for one of `open_streams` ImportCases streams: `max_batch_rows` shared
// among them, never below min(1000, max_batch_rows) nor above max_batch_rows.
int ImportBatchRows(int max_batch_rows, int open_streams);

}  // namespace parcours::cep
