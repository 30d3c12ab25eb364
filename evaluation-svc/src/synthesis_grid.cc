// The synthesis grid PDF, drawn with libharu (libhpdf 2.3.0).
//
// Layout (A4 portrait, 42 pt margins): the seed's title and certification line, an identity block
// (candidate, deliberation date, certification code), the "Blocs de compétences" table (bloc,
// "L’appréciation de chaque bloc" in %, result, comment), the proposal and the jury's comment,
// then the members table (name, function, college, role, signature). Every cell is word-wrapped
// to its column and rows take the height of their tallest cell; a row that does not fit moves to
// the next page (the table header is repeated), and a row taller than a page is split line by
// line. Each page carries a footer "Page i / n".
//
// Text: input strings are sanitized to valid UTF-8 in the Basic Multilingual Plane (libharu's UTF-8
// encoder maps to 16-bit CIDs); anything else becomes U+FFFD. The text model (words, lines, runs)
// stays in UTF-8; it is converted to the chosen font's encoding only to be measured and drawn.
// Two font sets:
//   - Standard (the fast path, used whenever every character of every text of the grid is in
//     Windows-1252, which covers French: é œ Œ ’ « » – — … € and the no-break space): the base-14
//     fonts Helvetica and Helvetica-Bold with libharu's WinAnsiEncoding, nothing embedded. The
//     text is converted to CP1252 here. Well under 1 ms and a few KB per grid.
//   - Embedded (anything else, e.g. "Ŝtraße", "Nguyễn", U+FFFD): one TrueType font (DejaVu Sans)
//     embedded as a CID font with libharu's UTF-8 encoder, so that nothing is ever lost. Headings
//     are "bold" by fill-then-stroke rendering of the same font: a second embedded font would
//     double the most expensive part of the rendering (libharu builds a 64K-entry CID-to-glyph
//     map per UTF-8 font, and compresses the ~700 KB font on saving: ~11 ms in all).
// Measurement always uses the font actually drawn (Helvetica-Bold is wider than Helvetica).
//
// Errors: libharu reports through an error handler that records the first error; any error makes
// the call return INTERNAL. The document is always freed.
#include "evaluation-svc/src/synthesis_grid.h"

#include <hpdf.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace parcours::evaluation {
namespace {

// --- Page geometry (points) ---------------------------------------------------------------------
constexpr double kPageWidth = 595.276;  // A4
constexpr double kPageHeight = 841.89;
constexpr double kMarginLeft = 42;
constexpr double kMarginRight = 42;
constexpr double kMarginTop = 44;
constexpr double kMarginBottom = 52;  // the footer sits inside it
constexpr double kContentWidth = kPageWidth - kMarginLeft - kMarginRight;
constexpr double kTop = kPageHeight - kMarginTop;
constexpr double kBottom = kMarginBottom;

constexpr double kTitleSize = 15;
constexpr double kSubtitleSize = 12;
constexpr double kHeadingSize = 11;
constexpr double kBodySize = 9.5;
constexpr double kCellSize = 9;
constexpr double kFooterSize = 7.5;
constexpr double kLineFactor = 1.22;   // line height / font size
constexpr double kAscentFactor = 0.9;  // first baseline below the top of a line box
constexpr double kCellPadX = 4;
constexpr double kCellPadY = 3.5;
constexpr double kBorderWidth = 0.5;
constexpr double kBoldStroke = 0.035;  // stroke width of the fill-then-stroke "bold", per pt of size
constexpr double kHeaderGray = 0.88;

constexpr const char* kFontDirs[] = {
    "/usr/share/fonts/truetype/dejavu/",  // Debian / Ubuntu (fonts-dejavu-core)
    "/usr/share/fonts/dejavu/",           // Fedora, Alpine
    "/usr/share/fonts/TTF/",              // Arch
};
constexpr const char* kFontFile = "DejaVuSans.ttf";

constexpr const char* kTitleLine1 = "Grille de synthèse des résultats et appréciations";
constexpr const char* kTitleLine2 = "Jury d’évaluation (VAE)";

// --- UTF-8 ---------------------------------------------------------------------------------------
constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Valid UTF-8, BMP only, no control characters. Newlines are kept (paragraph breaks) when asked,
// otherwise they become spaces; tabs become spaces; "\r" is dropped.
std::string Sanitize(std::string_view in, bool keep_newlines) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    uint32_t cp = 0;
    size_t len = 0;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F;
      len = 2;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F;
      len = 3;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07;
      len = 4;
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    bool ok = i + len <= in.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(in[i + k]);
      if ((cc & 0xC0) != 0x80) {
        ok = false;
      } else {
        cp = (cp << 6) | (cc & 0x3F);
      }
    }
    if (ok) {
      const bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
      ok = !overlong && !(cp >= 0xD800 && cp <= 0xDFFF) && cp <= 0x10FFFF;
    }
    if (!ok) {
      out += kReplacement;
      ++i;
      continue;
    }
    const std::string_view bytes = in.substr(i, len);
    i += len;
    if (cp == '\r') continue;
    if (cp == '\n') {
      out += keep_newlines ? '\n' : ' ';
    } else if (cp == '\t') {
      out += ' ';
    } else if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) {
      // control character: dropped
    } else if (cp > 0xFFFF) {
      out += kReplacement;
    } else {
      out.append(bytes.data(), bytes.size());
    }
  }
  return out;
}

// Length of the (valid) UTF-8 sequence starting with byte c.
size_t Utf8Length(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  return 4;
}

// --- Windows-1252 ----------------------------------------------------------------------------------
// Bytes 0x80-0x9F of CP1252 (0 where the code page leaves the byte undefined); 0xA0-0xFF are
// Latin-1 (U+00A0-U+00FF) and 0x20-0x7E ASCII. Identical to libharu's WinAnsiEncoding.
constexpr uint16_t kCp1252High[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,  // 0x80
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,       // 0x88
    0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,  // 0x90
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,  // 0x98
};

// The CP1252 byte of code point cp, 0 if it has none. Control characters have none.
unsigned char Cp1252Byte(uint32_t cp) {
  if ((cp >= 0x20 && cp < 0x7F) || (cp >= 0xA0 && cp <= 0xFF)) return static_cast<unsigned char>(cp);
  if (cp < 0x152 || cp > 0x2122) return 0;
  for (unsigned char i = 0; i < 32; ++i) {
    if (kCp1252High[i] == cp) return static_cast<unsigned char>(0x80 + i);
  }
  return 0;
}

// Decodes the valid UTF-8 sequence at text[i] (as produced by Sanitize), advancing i.
uint32_t DecodeUtf8(std::string_view text, size_t& i) {
  const auto c = static_cast<unsigned char>(text[i]);
  const size_t len = std::min(Utf8Length(c), text.size() - i);
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
  i += len;
  return cp;
}

// Appends the CP1252 form of UTF-8 text (newlines kept) to *out. False if a character has no
// CP1252 byte; it becomes '?'.
bool AppendCp1252(std::string_view utf8, std::string* out) {
  bool ok = true;
  size_t i = 0;
  while (i < utf8.size()) {
    const uint32_t cp = DecodeUtf8(utf8, i);
    unsigned char b = cp == '\n' ? '\n' : Cp1252Byte(cp);
    if (b == 0) {
      ok = false;
      b = '?';
    }
    out->push_back(static_cast<char>(b));
  }
  return ok;
}

// Whether the sanitized form of text is entirely in CP1252.
bool FitsCp1252(std::string_view text) {
  std::string scratch;
  return AppendCp1252(Sanitize(text, true), &scratch);
}

// Whether every text the grid brings is in CP1252 (the renderer's own wording is).
bool GridFitsCp1252(const SynthesisGrid& grid) {
  for (const std::string* s : {&grid.certification_title, &grid.certification_kind, &grid.certification_code,
                               &grid.candidate_name, &grid.date, &grid.proposal, &grid.comment,
                               &grid.revocation_reason}) {
    if (!FitsCp1252(*s)) return false;
  }
  for (const SynthesisGrid::Bloc& bloc : grid.blocs) {
    if (!FitsCp1252(bloc.code) || !FitsCp1252(bloc.label) || !FitsCp1252(bloc.comment)) return false;
  }
  for (const SynthesisGrid::Member& member : grid.members) {
    if (!FitsCp1252(member.name) || !FitsCp1252(member.function) || !FitsCp1252(member.college) ||
        !FitsCp1252(member.signed_at)) {
      return false;
    }
  }
  return true;
}

// --- Text model ----------------------------------------------------------------------------------
struct Span {
  std::string text;
  bool bold = false;
};
struct Run {
  std::string text;
  bool bold = false;
  double x = 0;  // offset from the start of the line
};
struct Line {
  std::vector<Run> runs;
  double width = 0;
};
enum class Align { kLeft, kCenter, kRight };

struct HpdfErrors {
  int count = 0;
  HPDF_STATUS first = HPDF_OK;
  HPDF_STATUS detail = 0;
};

void OnHpdfError(HPDF_STATUS error_no, HPDF_STATUS detail_no, void* user_data) {
  auto* errors = static_cast<HpdfErrors*>(user_data);
  if (errors->count++ == 0) {
    errors->first = error_no;
    errors->detail = detail_no;
  }
}

struct DocDeleter {
  void operator()(HPDF_Doc doc) const { HPDF_Free(doc); }
};
using DocPtr = std::unique_ptr<std::remove_pointer_t<HPDF_Doc>, DocDeleter>;

std::string FindFont() {
  for (const char* dir : kFontDirs) {
    std::string path = std::string(dir) + kFontFile;
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return path;
  }
  return "";
}

struct Column {
  double width;
  Align align;
};
using Cell = std::vector<Line>;
using Row = std::vector<Cell>;

enum class FontSet {
  kStandard,  // Helvetica / Helvetica-Bold, WinAnsiEncoding: CP1252 text only
  kEmbedded,  // DejaVu Sans, UTF-8: any BMP text
};

class Renderer {
 public:
  Renderer(const SynthesisGrid& grid, FontSet fonts) : grid_(grid), standard_(fonts == FontSet::kStandard) {}

  absl::StatusOr<std::string> Render();
  // Standard fonts only: whether some text had no CP1252 form (and was drawn with '?').
  bool LostText() const { return lost_text_; }

 private:
  absl::Status HpdfStatus(const char* where) const {
    char buf[160];
    std::snprintf(buf, sizeof buf, "synthesis grid: libharu error 0x%04X (detail %u) during %s",
                  static_cast<unsigned>(errors_.first), static_cast<unsigned>(errors_.detail), where);
    return absl::InternalError(buf);
  }
  bool Failed() const { return errors_.count > 0; }

  // The text (UTF-8) in the encoding of the fonts: itself with the embedded font, otherwise its
  // CP1252 form in a buffer that the next call overwrites.
  const std::string& Encoded(const std::string& text) const {
    if (!standard_) return text;
    encoded_.clear();
    if (!AppendCp1252(text, &encoded_)) lost_text_ = true;
    return encoded_;
  }
  HPDF_Font FontFor(bool bold) const { return bold && bold_font_ != nullptr ? bold_font_ : font_; }

  double Width(std::string_view text, double size, bool bold = false) const {
    if (text.empty()) return 0;
    if (standard_) {
      encoded_.clear();
      if (!AppendCp1252(text, &encoded_)) lost_text_ = true;
      text = encoded_;
    }
    const HPDF_TextWidth tw = HPDF_Font_TextWidth(FontFor(bold), reinterpret_cast<const HPDF_BYTE*>(text.data()),
                                                  static_cast<HPDF_UINT>(text.size()));
    return tw.width * size / 1000.0;
  }
  static double LineHeight(double size) { return size * kLineFactor; }

  std::vector<Line> Wrap(const std::vector<Span>& spans, double size, double max_width) const;
  std::vector<Line> Wrap(const std::string& text, double size, double max_width, bool bold = false) const {
    return Wrap(std::vector<Span>{{text, bold}}, size, max_width);
  }

  bool NewPage();
  void EnsureSpace(double height) {
    if (y_ - height < kBottom) NewPage();
  }
  void DrawLine(const Line& line, double x, double baseline, double size, double box_width, Align align);
  void DrawLines(const std::vector<Line>& lines, double size, Align align);
  void DrawHeading(const std::string& text);
  // A table: header (may be empty: no header row) repeated on each page the table spans.
  void DrawTable(const std::vector<Column>& columns, const Row& header, const std::vector<Row>& rows);
  double RowHeight(size_t lines) const { return 2 * kCellPadY + static_cast<double>(lines) * LineHeight(kCellSize); }
  void DrawRowSegment(const std::vector<Column>& columns, const Row& row, size_t first, size_t last, bool shaded);
  void DrawFooters();

  const SynthesisGrid& grid_;
  const bool standard_;  // FontSet::kStandard: real bold font, CP1252 text
  HpdfErrors errors_;
  HPDF_Doc pdf_ = nullptr;
  HPDF_Font font_ = nullptr;
  HPDF_Font bold_font_ = nullptr;  // standard fonts only; the embedded font strokes its "bold"
  mutable std::string encoded_;
  mutable bool lost_text_ = false;
  HPDF_Page page_ = nullptr;
  std::vector<HPDF_Page> pages_;
  double y_ = kTop;
  // The header of the table being drawn, repeated after a page break inside it.
  const std::vector<Column>* table_columns_ = nullptr;
  const Row* table_header_ = nullptr;
};

std::vector<Line> Renderer::Wrap(const std::vector<Span>& spans, double size, double max_width) const {
  // The space before a word ends the line's last run: it has that run's font.
  const double space_regular = Width(" ", size, false);
  const double space_bold = Width(" ", size, true);
  auto space_after = [&](const Line& line) { return line.runs.back().bold ? space_bold : space_regular; };
  std::vector<Line> lines(1);
  auto append_word = [&](std::string_view word, double w, bool bold) {
    Line& line = lines.back();
    if (line.runs.empty()) {
      line.runs.push_back(Run{std::string(word), bold, 0});
      line.width = w;
      return;
    }
    const double space = space_after(line);
    Run& last = line.runs.back();
    if (last.bold == bold) {
      last.text += ' ';
      last.text.append(word.data(), word.size());
    } else {
      last.text += ' ';
      line.runs.push_back(Run{std::string(word), bold, line.width + space});
    }
    line.width += space + w;
  };
  for (const Span& span : spans) {
    const std::string_view text = span.text;
    size_t pos = 0;
    while (pos <= text.size()) {
      // One token: a word (up to a space or newline).
      size_t end = text.find_first_of(" \n", pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view word = text.substr(pos, end - pos);
      if (!word.empty()) {
        double w = Width(word, size, span.bold);
        Line& line = lines.back();
        const double needed = line.runs.empty() ? w : line.width + space_after(line) + w;
        if (needed <= max_width) {
          append_word(word, w, span.bold);
        } else {
          if (!line.runs.empty()) lines.emplace_back();
          // A word wider than the column is cut between characters.
          while (w > max_width) {
            size_t cut = 0;
            double cut_width = 0;
            while (cut < word.size()) {
              const size_t next = cut + Utf8Length(static_cast<unsigned char>(word[cut]));
              const double nw = Width(word.substr(0, next), size, span.bold);
              if (nw > max_width && cut > 0) break;
              cut = next;
              cut_width = nw;
            }
            append_word(word.substr(0, cut), cut_width, span.bold);
            word = word.substr(cut);
            if (word.empty()) break;
            lines.emplace_back();
            w = Width(word, size, span.bold);
          }
          if (!word.empty()) append_word(word, w, span.bold);
        }
      }
      if (end == text.size()) break;
      if (text[end] == '\n') lines.emplace_back();
      pos = end + 1;
    }
  }
  // Trailing empty lines (e.g. a text ending with a newline) take no room.
  while (lines.size() > 1 && lines.back().runs.empty()) lines.pop_back();
  if (lines.size() == 1 && lines.back().runs.empty()) lines.clear();
  return lines;
}

bool Renderer::NewPage() {
  HPDF_Page page = HPDF_AddPage(pdf_);
  if (page == nullptr) {
    if (errors_.count == 0) ++errors_.count;
    return false;
  }
  page_ = page;
  pages_.push_back(page);
  HPDF_Page_SetSize(page_, HPDF_PAGE_SIZE_A4, HPDF_PAGE_PORTRAIT);
  HPDF_Page_SetLineWidth(page_, kBorderWidth);
  y_ = kTop;
  if (table_columns_ != nullptr && table_header_ != nullptr && !table_header_->empty()) {
    size_t lines = 1;
    for (const Cell& cell : *table_header_) lines = std::max(lines, cell.size());
    DrawRowSegment(*table_columns_, *table_header_, 0, lines, true);
    y_ -= RowHeight(lines);
  }
  return true;
}

void Renderer::DrawLine(const Line& line, double x, double baseline, double size, double box_width, Align align) {
  double x0 = x;
  if (align == Align::kCenter) x0 = x + (box_width - line.width) / 2;
  if (align == Align::kRight) x0 = x + box_width - line.width;
  for (const Run& run : line.runs) {
    if (run.text.empty()) continue;
    if (standard_) {
      const HPDF_Font font = FontFor(run.bold);
      if (HPDF_Page_GetCurrentFont(page_) != font) HPDF_Page_SetFontAndSize(page_, font, static_cast<HPDF_REAL>(size));
    } else {
      HPDF_Page_SetTextRenderingMode(page_, run.bold ? HPDF_FILL_THEN_STROKE : HPDF_FILL);
    }
    HPDF_Page_TextOut(page_, static_cast<HPDF_REAL>(x0 + run.x), static_cast<HPDF_REAL>(baseline),
                      Encoded(run.text).c_str());
  }
}

// Paragraph lines at the cursor, across pages when needed.
void Renderer::DrawLines(const std::vector<Line>& lines, double size, Align align) {
  const double lh = LineHeight(size);
  for (const Line& line : lines) {
    EnsureSpace(lh);
    if (page_ == nullptr) return;
    HPDF_Page_BeginText(page_);
    HPDF_Page_SetFontAndSize(page_, font_, static_cast<HPDF_REAL>(size));
    if (!standard_) HPDF_Page_SetLineWidth(page_, static_cast<HPDF_REAL>(kBoldStroke * size));
    DrawLine(line, kMarginLeft, y_ - size * kAscentFactor, size, kContentWidth, align);
    HPDF_Page_EndText(page_);
    if (!standard_) HPDF_Page_SetLineWidth(page_, kBorderWidth);
    y_ -= lh;
  }
}

void Renderer::DrawHeading(const std::string& text) {
  DrawLines(Wrap(text, kHeadingSize, kContentWidth, true), kHeadingSize, Align::kLeft);
  y_ -= 3;
}

void Renderer::DrawRowSegment(const std::vector<Column>& columns, const Row& row, size_t first, size_t last,
                              bool shaded) {
  const double height = RowHeight(last - first);
  const double top = y_;
  // Borders (and the header's background) first, then the text.
  double x = kMarginLeft;
  if (shaded) HPDF_Page_SetGrayFill(page_, kHeaderGray);
  for (const Column& column : columns) {
    HPDF_Page_Rectangle(page_, static_cast<HPDF_REAL>(x), static_cast<HPDF_REAL>(top - height),
                        static_cast<HPDF_REAL>(column.width), static_cast<HPDF_REAL>(height));
    x += column.width;
  }
  if (shaded) {
    HPDF_Page_FillStroke(page_);
    HPDF_Page_SetGrayFill(page_, 0);
  } else {
    HPDF_Page_Stroke(page_);
  }
  HPDF_Page_BeginText(page_);
  HPDF_Page_SetFontAndSize(page_, font_, static_cast<HPDF_REAL>(kCellSize));
  if (!standard_) HPDF_Page_SetLineWidth(page_, static_cast<HPDF_REAL>(kBoldStroke * kCellSize));
  const double lh = LineHeight(kCellSize);
  x = kMarginLeft;
  for (size_t c = 0; c < columns.size(); ++c) {
    static const Cell kEmpty;
    const Cell& cell = c < row.size() ? row[c] : kEmpty;
    for (size_t i = first; i < last && i < cell.size(); ++i) {
      const double baseline = top - kCellPadY - kCellSize * kAscentFactor - static_cast<double>(i - first) * lh;
      DrawLine(cell[i], x + kCellPadX, baseline, kCellSize, columns[c].width - 2 * kCellPadX, columns[c].align);
    }
    x += columns[c].width;
  }
  HPDF_Page_EndText(page_);
  if (!standard_) HPDF_Page_SetLineWidth(page_, kBorderWidth);
}

void Renderer::DrawTable(const std::vector<Column>& columns, const Row& header, const std::vector<Row>& rows) {
  size_t header_lines = 0;
  for (const Cell& cell : header) header_lines = std::max(header_lines, cell.size());
  if (!header.empty()) header_lines = std::max<size_t>(header_lines, 1);
  const double header_height = header.empty() ? 0 : RowHeight(header_lines);
  const double lh = LineHeight(kCellSize);

  // The header together with (the start of) the first row.
  size_t first_lines = 1;
  if (!rows.empty()) {
    for (const Cell& cell : rows.front()) first_lines = std::max(first_lines, cell.size());
  }
  EnsureSpace(header_height + RowHeight(std::min<size_t>(first_lines, 3)));
  if (page_ == nullptr) return;
  table_columns_ = &columns;
  table_header_ = &header;
  struct Reset {
    Renderer* r;
    ~Reset() {
      r->table_columns_ = nullptr;
      r->table_header_ = nullptr;
    }
  } reset{this};
  if (!header.empty()) {
    DrawRowSegment(columns, header, 0, header_lines, true);
    y_ -= header_height;
  }
  const double page_room = kTop - kBottom - header_height;  // room for rows on a fresh page
  for (const Row& row : rows) {
    size_t lines = 1;
    for (const Cell& cell : row) lines = std::max(lines, cell.size());
    size_t first = 0;
    while (first < lines && page_ != nullptr) {
      const size_t remaining = lines - first;
      const double room = y_ - kBottom;
      // On a continuation page, an exhausted first cell recalls the row: "BC3 (suite)".
      Row continued;
      const Row* segment = &row;
      if (first > 0 && !row.empty() && row[0].size() <= first && !row[0].empty() && !row[0][0].runs.empty()) {
        std::string label = row[0][0].runs.front().text;
        while (!label.empty() && (label.back() == ' ' || label.back() == ':')) label.pop_back();
        continued = row;
        continued[0].resize(first);
        for (Line& line : Wrap(label + " (suite)", kCellSize, columns[0].width - 2 * kCellPadX, true)) {
          continued[0].push_back(std::move(line));
        }
        segment = &continued;
      }
      if (RowHeight(remaining) <= room) {
        DrawRowSegment(columns, *segment, first, lines, false);
        y_ -= RowHeight(remaining);
        break;
      }
      // A row that fits on a fresh page moves there whole; a longer one is split line by line,
      // leaving no segment of fewer than 2 lines at the bottom of a page.
      const auto fit = static_cast<size_t>(std::max(0.0, (room - 2 * kCellPadY) / lh));
      if ((first == 0 && RowHeight(remaining) <= page_room) || fit < std::min<size_t>(2, remaining)) {
        if (!NewPage()) return;
        continue;
      }
      DrawRowSegment(columns, *segment, first, first + fit, false);
      first += fit;
      if (!NewPage()) return;
    }
  }
}

void Renderer::DrawFooters() {
  const size_t n = pages_.size();
  std::string left = Sanitize(std::string("Grille de synthèse VAE — ") + grid_.candidate_name +
                                  (grid_.date.empty() ? "" : " — " + grid_.date),
                              false);
  // Keep the footer on one line: cut the left part at a character boundary.
  const double max_left = kContentWidth * 0.75;
  if (Width(left, kFooterSize) > max_left) {
    size_t cut = 0;
    while (cut < left.size()) {
      const size_t next = cut + Utf8Length(static_cast<unsigned char>(left[cut]));
      if (Width(std::string(left, 0, next) + "…", kFooterSize) > max_left) break;
      cut = next;
    }
    left = left.substr(0, cut) + "…";
  }
  for (size_t i = 0; i < n; ++i) {
    HPDF_Page page = pages_[i];
    char right[64];
    std::snprintf(right, sizeof right, "Page %zu / %zu", i + 1, n);
    const double baseline = kMarginBottom - 24;
    HPDF_Page_BeginText(page);
    HPDF_Page_SetFontAndSize(page, font_, static_cast<HPDF_REAL>(kFooterSize));
    HPDF_Page_SetGrayFill(page, 0.35);
    HPDF_Page_TextOut(page, static_cast<HPDF_REAL>(kMarginLeft), static_cast<HPDF_REAL>(baseline),
                      Encoded(left).c_str());
    HPDF_Page_TextOut(page, static_cast<HPDF_REAL>(kPageWidth - kMarginRight - Width(right, kFooterSize)),
                      static_cast<HPDF_REAL>(baseline), right);
    HPDF_Page_EndText(page);
  }
}

absl::StatusOr<std::string> Renderer::Render() {
  std::string font_path;
  if (!standard_) {
    font_path = FindFont();
    if (font_path.empty()) {
      return absl::InternalError(std::string("synthesis grid: font ") + kFontFile + " not found under " +
                                 kFontDirs[0] + " (package fonts-dejavu-core)");
    }
  }
  DocPtr doc(HPDF_New(&OnHpdfError, &errors_));
  if (doc == nullptr) return absl::InternalError("synthesis grid: libharu could not create a document");
  pdf_ = doc.get();

  // Page content is compressed with either font set (with the standard fonts there is nothing else).
  HPDF_SetCompressionMode(pdf_, HPDF_COMP_ALL);
  if (standard_) {
    // The current encoder also encodes the document info strings (written as UTF-16 by libharu).
    HPDF_SetCurrentEncoder(pdf_, "WinAnsiEncoding");
    font_ = HPDF_GetFont(pdf_, "Helvetica", "WinAnsiEncoding");
    bold_font_ = HPDF_GetFont(pdf_, "Helvetica-Bold", "WinAnsiEncoding");
    if (font_ == nullptr || bold_font_ == nullptr || Failed()) return HpdfStatus("font loading");
  } else {
    HPDF_UseUTFEncodings(pdf_);
    HPDF_SetCurrentEncoder(pdf_, "UTF-8");
    const char* font_name = HPDF_LoadTTFontFromFile(pdf_, font_path.c_str(), HPDF_TRUE);
    if (font_name == nullptr || Failed()) return HpdfStatus("font loading");
    font_ = HPDF_GetFont(pdf_, font_name, "UTF-8");
    if (font_ == nullptr || Failed()) return HpdfStatus("font loading");
  }

  const std::string candidate = Sanitize(grid_.candidate_name, false);
  const std::string title = std::string(kTitleLine1) + " — " + kTitleLine2 + (candidate.empty() ? "" : " — " + candidate);
  HPDF_SetInfoAttr(pdf_, HPDF_INFO_TITLE, Encoded(title).c_str());
  HPDF_SetInfoAttr(pdf_, HPDF_INFO_CREATOR, "Parcours");
  const std::string subject = "Grille de synthèse des résultats et appréciations";
  HPDF_SetInfoAttr(pdf_, HPDF_INFO_SUBJECT, Encoded(subject).c_str());

  if (!NewPage()) return HpdfStatus("page creation");

  // Title and certification line.
  DrawLines(Wrap(kTitleLine1, kTitleSize, kContentWidth, true), kTitleSize, Align::kCenter);
  DrawLines(Wrap(kTitleLine2, kTitleSize, kContentWidth, true), kTitleSize, Align::kCenter);
  y_ -= 4;
  std::string certification = Sanitize(grid_.certification_kind, false);
  const std::string cert_title = Sanitize(grid_.certification_title, false);
  if (!cert_title.empty()) certification += (certification.empty() ? "" : " ") + cert_title;
  if (!certification.empty()) {
    DrawLines(Wrap(certification, kSubtitleSize, kContentWidth, true), kSubtitleSize, Align::kCenter);
  }
  y_ -= 12;

  // A revoked round is history, not a result: said before anything else, with its reason.
  if (grid_.revoked) {
    DrawLines(Wrap("RÉVOQUÉ — cette délibération a été révoquée et ne vaut pas résultat", kSubtitleSize,
                   kContentWidth, true),
              kSubtitleSize, Align::kCenter);
    const std::string reason = Sanitize(grid_.revocation_reason, true);
    DrawLines(Wrap({{"Motif de la révocation :", true}, {reason.empty() ? "non précisé" : reason, false}}, kBodySize,
                   kContentWidth),
              kBodySize, Align::kCenter);
    y_ -= 12;
  }

  // Identity block.
  {
    const std::vector<Column> columns = {{kContentWidth * 0.3, Align::kLeft}, {kContentWidth * 0.7, Align::kLeft}};
    const double w0 = columns[0].width - 2 * kCellPadX;
    const double w1 = columns[1].width - 2 * kCellPadX;
    std::vector<Row> rows;
    auto add = [&](const char* label, const std::string& value) {
      rows.push_back(Row{Wrap(label, kCellSize, w0, true), Wrap(Sanitize(value, false), kCellSize, w1)});
    };
    add("Candidat", grid_.candidate_name);
    add("Date de délibération", grid_.date);
    add("Certification", grid_.certification_code);
    DrawTable(columns, Row{}, rows);
  }
  y_ -= 14;

  // Blocs table.
  {
    EnsureSpace(LineHeight(kHeadingSize) + 3 + RowHeight(3) * 2);
    DrawHeading("Résultats par bloc de compétences");
    const std::vector<Column> columns = {{kContentWidth * 0.40, Align::kLeft},
                                         {kContentWidth * 0.16, Align::kCenter},
                                         {kContentWidth * 0.12, Align::kCenter},
                                         {kContentWidth * 0.32, Align::kLeft}};
    auto inner = [&](size_t c) { return columns[c].width - 2 * kCellPadX; };
    const Row header = {Wrap("Blocs de compétences", kCellSize, inner(0), true),
                        Wrap("L’appréciation de chaque bloc", kCellSize, inner(1), true),
                        Wrap("Résultat", kCellSize, inner(2), true),
                        Wrap("Commentaire du jury", kCellSize, inner(3), true)};
    std::vector<Row> rows;
    rows.reserve(grid_.blocs.size());
    for (const SynthesisGrid::Bloc& bloc : grid_.blocs) {
      const std::string code = Sanitize(bloc.code, false);
      const std::string label = Sanitize(bloc.label, false);
      std::vector<Span> name;
      if (!code.empty()) name.push_back({label.empty() ? code : code + " :", true});
      if (!label.empty()) name.push_back({label, false});
      const bool evaluated = bloc.held || bloc.appreciated;
      const std::string appreciation = bloc.held        ? "acquis antérieurement"
                                       : !evaluated     ? "—"
                                                        : std::to_string(bloc.common_percent) + " %";
      const bool acquired = bloc.held || bloc.acquired;
      const char* result = !evaluated ? "non évalué" : acquired ? "Acquis" : "Non acquis";
      rows.push_back(Row{Wrap(name, kCellSize, inner(0)), Wrap(appreciation, kCellSize, inner(1)),
                         Wrap(result, kCellSize, inner(2), true),
                         Wrap(Sanitize(bloc.comment, true), kCellSize, inner(3))});
    }
    DrawTable(columns, header, rows);
  }
  y_ -= 14;

  // Proposal and comment.
  {
    const double lh = LineHeight(kBodySize);
    std::vector<Line> proposal =
        Wrap({{grid_.revoked ? "Proposition d’attribution (RÉVOQUÉE) :" : "Proposition d’attribution :", true},
              {Sanitize(grid_.proposal, false), false}},
             kBodySize, kContentWidth);
    EnsureSpace(lh * static_cast<double>(std::min<size_t>(proposal.size(), 3)));
    DrawLines(proposal, kBodySize, Align::kLeft);
    const std::string comment = Sanitize(grid_.comment, true);
    if (!comment.empty()) {
      y_ -= 4;
      std::vector<Line> lines = Wrap({{"Commentaire du jury :", true}, {comment, false}}, kBodySize, kContentWidth);
      EnsureSpace(lh * static_cast<double>(std::min<size_t>(lines.size(), 3)));
      DrawLines(lines, kBodySize, Align::kLeft);
    }
  }
  y_ -= 16;

  // Members and signatures.
  {
    // The heading stays with the table's header and first row.
    EnsureSpace(LineHeight(kHeadingSize) + 3 + RowHeight(2) * 2);
    DrawHeading("Membres du jury");
    const std::vector<Column> columns = {{kContentWidth * 0.22, Align::kLeft},
                                         {kContentWidth * 0.22, Align::kLeft},
                                         {kContentWidth * 0.19, Align::kLeft},
                                         {kContentWidth * 0.12, Align::kLeft},
                                         {kContentWidth * 0.25, Align::kLeft}};
    auto inner = [&](size_t c) { return columns[c].width - 2 * kCellPadX; };
    const Row header = {Wrap("Nom", kCellSize, inner(0), true), Wrap("Fonction", kCellSize, inner(1), true),
                        Wrap("Collège", kCellSize, inner(2), true), Wrap("Qualité", kCellSize, inner(3), true),
                        Wrap("Signature", kCellSize, inner(4), true)};
    std::vector<Row> rows;
    rows.reserve(grid_.members.size());
    for (const SynthesisGrid::Member& member : grid_.members) {
      const std::string signed_at = Sanitize(member.signed_at, false);
      rows.push_back(Row{Wrap(Sanitize(member.name, false), kCellSize, inner(0)),
                         Wrap(Sanitize(member.function, false), kCellSize, inner(1)),
                         Wrap(Sanitize(member.college, false), kCellSize, inner(2)),
                         Wrap(member.president ? "Président" : "Membre", kCellSize, inner(3), member.president),
                         Wrap(signed_at.empty() ? "Non signé" : "Signé le " + signed_at, kCellSize, inner(4))});
    }
    DrawTable(columns, header, rows);
  }
  if (Failed() || page_ == nullptr) return HpdfStatus("drawing");

  DrawFooters();
  if (Failed()) return HpdfStatus("drawing");

  if (HPDF_SaveToStream(pdf_) != HPDF_OK || Failed()) return HpdfStatus("saving");
  const HPDF_UINT32 size = HPDF_GetStreamSize(pdf_);
  if (size == 0) return absl::InternalError("synthesis grid: libharu produced an empty document");
  std::string out(size, '\0');
  if (HPDF_ResetStream(pdf_) != HPDF_OK || Failed()) return HpdfStatus("reading the document");
  HPDF_UINT32 done = 0;
  while (done < size) {
    HPDF_UINT32 chunk = size - done;
    const HPDF_STATUS st = HPDF_ReadFromStream(pdf_, reinterpret_cast<HPDF_BYTE*>(&out[done]), &chunk);
    done += chunk;
    if (st != HPDF_OK || chunk == 0) break;
  }
  if (done != size) {
    if (Failed()) return HpdfStatus("reading the document");
    return absl::InternalError("synthesis grid: short read from libharu's stream");
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> RenderSynthesisGridPdf(const SynthesisGrid& grid) {
  if (GridFitsCp1252(grid)) {
    Renderer renderer(grid, FontSet::kStandard);
    absl::StatusOr<std::string> pdf = renderer.Render();
    // Some text without a CP1252 form would be a wording of the renderer's own outside CP1252:
    // never drawn as '?', the embedded font takes over.
    if (!renderer.LostText()) return pdf;
  }
  Renderer renderer(grid, FontSet::kEmbedded);
  return renderer.Render();
}

}  // namespace parcours::evaluation
