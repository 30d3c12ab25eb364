#include "evaluation-svc/src/rules.h"

#include "platform/proto_time.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "evaluation-svc/src/repository.h"
#include "platform/principal.h"

namespace parcours::evaluation {
namespace {

std::string CollegeShortName(ref::College college) {
  const std::string& full = ref::College_Name(college);
  constexpr char kPrefix[] = "COLLEGE_";
  if (full.rfind(kPrefix, 0) == 0) return full.substr(sizeof(kPrefix) - 1);
  return full.empty() ? absl::StrCat(static_cast<int>(college)) : full;
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) { *ts = ToTimestamp(t); }

bool Contains(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

bool Expired(const LedgerEntry& e, int today) { return e.expiry_yyyymmdd != 0 && e.expiry_yyyymmdd < today; }

// Median of a non-empty list (the mean of the two middle values for an even count).
double Median(std::vector<int> values) {
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  if (n == 0) return 0;
  if (n % 2 == 1) return values[n / 2];
  return (static_cast<double>(values[n / 2 - 1]) + static_cast<double>(values[n / 2])) / 2.0;
}

}  // namespace

std::string StateShortName(pb::CandidacyState state) {
  const std::string& full = pb::CandidacyState_Name(state);
  if (full.empty()) return absl::StrCat(static_cast<int>(state));
  constexpr char kPrefix[] = "CANDIDACY_STATE_";
  if (full.rfind(kPrefix, 0) == 0) return full.substr(sizeof(kPrefix) - 1);
  return full;
}

bool GrantsBlocs(pb::ProposalKind proposal) {
  return proposal == pb::PROPOSAL_KIND_TOTAL || proposal == pb::PROPOSAL_KIND_PARTIAL;
}

bool NotHeard(pb::ProposalKind proposal) {
  return proposal == pb::PROPOSAL_KIND_CANDIDATE_ABSENT || proposal == pb::PROPOSAL_KIND_CANDIDATE_EXCUSED;
}

std::string ProposalShortName(pb::ProposalKind kind) {
  const std::string& full = pb::ProposalKind_Name(kind);
  constexpr char kPrefix[] = "PROPOSAL_KIND_";
  if (full.rfind(kPrefix, 0) == 0) return full.substr(sizeof(kPrefix) - 1);
  return full.empty() ? absl::StrCat(static_cast<int>(kind)) : full;
}

// --- State machine ------------------------------------------------------------------------------

bool TransitionAllowed(pb::CandidacyState from, pb::CandidacyState to) {
  using S = pb::CandidacyState;
  if (from == to) return false;
  if (to == S::CANDIDACY_STATE_WITHDRAWN) {
    switch (from) {
      case S::CANDIDACY_STATE_INFORMATION:
      case S::CANDIDACY_STATE_ADMISSIBILITY_REQUESTED:
      case S::CANDIDACY_STATE_ADMISSIBLE:
      case S::CANDIDACY_STATE_DOSSIER_FILED:
      case S::CANDIDACY_STATE_JURY_SCHEDULED:
      case S::CANDIDACY_STATE_EVALUATED:
      case S::CANDIDACY_STATE_DELIBERATED:  // on a result granting no bloc (the caller checks)
        return true;
      default:
        return false;
    }
  }
  switch (from) {
    case S::CANDIDACY_STATE_INFORMATION:
      return to == S::CANDIDACY_STATE_ADMISSIBILITY_REQUESTED;
    case S::CANDIDACY_STATE_ADMISSIBILITY_REQUESTED:
      return to == S::CANDIDACY_STATE_ADMISSIBLE || to == S::CANDIDACY_STATE_NOT_ADMISSIBLE;
    case S::CANDIDACY_STATE_ADMISSIBLE:
      return to == S::CANDIDACY_STATE_DOSSIER_FILED;
    case S::CANDIDACY_STATE_DOSSIER_FILED:
      return to == S::CANDIDACY_STATE_JURY_SCHEDULED || to == S::CANDIDACY_STATE_CERTIFICATE_ISSUED;
    case S::CANDIDACY_STATE_JURY_SCHEDULED:
      return to == S::CANDIDACY_STATE_EVALUATED;
    case S::CANDIDACY_STATE_EVALUATED:
      return to == S::CANDIDACY_STATE_DELIBERATED;
    case S::CANDIDACY_STATE_DELIBERATED:
      // JURY_SCHEDULED: a candidate absent or excused is called before a later session (the
      // caller checks the sealed proposal); DOSSIER_FILED: a result revoked for a new jury.
      return to == S::CANDIDACY_STATE_CERTIFICATE_ISSUED || to == S::CANDIDACY_STATE_EVALUATED ||
             to == S::CANDIDACY_STATE_JURY_SCHEDULED || to == S::CANDIDACY_STATE_DOSSIER_FILED;
    default:
      return false;
  }
}

absl::Status Transition(pb::Candidacy& candidacy, pb::CandidacyState to, const std::string& actor,
                        absl::Time now, const std::string& reason) {
  pb::CandidacyState from = candidacy.state();
  if (!TransitionAllowed(from, to)) {
    return FailedPrecondition("INVALID_TRANSITION", candidacy.name(),
                              absl::StrCat(candidacy.name(), " is ", StateShortName(from), ": cannot become ",
                                           StateShortName(to)));
  }
  pb::StateChange* change = candidacy.add_history();
  change->set_from(from);
  change->set_to(to);
  change->set_actor(actor);
  SetTimestamp(now, change->mutable_time());
  change->set_reason(reason);
  candidacy.set_state(to);
  return absl::OkStatus();
}

// --- Dates --------------------------------------------------------------------------------------

int ToYyyymmdd(absl::Time t) {
  absl::CivilDay day = absl::ToCivilDay(t, absl::UTCTimeZone());
  return static_cast<int>(day.year() * 10000 + day.month() * 100 + day.day());
}


// --- Targets and the ledger ---------------------------------------------------------------------

absl::StatusOr<std::vector<std::string>> ResolveTarget(const std::vector<std::string>& target_blocs,
                                                       const ref::Version& version) {
  std::set<std::string> known;
  for (const ref::Bloc& b : version.blocs()) known.insert(b.code());

  Violations v;
  std::set<std::string> named;
  for (size_t i = 0; i < target_blocs.size(); ++i) {
    const std::string& code = target_blocs[i];
    std::string field = absl::StrCat("candidacy.target_blocs[", i, "]");
    if (known.count(code) == 0) {
      v.Add(std::move(field), absl::StrCat("unknown bloc \"", code, "\" in ", version.name()));
    } else if (!named.insert(code).second) {
      v.Add(std::move(field), absl::StrCat("bloc ", code, " is repeated"));
    }
  }
  if (!v.empty()) return v.ToStatus();

  std::vector<std::string> result;
  if (version.blocs().empty()) return result;  // RS: evaluated as a whole
  for (const ref::Bloc& b : version.blocs()) {
    if (named.empty() || named.count(b.code()) > 0) result.push_back(b.code());
  }
  if (result.size() < static_cast<size_t>(version.blocs_size()) &&
      !version.validation_rules().partial_validation_allowed()) {
    return FailedPrecondition("PARTIAL_TARGET_NOT_ALLOWED", version.name(),
                              absl::StrCat(version.name(),
                                           " does not allow partial validation: the candidacy must target "
                                           "every bloc"));
  }
  return result;
}

absl::Status CheckCertifierOf(const ref::Certification& certification, const std::string& certifier_id) {
  for (const ref::Certifier& c : certification.certifiers()) {
    if (c.active() && !c.principal_id().empty() && c.principal_id() == certifier_id) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat("certifier:", certifier_id, " is not an active certifier of ",
                                                  certification.code(), ": candidacies on a certification are its "
                                                  "certifiers' own"));
}

absl::Status CheckIssuanceDeadline(const ref::Certification& certification, int today_yyyymmdd,
                                   const std::string& subject) {
  const google::type::Date& d = certification.issuance_deadline();
  if (d.year() == 0) return absl::OkStatus();  // unset (an empty Date counts as unset, as in referential-svc)
  const int deadline = DateKey(d);
  if (today_yyyymmdd <= deadline) return absl::OkStatus();
  return FailedPrecondition("ISSUANCE_DEADLINE_PASSED", subject,
                            absl::StrCat(certification.code(), " issues no certificate after ",
                                         FormatDateKey(deadline), " (its issuance deadline)"));
}

std::vector<HeldBloc> HeldBlocs(const std::vector<std::string>& targets, const std::string& certification_code,
                                const ref::Version& version, const std::vector<LedgerEntry>& ledger,
                                int today_yyyymmdd) {
  // The sources of the live entries for (cert, bloc); none when it is not held.
  auto holders = [&](const std::string& cert, const std::string& bloc) {
    std::vector<std::string> sources;
    for (const LedgerEntry& e : ledger) {
      if (e.certification_code == cert && e.bloc_code == bloc && !Expired(e, today_yyyymmdd)) {
        sources.push_back(e.source_deliberation);
      }
    }
    return sources;
  };
  // `via` names the first way the bloc is held (directly before a correspondence); `sources`
  // every result that holds it, whichever way.
  std::vector<HeldBloc> held;
  for (const std::string& target : targets) {
    HeldBloc h{target, "", holders(certification_code, target)};
    bool found = !h.sources.empty();
    for (const ref::BlocCorrespondence& c : version.correspondences()) {
      if (c.source_bloc_code() != target) continue;
      std::vector<std::string> sources = holders(c.target_certification_code(), c.target_bloc_code());
      if (sources.empty()) continue;
      if (!found) h.via = absl::StrCat(c.target_certification_code(), "/", c.target_bloc_code());
      found = true;
      for (std::string& source : sources) {
        if (std::find(h.sources.begin(), h.sources.end(), source) == h.sources.end()) {
          h.sources.push_back(std::move(source));
        }
      }
    }
    if (found) held.push_back(std::move(h));
  }
  return held;
}

int JuryDayOf(const pb::Candidacy& candidacy, int otherwise) {
  for (auto it = candidacy.history().rbegin(); it != candidacy.history().rend(); ++it) {
    if (it->from() == pb::CANDIDACY_STATE_JURY_SCHEDULED && it->to() == pb::CANDIDACY_STATE_EVALUATED) {
      return ToYyyymmdd(FromTimestamp(it->time()));
    }
  }
  return otherwise;
}

std::vector<std::string> ReturnLapsedBlocsToTheJury(pb::Candidacy& candidacy, const std::string& certification_code,
                                                    const ref::Version& version,
                                                    const std::vector<LedgerEntry>& ledger, int day_yyyymmdd) {
  const std::vector<std::string> held(candidacy.held_blocs().begin(), candidacy.held_blocs().end());
  std::set<std::string> still;
  for (const HeldBloc& h : HeldBlocs(held, certification_code, version, ledger, day_yyyymmdd)) still.insert(h.bloc_code);
  if (still.size() == held.size()) return {};
  std::set<std::string> to_evaluate(candidacy.blocs_to_evaluate().begin(), candidacy.blocs_to_evaluate().end());
  for (const std::string& h : held) {
    if (still.count(h) == 0) to_evaluate.insert(h);
  }
  // In the version's bloc order; a code the version does not list (none should) goes last.
  std::vector<std::string> ordered;
  for (const ref::Bloc& b : version.blocs()) {
    if (to_evaluate.erase(b.code()) > 0) ordered.push_back(b.code());
  }
  ordered.insert(ordered.end(), to_evaluate.begin(), to_evaluate.end());
  std::vector<std::string> moved;
  for (const std::string& b : ordered) {
    if (std::find(held.begin(), held.end(), b) != held.end()) moved.push_back(b);
  }
  candidacy.clear_held_blocs();
  for (const std::string& h : held) {
    if (still.count(h) > 0) candidacy.add_held_blocs(h);
  }
  candidacy.clear_blocs_to_evaluate();
  for (const std::string& b : ordered) candidacy.add_blocs_to_evaluate(b);
  return moved;
}

// --- Jury composition ---------------------------------------------------------------------------

void CheckMembers(const pb::JurySession& session, Violations& v) {
  std::set<std::string> ids;
  int presidents = 0;
  for (int i = 0; i < session.members_size(); ++i) {
    const pb::JuryMember& m = session.members(i);
    std::string prefix = absl::StrCat("session.members[", i, "].");
    if (m.member_id().empty()) {
      v.Add(prefix + "member_id", "must not be empty");
    } else if (!ValidPrincipalId(m.member_id())) {
      // The member acts as jury-member:<member_id>: an id no principal can carry never signs.
      v.Add(prefix + "member_id", "must be a jury member's principal id: letters, digits, '-', '_' and '.', "
                                  "at most 128 characters (without the \"jury-member:\" prefix)");
    } else if (!ids.insert(m.member_id()).second) {
      v.Add(prefix + "member_id", absl::StrCat("member ", m.member_id(), " is repeated"));
    }
    if (absl::StripAsciiWhitespace(m.display_name()).empty()) {
      v.Add(prefix + "display_name", "must not be empty");
    }
    if (!pb::College_IsValid(m.college())) v.Add(prefix + "college", "unknown college");
    if (!pb::Gender_IsValid(m.gender())) v.Add(prefix + "gender", "unknown gender");
    if (m.president()) ++presidents;
  }
  if (presidents > 1) {
    v.Add("session.members", absl::StrCat("at most one president (", presidents, " given)"));
  }
}

ref::JuryCompositionRule WithLegalMinimum(ref::JuryCompositionRule rule) {
  rule.set_min_members(std::max(rule.min_members(), 2));
  rule.set_min_qualified_members(std::max(rule.min_qualified_members(), 1));
  rule.set_president_required(true);
  rule.set_gender_balance_required(true);
  return rule;
}

std::vector<PreconditionViolation> CompositionViolations(const pb::JurySession& session,
                                                         const ref::JuryCompositionRule& rule,
                                                         const std::string& subject) {
  std::vector<PreconditionViolation> out;
  const int members = session.members_size();
  int qualified = 0;
  int presidents = 0;
  int women = 0;
  int men = 0;
  std::vector<std::string> unspecified_gender;
  std::set<int> colleges;
  for (const pb::JuryMember& m : session.members()) {
    if (m.qualified()) ++qualified;
    if (m.president()) ++presidents;
    colleges.insert(static_cast<int>(m.college()));
    if (m.gender() == pb::GENDER_FEMALE) {
      ++women;
    } else if (m.gender() == pb::GENDER_MALE) {
      ++men;
    } else {
      unspecified_gender.push_back(m.member_id());
    }
  }

  if (members < rule.min_members()) {
    out.push_back({"MIN_MEMBERS", subject,
                   absl::StrCat("the jury has ", members, " member(s), at least ", rule.min_members(),
                                " required")});
  }
  if (qualified < rule.min_qualified_members()) {
    out.push_back({"MIN_QUALIFIED_MEMBERS", subject,
                   absl::StrCat("the jury has ", qualified, " member(s) qualified for the certification, at least ",
                                rule.min_qualified_members(), " required")});
  }
  std::set<int> required_seen;
  for (int college : rule.required_colleges()) {
    if (college == ref::COLLEGE_UNSPECIFIED || !required_seen.insert(college).second) continue;
    // ref::College and pb::College share their numbers.
    if (colleges.count(college) == 0) {
      out.push_back({"COLLEGE_MISSING", subject,
                     absl::StrCat("no member of the ", CollegeShortName(static_cast<ref::College>(college)),
                                  " college")});
    }
  }
  if (rule.president_required() && presidents == 0) {
    out.push_back({"PRESIDENT_MISSING", subject, "the jury has no president"});
  }
  if (rule.gender_balance_required()) {
    if (!unspecified_gender.empty()) {
      out.push_back({"GENDER_BALANCE", subject,
                     absl::StrCat("gender balance cannot be checked: gender unspecified for ",
                                  absl::StrJoin(unspecified_gender, ", "))});
    } else if (std::abs(women - men) > 1) {
      out.push_back({"GENDER_BALANCE", subject,
                     absl::StrCat("the jury is not gender-balanced: ", women, " woman/women, ", men, " man/men")});
    }
  }
  for (const pb::JuryMember& m : session.members()) {
    if (m.conflict_of_interest()) {
      out.push_back({"CONFLICT_OF_INTEREST", absl::StrCat(subject, "/members/", m.member_id()),
                     absl::StrCat("member ", m.member_id(),
                                  " declared a link with a candidate or its accompaniment: ",
                                  "the certifier replaces it")});
    }
    if (!m.prepared()) {
      out.push_back({"MEMBER_NOT_PREPARED", absl::StrCat(subject, "/members/", m.member_id()),
                     absl::StrCat("member ", m.member_id(),
                                  " has not confirmed reading the référentiel, the grids and the scale and "
                                  "having no link with the candidates")});
    }
  }
  return out;
}

// --- Scores -------------------------------------------------------------------------------------

void CheckScoreSheet(const pb::ScoreSheet& sheet, const ref::Version& version,
                     const std::vector<std::string>& blocs_to_evaluate, Violations& v) {
  std::map<std::string, std::string> competence_bloc;  // compétence code -> bloc code
  std::set<std::string> version_blocs;
  int interview_levels = -1;  // -1: no INTERVIEW scale
  for (const ref::Bloc& b : version.blocs()) {
    version_blocs.insert(b.code());
    for (const ref::Competence& c : b.competences()) competence_bloc.emplace(c.code(), b.code());
  }
  for (const ref::AppreciationScale& s : version.scales()) {
    if (s.kind() == ref::SCALE_KIND_INTERVIEW) {
      interview_levels = s.levels_size();
      break;
    }
  }

  std::set<std::string> seen_competences;
  for (int i = 0; i < sheet.competence_scores_size(); ++i) {
    const pb::CompetenceScore& s = sheet.competence_scores(i);
    std::string prefix = absl::StrCat("sheet.competence_scores[", i, "].");
    auto it = competence_bloc.find(s.competence_code());
    if (it == competence_bloc.end()) {
      v.Add(prefix + "competence_code",
            absl::StrCat("unknown compétence \"", s.competence_code(), "\" in ", version.name()));
    } else if (!Contains(blocs_to_evaluate, it->second)) {
      v.Add(prefix + "competence_code",
            absl::StrCat("scoring a bloc outside the target: ", s.competence_code(), " belongs to ", it->second,
                         ", which is not evaluated"));
    } else if (!seen_competences.insert(s.competence_code()).second) {
      v.Add(prefix + "competence_code", absl::StrCat("compétence ", s.competence_code(), " is repeated"));
    }
    if (s.mark() != pb::DOSSIER_MARK_CLEAR && s.mark() != pb::DOSSIER_MARK_PARTIAL) {
      v.Add(prefix + "mark", "must be CLEAR or PARTIAL");
    }
    if (s.percent() < 0 || s.percent() > 100) v.Add(prefix + "percent", "must be between 0 and 100");
  }

  std::set<std::string> seen_blocs;
  for (int i = 0; i < sheet.bloc_scores_size(); ++i) {
    const pb::BlocScore& s = sheet.bloc_scores(i);
    std::string prefix = absl::StrCat("sheet.bloc_scores[", i, "].");
    if (version_blocs.count(s.bloc_code()) == 0) {
      v.Add(prefix + "bloc_code", absl::StrCat("unknown bloc \"", s.bloc_code(), "\" in ", version.name()));
    } else if (!Contains(blocs_to_evaluate, s.bloc_code())) {
      v.Add(prefix + "bloc_code",
            absl::StrCat("scoring a bloc outside the target: ", s.bloc_code(), " is not evaluated"));
    } else if (!seen_blocs.insert(s.bloc_code()).second) {
      v.Add(prefix + "bloc_code", absl::StrCat("bloc ", s.bloc_code(), " is repeated"));
    }
    if (s.percent() < 0 || s.percent() > 100) v.Add(prefix + "percent", "must be between 0 and 100");
    if (interview_levels < 0) {
      if (s.interview_level() != 0) {
        v.Add(prefix + "interview_level", absl::StrCat(version.name(), " has no INTERVIEW scale: must be 0"));
      }
    } else if (s.interview_level() < 1 || s.interview_level() > interview_levels) {
      v.Add(prefix + "interview_level",
            absl::StrCat("must be a level of the INTERVIEW scale, 1..", interview_levels));
    }
  }
}

std::vector<std::string> MissingScores(const pb::ScoreSheet& sheet, const ref::Version& version,
                                       const std::vector<std::string>& blocs_to_evaluate) {
  std::set<std::string> competences;
  std::set<std::string> blocs;
  for (const pb::CompetenceScore& s : sheet.competence_scores()) competences.insert(s.competence_code());
  for (const pb::BlocScore& s : sheet.bloc_scores()) blocs.insert(s.bloc_code());
  std::vector<std::string> missing;
  for (const std::string& code : blocs_to_evaluate) {
    for (const ref::Bloc& b : version.blocs()) {
      if (b.code() != code) continue;
      for (const ref::Competence& c : b.competences()) {
        if (competences.count(c.code()) == 0) missing.push_back(c.code());
      }
    }
    if (blocs.count(code) == 0) missing.push_back(code);
  }
  return missing;
}

std::vector<pb::BlocSpread> Spreads(const std::vector<pb::ScoreSheet>& sheets,
                                    const std::vector<std::string>& blocs_to_evaluate, int gap) {
  std::vector<pb::BlocSpread> out;
  for (const std::string& code : blocs_to_evaluate) {
    pb::BlocSpread spread;
    spread.set_bloc_code(code);
    std::vector<int> values;
    for (const pb::ScoreSheet& sheet : sheets) {
      for (const pb::BlocScore& s : sheet.bloc_scores()) {
        if (s.bloc_code() == code) {
          values.push_back(s.percent());
          break;
        }
      }
    }
    if (!values.empty()) {
      int min = *std::min_element(values.begin(), values.end());
      int max = *std::max_element(values.begin(), values.end());
      double sum = 0;
      for (int x : values) sum += x;
      spread.set_min_percent(min);
      spread.set_max_percent(max);
      spread.set_mean_percent(sum / static_cast<double>(values.size()));
      spread.set_divergent(max - min > gap);
    }
    out.push_back(std::move(spread));
  }
  return out;
}

// --- Decision -----------------------------------------------------------------------------------

absl::Status ApplyDecision(const pb::RecordDecisionRequest& request, const DecisionContext& context,
                           pb::Deliberation& deliberation) {
  const std::vector<std::string>& blocs = context.blocs_to_evaluate;
  Violations v;
  std::map<std::string, const pb::BlocAppreciation*> by_bloc;
  for (int i = 0; i < request.appreciations_size(); ++i) {
    const pb::BlocAppreciation& a = request.appreciations(i);
    std::string prefix = absl::StrCat("appreciations[", i, "].");
    if (!Contains(blocs, a.bloc_code())) {
      v.Add(prefix + "bloc_code", absl::StrCat("\"", a.bloc_code(), "\" is not a bloc to evaluate"));
    } else if (!by_bloc.emplace(a.bloc_code(), &a).second) {
      v.Add(prefix + "bloc_code", absl::StrCat("bloc ", a.bloc_code(), " is repeated"));
    }
    if (a.common_percent() < 0 || a.common_percent() > 100) {
      v.Add(prefix + "common_percent", "must be between 0 and 100");
    }
  }
  const pb::ProposalKind proposal = request.proposal();
  if (proposal == pb::PROPOSAL_KIND_UNSPECIFIED || !pb::ProposalKind_IsValid(proposal)) {
    v.Add("proposal", "must be TOTAL, PARTIAL, REFUSAL, CANDIDATE_ABSENT or CANDIDATE_EXCUSED");
  }
  // The jury did not hear a candidate who was not there: nothing of it to appreciate (the
  // statistics would count such blocs as evaluated).
  if ((context.attendance == pb::ATTENDANCE_ABSENT || context.attendance == pb::ATTENDANCE_EXCUSED) &&
      request.appreciations_size() > 0) {
    v.Add("appreciations", absl::StrCat("the candidate was ",
                                        context.attendance == pb::ATTENDANCE_ABSENT ? "absent" : "excused",
                                        ": no bloc is appreciated"));
  }
  if (!v.empty()) return v.ToStatus();

  auto is_acquired = [&](const pb::BlocAppreciation& a) {
    return a.common_percent() >= context.threshold_percent ||
           !absl::StripAsciiWhitespace(a.justification()).empty();
  };

  const std::string& subject = request.name();
  std::vector<PreconditionViolation> failures;
  const bool absent = context.attendance == pb::ATTENDANCE_ABSENT;
  const bool excused = context.attendance == pb::ATTENDANCE_EXCUSED;
  const std::string proposal_name = ProposalShortName(proposal);

  if (absent || excused) {
    pb::ProposalKind expected = absent ? pb::PROPOSAL_KIND_CANDIDATE_ABSENT : pb::PROPOSAL_KIND_CANDIDATE_EXCUSED;
    if (proposal != expected) {
      failures.push_back({"PROPOSAL_DISAGREES_WITH_BLOCS", subject,
                          absl::StrCat("the candidate was ", absent ? "absent" : "excused", ": the proposal must be ",
                                       ProposalShortName(expected), ", not ", proposal_name)});
    }
  } else {
    bool missing = false;
    for (const std::string& code : blocs) {
      if (by_bloc.count(code) == 0) {
        missing = true;
        failures.push_back({"APPRECIATION_MISSING", code,
                            absl::StrCat("bloc ", code, " has no common appreciation")});
      }
    }
    if (NotHeard(proposal)) {
      failures.push_back({"PROPOSAL_DISAGREES_WITH_BLOCS", subject,
                          absl::StrCat("the candidate was present: the proposal cannot be ", proposal_name)});
    } else if (!missing) {
      size_t acquired = 0;
      for (const auto& [code, a] : by_bloc) acquired += is_acquired(*a) ? 1 : 0;
      const size_t n = blocs.size();
      bool agrees = true;
      std::string why;
      const bool whole = acquired == n && context.blocs_not_targeted == 0;
      if (proposal == pb::PROPOSAL_KIND_TOTAL) {
        agrees = whole;
        why = context.blocs_not_targeted > 0
                  ? absl::StrCat("TOTAL is the whole certification: ", context.blocs_not_targeted,
                                 " of its blocs are not targeted by this candidacy")
                  : "TOTAL requires every bloc acquired";
      } else if (proposal == pb::PROPOSAL_KIND_PARTIAL) {
        agrees = acquired > 0 && !whole;
        why = "PARTIAL requires some blocs acquired but not the whole certification";
      } else if (proposal == pb::PROPOSAL_KIND_REFUSAL) {
        // Where partial validation is not allowed, whatever is short of the whole certification
        // is a refusal: the jury has no other decision to take.
        agrees = acquired == 0 || (!context.partial_allowed && !whole);
        why = context.partial_allowed ? "REFUSAL requires no bloc acquired"
                                      : "REFUSAL requires the whole certification not acquired";
      }
      if (!agrees) {
        failures.push_back({"PROPOSAL_DISAGREES_WITH_BLOCS", subject,
                            absl::StrCat(why, "; ", acquired, " of ", n, " bloc(s) acquired")});
      }
    }
  }
  if (proposal == pb::PROPOSAL_KIND_PARTIAL && !context.partial_allowed) {
    failures.push_back({"PARTIAL_NOT_ALLOWED", subject, "the référentiel does not allow partial validation"});
  }
  if (!failures.empty()) return FailedPrecondition(std::move(failures));

  deliberation.clear_appreciations();
  deliberation.clear_proposed_blocs();
  for (const std::string& code : blocs) {
    auto it = by_bloc.find(code);
    if (it == by_bloc.end()) continue;
    pb::BlocAppreciation* a = deliberation.add_appreciations();
    *a = *it->second;
    // Acquired = granted by this decision: only a TOTAL or PARTIAL grants blocs (an absent or
    // excused candidate's appreciations, or a refusal's, grant none whatever their percentages).
    a->set_acquired(GrantsBlocs(proposal) && is_acquired(*it->second));
    if (a->acquired()) deliberation.add_proposed_blocs(code);
  }
  deliberation.set_proposal(proposal);
  deliberation.set_comment(request.comment());
  return absl::OkStatus();
}

// --- Equal treatment ----------------------------------------------------------------------------

pb::SessionReport BuildSessionReport(const pb::JurySession& session) {
  constexpr int kDefaultDurationTolerance = 120;
  constexpr int kDefaultQuestionTolerance = 2;
  constexpr int kPresentationLimit = 600;
  constexpr int kExchangeLimit = 600;

  pb::SessionReport report;
  report.set_session(session.name());

  std::vector<const pb::SessionSlot*> present;
  for (const pb::SessionSlot& slot : session.slots()) {
    if (slot.attendance() == pb::ATTENDANCE_PRESENT) present.push_back(&slot);
  }
  report.set_candidates_present(static_cast<int32_t>(present.size()));
  if (present.empty()) return report;

  const int duration_tol =
      session.duration_tolerance_seconds() > 0 ? session.duration_tolerance_seconds() : kDefaultDurationTolerance;
  const int question_tol =
      session.question_count_tolerance() > 0 ? session.question_count_tolerance() : kDefaultQuestionTolerance;

  struct Measure {
    const char* name;
    int32_t (pb::SessionSlot::*get)() const;
    int tolerance;
    double median = 0;
  };
  Measure measures[] = {
      {"presentation_seconds", &pb::SessionSlot::presentation_seconds, duration_tol},
      {"exchange_seconds", &pb::SessionSlot::exchange_seconds, duration_tol},
      {"question_count", &pb::SessionSlot::question_count, question_tol},
  };
  for (Measure& m : measures) {
    std::vector<int> values;
    for (const pb::SessionSlot* slot : present) values.push_back((slot->*m.get)());
    m.median = Median(std::move(values));
  }

  auto add = [](google::protobuf::RepeatedPtrField<pb::SessionReport::Finding>* list, const pb::SessionSlot& slot,
                const Measure& m) {
    pb::SessionReport::Finding* f = list->Add();
    f->set_candidacy(slot.candidacy());
    f->set_measure(m.name);
    f->set_value((slot.*m.get)());
    f->set_median(m.median);
  };
  for (const pb::SessionSlot* slot : present) {
    for (const Measure& m : measures) {
      double value = (slot->*m.get)();
      if (std::fabs(value - m.median) > m.tolerance) add(report.mutable_findings(), *slot, m);
    }
  }
  for (const pb::SessionSlot* slot : present) {
    if (slot->presentation_seconds() > kPresentationLimit) add(report.mutable_over_time(), *slot, measures[0]);
    if (slot->exchange_seconds() > kExchangeLimit) add(report.mutable_over_time(), *slot, measures[1]);
  }
  return report;
}

}  // namespace parcours::evaluation
