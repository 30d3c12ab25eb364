// The référentiel rules that do not need storage: field formats (INVALID_ARGUMENT, checked on
// every write) and the completeness of a version (FAILED_PRECONDITION, checked at publication).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "parcours/referential/v1/referential.pb.h"
#include "platform/errors.h"

namespace parcours::referential {

namespace pb = ::parcours::referential::v1;

// Limits of the model (characters, counts).
inline constexpr int kMaxCodeChars = 64;
inline constexpr int kMaxTitleChars = 500;
inline constexpr int kMaxTextChars = 4000;
inline constexpr int kMaxLongTextChars = 20000;
inline constexpr int kMaxItems = 200;
// How long an acquired bloc may stay valid, at most (100 years; 0 = permanent).
inline constexpr int kMaxValidityMonths = 1200;

bool IsValidCode(absl::string_view code);

// A calendar date (year 1900..9999), or unset (all zero).
void CheckDate(const google::type::Date& d, std::string field, Violations& v);

// Formats of a certification's fields, reported under `prefix` ("certification").
void CheckCertification(const pb::Certification& c, absl::string_view prefix, Violations& v);

// Formats of a version's fields (a draft may be incomplete but never malformed).
void CheckVersion(const pb::Version& version, absl::string_view prefix, Violations& v);

// Everything a version must satisfy to be published; empty when it may be. `subject` is the
// version's resource name, used as each violation's subject prefix.
std::vector<PreconditionViolation> PublicationViolations(const pb::Version& version,
                                                         pb::CertificationKind kind,
                                                         absl::string_view subject);

}  // namespace parcours::referential
