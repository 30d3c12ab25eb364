// Calendar days as the integer yyyymmdd (20240131): what the databases store and the rules
// compare. One definition for every service.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "google/type/date.pb.h"

namespace parcours {

// 20240131 from a google.type.Date; 0 when unset.
inline int DateKey(const google::type::Date& d) { return d.year() * 10000 + d.month() * 100 + d.day(); }

// A real calendar day of year 1900..9999 (2024-02-30 is not one). One check for every service:
// "day <= 31" let 2023-02-31 through.
inline bool IsCalendarDate(const google::type::Date& d) {
  if (d.year() < 1900 || d.year() > 9999 || d.month() < 1 || d.month() > 12 || d.day() < 1) return false;
  const absl::CivilDay day(d.year(), d.month(), d.day());
  // CivilDay normalises out-of-range days (Feb 30 -> Mar 1): a real day survives unchanged.
  return day.year() == d.year() && day.month() == d.month() && day.day() == d.day();
}

// 20240131 from exactly "2024-01-31", a calendar date; nullopt for anything else ("2024-1-31",
// "2024-02-30", "2024-01-31x"). Filters take dates this way.
inline std::optional<int> ParseDateKey(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  int parts[3] = {0, 0, 0};
  for (size_t i = 0, part = 0; i < text.size(); ++i) {
    if (i == 4 || i == 7) {
      ++part;
      continue;
    }
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    parts[part] = parts[part] * 10 + (text[i] - '0');
  }
  google::type::Date d;
  d.set_year(parts[0]);
  d.set_month(parts[1]);
  d.set_day(parts[2]);
  if (!IsCalendarDate(d)) return std::nullopt;
  return DateKey(d);
}

// "2024-01-31" from 20240131.
inline std::string FormatDateKey(int yyyymmdd) {
  return absl::StrFormat("%04d-%02d-%02d", yyyymmdd / 10000, (yyyymmdd / 100) % 100, yyyymmdd % 100);
}

// Adds calendar months, clamping the day to the month's end (20240131 + 1 month = 20240229).
inline int AddMonths(int yyyymmdd, int months) {
  const absl::CivilMonth target = absl::CivilMonth(yyyymmdd / 10000, (yyyymmdd / 100) % 100) + months;
  // The last day of the target month: day 0 of the next month, normalised.
  const int last = static_cast<int>(absl::CivilDay(target.year(), target.month() + 1, 0).day());
  const int day = std::min(yyyymmdd % 100, last);
  return static_cast<int>(target.year() * 10000 + target.month() * 100 + day);
}

}  // namespace parcours
