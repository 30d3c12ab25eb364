#include "cep-svc/src/service.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <thread>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/message_differencer.h"
#include "platform/errors.h"
#include "platform/grpc_reply.h"
#include "platform/idempotency.h"
#include "platform/log.h"
#include "platform/proto_time.h"
#include "cep-svc/src/rules.h"

namespace parcours::cep {
namespace {

using Kind = Principal::Kind;

constexpr char kOperatorPattern[] = "operators/{operator}";
constexpr char kBeneficiaryPattern[] = "beneficiaries/{beneficiary}";
constexpr char kCasePattern[] = "cases/{case}";
constexpr char kTransferPattern[] = "transfers/{transfer}";
// The actor of the history entry an erasure leaves on the person's files at other operators.
constexpr char kErasureActor[] = "erasure-request";

std::string NewId() {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen = new absl::BitGen();
  absl::MutexLock lock(&mu);
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(*gen));
}

std::string OperatorName(const std::string& id) { return absl::StrCat("operators/", id); }

// The segment after the collection of a name already checked ("cases/x" -> "x").
std::string LastSegment(const std::string& name) {
  const size_t slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

// Parses a one-segment resource name into `v`; returns its id ("" when bad).
std::string IdIn(const char* pattern, const std::string& name, const std::string& field, Violations& v) {
  if (name.empty()) {
    v.Add(field, absl::StrCat("is required (", pattern, ")"));
    return "";
  }
  auto parts = aip::ParseName(pattern, name, field);
  if (!parts.ok()) {
    v.Add(field, absl::StrCat("must be ", pattern));
    return "";
  }
  return parts->front();
}

// The first instant of a civil day in France.
absl::Time StartOfDay(int yyyymmdd) {
  return absl::FromCivil(absl::CivilDay(yyyymmdd / 10000, (yyyymmdd / 100) % 100, yyyymmdd % 100), FranceTimeZone());
}

absl::Time EndOfDay(int yyyymmdd) {
  return absl::FromCivil(absl::CivilDay(yyyymmdd / 10000, (yyyymmdd / 100) % 100, yyyymmdd % 100) + 1,
                         FranceTimeZone());
}

int64_t MicrosOf(const google::protobuf::Timestamp& ts) { return absl::ToUnixMicros(FromTimestamp(ts)); }

// A date field that is required and must be a calendar day.
void CheckRequiredDay(bool set, const google::type::Date& d, const std::string& field, Violations& v) {
  if (!set || DateKey(d) == 0) {
    v.Add(field, "is required");
  } else if (!IsCalendarDate(d)) {
    v.Add(field, "must be a calendar date");
  }
}

void CheckEtagFormat(const std::string& etag, const std::string& field, Violations& v) {
  if (!aip::ParseEtag(etag, field).ok()) v.Add(field, "is not an etag returned by this service");
}

absl::Status CheckEtag(const std::string& etag, int64_t version, const std::string& name) {
  auto expected = aip::ParseEtag(etag, "etag");
  if (!expected.ok()) return expected.status();
  if (expected->has_value() && **expected != version) return EtagMismatch(name);
  return absl::OkStatus();
}

void CheckText(const std::string& value, const std::string& field, size_t max, bool required, Violations& v) {
  if (value.empty()) {
    if (required) v.Add(field, "is required");
    return;
  }
  if (value.size() > max) v.Add(field, absl::StrCat("must be at most ", max, " bytes"));
}

int ThisYear(absl::Time now) { return static_cast<int>(absl::ToCivilYear(now, FranceTimeZone()).year()); }

std::string MonthOf(int yyyymmdd) { return absl::StrFormat("%04d-%02d", yyyymmdd / 10000, yyyymmdd / 100 % 100); }

std::string StateName(pb::CaseState s) {
  const std::string n = pb::CaseState_Name(s);
  return n.substr(std::string("CASE_STATE_").size());
}

// Case work is for operators only.
absl::Status OperatorOnly(const Principal& p) {
  if (p.Is(Kind::kOperator)) return absl::OkStatus();
  return absl::PermissionDeniedError("only a CEP operator works on beneficiaries, cases and transfers");
}

// Two batches of case openings at once: one is prepared while the other waits on the database
// (measured: bench/README.md, case creation; with the redo log flushed at every commit, 1 writer
// gave 2,135 OpenCase/s, 2 gave 3,312/s, 4 gave 1,894/s: the batches then wait on each other's
// rollup rows).
constexpr int kCaseOpeningWriters = 2;

// A new case's state, first history entry and last activity (OpenCase and ImportCases).
void MarkOpened(pb::Case& c, const std::string& actor, absl::Time now) {
  c.set_state(pb::CASE_STATE_OPEN);
  pb::CaseStateChange* opened = c.add_history();
  opened->set_to(pb::CASE_STATE_OPEN);
  opened->set_actor(actor);
  *opened->mutable_time() = ToTimestamp(now);
  opened->set_reason("case opened");
  *c.mutable_last_activity_time() = ToTimestamp(now);
}

// The calling operator as in the directory, without its designations (the checks that need them
// read a region's with ListDesignations).
absl::StatusOr<pb::Operator> KnownOperator(CepTx& tx, const Principal& p) {
  auto op = tx.FindOperator(p.id);
  if (absl::IsNotFound(op.status())) {
    return absl::PermissionDeniedError(absl::StrCat(p.ToString(), " is not in the CEP operator directory"));
  }
  return op;
}

// The operator a change applies to, at the version the caller read (`etag`, may be empty).
absl::StatusOr<Versioned<pb::Operator>> OperatorToChange(CepTx& tx, const std::string& id, const std::string& name,
                                                         const std::string& etag) {
  auto op = tx.GetOperator(id);
  if (absl::IsNotFound(op.status())) return NotFound(name);
  if (!op.ok()) return op.status();
  if (absl::Status s = CheckEtag(etag, op->version, name); !s.ok()) return s;
  return op;
}

// The operator as stored after a change (designations, etag): what the change answers.
absl::Status ReadBackOperator(CepTx& tx, const std::string& id, pb::Operator& out) {
  auto stored = tx.GetOperator(id);
  if (!stored.ok()) return stored.status();
  out = std::move(stored->value);
  out.set_etag(aip::Etag(stored->version));
  return absl::OkStatus();
}

// Directory readers: national, regions and the operators of the directory.
absl::Status CepPrincipal(CepTx& tx, const Principal& p) {
  if (p.Is(Kind::kNational) || p.Is(Kind::kRegion)) return absl::OkStatus();
  if (p.Is(Kind::kOperator)) return KnownOperator(tx, p).status();
  return absl::PermissionDeniedError("the CEP directory is for national, regional and operator callers");
}

bool ActiveState(pb::CaseState s) { return s == pb::CASE_STATE_OPEN || s == pb::CASE_STATE_CLOSED; }

// The holder sees its case until the case is transferred away; an anonymised case stays its
// record (statistics only), unless it was anonymised after being transferred away.
bool Holds(const Principal& p, const pb::Case& c) {
  return c.operator_() == OperatorName(p.id) && !TransferredAway(c);
}

// The beneficiary as an operator that sees it knows it (the situation it recorded), or nullopt
// when it does not see it or the pseudonym is unknown. An operator sees a beneficiary while it
// holds an open or closed case of it, or when it registered it (its contact row exists).
absl::StatusOr<std::optional<pb::Beneficiary>> BeneficiaryAs(CepTx& tx, const std::string& operator_id,
                                                             const std::string& pseudonym) {
  auto seen = tx.GetBeneficiariesSeenBy(operator_id, {pseudonym});
  if (!seen.ok()) return seen.status();
  auto it = seen->find(pseudonym);
  if (it == seen->end()) return std::optional<pb::Beneficiary>();
  return std::optional<pb::Beneficiary>(std::move(it->second));
}

absl::Status Audit(CepTx& tx, absl::Time now, const Principal& p, const std::string& action,
                   const std::string& resource, const std::string& detail = "") {
  return tx.Audit({now, p.ToString(), action, resource, detail});
}

void CheckDemands(const google::protobuf::RepeatedField<int>& demands, const std::string& field, Violations& v) {
  if (demands.empty()) v.Add(field, "at least one demand");
  std::set<int> seen;
  for (int i = 0; i < demands.size(); ++i) {
    const int d = demands.Get(i);
    if (d == pb::DEMAND_KIND_UNSPECIFIED || !pb::DemandKind_IsValid(d)) {
      v.Add(absl::StrCat(field, "[", i, "]"), "must be a known demand kind");
    } else if (!seen.insert(d).second) {
      v.Add(absl::StrCat(field, "[", i, "]"), "is repeated");
    }
  }
}

// A date value in a filter: YYYY-MM-DD.
absl::StatusOr<int> FilterDate(const std::string& value) {
  std::optional<int> key = ParseDateKey(value);
  if (!key) return InvalidArgument("filter", "opened takes a calendar date YYYY-MM-DD");
  return *key;
}


template <typename Enum, typename Parse>
absl::StatusOr<Enum> EnumValue(const std::string& prefix, const std::string& value, Parse parse,
                               const std::string& what) {
  Enum e;
  if (!parse(absl::StrCat(prefix, value), &e) || static_cast<int>(e) == 0) {
    return InvalidArgument("filter", absl::StrCat("unknown ", what, " ", value));
  }
  return e;
}

// Reads every page of a list: `fetch(after, limit)`.
template <typename T, typename Fetch, typename IdOf>
absl::StatusOr<std::vector<T>> ReadAll(Fetch fetch, IdOf id_of) {
  std::vector<T> all;
  std::string after;
  constexpr int kBatch = 200;
  for (;;) {
    absl::StatusOr<std::vector<T>> batch = fetch(after, kBatch);
    if (!batch.ok()) return batch.status();
    if (batch->empty()) break;
    after = id_of(batch->back());
    const size_t n = batch->size();
    for (T& item : *batch) all.push_back(std::move(item));
    if (static_cast<int>(n) < kBatch) break;
  }
  return all;
}

}  // namespace

Cep::Cep(CepRepository& repository, const Clock& clock, aip::PageTokenCodec page_tokens, std::string pseudonym_key,
         FeedOptions feed, ImportOptions import)
    : repository_(repository),
      read_audit_([this](const std::vector<AuditEntry>& entries) {
        return repository_.Transact([&](CepTx& tx) { return tx.Audits(entries); });
      }),
      case_openings_([this](const std::vector<CaseOpening>& jobs) { return WriteCaseOpenings(jobs); },
                     kCaseOpeningWriters),
      clock_(clock),
      page_tokens_(std::move(page_tokens)),
      pseudonym_key_(std::move(pseudonym_key)),
      feed_(feed),
      import_(import) {}

absl::StatusOr<pb::ActivityEvent> Cep::EventFor(CepTx& tx, const pb::Case& c, pb::ActivityKind kind, int yyyymmdd,
                                                const pb::Beneficiary* beneficiary) {
  // The region the case is counted in (where the person lived at its opening), which a later
  // registration elsewhere does not move.
  std::string region;
  if (beneficiary != nullptr) {
    region = beneficiary->region();
  } else {
    auto subject = tx.GetCaseSubject(LastSegment(c.name()));
    if (!subject.ok()) return subject.status();
    region = subject->region;
  }
  pb::ActivityEvent e;
  e.set_kind(kind);
  *e.mutable_time() = ToTimestamp(clock_.Now());
  e.set_operator_(c.operator_());
  e.set_case_(c.name());
  e.set_beneficiary(c.beneficiary());
  e.set_region(region);
  e.set_month(MonthOf(yyyymmdd));
  e.set_level(c.level());
  return e;
}

absl::StatusOr<std::shared_ptr<const std::vector<pb::LevelCatalogue>>> Cep::LevelCatalogues(CepTx& tx) {
  {
    absl::MutexLock lock(&catalogues_mu_);
    if (catalogues_ != nullptr) return catalogues_;
  }
  auto loaded = tx.ListLevelCatalogues();
  if (!loaded.ok()) return loaded.status();
  auto shared = std::make_shared<const std::vector<pb::LevelCatalogue>>(*std::move(loaded));
  absl::MutexLock lock(&catalogues_mu_);
  if (catalogues_ == nullptr) catalogues_ = shared;
  return catalogues_;
}

// --- Operators ----------------------------------------------------------------------------------

absl::StatusOr<pb::Operator> Cep::CreateOperator(const P& p, const pb::CreateOperatorRequest& r) {
  if (absl::Status s = NationalOnly(p, "add an operator to the directory"); !s.ok()) return s;
  Violations v;
  const std::string& id = r.operator_id();
  if (id.size() < 2 || id.size() > 64 || id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
    v.Add("operator_id", "must be 2..64 characters among a-z, 0-9 and '-'");
  }
  if (!r.has_operator_()) {
    v.Add("operator", "is required");
  } else {
    CheckOperator(r.operator_(), "operator", v);
  }
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  const absl::Time now = clock_.Now();
  const std::string name = OperatorName(id);
  pb::Operator out;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    auto existing = tx.GetOperator(id);
    if (existing.ok()) return AlreadyExists(name);
    if (!absl::IsNotFound(existing.status())) return existing.status();
    pb::Operator op = r.operator_();
    op.set_name(name);
    op.clear_designations();  // OUTPUT_ONLY: added by DesignateOperator
    op.clear_right_withdrawn_from();  // OUTPUT_ONLY: WithdrawOperator's
    op.clear_withdrawal_reason();
    op.clear_etag();
    *op.mutable_create_time() = ToTimestamp(now);  // OUTPUT_ONLY
    if (absl::Status s = tx.InsertOperator(op); !s.ok()) return s;
    if (absl::Status s = Audit(tx, now, p, "CreateOperator", name); !s.ok()) return s;
    return ReadBackOperator(tx, id, out);
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<pb::Operator> Cep::GetOperator(const P& p, const pb::GetOperatorRequest& r) {
  Violations v;
  const std::string id = IdIn(kOperatorPattern, r.name(), "name", v);
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  pb::Operator out;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    if (absl::Status s = CepPrincipal(tx, p); !s.ok()) return s;
    auto op = tx.GetOperator(id);
    if (absl::IsNotFound(op.status())) return NotFound(r.name());
    if (!op.ok()) return op.status();
    out = op->value;
    out.set_etag(aip::Etag(op->version));
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<pb::ListOperatorsResponse> Cep::ListOperators(const P& p, const pb::ListOperatorsRequest& r) {
  if (absl::Status s = repository_.Transact([&](CepTx& tx) { return CepPrincipal(tx, p); }); !s.ok()) return s;
  auto terms = aip::ParseFilter(r.filter(), {"kind=", "region="});
  if (!terms.ok()) return terms.status();
  OperatorQuery q;
  for (const aip::FilterTerm& t : *terms) {
    if (t.field == "kind") {
      auto kind = EnumValue<pb::OperatorKind>("OPERATOR_KIND_", t.value, pb::OperatorKind_Parse, "operator kind");
      if (!kind.ok()) return kind.status();
      q.kind = *kind;
    }
    if (t.field == "region") {
      if (!IsRegion(t.value)) return InvalidArgument("filter", absl::StrCat("unknown region ", t.value));
      q.region = t.value;
    }
  }
  const std::string scope = absl::StrCat("ListOperators\n", r.filter());
  auto page = aip::Paginate<pb::Operator>(
      page_tokens_, scope, r.page_size(), r.page_token(),
      [&](const std::string& cursor, int limit) {
        q.after_id = cursor;
        q.limit = limit;
        return repository_.ListOperators(q);
      },
      [](const pb::Operator& op) { return LastSegment(op.name()); });
  if (!page.ok()) return page.status();
  pb::ListOperatorsResponse out;
  for (pb::Operator& op : page->items) *out.add_operators() = std::move(op);
  out.set_next_page_token(page->next_page_token);
  return out;
}

absl::StatusOr<pb::Operator> Cep::DesignateOperator(const P& p, const pb::DesignateOperatorRequest& r) {
  if (absl::Status s = NationalOnly(p, "designate a regional operator"); !s.ok()) return s;
  Violations v;
  const std::string id = IdIn(kOperatorPattern, r.name(), "name", v);
  if (!r.has_period()) {
    v.Add("period", "is required");
  } else {
    CheckDesignation(r.period(), "period", v);
  }
  CheckEtagFormat(r.etag(), "etag", v);
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  const absl::Time now = clock_.Now();
  pb::Operator out;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    auto op = OperatorToChange(tx, id, r.name(), r.etag());
    if (!op.ok()) return op.status();
    if (op->value.kind() != pb::OPERATOR_KIND_REGIONAL_EMPLOYED) {
      return FailedPrecondition("NOT_A_REGIONAL_OPERATOR", r.name(),
                                absl::StrCat(r.name(), " is ", pb::OperatorKind_Name(op->value.kind()),
                                             ": only regional operators for employed people are designated"));
    }
    const auto& regions = op->value.regions();
    if (std::find(regions.begin(), regions.end(), r.period().region()) == regions.end()) {
      return FailedPrecondition("REGION_NOT_SERVED", r.name(),
                                absl::StrCat(r.name(), " does not list region ", r.period().region()));
    }
    Designation added{id, r.period().region(), DateKey(r.period().start_date()),
                      r.period().has_end_date() ? DateKey(r.period().end_date()) : 0};
    if (absl::Status s = tx.LockDesignations(added.region); !s.ok()) return s;
    auto existing = tx.ListDesignations(added.region);
    if (!existing.ok()) return existing.status();
    if (absl::Status s = CheckNoOverlap(*existing, added); !s.ok()) return s;
    if (absl::Status s = tx.AddDesignation(added, op->version); !s.ok()) return s;
    if (absl::Status s = Audit(tx, now, p, "DesignateOperator", r.name(), added.region); !s.ok()) return s;
    return ReadBackOperator(tx, id, out);
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<pb::Operator> Cep::WithdrawOperator(const P& p, const pb::WithdrawOperatorRequest& r) {
  if (absl::Status s = NationalOnly(p, "withdraw an operator's right to deliver CEP"); !s.ok()) return s;
  Violations v;
  const std::string id = IdIn(kOperatorPattern, r.name(), "name", v);
  CheckRequiredDay(r.has_effective_date(), r.effective_date(), "effective_date", v);
  const absl::Time now = clock_.Now();
  const int today = Today(now);
  if (IsCalendarDate(r.effective_date()) && DateKey(r.effective_date()) < today) {
    v.Add("effective_date", "must be today or later: what the operator did before stays valid");
  }
  CheckText(r.reason(), "reason", 500, true, v);
  CheckEtagFormat(r.etag(), "etag", v);
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;

  pb::Operator out;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    auto op = OperatorToChange(tx, id, r.name(), r.etag());
    if (!op.ok()) return op.status();
    // Silence as of now, by the compliance report's rule, read under the activity lock: an event
    // of the operator being appended meanwhile is seen (read before the transaction, it was not).
    auto last = tx.LastOwnActivityLocked(id, absl::ToUnixMicros(EndOfDay(today)));
    if (!last.ok()) return last.status();
    const Sharing shared = SharingFrom(*last, today);
    if (op->value.has_right_withdrawn_from()) {
      return FailedPrecondition("ALREADY_WITHDRAWN", r.name(),
                                absl::StrCat(r.name(), "'s right to deliver CEP is withdrawn from ",
                                             FormatDateKey(DateKey(op->value.right_withdrawn_from()))));
    }
    std::string not_silent;  // why not, with the day
    if (!shared.silent_six_months) {
      const absl::Time last = absl::FromUnixMicros(*shared.last_micros);
      not_silent = absl::StrCat(" shared activity on ", absl::FormatTime("%Y-%m-%d", last, FranceTimeZone()));
    } else if (!OldEnoughToBeSilent(op->value, today)) {
      const absl::Time created = FromTimestamp(op->value.create_time());
      not_silent = absl::StrCat(" entered the directory on ", absl::FormatTime("%Y-%m-%d", created, FranceTimeZone()));
    }
    if (!not_silent.empty()) {
      return FailedPrecondition(
          "OPERATOR_NOT_SILENT", r.name(),
          absl::StrCat(r.name(), not_silent, ": only an operator silent for 6 months loses its right"));
    }
    pb::Operator changed = op->value;
    *changed.mutable_right_withdrawn_from() = r.effective_date();
    changed.set_withdrawal_reason(r.reason());
    if (absl::Status s = tx.PutOperator(changed, op->version); !s.ok()) return s;
    if (absl::Status s = Audit(tx, now, p, "WithdrawOperator", r.name(), FormatDateKey(DateKey(r.effective_date())));
        !s.ok()) {
      return s;
    }
    return ReadBackOperator(tx, id, out);
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<pb::ListLevelCataloguesResponse> Cep::ListLevelCatalogues(const P& p,
                                                                          const pb::ListLevelCataloguesRequest&) {
  pb::ListLevelCataloguesResponse out;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    if (absl::Status s = CepPrincipal(tx, p); !s.ok()) return s;
    auto catalogues = tx.ListLevelCatalogues();
    if (!catalogues.ok()) return catalogues.status();
    for (pb::LevelCatalogue& c : *catalogues) *out.add_catalogues() = std::move(c);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

// --- Beneficiaries ------------------------------------------------------------------------------

absl::StatusOr<pb::Beneficiary> Cep::RegisterBeneficiary(const P& p, const pb::RegisterBeneficiaryRequest& r) {
  if (absl::Status s = OperatorOnly(p); !s.ok()) return s;
  const absl::Time now = clock_.Now();
  Violations v;
  CheckText(r.external_id(), "external_id", 256, true, v);
  if (!r.has_beneficiary()) {
    v.Add("beneficiary", "is required");
  } else {
    CheckBeneficiary(r.beneficiary(), ThisYear(now), "beneficiary", v);
  }
  if (r.has_contact()) {
    CheckContact(r.contact(), "contact", v);  // contact.beneficiary is set by the service
  }
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;

  const std::string pseudonym = Pseudonym(pseudonym_key_, r.external_id());
  const std::string name = absl::StrCat("beneficiaries/", pseudonym);
  pb::Beneficiary out;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    if (absl::Status s = KnownOperator(tx, p).status(); !s.ok()) return s;
    if (absl::Status s = tx.LockBeneficiaries({pseudonym}); !s.ok()) return s;  // an erasure may be running
    pb::Beneficiary b = r.beneficiary();
    b.set_name(name);
    b.set_anonymised(false);
    if (b.region().empty()) b.set_region(RegionOfDepartment(b.department()));
    auto inserted = tx.InsertBeneficiaryIfAbsent(b, now);
    if (!inserted.ok()) return inserted.status();
    // A person registered again after anonymisation or erasure is a live beneficiary again, with
    // the attributes given now; the old anonymised cases stay anonymised. A live person's shared
    // record keeps its first registration's situation: another operator's registration must
    // neither show this one what it entered nor change what it counts.
    bool revived = false;
    if (!*inserted) {
      auto again = tx.ReviveBeneficiary(b);
      if (!again.ok()) return again.status();
      revived = *again;
    }
    // The contact details and the situation given now are this operator's own record of the
    // person (what it sees, what its cases count); a registration without contact details keeps
    // those it had, or records that this operator knows the beneficiary.
    auto contact = tx.GetContact(pseudonym, p.id);
    if (!contact.ok()) return contact.status();
    pb::ContactDetails c = r.has_contact() || !contact->has_value() ? r.contact() : **contact;
    c.set_beneficiary(name);
    if (absl::Status s = tx.PutContact(pseudonym, p.id, c, b, now); !s.ok()) return s;
    if (absl::Status s = Audit(tx, now, p, "RegisterBeneficiary", name, *inserted ? "new" : revived ? "revived" : "known");
        !s.ok()) {
      return s;
    }
    auto stored = BeneficiaryAs(tx, p.id, pseudonym);
    if (!stored.ok()) return stored.status();
    if (!stored->has_value()) return absl::InternalError(absl::StrCat(name, " unseen after its registration"));
    out = **std::move(stored);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<pb::Beneficiary> Cep::GetBeneficiary(const P& p, const pb::GetBeneficiaryRequest& r) {
  if (absl::Status s = OperatorOnly(p); !s.ok()) return s;
  Violations v;
  const std::string pseudonym = IdIn(kBeneficiaryPattern, r.name(), "name", v);
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  const absl::Time now = clock_.Now();
  pb::Beneficiary out;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    if (absl::Status s = KnownOperator(tx, p).status(); !s.ok()) return s;
    auto b = BeneficiaryAs(tx, p.id, pseudonym);
    if (!b.ok()) return b.status();
    if (!b->has_value()) return NotFound(r.name());
    out = **std::move(b);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  if (absl::Status s = read_audit_.Submit({now, p.ToString(), "GetBeneficiary", r.name(), ""}); !s.ok()) return s;
  return out;
}

absl::StatusOr<pb::ContactDetails> Cep::UpdateContactDetails(const P& p, const pb::UpdateContactDetailsRequest& r) {
  if (absl::Status s = OperatorOnly(p); !s.ok()) return s;
  Violations v;
  std::string pseudonym;
  if (!r.has_contact()) {
    v.Add("contact", "is required");
  } else {
    pseudonym = IdIn(kBeneficiaryPattern, r.contact().beneficiary(), "contact.beneficiary", v);
    CheckContact(r.contact(), "contact", v);
  }
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  const absl::Time now = clock_.Now();
  pb::ContactDetails out;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    if (absl::Status s = KnownOperator(tx, p).status(); !s.ok()) return s;
    // A transfer accepted meanwhile deletes this copy: after it, the operator no longer sees the person.
    if (absl::Status s = tx.LockBeneficiaries({pseudonym}); !s.ok()) return s;
    auto b = BeneficiaryAs(tx, p.id, pseudonym);
    if (!b.ok()) return b.status();
    if (!b->has_value()) return NotFound(r.contact().beneficiary());
    // The situation this operator recorded stays as it is.
    if (absl::Status s = tx.PutContact(pseudonym, p.id, r.contact(), **b, now); !s.ok()) return s;
    if (absl::Status s = Audit(tx, now, p, "UpdateContactDetails", r.contact().beneficiary()); !s.ok()) return s;
    auto stored = tx.GetContact(pseudonym, p.id);
    if (!stored.ok()) return stored.status();
    if (!stored->has_value()) return absl::InternalError("contact details vanished after PutContact");
    out = **stored;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

// --- Cases --------------------------------------------------------------------------------------

// OpenCase requests are written in batches (case_openings_, WriteCaseOpenings): one transaction
// for the cases queued while the previous batch was written, with multi-row statements, each
// request getting its own answer; a request refused by a rule writes nothing.
absl::StatusOr<pb::Case> Cep::OpenCase(const P& p, const pb::OpenCaseRequest& r) {
  if (absl::Status s = OperatorOnly(p); !s.ok()) return s;
  const absl::Time now = clock_.Now();
  const pb::Case& in = r.case_();
  Violations v;
  if (!r.has_case_()) {
    v.Add("case", "is required");
  } else {
    CheckNewCase(in, "case", v);
    CheckNotFuture(in.opening_date(), Today(now), "case.opening_date", v);
    CheckNotFuture(in.project().formalised_date(), Today(now), "case.project.formalised_date", v);
  }
  if (absl::Status s = aip::CheckRequestId(r.request_id()); !s.ok()) {
    v.Add("request_id", std::string(s.message()));
  }
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;

  absl::StatusOr<pb::Case> result = absl::InternalError("OpenCase: the batch left no answer");
  if (absl::Status s = case_openings_.Submit(CaseOpening{&p, &r, &result}); !s.ok()) return s;
  return result;
}

absl::Status Cep::WriteCaseOpenings(const std::vector<CaseOpening>& jobs) {
  // A request id repeated within the batch (a retry racing its first attempt) waits for the batch:
  // alone afterwards, it finds the first attempt's case as any retry does.
  std::vector<CaseOpening> first;
  std::vector<CaseOpening> again;
  std::set<std::pair<std::string, std::string>> keys;
  for (const CaseOpening& job : jobs) {
    const bool repeated =
        !job.r->request_id().empty() &&
        !keys.insert({CallerScopedMethod("OpenCase", *job.p), job.r->request_id()}).second;
    (repeated ? again : first).push_back(job);
  }
  absl::Status together = OpenCasesTogether(first);
  if (!together.ok() && (first.size() == 1 || absl::IsUnknown(together))) {
    // One job: its own answer. A commit whose outcome is unknown (the connection went during
    // COMMIT): the cases may exist, and writing them again would open each twice.
    for (const CaseOpening& job : first) *job.result = together;
  } else if (!together.ok()) {
    // The shared transaction failed (a storage error, a lock conflict, a concurrent insert of the
    // same external id): each job again in its own, so one job's failure is not the others'.
    for (const CaseOpening& job : first) again.push_back(job);
  }
  for (const CaseOpening& job : again) {
    if (absl::Status s = OpenCasesTogether({job}); !s.ok()) *job.result = s;
  }
  return absl::OkStatus();
}

absl::Status Cep::OpenCasesTogether(const std::vector<CaseOpening>& jobs) {
  // In microseconds, as stored: the new cases are returned as built, not read back.
  const absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(clock_.Now()));
  std::vector<absl::StatusOr<pb::Case>> results;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    results.assign(jobs.size(), absl::InternalError("OpenCase: no decision"));
    auto catalogues = LevelCatalogues(tx);
    if (!catalogues.ok()) return catalogues.status();
    std::map<std::string, std::vector<size_t>> by_caller;  // principal -> its jobs, in order
    for (size_t i = 0; i < jobs.size(); ++i) by_caller[jobs[i].p->ToString()].push_back(i);
    // Every person of the batch, locked at once in key order (LockBeneficiaries): an erasure
    // running meanwhile would miss the new files; locking per caller would take them in an order
    // another batch could take the other way round.
    {
      std::vector<std::string> everyone;
      for (const CaseOpening& job : jobs) everyone.push_back(LastSegment(job.r->case_().beneficiary()));
      if (absl::Status s = tx.LockBeneficiaries(std::move(everyone)); !s.ok()) return s;
    }

    std::vector<pb::Case> cases;  // the new cases, and for each: its job, subject, event
    std::vector<size_t> owners;
    std::vector<indicators::Subject> subjects;
    std::vector<pb::ActivityEvent> events;
    std::vector<AuditEntry> audits;
    std::map<std::string, std::vector<Designation>> designations;  // every operator's, by region, loaded on demand
    struct Records {
      std::vector<RequestKey> keys;
      std::vector<std::string> names;
    };
    std::map<std::string, Records> records;  // by method
    for (const auto& [caller, mine] : by_caller) {
      const P& p = *jobs[mine.front()].p;
      auto op = KnownOperator(tx, p);
      if (absl::IsPermissionDenied(op.status())) {
        for (size_t i : mine) results[i] = op.status();
        continue;
      }
      if (!op.ok()) return op.status();
      const std::string method = CallerScopedMethod("OpenCase", p);
      std::vector<RequestKey> keys;
      for (size_t i : mine) keys.push_back({jobs[i].r->request_id(), jobs[i].r});
      auto hits = tx.LookupRequests(method, keys);
      if (!hits.ok()) return hits.status();
      std::vector<size_t> fresh;
      for (size_t k = 0; k < mine.size(); ++k) {
        const size_t i = mine[k];
        const absl::StatusOr<std::optional<std::string>>& hit = (*hits)[k];
        if (!hit.ok() || !hit->has_value()) {
          if (hit.ok()) fresh.push_back(i);
          else results[i] = hit.status();  // the key was used for another request
          continue;
        }
        // A retry: the case as it is now.
        auto stored = tx.GetCase(LastSegment(**hit));
        if (!stored.ok()) return stored.status();
        if (!Holds(p, stored->value)) {
          results[i] = NotFound(stored->value.name());
          continue;
        }
        pb::Case out = stored->value;
        out.set_etag(aip::Etag(stored->version));
        results[i] = std::move(out);
        // The answer is the file as it is now: a read of it, traced as any.
        audits.push_back({now, p.ToString(), "OpenCase", stored->value.name(), "retry: the case as it is now"});
      }
      if (fresh.empty()) continue;

      std::vector<std::string> pseudonyms;
      std::vector<std::string> external_ids;
      for (size_t i : fresh) {
        pseudonyms.push_back(LastSegment(jobs[i].r->case_().beneficiary()));
        if (!jobs[i].r->case_().external_id().empty()) external_ids.push_back(jobs[i].r->case_().external_id());
      }
      // Only those the operator may see: another operator's beneficiary is not found.
      auto beneficiaries = tx.GetBeneficiariesSeenBy(p.id, pseudonyms);
      if (!beneficiaries.ok()) return beneficiaries.status();
      // InsertCase's rule, checked here for the whole batch: an external id names one case.
      auto holders = tx.FindCasesByExternalIds(p.id, external_ids);
      if (!holders.ok()) return holders.status();
      for (size_t i : fresh) {
        const pb::Case& in = jobs[i].r->case_();
        const std::string pseudonym = LastSegment(in.beneficiary());
        bool level_known = false;
        for (const pb::LevelCatalogue& cat : **catalogues) {
          for (const pb::Level& l : cat.levels()) level_known = level_known || l.id() == in.level();
        }
        if (!level_known) {
          results[i] = InvalidArgument("case.level", absl::StrCat("unknown level ", in.level()));
          continue;
        }
        auto b = beneficiaries->find(pseudonym);
        if (b == beneficiaries->end()) {
          results[i] = NotFound(in.beneficiary());  // register the beneficiary first
          continue;
        }
        if (b->second.anonymised()) {
          results[i] = FailedPrecondition("BENEFICIARY_ANONYMISED", in.beneficiary(),
                                          "the beneficiary's personal data were erased: no new case");
          continue;
        }
        const std::string& region = b->second.region();
        static const std::vector<Designation> kNone;
        const std::vector<Designation>* in_region = &kNone;
        if (op->kind() == pb::OPERATOR_KIND_REGIONAL_EMPLOYED) {  // the only kind designations concern
          auto d = designations.find(region);
          if (d == designations.end()) {
            auto listed = tx.ListDesignations(region);
            if (!listed.ok()) return listed.status();
            d = designations.emplace(region, *std::move(listed)).first;
          }
          in_region = &d->second;
        }
        const int opening = DateKey(in.opening_date());
        if (absl::Status s = CheckDesignated(*op, p.id, *in_region, region, opening); !s.ok()) {
          results[i] = s;
          continue;
        }
        pb::Case c;
        c.set_name(absl::StrCat("cases/", NewId()));
        if (!in.external_id().empty()) {
          auto [holder, added] = holders->emplace(in.external_id(), c.name());
          if (!added) {
            results[i] = AlreadyExists(holder->second);
            continue;
          }
        }
        c.set_operator_(OperatorName(p.id));
        c.set_beneficiary(in.beneficiary());
        *c.mutable_opening_date() = in.opening_date();
        c.set_level(in.level());
        *c.mutable_demands() = in.demands();
        if (in.has_project()) *c.mutable_project() = in.project();
        c.set_external_id(in.external_id());
        MarkOpened(c, p.ToString(), now);
        auto e = EventFor(tx, c, pb::ACTIVITY_KIND_CASE_OPENED, opening, &b->second);
        if (!e.ok()) return e.status();
        events.push_back(*std::move(e));
        audits.push_back({now, p.ToString(), "OpenCase", c.name(), ""});
        Records& rec = records[method];
        rec.keys.push_back({jobs[i].r->request_id(), jobs[i].r});
        rec.names.push_back(c.name());
        subjects.push_back(indicators::SubjectOf(b->second));
        owners.push_back(i);
        cases.push_back(std::move(c));
      }
    }
    if (cases.empty()) return tx.Audits(audits);  // retries only (their reads), or nothing
    auto inserted = tx.InsertCases(cases, subjects, now);
    if (!inserted.ok()) return inserted.status();
    for (bool in : *inserted) {
      // Only a concurrent transaction can have taken an external id checked above: alone, the
      // job will name the case that holds it.
      if (!in) return absl::AbortedError("OpenCase: an external id was taken meanwhile");
    }
    if (absl::Status s = tx.Audits(audits); !s.ok()) return s;
    for (const auto& [method, rec] : records) {
      if (absl::Status s = tx.RecordRequests(method, rec.keys, rec.names, now); !s.ok()) return s;
    }
    // Last: the shared locks (rollups, activity) are held only until the commit that follows.
    if (absl::Status s = tx.AppendActivities(events, now); !s.ok()) return s;
    for (size_t k = 0; k < cases.size(); ++k) {
      cases[k].set_etag(aip::Etag(1));  // as stored, at version 1
      results[owners[k]] = std::move(cases[k]);
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  for (size_t i = 0; i < jobs.size(); ++i) *jobs[i].result = std::move(results[i]);
  return absl::OkStatus();
}

absl::StatusOr<pb::Case> Cep::GetCase(const P& p, const pb::GetCaseRequest& r) {
  if (absl::Status s = OperatorOnly(p); !s.ok()) return s;
  Violations v;
  const std::string id = IdIn(kCasePattern, r.name(), "name", v);
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  const absl::Time now = clock_.Now();
  pb::Case out;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    if (absl::Status s = KnownOperator(tx, p).status(); !s.ok()) return s;
    auto c = tx.GetCase(id);
    if (absl::IsNotFound(c.status())) return NotFound(r.name());
    if (!c.ok()) return c.status();
    if (!Holds(p, c->value)) return NotFound(r.name());  // other tenants learn nothing
    out = c->value;
    out.set_etag(aip::Etag(c->version));
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  if (absl::Status s = read_audit_.Submit({now, p.ToString(), "GetCase", r.name(), ""}); !s.ok()) return s;
  return out;
}

absl::StatusOr<pb::ListCasesResponse> Cep::ListCases(const P& p, const pb::ListCasesRequest& r) {
  if (absl::Status s = OperatorOnly(p); !s.ok()) return s;
  if (absl::Status s = repository_.Transact([&](CepTx& tx) { return KnownOperator(tx, p).status(); }); !s.ok()) {
    return s;
  }
  CaseQuery q;
  q.operator_id = p.id;
  auto terms = aip::ParseFilter(r.filter(), {"state=", "level=", "opened>="});
  if (!terms.ok()) return terms.status();
  for (const aip::FilterTerm& t : *terms) {
    if (t.field == "opened") {
      auto date = FilterDate(t.value);
      if (!date.ok()) return date.status();
      q.opened_from_yyyymmdd = std::max(q.opened_from_yyyymmdd, *date);
    }
    if (t.field == "state") {
      auto state = EnumValue<pb::CaseState>("CASE_STATE_", t.value, pb::CaseState_Parse, "state");
      if (!state.ok()) return state.status();
      q.state = *state;
    }
    if (t.field == "level") {
      // Compared by SQL: MariaDB would match "2019/2 " to 2019/2 (PAD SPACE), SQLite not.
      if (HasEdgeSpace(t.value)) return InvalidArgument("filter", "level must not start or end with white space");
      q.level = t.value;
    }
  }
  const std::string scope = absl::StrCat("ListCases\n", p.ToString(), "\n", r.filter());
  // Transferred-away cases are the former holder's record, not its file: never listed (even once
  // anonymised). The fetch reads on past them so a page is full whenever more cases follow.
  auto page = aip::Paginate<pb::Case>(
      page_tokens_, scope, r.page_size(), r.page_token(),
      [&](const std::string& cursor, int limit) -> absl::StatusOr<std::vector<pb::Case>> {
        std::vector<pb::Case> out;
        if (q.state == pb::CASE_STATE_TRANSFERRED) return out;
        CaseQuery batch_query = q;
        batch_query.after_id = cursor;
        batch_query.limit = limit;
        for (;;) {
          auto batch = repository_.ListCases(batch_query);
          if (!batch.ok()) return batch.status();
          const size_t n = batch->size();
          if (n == 0) break;
          batch_query.after_id = LastSegment(batch->back().name());
          for (pb::Case& c : *batch) {
            if (!TransferredAway(c)) out.push_back(std::move(c));
          }
          if (static_cast<int>(out.size()) >= limit || static_cast<int>(n) < limit) break;
        }
        if (static_cast<int>(out.size()) > limit) out.resize(limit);
        return out;
      },
      [](const pb::Case& c) { return LastSegment(c.name()); });
  if (!page.ok()) return page.status();
  // Listing returns whole files: each one read is audited.
  const absl::Time now = clock_.Now();
  if (!page->items.empty()) {
    std::vector<AuditEntry> reads;
    for (const pb::Case& c : page->items) reads.push_back({now, p.ToString(), "ListCases", c.name(), ""});
    if (absl::Status s = read_audit_.Submit(std::move(reads)); !s.ok()) return s;
  }
  pb::ListCasesResponse out;
  for (pb::Case& c : page->items) *out.add_cases() = std::move(c);
  out.set_next_page_token(page->next_page_token);
  return out;
}

absl::StatusOr<pb::Case> Cep::ChangeCase(const P& p, const CaseRef& ref, Violations& v, const std::string& action,
                                         const CaseChange& change) {
  if (absl::Status s = OperatorOnly(p); !s.ok()) return s;
  const std::string id = IdIn(kCasePattern, ref.name, ref.name_field, v);
  CheckEtagFormat(ref.etag, ref.etag_field, v);
  if (absl::Status s = aip::CheckRequestId(ref.request_id); !s.ok()) v.Add("request_id", std::string(s.message()));
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  const absl::Time now = clock_.Now();
  const std::string method = CallerScopedMethod(action, p);
  pb::Case out;
  const auto write = [&](CepTx& tx) -> absl::Status {
    if (absl::Status s = KnownOperator(tx, p).status(); !s.ok()) return s;
    // The key first, then the case: a case read before the key could predate the attempt that
    // recorded it (READ COMMITTED shows each statement the latest commit; that attempt committed both).
    bool retry = false;
    if (!ref.request_id.empty()) {
      auto hit = tx.LookupRequest(method, ref.request_id, *ref.request);
      if (!hit.ok()) return hit.status();
      retry = hit->has_value();
    }
    auto c = tx.GetCase(id);
    if (absl::IsNotFound(c.status())) return NotFound(ref.name);
    if (!c.ok()) return c.status();
    if (!Holds(p, c->value)) return NotFound(ref.name);
    if (retry) {  // the case as it is now, its read traced as any
      out = c->value;
      out.set_etag(aip::Etag(c->version));
      return Audit(tx, now, p, action, ref.name, "retry: the case as it is now");
    }
    if (absl::Status s = CheckEtag(ref.etag, c->version, ref.name); !s.ok()) return s;
    if (c->value.state() == pb::CASE_STATE_ANONYMISED) {
      return FailedPrecondition("CASE_ANONYMISED", ref.name, "an anonymised case no longer changes");
    }
    std::vector<pb::ActivityEvent> events;
    const pb::Case before = c->value;
    if (absl::Status s = change(c->value, tx, events); !s.ok()) return s;
    if (events.empty() && google::protobuf::util::MessageDifferencer::Equals(before, c->value)) {
      // Nothing changed (the same content sent again): no activity, so no write. Moving
      // last_activity_time would cancel a retention notice with nothing on the feed.
      out = c->value;
      out.set_etag(aip::Etag(c->version));
      if (!ref.request_id.empty()) {
        if (absl::Status s = tx.RecordRequest(method, ref.request_id, *ref.request, ref.name, now); !s.ok()) return s;
      }
      return Audit(tx, now, p, action, ref.name, "unchanged");
    }
    *c->value.mutable_last_activity_time() = ToTimestamp(now);
    c->value.clear_etag();
    if (absl::Status s = tx.PutCase(c->value, c->version, now); !s.ok()) return s;
    if (absl::Status s = Audit(tx, now, p, action, ref.name, StateName(c->value.state())); !s.ok()) return s;
    if (!ref.request_id.empty()) {
      if (absl::Status s = tx.RecordRequest(method, ref.request_id, *ref.request, ref.name, now); !s.ok()) return s;
    }
    auto stored = tx.GetCase(id);
    if (!stored.ok()) return stored.status();
    out = stored->value;
    out.set_etag(aip::Etag(stored->version));
    // Last: the shared locks (rollups, activity) are held only until the commit that follows.
    for (const pb::ActivityEvent& e : events) {
      if (absl::Status s = tx.AppendActivities({e}, now); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  // An attempt racing the same request (a retry while the first ran) loses the case's version.
  absl::Status st = CreateOnceRacing(ref.request_id, [&] { return repository_.Transact(write); });
  if (!st.ok()) return st;
  return out;
}

namespace {

absl::Status MustBeOpen(const pb::Case& c, const char* rule = "it changes only while OPEN") {
  if (c.state() == pb::CASE_STATE_OPEN) return absl::OkStatus();
  return FailedPrecondition("CASE_NOT_OPEN", c.name(),
                            absl::StrCat(c.name(), " is ", StateName(c.state()), ": ", rule));
}

}  // namespace

absl::StatusOr<pb::Case> Cep::UpdateCase(const P& p, const pb::UpdateCaseRequest& r) {
  Violations v;
  auto paths = aip::ResolveMask(r.update_mask(), {"demands", "project"}, r.case_());
  if (!paths.ok()) return paths.status();
  const pb::Case& in = r.case_();
  if (!r.has_case_()) v.Add("case", "is required");
  for (const std::string& path : *paths) {
    if (path == "demands") CheckDemands(in.demands(), "case.demands", v);
    if (path == "project") {
      CheckProject(in.project(), "case.project", v);
      CheckNotFuture(in.project().formalised_date(), Today(clock_.Now()), "case.project.formalised_date", v);
    }
  }
  const int today = Today(clock_.Now());
  return ChangeCase(p, {in.name(), "case.name", in.etag(), "case.etag", "", nullptr}, v, "UpdateCase",
                    [&](pb::Case& c, CepTx& tx, std::vector<pb::ActivityEvent>& events) -> absl::Status {
                      if (absl::Status s = MustBeOpen(c); !s.ok()) return s;
                      const std::string before = c.SerializeAsString();
                      for (const std::string& path : *paths) {
                        if (path == "demands") *c.mutable_demands() = in.demands();
                        if (path == "project") {
                          if (in.has_project()) {
                            *c.mutable_project() = in.project();
                          } else {
                            c.clear_project();
                          }
                        }
                      }
                      // On the feed as any change of the file (the operator's own activity); the
                      // same content sent again changes nothing and is no activity.
                      if (c.SerializeAsString() == before) return absl::OkStatus();
                      auto e = EventFor(tx, c, pb::ACTIVITY_KIND_CASE_UPDATED, today);
                      if (!e.ok()) return e.status();
                      events.push_back(*std::move(e));
                      return absl::OkStatus();
                    });
}

absl::StatusOr<pb::Case> Cep::ChangeLevel(const P& p, const pb::ChangeLevelRequest& r) {
  Violations v;
  CheckText(r.level(), "level", 64, true, v);
  const int today = Today(clock_.Now());
  return ChangeCase(p, {r.name(), "name", r.etag(), "etag", "", nullptr}, v, "ChangeLevel",
                    [&](pb::Case& c, CepTx& tx, std::vector<pb::ActivityEvent>& events) -> absl::Status {
                      auto catalogues = LevelCatalogues(tx);
                      if (!catalogues.ok()) return catalogues.status();
                      const pb::Level* target = nullptr;
                      const pb::Level* current = nullptr;
                      for (const pb::LevelCatalogue& cat : **catalogues) {
                        for (const pb::Level& l : cat.levels()) {
                          if (l.id() == r.level()) target = &l;
                          if (l.id() == c.level()) current = &l;
                        }
                      }
                      if (target == nullptr) return InvalidArgument("level", absl::StrCat("unknown level ", r.level()));
                      if (absl::Status s = MustBeOpen(c); !s.ok()) return s;
                      if (current == nullptr || current->catalogue() != target->catalogue()) {
                        return FailedPrecondition(
                            "LEVEL_CATALOGUE_MISMATCH", c.name(),
                            absl::StrCat(c.name(), " is at level ", c.level(), ": ", r.level(),
                                         " belongs to another catalogue"));
                      }
                      if (c.level() == r.level()) return absl::OkStatus();
                      c.set_level(r.level());
                      auto e = EventFor(tx, c, pb::ACTIVITY_KIND_LEVEL_CHANGED, today);
                      if (!e.ok()) return e.status();
                      events.push_back(*std::move(e));
                      return absl::OkStatus();
                    });
}

absl::StatusOr<pb::Case> Cep::RecordService(const P& p, const pb::RecordServiceRequest& r) {
  Violations v;
  if (!r.has_service()) {
    v.Add("service", "is required");
  } else {
    CheckService(r.service(), "service", v);
    CheckNotFuture(r.service().date(), Today(clock_.Now()), "service.date", v);
  }
  return ChangeCase(p, {r.name(), "name", "", "etag", r.request_id(), &r}, v, "RecordService",
                    [&](pb::Case& c, CepTx& tx, std::vector<pb::ActivityEvent>& events) -> absl::Status {
                      if (absl::Status s = MustBeOpen(c); !s.ok()) return s;
                      if (absl::Status s = CheckServiceFits(c, r.service()); !s.ok()) return s;
                      *c.add_services() = r.service();
                      auto e = EventFor(tx, c, pb::ACTIVITY_KIND_SERVICE_DELIVERED, DateKey(r.service().date()));
                      if (!e.ok()) return e.status();
                      e->set_service(r.service().kind());
                      events.push_back(*std::move(e));
                      return absl::OkStatus();
                    });
}

absl::StatusOr<pb::Case> Cep::RecordOutcome(const P& p, const pb::RecordOutcomeRequest& r) {
  Violations v;
  if (!r.has_outcome()) {
    v.Add("outcome", "is required");
  } else {
    CheckOutcome(r.outcome(), "outcome", v);
    CheckNotFuture(r.outcome().date(), Today(clock_.Now()), "outcome.date", v);
  }
  return ChangeCase(p, {r.name(), "name", "", "etag", r.request_id(), &r}, v, "RecordOutcome",
                    [&](pb::Case& c, CepTx& tx, std::vector<pb::ActivityEvent>& events) -> absl::Status {
                      // An outcome often comes after the closure (a job found later): open or closed.
                      if (!ActiveState(c.state())) return MustBeOpen(c);
                      if (absl::Status s = CheckOutcomeFits(c, r.outcome()); !s.ok()) return s;
                      *c.add_outcomes() = r.outcome();
                      auto e = EventFor(tx, c, pb::ACTIVITY_KIND_OUTCOME_RECORDED, DateKey(r.outcome().date()));
                      if (!e.ok()) return e.status();
                      e->set_outcome(r.outcome().kind());
                      events.push_back(*std::move(e));
                      return absl::OkStatus();
                    });
}

absl::StatusOr<pb::Case> Cep::RecordSatisfaction(const P& p, const pb::RecordSatisfactionRequest& r) {
  Violations v;
  if (!r.has_satisfaction()) {
    v.Add("satisfaction", "is required");
  } else {
    CheckSatisfaction(r.satisfaction(), "satisfaction", v);
    CheckNotFuture(r.satisfaction().date(), Today(clock_.Now()), "satisfaction.date", v);
  }
  return ChangeCase(p, {r.name(), "name", "", "etag", r.request_id(), &r}, v, "RecordSatisfaction",
                    [&](pb::Case& c, CepTx& tx, std::vector<pb::ActivityEvent>& events) -> absl::Status {
                      if (absl::Status s = CheckSatisfactionFits(c, r.satisfaction()); !s.ok()) return s;
                      *c.add_satisfaction() = r.satisfaction();
                      auto e = EventFor(tx, c, pb::ACTIVITY_KIND_SATISFACTION_RECORDED,
                                        DateKey(r.satisfaction().date()));
                      if (!e.ok()) return e.status();
                      events.push_back(*std::move(e));
                      return absl::OkStatus();
                    });
}

absl::StatusOr<pb::Case> Cep::CloseCase(const P& p, const pb::CloseCaseRequest& r) {
  Violations v;
  CheckText(r.reason(), "reason", 500, true, v);
  if (!r.has_closing_date()) {
    v.Add("closing_date", "is required");
  } else if (!IsCalendarDate(r.closing_date())) {
    v.Add("closing_date", "must be a calendar date");
  }
  const absl::Time now = clock_.Now();
  CheckNotFuture(r.closing_date(), Today(now), "closing_date", v);
  return ChangeCase(p, {r.name(), "name", r.etag(), "etag", "", nullptr}, v, "CloseCase",
                    [&](pb::Case& c, CepTx& tx, std::vector<pb::ActivityEvent>& events) -> absl::Status {
                      if (absl::Status s = MustBeOpen(c); !s.ok()) return s;
                      if (absl::Status s = CheckClosing(c, r.closing_date()); !s.ok()) return s;
                      if (absl::Status s = CloseCaseOn(c, r.closing_date(), p.ToString(), now, r.reason()); !s.ok()) {
                        return s;
                      }
                      auto e = EventFor(tx, c, pb::ACTIVITY_KIND_CASE_CLOSED, DateKey(r.closing_date()));
                      if (!e.ok()) return e.status();
                      events.push_back(*std::move(e));
                      return absl::OkStatus();
                    });
}

absl::StatusOr<pb::Case> Cep::ReopenCase(const P& p, const pb::ReopenCaseRequest& r) {
  Violations v;
  CheckText(r.reason(), "reason", 500, true, v);
  const absl::Time now = clock_.Now();
  return ChangeCase(p, {r.name(), "name", r.etag(), "etag", "", nullptr}, v, "ReopenCase",
                    [&](pb::Case& c, CepTx& tx, std::vector<pb::ActivityEvent>& events) -> absl::Status {
                      if (absl::Status s = TransitionCase(c, pb::CASE_STATE_OPEN, p.ToString(), now, r.reason());
                          !s.ok()) {
                        return s;
                      }
                      // The closure stays in the history; the case is open again.
                      c.clear_closing_date();
                      c.clear_closing_reason();
                      auto e = EventFor(tx, c, pb::ACTIVITY_KIND_CASE_REOPENED, Today(now));
                      if (!e.ok()) return e.status();
                      events.push_back(*std::move(e));
                      return absl::OkStatus();
                    });
}

// --- Bulk import --------------------------------------------------------------------------------

struct Cep::ImportRun {
  pb::Operator op;
  std::set<std::string> levels;
  std::map<std::string, std::vector<Designation>> designations;  // by region, loaded on demand
  int64_t next_line = 1;
  int64_t errors_total = 0;
  pb::ImportCasesResponse response;

  void Error(int64_t line, const std::string& external_id, const std::string& field, const std::string& reason) {
    ++errors_total;
    if (response.errors_size() >= kImportMaxErrors) return;
    pb::ImportRowError* e = response.add_errors();
    e->set_line(line);
    e->set_external_id(external_id);
    e->set_field(field);
    e->set_reason(reason);
  }
};

namespace {

// A row that passed the checks that need no storage: the case as OpenCase (+ services, outcomes,
// closing) would store it, and the beneficiary as RegisterBeneficiary would.
constexpr int kImportAttempts = 5;

struct ImportCandidate {
  int64_t line = 0;
  pb::Case c;
  pb::Beneficiary b;
  std::string pseudonym;
};

}  // namespace

absl::StatusOr<pb::ImportCasesResponse> Cep::ImportCases(const P& p, const ImportSource& next,
                                                         const std::function<bool()>& cancelled) {
  if (absl::Status s = OperatorOnly(p); !s.ok()) return s;
  ImportRun run;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    auto op = KnownOperator(tx, p);
    if (!op.ok()) return op.status();
    run.op = *std::move(op);
    auto catalogues = LevelCatalogues(tx);
    if (!catalogues.ok()) return catalogues.status();
    for (const pb::LevelCatalogue& cat : **catalogues) {
      for (const pb::Level& l : cat.levels()) run.levels.insert(l.id());
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;

  ++import_streams_;
  absl::Cleanup stream_done = [this] { --import_streams_; };
  std::vector<pb::ImportedCase> batch;
  batch.reserve(kImportBatchRows);
  pb::ImportCasesRequest request;
  while (next(&request)) {
    for (pb::ImportedCase& row : *request.mutable_cases()) {
      batch.push_back(std::move(row));
      if (static_cast<int>(batch.size()) >= ImportBatchRows(import_.max_batch_rows, import_streams_.load())) {
        if (absl::Status s = ImportBatch(p, run, batch); !s.ok()) return s;
      }
    }
    request.Clear();
  }
  if (cancelled()) {
    // Not the end of the client's rows: what did not arrive is unknown, so no tail is written.
    return absl::CancelledError(absl::StrCat("the import stream was cancelled; ", run.response.cases_created(),
                                             " cases created before it (import the same rows again: those "
                                             "already stored count as unchanged)"));
  }
  if (!batch.empty()) {
    if (absl::Status s = ImportBatch(p, run, batch); !s.ok()) return s;
  }
  if (run.errors_total > kImportMaxErrors) {
    pb::ImportRowError* last = run.response.mutable_errors(kImportMaxErrors - 1);
    last->set_reason(absl::StrCat(last->reason(), " (error list capped at ", kImportMaxErrors, " entries: ",
                                  run.errors_total, " errors in all, ", run.errors_total - kImportMaxErrors,
                                  " not listed)"));
  }
  return std::move(run.response);
}

absl::Status Cep::ImportBatch(const P& p, ImportRun& run, std::vector<pb::ImportedCase>& rows) {
  {
    absl::MutexLock lock(&import_mu_);
    import_mu_.Await(absl::Condition(
        +[](int* n) { return *n < kImportConcurrentBatches; }, &import_batches_));
    ++import_batches_;
  }
  absl::Cleanup release = [this] {
    absl::MutexLock lock(&import_mu_);
    --import_batches_;
  };
  const absl::Time now = clock_.Now();
  const int today = Today(now);
  const int this_year = ThisYear(now);
  const int64_t first_line = run.next_line;
  const int64_t last_line = first_line + static_cast<int64_t>(rows.size()) - 1;
  run.next_line = last_line + 1;
  run.response.set_rows_received(run.response.rows_received() + static_cast<int64_t>(rows.size()));
  const std::string actor = p.ToString();

  // 1. The checks that need no storage.
  std::vector<ImportCandidate> candidates;
  candidates.reserve(rows.size());
  std::vector<pb::ImportRowError> batch_errors;  // reported in line order once the batch is done
  auto error = [&](int64_t line, const std::string& external_id, const std::string& field, const std::string& reason) {
    pb::ImportRowError e;
    e.set_line(line);
    e.set_external_id(external_id);
    e.set_field(field);
    e.set_reason(reason);
    batch_errors.push_back(std::move(e));
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    const pb::ImportedCase& in = rows[i];
    const int64_t line = first_line + static_cast<int64_t>(i);
    Violations v;
    if (in.external_id().empty()) v.Add("external_id", "is required (the idempotency key)");  // length: CheckNewCase
    CheckText(in.beneficiary_external_id(), "beneficiary_external_id", 256, true, v);
    if (!in.has_beneficiary()) {
      v.Add("beneficiary", "is required");
    } else {
      CheckBeneficiary(in.beneficiary(), this_year, "beneficiary", v);
    }
    ImportCandidate cand;
    cand.line = line;
    cand.pseudonym = in.beneficiary_external_id().empty() ? std::string("unknown")
                                                          : Pseudonym(pseudonym_key_, in.beneficiary_external_id());
    pb::Case& c = cand.c;
    c.set_name(absl::StrCat("cases/", NewId()));
    c.set_operator_(OperatorName(p.id));
    c.set_beneficiary(absl::StrCat("beneficiaries/", cand.pseudonym));
    if (in.has_opening_date()) *c.mutable_opening_date() = in.opening_date();
    c.set_level(in.level());
    *c.mutable_demands() = in.demands();
    c.set_external_id(in.external_id());
    CheckNewCase(c, "", v);
    CheckNotFuture(in.opening_date(), today, "opening_date", v);
    if (!in.level().empty() && run.levels.count(in.level()) == 0) {
      v.Add("level", absl::StrCat("unknown level ", in.level()));
    }
    for (int k = 0; k < in.services_size(); ++k) {
      CheckService(in.services(k), absl::StrCat("services[", k, "]"), v);
      CheckNotFuture(in.services(k).date(), today, absl::StrCat("services[", k, "].date"), v);
    }
    for (int k = 0; k < in.outcomes_size(); ++k) {
      CheckOutcome(in.outcomes(k), absl::StrCat("outcomes[", k, "]"), v);
      CheckNotFuture(in.outcomes(k).date(), today, absl::StrCat("outcomes[", k, "].date"), v);
    }
    if (in.has_closing_date()) {
      if (!IsCalendarDate(in.closing_date())) v.Add("closing_date", "must be a calendar date");
      CheckNotFuture(in.closing_date(), today, "closing_date", v);
      CheckText(in.closing_reason(), "closing_reason", 500, true, v);
    } else if (!in.closing_reason().empty()) {
      v.Add("closing_reason", "is only given with a closing_date");
    }
    if (!v.empty()) {
      for (const FieldViolation& f : v.list()) error(line, in.external_id(), f.field, f.description);
      continue;
    }
    // The case as the single-case calls would leave it: opened, services, closing, outcomes.
    MarkOpened(c, actor, now);
    std::string field;
    absl::Status rule;
    for (int k = 0; k < in.services_size() && rule.ok(); ++k) {
      rule = CheckServiceFits(c, in.services(k));
      if (rule.ok()) {
        *c.add_services() = in.services(k);
      } else {
        field = absl::StrCat("services[", k, "].date");
      }
    }
    if (rule.ok() && in.has_closing_date()) {
      rule = CheckClosing(c, in.closing_date());
      if (rule.ok()) rule = CloseCaseOn(c, in.closing_date(), actor, now, in.closing_reason());
      if (!rule.ok()) field = "closing_date";
    }
    for (int k = 0; k < in.outcomes_size() && rule.ok(); ++k) {
      rule = CheckOutcomeFits(c, in.outcomes(k));
      if (rule.ok()) {
        *c.add_outcomes() = in.outcomes(k);
      } else {
        field = absl::StrCat("outcomes[", k, "].date");
      }
    }
    if (!rule.ok()) {
      error(line, in.external_id(), field, std::string(rule.message()));
      continue;
    }
    // The history's last activity is its latest date, not the import: retention counts the two
    // years of inactivity from what happened in the file (a file closed years ago is not kept
    // two more years because it was imported).
    int latest = DateKey(c.opening_date());
    for (const pb::DeliveredService& sv : c.services()) latest = std::max(latest, DateKey(sv.date()));
    for (const pb::Outcome& o : c.outcomes()) latest = std::max(latest, DateKey(o.date()));
    if (c.has_closing_date()) latest = std::max(latest, DateKey(c.closing_date()));
    *c.mutable_last_activity_time() = ToTimestamp(std::min(StartOfDay(latest), now));
    cand.b = in.beneficiary();
    cand.b.set_name(c.beneficiary());
    cand.b.set_anonymised(false);
    if (cand.b.region().empty()) cand.b.set_region(RegionOfDepartment(cand.b.department()));
    candidates.push_back(std::move(cand));
  }
  rows.clear();

  // 2. One transaction: the rules that need storage, then the multi-row writes; the activity
  // log last, so the lock it takes is held only until the commit.
  int64_t created = 0;
  int64_t unchanged = 0;
  std::vector<pb::ImportRowError> refused;
  // A batch that loses a lock conflict (deadlock, ABORTED) is replayed whole: it wrote nothing.
  absl::Status st;
  for (int attempt = 1; attempt <= kImportAttempts; ++attempt) {
    st = repository_.Transact([&](CepTx& tx) -> absl::Status {
      created = 0;
      unchanged = 0;
      refused.clear();
      std::vector<std::string> external_ids;
      std::vector<std::string> pseudonyms;
      for (const ImportCandidate& cand : candidates) {
        external_ids.push_back(cand.c.external_id());
        pseudonyms.push_back(cand.pseudonym);
      }
      auto existing_cases = tx.FindCasesByExternalIds(p.id, external_ids);
      if (!existing_cases.ok()) return existing_cases.status();
      // Files anonymised or erased since: their external ids are cleared, their hashes kept.
      std::map<std::string, std::string> id_of_hash;
      std::vector<std::string> hashes;
      for (const std::string& id : external_ids) {
        if (existing_cases->count(id) > 0) continue;
        hashes.push_back(ErasedExternalIdHash(pseudonym_key_, id));
        id_of_hash[hashes.back()] = id;
      }
      auto erased_hashes = tx.FindErasedExternalIds(p.id, hashes);
      if (!erased_hashes.ok()) return erased_hashes.status();
      std::set<std::string> erased;  // external ids
      for (const std::string& h : *erased_hashes) erased.insert(id_of_hash[h]);
      if (absl::Status s = tx.LockBeneficiaries(pseudonyms); !s.ok()) return s;  // as OpenCase
      auto stored = tx.GetBeneficiaries(pseudonyms);
      if (!stored.ok()) return stored.status();

      // The beneficiary each row's rules see, as if the rows were registered and opened in order.
      std::map<std::string, pb::Beneficiary> seen = *std::move(stored);
      std::set<std::string> taken;          // external ids accepted in this batch
      std::vector<size_t> accepted;
      std::vector<pb::Beneficiary> situations;    // each accepted row's person, as the row gives them
      std::vector<indicators::Subject> subjects;  // and the situation it counts under
      for (size_t i = 0; i < candidates.size(); ++i) {
        ImportCandidate& cand = candidates[i];
        const std::string& external_id = cand.c.external_id();
        if (existing_cases->count(external_id) > 0 || taken.count(external_id) > 0 || erased.count(external_id) > 0) {
          ++unchanged;
          continue;
        }
        auto it = seen.find(cand.pseudonym);
        if (it != seen.end() && it->second.anonymised()) {
          // OpenCase's rule: an erased (or retention-anonymised) person gets no new file. A
          // history row is no sign that the person came back; RegisterBeneficiary is.
          pb::ImportRowError e;
          e.set_line(cand.line);
          e.set_external_id(external_id);
          e.set_field("beneficiary_external_id");
          e.set_reason(
              "BENEFICIARY_ANONYMISED: the beneficiary's personal data were erased or anonymised: no new "
              "case (register the person again first if they came back)");
          refused.push_back(std::move(e));
          continue;
        }
        // A known person's row is an entry of its own: the case counts the situation the row gives
        // (status, qualification, where the person lived then), birth year and sex as first
        // registered. The shared record is not changed: a history is not the person's present.
        pb::Beneficiary b = it == seen.end() ? cand.b : it->second;
        if (it != seen.end()) {
          b.set_status(cand.b.status());
          b.set_qualification_level(cand.b.qualification_level());
          b.set_department(cand.b.department());
          b.set_region(cand.b.region());
        }
        const std::string region = b.region();
        auto d = run.designations.find(region);
        if (d == run.designations.end()) {
          auto loaded = tx.ListDesignations(region);
          if (!loaded.ok()) return loaded.status();
          d = run.designations.emplace(region, *std::move(loaded)).first;
        }
        if (absl::Status s = CheckDesignated(run.op, p.id, d->second, region, DateKey(cand.c.opening_date()));
            !s.ok()) {
          pb::ImportRowError e;
          e.set_line(cand.line);
          e.set_external_id(external_id);
          e.set_field("opening_date");
          e.set_reason(std::string(s.message()));
          refused.push_back(std::move(e));
          continue;
        }
        if (it == seen.end()) seen[cand.pseudonym] = cand.b;
        taken.insert(external_id);
        accepted.push_back(i);
        subjects.push_back(indicators::SubjectOf(b));
        situations.push_back(std::move(b));
      }

      std::vector<pb::Case> cases;
      cases.reserve(accepted.size());
      for (size_t i : accepted) cases.push_back(candidates[i].c);
      auto inserted = tx.InsertCases(cases, subjects, now);
      if (!inserted.ok()) return inserted.status();

      std::vector<pb::Beneficiary> beneficiaries;
      // This operator's record of each person it did not know: the situation of the person's
      // first row (a person it knew keeps the record it had).
      std::vector<pb::Beneficiary> known;
      std::set<std::string> done;
      std::vector<pb::ActivityEvent> events;
      for (size_t k = 0; k < accepted.size(); ++k) {
        if (!(*inserted)[k]) {  // taken meanwhile by a concurrent import of the same id
          ++unchanged;
          continue;
        }
        ++created;
        const ImportCandidate& cand = candidates[accepted[k]];
        if (done.insert(cand.pseudonym).second) {
          known.push_back(situations[k]);
          beneficiaries.push_back(cand.b);
        }
        // One event per imported case: its history came in at once (its services and outcomes
        // are in the indicators; the feed says the case arrived).
        const pb::Case& c = cand.c;
        pb::ActivityEvent& e = events.emplace_back();
        *e.mutable_time() = ToTimestamp(now);
        e.set_kind(pb::ACTIVITY_KIND_CASE_IMPORTED);
        e.set_operator_(c.operator_());
        e.set_case_(c.name());
        e.set_beneficiary(c.beneficiary());
        e.set_region(subjects[k].region);  // where the person lived at this entry
        e.set_level(c.level());
        e.set_month(MonthOf(DateKey(c.opening_date())));
      }
      // Key order: concurrent batches (other operators, the same person) lock rows in one order.
      std::sort(beneficiaries.begin(), beneficiaries.end(),
                [](const pb::Beneficiary& a, const pb::Beneficiary& b) { return a.name() < b.name(); });
      std::sort(known.begin(), known.end(),
                [](const pb::Beneficiary& a, const pb::Beneficiary& b) { return a.name() < b.name(); });
      if (auto n = tx.InsertBeneficiariesIfAbsent(beneficiaries, now); !n.ok()) return n.status();
      if (absl::Status s = tx.InsertContactsIfAbsent(known, p.id, now); !s.ok()) return s;
      if (absl::Status s = Audit(tx, now, p, "ImportCases", OperatorName(p.id),
                                 absl::StrCat("rows ", first_line, "..", last_line));
          !s.ok()) {
        return s;
      }
      return tx.AppendActivities(events, now);
    });
    if (!absl::IsAborted(st)) break;
  }
  if (!st.ok()) return st;
  for (pb::ImportRowError& e : refused) batch_errors.push_back(std::move(e));
  std::stable_sort(batch_errors.begin(), batch_errors.end(),
                   [](const pb::ImportRowError& a, const pb::ImportRowError& b) { return a.line() < b.line(); });
  for (const pb::ImportRowError& e : batch_errors) run.Error(e.line(), e.external_id(), e.field(), e.reason());
  run.response.set_cases_created(run.response.cases_created() + created);
  run.response.set_cases_unchanged(run.response.cases_unchanged() + unchanged);
  return absl::OkStatus();
}

// --- Transfers ----------------------------------------------------------------------------------

namespace {

// The situation a transferred file goes on with, that of its opening (counted, and so designated,
// in its region), once `receiver` may receive it on `date`. Asked when the holder requests (a
// request the receiver could never accept would hold the file) and again when the receiver
// accepts (a designation may have ended, or a right been withdrawn, meanwhile).
absl::StatusOr<indicators::Subject> SubjectReceivableBy(CepTx& tx, const std::string& case_id,
                                                        const pb::Operator& receiver, const std::string& receiver_id,
                                                        int date) {
  auto subject = tx.GetCaseSubject(case_id);
  if (!subject.ok()) return subject.status();
  auto designations = tx.ListDesignations(subject->region);
  if (!designations.ok()) return designations.status();
  if (absl::Status s = CheckDesignated(receiver, receiver_id, *designations, subject->region, date); !s.ok()) {
    return s;
  }
  return subject;
}

// Only an open file moves. A closed one would arrive OPEN at the receiver, reopened by nobody
// and with no reason, and be counted as followed again from the transfer's month: its holder
// reopens it first (ReopenCase, with its reason). An anonymised one has nothing left to move.
absl::Status CheckTransferable(const pb::Case& c) {
  if (!ActiveState(c.state())) {
    return FailedPrecondition("CASE_NOT_TRANSFERABLE", c.name(), absl::StrCat(c.name(), " is ", StateName(c.state())));
  }
  return MustBeOpen(c, "only an open file moves to another operator (its holder reopens it first)");
}

}  // namespace

absl::StatusOr<pb::Transfer> Cep::RequestTransfer(const P& p, const pb::RequestTransferRequest& r) {
  if (absl::Status s = OperatorOnly(p); !s.ok()) return s;
  const pb::Transfer& in = r.transfer();
  Violations v;
  std::string case_id, to_id;
  if (!r.has_transfer()) {
    v.Add("transfer", "is required");
  } else {
    case_id = IdIn(kCasePattern, in.case_(), "transfer.case", v);
    to_id = IdIn(kOperatorPattern, in.to_operator(), "transfer.to_operator", v);
    if (!to_id.empty() && to_id == p.id) v.Add("transfer.to_operator", "must be another operator");
    CheckText(in.reason(), "transfer.reason", 500, false, v);
    // The consent was given before the request (default: now), with a minute of tolerance for
    // the clocks of the operators' back offices.
    if (in.has_consent_time() && !ValidTimestamp(in.consent_time())) {
      v.Add("transfer.consent_time", "is not a valid timestamp");
    } else if (in.has_consent_time() && FromTimestamp(in.consent_time()) > clock_.Now() + absl::Minutes(1)) {
      v.Add("transfer.consent_time", "must not be in the future");
    }
  }
  if (absl::Status s = aip::CheckRequestId(r.request_id()); !s.ok()) {
    v.Add("request_id", std::string(s.message()));
  }
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  if (!in.beneficiary_consent()) {
    return FailedPrecondition("CONSENT_MISSING", in.case_(),
                              "a case moves to another operator only with the beneficiary's consent");
  }
  const std::string method = CallerScopedMethod("RequestTransfer", p);
  const absl::Time now = clock_.Now();

  // Phase 1 (read only): scope, state, receiver; the case version seen.
  std::string done;  // the transfer of an earlier identical request
  int64_t seen_version = 0;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    if (absl::Status s = KnownOperator(tx, p).status(); !s.ok()) return s;
    auto hit = tx.LookupRequest(method, r.request_id(), r);
    if (!hit.ok()) return hit.status();
    if (hit->has_value()) {
      done = **hit;
      return absl::OkStatus();
    }
    auto c = tx.GetCase(case_id);
    if (absl::IsNotFound(c.status())) return NotFound(in.case_());
    if (!c.ok()) return c.status();
    if (!Holds(p, c->value)) return NotFound(in.case_());
    if (absl::Status s = CheckTransferable(c->value); !s.ok()) return s;
    // The consent is to move this file: it cannot predate the file.
    if (in.has_consent_time() && Today(FromTimestamp(in.consent_time())) < DateKey(c->value.opening_date())) {
      return FailedPrecondition("CONSENT_BEFORE_OPENING", in.case_(),
                                absl::StrCat("the consent of ", FormatDateKey(Today(FromTimestamp(in.consent_time()))),
                                             " is before ", in.case_(), " opened on ",
                                             FormatDateKey(DateKey(c->value.opening_date()))));
    }
    auto to = tx.GetOperator(to_id);
    if (absl::IsNotFound(to.status())) return NotFound(in.to_operator());
    if (!to.ok()) return to.status();
    if (absl::Status s = SubjectReceivableBy(tx, case_id, to->value, to_id, Today(now)).status(); !s.ok()) return s;
    seen_version = c->version;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;

  if (done.empty()) {
    // Phase 2: no other pending transfer of this case. Every request bumps the case's version
    // (phase 3), so a request racing this one makes phase 3 fail with ABORTED.
    TransferQuery q;
    q.operator_id = p.id;
    q.state = pb::TRANSFER_STATE_REQUESTED;
    auto pending = ReadAll<pb::Transfer>(
        [&](const std::string& after, int limit) {
          q.after_id = after;
          q.limit = limit;
          return repository_.ListTransfers(q);
        },
        [](const pb::Transfer& t) { return LastSegment(t.name()); });
    if (!pending.ok()) return pending.status();
    for (const pb::Transfer& t : *pending) {
      if (t.case_() != in.case_()) continue;
      // The pending transfer may be this very request's, made by a concurrent attempt since
      // phase 1 (a retry racing the first attempt): then it is the answer.
      if (!r.request_id().empty()) {
        absl::Status looked = repository_.Transact([&](CepTx& tx) -> absl::Status {
          auto hit = tx.LookupRequest(method, r.request_id(), r);
          if (!hit.ok()) return hit.status();
          if (hit->has_value()) done = **hit;
          return absl::OkStatus();
        });
        if (!looked.ok()) return looked;
        if (!done.empty()) break;
      }
      return FailedPrecondition("TRANSFER_PENDING", in.case_(),
                                absl::StrCat(t.name(), " already asks to transfer this case"));
    }
  }

  pb::Transfer out;
  const auto create = [&](CepTx& tx) -> absl::Status {
    std::string name = done;
    if (name.empty()) {
      auto hit = tx.LookupRequest(method, r.request_id(), r);
      if (!hit.ok()) return hit.status();
      if (hit->has_value()) name = **hit;
    }
    if (name.empty()) {
      auto c = tx.GetCase(case_id);
      if (!c.ok()) return c.status();
      if (!Holds(p, c->value)) return NotFound(in.case_());
      if (c->version != seen_version) {
        return absl::AbortedError(absl::StrCat(in.case_(), " changed during the request: retry"));
      }
      pb::Transfer t;
      name = absl::StrCat("transfers/", NewId());
      t.set_name(name);
      t.set_case_(in.case_());
      t.set_from_operator(OperatorName(p.id));
      t.set_to_operator(in.to_operator());
      t.set_beneficiary_consent(true);
      *t.mutable_consent_time() = in.has_consent_time() ? in.consent_time() : ToTimestamp(now);
      t.set_state(pb::TRANSFER_STATE_REQUESTED);
      t.set_reason(in.reason());
      *t.mutable_create_time() = ToTimestamp(now);
      if (absl::Status s = tx.InsertTransfer(t, now); !s.ok()) return s;
      *c->value.mutable_last_activity_time() = ToTimestamp(now);
      if (absl::Status s = tx.PutCase(c->value, c->version, now); !s.ok()) return s;
      if (absl::Status s = Audit(tx, now, p, "RequestTransfer", in.case_(), name); !s.ok()) return s;
      if (absl::Status s = tx.RecordRequest(method, r.request_id(), r, name, now); !s.ok()) return s;
    }
    auto stored = tx.GetTransfer(LastSegment(name));
    if (!stored.ok()) return stored.status();
    out = stored->value;
    return absl::OkStatus();
  };
  // The same request racing (a retry while this one runs) moves the case's version on first.
  st = CreateOnceRacing(r.request_id(), [&] { return repository_.Transact(create); });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<pb::Transfer> Cep::DecideTransfer(const P& p, const std::string& name, Violations& v,
                                                 TransferParty party, const std::string& action,
                                                 const TransferDecision& decide) {
  if (absl::Status s = OperatorOnly(p); !s.ok()) return s;
  const std::string id = IdIn(kTransferPattern, name, "name", v);
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  const absl::Time now = clock_.Now();
  pb::Transfer out;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    if (absl::Status s = KnownOperator(tx, p).status(); !s.ok()) return s;
    auto t = tx.GetTransfer(id);
    if (absl::IsNotFound(t.status())) return NotFound(name);
    if (!t.ok()) return t.status();
    const std::string me = OperatorName(p.id);
    const bool receiver = t->value.to_operator() == me;
    const bool sender = t->value.from_operator() == me;
    if (!receiver && !sender) return NotFound(name);
    if (party == TransferParty::kReceiver && !receiver) {
      return absl::PermissionDeniedError("only the receiving operator accepts or rejects a transfer");
    }
    if (party == TransferParty::kSender && !sender) {
      return absl::PermissionDeniedError("only the operator that requested a transfer cancels it");
    }
    if (t->value.state() != pb::TRANSFER_STATE_REQUESTED) {
      return FailedPrecondition("TRANSFER_NOT_PENDING", name,
                                absl::StrCat(name, " is ", pb::TransferState_Name(t->value.state())));
    }
    if (absl::Status s = decide(t->value, tx); !s.ok()) return s;
    *t->value.mutable_decide_time() = ToTimestamp(now);
    if (absl::Status s = tx.PutTransfer(t->value, t->version); !s.ok()) return s;
    if (absl::Status s = Audit(tx, now, p, action, t->value.case_(), name); !s.ok()) return s;
    auto stored = tx.GetTransfer(id);
    if (!stored.ok()) return stored.status();
    out = stored->value;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<pb::Transfer> Cep::AcceptTransfer(const P& p, const pb::AcceptTransferRequest& r) {
  Violations v;
  const absl::Time now = clock_.Now();
  const auto accept = [&](pb::Transfer& t, CepTx& tx) -> absl::Status {
    auto old = tx.GetCase(LastSegment(t.case_()));
    if (!old.ok()) return old.status();
    pb::Case& from = old->value;
    // Closed since the request: the holder reopens it, or cancels the transfer.
    if (absl::Status s = CheckTransferable(from); !s.ok()) return s;
    const std::string pseudonym = LastSegment(from.beneficiary());
    // Locked: the contact copies and the person's other files decide what moves and what is deleted.
    if (absl::Status s = tx.LockBeneficiaries({pseudonym}); !s.ok()) return s;
    auto b = tx.GetBeneficiary(pseudonym);
    if (!b.ok()) return b.status();
    auto receiver = KnownOperator(tx, p);
    if (!receiver.ok()) return receiver.status();
    auto subject = SubjectReceivableBy(tx, LastSegment(from.name()), *receiver, p.id, Today(now));
    if (!subject.ok()) return subject.status();

    // The receiver's case: the file goes on, open, at the receiver.
    pb::Case to;
    to.set_name(absl::StrCat("cases/", NewId()));
    to.set_operator_(OperatorName(p.id));
    to.set_beneficiary(from.beneficiary());
    *to.mutable_opening_date() = from.opening_date();
    to.set_level(from.level());
    *to.mutable_demands() = from.demands();
    *to.mutable_services() = from.services();
    if (from.has_project()) *to.mutable_project() = from.project();
    *to.mutable_outcomes() = from.outcomes();
    *to.mutable_satisfaction() = from.satisfaction();
    to.set_state(pb::CASE_STATE_OPEN);
    pb::CaseStateChange* received = to.add_history();
    received->set_to(pb::CASE_STATE_OPEN);
    received->set_actor(p.ToString());
    *received->mutable_time() = ToTimestamp(now);
    received->set_reason(absl::StrCat("received by ", t.name()));
    pb::TransferReceipt* receipt = to.mutable_received();
    receipt->set_from_case(from.name());
    *receipt->mutable_former_cases() = from.received().former_cases();
    if (receipt->former_cases().empty() && from.has_received()) {
      receipt->add_former_cases(from.received().from_case());  // received before the list was kept
    }
    receipt->add_former_cases(from.name());
    receipt->set_transfer(t.name());
    *receipt->mutable_time() = ToTimestamp(now);
    receipt->set_services(from.services_size());
    receipt->set_outcomes(from.outcomes_size());
    receipt->set_satisfaction(from.satisfaction_size());
    *to.mutable_last_activity_time() = ToTimestamp(now);
    if (absl::Status s = tx.InsertCase(to, *subject, now); !s.ok()) return s;

    // The former holder keeps a TRANSFERRED record without access to the file.
    if (absl::Status s = TransitionCase(from, pb::CASE_STATE_TRANSFERRED, p.ToString(), now, t.name()); !s.ok()) {
      return s;
    }
    *from.mutable_last_activity_time() = ToTimestamp(now);
    from.clear_etag();
    if (absl::Status s = tx.PutCase(from, old->version, now); !s.ok()) return s;

    // Contact details move with the file: the receiver gets them (unless it has its own), the
    // former holder's copy is deleted when it holds no other file of the person, so it no longer
    // sees the beneficiary at all.
    // The situation the holder recorded goes with them, unless the receiver registered the
    // person itself.
    const std::string from_operator = LastSegment(from.operator_());
    auto contact = tx.GetContact(pseudonym, from_operator);
    if (!contact.ok()) return contact.status();
    auto own = tx.GetContact(pseudonym, p.id);
    if (!own.ok()) return own.status();
    auto situation = BeneficiaryAs(tx, own->has_value() ? p.id : from_operator, pseudonym);
    if (!situation.ok()) return situation.status();
    if (!situation->has_value()) situation->emplace(*b);  // neither sees the person: the shared record
    const bool own_empty = !own->has_value() || ((*own)->display_name().empty() && (*own)->email().empty() &&
                                                 (*own)->phone().empty() && (*own)->postal_address().empty());
    // The person's file is traced where its contact details move (who, when, from where).
    if (contact->has_value() && own_empty) {
      if (absl::Status s = tx.PutContact(pseudonym, p.id, **contact, **situation, now); !s.ok()) return s;
      if (absl::Status s = Audit(tx, now, p, "AcceptTransfer", from.beneficiary(),
                                 absl::StrCat("contact details received from ", from.operator_()));
          !s.ok()) {
        return s;
      }
    } else if (!own->has_value()) {
      pb::ContactDetails empty;
      empty.set_beneficiary(from.beneficiary());
      if (absl::Status s = tx.PutContact(pseudonym, p.id, empty, **situation, now); !s.ok()) return s;
    }
    auto cases = tx.CasesOfBeneficiary(pseudonym);
    if (!cases.ok()) return cases.status();
    const bool still_holds = std::any_of(cases->begin(), cases->end(), [&](const pb::Case& c) {
      return c.operator_() == from.operator_() && c.name() != from.name() && ActiveState(c.state());
    });
    if (contact->has_value() && !still_holds) {
      if (absl::Status s = tx.DeleteContact(pseudonym, from_operator); !s.ok()) return s;
      if (absl::Status s = Audit(tx, now, p, "AcceptTransfer", from.beneficiary(),
                                 absl::StrCat("contact details deleted at ", from.operator_()));
          !s.ok()) {
        return s;
      }
    }

    if (absl::Status s = Audit(tx, now, p, "AcceptTransfer", to.name(), t.name()); !s.ok()) return s;
    // Both files move on the feed: the former holder's leaves, the receiver's arrives.
    auto away = EventFor(tx, from, pb::ACTIVITY_KIND_CASE_TRANSFERRED_AWAY, Today(now));
    if (!away.ok()) return away.status();
    auto e = EventFor(tx, to, pb::ACTIVITY_KIND_CASE_TRANSFERRED, Today(now));
    if (!e.ok()) return e.status();
    if (absl::Status s = tx.AppendActivities({*away, *e}, now); !s.ok()) return s;

    t.set_state(pb::TRANSFER_STATE_ACCEPTED);
    t.set_new_case(to.name());
    return absl::OkStatus();
  };
  return DecideTransfer(p, r.name(), v, TransferParty::kReceiver, "AcceptTransfer", accept);
}

namespace {

// A transfer that ends without moving the file, for `reason` (required): it replaces the request's.
auto EndUnmoved(pb::TransferState state, const std::string& reason) {
  return [state, &reason](pb::Transfer& t, CepTx&) -> absl::Status {
    t.set_state(state);
    t.set_reason(reason);
    return absl::OkStatus();
  };
}

}  // namespace

absl::StatusOr<pb::Transfer> Cep::RejectTransfer(const P& p, const pb::RejectTransferRequest& r) {
  Violations v;
  CheckText(r.reason(), "reason", 500, true, v);
  return DecideTransfer(p, r.name(), v, TransferParty::kReceiver, "RejectTransfer",
                        EndUnmoved(pb::TRANSFER_STATE_REJECTED, r.reason()));
}

// The holder's way out of its own request (consent withdrawn, a receiver that never answers):
// without it a pending transfer would hold the file for good, since a case has one at a time.
// While pending, the sender holds the case: the file moves only by accepting this transfer.
absl::StatusOr<pb::Transfer> Cep::CancelTransfer(const P& p, const pb::CancelTransferRequest& r) {
  Violations v;
  CheckText(r.reason(), "reason", 500, true, v);
  return DecideTransfer(p, r.name(), v, TransferParty::kSender, "CancelTransfer",
                        EndUnmoved(pb::TRANSFER_STATE_CANCELLED, r.reason()));
}

absl::StatusOr<pb::ListTransfersResponse> Cep::ListTransfers(const P& p, const pb::ListTransfersRequest& r) {
  if (absl::Status s = OperatorOnly(p); !s.ok()) return s;
  if (absl::Status s = repository_.Transact([&](CepTx& tx) { return KnownOperator(tx, p).status(); }); !s.ok()) {
    return s;
  }
  auto terms = aip::ParseFilter(r.filter(), {"state="});
  if (!terms.ok()) return terms.status();
  TransferQuery q;
  q.operator_id = p.id;
  for (const aip::FilterTerm& t : *terms) {
    auto state = EnumValue<pb::TransferState>("TRANSFER_STATE_", t.value, pb::TransferState_Parse, "state");
    if (!state.ok()) return state.status();
    q.state = *state;
  }
  const std::string scope = absl::StrCat("ListTransfers\n", p.ToString(), "\n", r.filter());
  auto page = aip::Paginate<pb::Transfer>(
      page_tokens_, scope, r.page_size(), r.page_token(),
      [&](const std::string& cursor, int limit) {
        q.after_id = cursor;
        q.limit = limit;
        return repository_.ListTransfers(q);
      },
      [](const pb::Transfer& t) { return LastSegment(t.name()); });
  if (!page.ok()) return page.status();
  // A transfer tells about a person's file (its reason is free text): each one read is audited
  // on the file, as RequestTransfer is.
  if (!page->items.empty()) {
    const absl::Time now = clock_.Now();
    std::vector<AuditEntry> reads;
    for (const pb::Transfer& t : page->items) reads.push_back({now, p.ToString(), "ListTransfers", t.case_(), t.name()});
    if (absl::Status s = read_audit_.Submit(std::move(reads)); !s.ok()) return s;
  }
  pb::ListTransfersResponse out;
  for (pb::Transfer& t : page->items) *out.add_transfers() = std::move(t);
  out.set_next_page_token(page->next_page_token);
  return out;
}

// --- Retention and erasure ----------------------------------------------------------------------

namespace {

bool Retainable(pb::CaseState s) {
  return s == pb::CASE_STATE_OPEN || s == pb::CASE_STATE_CLOSED || s == pb::CASE_STATE_TRANSFERRED;
}

// The retention pass skips a case that changed under it (ABORTED): the next pass decides again.
absl::StatusOr<bool> SkipIfChanged(absl::StatusOr<bool> changed) {
  if (absl::IsAborted(changed.status())) return false;
  return changed;
}

}  // namespace

absl::Status Cep::AnonymiseCase(CepTx& tx, Versioned<pb::Case>& c, const P& p, const std::string& actor,
                                const std::string& action, pb::ActivityKind kind, const std::string& reason,
                                int yyyymmdd, absl::Time now) {
  if (!c.value.external_id().empty()) {
    // The id goes with the rest; its hash stays, so a re-import of the history finds the file.
    if (absl::Status s = tx.RememberErasedExternalId(LastSegment(c.value.operator_()),
                                                     ErasedExternalIdHash(pseudonym_key_, c.value.external_id()));
        !s.ok()) {
      return s;
    }
  }
  // The file leaves the person: a random name in place of the pseudonym (rules.h ScrubCase).
  const std::string person = c.value.beneficiary();
  ScrubCase(c.value, absl::StrCat(NewId(), NewId()));
  if (absl::Status s = TransitionCase(c.value, pb::CASE_STATE_ANONYMISED, actor, now, reason); !s.ok()) {
    return s;
  }
  c.value.clear_etag();
  // last_activity_time is left as it was: anonymisation is not the case's activity.
  if (absl::Status s = tx.PutCase(c.value, c.version, now); !s.ok()) return s;
  // Transfer reasons are free text about the file; a pending transfer has nothing left to move.
  auto transfers = tx.TransfersOfCase(LastSegment(c.value.name()));
  if (!transfers.ok()) return transfers.status();
  for (Versioned<pb::Transfer>& t : *transfers) {
    t.value.clear_reason();
    if (t.value.state() == pb::TRANSFER_STATE_REQUESTED) {
      t.value.set_state(pb::TRANSFER_STATE_REJECTED);
      t.value.set_reason("case anonymised");
      *t.value.mutable_decide_time() = ToTimestamp(now);
    }
    if (absl::Status s = tx.PutTransfer(t.value, t.version); !s.ok()) return s;
  }
  auto e = EventFor(tx, c.value, kind, yyyymmdd);
  if (!e.ok()) return e.status();
  // The event names the person as the feed's earlier events did: downstream copies find theirs.
  e->set_beneficiary(person);
  if (absl::Status s = tx.AppendActivities({*e}, now); !s.ok()) return s;
  return Audit(tx, now, p, action, c.value.name(), pb::ActivityKind_Name(kind).substr(sizeof("ACTIVITY_KIND_") - 1));
}

absl::StatusOr<pb::ErasureReceipt> Cep::RequestErasure(const P& p, const pb::RequestErasureRequest& r) {
  if (absl::Status s = OperatorOnly(p); !s.ok()) return s;
  Violations v;
  const std::string pseudonym = IdIn(kBeneficiaryPattern, r.beneficiary(), "beneficiary", v);
  CheckText(r.reason(), "reason", 200, false, v);
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  const absl::Time now = clock_.Now();
  constexpr char kRequested[] = "erasure requested";
  const std::string reason = r.reason().empty() ? kRequested : r.reason();
  pb::ErasureReceipt receipt;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    if (absl::Status s = KnownOperator(tx, p).status(); !s.ok()) return s;
    // Locked: a file opened or imported meanwhile would escape the erasure.
    if (absl::Status s = tx.LockBeneficiaries({pseudonym}); !s.ok()) return s;
    auto b = BeneficiaryAs(tx, p.id, pseudonym);
    if (!b.ok()) return b.status();
    if (!b->has_value()) return NotFound(r.beneficiary());
    auto cases = tx.CasesOfBeneficiary(pseudonym);
    if (!cases.ok()) return cases.status();
    // Erasures propagate to the person's files at every operator; another holder's file says
    // only that the person asked (not who was asked, nor the asker's words), and the receipt
    // counts the caller's own files: an operator learns nothing of the others.
    int anonymised = 0;
    int own = 0;
    std::set<std::string> told;  // operators that get an ERASED event of a file
    for (const pb::Case& listed : *cases) {
      if (listed.state() == pb::CASE_STATE_ANONYMISED) continue;
      auto c = tx.GetCase(LastSegment(listed.name()));
      if (!c.ok()) return c.status();
      told.insert(c->value.operator_());
      const bool caller_holds = c->value.operator_() == OperatorName(p.id);
      if (absl::Status s = AnonymiseCase(tx, *c, p, caller_holds ? p.ToString() : kErasureActor, "RequestErasure",
                                         pb::ACTIVITY_KIND_ERASED, caller_holds ? reason : kRequested, Today(now), now);
          !s.ok()) {
        return s;
      }
      ++anonymised;
      if (caller_holds) ++own;
    }
    // A registration without a file (an operator's contact row, no file of the person erased
    // there) is erased too and its operator told, as retention tells it of a deleted registration:
    // ERASED with no case, read before the row (its region) goes.
    auto registered = tx.ContactOperators(pseudonym);
    if (!registered.ok()) return registered.status();
    std::vector<pb::ActivityEvent> registrations;
    for (const std::string& op : *registered) {
      if (told.count(OperatorName(op)) > 0) continue;
      auto e = RegistrationEvent(tx, InactiveRegistration{pseudonym, op}, pb::ACTIVITY_KIND_ERASED, Today(now), now);
      if (!e.ok()) return e.status();
      registrations.push_back(*std::move(e));
    }
    if (absl::Status s = tx.DeleteContacts(pseudonym); !s.ok()) return s;
    if (absl::Status s = tx.AppendActivities(registrations, now); !s.ok()) return s;
    if (absl::Status s = tx.MarkBeneficiaryAnonymised(pseudonym); !s.ok()) return s;
    if (absl::Status s = Audit(tx, now, p, "RequestErasure", r.beneficiary(), absl::StrCat(anonymised, " cases"));
        !s.ok()) {
      return s;
    }
    receipt.set_beneficiary(r.beneficiary());
    receipt.set_cases_anonymised(own);
    *receipt.mutable_time() = ToTimestamp(now);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return receipt;
}

absl::StatusOr<bool> Cep::NoticeCase(const P& p, const std::string& id, int as_of, int64_t inactive_before,
                                     absl::Time now) {
  bool noticed = false;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    auto c = tx.GetCase(id);
    if (!c.ok()) return c.status();
    if (!Retainable(c->value.state()) || MicrosOf(c->value.last_activity_time()) >= inactive_before) {
      return absl::OkStatus();
    }
    auto notice = tx.GetNoticeDate(id);
    if (!notice.ok()) return notice.status();
    if (*notice != 0) return absl::OkStatus();
    // The notice is dated the day it is given, whatever the pass's as_of: a pass re-run for a past
    // date must not back-date it and anonymise before 30 real days.
    const int given = Today(now);
    if (absl::Status s = tx.MarkNoticed(id, given, c->version); !s.ok()) return s;
    auto e = EventFor(tx, c->value, pb::ACTIVITY_KIND_RETENTION_NOTICE, given);
    if (!e.ok()) return e.status();
    if (absl::Status s = tx.AppendActivities({*e}, now); !s.ok()) return s;
    if (absl::Status s = Audit(tx, now, p, "RunRetention", c->value.name(), "RETENTION_NOTICE"); !s.ok()) return s;
    noticed = true;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return noticed;
}

// Anonymises a noticed case still inactive. The beneficiary's file is handled per operator: the
// case's operator loses its copy of the contact details unless it still holds an open or closed
// case of the person (that file keeps them) or wrote the row again on or after the notice day (a new
// registration). Another operator's copy is not this file's: a registration without a file there
// has its own retention clock (ExpireRegistration), as has the holder's new one. Once every
// case of the person is anonymised and no operator's copy remains, the beneficiary is marked
// anonymised (coarse attributes only).
absl::StatusOr<bool> Cep::ExpireCase(const P& p, const std::string& id, int as_of, int64_t inactive_before,
                                     absl::Time now) {
  bool anonymised = false;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    auto c = tx.GetCase(id);
    if (!c.ok()) return c.status();
    if (!Retainable(c->value.state()) || MicrosOf(c->value.last_activity_time()) >= inactive_before) {
      return absl::OkStatus();
    }
    auto notice = tx.GetNoticeDate(id);
    if (!notice.ok()) return notice.status();
    if (!NoticeExpired(*notice, as_of)) return absl::OkStatus();
    const std::string reason = absl::StrFormat("retention: inactive for %d months, notice of %s", kRetentionMonths,
                                               FormatDateKey(*notice));
    const std::string pseudonym = LastSegment(c->value.beneficiary());
    const std::string holder = c->value.operator_();
    // Locked: the person's other files decide whether the person and the holder's copy go too.
    if (absl::Status s = tx.LockBeneficiaries({pseudonym}); !s.ok()) return s;
    if (absl::Status s =
            AnonymiseCase(tx, *c, p, p.ToString(), "RunRetention", pb::ACTIVITY_KIND_ANONYMISED, reason, as_of, now);
        !s.ok()) {
      return s;
    }
    auto cases = tx.CasesOfBeneficiary(pseudonym);
    if (!cases.ok()) return cases.status();
    bool holder_keeps_a_file = false;
    bool all_anonymised = true;
    for (const pb::Case& other : *cases) {
      if (other.operator_() == holder && ActiveState(other.state())) holder_keeps_a_file = true;
      if (other.state() != pb::CASE_STATE_ANONYMISED) all_anonymised = false;
    }
    // A holder's row written on or after the notice day is a new registration (the person came
    // back), not this file's copy: it has its own clock (ExpireRegistration). Day precision: the
    // notice only keeps its date.
    bool holder_registered_since = false;
    if (!holder_keeps_a_file) {
      auto row = tx.GetContactRetention(pseudonym, LastSegment(holder));
      if (!row.ok()) return row.status();
      holder_registered_since =
          row->has_value() && (*row)->last_activity >= absl::ToUnixMicros(StartOfDay(*notice));
    }
    if (!holder_keeps_a_file && !holder_registered_since) {
      if (absl::Status s = tx.DeleteContact(pseudonym, LastSegment(holder)); !s.ok()) return s;
      if (absl::Status s = Audit(tx, now, p, "RunRetention", absl::StrCat("beneficiaries/", pseudonym),
                                 absl::StrCat("contact details deleted at ", holder));
          !s.ok()) {
        return s;
      }
    }
    if (all_anonymised) {
      // A registration made after this file's notice (another operator's or the holder's) keeps the
      // person live.
      auto registered = tx.AnyContact(pseudonym);
      if (!registered.ok()) return registered.status();
      if (!*registered) {
        if (absl::Status s = tx.MarkBeneficiaryAnonymised(pseudonym); !s.ok()) return s;
        if (absl::Status s =
                Audit(tx, now, p, "RunRetention", absl::StrCat("beneficiaries/", pseudonym), "ANONYMISED");
            !s.ok()) {
          return s;
        }
      }
    }
    anonymised = true;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return anonymised;
}

absl::StatusOr<pb::ActivityEvent> Cep::RegistrationEvent(CepTx& tx, const InactiveRegistration& r,
                                                         pb::ActivityKind kind, int yyyymmdd, absl::Time now) {
  auto seen = tx.GetBeneficiariesSeenBy(r.operator_id, {r.pseudonym});
  if (!seen.ok()) return seen.status();
  pb::ActivityEvent e;
  e.set_kind(kind);
  *e.mutable_time() = ToTimestamp(now);
  e.set_operator_(OperatorName(r.operator_id));
  e.set_beneficiary(absl::StrCat("beneficiaries/", r.pseudonym));
  if (auto b = seen->find(r.pseudonym); b != seen->end()) e.set_region(b->second.region());
  e.set_month(MonthOf(yyyymmdd));
  return e;
}

namespace {

// Whether the operator's contact row is still a registration without a file inactive since
// before `inactive_before` (re-read in the deciding transaction: a write or a case opened since wins).
absl::StatusOr<std::optional<ContactRetention>> StillInactiveRegistration(CepTx& tx, const InactiveRegistration& r,
                                                                          int64_t inactive_before) {
  auto retention = tx.GetContactRetention(r.pseudonym, r.operator_id);
  if (!retention.ok()) return retention.status();
  if (!retention->has_value() || (*retention)->last_activity >= inactive_before) {
    return std::optional<ContactRetention>();
  }
  auto cases = tx.CasesOfBeneficiary(r.pseudonym);
  if (!cases.ok()) return cases.status();
  const std::string op = OperatorName(r.operator_id);
  if (std::any_of(cases->begin(), cases->end(),
                  [&](const pb::Case& c) { return c.operator_() == op && ActiveState(c.state()); })) {
    return std::optional<ContactRetention>();
  }
  return retention;
}

}  // namespace

absl::StatusOr<bool> Cep::NoticeRegistration(const P& p, const InactiveRegistration& r, int64_t inactive_before,
                                             absl::Time now) {
  bool noticed = false;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    if (absl::Status s = tx.LockBeneficiaries({r.pseudonym}); !s.ok()) return s;
    auto retention = StillInactiveRegistration(tx, r, inactive_before);
    if (!retention.ok()) return retention.status();
    if (!retention->has_value() || (*retention)->notice_date != 0) return absl::OkStatus();
    // Dated the day it is given, as a case's notice (NoticeCase).
    const int given = Today(now);
    auto marked = tx.MarkContactNoticed(r.pseudonym, r.operator_id, given, (*retention)->last_activity);
    if (!marked.ok()) return marked.status();
    if (!*marked) return absl::OkStatus();
    auto e = RegistrationEvent(tx, r, pb::ACTIVITY_KIND_RETENTION_NOTICE, given, now);
    if (!e.ok()) return e.status();
    if (absl::Status s = tx.AppendActivities({*e}, now); !s.ok()) return s;
    if (absl::Status s = Audit(tx, now, p, "RunRetention", e->beneficiary(),
                               absl::StrCat("RETENTION_NOTICE of the registration at ", e->operator_()));
        !s.ok()) {
      return s;
    }
    noticed = true;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return noticed;
}

// Deletes a noticed registration still without a file and inactive: the operator's contact
// details and its record of the person. A person left with no case anywhere and no operator's
// record is marked anonymised (coarse attributes only), as when their last file goes.
absl::StatusOr<bool> Cep::ExpireRegistration(const P& p, const InactiveRegistration& r, int as_of,
                                             int64_t inactive_before, absl::Time now) {
  bool deleted = false;
  absl::Status st = repository_.Transact([&](CepTx& tx) -> absl::Status {
    if (absl::Status s = tx.LockBeneficiaries({r.pseudonym}); !s.ok()) return s;
    auto retention = StillInactiveRegistration(tx, r, inactive_before);
    if (!retention.ok()) return retention.status();
    if (!retention->has_value() || !NoticeExpired((*retention)->notice_date, as_of)) return absl::OkStatus();
    auto e = RegistrationEvent(tx, r, pb::ACTIVITY_KIND_ANONYMISED, as_of, now);
    if (!e.ok()) return e.status();
    if (absl::Status s = tx.DeleteContact(r.pseudonym, r.operator_id); !s.ok()) return s;
    if (absl::Status s = tx.AppendActivities({*e}, now); !s.ok()) return s;
    if (absl::Status s = Audit(tx, now, p, "RunRetention", e->beneficiary(),
                               absl::StrCat("contact details deleted at ", e->operator_(), " (registration without a file, notice of ",
                                            FormatDateKey((*retention)->notice_date), ")"));
        !s.ok()) {
      return s;
    }
    auto cases = tx.CasesOfBeneficiary(r.pseudonym);
    if (!cases.ok()) return cases.status();
    const bool live_case = std::any_of(cases->begin(), cases->end(),
                                       [](const pb::Case& c) { return c.state() != pb::CASE_STATE_ANONYMISED; });
    if (!live_case) {
      auto seen_anywhere = tx.AnyContact(r.pseudonym);
      if (!seen_anywhere.ok()) return seen_anywhere.status();
      if (!*seen_anywhere) {
        if (absl::Status s = tx.MarkBeneficiaryAnonymised(r.pseudonym); !s.ok()) return s;
      }
    }
    deleted = true;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return deleted;
}

absl::StatusOr<pb::RetentionReport> Cep::RunRetention(const P& p, const pb::RunRetentionRequest& r) {
  if (absl::Status s = NationalOnly(p, "run the retention pass"); !s.ok()) return s;
  Violations v;
  CheckRequiredDay(r.has_as_of(), r.as_of(), "as_of", v);
  // A pass ahead of today would count inactivity and notice periods that have not elapsed yet.
  CheckNotFuture(r.as_of(), Today(clock_.Now()), "as_of", v);
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  const int as_of = DateKey(r.as_of());
  const int64_t inactive_before = absl::ToUnixMicros(StartOfDay(InactiveBefore(as_of)));
  const absl::Time now = clock_.Now();
  pb::RetentionReport report;
  int skipped = 0;
  int noticed_files = 0, anonymised_files = 0, noticed_registrations = 0, deleted_registrations = 0;
  // One item's decision, in its own transaction (which re-reads it: an item touched meanwhile is
  // left alone): a notice, the end once the notice ran out, nothing while it runs.
  const auto decide = [&](int notice_date, const std::function<absl::StatusOr<bool>()>& notice,
                          const std::function<absl::StatusOr<bool>()>& expire, int& noticed,
                          int& expired) -> absl::Status {
    const bool first = notice_date == 0;
    if (!first && !NoticeExpired(notice_date, as_of)) return absl::OkStatus();
    absl::StatusOr<bool> changed = SkipIfChanged(first ? notice() : expire());
    if (!changed.ok()) return changed.status();
    ++(*changed ? (first ? noticed : expired) : skipped);
    return absl::OkStatus();
  };
  // Each state is scanned in (last_activity, id) order.
  for (pb::CaseState state : {pb::CASE_STATE_OPEN, pb::CASE_STATE_CLOSED, pb::CASE_STATE_TRANSFERRED}) {
    InactiveCaseQuery q;
    q.state = state;
    q.inactive_before = inactive_before;
    for (;;) {
      auto batch = repository_.ListInactiveCases(q);
      if (!batch.ok()) return batch.status();
      for (const InactiveCase& c : *batch) {
        q.after_last_activity = c.last_activity;
        q.after_id = c.id;
        if (absl::Status s = decide(
                c.notice_date, [&] { return NoticeCase(p, c.id, as_of, inactive_before, now); },
                [&] { return ExpireCase(p, c.id, as_of, inactive_before, now); }, noticed_files, anonymised_files);
            !s.ok()) {
          return s;
        }
      }
      if (static_cast<int>(batch->size()) < q.limit) break;
    }
  }
  // Registrations without a file: the same clock and notice, on the operator's contact row.
  if (absl::Status s = repository_.DateUndatedContacts(absl::ToUnixMicros(now)); !s.ok()) return s;
  InactiveRegistrationQuery rq;
  rq.inactive_before = inactive_before;
  for (;;) {
    auto batch = repository_.ListInactiveRegistrations(rq);
    if (!batch.ok()) return batch.status();
    for (const InactiveRegistration& reg : *batch) {
      rq.after_last_activity = reg.last_activity;
      rq.after_pseudonym = reg.pseudonym;
      rq.after_operator = reg.operator_id;
      if (absl::Status s = decide(
              reg.notice_date, [&] { return NoticeRegistration(p, reg, inactive_before, now); },
              [&] { return ExpireRegistration(p, reg, as_of, inactive_before, now); }, noticed_registrations,
              deleted_registrations);
          !s.ok()) {
        return s;
      }
    }
    if (static_cast<int>(batch->size()) < rq.limit) break;
  }
  report.set_notices_sent(noticed_files);
  report.set_files_anonymised(anonymised_files);
  report.set_registrations_noticed(noticed_registrations);
  report.set_registrations_deleted(deleted_registrations);
  log::Info("retention pass", {{"as_of", absl::StrFormat("%08d", as_of)},
                               {"notices_sent", absl::StrCat(report.notices_sent())},
                               {"files_anonymised", absl::StrCat(report.files_anonymised())},
                               {"registrations_noticed", absl::StrCat(report.registrations_noticed())},
                               {"registrations_deleted", absl::StrCat(report.registrations_deleted())},
                               {"skipped_changed", absl::StrCat(skipped)}});
  return report;
}

// --- Indicators ---------------------------------------------------------------------------------

// National callers see everything; a region only its region, small cells always suppressed; an
// operator only its own activity. The scope is added as a condition, never read from the request.
absl::StatusOr<pb::QueryIndicatorsResponse> Cep::QueryIndicators(const P& p, const pb::QueryIndicatorsRequest& r) {
  std::optional<indicators::Condition> scope;
  if (p.Is(Kind::kRegion)) {
    if (!IsRegion(p.id)) return absl::PermissionDeniedError(absl::StrCat(p.ToString(), " is not an INSEE region"));
    scope = indicators::Condition{indicators::kRegion, true, p.id, 0};
  } else if (p.Is(Kind::kOperator)) {
    scope = indicators::Condition{indicators::kOperator, true, p.id, 0};
  } else if (!p.Is(Kind::kNational)) {
    return absl::PermissionDeniedError("indicators are for France compétences, the regions and the operators");
  }
  auto plan = indicators::PlanQuery(r);
  if (!plan.ok()) return plan.status();
  if (scope.has_value()) {
    plan->conditions.push_back(*scope);
    plan->needed |= indicators::Bit(scope->dim);
    if (p.Is(Kind::kRegion)) plan->suppress = true;
    if (absl::Status s = indicators::CheckCovered(plan->needed); !s.ok()) return s;
  }
  // The parts are independent reads (followed beneficiaries need four): each on its own thread,
  // so on MySQL they run side by side on pooled connections.
  const std::vector<indicators::RollupQuery> queries = indicators::StoreQueries(*plan);
  std::vector<absl::StatusOr<std::vector<std::pair<indicators::Cell, int64_t>>>> parts(queries.size());
  std::vector<std::thread> others;
  for (size_t i = 1; i < queries.size(); ++i) {
    others.emplace_back([this, &parts, &queries, i] { parts[i] = repository_.QueryRollup(queries[i]); });
  }
  parts[0] = repository_.QueryRollup(queries[0]);
  for (std::thread& t : others) t.join();
  std::vector<std::vector<std::pair<indicators::Cell, int64_t>>> rows;
  for (auto& part : parts) {
    if (!part.ok()) return part.status();
    rows.push_back(*std::move(part));
  }
  return indicators::Answer(*plan, rows);
}

// --- Compliance ---------------------------------------------------------------------------------

absl::StatusOr<pb::ComplianceReport> Cep::GetComplianceReport(const P& p, const pb::GetComplianceReportRequest& r) {
  OperatorQuery q;
  if (p.Is(Kind::kRegion)) {
    if (!IsRegion(p.id)) return absl::PermissionDeniedError(absl::StrCat(p.ToString(), " is not an INSEE region"));
    q.region = p.id;  // operators serving the region or designated for it
  } else if (!p.Is(Kind::kNational)) {
    return absl::PermissionDeniedError("compliance is for France compétences (national) and the regions");
  }
  Violations v;
  const bool as_of_set = r.has_as_of() && DateKey(r.as_of()) != 0;
  if (as_of_set && !IsCalendarDate(r.as_of())) v.Add("as_of", "must be a calendar date");
  if (absl::Status s = v.ToStatus(); !s.ok()) return s;
  const int as_of = as_of_set ? DateKey(r.as_of()) : Today(clock_.Now());

  auto operators = ReadAll<pb::Operator>(
      [&](const std::string& after, int limit) {
        q.after_id = after;
        q.limit = limit;
        return repository_.ListOperators(q);
      },
      [](const pb::Operator& op) { return LastSegment(op.name()); });
  if (!operators.ok()) return operators.status();
  std::vector<std::string> ids;
  for (const pb::Operator& op : *operators) ids.push_back(LastSegment(op.name()));
  auto sharing = SharingAsOf(ids, as_of);
  if (!sharing.ok()) return sharing.status();
  pb::ComplianceReport out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const Sharing& s = (*sharing)[i];
    pb::OperatorCompliance* oc = out.add_operators();
    oc->set_operator_(OperatorName(ids[i]));
    if (s.last_micros.has_value()) *oc->mutable_last_shared_activity() = TimestampFromMicros(*s.last_micros);
    oc->set_silent_six_months(s.silent_six_months && OldEnoughToBeSilent((*operators)[i], as_of));
  }
  return out;
}

absl::StatusOr<std::vector<Cep::Sharing>> Cep::SharingAsOf(const std::vector<std::string>& operator_ids,
                                                           int as_of) {
  auto last = repository_.LastOwnActivity(operator_ids, absl::ToUnixMicros(EndOfDay(as_of)));
  if (!last.ok()) return last.status();
  std::vector<Sharing> out;
  out.reserve(operator_ids.size());
  for (const std::string& id : operator_ids) {
    auto it = last->find(id);
    out.push_back(SharingFrom(it == last->end() ? std::nullopt : std::optional<int64_t>(it->second), as_of));
  }
  return out;
}

Cep::Sharing Cep::SharingFrom(std::optional<int64_t> last_micros, int as_of) {
  Sharing s;
  s.last_micros = last_micros;
  s.silent_six_months =
      !last_micros.has_value() || *last_micros < absl::ToUnixMicros(StartOfDay(SilentUnlessActiveSince(as_of)));
  return s;
}

// --- Data-sharing feed --------------------------------------------------------------------------

namespace {

// "" = from the beginning; otherwise the decimal position of an event.
absl::StatusOr<int64_t> ParseCursor(const std::string& cursor) {
  int64_t after = 0;
  if (cursor.empty()) return after;
  if (cursor.size() > 18 || cursor.find_first_not_of("0123456789") != std::string::npos ||
      !absl::SimpleAtoi(cursor, &after)) {
    return InvalidArgument("after_cursor", "must be empty or the cursor of an event of this feed");
  }
  return after;
}

}  // namespace

absl::Status Cep::StreamActivity(const P& p, const pb::StreamActivityRequest& r, const FeedSink& sink) {
  std::string operator_id;  // empty: every operator's events (national)
  if (p.Is(Kind::kOperator)) {
    if (absl::Status s = repository_.Transact([&](CepTx& tx) { return KnownOperator(tx, p).status(); }); !s.ok()) {
      return s;
    }
    operator_id = p.id;
  } else if (!p.Is(Kind::kNational)) {
    return absl::PermissionDeniedError(
        "the activity feed is for France compétences (national) and the operators (their own events)");
  }
  auto after = ParseCursor(r.after_cursor());
  if (!after.ok()) return after.status();
  int64_t cursor = *after;
  const int batch_size = std::max(feed_.batch_size, 1);
  const absl::Status gone = absl::CancelledError("the feed's call ended");
  for (;;) {
    if (sink.cancelled()) return gone;
    auto batch = operator_id.empty() ? repository_.ReadActivity(cursor, batch_size)
                                     : repository_.ReadOperatorActivity(operator_id, cursor, batch_size);
    if (!batch.ok()) return batch.status();
    for (const pb::ActivityEvent& e : *batch) {
      if (!absl::SimpleAtoi(e.cursor(), &cursor)) return absl::InternalError("activity event without a cursor");
      if (!sink.write(e)) return gone;
    }
    if (static_cast<int>(batch->size()) == batch_size) continue;
    if (!r.follow()) return absl::OkStatus();
    // Wait for the next poll, looking at the call often enough to end soon after it is over.
    const absl::Time next = absl::Now() + feed_.poll_interval;
    for (absl::Time t = absl::Now(); t < next; t = absl::Now()) {
      if (sink.cancelled()) return gone;
      absl::SleepFor(std::min(next - t, absl::Milliseconds(50)));
    }
  }
}

// --- gRPC adapter -------------------------------------------------------------------------------

namespace {

// Bounds every feed write: a write the client does not take within `limit` (it stopped reading
// and flow control holds the write) cancels its call, which makes the blocked Write return. One
// thread for every stream, asleep while no write is pending.
class WriteWatchdog {
 public:
  explicit WriteWatchdog(absl::Duration limit) : limit_(limit), thread_([this] { Run(); }) {}
  ~WriteWatchdog() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  template <typename WriteFn>
  bool Write(grpc::ServerContext* ctx, WriteFn write) {
    uint64_t id;
    {
      absl::MutexLock lock(&mu_);
      id = next_id_++;
      pending_[id] = {ctx, absl::Now() + limit_};
    }
    const bool ok = write();
    absl::MutexLock lock(&mu_);
    pending_.erase(id);  // under the lock: Run never touches a context whose write returned
    return ok;
  }

 private:
  struct Pending {
    grpc::ServerContext* ctx;
    absl::Time deadline;
  };

  // Every deadline is a write's start + limit_, so a write registered while others are pending
  // expires after them: the thread sleeps until the earliest deadline and wakes early only when
  // the first write arrives or on stop.
  void Run() {
    absl::MutexLock lock(&mu_);
    while (!stop_) {
      if (pending_.empty()) {
        mu_.Await(absl::Condition(+[](WriteWatchdog* w) { return w->stop_ || !w->pending_.empty(); }, this));
        continue;
      }
      absl::Time earliest = absl::InfiniteFuture();
      for (const auto& [id, p] : pending_) earliest = std::min(earliest, p.deadline);
      mu_.AwaitWithDeadline(absl::Condition(&stop_), earliest);
      const absl::Time now = absl::Now();
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.deadline <= now) {
          log::Warn("activity feed: the client stopped reading, stream cancelled",
                    {{"write_timeout", absl::FormatDuration(limit_)}});
          it->second.ctx->TryCancel();
          it = pending_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  const absl::Duration limit_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: starts once the members above exist
};

class GrpcService final : public pb::CepService::Service {
 public:
  GrpcService(Cep& logic, absl::Duration feed_write_timeout) : logic_(logic), watchdog_(feed_write_timeout) {}

#define PARCOURS_CEP_METHOD(Method, Request, Response)                                              \
  grpc::Status Method(grpc::ServerContext* ctx, const pb::Request* r, pb::Response* out) override { \
    auto principal = PrincipalOf(*ctx);                                                             \
    if (!principal.ok()) return Reply(principal.status());                                          \
    return Reply(logic_.Method(*principal, *r), out);                                               \
  }
  PARCOURS_CEP_METHOD(CreateOperator, CreateOperatorRequest, Operator)
  PARCOURS_CEP_METHOD(GetOperator, GetOperatorRequest, Operator)
  PARCOURS_CEP_METHOD(ListOperators, ListOperatorsRequest, ListOperatorsResponse)
  PARCOURS_CEP_METHOD(DesignateOperator, DesignateOperatorRequest, Operator)
  PARCOURS_CEP_METHOD(WithdrawOperator, WithdrawOperatorRequest, Operator)
  PARCOURS_CEP_METHOD(ListLevelCatalogues, ListLevelCataloguesRequest, ListLevelCataloguesResponse)
  PARCOURS_CEP_METHOD(RegisterBeneficiary, RegisterBeneficiaryRequest, Beneficiary)
  PARCOURS_CEP_METHOD(GetBeneficiary, GetBeneficiaryRequest, Beneficiary)
  PARCOURS_CEP_METHOD(UpdateContactDetails, UpdateContactDetailsRequest, ContactDetails)
  PARCOURS_CEP_METHOD(OpenCase, OpenCaseRequest, Case)
  PARCOURS_CEP_METHOD(GetCase, GetCaseRequest, Case)
  PARCOURS_CEP_METHOD(ListCases, ListCasesRequest, ListCasesResponse)
  PARCOURS_CEP_METHOD(UpdateCase, UpdateCaseRequest, Case)
  PARCOURS_CEP_METHOD(ChangeLevel, ChangeLevelRequest, Case)
  PARCOURS_CEP_METHOD(RecordService, RecordServiceRequest, Case)
  PARCOURS_CEP_METHOD(RecordOutcome, RecordOutcomeRequest, Case)
  PARCOURS_CEP_METHOD(RecordSatisfaction, RecordSatisfactionRequest, Case)
  PARCOURS_CEP_METHOD(CloseCase, CloseCaseRequest, Case)
  PARCOURS_CEP_METHOD(ReopenCase, ReopenCaseRequest, Case)
  PARCOURS_CEP_METHOD(RequestTransfer, RequestTransferRequest, Transfer)
  PARCOURS_CEP_METHOD(AcceptTransfer, AcceptTransferRequest, Transfer)
  PARCOURS_CEP_METHOD(RejectTransfer, RejectTransferRequest, Transfer)
  PARCOURS_CEP_METHOD(CancelTransfer, CancelTransferRequest, Transfer)
  PARCOURS_CEP_METHOD(ListTransfers, ListTransfersRequest, ListTransfersResponse)
  PARCOURS_CEP_METHOD(RequestErasure, RequestErasureRequest, ErasureReceipt)
  PARCOURS_CEP_METHOD(RunRetention, RunRetentionRequest, RetentionReport)
  PARCOURS_CEP_METHOD(GetComplianceReport, GetComplianceReportRequest, ComplianceReport)
  PARCOURS_CEP_METHOD(QueryIndicators, QueryIndicatorsRequest, QueryIndicatorsResponse)
#undef PARCOURS_CEP_METHOD

  // A long call on its own sync-server thread: it ends when the client cancels, when a write
  // stalls past the watchdog's limit, or when the server's shutdown deadline cancels it.
  grpc::Status StreamActivity(grpc::ServerContext* ctx, const pb::StreamActivityRequest* r,
                              grpc::ServerWriter<pb::ActivityEvent>* writer) override {
    auto principal = PrincipalOf(*ctx);
    if (!principal.ok()) return Reply(principal.status());
    Cep::FeedSink sink;
    sink.write = [&](const pb::ActivityEvent& e) { return watchdog_.Write(ctx, [&] { return writer->Write(e); }); };
    sink.cancelled = [&] { return ctx->IsCancelled(); };
    return Reply(logic_.StreamActivity(*principal, *r, sink));
  }

  // Client streaming on a sync-server thread: rows are read batch by batch as they are imported.
  grpc::Status ImportCases(grpc::ServerContext* ctx, grpc::ServerReader<pb::ImportCasesRequest>* reader,
                           pb::ImportCasesResponse* out) override {
    auto principal = PrincipalOf(*ctx);
    if (!principal.ok()) return Reply(principal.status());
    return Reply(logic_.ImportCases(
                     *principal, [&](pb::ImportCasesRequest* r) { return reader->Read(r); },
                     [&] { return ctx->IsCancelled(); }),
                 out);
  }

 private:
  Cep& logic_;
  WriteWatchdog watchdog_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewGrpcService(Cep& logic, absl::Duration feed_write_timeout) {
  return std::make_unique<GrpcService>(logic, feed_write_timeout);
}

}  // namespace parcours::cep
