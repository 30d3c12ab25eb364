// Wiring of referential-svc from its configuration: database, schema check, repository, cache,
// gRPC service. main.cc and the tests build the service through this, nothing else.
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "google/type/date.pb.h"
#include "grpcpp/grpcpp.h"
#include "platform/config.h"
#include "platform/db/db.h"
#include "platform/service_main.h"

namespace parcours::referential {

inline constexpr char kDefaultDsn[] = "sqlite:.parcours/referential.db";

class App : public ServiceApp {
 public:
  // Config keys: database.dsn (default sqlite:.parcours/referential.db), database.max_connections,
  // page_token_key_file (random key per process when unset).
  // Fails with FAILED_PRECONDITION when the schema is older than this binary expects.
  static absl::StatusOr<std::unique_ptr<App>> Create(const Config& config);
  virtual ~App() = default;

  std::vector<grpc::Service*> services() override = 0;
  db::Db& db() override = 0;
  // Loads a ReferentialDocument JSON file through the service logic (same validation as the API);
  // idempotent: an existing certification is brought to the document's fields (the data file is
  // their source), an identical version is left as it is.
  virtual absl::Status LoadDocument(const std::string& json_path) = 0;
  // Imports France compétences' CSV export unzipped in `dir` (fc_export.h), one fiche at a time
  // through the service logic: writes a line per fiche to `report` (created, updated with the
  // DRAFT created or refreshed, unchanged, stale with the two export dates, or refused with the
  // reason) and a summary. A stale fiche
  // (its certification's fields came from a newer export) is left as it is. A refused fiche does
  // not stop the others; INVALID_ARGUMENT at the end if any was refused, NOT_FOUND without a
  // Standard table.
  virtual absl::Status ImportCsvExport(const std::string& dir, std::ostream& report) = 0;
  // The same from the XML export's files (flux V4.1, fc_export.h ForEachXmlFiche), one fiche at a
  // time; an unreadable or malformed file stops there (the fiches before it stay imported). Each
  // file's export date is `export_date` when given, else the one in its name (XmlExportDate);
  // INVALID_ARGUMENT naming the file, before anything is imported, when a name has none or
  // another than the one given.
  virtual absl::Status ImportXmlExport(const std::vector<std::string>& files,
                                       const std::optional<google::type::Date>& export_date, std::ostream& report) = 0;
};

// Applies the embedded migrations; returns the resulting schema version.
absl::StatusOr<int> Migrate(db::Db& db);
// Schema version this binary expects.
int ExpectedSchemaVersion();

}  // namespace parcours::referential
