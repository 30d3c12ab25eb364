#include "referential-svc/src/repository.h"

#include "absl/strings/str_cat.h"

namespace parcours::referential {

std::string CertificationName(absl::string_view code) { return absl::StrCat("certifications/", code); }

std::string VersionName(absl::string_view code, int number) {
  return absl::StrCat("certifications/", code, "/versions/", number);
}

void ClearOutputFields(pb::Certification& c) {
  c.clear_name();
  c.clear_etag();
  c.clear_current_version();
  c.clear_create_time();
  c.clear_update_time();
}

void ClearOutputFields(pb::Version& v) {
  v.clear_name();
  v.clear_etag();
  v.clear_state();
  v.clear_create_time();
  v.clear_update_time();
  v.clear_publish_time();
}

std::string FoldForSearch(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
      continue;
    }
    // UTF-8 two-byte sequences C3 80..C3 9E are U+00C0..U+00DE (À..Þ, except × at C3 97);
    // their lower-case forms are the same +0x20 (à..þ).
    if (c == 0xC3 && i + 1 < text.size()) {
      unsigned char d = static_cast<unsigned char>(text[i + 1]);
      if (d >= 0x80 && d <= 0x9E && d != 0x97) d += 0x20;
      out.push_back(static_cast<char>(c));
      out.push_back(static_cast<char>(d));
      ++i;
      continue;
    }
    // Œ (C5 92) -> œ (C5 93).
    if (c == 0xC5 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x92) {
      out.append("\xC5\x93");
      ++i;
      continue;
    }
    out.push_back(static_cast<char>(c));
  }
  return out;
}

}  // namespace parcours::referential
