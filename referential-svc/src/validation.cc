#include "referential-svc/src/validation.h"

#include <set>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "platform/dates.h"
#include "platform/principal.h"

namespace parcours::referential {
namespace {

int Utf8Chars(absl::string_view s) {
  int n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

void CheckText(absl::string_view text, int max_chars, bool required, std::string field, Violations& v) {
  if (required && absl::StripAsciiWhitespace(text).empty()) {
    v.Add(std::move(field), "must not be empty (nor only spaces)");
  } else if (Utf8Chars(text) > max_chars) {
    v.Add(std::move(field), absl::StrCat("must be at most ", max_chars, " characters"));
  }
}

// "certifications/{code}/versions/{n}" -> code; "" for anything else.
std::string ParseVersionCode(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, "certifications/")) return "";
  const size_t slash = name.find("/versions/");
  return slash == absl::string_view::npos ? "" : std::string(name.substr(0, slash));
}

void CheckCount(int count, std::string field, Violations& v) {
  if (count > kMaxItems) v.Add(std::move(field), absl::StrCat("at most ", kMaxItems, " items"));
}

}  // namespace

void CheckDate(const google::type::Date& d, std::string field, Violations& v) {
  if (d.year() == 0 && d.month() == 0 && d.day() == 0) return;  // unset
  if (!IsCalendarDate(d)) v.Add(std::move(field), "must be a valid calendar date (year 1900..9999)");
}

bool IsValidCode(absl::string_view code) {
  if (code.size() < 2 || code.size() > kMaxCodeChars) return false;
  for (char c : code) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

void CheckCertification(const pb::Certification& c, absl::string_view prefix, Violations& v) {
  auto f = [&](absl::string_view field) { return absl::StrCat(prefix, ".", field); };
  if (!IsValidCode(c.code())) {
    v.Add(f("code"), "must be 2..64 characters among letters, digits, '-', '_' and '.'");
  }
  if (!pb::CertificationKind_IsValid(c.kind()) || c.kind() == pb::CERTIFICATION_KIND_UNSPECIFIED) {
    v.Add(f("kind"), "must be CQP, RNCP or RS");
  }
  CheckText(c.title(), kMaxTitleChars, /*required=*/true, f("title"), v);
  CheckText(c.abbreviation(), kMaxTitleChars, false, f("abbreviation"), v);
  CheckText(c.registration_type(), kMaxTitleChars, false, f("registration_type"), v);
  if (!pb::QualificationLevel_IsValid(c.level())) {
    v.Add(f("level"), "must be NONE or NIV3..NIV8");
  } else if (c.kind() == pb::CERTIFICATION_KIND_RNCP && c.level() == pb::QUALIFICATION_LEVEL_UNSPECIFIED) {
    // NONE is a stated level: the répertoire's legacy fiches without one ("REPRISE").
    v.Add(f("level"), "an RNCP title states its level: NIV3..NIV8, or NONE for a legacy fiche without one");
  } else if (c.kind() == pb::CERTIFICATION_KIND_RS && c.level() > pb::QUALIFICATION_LEVEL_NONE) {
    v.Add(f("level"), "an RS certification has no level");
  }
  CheckCount(c.certifiers_size(), f("certifiers"), v);
  for (int i = 0; i < c.certifiers_size(); ++i) {
    const pb::Certifier& certifier = c.certifiers(i);
    CheckText(certifier.name(), 255, true, f(absl::StrCat("certifiers[", i, "].name")), v);
    // MySQL compares VARCHAR keys without trailing spaces (PAD SPACE): "X" and "X " would be one
    // certifier there and two in SQLite. Refuse the ambiguity instead.
    if (!certifier.name().empty() &&
        (absl::ascii_isspace(certifier.name().front()) || absl::ascii_isspace(certifier.name().back()))) {
      v.Add(f(absl::StrCat("certifiers[", i, "].name")), "must not start or end with white space");
    }
    bool siret_ok = certifier.siret().empty() ||
                    (certifier.siret().size() == 14 &&
                     certifier.siret().find_first_not_of("0123456789") == std::string::npos);
    if (!siret_ok) v.Add(f(absl::StrCat("certifiers[", i, "].siret")), "must be 14 digits");
    if (!certifier.principal_id().empty() && !ValidPrincipalId(certifier.principal_id())) {
      v.Add(f(absl::StrCat("certifiers[", i, "].principal_id")),
            "letters, digits, '-', '_' and '.', at most 128 characters");
    }
  }
  CheckDate(c.registration_date(), f("registration_date"), v);
  CheckDate(c.registration_end_date(), f("registration_end_date"), v);
  CheckDate(c.issuance_deadline(), f("issuance_deadline"), v);
  if (c.has_registration_date() && c.has_registration_end_date() &&
      DateKey(c.registration_end_date()) < DateKey(c.registration_date())) {
    v.Add(f("registration_end_date"), "must not be before registration_date");
  }
  for (auto* list : {&c.predecessor_codes(), &c.successor_codes()}) {
    std::string name = list == &c.predecessor_codes() ? "predecessor_codes" : "successor_codes";
    CheckCount(list->size(), f(name), v);
    for (int i = 0; i < list->size(); ++i) {
      if (!IsValidCode(list->Get(i))) v.Add(f(absl::StrCat(name, "[", i, "]")), "is not a certification code");
    }
  }
  for (auto* list : {&c.nsf_codes(), &c.formacodes(), &c.rome_codes()}) {
    std::string name = list == &c.nsf_codes() ? "nsf_codes" : list == &c.formacodes() ? "formacodes" : "rome_codes";
    CheckCount(list->size(), f(name), v);
    for (int i = 0; i < list->size(); ++i) {
      CheckText(list->Get(i).code(), kMaxCodeChars, true, f(absl::StrCat(name, "[", i, "].code")), v);
      CheckText(list->Get(i).label(), kMaxTitleChars, false, f(absl::StrCat(name, "[", i, "].label")), v);
    }
  }
}

void CheckVersion(const pb::Version& version, absl::string_view prefix, Violations& v) {
  auto f = [&](absl::string_view field) { return absl::StrCat(prefix, ".", field); };
  CheckText(version.description(), kMaxTextChars, false, f("description"), v);
  CheckText(version.attested_capabilities(), kMaxLongTextChars, false, f("attested_capabilities"), v);
  CheckCount(version.blocs_size(), f("blocs"), v);
  for (int b = 0; b < version.blocs_size(); ++b) {
    const pb::Bloc& bloc = version.blocs(b);
    std::string bp = f(absl::StrCat("blocs[", b, "]"));
    CheckText(bloc.code(), kMaxCodeChars, true, bp + ".code", v);
    CheckText(bloc.title(), kMaxTitleChars, true, bp + ".title", v);
    CheckText(bloc.short_label(), kMaxTitleChars, false, bp + ".short_label", v);
    CheckText(bloc.competences_text(), kMaxLongTextChars, false, bp + ".competences_text", v);
    CheckText(bloc.assessment_methods(), kMaxLongTextChars, false, bp + ".assessment_methods", v);
    CheckCount(bloc.competences_size(), bp + ".competences", v);
    for (int c = 0; c < bloc.competences_size(); ++c) {
      const pb::Competence& comp = bloc.competences(c);
      std::string cp = absl::StrCat(bp, ".competences[", c, "]");
      CheckText(comp.code(), kMaxCodeChars, true, cp + ".code", v);
      CheckText(comp.text(), kMaxTextChars, true, cp + ".text", v);
      CheckText(comp.criteria_heading(), kMaxTextChars, false, cp + ".criteria_heading", v);
      CheckCount(comp.criteria_size(), cp + ".criteria", v);
      for (int k = 0; k < comp.criteria_size(); ++k) {
        CheckText(comp.criteria(k).text(), kMaxTextChars, true, absl::StrCat(cp, ".criteria[", k, "].text"), v);
      }
    }
  }
  CheckCount(version.scales_size(), f("scales"), v);
  for (int s = 0; s < version.scales_size(); ++s) {
    const pb::AppreciationScale& scale = version.scales(s);
    std::string sp = f(absl::StrCat("scales[", s, "]"));
    if (!pb::ScaleKind_IsValid(scale.kind()) || scale.kind() == pb::SCALE_KIND_UNSPECIFIED) {
      v.Add(sp + ".kind", "must be DOSSIER or INTERVIEW");
    }
    CheckText(scale.title(), kMaxTitleChars, false, sp + ".title", v);
    CheckCount(scale.levels_size(), sp + ".levels", v);
    for (int l = 0; l < scale.levels_size(); ++l) {
      CheckText(scale.levels(l).description(), kMaxTextChars, true, absl::StrCat(sp, ".levels[", l, "].description"), v);
    }
  }
  const pb::ValidationRules& rules = version.validation_rules();
  if (rules.bloc_threshold_percent() < 0 || rules.bloc_threshold_percent() > 100) {
    v.Add(f("validation_rules.bloc_threshold_percent"), "must be in 0..100");
  }
  // Bounded: an expiry date is computed from it (a few million months overflow the date).
  if (rules.acquired_bloc_validity_months() < 0 || rules.acquired_bloc_validity_months() > kMaxValidityMonths) {
    v.Add(f("validation_rules.acquired_bloc_validity_months"),
          absl::StrCat("must be in 0..", kMaxValidityMonths, " (0 = permanent)"));
  }
  if (rules.jury().min_members() < 0) v.Add(f("validation_rules.jury.min_members"), "must not be negative");
  if (rules.jury().min_qualified_members() < 0) {
    v.Add(f("validation_rules.jury.min_qualified_members"), "must not be negative");
  }
  for (int i = 0; i < rules.jury().required_colleges_size(); ++i) {
    int college = rules.jury().required_colleges(i);
    if (!pb::College_IsValid(college) || college == pb::COLLEGE_UNSPECIFIED) {
      v.Add(f(absl::StrCat("validation_rules.jury.required_colleges[", i, "]")),
            "must be EMPLOYER, EMPLOYEE or QUALIFIED_PERSON");
    }
  }
  CheckText(rules.jury().description(), kMaxTextChars, false, f("validation_rules.jury.description"), v);
  CheckCount(version.correspondences_size(), f("correspondences"), v);
  for (int i = 0; i < version.correspondences_size(); ++i) {
    const pb::BlocCorrespondence& c = version.correspondences(i);
    std::string cp = f(absl::StrCat("correspondences[", i, "]"));
    CheckText(c.source_bloc_code(), kMaxCodeChars, true, cp + ".source_bloc_code", v);
    if (!IsValidCode(c.target_certification_code())) {
      v.Add(cp + ".target_certification_code", "is not a certification code");
    }
    CheckText(c.target_bloc_code(), kMaxCodeChars, true, cp + ".target_bloc_code", v);
  }
}

std::vector<PreconditionViolation> PublicationViolations(const pb::Version& version,
                                                         pb::CertificationKind kind,
                                                         absl::string_view subject) {
  std::vector<PreconditionViolation> out;
  auto add = [&](std::string type, absl::string_view where, std::string description) {
    out.push_back({std::move(type), absl::StrCat(subject, where.empty() ? "" : "#", where),
                   std::move(description)});
  };
  // RS fiches have no blocs; CQP and RNCP are made of blocs.
  if (kind != pb::CERTIFICATION_KIND_RS && version.blocs_size() == 0) {
    add("NO_BLOCS", "", "a version needs at least one bloc de compétences");
  }
  if (kind == pb::CERTIFICATION_KIND_RS && version.blocs_size() > 0) {
    add("RS_HAS_BLOCS", "", "a fiche of the Répertoire spécifique has no blocs de compétences: it is judged whole");
  }
  std::set<std::string> bloc_codes;
  std::set<std::string> competence_codes;
  for (const pb::Bloc& bloc : version.blocs()) {
    if (!bloc_codes.insert(bloc.code()).second) {
      add("DUPLICATE_BLOC_CODE", bloc.code(), absl::StrCat("bloc code ", bloc.code(), " is used twice"));
    }
    if (bloc.competences_size() == 0) {
      add("BLOC_WITHOUT_COMPETENCES", bloc.code(),
          absl::StrCat("bloc ", bloc.code(), " needs at least one compétence"));
    }
    for (const pb::Competence& comp : bloc.competences()) {
      if (!competence_codes.insert(comp.code()).second) {
        add("DUPLICATE_COMPETENCE_CODE", comp.code(),
            absl::StrCat("compétence code ", comp.code(), " is used twice"));
      }
    }
  }
  if (kind != pb::CERTIFICATION_KIND_RS) {
    std::set<int> kinds;
    for (const pb::AppreciationScale& scale : version.scales()) {
      std::string where = pb::ScaleKind_Name(scale.kind());
      if (!kinds.insert(scale.kind()).second) {
        add("DUPLICATE_SCALE", where, absl::StrCat("there are two ", where, " scales"));
      }
      if (scale.levels_size() < 2) {
        add("SCALE_TOO_SHORT", where, absl::StrCat("scale ", where, " needs at least 2 levels"));
      }
      for (int l = 0; l < scale.levels_size(); ++l) {
        if (scale.levels(l).rank() != l + 1) {
          add("SCALE_NOT_ORDERED", where,
              absl::StrCat("scale ", where, " level ", l + 1, " has rank ", scale.levels(l).rank(),
                           ": ranks must be 1..n from the lowest level"));
          break;
        }
      }
    }
    for (pb::ScaleKind required : {pb::SCALE_KIND_DOSSIER, pb::SCALE_KIND_INTERVIEW}) {
      if (!kinds.count(required)) {
        add("SCALE_MISSING", pb::ScaleKind_Name(required),
            absl::StrCat("the ", pb::ScaleKind_Name(required), " appreciation scale is missing"));
      }
    }
    const pb::ValidationRules& rules = version.validation_rules();
    if (!version.has_validation_rules()) {
      add("NO_VALIDATION_RULES", "", "validation rules are missing");
    } else {
      // 0 would grant every bloc whatever the jury's appreciation.
      if (rules.bloc_threshold_percent() < 1 || rules.bloc_threshold_percent() > 100) {
        add("THRESHOLD_OUT_OF_RANGE", "validation_rules",
            "the bloc threshold must be a percentage in 1..100");
      }
      const pb::JuryCompositionRule& jury = rules.jury();
      if (jury.min_members() < 2) {
        add("JURY_TOO_SMALL", "validation_rules.jury", "a VAE jury has at least 2 members (décret 2024-332)");
      }
      if (jury.min_qualified_members() < 1 || jury.min_qualified_members() > jury.min_members()) {
        add("JURY_QUALIFIED_MEMBERS", "validation_rules.jury",
            "at least one member qualified for the certification, and no more than min_members");
      }
    }
  }
  // A correspondence maps a bloc onto a bloc of another fiche (a bloc of the same fiche would
  // count one acquired bloc as two), once.
  const std::string own_code = ParseVersionCode(subject);
  std::set<std::tuple<std::string, std::string, std::string>> correspondences;
  for (const pb::BlocCorrespondence& c : version.correspondences()) {
    if (!bloc_codes.count(c.source_bloc_code())) {
      add("CORRESPONDENCE_UNKNOWN_BLOC", c.source_bloc_code(),
          absl::StrCat("correspondence source ", c.source_bloc_code(), " is not a bloc of this version"));
    }
    if (!own_code.empty() && c.target_certification_code() == own_code) {
      add("CORRESPONDENCE_TO_ITSELF", c.source_bloc_code(),
          absl::StrCat("correspondence ", c.source_bloc_code(), " -> ", c.target_certification_code(), "/",
                       c.target_bloc_code(), " targets this certification: correspondences map onto another fiche"));
    }
    if (!correspondences.emplace(c.source_bloc_code(), c.target_certification_code(), c.target_bloc_code()).second) {
      add("DUPLICATE_CORRESPONDENCE", c.source_bloc_code(),
          absl::StrCat("correspondence ", c.source_bloc_code(), " -> ", c.target_certification_code(), "/",
                       c.target_bloc_code(), " is given twice"));
    }
  }
  return out;
}

}  // namespace parcours::referential
