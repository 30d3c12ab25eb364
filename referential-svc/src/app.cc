#include "referential-svc/src/app.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "platform/dates.h"
#include "platform/db/migrations.h"
#include "platform/errors.h"
#include "referential-svc/src/fc_export.h"
#include "referential-svc/src/service.h"
#include "referential-svc/src/validation.h"

namespace parcours::referential {

// Generated from migrations/ by parcours_embed_migrations (build dir).
const std::vector<db::Migration>& SqliteMigrations();
const std::vector<db::Migration>& MysqlMigrations();

namespace {

const std::vector<db::Migration>& MigrationsFor(const db::Db& db) {
  return db::ForDialect(db, SqliteMigrations(), MysqlMigrations());
}


class AppImpl final : public App {
 public:
  AppImpl(std::unique_ptr<db::Db> db, std::string page_token_key, ReferentialOptions options)
      : db_(std::move(db)),
        repository_(NewSqlRepository(*db_)),
        logic_(*repository_, clock_, aip::PageTokenCodec(std::move(page_token_key)), options),
        service_(NewGrpcService(logic_, pool_)) {}

  std::vector<grpc::Service*> services() override { return {service_.get()}; }
  db::Db& db() override { return *db_; }

  absl::Status LoadDocument(const std::string& json_path) override {
    std::ifstream in(json_path);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", json_path));
    std::stringstream buffer;
    buffer << in.rdbuf();
    pb::ReferentialDocument document;
    auto parsed = google::protobuf::util::JsonStringToMessage(buffer.str(), &document);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(json_path, ": ", parsed.ToString()));
    }
    return logic_.LoadDocument(document).status();
  }

  absl::Status ImportCsvExport(const std::string& dir, std::ostream& report) override {
    auto csv = ReadCsvExport(dir);
    if (!csv.ok()) return csv.status();
    ImportRun run(logic_, CsvExportFields(), /*certifier_state_carried=*/false, /*tree_carried=*/false, report);
    for (const pb::ReferentialDocument& fiche : csv->fiches) run.Take(fiche, csv->date);
    return run.Finish(absl::OkStatus());
  }

  absl::Status ImportXmlExport(const std::vector<std::string>& files,
                               const std::optional<google::type::Date>& export_date, std::ostream& report) override {
    // Every file's date first: without it an old file could not be told from a new one.
    if (export_date) {
      Violations v;
      CheckDate(*export_date, "export_date", v);
      if (DateKey(*export_date) == 0) v.Add("export_date", "must be a date");
      if (absl::Status s = v.ToStatus(); !s.ok()) return s;
    }
    std::vector<google::type::Date> dates;
    for (const std::string& file : files) {
      std::optional<google::type::Date> named = XmlExportDate(file);
      if (export_date && named && DateKey(*named) != DateKey(*export_date)) {
        return absl::InvalidArgumentError(absl::StrCat(file, ": its name dates it ", FormatDateKey(DateKey(*named)),
                                                       ", not ", FormatDateKey(DateKey(*export_date))));
      }
      if (!export_date && !named) {
        return absl::InvalidArgumentError(
            absl::StrCat(file, ": no export date in its name (export_fiches_<RNCP|RS>_V4_1_YYYY-MM-DD.xml): "
                               "give the export's date (import-fc-xml --export_date=YYYY-MM-DD)"));
      }
      dates.push_back(export_date ? *export_date : *named);
    }
    ImportRun run(logic_, XmlExportFields(), /*certifier_state_carried=*/true, /*tree_carried=*/true, report);
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string& file = files[i];
      std::ifstream in(file, std::ios::binary);
      if (!in.is_open()) return run.Finish(absl::NotFoundError(absl::StrCat("cannot read ", file)));
      absl::Status read = ForEachXmlFiche(in, [&](pb::ReferentialDocument fiche) {
        run.Take(fiche, dates[i]);
        return absl::OkStatus();
      });
      if (!read.ok()) return run.Finish(absl::Status(read.code(), absl::StrCat(file, ": ", read.message())));
    }
    return run.Finish(absl::OkStatus());
  }

 private:
  // One import: each fiche through the service logic, a report line each, then the summary.
  class ImportRun {
   public:
    ImportRun(Referential& logic, const std::vector<std::string>& carried, bool certifier_state_carried,
              bool tree_carried, std::ostream& report)
        : logic_(logic),
          carried_(carried),
          certifier_state_carried_(certifier_state_carried),
          tree_carried_(tree_carried),
          report_(report) {}

    void Take(const pb::ReferentialDocument& fiche, const google::type::Date& export_date) {
      ++fiches_;
      const std::string& code = fiche.certification().code();
      auto imported = logic_.ImportFiche(fiche, carried_, certifier_state_carried_, tree_carried_, export_date);
      if (!imported.ok()) {
        ++refused_;
        report_ << code << " refused: " << imported.status().message() << "\n";
        return;
      }
      if (imported->stale) {
        ++stale_;
        report_ << code << " stale: the export of " << FormatDateKey(DateKey(export_date))
                << " is older than the one of " << FormatDateKey(DateKey(imported->newer_export_date))
                << " its fields come from; left as it is\n";
        return;
      }
      // A first DRAFT added to a known certification, or its tree refreshed, is a change too.
      const bool changed = imported->updated || !imported->new_version.empty() || !imported->refreshed_version.empty();
      const char* what = imported->created ? "created" : changed ? "updated" : "unchanged";
      (imported->created ? created_ : changed ? updated_ : unchanged_) += 1;
      report_ << code << " " << what;
      if (!imported->new_version.empty()) {
        report_ << ", " << imported->new_version << " (DRAFT, " << fiche.version().blocs_size() << " blocs)";
      }
      if (!imported->refreshed_version.empty()) {
        report_ << ", " << imported->refreshed_version << " refreshed (DRAFT, " << fiche.version().blocs_size()
                << " blocs)";
      }
      report_ << "\n";
    }

    // The summary; `stopped` (an unreadable file) if any, else INVALID_ARGUMENT when a fiche was
    // refused.
    absl::Status Finish(absl::Status stopped) {
      report_ << fiches_ << " fiches: " << created_ << " created, " << updated_ << " updated, " << unchanged_
              << " unchanged, " << refused_ << " refused, " << stale_ << " stale\n";
      if (!stopped.ok()) return stopped;
      if (refused_ > 0) {
        return absl::InvalidArgumentError(absl::StrCat(refused_, " of ", fiches_, " fiches refused (listed above)"));
      }
      return absl::OkStatus();
    }

   private:
    Referential& logic_;
    const std::vector<std::string>& carried_;
    const bool certifier_state_carried_;
    const bool tree_carried_;
    std::ostream& report_;
    int fiches_ = 0, created_ = 0, updated_ = 0, unchanged_ = 0, refused_ = 0, stale_ = 0;
  };

  SystemClock clock_;
  std::unique_ptr<db::Db> db_;
  std::unique_ptr<Repository> repository_;
  Referential logic_;
  ThreadPool pool_{4};  // GetVersion cache misses (database reads) off the callback threads
  std::unique_ptr<grpc::Service> service_;
};

}  // namespace

absl::StatusOr<int> Migrate(db::Db& db) { return db::Migrate(db, MigrationsFor(db)); }

int ExpectedSchemaVersion() { return SqliteMigrations().back().version; }

absl::StatusOr<std::unique_ptr<App>> App::Create(const Config& config) {
  auto db = OpenConfiguredDb(config, kDefaultDsn);
  if (!db.ok()) return db.status();
  if (absl::Status s = db::CheckSchema(**db, MigrationsFor(**db)); !s.ok()) return s;

  auto key = PageTokenKey(config);
  if (!key.ok()) return key.status();
  ReferentialOptions options;
  auto ttl = config.GetDuration("version_cache.state_ttl", options.version_state_ttl);
  if (!ttl.ok()) return ttl.status();
  options.version_state_ttl = *ttl;
  auto entries = config.GetInt("version_cache.entries", options.version_cache_entries);
  if (!entries.ok()) return entries.status();
  options.version_cache_entries = static_cast<int>(*entries);
  return std::unique_ptr<App>(new AppImpl(*std::move(db), *std::move(key), options));
}

}  // namespace parcours::referential
