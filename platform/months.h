// Months as the APIs write them: "YYYY-MM" (indicator periods, dashboards). One parser, so a month
// the gateway accepts is one cep-svc accepts.
#pragma once

#include <optional>
#include <string_view>

#include "absl/time/civil_time.h"

namespace parcours {

// Exactly four digits, '-', two digits; year 1900 or later, month 01..12. Anything else ("2017-3",
// "+017-03", " 2017-03") is not a month.
inline std::optional<absl::CivilMonth> ParseYearMonth(std::string_view text) {
  if (text.size() != 7 || text[4] != '-') return std::nullopt;
  int year = 0;
  int month = 0;
  for (size_t i = 0; i < 7; ++i) {
    if (i == 4) continue;
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    int& part = i < 4 ? year : month;
    part = part * 10 + (text[i] - '0');
  }
  if (year < 1900 || month < 1 || month > 12) return std::nullopt;
  return absl::CivilMonth(year, month);
}

// The longest period of an indicator query or a national dashboard: 20 years (cep-svc reads its
// rollups month by month). The gateway checks it too, so a dashboard says INVALID_ARGUMENT
// instead of a missing part.
inline constexpr int kMaxPeriodMonths = 240;

}  // namespace parcours
