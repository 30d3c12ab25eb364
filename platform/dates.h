// Calendar days as the integer yyyymmdd (20240131): what the databases store and the rules
// compare. One definition for every service.
#pragma once

#include <algorithm>
#include <string>

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
