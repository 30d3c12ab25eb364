// France compétences' exports (fc_export.h): the CSV reader alone, then the real samples in
// shared/fixtures/rncp (the CSV export, two XML fiches) read into documents, values checked
// against their files.
#include "referential-svc/src/fc_export.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace parcours::referential {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Rows = std::vector<std::vector<std::string>>;

constexpr char kExport[] = PARCOURS_SOURCE_DIR "/../shared/fixtures/rncp/csv-2024-02-22";

TEST(ParseCsvTest, QuotedValuesKeepSeparatorsQuotesAndLineBreaks) {
  auto rows = ParseCsv("\xEF\xBB\xBF\"a\";\"b;c\";\"say \"\"hi\"\"\"\r\n\"line\nbreak\";;plain\r\n\r\n");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(*rows, (Rows{{"a", "b;c", "say \"hi\""}, {"line\nbreak", "", "plain"}}));
  // No line end after the last row, an empty quoted last value.
  rows = ParseCsv("x;\"\"");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(*rows, (Rows{{"x", ""}}));
  EXPECT_EQ(ParseCsv("")->size(), 0u);
  // A record of one empty quoted value is a record; a blank line is not.
  rows = ParseCsv("\"\"\n\n\"x\"\n");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(*rows, (Rows{{""}, {"x"}}));
}

TEST(CsvExportTest, LevelsAreNivOrAStatedNone) {
  auto docs = FichesFromTables({{"Standard",
                                 "\"Numero_Fiche\";\"Intitule\";\"Nomenclature_Europe_Niveau\"\n"
                                 "\"RNCP1\";\"A\";\"NIV5\"\n\"RNCP2\";\"B\";\"REPRISE\"\n"
                                 "\"RNCP3\";\"C\";\"\"\n\"RNCP4\";\"D\";\"NIV 5\"\n\"RS5\";\"E\";\"\"\n"}});
  ASSERT_TRUE(docs.ok()) << docs.status();
  std::vector<pb::QualificationLevel> levels;
  for (const auto& d : *docs) levels.push_back(d.certification().level());
  EXPECT_THAT(levels, ElementsAre(pb::QUALIFICATION_LEVEL_NIV5, pb::QUALIFICATION_LEVEL_NONE,
                                  pb::QUALIFICATION_LEVEL_UNSPECIFIED, pb::QUALIFICATION_LEVEL_UNSPECIFIED,
                                  pb::QUALIFICATION_LEVEL_NONE));
}

TEST(ParseCsvTest, MalformedQuotesNameTheirLine) {
  auto open = ParseCsv("\"a\";\"b\"\n\"never closed;x\n");
  EXPECT_EQ(open.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(open.status().message(), HasSubstr("line 2"));
  auto after = ParseCsv("\"a\"\n\"b\"c\n");
  EXPECT_EQ(after.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(after.status().message(), HasSubstr("line 2"));
}

const pb::ReferentialDocument* Find(const std::vector<pb::ReferentialDocument>& docs, const std::string& code) {
  for (const auto& d : docs) {
    if (d.certification().code() == code) return &d;
  }
  return nullptr;
}

TEST(CsvExportTest, TheSampleExportGivesOneDocumentPerFicheWithItsTables) {
  auto csv = ReadCsvExport(kExport);
  ASSERT_TRUE(csv.ok()) << csv.status();
  // The export's date, from its files' names: what tells it from an older or newer one.
  EXPECT_EQ(csv->date.year(), 2024);
  EXPECT_EQ(csv->date.month(), 2);
  EXPECT_EQ(csv->date.day(), 22);
  const std::vector<pb::ReferentialDocument>* docs = &csv->fiches;
  std::vector<std::string> codes;
  for (const auto& d : *docs) codes.push_back(d.certification().code());
  EXPECT_THAT(codes, ElementsAre("RNCP509", "RNCP1197", "RNCP4049", "RNCP22094", "RNCP28155", "RNCP30271", "RS5000",
                                 "RNCP19468", "RS6117"));

  // The CAP: level, end of registration, certifier (the TAB before its SIRET dropped), NSF,
  // Formacode and ROME without the code repeated in the label, successor, six blocs in order.
  const pb::ReferentialDocument* cap = Find(*docs, "RNCP509");
  ASSERT_NE(cap, nullptr);
  const pb::Certification& c = cap->certification();
  EXPECT_EQ(c.kind(), pb::CERTIFICATION_KIND_RNCP);
  EXPECT_EQ(c.title(), "Agent vérificateur d'appareils extincteurs");
  EXPECT_EQ(c.abbreviation(), "CAP");
  EXPECT_EQ(c.level(), pb::QUALIFICATION_LEVEL_NIV3);
  EXPECT_FALSE(c.has_registration_date());
  EXPECT_EQ(c.registration_end_date().year(), 2023);
  EXPECT_EQ(c.registration_end_date().month(), 8);
  EXPECT_EQ(c.registration_end_date().day(), 31);
  EXPECT_FALSE(c.active());
  EXPECT_EQ(c.registration_type(), "Enregistrement de droit");
  ASSERT_EQ(c.certifiers_size(), 1);
  EXPECT_EQ(c.certifiers(0).siret(), "11004301500012");
  EXPECT_EQ(c.certifiers(0).principal_id(), "11004301500012");
  EXPECT_EQ(c.certifiers(0).name(), "MINISTERE DE L'EDUCATION NATIONALE ET DE LA JEUNESSE");
  ASSERT_EQ(c.nsf_codes_size(), 1);
  EXPECT_EQ(c.nsf_codes(0).code(), "251");
  EXPECT_EQ(c.nsf_codes(0).label(), "Mécanique générale et de précision, usinage");
  ASSERT_EQ(c.formacodes_size(), 1);
  EXPECT_EQ(c.formacodes(0).label(), "Sécurité incendie");
  ASSERT_EQ(c.rome_codes_size(), 1);
  EXPECT_EQ(c.rome_codes(0).code(), "I1203");
  EXPECT_EQ(c.rome_codes(0).label(), "Maintenance des bâtiments et des locaux");
  EXPECT_THAT(c.predecessor_codes(), ElementsAre());
  EXPECT_THAT(c.successor_codes(), ElementsAre("RNCP38228"));
  std::vector<std::string> blocs;
  for (const auto& b : cap->version().blocs()) blocs.push_back(b.code());
  EXPECT_THAT(blocs, ElementsAre("RNCP509BC01", "RNCP509BC02", "RNCP509BC03", "RNCP509BC04", "RNCP509BC05",
                                 "RNCP509BC06"));
  EXPECT_EQ(cap->version().blocs(0).title(), "UP1 : Vérification d’une installation et organisation de l’intervention");
  EXPECT_FALSE(cap->publish());
  // Without a decision date, the last JO's (an older fiche, registered by publication).
  const pb::Certification& old_title = Find(*docs, "RNCP1197")->certification();
  EXPECT_EQ(old_title.registration_date().year(), 2002);
  EXPECT_EQ(old_title.registration_date().month(), 1);
  EXPECT_EQ(old_title.registration_date().day(), 25);

  // The Rome table's doubled apostrophes ("d''affaires") are one, as in the other tables.
  const pb::Certification& sales = Find(*docs, "RNCP4049")->certification();
  ASSERT_EQ(sales.rome_codes_size(), 3);
  EXPECT_EQ(sales.rome_codes(2).code(), "H1102");
  EXPECT_EQ(sales.rome_codes(2).label(), "Management et ingénierie d'affaires");

  // The CQP moved from the RNCP (a legacy fiche without level) to the RS.
  const pb::ReferentialDocument* old_cqp = Find(*docs, "RNCP19468");
  ASSERT_NE(old_cqp, nullptr);
  EXPECT_EQ(old_cqp->certification().level(), pb::QUALIFICATION_LEVEL_NONE);
  EXPECT_THAT(old_cqp->certification().successor_codes(), ElementsAre("RS6117"));
  EXPECT_EQ(old_cqp->certification().rome_codes_size(), 2);
  const pb::ReferentialDocument* rs = Find(*docs, "RS6117");
  ASSERT_NE(rs, nullptr);
  EXPECT_EQ(rs->certification().kind(), pb::CERTIFICATION_KIND_RS);
  EXPECT_EQ(rs->certification().level(), pb::QUALIFICATION_LEVEL_NONE);
  EXPECT_TRUE(rs->certification().active());
  EXPECT_EQ(rs->certification().registration_date().year(), 2022);
  EXPECT_EQ(rs->certification().registration_end_date().year(), 2025);
  EXPECT_EQ(rs->certification().certifiers_size(), 2);
  EXPECT_THAT(rs->certification().predecessor_codes(), ElementsAre("RNCP19468"));
  EXPECT_EQ(rs->certification().formacodes_size(), 2);
  EXPECT_EQ(rs->version().blocs_size(), 0);
}

TEST(CsvExportTest, ATableWithoutItsColumnsOrAFicheWithoutCodeIsRefused) {
  auto no_code = FichesFromTables({{"Standard", "\"Numero_Fiche\";\"Intitule\"\n\"\";\"Sans numéro\"\n"}});
  EXPECT_EQ(no_code.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_code.status().message(), HasSubstr("record 1"));
  auto no_column = FichesFromTables({{"Standard", "\"Numero_Fiche\";\"Intitule\"\n\"RS1\";\"X\"\n"},
                                     {"Certificateurs", "\"Numero_Fiche\";\"Nom\"\n\"RS1\";\"Y\"\n"}});
  EXPECT_EQ(no_column.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_column.status().message(), HasSubstr("Certificateurs: no column Siret_Certificateur"));
  EXPECT_EQ(FichesFromTables({}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadCsvExport(PARCOURS_SOURCE_DIR "/referential-svc").status().code(), absl::StatusCode::kNotFound);
  // Two exports in one directory do not join.
  const std::string mixed = ::testing::TempDir() + "/fc-export-mixed";
  std::filesystem::remove_all(mixed);
  std::filesystem::create_directories(mixed);
  std::ofstream(mixed + "/export_fiches_CSV_Standard_2024_02_22.csv") << "\"Numero_Fiche\";\"Intitule\"\n";
  std::ofstream(mixed + "/export_fiches_CSV_Rome_2024_03_01.csv") << "\"Numero_Fiche\"\n";
  auto two = ReadCsvExport(mixed);
  EXPECT_EQ(two.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(two.status().message(), HasSubstr("2024_02_22, 2024_03_01"));
}

TEST(XmlExportTest, AFileIsDatedByItsName) {
  auto date = XmlExportDate("/data/export_fiches_RS_V4_1_2026-08-16.xml");
  ASSERT_TRUE(date.has_value());
  EXPECT_EQ(date->year(), 2026);
  EXPECT_EQ(date->month(), 8);
  EXPECT_EQ(date->day(), 16);
  EXPECT_TRUE(XmlExportDate("export_fiches_RNCP_V4_1_2024_02_22.xml").has_value());
  EXPECT_FALSE(XmlExportDate("rs_fiche_RS5000.xml").has_value());      // the fixtures' names
  EXPECT_FALSE(XmlExportDate("export_2024-02-30.xml").has_value());    // not a calendar date
  EXPECT_FALSE(XmlExportDate("2026-08-16/export.xml").has_value());    // the directory's, not the file's
}

// The --export_date flag: one calendar day written YYYY-MM-DD, the same rule as a file's name.
TEST(XmlExportTest, TheExportDateFlagIsOneCalendarDay) {
  auto date = ParseIsoDate("2026-08-16");
  ASSERT_TRUE(date.has_value());
  EXPECT_EQ(date->year() * 10000 + date->month() * 100 + date->day(), 20260816);
  for (const char* bad : {"2024-02-30", "2026-8-16", "16-08-2026", "2026-08-16x", "", "2026/08/16", "1850-01-01"}) {
    EXPECT_FALSE(ParseIsoDate(bad).has_value()) << bad;
  }
}

std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(PARCOURS_SOURCE_DIR "/../shared/fixtures/rncp/") + name, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(XmlExportTest, AnRncpFicheBringsItsBlocsTextsCorrespondencesAndDeadline) {
  auto docs = FichesFromXml(ReadFixture("rncp_fiche_RNCP40344.xml"));
  ASSERT_TRUE(docs.ok()) << docs.status();
  ASSERT_EQ(docs->size(), 1u);
  const pb::Certification& c = docs->front().certification();
  EXPECT_EQ(c.code(), "RNCP40344");
  EXPECT_EQ(c.kind(), pb::CERTIFICATION_KIND_RNCP);
  EXPECT_EQ(c.title(), "Auxiliaire spécialisé vétérinaire");
  EXPECT_EQ(c.level(), pb::QUALIFICATION_LEVEL_NIV4);
  EXPECT_TRUE(c.active());  // the fiche's ACTIF, not the jury sections' ones
  ASSERT_EQ(c.certifiers_size(), 2);
  EXPECT_EQ(c.certifiers(0).siret(), "52875765100013");
  EXPECT_EQ(c.certifiers(0).principal_id(), "52875765100013");
  EXPECT_EQ(c.certifiers(0).name(), "ANIMAL PRO FORMATION");
  EXPECT_TRUE(c.certifiers(0).active());
  EXPECT_EQ(c.certifiers(1).name(), "SNVEL");
  EXPECT_EQ(c.certifiers(1).principal_id(), "");  // no SIRET: France compétences names it
  EXPECT_EQ(c.registration_date().year(), 2025);
  EXPECT_EQ(c.registration_end_date().year(), 2028);
  EXPECT_EQ(c.issuance_deadline().year(), 2032);
  EXPECT_EQ(c.issuance_deadline().month(), 3);
  EXPECT_EQ(c.issuance_deadline().day(), 28);
  EXPECT_THAT(c.predecessor_codes(), ElementsAre("RNCP37507"));
  ASSERT_EQ(c.nsf_codes_size(), 1);
  EXPECT_EQ(c.nsf_codes(0).code(), "212t");
  EXPECT_EQ(c.nsf_codes(0).label(), "Soins des animaux, soins vétérinaires");
  EXPECT_EQ(c.formacodes(0).code(), "42022");
  ASSERT_EQ(c.rome_codes_size(), 4);
  EXPECT_EQ(c.rome_codes(0).code(), "A1500");
  EXPECT_EQ(c.registration_type(), "Enregistrement sur demande");

  const pb::Version& v = docs->front().version();
  ASSERT_EQ(v.blocs_size(), 4);
  EXPECT_EQ(v.blocs(0).code(), "RNCP40344BC01");
  EXPECT_EQ(v.blocs(0).title(), "Conseiller la clientèle du vétérinaire");
  EXPECT_THAT(v.blocs(0).competences_text(), ::testing::StartsWith("Accueillir un propriétaire d'animal"));
  EXPECT_THAT(v.blocs(0).assessment_methods(), ::testing::StartsWith("Mises en situations reconstituées"));
  // What the fiche attests, and its paritaire VAE jury as written (the numbers are curation's).
  EXPECT_THAT(v.attested_capabilities(), ::testing::StartsWith("Accueillir un propriétaire d'animal"));
  EXPECT_THAT(v.attested_capabilities(), ::testing::EndsWith("dans l’établissement de soin vétérinaire."));
  EXPECT_THAT(v.validation_rules().jury().description(),
              ::testing::StartsWith("Le jury national de certification est composé de :"));
  EXPECT_THAT(v.validation_rules().jury().description(),
              HasSubstr("1 docteur vétérinaire représentant le collège employeur et président du jury"));
  EXPECT_THAT(v.validation_rules().jury().description(),
              HasSubstr("1 auxiliaire spécialisé vétérinaire représentant le collège salarié"));
  EXPECT_EQ(v.validation_rules().jury().min_members(), 0);
  ASSERT_EQ(v.correspondences_size(), 8);
  EXPECT_EQ(v.correspondences(0).source_bloc_code(), "RNCP40344BC04");
  EXPECT_EQ(v.correspondences(0).target_certification_code(), "RNCP37507");
  EXPECT_EQ(v.correspondences(0).target_bloc_code(), "RNCP37507BC04");
}

TEST(XmlExportTest, AnRsFicheIsWholeAndKnowsItsSuccessor) {
  auto docs = FichesFromXml(ReadFixture("rs_fiche_RS5000.xml"));
  ASSERT_TRUE(docs.ok()) << docs.status();
  ASSERT_EQ(docs->size(), 1u);
  const pb::Certification& c = docs->front().certification();
  EXPECT_EQ(c.kind(), pb::CERTIFICATION_KIND_RS);
  EXPECT_EQ(c.level(), pb::QUALIFICATION_LEVEL_NONE);
  EXPECT_FALSE(c.active());
  EXPECT_THAT(c.successor_codes(), ElementsAre("RS6604"));
  EXPECT_EQ(c.registration_date().year(), 2019);
  EXPECT_EQ(c.registration_end_date().year(), 2024);
  EXPECT_FALSE(c.has_issuance_deadline());
  const pb::Version& v = docs->front().version();
  EXPECT_EQ(v.blocs_size(), 0);
  // Without blocs, CAPACITES_ATTESTEES is the only statement of what an RS certifies.
  EXPECT_THAT(v.attested_capabilities(), ::testing::StartsWith("Les compétences attestées par la certification :"));
  EXPECT_THAT(v.attested_capabilities(), HasSubstr("C7. Déployer* un programme de transactions"));
  EXPECT_EQ(v.validation_rules().jury().description(), "Un jury composé de 3 personnes, dont au moins un professionnel.");
}

TEST(XmlExportTest, OnlyOneToOneCorrespondencesAndAStatedNoLevel) {
  auto docs = FichesFromXml(
      "<FICHES><FICHE><NUMERO_FICHE>RNCP1</NUMERO_FICHE><NOMENCLATURE_EUROPE><NIVEAU>AUCUN</NIVEAU>"
      "</NOMENCLATURE_EUROPE><CORRESPONDANCES>"
      "<CORRESPONDANCE><SOURCE><BLOC_COMPETENCES><CODE>RNCP1BC01</CODE></BLOC_COMPETENCES>"
      "<BLOC_COMPETENCES><CODE>RNCP1BC02</CODE></BLOC_COMPETENCES></SOURCE>"
      "<DESTINATION><NUMERO_FICHE>RNCP2</NUMERO_FICHE><BLOC_COMPETENCES><CODE>RNCP2BC01</CODE>"
      "</BLOC_COMPETENCES></DESTINATION></CORRESPONDANCE>"
      "<CORRESPONDANCE><SOURCE><BLOC_COMPETENCES><CODE>RNCP1BC03</CODE></BLOC_COMPETENCES></SOURCE>"
      "<DESTINATION><NUMERO_FICHE>RNCP2</NUMERO_FICHE><BLOC_COMPETENCES><CODE>RNCP2BC03</CODE>"
      "</BLOC_COMPETENCES></DESTINATION></CORRESPONDANCE>"
      "</CORRESPONDANCES></FICHE></FICHES>");
  ASSERT_TRUE(docs.ok()) << docs.status();
  EXPECT_EQ(docs->front().certification().level(), pb::QUALIFICATION_LEVEL_NONE);
  // BC01 and BC02 count only together for RNCP2BC01: not a one-to-one, not imported.
  ASSERT_EQ(docs->front().version().correspondences_size(), 1);
  EXPECT_EQ(docs->front().version().correspondences(0).source_bloc_code(), "RNCP1BC03");
  EXPECT_EQ(docs->front().version().correspondences(0).target_bloc_code(), "RNCP2BC03");
}

// The file is read in chunks and each FICHE handed over when it closes: an export far larger
// than a chunk gives every fiche; a malformed part stops the reading after the fiches before it;
// an error of the receiver stops it at once.
TEST(XmlExportTest, FichesAreHandedOverOneAtATimeAcrossChunks) {
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<FICHES><VERSION_FLUX>4.1</VERSION_FLUX>\n";
  const std::string filler(900, 'x');
  for (int i = 1; i <= 300; ++i) {
    absl::StrAppend(&xml, "<FICHE><NUMERO_FICHE>RS", 10000 + i, "</NUMERO_FICHE><INTITULE>Fiche ", i,
                    "</INTITULE><OBJECTIFS_CONTEXTE>", filler, "</OBJECTIFS_CONTEXTE></FICHE>\n");
  }
  std::string whole = xml + "</FICHES>\n";
  ASSERT_GT(whole.size(), 4u * 65536);
  std::istringstream in(whole);
  std::vector<std::string> codes;
  ASSERT_TRUE(ForEachXmlFiche(in, [&](pb::ReferentialDocument d) {
                codes.push_back(d.certification().code());
                EXPECT_EQ(d.certification().title(), absl::StrCat("Fiche ", codes.size()));
                return absl::OkStatus();
              }).ok());
  ASSERT_EQ(codes.size(), 300u);
  EXPECT_EQ(codes.back(), "RS10300");

  std::istringstream broken(xml + "<FICHE><NUMERO_FICHE>RS1</NUMERO_FICHE></FICHES>");
  int taken = 0;
  absl::Status s = ForEachXmlFiche(broken, [&](pb::ReferentialDocument) {
    ++taken;
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("line 303"));
  EXPECT_EQ(taken, 300);

  std::istringstream again(whole);
  taken = 0;
  s = ForEachXmlFiche(again, [&](pb::ReferentialDocument) {
    return ++taken == 2 ? absl::UnavailableError("database gone") : absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(taken, 2);
}

TEST(XmlExportTest, MalformedXmlOrAFicheWithoutNumberIsRefused) {
  auto broken = FichesFromXml("<FICHES>\n<FICHE><NUMERO_FICHE>RS1</NUMERO_FICHE>\n</FICHES>");
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(broken.status().message(), HasSubstr("line 3"));
  auto nameless = FichesFromXml("<FICHES><FICHE><INTITULE>X</INTITULE></FICHE></FICHES>");
  EXPECT_EQ(nameless.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nameless.status().message(), HasSubstr("NUMERO_FICHE"));
  EXPECT_EQ(FichesFromXml("<OTHER/>").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace parcours::referential
