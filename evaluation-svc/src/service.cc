#include "evaluation-svc/src/service.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "platform/errors.h"
#include "platform/grpc_reply.h"
#include "platform/idempotency.h"
#include "platform/proto_time.h"
#include "evaluation-svc/src/rules.h"
#include "evaluation-svc/src/synthesis_grid.h"

namespace parcours::evaluation {
namespace {

using Kind = Principal::Kind;

constexpr char kCandidacyPattern[] = "candidacies/{candidacy}";
constexpr char kSessionPattern[] = "sessions/{session}";
constexpr char kSheetPattern[] = "candidacies/{candidacy}/scoreSheets/{member}";
constexpr char kDeliberationPattern[] = "candidacies/{candidacy}/deliberations/{deliberation}";
constexpr char kCandidatePattern[] = "candidates/{candidate}";
constexpr char kVersionPattern[] = "certifications/{c}/versions/{v}";  // referential-svc's

std::string NewId() {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen = new absl::BitGen();
  absl::MutexLock lock(&mu);
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(*gen));
}

absl::StatusOr<std::string> IdOf(const char* pattern, const std::string& name, const std::string& field) {
  auto parts = aip::ParseName(pattern, name, field);
  if (!parts.ok()) return parts.status();
  return parts->front();
}

absl::Status CertifierOnly(const Principal& p, const std::string& what) {
  if (p.Is(Kind::kCertifier)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("only a certifier may ", what));
}

absl::Status CheckEtag(const std::string& etag, int64_t version, const std::string& name,
                       const std::string& field = "etag") {
  auto expected = aip::ParseEtag(etag, field);
  if (!expected.ok()) return expected.status();
  if (expected->has_value() && **expected != version) return EtagMismatch(name);
  return absl::OkStatus();
}

const pb::JuryMember* FindMember(const pb::JurySession& session, const std::string& member_id) {
  for (const pb::JuryMember& m : session.members()) {
    if (m.member_id() == member_id) return &m;
  }
  return nullptr;
}

// A round number in its one spelling: "01" or "+1" would find round 1 but name it otherwise in
// the ledger and the audit, which key on the name.
bool ParseRound(absl::string_view segment, int* round) {
  return absl::SimpleAtoi(segment, round) && *round > 0 && absl::StrCat(*round) == segment;
}

// Whether the member declared a link with a candidate of the session (ConfirmPreparation).
bool DeclaredConflict(const pb::JurySession& session, const std::string& member_id) {
  const auto& ids = session.conflict_of_interest_member_ids();
  return std::find(ids.begin(), ids.end(), member_id) != ids.end();
}

bool SitsOn(const Principal& p, const pb::JurySession& session) {
  return p.Is(Kind::kJuryMember) && FindMember(session, p.id) != nullptr;
}

bool IsPresident(const Principal& p, const pb::JurySession& session) {
  if (!p.Is(Kind::kJuryMember)) return false;
  const pb::JuryMember* m = FindMember(session, p.id);
  return m != nullptr && m->president();
}

pb::SessionSlot* FindSlot(pb::JurySession& session, const std::string& candidacy_name) {
  for (pb::SessionSlot& slot : *session.mutable_slots()) {
    if (slot.candidacy() == candidacy_name) return &slot;
  }
  return nullptr;
}

// The candidacy's attendance at the session: UNSPECIFIED without a slot or before its passage.
pb::Attendance AttendanceAt(const pb::JurySession& session, const std::string& candidacy_name) {
  for (const pb::SessionSlot& slot : session.slots()) {
    if (slot.candidacy() == candidacy_name) return slot.attendance();
  }
  return pb::ATTENDANCE_UNSPECIFIED;
}

// The id of a stored candidacy's name ("candidacies/{id}": names read back are well formed).
std::string CandidacyIdOf(const std::string& name) { return name.substr(std::string("candidacies/").size()); }

// The id of a stored session's name ("sessions/{id}").
std::string SessionIdOf(const std::string& name) { return name.substr(std::string("sessions/").size()); }

// The session whose jury deliberated a round: rounds opened before Deliberation.session existed
// were the candidacy's session's.
std::string SessionOfRound(const pb::Deliberation& d, const pb::Candidacy& c) {
  return d.session().empty() ? c.session() : d.session();
}

// The candidacy leaves `session_name` (called before another jury, or revoked for a new one): its
// slot there stays for the session's record, marked moved, and that jury no longer sees it
// (GetJurySession). Once per slot.
absl::Status MarkSlotMoved(EvaluationTx& tx, const std::string& session_name, const std::string& candidacy_name,
                           absl::Time now) {
  auto session = tx.GetSession(SessionIdOf(session_name));
  if (!session.ok()) return session.status();
  pb::SessionSlot* slot = FindSlot(session->value, candidacy_name);
  if (slot == nullptr || slot->moved()) return absl::OkStatus();
  slot->set_moved(true);
  return tx.PutSession(session->value, session->version, now);
}

// The candidacy's latest round (0 when none) and whether it belongs to its current passage (the
// session it is on now): a round of an earlier jury (an absence, an excuse, a revocation for a
// new jury) does not close the new jury's scoring.
struct LatestRound {
  int round = 0;
  pb::Deliberation deliberation;
  bool this_passage = false;
};
absl::StatusOr<LatestRound> LatestRoundOf(EvaluationTx& tx, const pb::Candidacy& c) {
  const std::string id = CandidacyIdOf(c.name());
  LatestRound out;
  auto round = tx.LatestDeliberationRound(id);
  if (!round.ok()) return round.status();
  out.round = *round;
  if (out.round == 0) return out;
  auto d = tx.GetDeliberation(id, out.round);
  if (!d.ok()) return d.status();
  out.deliberation = std::move(d->value);
  out.this_passage = !c.session().empty() && SessionOfRound(out.deliberation, c) == c.session();
  return out;
}

// The ledger of a candidate as `certifier` knows it: the blocs its own juries granted. A
// candidate id is the certifier's own choice, so another certifier's candidate of the same id
// is another person: its blocs are neither shown nor counted. `lock`: read with LockLedger.
absl::StatusOr<std::vector<LedgerEntry>> LedgerOf(EvaluationTx& tx, const std::string& candidate_id,
                                                  const std::string& certifier, bool lock = false) {
  auto entries = lock ? tx.LockLedger(candidate_id) : tx.ListLedger(candidate_id);
  if (!entries.ok()) return entries.status();
  std::map<std::string, bool> own;  // source candidacy id -> granted by `certifier`
  std::vector<LedgerEntry> out;
  for (LedgerEntry& e : *entries) {
    auto parts = aip::ParseName("candidacies/{c}/deliberations/{d}", e.source_deliberation, "source_deliberation");
    if (!parts.ok()) continue;
    auto it = own.find(parts->front());
    if (it == own.end()) {
      auto source = tx.GetCandidacy(parts->front());
      if (!source.ok() && !absl::IsNotFound(source.status())) return source.status();
      it = own.emplace(parts->front(), source.ok() && source->value.certifier() == certifier).first;
    }
    if (it->second) out.push_back(std::move(e));
  }
  return out;
}

constexpr char kNoLongerHeld[] = "no longer held on the jury's day, evaluated: ";

// A result whose blocs an issued certificate counted stays: revoking it is refused while a
// certificate has a bloc that no other of the results it recorded (ledger_uses) still holds, i.e.
// that none of them is left unrevoked. Each certificate's candidacy is locked before its uses are
// read: two revocations of the two results behind one bloc would otherwise each see the other's
// use and both commit (READ COMMITTED); the second now waits, then finds the first's gone.
absl::Status CheckNotCountedByACertificate(EvaluationTx& tx, const std::string& result) {
  auto uses = tx.ListLedgerUsesOfResult(result);
  if (!uses.ok()) return uses.status();
  std::vector<std::string> counted;  // "candidacies/{id} (bloc)"
  std::string candidacy;
  std::vector<LedgerUse> of_candidacy;
  for (const LedgerUse& use : *uses) {
    if (use.candidacy_id != candidacy) {  // uses come in candidacy order: one lock order
      candidacy = use.candidacy_id;
      if (absl::Status s = tx.LockCandidacy(candidacy).status(); !s.ok()) return s;
      auto all = tx.ListLedgerUsesByCandidacy(candidacy);
      if (!all.ok()) return all.status();
      of_candidacy = *std::move(all);
    }
    const bool held_otherwise = std::any_of(of_candidacy.begin(), of_candidacy.end(), [&](const LedgerUse& other) {
      return other.bloc_code == use.bloc_code && other.source_deliberation != result;
    });
    if (!held_otherwise) counted.push_back(absl::StrCat("candidacies/", use.candidacy_id, " (", use.bloc_code, ")"));
  }
  if (counted.empty()) return absl::OkStatus();
  return FailedPrecondition("RESULT_COUNTED_BY_CERTIFICATE", result,
                            absl::StrCat("an issued certificate counts blocs only this result holds: ",
                                         absl::StrJoin(counted, ", ")));
}

std::string CertificationCodeOf(const std::string& version_name) {
  auto parts = aip::ParseName(kVersionPattern, version_name, "referential_version");
  return parts.ok() ? parts->front() : "";
}

// The candidacy's held blocs no longer held on `day` go back to the jury (rules.h
// ReturnLapsedBlocsToTheJury), read from the ledger as its certifier knows it. Returns them.
absl::StatusOr<std::vector<std::string>> ReturnLapsedBlocs(EvaluationTx& tx, pb::Candidacy& c,
                                                           const ref::Version& version, int day) {
  if (c.held_blocs_size() == 0) return std::vector<std::string>();
  auto ledger = LedgerOf(tx, c.candidate_id(), c.certifier());
  if (!ledger.ok()) return ledger.status();
  return ReturnLapsedBlocsToTheJury(c, CertificationCodeOf(c.referential_version()), version, *ledger, day);
}

std::string ProposalText(const pb::Deliberation& d) {
  switch (d.proposal()) {
    case pb::PROPOSAL_KIND_TOTAL:
      return "Attribution totale de la certification";
    case pb::PROPOSAL_KIND_PARTIAL:
      return absl::StrCat("Attribution partielle : ", absl::StrJoin(d.proposed_blocs(), ", "));
    case pb::PROPOSAL_KIND_REFUSAL:
      return "Refus d'attribution";
    case pb::PROPOSAL_KIND_CANDIDATE_ABSENT:
      return "Candidat absent";
    case pb::PROPOSAL_KIND_CANDIDATE_EXCUSED:
      return "Candidat excusé";
    default:
      return "";
  }
}

std::string CollegeText(pb::College c) {
  switch (c) {
    case pb::COLLEGE_EMPLOYER:
      return "Collège employeurs";
    case pb::COLLEGE_EMPLOYEE:
      return "Collège salariés";
    case pb::COLLEGE_QUALIFIED_PERSON:
      return "Personne qualifiée";
    default:
      return "";
  }
}

void CheckSessionFields(const pb::JurySession& s, Violations& v) {
  const google::type::Date& d = s.date();
  if (!IsCalendarDate(d) || d.year() < 2000) {
    v.Add("session.date", "must be a calendar date (year 2000 or later)");
  }
  if (s.place().size() > 500) v.Add("session.place", "must be at most 500 characters");
  if (s.duration_tolerance_seconds() < 0) v.Add("session.duration_tolerance_seconds", "must not be negative");
  if (s.question_count_tolerance() < 0) v.Add("session.question_count_tolerance", "must not be negative");
  CheckMembers(s, v);
}

google::type::Date DateFromKey(int key) {
  google::type::Date d;
  d.set_year(key / 10000);
  d.set_month(key / 100 % 100);
  d.set_day(key % 100);
  return d;
}

// The "national" principal reads a candidacy and its deliberations only in this view: no
// candidate identity, no free text (reasons, comments, justifications), no member ids. The
// gateway uses it to show an operator the VAE progress linked in one of its own CEP cases, after
// cep-svc has confirmed the case is the operator's (GetBeneficiaryJourney); France compétences
// has no gateway method that reaches it.
void StatisticsView(pb::Candidacy& c) {
  c.clear_candidate_id();
  c.clear_candidate_display_name();
  for (pb::StateChange& change : *c.mutable_history()) {
    change.clear_actor();
    change.clear_reason();
  }
}

void StatisticsView(pb::Deliberation& d) {
  d.clear_comment();
  d.clear_revocation_reason();
  for (pb::BlocAppreciation& a : *d.mutable_appreciations()) {
    a.clear_comment();
    a.clear_justification();
  }
  for (pb::Signature& sig : *d.mutable_signatures()) sig.clear_member_id();
}

}  // namespace

struct Evaluation::Access {
  // The candidacy if the caller may see it: its certifier, or a member of its session.
  static absl::Status Candidacy(const Principal& p, const pb::Candidacy& c, EvaluationTx& tx) {
    if (p.Is(Kind::kCertifier) && p.id == c.certifier()) return absl::OkStatus();
    if (p.Is(Kind::kJuryMember) && !c.session().empty()) {
      auto session = tx.GetSession(SessionIdOf(c.session()));
      if (session.ok() && SitsOn(p, session->value)) return absl::OkStatus();
    }
    return NotFound(c.name());  // other tenants learn nothing, not even existence
  }
  // The stored candidacy `id` if the caller may read it; "national" reads any (the caller then
  // applies StatisticsView).
  static absl::StatusOr<pb::Candidacy> Readable(const Principal& p, const std::string& id, EvaluationTx& tx) {
    auto c = tx.GetCandidacy(id);
    if (!c.ok()) return c.status();
    if (!p.Is(Kind::kNational)) {
      if (absl::Status s = Candidacy(p, c->value, tx); !s.ok()) return s;
    }
    return std::move(c->value);
  }
  // A jury member reads only the rounds its own jury deliberated, not an earlier jury's (a
  // candidacy called again, a result revoked for a new jury): the new jury judges afresh.
  static bool RoundVisible(const Principal& p, const pb::Deliberation& d, const pb::Candidacy& c) {
    return !p.Is(Kind::kJuryMember) || SessionOfRound(d, c) == c.session();
  }
  static absl::Status Session(const Principal& p, const pb::JurySession& s) {
    if (p.Is(Kind::kCertifier) && p.id == s.certifier()) return absl::OkStatus();
    if (SitsOn(p, s)) return absl::OkStatus();
    return NotFound(s.name());
  }
};

Evaluation::Evaluation(EvaluationRepository& repository, ReferentialClient& referential, const Clock& clock,
                       aip::PageTokenCodec page_tokens, EvaluationOptions options)
    : repository_(repository),
      referential_(referential),
      clock_(clock),
      page_tokens_(std::move(page_tokens)),
      options_(options) {}

// --- Candidacies --------------------------------------------------------------------------------

absl::StatusOr<pb::Candidacy> Evaluation::CreateCandidacy(const P& p, const pb::CreateCandidacyRequest& r) {
  if (absl::Status s = CertifierOnly(p, "create a candidacy"); !s.ok()) return s;
  const pb::Candidacy& in = r.candidacy();
  Violations v;
  if (in.candidate_id().empty() || in.candidate_id().size() > 128 ||
      in.candidate_id().find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") !=
          std::string::npos) {
    v.Add("candidacy.candidate_id", "must be 1..128 characters among letters, digits, '-', '_' and '.'");
  }
  if (in.candidate_display_name().empty()) {
    v.Add("candidacy.candidate_display_name", "must not be empty");
  } else if (in.candidate_display_name().size() > 300) {
    v.Add("candidacy.candidate_display_name", "must be at most 300 bytes");
  }
  if (!aip::ParseName(kVersionPattern, in.referential_version(), "candidacy.referential_version").ok()) {
    v.Add("candidacy.referential_version", "must be certifications/{code}/versions/{n}");
  }
  if (!in.cep_case().empty() && !aip::ParseName("cases/{case}", in.cep_case(), "candidacy.cep_case").ok()) {
    v.Add("candidacy.cep_case", "must be cases/{case} (the referring CEP case) or empty");
  }
  if (absl::Status s = aip::CheckRequestId(r.request_id()); !s.ok()) return s;
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;

  // Read the référentiel before anything is written: if referential-svc is down, nothing is.
  auto certification = referential_.GetCertification(
      absl::StrCat("certifications/", CertificationCodeOf(in.referential_version())));
  if (!certification.ok()) return certification.status();
  auto version = referential_.GetVersion(in.referential_version());
  if (!version.ok()) return version.status();
  // Whose certification, still open, on which version: checked after the replay lookup below, so
  // the retry of a candidacy created before the fiche changed still gets that candidacy.
  absl::Status may_open = CheckCertifierOf(*certification, p.id);
  if (may_open.ok() && !certification->active()) {
    may_open = FailedPrecondition("CERTIFICATION_INACTIVE", certification->name(),
                                  absl::StrCat(certification->code(), " is no longer active: it takes no new candidacy"));
  }
  if (may_open.ok() && (*version)->state() != ref::VERSION_STATE_PUBLISHED) {
    may_open = FailedPrecondition("VERSION_NOT_PUBLISHED", in.referential_version(),
                                  absl::StrCat(in.referential_version(), " is ",
                                               ref::VersionState_Name((*version)->state()),
                                               ": a candidacy pins a PUBLISHED version"));
  }
  std::vector<std::string> requested(in.target_blocs().begin(), in.target_blocs().end());
  auto targets = ResolveTarget(requested, **version);
  if (may_open.ok() && !targets.ok()) may_open = targets.status();

  const absl::Time now = clock_.Now();
  std::string name;
  const auto create = [&](EvaluationTx& tx) -> absl::Status {
    // Request ids are the certifier's own (CallerScopedMethod): another's answers nothing.
    auto hit = tx.LookupRequest(CallerScopedMethod("CreateCandidacy", p), r.request_id(), r);
    if (!hit.ok()) return hit.status();
    if (hit->has_value()) {
      name = **hit;
      return absl::OkStatus();
    }
    if (!may_open.ok()) return may_open;
    auto ledger = LedgerOf(tx, in.candidate_id(), p.id);
    if (!ledger.ok()) return ledger.status();
    const std::string code = CertificationCodeOf(in.referential_version());
    std::vector<HeldBloc> held = HeldBlocs(*targets, code, **version, *ledger, ToYyyymmdd(now));
    pb::Candidacy c;
    name = absl::StrCat("candidacies/", NewId());
    c.set_name(name);
    c.set_candidate_id(in.candidate_id());
    c.set_candidate_display_name(in.candidate_display_name());
    c.set_referential_version(in.referential_version());
    c.set_cep_case(in.cep_case());
    c.set_certification_title(certification->title());
    const std::string kind = ref::CertificationKind_Name(certification->kind());
    c.set_certification_kind(kind.substr(kind.rfind('_') + 1));
    for (const std::string& t : *targets) {
      c.add_target_blocs(t);
      bool is_held = std::any_of(held.begin(), held.end(), [&](const HeldBloc& h) { return h.bloc_code == t; });
      if (is_held) {
        c.add_held_blocs(t);
      } else {
        c.add_blocs_to_evaluate(t);
      }
    }
    c.set_certifier(p.id);
    // Step 1 (information) is where every candidacy starts: the first history entry.
    c.set_state(pb::CANDIDACY_STATE_INFORMATION);
    pb::StateChange* created = c.add_history();
    created->set_to(pb::CANDIDACY_STATE_INFORMATION);
    created->set_actor(p.ToString());
    *created->mutable_time() = ToTimestamp(now);
    created->set_reason("candidacy created");
    if (absl::Status s = tx.InsertCandidacy(c, now); !s.ok()) return s;
    if (absl::Status s = tx.Audit({now, p.ToString(), "CreateCandidacy", name, ""}); !s.ok()) return s;
    return tx.RecordRequest(CallerScopedMethod("CreateCandidacy", p), r.request_id(), r, name, now);
  };
  absl::Status st = CreateOnceRacing(r.request_id(), [&] { return repository_.Transact(create); });
  if (!st.ok()) return st;
  pb::GetCandidacyRequest get;
  get.set_name(name);
  return GetCandidacy(p, get);
}

absl::StatusOr<pb::Candidacy> Evaluation::GetCandidacy(const P& p, const pb::GetCandidacyRequest& r) {
  auto id = IdOf(kCandidacyPattern, r.name(), "name");
  if (!id.ok()) return id.status();
  pb::Candidacy out;
  absl::Status st = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
    auto c = Access::Readable(p, *id, tx);
    if (!c.ok()) return c.status();
    out = *std::move(c);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  if (p.Is(Kind::kNational)) StatisticsView(out);
  return out;
}

absl::StatusOr<pb::CandidacyProgress> Evaluation::GetCandidacyProgress(const P& p,
                                                                       const pb::GetCandidacyProgressRequest& r) {
  auto id = IdOf(kCandidacyPattern, r.name(), "name");
  if (!id.ok()) return id.status();
  pb::CandidacyProgress out;
  absl::Status st = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
    auto c = Access::Readable(p, *id, tx);
    if (!c.ok()) return c.status();
    *out.mutable_candidacy() = *std::move(c);
    auto latest = tx.LatestDeliberationRound(*id);
    if (!latest.ok()) return latest.status();
    if (*latest == 0) return absl::OkStatus();
    auto d = tx.GetDeliberation(*id, *latest);
    if (!d.ok()) return d.status();
    if (!Access::RoundVisible(p, d->value, out.candidacy())) return absl::OkStatus();
    *out.mutable_current_deliberation() = d->value;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  if (p.Is(Kind::kNational)) {
    StatisticsView(*out.mutable_candidacy());
    if (out.has_current_deliberation()) StatisticsView(*out.mutable_current_deliberation());
  }
  return out;
}

absl::StatusOr<pb::ListCandidaciesResponse> Evaluation::ListCandidacies(const P& p,
                                                                         const pb::ListCandidaciesRequest& r) {
  if (absl::Status s = CertifierOnly(p, "list candidacies"); !s.ok()) return s;
  auto terms = aip::ParseFilter(r.filter(), {"certification=", "state=", "session="});
  if (!terms.ok()) return terms.status();
  CandidacyQuery q;
  q.certifier = p.id;
  for (const aip::FilterTerm& t : *terms) {
    if (t.field == "certification") q.certification_code = t.value;
    if (t.field == "session") q.session = t.value;
    if (t.field == "state") {
      pb::CandidacyState state;
      if (!pb::CandidacyState_Parse(absl::StrCat("CANDIDACY_STATE_", t.value), &state)) {
        return InvalidArgument("filter", absl::StrCat("unknown state ", t.value));
      }
      q.state = state;
    }
  }
  const std::string scope = absl::StrCat("ListCandidacies\n", p.ToString(), "\n", r.filter());
  auto page = aip::Paginate<pb::Candidacy>(
      page_tokens_, scope, r.page_size(), r.page_token(),
      [&](const std::string& cursor, int limit) {
        q.after_id = cursor;
        q.limit = limit;
        return repository_.ListCandidacies(q);
      },
      [](const pb::Candidacy& c) { return CandidacyIdOf(c.name()); });
  if (!page.ok()) return page.status();
  pb::ListCandidaciesResponse out;
  for (pb::Candidacy& c : page->items) *out.add_candidacies() = std::move(c);
  out.set_next_page_token(page->next_page_token);
  return out;
}

absl::StatusOr<pb::Candidacy> Evaluation::ChangeCandidacy(const P& p, const std::string& name,
                                                          const std::string& etag, const std::string& action,
                                                          const CandidacyChange& change) {
  if (absl::Status s = CertifierOnly(p, "change a candidacy"); !s.ok()) return s;
  auto id = IdOf(kCandidacyPattern, name, "name");
  if (!id.ok()) return id.status();
  if (auto e = aip::ParseEtag(etag, "etag"); !e.ok()) return e.status();
  const absl::Time now = clock_.Now();
  pb::Candidacy out;
  absl::Status st = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
    auto c = tx.GetCandidacy(*id);
    if (!c.ok()) return c.status();
    if (absl::Status s = Access::Candidacy(p, c->value, tx); !s.ok()) return s;
    if (absl::Status s = CheckEtag(etag, c->version, name); !s.ok()) return s;
    if (absl::Status s = change(c->value, tx); !s.ok()) return s;
    if (absl::Status s = tx.PutCandidacy(c->value, c->version, now); !s.ok()) return s;
    if (absl::Status s = tx.Audit({now, p.ToString(), action, name, StateShortName(c->value.state())}); !s.ok()) return s;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  pb::GetCandidacyRequest get;
  get.set_name(name);
  return GetCandidacy(p, get);
}

absl::StatusOr<pb::Candidacy> Evaluation::RequestAdmissibility(const P& p, const pb::RequestAdmissibilityRequest& r) {
  return ChangeCandidacy(p, r.name(), r.etag(), "RequestAdmissibility", [&](pb::Candidacy& c, EvaluationTx&) {
    return Transition(c, pb::CANDIDACY_STATE_ADMISSIBILITY_REQUESTED, p.ToString(), clock_.Now(), "");
  });
}

absl::StatusOr<pb::Candidacy> Evaluation::DecideAdmissibility(const P& p, const pb::DecideAdmissibilityRequest& r) {
  if (r.reason().empty()) return InvalidArgument("reason", "an admissibility decision gives its reason");
  return ChangeCandidacy(p, r.name(), r.etag(), "DecideAdmissibility", [&](pb::Candidacy& c, EvaluationTx&) {
    return Transition(c, r.admissible() ? pb::CANDIDACY_STATE_ADMISSIBLE : pb::CANDIDACY_STATE_NOT_ADMISSIBLE,
                      p.ToString(), clock_.Now(), r.reason());
  });
}

absl::StatusOr<pb::Candidacy> Evaluation::FileDossier(const P& p, const pb::FileDossierRequest& r) {
  return ChangeCandidacy(p, r.name(), r.etag(), "FileDossier", [&](pb::Candidacy& c, EvaluationTx&) -> absl::Status {
    // Step 3, from ADMISSIBLE only: a DELIBERATED candidacy comes back to DOSSIER_FILED only by a
    // revocation for a new jury (its sealed result would otherwise stand beside the next one).
    if (c.state() == pb::CANDIDACY_STATE_DELIBERATED) {
      return FailedPrecondition("INVALID_TRANSITION", c.name(),
                                absl::StrCat(c.name(), " is DELIBERATED: cannot become DOSSIER_FILED but by "
                                             "RevokeDeliberation with new_jury"));
    }
    return Transition(c, pb::CANDIDACY_STATE_DOSSIER_FILED, p.ToString(), clock_.Now(), "");
  });
}

absl::StatusOr<pb::Candidacy> Evaluation::WithdrawCandidacy(const P& p, const pb::WithdrawCandidacyRequest& r) {
  if (r.reason().empty()) return InvalidArgument("reason", "a withdrawal gives its reason");
  return ChangeCandidacy(p, r.name(), r.etag(), "WithdrawCandidacy",
                         [&](pb::Candidacy& c, EvaluationTx& tx) -> absl::Status {
    // A sealed result put its proposed blocs in the ledger (SignDeliberation), and only a
    // revocation takes them out, which a WITHDRAWN candidacy no longer takes: it is revoked first.
    // Keyed on the blocs, not the proposal kind: a TOTAL on a fiche without blocs (RS), an
    // absence, an excuse or a refusal put nothing there: withdrawn as any other state.
    if (c.state() == pb::CANDIDACY_STATE_DELIBERATED) {
      auto latest = LatestRoundOf(tx, c);
      if (!latest.ok()) return latest.status();
      const pb::ProposalKind sealed = latest->deliberation.proposal();
      if (latest->deliberation.proposed_blocs_size() > 0) {
        return FailedPrecondition("RESULT_DECIDED", latest->deliberation.name(),
                                  absl::StrCat("the sealed result is ", ProposalShortName(sealed),
                                               ": its blocs are in the ledger; revoke it before withdrawing"));
      }
    }
    return Transition(c, pb::CANDIDACY_STATE_WITHDRAWN, p.ToString(), clock_.Now(), r.reason());
  });
}

absl::StatusOr<pb::Candidacy> Evaluation::IssueCertificate(const P& p, const pb::IssueCertificateRequest& r) {
  if (absl::Status s = CertifierOnly(p, "issue a certificate"); !s.ok()) return s;
  if (auto e = aip::ParseEtag(r.etag(), "etag"); !e.ok()) return e.status();
  // The référentiel is read before the transaction, as CreateCandidacy does: referential-svc slow
  // or down holds no database lock, and leaves the candidacy as it was.
  pb::GetCandidacyRequest get;
  get.set_name(r.name());
  auto current = GetCandidacy(p, get);
  if (!current.ok()) return current.status();
  const std::string code = CertificationCodeOf(current->referential_version());
  auto certification = referential_.GetCertification(absl::StrCat("certifications/", code));
  if (!certification.ok()) return certification.status();
  // The certificate is delivered by a certifier of the certification: one removed from the fiche
  // since (or made inactive there) no longer issues it.
  if (absl::Status s = CheckCertifierOf(*certification, p.id); !s.ok()) return s;
  auto version = referential_.GetVersion(current->referential_version());
  if (!version.ok()) return version.status();

  return ChangeCandidacy(p, r.name(), r.etag(), "IssueCertificate", [&](pb::Candidacy& c, EvaluationTx& tx) -> absl::Status {
    const absl::Time now = clock_.Now();
    if (c.state() != pb::CANDIDACY_STATE_DELIBERATED && c.state() != pb::CANDIDACY_STATE_DOSSIER_FILED) {
      return Transition(c, pb::CANDIDACY_STATE_CERTIFICATE_ISSUED, p.ToString(), now, "");  // names the state
    }
    const int today = ToYyyymmdd(now);
    if (absl::Status s = CheckIssuanceDeadline(*certification, today, c.name()); !s.ok()) return s;
    // The blocs this certificate counts from the ledger must still be held on `day` (the jury's,
    // or today without a jury): an entry may have expired or been revoked (its round's
    // result withdrawn) since the candidacy was opened. The ledger is read locked and the results
    // counted are recorded (ledger_uses): a revocation of one of them waits for this transaction,
    // then finds the certificate.
    std::vector<LedgerUse> uses;
    auto still_held = [&](const std::vector<std::string>& blocs, const char* when, int day) -> absl::Status {
      auto ledger = LedgerOf(tx, c.candidate_id(), c.certifier(), /*lock=*/true);
      if (!ledger.ok()) return ledger.status();
      std::vector<HeldBloc> held = HeldBlocs(blocs, code, **version, *ledger, day);
      if (held.size() == blocs.size() && !blocs.empty()) {
        for (const HeldBloc& h : held) {
          for (const std::string& source : h.sources) uses.push_back({CandidacyIdOf(c.name()), h.bloc_code, source});
        }
        return absl::OkStatus();
      }
      std::vector<std::string> lapsed;
      for (const std::string& b : blocs) {
        if (std::none_of(held.begin(), held.end(), [&](const HeldBloc& h) { return h.bloc_code == b; })) {
          lapsed.push_back(b);
        }
      }
      return FailedPrecondition(
          "BLOCS_NOT_ALL_HELD", c.name(),
          absl::StrCat(when, ", the ledger must hold every targeted bloc; not held on ", FormatDateKey(day), ": ",
                       lapsed.empty() ? "(none targeted)" : absl::StrJoin(lapsed, ", ")));
    };
    if (c.state() == pb::CANDIDACY_STATE_DELIBERATED) {
      const std::string id = CandidacyIdOf(c.name());
      auto round = tx.LatestDeliberationRound(id);
      if (!round.ok()) return round.status();
      auto d = tx.GetDeliberation(id, *round);
      if (!d.ok()) return d.status();
      // TOTAL grants the certification (an RS fiche, judged as a whole, has no bloc to name);
      // PARTIAL its acquired blocs; a refusal, an absence or an excuse grants nothing.
      const pb::ProposalKind proposal = d->value.proposal();
      if (!GrantsBlocs(proposal)) {
        return FailedPrecondition("NOTHING_TO_ISSUE", c.name(),
                                  absl::StrCat("the sealed proposal is ", ProposalShortName(proposal),
                                               ": it grants nothing to issue"));
      }
      // Held on the day the candidate passed before the jury, which based its TOTAL on them: one
      // lapsing after it does not undo the result (it could no longer go back to the jury).
      if (proposal == pb::PROPOSAL_KIND_TOTAL && c.held_blocs_size() > 0) {
        std::vector<std::string> carried(c.held_blocs().begin(), c.held_blocs().end());
        const int jury_day = JuryDayOf(c, ToYyyymmdd(FromTimestamp(d->value.seal_time())));
        if (absl::Status s = still_held(carried, "for the whole certification", jury_day); !s.ok()) return s;
      }
    } else {
      // Issuance without a jury: the ledger must still cover every targeted bloc today.
      std::vector<std::string> targets(c.target_blocs().begin(), c.target_blocs().end());
      if (absl::Status s = still_held(targets, "without a jury", today); !s.ok()) return s;
    }
    if (absl::Status s = Transition(c, pb::CANDIDACY_STATE_CERTIFICATE_ISSUED, p.ToString(), now, ""); !s.ok()) {
      return s;
    }
    return uses.empty() ? absl::OkStatus() : tx.AddLedgerUses(uses);
  });
}

// --- Sessions -----------------------------------------------------------------------------------

absl::StatusOr<pb::JurySession> Evaluation::CreateJurySession(const P& p, const pb::CreateJurySessionRequest& r) {
  if (absl::Status s = CertifierOnly(p, "create a jury session"); !s.ok()) return s;
  Violations v;
  CheckSessionFields(r.session(), v);
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  if (absl::Status s = aip::CheckRequestId(r.request_id()); !s.ok()) return s;
  const absl::Time now = clock_.Now();
  std::string name;
  const auto create = [&](EvaluationTx& tx) -> absl::Status {
    auto hit = tx.LookupRequest(CallerScopedMethod("CreateJurySession", p), r.request_id(), r);
    if (!hit.ok()) return hit.status();
    if (hit->has_value()) {
      name = **hit;
      return absl::OkStatus();
    }
    pb::JurySession s = r.session();
    name = absl::StrCat("sessions/", NewId());
    s.set_name(name);
    s.set_certifier(p.id);
    s.set_state(pb::SESSION_STATE_PLANNED);
    s.clear_slots();
    s.clear_conflict_of_interest_member_ids();
    for (pb::JuryMember& m : *s.mutable_members()) {
      m.set_prepared(false);
      m.clear_prepared_time();
      m.clear_conflict_of_interest();
    }
    if (absl::Status e = tx.InsertSession(s, now); !e.ok()) return e;
    if (absl::Status e = tx.Audit({now, p.ToString(), "CreateJurySession", name, ""}); !e.ok()) return e;
    return tx.RecordRequest(CallerScopedMethod("CreateJurySession", p), r.request_id(), r, name, now);
  };
  absl::Status st = CreateOnceRacing(r.request_id(), [&] { return repository_.Transact(create); });
  if (!st.ok()) return st;
  pb::GetJurySessionRequest get;
  get.set_name(name);
  return GetJurySession(p, get);
}

absl::StatusOr<pb::JurySession> Evaluation::GetJurySession(const P& p, const pb::GetJurySessionRequest& r) {
  auto id = IdOf(kSessionPattern, r.name(), "name");
  if (!id.ok()) return id.status();
  pb::JurySession out;
  absl::Status st = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
    auto s = tx.GetSession(*id);
    if (!s.ok()) return s.status();
    if (absl::Status a = Access::Session(p, s->value); !a.ok()) return a;
    out = s->value;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  if (!p.Is(Kind::kCertifier)) {  // a member: a candidacy that left the session is no longer its to see
    for (pb::SessionSlot& slot : *out.mutable_slots()) {
      if (slot.moved()) slot.clear_candidacy();
    }
  }
  return out;
}

absl::StatusOr<pb::ListJurySessionsResponse> Evaluation::ListJurySessions(const P& p,
                                                                           const pb::ListJurySessionsRequest& r) {
  if (absl::Status s = CertifierOnly(p, "list jury sessions"); !s.ok()) return s;
  auto terms = aip::ParseFilter(r.filter(), {"date=", "state="});
  if (!terms.ok()) return terms.status();
  SessionQuery q;
  q.certifier = p.id;
  for (const aip::FilterTerm& t : *terms) {
    if (t.field == "date") {
      std::optional<int> date = ParseDateKey(t.value);
      if (!date) return InvalidArgument("filter", "date must be a calendar date YYYY-MM-DD");
      q.date_yyyymmdd = *date;
    }
    if (t.field == "state") {
      pb::SessionState state;
      if (!pb::SessionState_Parse(absl::StrCat("SESSION_STATE_", t.value), &state)) {
        return InvalidArgument("filter", absl::StrCat("unknown state ", t.value));
      }
      q.state = state;
    }
  }
  const std::string scope = absl::StrCat("ListJurySessions\n", p.ToString(), "\n", r.filter());
  auto page = aip::Paginate<pb::JurySession>(
      page_tokens_, scope, r.page_size(), r.page_token(),
      [&](const std::string& cursor, int limit) {
        q.after_id = cursor;
        q.limit = limit;
        return repository_.ListSessions(q);
      },
      [](const pb::JurySession& s) { return SessionIdOf(s.name()); });
  if (!page.ok()) return page.status();
  pb::ListJurySessionsResponse out;
  for (pb::JurySession& s : page->items) *out.add_sessions() = std::move(s);
  out.set_next_page_token(page->next_page_token);
  return out;
}

absl::StatusOr<pb::JurySession> Evaluation::ChangeSession(const P& p, const std::string& name, const std::string& etag,
                                                          const SessionFields& fields, const std::string& action,
                                                          Who who, const SessionChange& change,
                                                          const std::string* audit_detail) {
  auto id = IdOf(kSessionPattern, name, fields.name);
  if (!id.ok()) return id.status();
  if (auto e = aip::ParseEtag(etag, fields.etag); !e.ok()) return e.status();
  const absl::Time now = clock_.Now();
  absl::Status st = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
    auto s = tx.GetSession(*id);
    if (!s.ok()) return s.status();
    if (absl::Status a = Access::Session(p, s->value); !a.ok()) return a;
    const bool allowed = p.Is(Kind::kCertifier) ||
                         (who == Who::kCertifierOrPresident && IsPresident(p, s->value)) ||
                         (who == Who::kMember && SitsOn(p, s->value));
    if (!allowed) return absl::PermissionDeniedError(absl::StrCat(action, " is not for this caller"));
    if (absl::Status e = CheckEtag(etag, s->version, name, fields.etag); !e.ok()) return e;
    if (absl::Status e = change(s->value, tx); !e.ok()) return e;
    if (absl::Status e = tx.PutSession(s->value, s->version, now); !e.ok()) return e;
    return tx.Audit({now, p.ToString(), action, name, audit_detail ? *audit_detail : ""});
  });
  if (!st.ok()) return st;
  pb::GetJurySessionRequest get;
  get.set_name(name);
  return GetJurySession(p, get);
}

absl::StatusOr<pb::JurySession> Evaluation::UpdateJurySession(const P& p, const pb::UpdateJurySessionRequest& r) {
  auto paths = aip::ResolveMask(r.update_mask(), {"members", "date", "place", "remote", "duration_tolerance_seconds",
                                                  "question_count_tolerance"}, r.session());
  if (!paths.ok()) return paths.status();
  return ChangeSession(p, r.session().name(), r.session().etag(), {"session.name", "session.etag"},
                       "UpdateJurySession", Who::kCertifier,
                       [&](pb::JurySession& s, EvaluationTx&) -> absl::Status {
                         if (s.state() != pb::SESSION_STATE_PLANNED) {
                           return FailedPrecondition("SESSION_NOT_PLANNED", s.name(),
                                                     "a session changes only while PLANNED");
                         }
                         const pb::JurySession& in = r.session();
                         for (const std::string& path : *paths) {
                           if (path == "date") *s.mutable_date() = in.date();
                           if (path == "place") s.set_place(in.place());
                           if (path == "remote") s.set_remote(in.remote());
                           if (path == "duration_tolerance_seconds") s.set_duration_tolerance_seconds(in.duration_tolerance_seconds());
                           if (path == "question_count_tolerance") s.set_question_count_tolerance(in.question_count_tolerance());
                           if (path == "members") {
                             pb::JurySession before = s;
                             // A flag stored without the list (by the previous binary) joins it
                             // before its member can be left out.
                             for (const pb::JuryMember& m : before.members()) {
                               if (m.conflict_of_interest() && !DeclaredConflict(s, m.member_id())) {
                                 s.add_conflict_of_interest_member_ids(m.member_id());
                               }
                             }
                             *s.mutable_members() = in.members();
                             // A member whose entry did not change keeps its preparation. A declared
                             // conflict of interest stays with the member whatever else changes: only
                             // replacing the member (leaving it out) clears it, and the session never
                             // takes that member back (else removing and adding it again would
                             // clear the flag and let it sit).
                             std::vector<PreconditionViolation> put_back;
                             for (pb::JuryMember& m : *s.mutable_members()) {
                               const pb::JuryMember* old = FindMember(before, m.member_id());
                               pb::JuryMember old_plain = old ? *old : pb::JuryMember();
                               old_plain.clear_prepared();
                               old_plain.clear_prepared_time();
                               old_plain.clear_conflict_of_interest();
                               m.clear_prepared();
                               m.clear_prepared_time();
                               m.clear_conflict_of_interest();
                               if (old && old_plain.SerializeAsString() == m.SerializeAsString()) {
                                 m.set_prepared(old->prepared());
                                 *m.mutable_prepared_time() = old->prepared_time();
                               }
                               if (old) m.set_conflict_of_interest(old->conflict_of_interest());
                               if (!old && DeclaredConflict(s, m.member_id())) {
                                 put_back.push_back(
                                     {"CONFLICT_OF_INTEREST", absl::StrCat(s.name(), "/members/", m.member_id()),
                                      absl::StrCat("member ", m.member_id(),
                                                   " declared a link with a candidate of this session or its "
                                                   "accompaniment: it cannot be put back on it")});
                               }
                             }
                             if (!put_back.empty()) return FailedPrecondition(std::move(put_back));
                           }
                         }
                         Violations v;
                         CheckSessionFields(s, v);
                         return v.ToStatus();
                       });
}

absl::StatusOr<pb::JurySession> Evaluation::ScheduleCandidacy(const P& p, const pb::ScheduleCandidacyRequest& r) {
  if (absl::Status s = CertifierOnly(p, "schedule a candidacy"); !s.ok()) return s;
  auto candidacy_id = IdOf(kCandidacyPattern, r.candidacy(), "candidacy");
  if (!candidacy_id.ok()) return candidacy_id.status();
  if (r.has_start_time() && !ValidTimestamp(r.start_time())) {
    return InvalidArgument("start_time", "is not a valid timestamp");
  }
  // A candidacy holding blocs from the ledger needs its référentiel (the correspondences say which
  // entries hold a bloc): read before the transaction, as CreateCandidacy does (referential-svc
  // slow or down holds no database lock). Held blocs only ever leave a candidacy.
  pb::GetCandidacyRequest get;
  get.set_name(r.candidacy());
  auto current = GetCandidacy(p, get);
  if (!current.ok()) return current.status();
  std::shared_ptr<const ref::Version> version;
  if (current->held_blocs_size() > 0) {
    auto read = referential_.GetVersion(current->referential_version());
    if (!read.ok()) return read.status();
    version = *std::move(read);
  }
  return ChangeSession(p, r.session(), "", {"session", ""}, "ScheduleCandidacy", Who::kCertifier,
                       [&](pb::JurySession& s, EvaluationTx& tx) -> absl::Status {
                         if (s.state() != pb::SESSION_STATE_PLANNED) {
                           return FailedPrecondition("SESSION_NOT_PLANNED", s.name(),
                                                     "candidates are scheduled while the session is PLANNED");
                         }
                         auto c = tx.GetCandidacy(*candidacy_id);
                         if (!c.ok()) return c.status();
                         if (absl::Status a = Access::Candidacy(p, c->value, tx); !a.ok()) return a;
                         // The state first: nothing below is written for a candidacy that cannot
                         // be scheduled (its rounds and sheets stay as they are).
                         if (c->value.state() != pb::CANDIDACY_STATE_DOSSIER_FILED &&
                             c->value.state() != pb::CANDIDACY_STATE_DELIBERATED) {
                           return Transition(c->value, pb::CANDIDACY_STATE_JURY_SCHEDULED, p.ToString(), clock_.Now(),
                                             "");  // refused: names the state
                         }
                         if (FindSlot(s, r.candidacy()) != nullptr) {
                           return AlreadyExists(absl::StrCat(s.name(), " slot for ", r.candidacy()));
                         }
                         if (s.slots_size() > 0) {
                           // One certification per session: a member's `qualified` is for it.
                           auto first = tx.GetCandidacy(CandidacyIdOf(s.slots(0).candidacy()));
                           if (!first.ok()) return first.status();
                           const std::string sits_for = CertificationCodeOf(first->value.referential_version());
                           const std::string wants = CertificationCodeOf(c->value.referential_version());
                           if (wants != sits_for) {
                             return FailedPrecondition(
                                 "SESSION_CERTIFICATION_MISMATCH", r.candidacy(),
                                 absl::StrCat(s.name(), " sits for ", sits_for, ", not ", wants,
                                              ": a jury and its qualified members are one certification's"));
                           }
                         }
                         // A bloc held when the candidacy was opened must still be held on the
                         // jury's day (today if that is past): one lapsed or withdrawn since goes
                         // back to the jury instead of failing the certificate after it.
                         const absl::Time now = clock_.Now();
                         std::string reason = s.name();
                         const int jury_day = std::max(ToYyyymmdd(now), DateKey(s.date()));
                         if (version != nullptr) {
                           auto back = ReturnLapsedBlocs(tx, c->value, *version, jury_day);
                           if (!back.ok()) return back.status();
                           if (!back->empty()) {
                             absl::StrAppend(&reason, "; ", kNoLongerHeld, absl::StrJoin(*back, ", "));
                           }
                         }
                         if (c->value.blocs_to_evaluate_size() == 0 && c->value.target_blocs_size() > 0) {
                           return FailedPrecondition("NOTHING_TO_EVALUATE", r.candidacy(),
                                                     "the ledger holds every targeted bloc: issue without a jury");
                         }
                         // Called again (DELIBERATED on an absence or an excuse; DOSSIER_FILED after a
                         // revocation for a new jury): the earlier jury's session, its rounds and sheets.
                         auto latest = LatestRoundOf(tx, c->value);
                         if (!latest.ok()) return latest.status();
                         if (c->value.state() == pb::CANDIDACY_STATE_DELIBERATED) {
                           const pb::ProposalKind sealed = latest->deliberation.proposal();
                           if (!NotHeard(sealed)) {
                             return FailedPrecondition(
                                 "RESULT_DECIDED", latest->deliberation.name(),
                                 absl::StrCat("the sealed result is ", ProposalShortName(sealed),
                                              ": only a candidate absent or excused is called before another jury; "
                                              "a decided result is corrected by a revocation"));
                           }
                           absl::StrAppend(&reason, "; called again after ", ProposalShortName(sealed), " (",
                                           latest->deliberation.name(), ")");
                         }
                         std::string earlier = c->value.session();
                         if (earlier.empty() && latest->round > 0) {
                           earlier = SessionOfRound(latest->deliberation, c->value);
                         }
                         if (!earlier.empty()) {
                           // Rounds opened before Deliberation.session existed are pinned to their
                           // jury before the candidacy names another.
                           for (int round = 1; round <= latest->round; ++round) {
                             auto d = tx.GetDeliberation(*candidacy_id, round);
                             if (!d.ok()) return d.status();
                             if (!d->value.session().empty()) continue;
                             d->value.set_session(earlier);
                             if (absl::Status e = tx.PutDeliberation(*candidacy_id, round, d->value, d->version, now);
                                 !e.ok()) {
                               return e;
                             }
                           }
                           // Its slot there stays, hidden from that jury (already marked by a
                           // revocation for a new jury). Not this session: it has no slot here yet.
                           if (absl::Status e = MarkSlotMoved(tx, earlier, c->value.name(), now); !e.ok()) return e;
                           // The earlier jury's sheets must not mix with the new jury's; kept aside.
                           auto moved = tx.SetAsideScoreSheets(*candidacy_id, SessionIdOf(earlier), now);
                           if (!moved.ok()) return moved.status();
                           if (*moved > 0) {
                             absl::StrAppend(&reason, "; ", *moved, " score sheet(s) of ", earlier, " set aside");
                           }
                         }
                         if (absl::Status e = Transition(c->value, pb::CANDIDACY_STATE_JURY_SCHEDULED, p.ToString(), now,
                                                         reason);
                             !e.ok()) {
                           return e;
                         }
                         c->value.set_session(s.name());
                         if (absl::Status e = tx.PutCandidacy(c->value, c->version, now); !e.ok()) return e;
                         pb::SessionSlot* slot = s.add_slots();
                         slot->set_candidacy(r.candidacy());
                         if (r.has_start_time()) *slot->mutable_start_time() = r.start_time();
                         // A member's declaration (no link with any candidate of the session)
                         // covered the candidates scheduled then: a new one asks for it again.
                         for (pb::JuryMember& m : *s.mutable_members()) {
                           m.set_prepared(false);
                           m.clear_prepared_time();
                         }
                         return absl::OkStatus();
                       });
}

absl::StatusOr<pb::JurySession> Evaluation::ConfirmPreparation(const P& p, const pb::ConfirmPreparationRequest& r) {
  if (!p.Is(Kind::kJuryMember)) return absl::PermissionDeniedError("only a jury member confirms its preparation");
  // Not malformed input: the member says it cannot sit yet (not read) or at all (a link with a
  // candidate: the certifier replaces it). That declaration is recorded (it withdraws an earlier
  // confirmation, so the session cannot start with the member) and answered with the rule.
  std::vector<PreconditionViolation> cannot_sit;
  if (!r.referential_read()) {
    cannot_sit.push_back({"REFERENTIAL_NOT_READ", r.session(),
                          "the référentiel, the evaluation grids and the appreciation scale are read first"});
  }
  if (!r.no_conflict_of_interest()) {
    cannot_sit.push_back({"CONFLICT_OF_INTEREST", r.session(),
                          "a member linked to a candidate or its accompaniment cannot sit: the certifier replaces it"});
  }
  // The audit row keeps the declaration itself.
  const std::string declaration =
      absl::StrCat("no_conflict_of_interest=", r.no_conflict_of_interest() ? "true" : "false",
                   " referential_read=", r.referential_read() ? "true" : "false");
  auto session = ChangeSession(p, r.session(), "", {"session", ""}, "ConfirmPreparation", Who::kMember,
                               [&](pb::JurySession& s, EvaluationTx&) -> absl::Status {
                                 if (s.state() != pb::SESSION_STATE_PLANNED) {
                                   return FailedPrecondition("SESSION_NOT_PLANNED", s.name(),
                                                             "preparation is confirmed before the session starts");
                                 }
                                 for (pb::JuryMember& m : *s.mutable_members()) {
                                   if (m.member_id() != p.id) continue;
                                   // A declared link is not taken back by the member: the certifier
                                   // replaces it (UpdateJurySession).
                                   if (m.conflict_of_interest()) {
                                     return FailedPrecondition(
                                         "CONFLICT_OF_INTEREST", r.session(),
                                         absl::StrCat("member ", m.member_id(),
                                                      " declared a link with a candidate or its accompaniment: "
                                                      "it cannot sit, the certifier replaces it"));
                                   }
                                   const bool declares_conflict = !r.no_conflict_of_interest();
                                   // Nothing to withdraw nor to remember: nothing written (the etag stays).
                                   if (!cannot_sit.empty() && !m.prepared() && !declares_conflict) {
                                     return FailedPrecondition(cannot_sit);
                                   }
                                   m.set_prepared(cannot_sit.empty());
                                   m.set_conflict_of_interest(declares_conflict);
                                   // Kept by the session too: replacing the member ends its sitting
                                   // here for good.
                                   if (declares_conflict && !DeclaredConflict(s, m.member_id())) {
                                     s.add_conflict_of_interest_member_ids(m.member_id());
                                   }
                                   if (cannot_sit.empty()) {
                                     *m.mutable_prepared_time() = ToTimestamp(clock_.Now());
                                   } else {
                                     m.clear_prepared_time();
                                   }
                                 }
                                 return absl::OkStatus();
                               },
                               &declaration);
  if (!session.ok()) return session.status();
  if (!cannot_sit.empty()) return FailedPrecondition(std::move(cannot_sit));
  return session;
}

absl::StatusOr<pb::JurySession> Evaluation::StartJurySession(const P& p, const pb::StartJurySessionRequest& r) {
  if (absl::Status s = CertifierOnly(p, "start a jury session"); !s.ok()) return s;
  return ChangeSession(p, r.name(), r.etag(), {"name", "etag"}, "StartJurySession", Who::kCertifier,
                       [&](pb::JurySession& s, EvaluationTx& tx) -> absl::Status {
                         if (s.state() != pb::SESSION_STATE_PLANNED) {
                           return FailedPrecondition("SESSION_NOT_PLANNED", s.name(), "the session already started");
                         }
                         if (s.slots_size() == 0) {
                           return FailedPrecondition("NO_CANDIDATES", s.name(), "no candidate is scheduled");
                         }
                         // The jury's day is today: a held bloc lapsed or withdrawn since the
                         // scheduling (the session moved later, its result revoked) goes to the
                         // jury now (ReturnLapsedBlocs), written once the composition passes.
                         const absl::Time now = clock_.Now();
                         std::vector<PreconditionViolation> all;
                         std::set<std::string> seen;
                         std::vector<std::pair<Versioned<pb::Candidacy>, std::vector<std::string>>> changed;
                         for (const pb::SessionSlot& slot : s.slots()) {
                           auto c = tx.GetCandidacy(CandidacyIdOf(slot.candidacy()));
                           if (!c.ok()) return c.status();
                           auto version = referential_.GetVersion(c->value.referential_version());
                           if (!version.ok()) return version.status();
                           for (PreconditionViolation& pv :
                                CompositionViolations(s, WithLegalMinimum((*version)->validation_rules().jury()),
                                                      s.name())) {
                             if (seen.insert(pv.type + "|" + pv.subject).second) all.push_back(std::move(pv));
                           }
                           // Only a candidate still waiting for this jury (not one withdrawn since).
                           if (c->value.state() != pb::CANDIDACY_STATE_JURY_SCHEDULED ||
                               c->value.session() != s.name()) {
                             continue;
                           }
                           auto back = ReturnLapsedBlocs(tx, c->value, **version, ToYyyymmdd(now));
                           if (!back.ok()) return back.status();
                           if (!back->empty()) changed.emplace_back(*std::move(c), *std::move(back));
                         }
                         if (!all.empty()) return FailedPrecondition(std::move(all));
                         for (const auto& [c, back] : changed) {
                           if (absl::Status e = tx.PutCandidacy(c.value, c.version, now); !e.ok()) return e;
                           if (absl::Status e = tx.Audit({now, p.ToString(), "StartJurySession", c.value.name(),
                                                          absl::StrCat(kNoLongerHeld, absl::StrJoin(back, ", "))});
                               !e.ok()) {
                             return e;
                           }
                         }
                         s.set_state(pb::SESSION_STATE_IN_PROGRESS);
                         return absl::OkStatus();
                       });
}

absl::StatusOr<pb::JurySession> Evaluation::RecordPassage(const P& p, const pb::RecordPassageRequest& r) {
  Violations v;
  if (r.attendance() == pb::ATTENDANCE_UNSPECIFIED || !pb::Attendance_IsValid(r.attendance())) {
    v.Add("attendance", "must be PRESENT, ABSENT or EXCUSED");
  }
  if (r.presentation_seconds() < 0) v.Add("presentation_seconds", "must not be negative");
  if (r.exchange_seconds() < 0) v.Add("exchange_seconds", "must not be negative");
  if (r.question_count() < 0) v.Add("question_count", "must not be negative");
  // An absent or excused candidate had no passage: nothing to measure (the equal-treatment report
  // compares the present ones only, and a stored duration would say the jury heard it).
  if (r.attendance() == pb::ATTENDANCE_ABSENT || r.attendance() == pb::ATTENDANCE_EXCUSED) {
    const char* why = "must be 0: the candidate was not present";
    if (r.presentation_seconds() != 0) v.Add("presentation_seconds", why);
    if (r.exchange_seconds() != 0) v.Add("exchange_seconds", why);
    if (r.question_count() != 0) v.Add("question_count", why);
  }
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  auto candidacy_id = IdOf(kCandidacyPattern, r.candidacy(), "candidacy");
  if (!candidacy_id.ok()) return candidacy_id.status();
  return ChangeSession(p, r.session(), "", {"session", ""}, "RecordPassage", Who::kCertifierOrPresident,
                       [&](pb::JurySession& s, EvaluationTx& tx) -> absl::Status {
                         if (s.state() != pb::SESSION_STATE_IN_PROGRESS) {
                           return FailedPrecondition("SESSION_NOT_STARTED", s.name(),
                                                     "passages are recorded once the session has started");
                         }
                         pb::SessionSlot* slot = FindSlot(s, r.candidacy());
                         if (slot == nullptr) return NotFound(absl::StrCat(s.name(), " slot for ", r.candidacy()));
                         auto c = tx.GetCandidacy(*candidacy_id);
                         if (!c.ok()) return c.status();
                         // A candidate absent or excused here was called before another session
                         // since: this jury's slot is history, and the candidacy no longer its
                         // to see (NOT_FOUND, as for Access::Candidacy: neither its state nor
                         // its new session is told).
                         if (c->value.session() != s.name()) return NotFound(r.candidacy());
                         // Once: a passage after the seal would send a signed result back to
                         // EVALUATED without a revocation (DELIBERATED -> EVALUATED is revocation's).
                         if (c->value.state() != pb::CANDIDACY_STATE_JURY_SCHEDULED) {
                           return FailedPrecondition(
                               "INVALID_TRANSITION", c->value.name(),
                               absl::StrCat(c->value.name(), " is ", StateShortName(c->value.state()),
                                            ": a passage is recorded once, while the candidacy is JURY_SCHEDULED"));
                         }
                         const absl::Time now = clock_.Now();
                         if (absl::Status e = Transition(c->value, pb::CANDIDACY_STATE_EVALUATED, p.ToString(), now,
                                                         pb::Attendance_Name(r.attendance()));
                             !e.ok()) {
                           return e;
                         }
                         if (absl::Status e = tx.PutCandidacy(c->value, c->version, now); !e.ok()) return e;
                         slot->set_attendance(r.attendance());
                         slot->set_presentation_seconds(r.presentation_seconds());
                         slot->set_exchange_seconds(r.exchange_seconds());
                         slot->set_question_count(r.question_count());
                         return absl::OkStatus();
                       });
}

absl::StatusOr<pb::SessionReport> Evaluation::GetSessionReport(const P& p, const pb::GetSessionReportRequest& r) {
  pb::GetJurySessionRequest get;
  get.set_name(r.session());
  auto s = GetJurySession(p, get);
  if (!s.ok()) {
    if (absl::IsInvalidArgument(s.status())) return InvalidArgument("session", "must be sessions/{id}");
    return s.status();
  }
  return BuildSessionReport(*s);
}

// --- Scores -------------------------------------------------------------------------------------

absl::StatusOr<pb::ScoreSheet> Evaluation::SubmitScoreSheet(const P& p, const pb::SubmitScoreSheetRequest& r) {
  if (!p.Is(Kind::kJuryMember)) return absl::PermissionDeniedError("only a jury member submits scores");
  auto id = IdOf(kCandidacyPattern, r.candidacy(), "candidacy");
  if (!id.ok()) return id.status();
  // Without a sheet the member's sheet would be replaced by an empty one.
  if (!r.has_sheet()) return InvalidArgument("sheet", "the member's score sheet is required");
  pb::Candidacy candidacy;
  {
    pb::GetCandidacyRequest get;
    get.set_name(r.candidacy());
    auto c = GetCandidacy(p, get);  // scope: a member of the candidacy's session
    if (!c.ok()) return c.status();
    candidacy = *c;
  }
  auto version = referential_.GetVersion(candidacy.referential_version());
  if (!version.ok()) return version.status();
  Violations v;
  std::vector<std::string> blocs(candidacy.blocs_to_evaluate().begin(), candidacy.blocs_to_evaluate().end());
  CheckScoreSheet(r.sheet(), **version, blocs, v);
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  const absl::Time now = clock_.Now();
  pb::ScoreSheet out;
  absl::Status st = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
    // Locked: OpenDeliberation computes its spreads from the sheets; a sheet written after them
    // would be acknowledged and never counted.
    auto c = tx.LockCandidacy(*id);
    if (!c.ok()) return c.status();
    // The scope again, on the locked read: called before another jury since the read above, the
    // candidacy is no longer the caller's to score (its sheet would be spread with the new jury's).
    if (absl::Status a = Access::Candidacy(p, c->value, tx); !a.ok()) return a;
    if (c->value.state() != pb::CANDIDACY_STATE_JURY_SCHEDULED && c->value.state() != pb::CANDIDACY_STATE_EVALUATED) {
      return FailedPrecondition("INVALID_STATE", c->value.name(),
                                absl::StrCat(c->value.name(), " is ", StateShortName(c->value.state()),
                                             ": scores are given while JURY_SCHEDULED or EVALUATED"));
    }
    auto session = tx.GetSession(SessionIdOf(c->value.session()));
    if (!session.ok()) return session.status();
    if (DeclaredConflict(session->value, p.id)) {
      return FailedPrecondition("CONFLICT_OF_INTEREST", c->value.session(),
                                absl::StrCat(p.id, " declared a link with a candidate of ", c->value.session(),
                                             ": a linked member does not score"));
    }
    if (c->value.state() == pb::CANDIDACY_STATE_EVALUATED) {
      // The passage is recorded: only a candidate the jury heard is scored.
      const pb::Attendance attendance = AttendanceAt(session->value, c->value.name());
      if (attendance != pb::ATTENDANCE_PRESENT) {
        return FailedPrecondition("CANDIDATE_NOT_PRESENT", c->value.name(),
                                  absl::StrCat("the candidate was ", pb::Attendance_Name(attendance),
                                               " at ", c->value.session(), ": there is nothing to score"));
      }
    }
    if (c->value.state() == pb::CANDIDACY_STATE_JURY_SCHEDULED && r.sheet().bloc_scores_size() > 0) {
      // The marks on reading the dossier come before the session; the % per bloc is given during
      // the interview: not before the session has started.
      if (session->value.state() != pb::SESSION_STATE_IN_PROGRESS) {
        return FailedPrecondition("SESSION_NOT_STARTED", c->value.session(),
                                  "bloc scores are given during the interview, once the session has started; "
                                  "before it, a sheet holds the marks on reading the dossier only");
      }
    }
    auto latest = LatestRoundOf(tx, c->value);
    if (!latest.ok()) return latest.status();
    if (latest->this_passage) {
      return FailedPrecondition("DELIBERATION_OPEN", c->value.name(),
                                "the deliberation has opened: scores no longer change");
    }
    out = r.sheet();
    out.set_name(absl::StrCat(c->value.name(), "/scoreSheets/", p.id));
    *out.mutable_update_time() = ToTimestamp(now);
    if (absl::Status s = tx.PutScoreSheet(*id, p.id, out, now); !s.ok()) return s;
    return tx.Audit({now, p.ToString(), "SubmitScoreSheet", out.name(), ""});
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<pb::ScoreSheet> Evaluation::GetScoreSheet(const P& p, const pb::GetScoreSheetRequest& r) {
  auto parts = aip::ParseName(kSheetPattern, r.name(), "name");
  if (!parts.ok()) return parts.status();
  const std::string& candidacy_id = (*parts)[0];
  const std::string& member_id = (*parts)[1];
  pb::ScoreSheet out;
  absl::Status st = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
    auto c = tx.GetCandidacy(candidacy_id);
    if (!c.ok()) return c.status();
    if (absl::Status a = Access::Candidacy(p, c->value, tx); !a.ok()) return a;
    const bool own = p.Is(Kind::kJuryMember) && p.id == member_id;
    if (!own) {
      auto latest = LatestRoundOf(tx, c->value);
      if (!latest.ok()) return latest.status();
      if (!latest->this_passage) {
        return absl::PermissionDeniedError("a member's scores stay private until the deliberation opens");
      }
    }
    auto sheet = tx.GetScoreSheet(candidacy_id, member_id);
    if (!sheet.ok()) return sheet.status();
    if (!sheet->has_value()) return NotFound(r.name());
    out = **sheet;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

// --- Deliberation -------------------------------------------------------------------------------

namespace {

// Opens round `round` of the candidacy's jury (its session) with the spreads of the members'
// sheets, and records the blocs it holds now (its grid prints them, whatever lapses later).
absl::StatusOr<pb::Deliberation> NewRound(const pb::Candidacy& c, int round,
                                          const std::vector<std::pair<std::string, pb::ScoreSheet>>& sheets,
                                          const std::vector<std::string>& blocs, int gap, absl::Time now) {
  pb::Deliberation d;
  d.set_name(absl::StrCat(c.name(), "/deliberations/", round));
  d.set_session(c.session());
  *d.mutable_held_blocs() = c.held_blocs();
  d.set_state(pb::DELIBERATION_STATE_OPEN);
  d.set_divergence_gap(gap);
  std::vector<pb::ScoreSheet> only;
  for (const auto& [member, sheet] : sheets) only.push_back(sheet);
  for (pb::BlocSpread& s : Spreads(only, blocs, gap)) *d.add_spreads() = std::move(s);
  *d.mutable_open_time() = ToTimestamp(now);
  return d;
}

}  // namespace

absl::StatusOr<pb::Deliberation> Evaluation::OpenDeliberation(const P& p, const pb::OpenDeliberationRequest& r) {
  auto id = IdOf(kCandidacyPattern, r.candidacy(), "candidacy");
  if (!id.ok()) return id.status();
  if (r.divergence_gap() < 0 || r.divergence_gap() > 100) {
    return InvalidArgument("divergence_gap", "must be in 0..100");
  }
  const int gap = r.divergence_gap() > 0 ? r.divergence_gap() : options_.default_divergence_gap;
  const absl::Time now = clock_.Now();
  // Who opens it: a caller with access to the candidacy, and the certifier or the jury's
  // president. The session the candidacy passed in, for them.
  const auto opener_session = [&](EvaluationTx& tx,
                                  const pb::Candidacy& c) -> absl::StatusOr<Versioned<pb::JurySession>> {
    if (absl::Status a = Access::Candidacy(p, c, tx); !a.ok()) return a;
    if (c.session().empty()) {  // never scheduled, or revoked for a new jury and not yet scheduled again
      return FailedPrecondition("INVALID_STATE", c.name(),
                                absl::StrCat(c.name(), " is ", StateShortName(c.state()),
                                             ": the deliberation opens once the candidate is EVALUATED"));
    }
    auto session = tx.GetSession(SessionIdOf(c.session()));
    if (!session.ok()) return session.status();
    if (!p.Is(Kind::kCertifier) && !IsPresident(p, session->value)) {
      return absl::PermissionDeniedError("the certifier or the jury's president opens the deliberation");
    }
    return session;
  };
  const auto present = [](const pb::JurySession& session, const pb::Candidacy& c) {
    return AttendanceAt(session, c.name()) == pb::ATTENDANCE_PRESENT;
  };
  // The référentiel is read before the candidacy is locked: a slow referential-svc holds no lock.
  // Only for whom may open this deliberation of a candidate who was present (checked again under
  // the lock): a refused caller's answer does not wait on it, so its timing tells nothing of the
  // candidacy. Its answer, or error, is used below where needed.
  absl::StatusOr<std::shared_ptr<const ref::Version>> version =
      absl::UnavailableError("the candidacy's référentiel version could not be read: retry");
  {
    std::string version_name;
    absl::Status read = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
      auto c = tx.GetCandidacy(*id);
      if (!c.ok()) return absl::OkStatus();
      auto session = opener_session(tx, c->value);
      if (session.ok() && present(session->value, c->value)) version_name = c->value.referential_version();
      return absl::OkStatus();
    });
    if (read.ok() && !version_name.empty()) version = referential_.GetVersion(version_name);
  }
  pb::Deliberation out;
  absl::Status st = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
    auto c = tx.LockCandidacy(*id);  // SubmitScoreSheet's lock: the sheets read below are final
    if (!c.ok()) return c.status();
    auto session = opener_session(tx, c->value);
    if (!session.ok()) return session.status();
    if (c->value.state() != pb::CANDIDACY_STATE_EVALUATED) {
      return FailedPrecondition("INVALID_STATE", c->value.name(),
                                absl::StrCat(c->value.name(), " is ", StateShortName(c->value.state()),
                                             ": the deliberation opens once the candidate is EVALUATED"));
    }
    // Rounds of an earlier jury (the candidate absent or excused then, or a result revoked for a
    // new jury) are history: this passage's deliberation is the next round.
    auto latest = LatestRoundOf(tx, c->value);
    if (!latest.ok()) return latest.status();
    if (latest->this_passage) {
      return FailedPrecondition("DELIBERATION_ALREADY_OPEN", latest->deliberation.name(),
                                absl::StrCat("round ", latest->round, " of this jury is ",
                                             pb::DeliberationState_Name(latest->deliberation.state())));
    }
    const int next_round = latest->round + 1;
    auto sheets = tx.ListScoreSheets(*id);
    if (!sheets.ok()) return sheets.status();
    std::vector<std::string> blocs(c->value.blocs_to_evaluate().begin(), c->value.blocs_to_evaluate().end());
    if (present(session->value, c->value)) {
      if (!version.ok()) return version.status();
      std::vector<PreconditionViolation> missing;
      for (const pb::JuryMember& m : session->value.members()) {
        auto it = std::find_if(sheets->begin(), sheets->end(), [&](const auto& s) { return s.first == m.member_id(); });
        std::vector<std::string> lacks = it == sheets->end()
                                             ? std::vector<std::string>{"every score"}
                                             : MissingScores(it->second, **version, blocs);
        if (!lacks.empty()) {
          missing.push_back({"SCORES_MISSING", absl::StrCat(c->value.name(), "/scoreSheets/", m.member_id()),
                             absl::StrCat("member ", m.member_id(), " has not scored: ", absl::StrJoin(lacks, ", "))});
        }
      }
      if (!missing.empty()) return FailedPrecondition(std::move(missing));
    }
    // Sheets given before the passage of a candidate found absent or excused are not spread: the
    // jury heard no one.
    if (!present(session->value, c->value)) {
      sheets->clear();
      blocs.clear();
    }
    auto d = NewRound(c->value, next_round, *sheets, blocs, gap, now);
    if (!d.ok()) return d.status();
    out = *d;
    if (absl::Status s = tx.InsertDeliberation(*id, next_round, out, now); !s.ok()) return s;
    return tx.Audit({now, p.ToString(), "OpenDeliberation", out.name(), ""});
  });
  if (!st.ok()) return st;
  pb::GetDeliberationRequest get;
  get.set_name(out.name());
  return GetDeliberation(p, get);
}

absl::StatusOr<pb::Deliberation> Evaluation::GetDeliberation(const P& p, const pb::GetDeliberationRequest& r) {
  auto parts = aip::ParseName(kDeliberationPattern, r.name(), "name");
  if (!parts.ok()) return parts.status();
  const std::string candidacy_id = (*parts)[0];
  int round = 0;
  if ((*parts)[1] != "-" && !ParseRound((*parts)[1], &round)) {
    return InvalidArgument("name", "the deliberation segment is a round number (1, 2, ...) or '-'");
  }
  pb::Deliberation out;
  absl::Status st = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
    auto c = Access::Readable(p, candidacy_id, tx);
    if (!c.ok()) return c.status();
    if (round == 0) {
      auto latest = tx.LatestDeliberationRound(candidacy_id);
      if (!latest.ok()) return latest.status();
      if (*latest == 0) return NotFound(r.name());
      round = *latest;
    }
    auto d = tx.GetDeliberation(candidacy_id, round);
    if (!d.ok()) return d.status();
    if (!Access::RoundVisible(p, d->value, *c)) return NotFound(r.name());
    out = d->value;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  if (p.Is(Kind::kNational)) StatisticsView(out);
  return out;
}

absl::StatusOr<pb::Deliberation> Evaluation::CurrentRound(
    const P& p, const std::string& deliberation_name, const std::string& etag, EtagCovers covers,
    const std::string& action,
    const std::function<absl::Status(pb::Deliberation&, pb::Candidacy&, const pb::JurySession&, EvaluationTx&)>&
        change) {
  auto parts = aip::ParseName(kDeliberationPattern, deliberation_name, "name");
  if (!parts.ok()) return parts.status();
  const std::string candidacy_id = (*parts)[0];
  int round = 0;
  if (!ParseRound((*parts)[1], &round)) {
    return InvalidArgument("name", "the deliberation segment is a round number (1, 2, ...)");
  }
  auto read_at = aip::ParseEtag(etag, "etag");
  if (!read_at.ok()) return read_at.status();
  const absl::Time now = clock_.Now();
  std::string name;
  absl::Status st = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
    // Locked: the state check below decides a write to the deliberation, which a withdrawal
    // (it writes the candidacy only) does not touch; unlocked, both would commit and the
    // decision or signature land on a WITHDRAWN candidacy. Locked, one waits for the other.
    auto c = tx.LockCandidacy(candidacy_id);
    if (!c.ok()) return c.status();
    if (absl::Status a = Access::Candidacy(p, c->value, tx); !a.ok()) return a;
    auto d = tx.GetDeliberation(candidacy_id, round);
    if (!d.ok()) return d.status();
    // A round is decided and signed only for a candidacy still waiting for its result: one
    // withdrawn meanwhile (or sent to another jury) gets no decision, no signature, no ledger entry.
    if (c->value.session().empty() ||
        (d->value.state() == pb::DELIBERATION_STATE_OPEN && c->value.state() != pb::CANDIDACY_STATE_EVALUATED)) {
      return FailedPrecondition("INVALID_STATE", c->value.name(),
                                absl::StrCat(c->value.name(), " is ", StateShortName(c->value.state()),
                                             ": a deliberation is decided and signed while the candidacy is "
                                             "EVALUATED"));
    }
    auto session = tx.GetSession(SessionIdOf(c->value.session()));
    if (!session.ok()) return session.status();
    if (read_at->has_value()) {
      // Each signature writes the round once, and the decision no longer changes once signed
      // (ALREADY_SIGNED): the last decision was written at the version minus the signatures.
      const int64_t since =
          covers == EtagCovers::kDecision ? d->version - d->value.signatures_size() : d->version;
      if (**read_at < since || **read_at > d->version) return EtagMismatch(d->value.name());
    }
    const int64_t candidacy_version = c->version;
    const pb::CandidacyState before = c->value.state();
    if (absl::Status s = change(d->value, c->value, session->value, tx); !s.ok()) return s;
    if (absl::Status s = tx.PutDeliberation(candidacy_id, round, d->value, d->version, now); !s.ok()) return s;
    if (c->value.state() != before) {
      if (absl::Status s = tx.PutCandidacy(c->value, candidacy_version, now); !s.ok()) return s;
    }
    name = d->value.name();
    return tx.Audit({now, p.ToString(), action, deliberation_name, ""});
  });
  if (!st.ok()) return st;
  pb::GetDeliberationRequest get;
  get.set_name(name);
  return GetDeliberation(p, get);
}

absl::StatusOr<pb::Deliberation> Evaluation::RecordDecision(const P& p, const pb::RecordDecisionRequest& r) {
  return CurrentRound(p, r.name(), r.etag(), EtagCovers::kDeliberation, "RecordDecision",
                      [&](pb::Deliberation& d, pb::Candidacy& c, const pb::JurySession& s, EvaluationTx&) -> absl::Status {
                        if (!IsPresident(p, s)) {
                          return absl::PermissionDeniedError("the jury's president records the decision");
                        }
                        if (d.state() != pb::DELIBERATION_STATE_OPEN) {
                          return FailedPrecondition("DELIBERATION_SEALED", d.name(),
                                                    "a sealed or revoked deliberation never changes");
                        }
                        if (d.signatures_size() > 0) {
                          return FailedPrecondition("ALREADY_SIGNED", d.name(),
                                                    "members have signed this decision: it no longer changes");
                        }
                        auto version = referential_.GetVersion(c.referential_version());
                        if (!version.ok()) return version.status();
                        DecisionContext context;
                        context.blocs_to_evaluate.assign(c.blocs_to_evaluate().begin(), c.blocs_to_evaluate().end());
                        for (const ref::Bloc& b : (*version)->blocs()) {
                          const auto& target = c.target_blocs();
                          if (std::find(target.begin(), target.end(), b.code()) == target.end()) {
                            ++context.blocs_not_targeted;
                          }
                        }
                        context.threshold_percent = (*version)->validation_rules().bloc_threshold_percent();
                        context.partial_allowed = (*version)->validation_rules().partial_validation_allowed();
                        context.attendance = AttendanceAt(s, c.name());
                        return ApplyDecision(r, context, d);
                      });
}

absl::StatusOr<pb::Deliberation> Evaluation::SignDeliberation(const P& p, const pb::SignDeliberationRequest& r) {
  if (!p.Is(Kind::kJuryMember)) return absl::PermissionDeniedError("only a jury member signs");
  return CurrentRound(
      p, r.name(), r.etag(), EtagCovers::kDecision, "SignDeliberation",
      [&](pb::Deliberation& d, pb::Candidacy& c, const pb::JurySession& s, EvaluationTx& tx) -> absl::Status {
        if (d.state() != pb::DELIBERATION_STATE_OPEN) {
          return FailedPrecondition("DELIBERATION_SEALED", d.name(), "this deliberation is no longer open");
        }
        if (d.proposal() == pb::PROPOSAL_KIND_UNSPECIFIED) {
          return FailedPrecondition("NO_DECISION", d.name(), "the president has not recorded the decision yet");
        }
        for (const pb::Signature& sig : d.signatures()) {
          if (sig.member_id() == p.id) {
            return FailedPrecondition("ALREADY_SIGNED", d.name(), "this member has already signed");
          }
        }
        const absl::Time now = clock_.Now();
        pb::Signature* sig = d.add_signatures();
        sig->set_member_id(p.id);
        *sig->mutable_time() = ToTimestamp(now);
        if (d.signatures_size() < s.members_size()) return absl::OkStatus();
        // The last signature seals the result.
        d.set_state(pb::DELIBERATION_STATE_SEALED);
        *d.mutable_seal_time() = ToTimestamp(now);
        if (absl::Status e = Transition(c, pb::CANDIDACY_STATE_DELIBERATED, p.ToString(), now, d.name()); !e.ok()) {
          return e;
        }
        auto version = referential_.GetVersion(c.referential_version());
        if (!version.ok()) return version.status();
        const int today = ToYyyymmdd(now);
        const int months = (*version)->validation_rules().acquired_bloc_validity_months();
        for (const std::string& bloc : d.proposed_blocs()) {
          LedgerEntry entry{c.candidate_id(), CertificationCodeOf(c.referential_version()), bloc, today,
                            months > 0 ? AddMonths(today, months) : 0, d.name()};
          if (absl::Status e = tx.AddLedgerEntry(entry); !e.ok()) return e;
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<pb::Deliberation> Evaluation::RevokeDeliberation(const P& p, const pb::RevokeDeliberationRequest& r) {
  if (absl::Status s = CertifierOnly(p, "revoke a result"); !s.ok()) return s;
  if (r.reason().empty()) return InvalidArgument("reason", "a revocation gives its reason");
  auto parts = aip::ParseName(kDeliberationPattern, r.name(), "name");
  if (!parts.ok()) return parts.status();
  const std::string candidacy_id = (*parts)[0];
  int round = 0;
  if (!ParseRound((*parts)[1], &round)) {
    return InvalidArgument("name", "the deliberation segment is a round number (1, 2, ...)");
  }
  const absl::Time now = clock_.Now();
  std::string next_name;
  absl::Status st = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
    auto c = tx.GetCandidacy(candidacy_id);
    if (!c.ok()) return c.status();
    if (absl::Status a = Access::Candidacy(p, c->value, tx); !a.ok()) return a;
    auto d = tx.GetDeliberation(candidacy_id, round);
    if (!d.ok()) return d.status();
    if (d->value.state() != pb::DELIBERATION_STATE_SEALED) {
      return FailedPrecondition("DELIBERATION_NOT_SEALED", r.name(), "only a sealed result can be revoked");
    }
    if (c->value.state() != pb::CANDIDACY_STATE_DELIBERATED) {
      return FailedPrecondition("INVALID_STATE", c->value.name(),
                                absl::StrCat(c->value.name(), " is ", StateShortName(c->value.state()),
                                             ": a result is revoked before the certificate is issued"));
    }
    // Only the current result: an absence sealed before the candidate's later passage is history.
    auto latest = tx.LatestDeliberationRound(candidacy_id);
    if (!latest.ok()) return latest.status();
    if (*latest != round) {
      return FailedPrecondition("NOT_CURRENT_RESULT", r.name(),
                                absl::StrCat("round ", *latest, " is the candidacy's current result"));
    }
    d->value.set_state(pb::DELIBERATION_STATE_REVOKED);
    d->value.set_revocation_reason(r.reason());
    if (d->value.session().empty()) d->value.set_session(c->value.session());  // its jury, before it is left
    if (absl::Status s = tx.PutDeliberation(candidacy_id, round, d->value, d->version, now); !s.ok()) return s;
    // Deleting the result's entries waits for a certificate being issued on them (it locks the
    // ledger); its uses are seen after.
    // The ledger names the result by its stored name.
    if (absl::Status s = tx.RemoveLedgerEntries(d->value.name()); !s.ok()) return s;
    if (absl::Status s = CheckNotCountedByACertificate(tx, d->value.name()); !s.ok()) return s;
    if (absl::Status s = tx.RemoveLedgerUsesOfResult(d->value.name()); !s.ok()) return s;
    if (r.new_jury()) {
      // The jury itself was irregular (e.g. a member linked to the candidate): no round of it
      // can correct the result. The candidacy leaves that jury, whose members no longer see it,
      // and waits for another session; its sheets are set aside when it is scheduled there.
      if (absl::Status s = Transition(c->value, pb::CANDIDACY_STATE_DOSSIER_FILED, p.ToString(), now,
                                      absl::StrCat(r.reason(), " (", r.name(), " revoked for a new jury)"));
          !s.ok()) {
        return s;
      }
      if (absl::Status s = MarkSlotMoved(tx, c->value.session(), c->value.name(), now); !s.ok()) return s;
      c->value.clear_session();
      if (absl::Status s = tx.PutCandidacy(c->value, c->version, now); !s.ok()) return s;
      next_name = r.name();
      return tx.Audit({now, p.ToString(), "RevokeDeliberation", r.name(), "new jury"});
    }
    if (absl::Status s = Transition(c->value, pb::CANDIDACY_STATE_EVALUATED, p.ToString(), now, r.reason()); !s.ok()) {
      return s;
    }
    if (absl::Status s = tx.PutCandidacy(c->value, c->version, now); !s.ok()) return s;
    auto sheets = tx.ListScoreSheets(candidacy_id);
    if (!sheets.ok()) return sheets.status();
    std::vector<std::string> blocs(c->value.blocs_to_evaluate().begin(), c->value.blocs_to_evaluate().end());
    auto session = tx.GetSession(SessionIdOf(c->value.session()));
    if (!session.ok()) return session.status();
    if (AttendanceAt(session->value, c->value.name()) != pb::ATTENDANCE_PRESENT) {  // as OpenDeliberation: no one heard
      sheets->clear();
      blocs.clear();
    }
    auto next = NewRound(c->value, round + 1, *sheets, blocs, d->value.divergence_gap(), now);
    if (!next.ok()) return next.status();
    next_name = next->name();
    if (absl::Status s = tx.InsertDeliberation(candidacy_id, round + 1, *next, now); !s.ok()) return s;
    return tx.Audit({now, p.ToString(), "RevokeDeliberation", r.name(), ""});
  });
  if (!st.ok()) return st;
  pb::GetDeliberationRequest get;
  get.set_name(next_name);
  return GetDeliberation(p, get);
}

// --- Ledger and documents -----------------------------------------------------------------------

absl::StatusOr<pb::ListAcquiredBlocsResponse> Evaluation::ListAcquiredBlocs(const P& p,
                                                                             const pb::ListAcquiredBlocsRequest& r) {
  if (absl::Status s = CertifierOnly(p, "read a candidate's ledger"); !s.ok()) return s;
  auto candidate = IdOf(kCandidatePattern, r.parent(), "parent");
  if (!candidate.ok()) return candidate.status();
  if (!r.for_version().empty() &&
      !aip::ParseName(kVersionPattern, r.for_version(), "for_version").ok()) {
    return InvalidArgument("for_version", "must be certifications/{code}/versions/{n}");
  }
  // A certifier reads the ledger of its own candidates only (those it has a candidacy of): to any
  // other certifier the candidate does not exist.
  CandidacyQuery mine;
  mine.certifier = p.id;
  mine.candidate_id = *candidate;
  mine.limit = 1;
  auto own = repository_.ListCandidacies(mine);
  if (!own.ok()) return own.status();
  if (own->empty()) return NotFound(r.parent());
  std::vector<LedgerEntry> ledger;
  absl::Status st = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
    auto l = LedgerOf(tx, *candidate, p.id);
    if (!l.ok()) return l.status();
    ledger = *std::move(l);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  pb::ListAcquiredBlocsResponse out;
  for (const LedgerEntry& e : ledger) {
    pb::AcquiredBloc* b = out.add_blocs();
    b->set_certification_code(e.certification_code);
    b->set_bloc_code(e.bloc_code);
    *b->mutable_acquired_date() = DateFromKey(e.acquired_yyyymmdd);
    if (e.expiry_yyyymmdd > 0) *b->mutable_expiry_date() = DateFromKey(e.expiry_yyyymmdd);
    b->set_source_deliberation(e.source_deliberation);
  }
  if (!r.for_version().empty()) {
    auto version = referential_.GetVersion(r.for_version());
    if (!version.ok()) return version.status();
    const std::string code = CertificationCodeOf(r.for_version());
    std::vector<std::string> all;
    for (const ref::Bloc& b : (*version)->blocs()) all.push_back(b.code());
    for (const HeldBloc& h : HeldBlocs(all, code, **version, ledger, ToYyyymmdd(clock_.Now()))) {
      if (h.via.empty()) continue;  // already listed directly
      pb::AcquiredBloc* b = out.add_blocs();
      b->set_certification_code(code);
      b->set_bloc_code(h.bloc_code);
      b->set_via_correspondence(h.via);
    }
  }
  return out;
}

absl::StatusOr<pb::Document> Evaluation::RenderSynthesisGrid(const P& p, const pb::RenderSynthesisGridRequest& r) {
  // The grid names the candidate: never for the national statistics view.
  if (p.Is(Kind::kNational)) return absl::PermissionDeniedError("the synthesis grid is for the certifier and the jury");
  pb::GetDeliberationRequest get;
  get.set_name(r.name());
  auto d = GetDeliberation(p, get);
  if (!d.ok()) return d.status();
  if (d->state() != pb::DELIBERATION_STATE_SEALED && d->state() != pb::DELIBERATION_STATE_REVOKED) {
    return FailedPrecondition("DELIBERATION_NOT_SEALED", d->name(), "the grid is printed once every member signed");
  }
  const std::string candidacy_name = d->name().substr(0, d->name().find("/deliberations/"));
  pb::GetCandidacyRequest get_candidacy;
  get_candidacy.set_name(candidacy_name);
  auto c = GetCandidacy(p, get_candidacy);
  if (!c.ok()) return c.status();
  // The jury that deliberated this round (a candidacy called again has rounds of several
  // sessions); the caller may read the candidacy, so it reads the names on its grid.
  absl::StatusOr<pb::JurySession> s = absl::InternalError("unread");
  {
    const std::string session_name = SessionOfRound(*d, *c);
    absl::Status read = repository_.Transact([&](EvaluationTx& tx) -> absl::Status {
      auto stored = tx.GetSession(SessionIdOf(session_name));
      if (!stored.ok()) return stored.status();
      s = std::move(stored->value);
      return absl::OkStatus();
    });
    if (!read.ok()) return read;
  }
  auto version = referential_.GetVersion(c->referential_version());
  if (!version.ok()) return version.status();

  SynthesisGrid grid;
  grid.certification_title = c->certification_title();
  grid.certification_code = CertificationCodeOf(c->referential_version());
  grid.certification_kind = c->certification_kind();
  grid.candidate_name = c->candidate_display_name();
  grid.date = absl::FormatTime("%d/%m/%Y", FromTimestamp(d->seal_time()), absl::UTCTimeZone());
  // The blocs held when the round opened. Held blocs only ever leave a candidacy: an empty
  // record is a round opened with none held (none are now) or before the record existed.
  const auto& held = d->held_blocs_size() > 0 ? d->held_blocs() : c->held_blocs();
  const bool heard = !NotHeard(d->proposal());
  for (const ref::Bloc& bloc : (*version)->blocs()) {
    const bool targeted = std::find(c->target_blocs().begin(), c->target_blocs().end(), bloc.code()) !=
                          c->target_blocs().end();
    if (!targeted) continue;
    SynthesisGrid::Bloc row;
    row.code = bloc.code();
    row.label = bloc.short_label().empty() ? bloc.title() : bloc.short_label();
    row.held = std::find(held.begin(), held.end(), bloc.code()) != held.end();
    // An absent or excused candidate's blocs were not appreciated (rounds sealed before
    // RecordDecision refused appreciations for them may still carry some).
    row.appreciated = false;
    for (const pb::BlocAppreciation& a : d->appreciations()) {
      if (a.bloc_code() != bloc.code() || !heard) continue;
      row.appreciated = true;
      row.common_percent = a.common_percent();
      row.comment = a.justification().empty() ? a.comment() : absl::StrCat(a.comment(), " — ", a.justification());
      row.acquired = a.acquired() && GrantsBlocs(d->proposal());  // rounds sealed before the flag followed it
    }
    if (row.held) row.acquired = true;
    grid.blocs.push_back(row);
  }
  grid.proposal = ProposalText(*d);
  grid.comment = d->comment();
  grid.revoked = d->state() == pb::DELIBERATION_STATE_REVOKED;
  grid.revocation_reason = d->revocation_reason();
  for (const pb::JuryMember& m : s->members()) {
    SynthesisGrid::Member member{m.display_name(), m.function(), CollegeText(m.college()), m.president(), ""};
    for (const pb::Signature& sig : d->signatures()) {
      if (sig.member_id() == m.member_id()) {
        member.signed_at = absl::FormatTime("%d/%m/%Y %H:%M", FromTimestamp(sig.time()), absl::UTCTimeZone());
      }
    }
    grid.members.push_back(member);
  }
  auto pdf = RenderSynthesisGridPdf(grid);
  if (!pdf.ok()) return pdf.status();
  pb::Document doc;
  doc.set_content_type("application/pdf");
  doc.set_filename(absl::StrCat("grille-synthese-", grid.certification_code, "-",
                                CandidacyIdOf(candidacy_name), ".pdf"));
  doc.set_content(*std::move(pdf));
  return doc;
}

// --- National statistics ------------------------------------------------------------------------

absl::StatusOr<pb::OutcomeStatistics> Evaluation::GetOutcomeStatistics(const P& p,
                                                                       const pb::GetOutcomeStatisticsRequest& r) {
  if (absl::Status s = NationalOnly(p, "read the outcome statistics"); !s.ok()) return s;
  auto terms = aip::ParseFilter(r.filter(), {"certification="});
  if (!terms.ok()) return terms.status();
  SealedResultQuery q;
  for (const aip::FilterTerm& t : *terms) q.certification_code = t.value;
  Violations v;
  auto date_key = [&](const google::type::Date& d, const char* field, int unset) {
    if (d.year() == 0 && d.month() == 0 && d.day() == 0) return unset;
    if (!IsCalendarDate(d)) {
      v.Add(field, "must be a calendar date");
      return unset;
    }
    return DateKey(d);
  };
  const int from = date_key(r.from_date(), "from_date", 0);
  const int to = date_key(r.to_date(), "to_date", 99999999);
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  if (from > to) return InvalidArgument("to_date", "must not be before from_date");

  struct Counts {
    pb::CertificationOutcomeCount certification;
    std::map<std::string, pb::BlocOutcomeCount> blocs;
  };
  std::map<std::string, Counts> by_code;
  const auto count = [&](const SealedResult& result) {
    const pb::Deliberation& d = result.deliberation;
    const int sealed = ToYyyymmdd(FromTimestamp(d.seal_time()));
    if (sealed < from || sealed > to) return;
    Counts& counts = by_code[result.certification_code];
    pb::CertificationOutcomeCount& c = counts.certification;
    c.set_certification_code(result.certification_code);
    c.set_decided(c.decided() + 1);
    switch (d.proposal()) {
      case pb::PROPOSAL_KIND_TOTAL:
        c.set_total(c.total() + 1);
        break;
      case pb::PROPOSAL_KIND_PARTIAL:
        c.set_partial(c.partial() + 1);
        break;
      case pb::PROPOSAL_KIND_REFUSAL:
        c.set_refusal(c.refusal() + 1);
        break;
      case pb::PROPOSAL_KIND_CANDIDATE_ABSENT:
        c.set_candidate_absent(c.candidate_absent() + 1);
        break;
      case pb::PROPOSAL_KIND_CANDIDATE_EXCUSED:
        c.set_candidate_excused(c.candidate_excused() + 1);
        break;
      default:
        break;
    }
    // An absent or excused candidate's blocs were not evaluated (results sealed before
    // RecordDecision refused appreciations for them may still carry some).
    if (NotHeard(d.proposal())) {
      return;
    }
    for (const pb::BlocAppreciation& a : d.appreciations()) {
      pb::BlocOutcomeCount& b = counts.blocs[a.bloc_code()];
      b.set_bloc_code(a.bloc_code());
      b.set_evaluated(b.evaluated() + 1);
      if (a.acquired() && GrantsBlocs(d.proposal())) b.set_acquired(b.acquired() + 1);
    }
  };
  // Keyset pages over the current results (ListSealedResults: a candidacy's latest round, when
  // sealed): memory stays bounded by the number of certifications and blocs, not of results.
  while (true) {
    auto page = repository_.ListSealedResults(q);
    if (!page.ok()) return page.status();
    for (const SealedResult& result : *page) count(result);
    if (static_cast<int>(page->size()) < q.limit) break;
    q.after_candidacy_id = page->back().candidacy_id;
    q.after_round = page->back().round;
  }
  pb::OutcomeStatistics out;
  for (auto& [code, counts] : by_code) {
    pb::CertificationOutcomeCount* c = out.add_certifications();
    *c = std::move(counts.certification);
    for (auto& [bloc, count] : counts.blocs) *c->add_blocs() = std::move(count);
  }
  return out;
}

// --- gRPC adapter -------------------------------------------------------------------------------

namespace {

class GrpcService final : public pb::EvaluationService::Service {
 public:
  explicit GrpcService(Evaluation& logic) : logic_(logic) {}

#define PARCOURS_EVALUATION_METHOD(Method, Request, Response)                                   \
  grpc::Status Method(grpc::ServerContext* ctx, const pb::Request* r, pb::Response* out) override { \
    auto principal = PrincipalOf(*ctx);                                                        \
    if (!principal.ok()) return Reply(principal.status());                                     \
    return Reply(logic_.Method(*principal, *r), out);                                          \
  }
  PARCOURS_EVALUATION_METHOD(CreateCandidacy, CreateCandidacyRequest, Candidacy)
  PARCOURS_EVALUATION_METHOD(GetCandidacy, GetCandidacyRequest, Candidacy)
  PARCOURS_EVALUATION_METHOD(GetCandidacyProgress, GetCandidacyProgressRequest, CandidacyProgress)
  PARCOURS_EVALUATION_METHOD(ListCandidacies, ListCandidaciesRequest, ListCandidaciesResponse)
  PARCOURS_EVALUATION_METHOD(RequestAdmissibility, RequestAdmissibilityRequest, Candidacy)
  PARCOURS_EVALUATION_METHOD(DecideAdmissibility, DecideAdmissibilityRequest, Candidacy)
  PARCOURS_EVALUATION_METHOD(FileDossier, FileDossierRequest, Candidacy)
  PARCOURS_EVALUATION_METHOD(WithdrawCandidacy, WithdrawCandidacyRequest, Candidacy)
  PARCOURS_EVALUATION_METHOD(IssueCertificate, IssueCertificateRequest, Candidacy)
  PARCOURS_EVALUATION_METHOD(CreateJurySession, CreateJurySessionRequest, JurySession)
  PARCOURS_EVALUATION_METHOD(GetJurySession, GetJurySessionRequest, JurySession)
  PARCOURS_EVALUATION_METHOD(ListJurySessions, ListJurySessionsRequest, ListJurySessionsResponse)
  PARCOURS_EVALUATION_METHOD(UpdateJurySession, UpdateJurySessionRequest, JurySession)
  PARCOURS_EVALUATION_METHOD(ScheduleCandidacy, ScheduleCandidacyRequest, JurySession)
  PARCOURS_EVALUATION_METHOD(ConfirmPreparation, ConfirmPreparationRequest, JurySession)
  PARCOURS_EVALUATION_METHOD(StartJurySession, StartJurySessionRequest, JurySession)
  PARCOURS_EVALUATION_METHOD(RecordPassage, RecordPassageRequest, JurySession)
  PARCOURS_EVALUATION_METHOD(GetSessionReport, GetSessionReportRequest, SessionReport)
  PARCOURS_EVALUATION_METHOD(SubmitScoreSheet, SubmitScoreSheetRequest, ScoreSheet)
  PARCOURS_EVALUATION_METHOD(GetScoreSheet, GetScoreSheetRequest, ScoreSheet)
  PARCOURS_EVALUATION_METHOD(OpenDeliberation, OpenDeliberationRequest, Deliberation)
  PARCOURS_EVALUATION_METHOD(GetDeliberation, GetDeliberationRequest, Deliberation)
  PARCOURS_EVALUATION_METHOD(RecordDecision, RecordDecisionRequest, Deliberation)
  PARCOURS_EVALUATION_METHOD(SignDeliberation, SignDeliberationRequest, Deliberation)
  PARCOURS_EVALUATION_METHOD(RevokeDeliberation, RevokeDeliberationRequest, Deliberation)
  PARCOURS_EVALUATION_METHOD(ListAcquiredBlocs, ListAcquiredBlocsRequest, ListAcquiredBlocsResponse)
  PARCOURS_EVALUATION_METHOD(RenderSynthesisGrid, RenderSynthesisGridRequest, Document)
  PARCOURS_EVALUATION_METHOD(GetOutcomeStatistics, GetOutcomeStatisticsRequest, OutcomeStatistics)
#undef PARCOURS_EVALUATION_METHOD

 private:
  Evaluation& logic_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewGrpcService(Evaluation& logic) { return std::make_unique<GrpcService>(logic); }

}  // namespace parcours::evaluation
