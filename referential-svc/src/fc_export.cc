#include "referential-svc/src/fc_export.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <type_traits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/time/civil_time.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "expat.h"

namespace parcours::referential {
namespace {

// A table's rows as column name -> value (a short row reads as empty values).
class Table {
 public:
  static absl::StatusOr<Table> Parse(const std::string& name, const std::string& text) {
    auto rows = ParseCsv(text);
    if (!rows.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", rows.status().message()));
    Table t;
    t.name_ = name;
    if (!rows->empty()) {
      for (size_t i = 0; i < rows->front().size(); ++i) t.columns_[rows->front()[i]] = i;
      t.rows_.assign(rows->begin() + 1, rows->end());
    }
    return t;
  }

  absl::Status Require(std::initializer_list<const char*> columns) const {
    for (const char* c : columns) {
      if (columns_.count(c) == 0) return absl::InvalidArgumentError(absl::StrCat(name_, ": no column ", c));
    }
    return absl::OkStatus();
  }

  size_t size() const { return rows_.size(); }
  // Surrounding white space (the export's SIRETs start with a TAB) is not part of a value.
  std::string Get(size_t row, const char* column) const {
    auto it = columns_.find(column);
    if (it == columns_.end() || it->second >= rows_[row].size()) return "";
    return std::string(absl::StripAsciiWhitespace(rows_[row][it->second]));
  }

 private:
  std::string name_;
  std::map<std::string, size_t> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// "31/08/2023" -> the date; anything else (empty included) leaves it unset (`clear`).
void SetDate(const std::string& text, google::type::Date* date, pb::Certification* c,
             void (pb::Certification::*clear)()) {
  std::vector<std::string> parts = absl::StrSplit(text, '/');
  int d = 0, m = 0, y = 0;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &d) || !absl::SimpleAtoi(parts[1], &m) ||
      !absl::SimpleAtoi(parts[2], &y)) {
    (c->*clear)();
    return;
  }
  date->set_year(y);
  date->set_month(m);
  date->set_day(d);
}

// A fiche's document as both exports start it: code, kind (from the RNCP/RS prefix), and a
// DRAFT tree to be curated.
pb::ReferentialDocument NewFiche(const std::string& code) {
  pb::ReferentialDocument doc;
  pb::Certification* c = doc.mutable_certification();
  c->set_code(code);
  if (absl::StartsWith(code, "RNCP")) c->set_kind(pb::CERTIFICATION_KIND_RNCP);
  if (absl::StartsWith(code, "RS")) c->set_kind(pb::CERTIFICATION_KIND_RS);
  doc.mutable_version()->set_description(kImportedVersionDescription);
  return doc;
}

void SortBlocs(pb::Version* v) {
  std::sort(v->mutable_blocs()->begin(), v->mutable_blocs()->end(),
            [](const pb::Bloc& a, const pb::Bloc& b) { return a.code() < b.code(); });
}

// "251 : Mécanique générale" -> "Mécanique générale" when the label repeats its code.
std::string LabelWithoutCode(const std::string& code, const std::string& label) {
  absl::string_view rest = label;
  if (!code.empty() && absl::ConsumePrefix(&rest, code)) {
    rest = absl::StripLeadingAsciiWhitespace(rest);
    if (absl::ConsumePrefix(&rest, ":")) return std::string(absl::StripLeadingAsciiWhitespace(rest));
  }
  return label;
}

// NIV3..NIV8; "REPRISE" (the CSV's legacy fiche without level), "AUCUN" (the XML's) and an RS
// fiche's empty level: NONE.
// Anything else is left UNSPECIFIED, which validation refuses for an RNCP title.
pb::QualificationLevel LevelOf(const std::string& text, const std::string& code) {
  pb::QualificationLevel level = pb::QUALIFICATION_LEVEL_UNSPECIFIED;
  if (text.size() == 4 && absl::StartsWith(text, "NIV") &&
      pb::QualificationLevel_Parse(absl::StrCat("QUALIFICATION_LEVEL_", text), &level)) {
    return level;
  }
  if (text == "REPRISE" || text == "AUCUN" || (text.empty() && absl::StartsWith(code, "RS"))) {
    return pb::QUALIFICATION_LEVEL_NONE;
  }
  return pb::QUALIFICATION_LEVEL_UNSPECIFIED;
}

}  // namespace

const std::vector<std::string>& CsvExportFields() {
  static const auto* fields = new std::vector<std::string>{
      "title", "abbreviation", "level", "certifiers", "registration_date", "registration_end_date", "active",
      "predecessor_codes", "successor_codes", "registration_type", "nsf_codes", "formacodes", "rome_codes"};
  return *fields;
}

const std::vector<std::string>& XmlExportFields() {
  static const auto* fields = [] {
    auto* f = new std::vector<std::string>(CsvExportFields());
    f->push_back("issuance_deadline");
    return f;
  }();
  return *fields;
}

absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(std::string_view text, char separator) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string value;
  bool quoted = false;       // inside quotes
  bool was_quoted = false;   // the current value was quoted (only a separator or line end may follow)
  int line = 1;
  int value_line = 1;
  bool row_quoted = false;  // a value of the row was quoted: `""` alone is a row, a blank line is not
  auto end_value = [&] {
    row.push_back(std::move(value));
    value.clear();
    row_quoted = row_quoted || was_quoted;
    was_quoted = false;
  };
  auto end_row = [&] {
    end_value();
    if (row_quoted || !(row.size() == 1 && row[0].empty())) rows.push_back(std::move(row));
    row.clear();
    row_quoted = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          value.push_back('"');
          ++i;
        } else {
          quoted = false;
          was_quoted = true;
        }
      } else {
        if (c == '\n') ++line;
        value.push_back(c);
      }
      continue;
    }
    if (c == separator) {
      end_value();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_row();
      ++line;
    } else if (was_quoted) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line, ": text after a closing quote"));
    } else if (c == '"' && value.empty()) {
      quoted = true;
      value_line = line;
    } else {
      value.push_back(c);
    }
  }
  if (quoted) return absl::InvalidArgumentError(absl::StrCat("line ", value_line, ": unterminated quote"));
  if (!value.empty() || was_quoted || !row.empty()) end_row();
  return rows;
}

absl::StatusOr<std::vector<pb::ReferentialDocument>> FichesFromTables(
    const std::map<std::string, std::string>& tables) {
  auto text = tables.find("Standard");
  if (text == tables.end()) return absl::NotFoundError("the export has no Standard table");
  auto standard = Table::Parse("Standard", text->second);
  if (!standard.ok()) return standard.status();
  if (absl::Status s = standard->Require({"Numero_Fiche", "Intitule"}); !s.ok()) return s;

  std::vector<pb::ReferentialDocument> documents;
  std::map<std::string, pb::ReferentialDocument*> by_code;
  documents.reserve(standard->size());
  for (size_t r = 0; r < standard->size(); ++r) {
    const std::string code = standard->Get(r, "Numero_Fiche");
    if (code.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("Standard: record ", r + 1, " after the header: no Numero_Fiche"));
    }
    pb::ReferentialDocument& doc = documents.emplace_back(NewFiche(code));
    pb::Certification* c = doc.mutable_certification();
    c->set_title(standard->Get(r, "Intitule"));
    c->set_abbreviation(standard->Get(r, "Abrege_Libelle"));
    c->set_level(LevelOf(standard->Get(r, "Nomenclature_Europe_Niveau"), code));
    // The decision date, else (older fiches, registered by publication) the last JO's.
    std::string registered = standard->Get(r, "Date_Decision");
    if (registered.empty()) registered = standard->Get(r, "Date_dernier_jo");
    SetDate(registered, c->mutable_registration_date(), c, &pb::Certification::clear_registration_date);
    SetDate(standard->Get(r, "Date_Fin_Enregistrement"), c->mutable_registration_end_date(), c,
            &pb::Certification::clear_registration_end_date);
    c->set_registration_type(standard->Get(r, "Type_Enregistrement"));
    c->set_active(standard->Get(r, "Actif") == "ACTIVE");
    by_code[code] = &doc;
  }

  // Each other table: its rows, for the fiches of Standard.
  auto each_row = [&](const char* name, std::initializer_list<const char*> columns,
                      const std::function<void(const Table&, size_t, pb::ReferentialDocument&)>& take) -> absl::Status {
    auto it = tables.find(name);
    if (it == tables.end()) return absl::OkStatus();
    auto table = Table::Parse(name, it->second);
    if (!table.ok()) return table.status();
    if (absl::Status s = table->Require(columns); !s.ok()) return s;
    for (size_t r = 0; r < table->size(); ++r) {
      auto doc = by_code.find(table->Get(r, "Numero_Fiche"));
      if (doc != by_code.end()) take(*table, r, *doc->second);
    }
    return absl::OkStatus();
  };
  auto code_label = [](const char* code_column, const char* label_column,
                       google::protobuf::RepeatedPtrField<pb::CodeLabel>* (pb::Certification::*list)(),
                       bool doubled_apostrophes) {
    return [=](const Table& t, size_t r, pb::ReferentialDocument& doc) {
      pb::CodeLabel* cl = (doc.mutable_certification()->*list)()->Add();
      cl->set_code(t.Get(r, code_column));
      std::string label = t.Get(r, label_column);
      if (doubled_apostrophes) label = absl::StrReplaceAll(label, {{"''", "'"}});
      cl->set_label(LabelWithoutCode(cl->code(), label));
    };
  };
  absl::Status s = each_row("Certificateurs", {"Numero_Fiche", "Siret_Certificateur", "Nom_Certificateur"},
                            [](const Table& t, size_t r, pb::ReferentialDocument& doc) {
                              pb::Certifier* c = doc.mutable_certification()->add_certifiers();
                              c->set_siret(t.Get(r, "Siret_Certificateur"));
                              c->set_name(t.Get(r, "Nom_Certificateur"));
                              c->set_active(true);
                              c->set_principal_id(c->siret());
                            });
  if (s.ok()) {
    s = each_row("Nsf", {"Numero_Fiche", "Nsf_Code", "Nsf_Intitule"},
                 code_label("Nsf_Code", "Nsf_Intitule", &pb::Certification::mutable_nsf_codes, false));
  }
  if (s.ok()) {
    s = each_row("Formacode", {"Numero_Fiche", "Formacode_Code", "Formacode_Libelle"},
                 code_label("Formacode_Code", "Formacode_Libelle", &pb::Certification::mutable_formacodes, false));
  }
  if (s.ok()) {
    // The Rome table alone doubles apostrophes inside its quoted labels ("d''affaires": SQL
    // escaping left in the export); the other tables and the XML have one. Undoubled, the label
    // is the XML's, so importing one export after the other does not flip it back and forth.
    s = each_row("Rome", {"Numero_Fiche", "Codes_Rome_Code", "Codes_Rome_Libelle"},
                 code_label("Codes_Rome_Code", "Codes_Rome_Libelle", &pb::Certification::mutable_rome_codes, true));
  }
  if (s.ok()) {
    s = each_row("Ancienne_Nouvelle_Certification", {"Numero_Fiche", "Ancienne_Certification", "Nouvelle_Certification"},
                 [](const Table& t, size_t r, pb::ReferentialDocument& doc) {
                   if (std::string old = t.Get(r, "Ancienne_Certification"); !old.empty()) {
                     doc.mutable_certification()->add_predecessor_codes(old);
                   }
                   if (std::string next = t.Get(r, "Nouvelle_Certification"); !next.empty()) {
                     doc.mutable_certification()->add_successor_codes(next);
                   }
                 });
  }
  if (s.ok()) {
    s = each_row("Blocs_De_Compétences", {"Numero_Fiche", "Bloc_Competences_Code", "Bloc_Competences_Libelle"},
                 [](const Table& t, size_t r, pb::ReferentialDocument& doc) {
                   pb::Bloc* b = doc.mutable_version()->add_blocs();
                   b->set_code(t.Get(r, "Bloc_Competences_Code"));
                   b->set_title(t.Get(r, "Bloc_Competences_Libelle"));
                 });
  }
  if (!s.ok()) return s;
  for (pb::ReferentialDocument& doc : documents) SortBlocs(doc.mutable_version());
  return documents;
}

namespace {

// "2024_02_22" or "2024-02-22" -> the date, if it is a calendar one.
std::optional<google::type::Date> ParseExportDate(const std::string& y, const std::string& m,
                                                  const std::string& d) {
  int year = 0, month = 0, day = 0;
  if (!absl::SimpleAtoi(y, &year) || !absl::SimpleAtoi(m, &month) || !absl::SimpleAtoi(d, &day)) return std::nullopt;
  const absl::CivilDay civil(year, month, day);
  if (civil.year() != year || civil.month() != month || civil.day() != day || year < 1900) return std::nullopt;
  google::type::Date date;
  date.set_year(year);
  date.set_month(month);
  date.set_day(day);
  return date;
}

}  // namespace

std::optional<google::type::Date> ParseIsoDate(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, '-');
  if (parts.size() != 3 || parts[0].size() != 4 || parts[1].size() != 2 || parts[2].size() != 2) return std::nullopt;
  return ParseExportDate(parts[0], parts[1], parts[2]);
}

std::optional<google::type::Date> XmlExportDate(const std::string& path) {
  static const std::regex kDated(R"(.*(\d{4})[-_](\d{2})[-_](\d{2})\.xml)", std::regex::icase);
  const std::string file = std::filesystem::path(path).filename().string();
  std::smatch m;
  if (!std::regex_match(file, m, kDated)) return std::nullopt;
  return ParseExportDate(m[1].str(), m[2].str(), m[3].str());
}

absl::StatusOr<CsvExport> ReadCsvExport(const std::string& dir) {
  static const std::regex kFile(R"(export_fiches_CSV_(.+)_((\d{4})_(\d{2})_(\d{2}))\.csv)");
  std::map<std::string, std::string> tables;
  std::set<std::string> dates;  // one export at a time: tables of two exports do not join
  std::optional<google::type::Date> date;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (!std::regex_match(file, m, kFile)) continue;
    dates.insert(m[2].str());
    date = ParseExportDate(m[3].str(), m[4].str(), m[5].str());
    std::ifstream in(entry.path(), std::ios::binary);
    if (!in.is_open()) return absl::UnavailableError(absl::StrCat("cannot read ", entry.path().string()));
    std::ostringstream text;
    text << in.rdbuf();
    tables[m[1].str()] = text.str();
  }
  if (error) return absl::NotFoundError(absl::StrCat("cannot list ", dir, ": ", error.message()));
  if (dates.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(dir, " holds the files of ", dates.size(), " exports (",
                                                   absl::StrJoin(dates, ", "), "): import one at a time"));
  }
  if (tables.count("Standard") == 0) {
    return absl::NotFoundError(absl::StrCat(dir, " has no export_fiches_CSV_Standard_<date>.csv"));
  }
  if (!date) return absl::InvalidArgumentError(absl::StrCat(dir, ": ", *dates.begin(), " is not a calendar date"));
  auto fiches = FichesFromTables(tables);
  if (!fiches.ok()) return fiches.status();
  return CsvExport{*date, *std::move(fiches)};
}

namespace {

// The XML as a tree: elements with their text (direct character data, trimmed) and children.
struct Element {
  std::string name;
  std::string text;
  std::vector<Element> children;

  const Element* Child(std::string_view child) const {
    for (const Element& c : children) {
      if (c.name == child) return &c;
    }
    return nullptr;
  }
  // The text of the child at `path` ("NOMENCLATURE_EUROPE/NIVEAU"), "" when absent.
  std::string Text(std::string_view path) const {
    const Element* e = this;
    for (absl::string_view step : absl::StrSplit(absl::string_view(path.data(), path.size()), '/')) {
      e = e->Child(std::string_view(step.data(), step.size()));
      if (e == nullptr) return "";
    }
    return std::string(absl::StripAsciiWhitespace(e->text));
  }
  // Children named `name` of the child at `list` ("CODES_NSF", "NSF").
  std::vector<const Element*> Each(std::string_view list, std::string_view name) const {
    std::vector<const Element*> out;
    if (const Element* l = Child(list)) {
      for (const Element& c : l->children) {
        if (c.name == name) out.push_back(&c);
      }
    }
    return out;
  }
};

// Reads the XML one FICHE at a time: the tree of the FICHE being read (a child of the root
// FICHES) is built, handed to `on_fiche` when it closes, then dropped; nothing else is kept.
struct FicheStream {
  std::function<absl::Status(const Element&)> on_fiche;
  XML_Parser parser = nullptr;
  int depth = 0;
  bool root_is_fiches = false;
  Element fiche;
  std::vector<Element*> open;  // the FICHE and its open descendants; empty outside a FICHE
  absl::Status stopped;        // why on_fiche stopped the parse

  static void Start(void* data, const XML_Char* name, const XML_Char**) {
    auto* f = static_cast<FicheStream*>(data);
    ++f->depth;
    if (f->depth == 1) f->root_is_fiches = std::string_view(name) == "FICHES";
    if (!f->open.empty()) {
      Element& parent = *f->open.back();
      parent.children.push_back(Element{name, "", {}});
      f->open.push_back(&parent.children.back());
    } else if (f->depth == 2 && f->root_is_fiches && std::string_view(name) == "FICHE") {
      f->fiche = Element{name, "", {}};
      f->open.push_back(&f->fiche);
    }
  }
  static void End(void* data, const XML_Char*) {
    auto* f = static_cast<FicheStream*>(data);
    --f->depth;
    if (f->open.empty()) return;
    f->open.pop_back();
    if (!f->open.empty()) return;
    absl::Status s = f->on_fiche(f->fiche);
    f->fiche = Element();
    if (!s.ok() && f->stopped.ok()) {
      f->stopped = s;
      XML_StopParser(f->parser, XML_FALSE);
    }
  }
  static void Text(void* data, const XML_Char* text, int length) {
    auto* f = static_cast<FicheStream*>(data);
    if (!f->open.empty()) f->open.back()->text.append(text, static_cast<size_t>(length));
  }
};

void AddCodeLabels(const Element& fiche, std::string_view list, std::string_view item,
                   google::protobuf::RepeatedPtrField<pb::CodeLabel>* out) {
  for (const Element* e : fiche.Each(list, item)) {
    pb::CodeLabel* cl = out->Add();
    cl->set_code(e->Text("CODE"));
    cl->set_label(LabelWithoutCode(cl->code(), e->Text("LIBELLE")));
  }
}

// One FICHE element as a document; `index` (1, 2...) names it in errors.
absl::StatusOr<pb::ReferentialDocument> FicheDocument(const Element& fiche, int index) {
  const std::string code = fiche.Text("NUMERO_FICHE");
  if (code.empty()) return absl::InvalidArgumentError(absl::StrCat("FICHE ", index, ": no NUMERO_FICHE"));
  pb::ReferentialDocument doc = NewFiche(code);
  pb::Certification* c = doc.mutable_certification();
  c->set_title(fiche.Text("INTITULE"));
  c->set_abbreviation(fiche.Text("ABREGE/CODE"));
  c->set_level(LevelOf(fiche.Text("NOMENCLATURE_EUROPE/NIVEAU"), code));
  for (const Element* e : fiche.Each("CERTIFICATEURS", "CERTIFICATEUR")) {
    pb::Certifier* certifier = c->add_certifiers();
    certifier->set_siret(e->Text("SIRET_CERTIFICATEUR"));
    certifier->set_name(e->Text("NOM_CERTIFICATEUR"));
    certifier->set_active(e->Text("ETAT_CERTIFICATEUR") != "Inactif");
    certifier->set_principal_id(certifier->siret());
  }
  SetDate(fiche.Text("DATE_DECISION"), c->mutable_registration_date(), c,
              &pb::Certification::clear_registration_date);
  SetDate(fiche.Text("DATE_FIN_ENREGISTREMENT"), c->mutable_registration_end_date(), c,
              &pb::Certification::clear_registration_end_date);
  SetDate(fiche.Text("DATE_LIMITE_DELIVRANCE"), c->mutable_issuance_deadline(), c,
              &pb::Certification::clear_issuance_deadline);
  c->set_active(fiche.Text("ACTIF") == "Oui");
  for (const Element* e : fiche.Each("ANCIENNES_CERTIFICATIONS", "ANCIENNE_CERTIFICATION")) {
    c->add_predecessor_codes(e->Text("ID_FICHE_ANCIENNE_CERTIFICATION"));
  }
  for (const Element* e : fiche.Each("NOUVELLES_CERTIFICATIONS", "NOUVELLE_CERTIFICATION")) {
    c->add_successor_codes(e->Text("ID_FICHE_NOUVELLE_CERTIFICATION"));
  }
  c->set_registration_type(fiche.Text("TYPE_ENREGISTREMENT"));
  AddCodeLabels(fiche, "CODES_NSF", "NSF", c->mutable_nsf_codes());
  AddCodeLabels(fiche, "FORMACODES", "FORMACODE", c->mutable_formacodes());
  AddCodeLabels(fiche, "CODES_ROME", "ROME", c->mutable_rome_codes());

  pb::Version* v = doc.mutable_version();
  v->set_attested_capabilities(fiche.Text("CAPACITES_ATTESTEES"));
  // Only the text: the numbers (members, colleges) are the curator's to read out of it.
  if (std::string jury = fiche.Text("SI_JURY_VAE/COMPOSITION"); !jury.empty()) {
    v->mutable_validation_rules()->mutable_jury()->set_description(std::move(jury));
  }
  for (const Element* e : fiche.Each("BLOCS_COMPETENCES", "BLOC_COMPETENCES")) {
    pb::Bloc* b = v->add_blocs();
    b->set_code(e->Text("CODE"));
    b->set_title(e->Text("LIBELLE"));
    b->set_competences_text(e->Text("LISTE_COMPETENCES"));
    b->set_assessment_methods(e->Text("MODALITES_EVALUATION"));
  }
  SortBlocs(v);
  for (const Element* e : fiche.Each("CORRESPONDANCES", "CORRESPONDANCE")) {
    // The model maps one bloc onto one bloc: a correspondence between several blocs on either
    // side (they count only together) is not imported rather than stored as a false one-to-one.
    const std::vector<const Element*> from = e->Each("SOURCE", "BLOC_COMPETENCES");
    const std::vector<const Element*> to = e->Each("DESTINATION", "BLOC_COMPETENCES");
    if (from.size() != 1 || to.size() != 1) continue;
    pb::BlocCorrespondence* k = v->add_correspondences();
    k->set_source_bloc_code(from.front()->Text("CODE"));
    k->set_target_certification_code(e->Text("DESTINATION/NUMERO_FICHE"));
    k->set_target_bloc_code(to.front()->Text("CODE"));
  }
  return doc;
}

}  // namespace

absl::Status ForEachXmlFiche(std::istream& in,
                             const std::function<absl::Status(pb::ReferentialDocument)>& take) {
  std::unique_ptr<std::remove_pointer_t<XML_Parser>, decltype(&XML_ParserFree)> parser(XML_ParserCreate("UTF-8"),
                                                                                      &XML_ParserFree);
  if (parser == nullptr) return absl::ResourceExhaustedError("cannot create an XML parser");
  int index = 0;
  FicheStream stream;
  stream.parser = parser.get();
  stream.on_fiche = [&](const Element& fiche) -> absl::Status {
    auto doc = FicheDocument(fiche, ++index);
    if (!doc.ok()) return doc.status();
    return take(*std::move(doc));
  };
  XML_SetUserData(parser.get(), &stream);
  XML_SetElementHandler(parser.get(), &FicheStream::Start, &FicheStream::End);
  XML_SetCharacterDataHandler(parser.get(), &FicheStream::Text);
  std::vector<char> chunk(1 << 16);
  while (true) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const std::streamsize n = in.gcount();
    const bool last = !in;
    if (XML_Parse(parser.get(), chunk.data(), static_cast<int>(n), last ? 1 : 0) == XML_STATUS_ERROR) {
      if (!stream.stopped.ok()) return stream.stopped;
      return absl::InvalidArgumentError(absl::StrCat("XML line ", XML_GetCurrentLineNumber(parser.get()), ": ",
                                                     XML_ErrorString(XML_GetErrorCode(parser.get()))));
    }
    if (last) break;
  }
  if (!stream.root_is_fiches) return absl::InvalidArgumentError("the XML has no FICHES element");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<pb::ReferentialDocument>> FichesFromXml(std::string_view xml) {
  std::istringstream in{std::string(xml)};
  std::vector<pb::ReferentialDocument> documents;
  absl::Status s = ForEachXmlFiche(in, [&](pb::ReferentialDocument doc) {
    documents.push_back(std::move(doc));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return documents;
}

}  // namespace parcours::referential
