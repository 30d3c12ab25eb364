#include "platform/db_metrics.h"

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace parcours {

void ExportDbPoolMetrics(ServerRunner& runner, db::Db& db) {
  auto& connections = prometheus::BuildGauge()
                          .Name("db_pool_connections")
                          .Help("Database connections by state (open, in_use, max)")
                          .Register(runner.metrics_registry());
  auto& waits = prometheus::BuildGauge()
                    .Name("db_pool_waits_total")
                    .Help("Checkouts that waited for a free connection since start")
                    .Register(runner.metrics_registry());
  auto& statements = prometheus::BuildGauge()
                         .Name("db_statements_prepared_total")
                         .Help("Server-side statement prepares since start (MySQL)")
                         .Register(runner.metrics_registry());
  auto& resets = prometheus::BuildGauge()
                     .Name("db_statement_cache_resets_total")
                     .Help("Per-connection prepared-statement caches dropped because full, since start (MySQL)")
                     .Register(runner.metrics_registry());
  prometheus::Gauge* prepared = &statements.Add({});
  prometheus::Gauge* reset = &resets.Add({});
  prometheus::Gauge* open = &connections.Add({{"state", "open"}});
  prometheus::Gauge* in_use = &connections.Add({{"state", "in_use"}});
  prometheus::Gauge* max = &connections.Add({{"state", "max"}});
  prometheus::Gauge* waited = &waits.Add({});
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
