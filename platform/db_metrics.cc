#include "platform/db_metrics.h"

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace parcours {

void ExportDbPoolMetrics(ServerRunner& runner, db::Db& db) {
  auto family = [&runner](const char* name, const char* help) -> prometheus::Family<prometheus::Gauge>& {
    return prometheus::BuildGauge().Name(name).Help(help).Register(runner.metrics_registry());
  };
  auto& connections = family("db_pool_connections", "Database connections by state (open, in_use, max)");
  prometheus::Gauge* open = &connections.Add({{"state", "open"}});
  prometheus::Gauge* in_use = &connections.Add({{"state", "in_use"}});
  prometheus::Gauge* max = &connections.Add({{"state", "max"}});
  prometheus::Gauge* waited =
      &family("db_pool_waits_total", "Checkouts that waited for a free connection since start").Add({});
  prometheus::Gauge* prepared =
      &family("db_statements_prepared_total", "Server-side statement prepares since start (MySQL)").Add({});
  prometheus::Gauge* reset = &family("db_statement_cache_resets_total",
                                     "Per-connection prepared-statement caches dropped because full, since start "
                                     "(MySQL)")
                                  .Add({});
  runner.OnScrape([&db, open, in_use, max, waited, prepared, reset] {
    db::PoolStats stats = db::Stats(db);
    open->Set(stats.size);
    in_use->Set(stats.in_use);
    max->Set(stats.max_size);
    waited->Set(static_cast<double>(stats.waits));
    prepared->Set(static_cast<double>(stats.statements_prepared));
    reset->Set(static_cast<double>(stats.statement_cache_resets));
  });
}

}  // namespace parcours
