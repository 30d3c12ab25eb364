// Database pool gauges on the runner's /metrics: db_pool_connections{state="open|in_use|max"},
// db_pool_waits_total, db_statements_prepared_total and db_statement_cache_resets_total,
// refreshed at each scrape.
#pragma once

#include "platform/db/db.h"
#include "platform/server.h"

namespace parcours {

void ExportDbPoolMetrics(ServerRunner& runner, db::Db& db);

}  // namespace parcours
