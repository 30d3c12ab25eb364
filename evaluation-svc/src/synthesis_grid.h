// The "Grille de synthèse des résultats et appréciations — Jury d'évaluation (VAE)" of the seed,
// rendered as a PDF from a sealed deliberation.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace parcours::evaluation {

struct SynthesisGrid {
  std::string certification_title;  // "Technicien de maintenance du secteur alimentaire"
  std::string certification_kind;   // "CQP"
  std::string certification_code;   // "CQP-TMSA"
  std::string candidate_name;
  std::string date;                 // deliberation date, "12/06/2026"
  struct Bloc {
    std::string code;        // "BC1"
    std::string label;       // the bloc's short label (synthesis-grid wording)
    int common_percent = 0;  // ignored when held or not appreciated
    std::string comment;
    bool acquired = false;
    bool held = false;       // acquired earlier (ledger): not evaluated by this jury
    // False when the jury gave it no common appreciation (the candidate absent or excused):
    // printed "—" and "non évalué", never as a 0 % not acquired.
    bool appreciated = true;
  };
  std::vector<Bloc> blocs;
  std::string proposal;  // "Attribution partielle : BC1, BC2, BC4"
  std::string comment;
  // Set when the round was revoked: the grid is printed with a "RÉVOQUÉ" mention and this reason,
  // so it can never pass for a valid signed result.
  bool revoked = false;
  std::string revocation_reason;
  struct Member {
    std::string name;
    std::string function;
    std::string college;  // "Collège employeurs", ...
    bool president = false;
    std::string signed_at;  // "12/06/2026 17:42"
  };
  std::vector<Member> members;
};

// A PDF (A4). Text that fits Windows-1252 (all French) uses the standard Helvetica fonts, nothing
// embedded (~0.2 ms, ~3.5 KB); any other character switches the whole grid to an embedded DejaVu
// Sans font (~12 ms, ~97 KB) so nothing is lost. INTERNAL if rendering fails.
absl::StatusOr<std::string> RenderSynthesisGridPdf(const SynthesisGrid& grid);

}  // namespace parcours::evaluation
