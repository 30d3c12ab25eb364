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
  prometheus::Gauge* open = &connections.Add({{"state", "open"}});
  prometheus::Gauge* in_use = &connections.Add({{"state", "in_use"}});
  prometheus::Gauge* max = &connections.Add({{"state", "max"}});
  prometheus::Gauge* waited = &waits.Add({});
  runner.OnScrape([&db, open, in_use, max, waited] {
    db::PoolStats stats = db::Stats(db);
    open->Set(stats.size);
    in_use->Set(stats.in_use);
    max->Set(stats.max_size);
    waited->Set(static_cast<double>(stats.waits));
  });
}

}  // namespace parcours
