// The VAE jury rules that need no storage and no network: the candidacy state machine, targets
// and held blocs, jury composition, score sheets, spreads, the decision and its agreement with
// the blocs, the equal-treatment report. Pure functions, tested alone (tests/rules_test.cc).
//
// Errors: INVALID_ARGUMENT with field paths for malformed input (platform/errors.h Violations);
// FAILED_PRECONDITION with a rule type for a rule the caller breaks.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "parcours/evaluation/v1/evaluation.pb.h"
#include "parcours/referential/v1/referential.pb.h"
#include "platform/dates.h"
#include "platform/errors.h"

namespace parcours::evaluation {

namespace pb = ::parcours::evaluation::v1;
namespace ref = ::parcours::referential::v1;

struct LedgerEntry;  // repository.h

// --- State machine ------------------------------------------------------------------------------
// Allowed: INFORMATION -> ADMISSIBILITY_REQUESTED -> ADMISSIBLE | NOT_ADMISSIBLE;
// ADMISSIBLE -> DOSSIER_FILED -> JURY_SCHEDULED -> EVALUATED -> DELIBERATED -> CERTIFICATE_ISSUED;
// DELIBERATED -> EVALUATED (revocation reopens the deliberation);
// DELIBERATED -> JURY_SCHEDULED (a candidate absent or excused called before a later session);
// DELIBERATED -> DOSSIER_FILED (a result revoked for a new jury);
// DOSSIER_FILED -> CERTIFICATE_ISSUED (the ledger already covers every targeted bloc);
// any state but NOT_ADMISSIBLE, CERTIFICATE_ISSUED and WITHDRAWN -> WITHDRAWN (a DELIBERATED one
// only if its sealed result grants no bloc: the caller checks the sealed proposal).
bool TransitionAllowed(pb::CandidacyState from, pb::CandidacyState to);
// Moves the candidacy and appends the history entry; FAILED_PRECONDITION "INVALID_TRANSITION"
// naming the current state (e.g. "candidacies/x is DOSSIER_FILED: cannot become DELIBERATED").
absl::Status Transition(pb::Candidacy& candidacy, pb::CandidacyState to, const std::string& actor,
                        absl::Time now, const std::string& reason);

// "TOTAL" for PROPOSAL_KIND_TOTAL.
std::string ProposalShortName(pb::ProposalKind kind);
// Whether a decision grants blocs: only a TOTAL or a PARTIAL does.
bool GrantsBlocs(pb::ProposalKind proposal);
// Whether a result says the candidate did not come (CANDIDATE_ABSENT or CANDIDATE_EXCUSED): the
// jury heard nobody and appreciated no bloc.
bool NotHeard(pb::ProposalKind proposal);
// "DELIBERATED" for CANDIDACY_STATE_DELIBERATED.
std::string StateShortName(pb::CandidacyState state);

// --- Dates --------------------------------------------------------------------------------------
int ToYyyymmdd(absl::Time t);  // UTC calendar date as 20260612 (DateKey, AddMonths: platform/dates.h)

// --- Whose certification, and until when ---------------------------------------------------------
// A certifier acts on a certification only if the fiche lists it, active, under its principal id
// (ref::Certifier.principal_id): otherwise PERMISSION_DENIED naming the certification.
absl::Status CheckCertifierOf(const ref::Certification& certification, const std::string& certifier_id);
// No certificate after the fiche's issuance deadline (DATE_LIMITE_DELIVRANCE), when it has one:
// FAILED_PRECONDITION "ISSUANCE_DEADLINE_PASSED" on `subject`.
absl::Status CheckIssuanceDeadline(const ref::Certification& certification, int today_yyyymmdd,
                                   const std::string& subject);

// --- Targets and the ledger ---------------------------------------------------------------------
// The targeted bloc codes: all blocs of the version when `target_blocs` is empty, else the named
// ones in version order. Unknown or repeated codes -> INVALID_ARGUMENT on
// "candidacy.target_blocs[i]"; a strict subset when the version's rules forbid partial validation
// -> FAILED_PRECONDITION "PARTIAL_TARGET_NOT_ALLOWED"; a version without blocs (RS) -> its
// certification is evaluated as a whole: returns an empty list.
absl::StatusOr<std::vector<std::string>> ResolveTarget(const std::vector<std::string>& target_blocs,
                                                       const ref::Version& version);

struct HeldBloc {
  std::string bloc_code;  // bloc of the targeted version
  std::string via;        // "" when held directly, else "OTHERCODE/OTHERBLOC" (a correspondence)
  // Every result (deliberation name) whose live entry holds it, directly or through any
  // correspondence: the direct ones first, then each correspondence's, in ledger order.
  std::vector<std::string> sources;
};
// Blocs of `targets` the candidate already holds on `today`: a ledger entry for the same
// certification and bloc, or for a bloc that the version's correspondences map the targeted bloc
// onto. Expired entries (expiry_yyyymmdd != 0 and < today) do not count.
std::vector<HeldBloc> HeldBlocs(const std::vector<std::string>& targets, const std::string& certification_code,
                                const ref::Version& version, const std::vector<LedgerEntry>& ledger,
                                int today_yyyymmdd);
// The day the candidate passed before the jury (its JURY_SCHEDULED -> EVALUATED change, the last
// one), or `otherwise` when its history has none.
int JuryDayOf(const pb::Candidacy& candidacy, int otherwise);

// The candidacy's held blocs that the ledger no longer holds on `day` (lapsed, or their result
// revoked, since the candidacy was opened) go back to the jury: out of held_blocs, into
// blocs_to_evaluate (in the version's bloc order). Returns the blocs moved, in that order.
std::vector<std::string> ReturnLapsedBlocsToTheJury(pb::Candidacy& candidacy, const std::string& certification_code,
                                                    const ref::Version& version,
                                                    const std::vector<LedgerEntry>& ledger, int day_yyyymmdd);

// --- Jury composition ---------------------------------------------------------------------------
// Field checks of a session's members (INVALID_ARGUMENT paths "session.members[i].member_id", ...):
// ids and names required, ids principal ids (ValidPrincipalId) and unique, at most one president,
// valid enums.
void CheckMembers(const pb::JurySession& session, Violations& v);
// The référentiel's rule against the members: MIN_MEMBERS, MIN_QUALIFIED_MEMBERS,
// COLLEGE_MISSING (one per college), PRESIDENT_MISSING, GENDER_BALANCE (|women - men| > 1 or a
// member's gender unspecified when the rule requires balance), MEMBER_NOT_PREPARED (one per
// member that has not confirmed its preparation) and CONFLICT_OF_INTEREST (one per member that
// declared a link with a candidate: only replacing it clears that). `subject` prefixes each
// violation's subject.
std::vector<PreconditionViolation> CompositionViolations(const pb::JurySession& session,
                                                         const ref::JuryCompositionRule& rule,
                                                         const std::string& subject);
// The référentiel's rule raised to the law's floor (décret 2024-332): at least 2 members, at least
// one qualified for the certification, a president with the casting vote, gender balance. A
// fiche's rule only adds to it (more members, colleges): a lax or missing one never lowers it.
ref::JuryCompositionRule WithLegalMinimum(ref::JuryCompositionRule rule);

// --- Scores -------------------------------------------------------------------------------------
// Malformed sheet (INVALID_ARGUMENT paths under "sheet."): a compétence or bloc not in
// `blocs_to_evaluate` of the version ("scoring a bloc outside the target"), repeated codes,
// percent outside 0..100, unspecified mark, interview_level outside 1..levels of the version's
// INTERVIEW scale.
void CheckScoreSheet(const pb::ScoreSheet& sheet, const ref::Version& version,
                     const std::vector<std::string>& blocs_to_evaluate, Violations& v);
// What a sheet still lacks: the codes of compétences (dossier reading) and blocs (interview)
// of `blocs_to_evaluate` that it does not score. Empty = complete.
std::vector<std::string> MissingScores(const pb::ScoreSheet& sheet, const ref::Version& version,
                                       const std::vector<std::string>& blocs_to_evaluate);

// Per bloc to evaluate: min, max, mean of the members' interview percentages; divergent when
// max - min > gap.
std::vector<pb::BlocSpread> Spreads(const std::vector<pb::ScoreSheet>& sheets,
                                    const std::vector<std::string>& blocs_to_evaluate, int gap);

// --- Decision -----------------------------------------------------------------------------------
struct DecisionContext {
  std::vector<std::string> blocs_to_evaluate;
  // Blocs of the certification the candidacy does not target (neither held nor evaluated): with
  // any, acquiring every evaluated bloc is PARTIAL, not the whole certification.
  int blocs_not_targeted = 0;
  int threshold_percent = 0;
  bool partial_allowed = true;
  pb::Attendance attendance = pb::ATTENDANCE_PRESENT;
};
// Validates the decision and writes it into `deliberation`: appreciations (with `acquired`
// computed: common_percent >= threshold, or below it with a non-empty justification), proposal,
// proposed_blocs (the acquired ones, in order), comment.
// INVALID_ARGUMENT: unknown/repeated bloc ("appreciations[i].bloc_code"), percent outside 0..100,
// unspecified proposal, any appreciation when the candidate was absent or excused ("appreciations":
// the jury heard no one). FAILED_PRECONDITION: APPRECIATION_MISSING (a bloc to evaluate without
// appreciation, when the candidate was present), PROPOSAL_DISAGREES_WITH_BLOCS (TOTAL unless every
// bloc is acquired and the candidacy targets the whole certification; PARTIAL unless some but not
// the whole certification; REFUSAL unless none; ABSENT/EXCUSED unless the
// attendance says so), PARTIAL_NOT_ALLOWED.
absl::Status ApplyDecision(const pb::RecordDecisionRequest& request, const DecisionContext& context,
                           pb::Deliberation& deliberation);

// --- Equal treatment ----------------------------------------------------------------------------
// Findings for present candidates whose presentation_seconds, exchange_seconds or question_count
// differ from the median of the present candidates by more than the session's tolerance (defaults
// 120 s and 2 questions when the session's are 0), and passages over the seed's limits (600 s
// presentation, 600 s exchange).
pb::SessionReport BuildSessionReport(const pb::JurySession& session);

}  // namespace parcours::evaluation
