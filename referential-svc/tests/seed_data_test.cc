// Checks the curated référentiel referential-svc/data/cqp-technicien-maintenance-alimentaire.json
// against the seed VAE jury guide it transcribes (shared/seeds/004_f5a6cebc33498f23.txt):
// structure (5 blocs, 19 compétences C1.1..C5.4, 106 criteria, two 4-level scales) and text
// (every transcribed text, whitespace-normalised, must appear verbatim in the seed).

#include <cstddef>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "google/protobuf/util/json_util.h"
#include "parcours/referential/v1/referential.pb.h"

namespace {

namespace rv1 = ::parcours::referential::v1;

constexpr char kSeedPath[] = PARCOURS_SOURCE_DIR "/../shared/seeds/004_f5a6cebc33498f23.txt";
constexpr char kDataPath[] =
    PARCOURS_SOURCE_DIR "/referential-svc/data/cqp-technicien-maintenance-alimentaire.json";

::testing::AssertionResult ReadWholeFile(const char* path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return ::testing::AssertionFailure() << "cannot open required file " << path;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  *out = buf.str();
  if (out->empty()) return ::testing::AssertionFailure() << "required file is empty: " << path;
  return ::testing::AssertionSuccess();
}

// Collapses every run of whitespace (ASCII whitespace and U+00A0 NO-BREAK SPACE) into one
// space and trims both ends, so the seed's line breaks, tabs and double spaces do not matter.
std::string NormalizeWs(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xA0) {
      ws = true;
      ++i;
    }
    if (ws) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(static_cast<char>(c));
  }
  return out;
}

::testing::AssertionResult LoadSeed(std::string* normalized_seed) {
  std::string raw;
  auto r = ReadWholeFile(kSeedPath, &raw);
  if (!r) return r << " (the seed VAE jury guide is the authority for the transcription test)";
  *normalized_seed = NormalizeWs(raw);
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult LoadDocument(rv1::ReferentialDocument* doc) {
  std::string json;
  auto r = ReadWholeFile(kDataPath, &json);
  if (!r) return r;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(json, doc, opts);
  if (!status.ok()) {
    return ::testing::AssertionFailure() << "cannot parse " << kDataPath << ": " << status.ToString();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SeedContains(const std::string& normalized_seed, const std::string& what,
                                        const std::string& value) {
  const std::string v = NormalizeWs(value);
  if (v.empty()) return ::testing::AssertionFailure() << what << " is empty";
  if (normalized_seed.find(v) == std::string::npos) {
    return ::testing::AssertionFailure() << what << " is not found verbatim in the seed: \"" << v << "\"";
  }
  return ::testing::AssertionSuccess();
}

const rv1::Competence* FindCompetence(const rv1::Version& v, const std::string& code) {
  for (const auto& b : v.blocs()) {
    for (const auto& c : b.competences()) {
      if (c.code() == code) return &c;
    }
  }
  return nullptr;
}

TEST(SeedDataTest, SeedFileIsPresent) {
  std::string seed;
  ASSERT_TRUE(LoadSeed(&seed));
  EXPECT_NE(seed.find("GRILLE D’ÉVALUATION VAE"), std::string::npos);
}

TEST(SeedDataTest, DocumentParsesAndIdentityIsAsCurated) {
  rv1::ReferentialDocument doc;
  ASSERT_TRUE(LoadDocument(&doc));
  const auto& cert = doc.certification();
  EXPECT_EQ(cert.code(), "CQP-TMSA");
  EXPECT_EQ(cert.kind(), rv1::CERTIFICATION_KIND_CQP);
  EXPECT_EQ(cert.title(), "Technicien de maintenance du secteur alimentaire");
  EXPECT_EQ(cert.level(), rv1::QUALIFICATION_LEVEL_NONE);
  EXPECT_TRUE(cert.active());
  ASSERT_EQ(cert.certifiers_size(), 1);
  EXPECT_FALSE(cert.certifiers(0).name().empty());
  EXPECT_TRUE(cert.certifiers(0).siret().empty()) << "the seed gives no SIRET";
  EXPECT_TRUE(doc.publish());

  const auto& rules = doc.version().validation_rules();
  EXPECT_EQ(rules.bloc_threshold_percent(), 70);
  EXPECT_TRUE(rules.partial_validation_allowed());
  EXPECT_EQ(rules.acquired_bloc_validity_months(), 0);
  EXPECT_EQ(rules.jury().min_members(), 2);
  EXPECT_EQ(rules.jury().min_qualified_members(), 1);
  ASSERT_EQ(rules.jury().required_colleges_size(), 2);
  EXPECT_EQ(rules.jury().required_colleges(0), rv1::COLLEGE_EMPLOYER);
  EXPECT_EQ(rules.jury().required_colleges(1), rv1::COLLEGE_EMPLOYEE);
  EXPECT_TRUE(rules.jury().president_required());
  EXPECT_TRUE(rules.jury().gender_balance_required());
  EXPECT_FALSE(rules.jury().description().empty());
}

TEST(SeedDataTest, BlocsCompetencesAndCriteriaCounts) {
  rv1::ReferentialDocument doc;
  ASSERT_TRUE(LoadDocument(&doc));
  const auto& v = doc.version();
  ASSERT_EQ(v.blocs_size(), 5);

  const std::vector<int> kCompetencesPerBloc = {4, 3, 5, 3, 4};
  const std::vector<int> kCriteriaPerBloc = {24, 13, 31, 13, 25};
  int total_competences = 0;
  int total_criteria = 0;
  for (int b = 0; b < v.blocs_size(); ++b) {
    const auto& bloc = v.blocs(b);
    SCOPED_TRACE("bloc " + bloc.code());
    EXPECT_EQ(bloc.code(), "BC" + std::to_string(b + 1));
    EXPECT_FALSE(bloc.title().empty());
    EXPECT_FALSE(bloc.short_label().empty());
    ASSERT_EQ(bloc.competences_size(), kCompetencesPerBloc[b]);
    int bloc_criteria = 0;
    for (int c = 0; c < bloc.competences_size(); ++c) {
      const auto& comp = bloc.competences(c);
      EXPECT_EQ(comp.code(), "C" + std::to_string(b + 1) + "." + std::to_string(c + 1));
      EXPECT_FALSE(comp.text().empty()) << comp.code();
      EXPECT_FALSE(comp.criteria_heading().empty()) << comp.code();
      EXPECT_GE(comp.criteria_size(), 1) << comp.code() << " has no criterion";
      for (const auto& crit : comp.criteria()) {
        EXPECT_FALSE(crit.text().empty()) << comp.code();
      }
      bloc_criteria += comp.criteria_size();
    }
    EXPECT_EQ(bloc_criteria, kCriteriaPerBloc[b]);
    total_competences += bloc.competences_size();
    total_criteria += bloc_criteria;
  }
  EXPECT_EQ(total_competences, 19);
  EXPECT_EQ(total_criteria, 106);
}

TEST(SeedDataTest, ScalesHaveFourRankedLevels) {
  rv1::ReferentialDocument doc;
  ASSERT_TRUE(LoadDocument(&doc));
  const auto& v = doc.version();
  ASSERT_EQ(v.scales_size(), 2);
  EXPECT_EQ(v.scales(0).kind(), rv1::SCALE_KIND_DOSSIER);
  EXPECT_EQ(v.scales(1).kind(), rv1::SCALE_KIND_INTERVIEW);
  for (const auto& scale : v.scales()) {
    SCOPED_TRACE(scale.title());
    EXPECT_FALSE(scale.title().empty());
    ASSERT_EQ(scale.levels_size(), 4);
    for (int i = 0; i < scale.levels_size(); ++i) {
      EXPECT_EQ(scale.levels(i).rank(), i + 1);
      EXPECT_FALSE(scale.levels(i).description().empty());
    }
  }
}

TEST(SeedDataTest, Bc3TitleAndShortLabelDiffer) {
  rv1::ReferentialDocument doc;
  ASSERT_TRUE(LoadDocument(&doc));
  ASSERT_GE(doc.version().blocs_size(), 3);
  const auto& bc3 = doc.version().blocs(2);
  ASSERT_EQ(bc3.code(), "BC3");
  EXPECT_NE(bc3.title(), bc3.short_label());
  EXPECT_EQ(bc3.title(), "Réaliser des actions de maintenance sur des équipements agroalimentaires");
  EXPECT_EQ(bc3.short_label(),
            "Réaliser des actions de maintenance préventives et correctives standards sur des "
            "équipements agroalimentaires");
}

// A sample of texts, each looked up in the seed itself.
TEST(SeedDataTest, SampledTextsAppearVerbatimInSeed) {
  std::string seed;
  ASSERT_TRUE(LoadSeed(&seed));
  rv1::ReferentialDocument doc;
  ASSERT_TRUE(LoadDocument(&doc));
  const auto& v = doc.version();
  ASSERT_EQ(v.blocs_size(), 5);
  ASSERT_EQ(v.scales_size(), 2);

  EXPECT_TRUE(SeedContains(seed, "certification title", doc.certification().title()));
  for (const auto& bloc : v.blocs()) {
    EXPECT_TRUE(SeedContains(seed, bloc.code() + " title",
                             "Bloc de compétences n°" + bloc.code().substr(2) + " : " + bloc.title()));
  }
  EXPECT_TRUE(SeedContains(seed, "BC3 short label", "BC3 : " + v.blocs(2).short_label()));

  struct CompSample {
    const char* code;
    const char* seed_code;  // as the seed writes it
  };
  for (const CompSample& s : {CompSample{"C1.1", "C1.1"}, CompSample{"C2.3", "C.2.3."},
                              CompSample{"C3.5", "C.3.5."}, CompSample{"C4.3", "C.4.3"},
                              CompSample{"C5.3", "C.5.3."}}) {
    const rv1::Competence* c = FindCompetence(v, s.code);
    ASSERT_NE(c, nullptr) << s.code;
    EXPECT_TRUE(SeedContains(seed, std::string(s.code) + " text",
                             std::string(s.seed_code) + " " + c->text()));
  }

  const rv1::Competence* c11 = FindCompetence(v, "C1.1");
  const rv1::Competence* c22 = FindCompetence(v, "C2.2");
  const rv1::Competence* c42 = FindCompetence(v, "C4.2");
  const rv1::Competence* c52 = FindCompetence(v, "C5.2");
  ASSERT_TRUE(c11 && c22 && c42 && c52);
  EXPECT_TRUE(SeedContains(seed, "C1.1 heading", c11->criteria_heading()));
  EXPECT_TRUE(SeedContains(seed, "C5.2 heading", c52->criteria_heading()));
  ASSERT_EQ(c11->criteria_size(), 8);
  ASSERT_EQ(c22->criteria_size(), 5);
  ASSERT_EQ(c42->criteria_size(), 6);
  ASSERT_EQ(c52->criteria_size(), 9);
  EXPECT_TRUE(SeedContains(seed, "C1.1 criterion 8", "· " + c11->criteria(7).text()));
  EXPECT_TRUE(SeedContains(seed, "C2.2 criterion 2", "· " + c22->criteria(1).text()));
  EXPECT_TRUE(SeedContains(seed, "C4.2 criterion 2", "· " + c42->criteria(1).text()));
  EXPECT_TRUE(SeedContains(seed, "C5.2 criterion 8", "· " + c52->criteria(7).text()));

  const auto& dossier = v.scales(0);
  const auto& interview = v.scales(1);
  ASSERT_EQ(dossier.levels_size(), 4);
  ASSERT_EQ(interview.levels_size(), 4);
  EXPECT_TRUE(SeedContains(seed, "dossier scale title", dossier.title()));
  EXPECT_TRUE(SeedContains(seed, "interview scale title", interview.title()));
  EXPECT_TRUE(SeedContains(seed, "dossier level 1", dossier.levels(0).description()));
  EXPECT_TRUE(SeedContains(seed, "dossier level 4", dossier.levels(3).description()));
  EXPECT_TRUE(SeedContains(seed, "interview level 1", interview.levels(0).description()));
  EXPECT_TRUE(SeedContains(seed, "interview level 4", interview.levels(3).description()));
  EXPECT_NE(dossier.levels(0).description().find("Les documents joints"), std::string::npos);
}

// Every transcribed text (not only the sample) must come from the seed.
TEST(SeedDataTest, AllTranscribedTextsAppearInSeed) {
  std::string seed;
  ASSERT_TRUE(LoadSeed(&seed));
  rv1::ReferentialDocument doc;
  ASSERT_TRUE(LoadDocument(&doc));
  const auto& v = doc.version();
  for (const auto& bloc : v.blocs()) {
    EXPECT_TRUE(SeedContains(seed, bloc.code() + " title", bloc.title()));
    EXPECT_TRUE(SeedContains(seed, bloc.code() + " short label", bloc.short_label()));
    for (const auto& comp : bloc.competences()) {
      EXPECT_TRUE(SeedContains(seed, comp.code() + " text", comp.text()));
      EXPECT_TRUE(SeedContains(seed, comp.code() + " heading", comp.criteria_heading()));
      for (int i = 0; i < comp.criteria_size(); ++i) {
        EXPECT_TRUE(SeedContains(seed, comp.code() + " criterion " + std::to_string(i + 1),
                                 "· " + comp.criteria(i).text()));
      }
    }
  }
  for (const auto& scale : v.scales()) {
    EXPECT_TRUE(SeedContains(seed, "scale title", scale.title()));
    for (const auto& level : scale.levels()) {
      EXPECT_TRUE(SeedContains(seed, scale.title() + " level " + std::to_string(level.rank()),
                               level.description()));
    }
  }
}

}  // namespace
