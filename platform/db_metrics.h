// Database pool gauges on the runner's /metrics: db_pool_connections{state="open|in_use|max"}
// and db_pool_waits_total, refreshed at each scrape.
#pragma once

#include "platform/db/db.h"
#include "platform/server.h"

namespace parcours {

void ExportDbPoolMetrics(ServerRunner& runner, db::Db& db);

}  // namespace parcours
