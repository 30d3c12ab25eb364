// referential-svc: serve, migrate, load référentiel documents or import France compétences'
// RNCP/RS export (see platform/service_main.h).
#include <iostream>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "platform/service_main.h"
#include "referential-svc/src/app.h"
#include "referential-svc/src/fc_export.h"

ABSL_FLAG(std::string, export_date, "",
          "import-fc-xml: the export's date (YYYY-MM-DD) when the files' names do not carry it");

int main(int argc, char** argv) {
  using parcours::referential::App;
  parcours::ServiceBinary binary;
  binary.name = "referential-svc";
  binary.default_dsn = parcours::referential::kDefaultDsn;
  binary.expected_schema_version = parcours::referential::ExpectedSchemaVersion();
  binary.migrate = parcours::referential::Migrate;
  binary.create = [](const parcours::Config& config) -> absl::StatusOr<std::unique_ptr<parcours::ServiceApp>> {
    auto app = App::Create(config);
    if (!app.ok()) return app.status();
    return std::unique_ptr<parcours::ServiceApp>(std::move(*app));
  };
  // load FILE...: référentiel documents (e.g. data/cqp-technicien-maintenance-alimentaire.json).
  binary.commands["load"] = [](const parcours::Config& config, const std::vector<std::string>& files) {
    auto app = App::Create(config);
    if (!app.ok()) return app.status();
    for (const std::string& file : files) {
      if (absl::Status s = (*app)->LoadDocument(file); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  // import-fc-csv DIR: France compétences' RNCP/RS CSV export, unzipped in DIR (fc_export.h).
  binary.commands["import-fc-csv"] = [](const parcours::Config& config, const std::vector<std::string>& dirs) {
    if (dirs.size() != 1) return absl::InvalidArgumentError("import-fc-csv takes one directory: the unzipped export");
    auto app = App::Create(config);
    if (!app.ok()) return app.status();
    return (*app)->ImportCsvExport(dirs.front(), std::cout);
  };
  // import-fc-xml [--export_date=YYYY-MM-DD] FILE...: the same répertoires as XML (flux V4.1),
  // with the blocs' texts and correspondences; dated by the files' names unless told.
  binary.commands["import-fc-xml"] = [](const parcours::Config& config, const std::vector<std::string>& files) {
    if (files.empty()) return absl::InvalidArgumentError("import-fc-xml takes the export's XML files");
    std::optional<google::type::Date> export_date;
    if (const std::string flag = absl::GetFlag(FLAGS_export_date); !flag.empty()) {
      export_date = parcours::referential::ParseIsoDate(flag);
      if (!export_date) return absl::InvalidArgumentError("--export_date must be YYYY-MM-DD");
    }
    auto app = App::Create(config);
    if (!app.ok()) return app.status();
    return (*app)->ImportXmlExport(files, export_date, std::cout);
  };
  return parcours::RunServiceMain(argc, argv, binary);
}
