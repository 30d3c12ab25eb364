// France compétences' open-data export of the RNCP and RS répertoires as CSV ("export-fiches-csv"
// on data.gouv.fr): one UTF-8 file per table, ';'-separated, every value quoted, joined on
// Numero_Fiche. This reads the tables the model carries into one référentiel document per fiche
// (the XML export, read by FichesFromXml below, carries more):
//
//   Standard                        code, kind (RNCP/RS prefix), title, abbreviation, level
//                                   (NIV3..NIV8; "REPRISE", and empty on an RS: none; else
//                                   unspecified, refused for RNCP), dates (dd/mm/yyyy:
//                                   Date_Decision, else Date_dernier_jo for older fiches;
//                                   Date_Fin_Enregistrement), registration type,
//                                   active (Actif = ACTIVE)
//   Certificateurs                  certifiers: SIRET (the export puts a TAB before it), name,
//                                   active; the SIRET is also the id the certifier acts under
//   Nsf, Formacode, Rome            code and label ("251 : Mécanique..." loses its "251 : ";
//                                   Rome's doubled apostrophes, "d''affaires", are one)
//   Ancienne_Nouvelle_Certification predecessor and successor codes
//   Blocs_De_Compétences            the blocs (code, title), in code order
//
// The other tables (CCN, Partenaires, VoixdAccès) carry nothing the services use. RNCP gives no
// compétences lists nor criteria: a fiche's version is a DRAFT holding its blocs, to be curated
// (compétences, criteria, scales, rules) before it can be published.
#pragma once

#include <functional>
#include <istream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "parcours/referential/v1/referential.pb.h"

namespace parcours::referential {

namespace pb = ::parcours::referential::v1;

// The description of the DRAFT version an import gives a fiche (how a draft the importer made
// before versions recorded their export date is told from a curator's).
inline constexpr char kImportedVersionDescription[] =
    "Blocs from France compétences' export; compétences, criteria, scales and rules to be curated";

// The Certification fields each export carries (update-mask paths): a re-import updates those
// only. The XML export also has the issuance deadline.
const std::vector<std::string>& CsvExportFields();
const std::vector<std::string>& XmlExportFields();

// RFC 4180 with `separator`: quoted values may hold separators, line breaks and doubled quotes;
// CRLF or LF line ends; a UTF-8 byte-order mark is skipped; a last empty line is not a row.
// INVALID_ARGUMENT naming the line of an unterminated quote or of text after a closing quote.
absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(std::string_view text, char separator = ';');

// One document per fiche of the Standard table, in its order, from the tables' texts keyed by
// table name ("Standard", "Certificateurs", "Blocs_De_Compétences"...; only Standard is
// required). Rows of other tables naming a fiche absent from Standard are ignored. A table
// without the columns it needs, or a Standard row without Numero_Fiche, is INVALID_ARGUMENT naming
// the table (and record). Values are taken as they are: the service validates each document.
absl::StatusOr<std::vector<pb::ReferentialDocument>> FichesFromTables(const std::map<std::string, std::string>& tables);

// An export read whole: its date (from its files' names) and one document per fiche.
struct CsvExport {
  google::type::Date date;
  std::vector<pb::ReferentialDocument> fiches;
};

// Reads the export's files in `dir` (export_fiches_CSV_<Table>_<YYYY_MM_DD>.csv, as unzipped),
// then FichesFromTables. The date in the names is the export's: an import keeps it to tell an
// older export from a newer one. NOT_FOUND when there is no Standard table; INVALID_ARGUMENT
// when the directory holds files of two exports (two dates) or the date is not a calendar date.
absl::StatusOr<CsvExport> ReadCsvExport(const std::string& dir);

// The date of an XML export file from its name, as France compétences names them
// (export_fiches_RNCP_V4_1_2024-02-22.xml: the date before ".xml", '-' or '_' between its parts);
// nullopt when the name has none (the flux itself carries no extraction date).
std::optional<google::type::Date> XmlExportDate(const std::string& path);
// "2026-08-16" -> that calendar day; nullopt for anything else (the --export_date flag).
std::optional<google::type::Date> ParseIsoDate(const std::string& text);

// The same répertoires as XML ("flux XML V4.1": <FICHES><FICHE>...), which also carries what the
// CSV lacks: each bloc's compétences as text (LISTE_COMPETENCES) and assessment methods
// (MODALITES_EVALUATION), the bloc correspondences with other fiches (CORRESPONDANCES), the
// issuance deadline (DATE_LIMITE_DELIVRANCE), each certifier's state (ETAT_CERTIFICATEUR), what
// the certification attests (CAPACITES_ATTESTEES: the version's attested_capabilities) and the
// VAE jury's composition as written (SI_JURY_VAE/COMPOSITION: validation_rules.jury.description). A
// certifier without SIRET gets no principal id (France compétences sets one); a level "AUCUN" is
// none; a correspondence between several blocs on either side is not imported (the model maps one
// bloc onto one, and those count only together). The file is read in chunks and each FICHE's
// document handed to `take` as soon as its element closes (memory stays that of one fiche,
// whatever the export's size). INVALID_ARGUMENT with expat's line for malformed XML, or naming a
// FICHE without NUMERO_FICHE; `take`'s error stops the reading and is returned.
absl::Status ForEachXmlFiche(std::istream& in, const std::function<absl::Status(pb::ReferentialDocument)>& take);
// The same, collected (tests, small files).
absl::StatusOr<std::vector<pb::ReferentialDocument>> FichesFromXml(std::string_view xml);

}  // namespace parcours::referential
