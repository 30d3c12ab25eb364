// The synthesis grid PDF: rendered, then read back with poppler's pdftotext (poppler-utils), whose
// absence fails the tests. Cells are word-wrapped, so values are looked for as word sequences in
// the extracted text (a wrapped label interleaves with its neighbouring cells line by line).
// Two font paths: the standard fonts (Helvetica, WinAnsiEncoding, nothing embedded) when every
// text is in Windows-1252, the embedded DejaVu Sans otherwise. The seed grid ("Müller-Ŝtraße",
// "Nguyễn") takes the embedded path, Cp1252Grid() the standard one; layout tests run on both.
#include "evaluation-svc/src/synthesis_grid.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace parcours::evaluation {
namespace {

// --- Seed scenario ------------------------------------------------------------------------------
const char* const kSeedLabels[] = {
    "Organiser des interventions de maintenance sur des équipements agroalimentaires",
    "Réaliser des diagnostics de maintenance sur des équipements pluri-technologiques",
    "Réaliser des actions de maintenance préventives et correctives standards sur des équipements "
    "agroalimentaires",
    "Déployer des solutions de maintenance conditionnelle et prévisionnelle",
    "Mener des projets d’amélioration continue de maintenance",
};

SynthesisGrid SeedGrid() {
  SynthesisGrid grid;
  grid.certification_title = "Technicien de maintenance du secteur alimentaire";
  grid.certification_kind = "CQP";
  grid.certification_code = "CQP-TMSA";
  grid.candidate_name = "Élodie Müller-Ŝtraße";
  grid.date = "12/06/2026";
  const int percents[] = {80, 75, 60, 72, 55};
  const bool acquired[] = {true, true, false, true, false};
  const char* const comments[] = {
      "Planification rigoureuse des interventions, priorités bien justifiées devant le jury.",
      "Démarche de diagnostic méthodique, causes racines identifiées.",
      "Les gammes préventives sont incomplètes ; la consignation n’est pas maîtrisée.",
      "Bonne exploitation des mesures vibratoires et thermographiques.",
      "Projet d’amélioration décrit sans indicateurs de résultat.",
  };
  for (int i = 0; i < 5; ++i) {
    SynthesisGrid::Bloc bloc;
    bloc.code = "BC" + std::to_string(i + 1);
    bloc.label = kSeedLabels[i];
    bloc.common_percent = percents[i];
    bloc.acquired = acquired[i];
    bloc.comment = comments[i];
    grid.blocs.push_back(bloc);
  }
  grid.proposal = "Attribution partielle : BC1, BC2, BC4";
  grid.comment = "Le candidat maîtrise l’organisation et le diagnostic ; les blocs BC3 et BC5 restent à valider.";
  grid.members = {
      {"Jean-Pierre Lefèvre", "Responsable maintenance", "Collège employeurs", true, "12/06/2026 17:42"},
      {"Sophie Nguyễn", "Technicienne de maintenance", "Collège salariés", false, "12/06/2026 17:45"},
      {"Marc Dubois-Öztürk", "Formateur en maintenance industrielle", "Personne qualifiée", false,
       "12/06/2026 17:51"},
  };
  return grid;
}

// The seed with names and comments all in Windows-1252 (’ « » œ Œ € … — and a no-break space).
SynthesisGrid Cp1252Grid() {
  SynthesisGrid grid = SeedGrid();
  grid.candidate_name = "Élodie Müller";
  grid.blocs[0].comment = "Planification « rigoureuse » des interventions, priorités bien justifiées devant le jury.";
  grid.blocs[3].comment = "Bonne exploitation des mesures vibratoires : c’est le cœur du métier.";
  grid.blocs[4].comment = "Projet d’amélioration chiffré à 12\u00A0000\u00A0€ — sans indicateurs de résultat…";
  grid.comment = "Œil exercé : le candidat maîtrise l’organisation et le diagnostic ; les blocs BC3 et BC5 restent à valider.";
  grid.members[1].name = "Sophie Nguyen";
  return grid;
}

// A no-break space is extracted as a space.
std::string Plain(std::string s) {
  for (size_t at = s.find("\u00A0"); at != std::string::npos; at = s.find("\u00A0", at)) s.replace(at, 2, " ");
  return s;
}

bool Embeds(const std::string& pdf, const std::string& what) { return pdf.find(what) != std::string::npos; }

// Layout tests run on both font paths: the seed (embedded font) and its Windows-1252 variant
// (standard fonts).
std::vector<SynthesisGrid> BothPaths() { return {SeedGrid(), Cp1252Grid()}; }

// --- pdftotext ----------------------------------------------------------------------------------
bool HaveTool(const std::string& tool) {
  FILE* p = popen(("command -v " + tool + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) return false;
  char buf[256];
  const bool found = fgets(buf, sizeof buf, p) != nullptr;
  pclose(p);
  return found;
}

// Runs a command, returning its standard output; exit status in *status.
std::string Run(const std::string& command, int* status) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) {
    *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

struct Extracted {
  std::string pdf;    // the document
  std::string text;   // pdftotext -layout output
  std::string info;   // pdfinfo output
  std::string bbox;   // pdftotext -bbox output, when asked
  std::string error;  // why extraction failed, empty on success
};

Extracted RenderAndExtract(const SynthesisGrid& grid, bool bbox = false) {
  Extracted out;
  if (!HaveTool("pdftotext") || !HaveTool("pdfinfo")) {
    out.error = "pdftotext/pdfinfo not found: install poppler-utils to run the synthesis grid tests";
    return out;
  }
  absl::StatusOr<std::string> pdf = RenderSynthesisGridPdf(grid);
  if (!pdf.ok()) {
    out.error = "render failed: " + pdf.status().ToString();
    return out;
  }
  if (pdf->compare(0, 5, "%PDF-") != 0) {
    out.error = "not a PDF";
    return out;
  }
  out.pdf = *pdf;
  std::string path = ::testing::TempDir() + "synthesis_grid_XXXXXX.pdf";
  const int fd = mkstemps(path.data(), 4);
  if (fd < 0) {
    out.error = "mkstemps failed for " + path;
    return out;
  }
  const bool written = write(fd, pdf->data(), pdf->size()) == static_cast<ssize_t>(pdf->size());
  close(fd);
  if (!written) {
    out.error = "could not write " + path;
    unlink(path.c_str());
    return out;
  }
  int status = 0;
  out.text = Run("pdftotext -q -layout '" + path + "' -", &status);
  if (status != 0) out.error = "pdftotext failed on " + path + " (status " + std::to_string(status) + ")";
  int info_status = 0;
  out.info = Run("pdfinfo '" + path + "' 2>/dev/null", &info_status);
  if (out.error.empty() && info_status != 0) out.error = "pdfinfo failed on " + path;
  if (bbox) {
    int bbox_status = 0;
    out.bbox = Run("pdftotext -q -bbox '" + path + "' -", &bbox_status);
    if (out.error.empty() && bbox_status != 0) out.error = "pdftotext -bbox failed on " + path;
  }
  if (out.error.empty()) unlink(path.c_str());  // kept for inspection otherwise
  return out;
}

std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);  // splits on spaces, newlines and form feeds
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

// The index of the first word of `phrase` found in `words` at or after `from`, its words in order
// within a window of `slack` times its length (other cells' words may interleave); -1 if absent.
long Find(const std::vector<std::string>& words, const std::string& phrase, size_t from = 0, size_t slack = 4) {
  const std::vector<std::string> p = Words(phrase);
  if (p.empty()) return -1;
  const size_t window = p.size() * slack + 8;
  for (size_t s = from; s < words.size(); ++s) {
    if (words[s] != p[0]) continue;
    size_t k = 1;
    for (size_t i = s + 1; i < words.size() && i < s + window && k < p.size(); ++i) {
      if (words[i] == p[k]) ++k;
    }
    if (k == p.size()) return static_cast<long>(s);
  }
  return -1;
}

bool Contains(const std::vector<std::string>& words, const std::string& phrase, size_t from = 0, size_t to = SIZE_MAX) {
  const long at = Find(words, phrase, from);
  return at >= 0 && static_cast<size_t>(at) < to;
}

int Pages(const Extracted& e) {
  const size_t at = e.info.find("Pages:");
  return at == std::string::npos ? -1 : std::atoi(e.info.c_str() + at + 6);
}

// Row of bloc `code`: from its code to the next row's code (or the end).
std::pair<size_t, size_t> BlocRow(const std::vector<std::string>& words, const std::string& code,
                                  const std::string& next_code) {
  const long begin = Find(words, code + " :");
  const long end = next_code.empty() ? -1 : Find(words, next_code + " :", begin < 0 ? 0 : begin);
  return {begin < 0 ? words.size() : static_cast<size_t>(begin), end < 0 ? words.size() : static_cast<size_t>(end)};
}

// The seed scenario's values, all found in the extracted text of `grid` (the seed or a variant).
void ExpectSeedText(const SynthesisGrid& grid, const Extracted& e) {
  const std::vector<std::string> words = Words(e.text);
  SCOPED_TRACE("extracted text:\n" + e.text);

  EXPECT_TRUE(Contains(words, "Grille de synthèse des résultats et appréciations"));
  EXPECT_TRUE(Contains(words, "Jury d’évaluation (VAE)"));
  EXPECT_TRUE(Contains(words, "CQP Technicien de maintenance du secteur alimentaire"));
  EXPECT_NE(e.text.find(grid.candidate_name), std::string::npos);
  EXPECT_TRUE(Contains(words, "Date de délibération 12/06/2026"));
  EXPECT_TRUE(Contains(words, "CQP-TMSA"));
  EXPECT_TRUE(Contains(words, "Blocs de compétences"));
  EXPECT_TRUE(Contains(words, "L’appréciation de chaque bloc"));

  for (size_t i = 0; i < grid.blocs.size(); ++i) {
    const SynthesisGrid::Bloc& bloc = grid.blocs[i];
    SCOPED_TRACE(bloc.code);
    const auto [begin, end] = BlocRow(words, bloc.code, i + 1 < grid.blocs.size() ? grid.blocs[i + 1].code : "");
    ASSERT_LT(begin, words.size()) << bloc.code << " not found";
    EXPECT_TRUE(Contains(words, bloc.code + " : " + bloc.label, begin, end));
    EXPECT_TRUE(Contains(words, std::to_string(bloc.common_percent) + " %", begin, end));
    EXPECT_TRUE(Contains(words, Plain(bloc.comment), begin, end)) << bloc.comment;
    const bool non_acquis = Contains(words, "Non acquis", begin, end);
    EXPECT_EQ(non_acquis, !bloc.acquired);
    if (bloc.acquired) {
      EXPECT_TRUE(Contains(words, "Acquis", begin, end));
    }
  }
  EXPECT_TRUE(Contains(words, "Proposition d’attribution : Attribution partielle : BC1, BC2, BC4"));
  EXPECT_TRUE(Contains(words, "Commentaire du jury : " + Plain(grid.comment)));

  EXPECT_TRUE(Contains(words, "Membres du jury"));
  for (size_t i = 0; i < grid.members.size(); ++i) {
    const SynthesisGrid::Member& m = grid.members[i];
    SCOPED_TRACE(m.name);
    const long begin = Find(words, m.name);
    ASSERT_GE(begin, 0) << m.name << " not found";
    const long next = i + 1 < grid.members.size() ? Find(words, grid.members[i + 1].name, begin) : -1;
    const size_t end = next < 0 ? words.size() : static_cast<size_t>(next);
    EXPECT_TRUE(Contains(words, m.function, begin, end));
    EXPECT_TRUE(Contains(words, m.college, begin, end));
    EXPECT_TRUE(Contains(words, "Signé le " + m.signed_at, begin, end));
    EXPECT_EQ(Contains(words, "Président", begin, end), m.president);
  }

  EXPECT_EQ(Pages(e), 1);
  EXPECT_NE(e.info.find("Creator:         Parcours"), std::string::npos) << e.info;
  EXPECT_NE(e.info.find("Page size:       595.276 x 841.89 pts (A4)"), std::string::npos) << e.info;
  EXPECT_NE(e.text.find("Page 1 / 1"), std::string::npos);
  const std::string title = "Title:           Grille de synthèse des résultats et appréciations — Jury d’évaluation (VAE) — " +
                            grid.candidate_name + "\n";
  EXPECT_NE(e.info.find(title), std::string::npos) << e.info;
  EXPECT_NE(e.info.find("Subject:         Grille de synthèse des résultats et appréciations\n"), std::string::npos)
      << e.info;
}

// --- Tests ----------------------------------------------------------------------------------------
TEST(SynthesisGridPdf, SeedScenarioTextIsExtractable) {
  // "Müller-Ŝtraße" and "Nguyễn" are outside Windows-1252: the embedded font.
  const SynthesisGrid grid = SeedGrid();
  const Extracted e = RenderAndExtract(grid);
  ASSERT_TRUE(e.error.empty()) << e.error;
  EXPECT_NE(e.text.find("Élodie Müller-Ŝtraße"), std::string::npos);
  EXPECT_NE(e.text.find("Sophie Nguyễn"), std::string::npos);
  ExpectSeedText(grid, e);
  EXPECT_TRUE(Embeds(e.pdf, "/FontFile2"));
}

TEST(SynthesisGridPdf, Cp1252ScenarioUsesStandardFontsWithoutEmbedding) {
  const SynthesisGrid grid = Cp1252Grid();
  const Extracted e = RenderAndExtract(grid);
  ASSERT_TRUE(e.error.empty()) << e.error;
  ExpectSeedText(grid, e);  // the comments with their « » ’ œ Œ € — … among them
  for (const char* c : {"«", "»", "’", "œ", "Œ", "€", "—", "…", "É", "ü", "Ö"}) {
    EXPECT_NE(e.text.find(c), std::string::npos) << c << " in\n" << e.text;
  }
  EXPECT_FALSE(Embeds(e.pdf, "/FontFile")) << "no font file is embedded";
  EXPECT_TRUE(Embeds(e.pdf, "/BaseFont /Helvetica\n") || Embeds(e.pdf, "/BaseFont /Helvetica\r"));
  EXPECT_TRUE(Embeds(e.pdf, "/BaseFont /Helvetica-Bold"));  // real bold
  EXPECT_TRUE(Embeds(e.pdf, "/Encoding /WinAnsiEncoding"));
  EXPECT_LT(e.pdf.size(), 20u * 1024) << "bytes";
}

TEST(SynthesisGridPdf, AnyCharacterOutsideCp1252KeepsTheEmbeddedFont) {
  // One character outside Windows-1252, anywhere, and the whole grid takes the embedded font.
  struct Case {
    const char* what;
    void (*change)(SynthesisGrid&);
    const char* expected;  // as extracted
  };
  const Case cases[] = {
      {"member", [](SynthesisGrid& g) { g.members[2].college = "Collège salariés ≥ 5 ans"; }, "Collège salariés ≥ 5 ans"},
      {"code", [](SynthesisGrid& g) { g.certification_code = "CQP\u2011TMSA"; }, "CQP\u2011TMSA"},
      {"comment", [](SynthesisGrid& g) { g.blocs[1].comment = "Démarche → causes racines"; }, "Démarche → causes racines"},
      {"proposal", [](SynthesisGrid& g) { g.proposal = "Attribution partielle : BC1, BC2, BC4 ✓"; }, "BC4 ✓"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    SynthesisGrid grid = Cp1252Grid();
    c.change(grid);
    const Extracted e = RenderAndExtract(grid);
    ASSERT_TRUE(e.error.empty()) << e.error;
    const std::vector<std::string> words = Words(e.text);
    EXPECT_TRUE(Contains(words, c.expected)) << e.text;
    EXPECT_TRUE(Contains(words, grid.blocs[0].comment)) << e.text;
    EXPECT_TRUE(Embeds(e.pdf, "/FontFile2"));
  }
}

TEST(SynthesisGridPdf, WrappingMeasuresTheFontDrawn) {
  // A bold bloc code with no space, cut between characters to fit its column. Helvetica-Bold's
  // "tirl" is a fifth wider than Helvetica's: measured with the wrong font, pieces would spill
  // into the next column.
  for (SynthesisGrid grid : BothPaths()) {
    SCOPED_TRACE(grid.candidate_name);
    std::string code = "BC-";
    for (int i = 0; i < 40; ++i) code += "tirl";
    grid.blocs[0].code = code;
    const Extracted e = RenderAndExtract(grid, /*bbox=*/true);
    ASSERT_TRUE(e.error.empty()) << e.error;
    // Column 0 of the blocs table: 40 % of the content width, text inset by 4 pt.
    const double column_right = 42 + (595.276 - 84) * 0.40 - 4;
    std::string pieces;
    int count = 0;
    for (size_t at = e.bbox.find("<word "); at != std::string::npos; at = e.bbox.find("<word ", at + 1)) {
      const size_t text_at = e.bbox.find('>', at) + 1;
      const std::string word = e.bbox.substr(text_at, e.bbox.find("</word>", text_at) - text_at);
      if (word.find("tirl") == std::string::npos) continue;
      const size_t x = e.bbox.find("xMax=\"", at);
      ASSERT_NE(x, std::string::npos);
      const double x_max = std::atof(e.bbox.c_str() + x + 6);
      EXPECT_LE(x_max, column_right + 0.5) << word;
      pieces += word;
      ++count;
    }
    EXPECT_GE(count, 3);
    EXPECT_EQ(pieces, code);  // nothing lost
  }
}

TEST(SynthesisGridPdf, HeldBlocShowsAcquisAnterieurement) {
  for (SynthesisGrid grid : BothPaths()) {
    SCOPED_TRACE(grid.candidate_name);
    grid.blocs[1].held = true;
    grid.blocs[1].common_percent = 0;
    grid.blocs[1].comment = "";
    const Extracted e = RenderAndExtract(grid);
    ASSERT_TRUE(e.error.empty()) << e.error;
    const std::vector<std::string> words = Words(e.text);
    SCOPED_TRACE(e.text);
    const auto [begin, end] = BlocRow(words, "BC2", "BC3");
    ASSERT_LT(begin, words.size());
    EXPECT_TRUE(Contains(words, "acquis antérieurement", begin, end));
    EXPECT_TRUE(Contains(words, "Acquis", begin, end));
    EXPECT_FALSE(Contains(words, "%", begin, end));
    EXPECT_FALSE(Contains(words, "Non acquis", begin, end));
  }
}

// A candidate absent or excused: the jury appreciated no bloc, none reads "0 %" nor "Non acquis".
TEST(SynthesisGridPdf, ABlocWithoutAppreciationIsNotEvaluated) {
  for (SynthesisGrid grid : BothPaths()) {
    SCOPED_TRACE(grid.candidate_name);
    grid.blocs[2].appreciated = false;
    grid.blocs[2].common_percent = 0;
    grid.blocs[2].acquired = false;
    grid.blocs[2].comment = "";
    const Extracted e = RenderAndExtract(grid);
    ASSERT_TRUE(e.error.empty()) << e.error;
    const std::vector<std::string> words = Words(e.text);
    SCOPED_TRACE(e.text);
    const auto [begin, end] = BlocRow(words, "BC3", "BC4");
    ASSERT_LT(begin, words.size());
    EXPECT_TRUE(Contains(words, "—", begin, end));
    EXPECT_TRUE(Contains(words, "non évalué", begin, end));
    EXPECT_FALSE(Contains(words, "%", begin, end));
    EXPECT_FALSE(Contains(words, "acquis", begin, end));
    EXPECT_FALSE(Contains(words, "Acquis", begin, end));
  }
}

TEST(SynthesisGridPdf, RevokedRoundSaysRevokedWithItsReason) {
  for (SynthesisGrid grid : BothPaths()) {
    SCOPED_TRACE(grid.candidate_name);
    const Extracted valid = RenderAndExtract(grid);
    ASSERT_TRUE(valid.error.empty()) << valid.error;
    EXPECT_EQ(valid.text.find("RÉVOQUÉ"), std::string::npos) << valid.text;
    grid.revoked = true;
    grid.revocation_reason = "membre du jury lié au candidat";
    const Extracted e = RenderAndExtract(grid);
    ASSERT_TRUE(e.error.empty()) << e.error;
    SCOPED_TRACE(e.text);
    const std::vector<std::string> words = Words(e.text);
    EXPECT_TRUE(Contains(words, "RÉVOQUÉ — cette délibération a été révoquée et ne vaut pas résultat"));
    EXPECT_TRUE(Contains(words, "Motif de la révocation : membre du jury lié au candidat"));
    EXPECT_TRUE(Contains(words, "Proposition d’attribution (RÉVOQUÉE) : Attribution partielle : BC1, BC2, BC4"));
    // The rest is still printed, for the record.
    for (const SynthesisGrid::Member& m : grid.members) EXPECT_TRUE(Contains(words, "Signé le " + m.signed_at));
  }
}

TEST(SynthesisGridPdf, LongContentSpillsOntoMorePagesWithoutLoss) {
  for (SynthesisGrid grid : BothPaths()) {
    SCOPED_TRACE(grid.candidate_name);
    grid.blocs.clear();
    for (int i = 1; i <= 40; ++i) {
      SynthesisGrid::Bloc bloc;
      bloc.code = "BC" + std::to_string(i);
      bloc.label = kSeedLabels[(i - 1) % 5];
      bloc.common_percent = 40 + i;
      bloc.acquired = i % 3 != 0;
      bloc.comment = "Commentaire détaillé du jury pour le bloc " + std::to_string(i) +
                     " : le candidat présente des situations professionnelles variées, argumente ses choix "
                     "techniques et relie ses interventions aux exigences d’hygiène et de sécurité "
                     "alimentaire. repère-fin-" +
                     std::to_string(i);
      grid.blocs.push_back(bloc);
    }
    const Extracted e = RenderAndExtract(grid);
    ASSERT_TRUE(e.error.empty()) << e.error;
    const std::vector<std::string> words = Words(e.text);
    SCOPED_TRACE(e.text);
    const int pages = Pages(e);
    EXPECT_GE(pages, 2);
    EXPECT_EQ(std::count(e.text.begin(), e.text.end(), '\f'), pages);
    EXPECT_NE(e.text.find("Page 2 / " + std::to_string(pages)), std::string::npos);
    // The table header is repeated on every page the table spans (all but maybe the last).
    const auto headers = std::count(words.begin(), words.end(), std::string("L’appréciation"));
    EXPECT_GE(headers, std::max(2, pages - 1));
    size_t from = 0;
    for (int i = 1; i <= 40; ++i) {
      const std::string code = "BC" + std::to_string(i);
      SCOPED_TRACE(code);
      const long at = Find(words, code + " : " + kSeedLabels[(i - 1) % 5], from);
      ASSERT_GE(at, 0);
      EXPECT_TRUE(Contains(words, std::to_string(40 + i) + " %", static_cast<size_t>(at)));
      const long end = Find(words, "repère-fin-" + std::to_string(i), static_cast<size_t>(at));
      ASSERT_GE(end, 0);
      EXPECT_TRUE(Contains(words, grid.blocs[i - 1].comment, static_cast<size_t>(at), static_cast<size_t>(end) + 1));
      from = static_cast<size_t>(end);
    }
    // What follows the table is still there, after it.
    EXPECT_TRUE(Contains(words, "Proposition d’attribution : Attribution partielle", from));
    for (const SynthesisGrid::Member& m : grid.members) EXPECT_TRUE(Contains(words, "Signé le " + m.signed_at, from));
  }
}

TEST(SynthesisGridPdf, RowTallerThanAPageIsSplitAcrossPages) {
  for (SynthesisGrid grid : BothPaths()) {
    SCOPED_TRACE(grid.candidate_name);
    std::string comment;
    for (int i = 1; i <= 600; ++i) {
      char w[16];
      std::snprintf(w, sizeof w, "mot%04d ", i);
      comment += w;
    }
    grid.blocs[2].comment = comment;
    const Extracted e = RenderAndExtract(grid);
    ASSERT_TRUE(e.error.empty()) << e.error;
    const std::vector<std::string> words = Words(e.text);
    EXPECT_GE(Pages(e), 3);
    // Every word, in order.
    size_t at = 0;
    for (int i = 1; i <= 600; ++i) {
      char w[16];
      std::snprintf(w, sizeof w, "mot%04d", i);
      const auto it = std::find(words.begin() + static_cast<long>(at), words.end(), std::string(w));
      ASSERT_NE(it, words.end()) << w << " lost";
      at = static_cast<size_t>(it - words.begin());
    }
    EXPECT_TRUE(Contains(words, "BC3 (suite)"));  // the continuation pages recall the row
    EXPECT_TRUE(Contains(words, "BC4 : " + std::string(kSeedLabels[3]), at));
    EXPECT_TRUE(Contains(words, "Signé le 12/06/2026 17:51", at));
  }
}

TEST(SynthesisGridPdf, MalformedUtf8AndEmptyGridStillRender) {
  SynthesisGrid grid;
  grid.candidate_name = std::string("Nom\xFF") + "cassé\xC3" + " \xF0\x9F\x98\x80 fin";  // bad bytes, an emoji
  grid.comment = "ligne 1\nligne 2\ttab\x01";
  const Extracted e = RenderAndExtract(grid);
  ASSERT_TRUE(e.error.empty()) << e.error;
  EXPECT_NE(e.text.find("Nom\xEF\xBF\xBD" "cassé\xEF\xBF\xBD \xEF\xBF\xBD fin"), std::string::npos) << e.text;
  EXPECT_NE(e.text.find("ligne 2 tab"), std::string::npos) << e.text;
  EXPECT_EQ(Pages(e), 1);
  EXPECT_TRUE(Embeds(e.pdf, "/FontFile2"));  // U+FFFD is outside Windows-1252
}

TEST(SynthesisGridPdf, EmptyCp1252GridUsesStandardFonts) {
  SynthesisGrid grid;
  grid.comment = "ligne 1\r\nligne 2\ttab\x01";  // control characters are dropped, not a reason to embed
  const Extracted e = RenderAndExtract(grid);
  ASSERT_TRUE(e.error.empty()) << e.error;
  EXPECT_NE(e.text.find("ligne 2 tab"), std::string::npos) << e.text;
  EXPECT_NE(e.text.find("Page 1 / 1"), std::string::npos) << e.text;
  EXPECT_EQ(Pages(e), 1);
  EXPECT_FALSE(Embeds(e.pdf, "/FontFile"));
}

TEST(SynthesisGridPdf, ConcurrentRendersAreIdentical) {
  // The service renders from several threads: libharu documents are independent, and the output
  // does not depend on time (no creation date), so every render is byte-identical.
  for (const SynthesisGrid& grid : BothPaths()) {
    SCOPED_TRACE(grid.candidate_name);
    absl::StatusOr<std::string> reference = RenderSynthesisGridPdf(grid);
    ASSERT_TRUE(reference.ok()) << reference.status();
    std::vector<std::string> outputs(4 * 5);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 5; ++i) {
          absl::StatusOr<std::string> pdf = RenderSynthesisGridPdf(grid);
          outputs[static_cast<size_t>(t * 5 + i)] = pdf.ok() ? *std::move(pdf) : pdf.status().ToString();
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    for (const std::string& out : outputs) EXPECT_TRUE(out == *reference) << out.substr(0, 200);
  }
}

}  // namespace
}  // namespace parcours::evaluation
