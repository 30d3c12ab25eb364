#include "platform/principal.h"

#include "absl/strings/str_cat.h"

namespace parcours {
namespace {

struct KindName {
  Principal::Kind kind;
  const char* name;
};
constexpr KindName kKinds[] = {{Principal::Kind::kNational, "national"},
                               {Principal::Kind::kRegion, "region"},
                               {Principal::Kind::kOperator, "operator"},
                               {Principal::Kind::kCertifier, "certifier"},
                               {Principal::Kind::kJuryMember, "jury-member"}};

}  // namespace

bool ValidPrincipalId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string Principal::ToString() const {
  for (const KindName& k : kKinds) {
    if (k.kind == kind) return id.empty() ? k.name : absl::StrCat(k.name, ":", id);
  }
  return "unknown";
}

absl::StatusOr<Principal> ParsePrincipal(const std::string& value) {
  const size_t colon = value.find(':');
  const std::string kind = value.substr(0, colon);
  const std::string id = colon == std::string::npos ? "" : value.substr(colon + 1);
  for (const KindName& k : kKinds) {
    if (kind != k.name) continue;
    if (k.kind == Principal::Kind::kNational) {
      if (colon != std::string::npos) break;
      return Principal{k.kind, ""};
    }
    if (!ValidPrincipalId(id)) break;
    return Principal{k.kind, id};
  }
  return absl::UnauthenticatedError("the call carries no valid principal");
}

absl::StatusOr<Principal> PrincipalOf(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kPrincipalMetadata);
  if (it == metadata.end()) return absl::UnauthenticatedError("the call carries no principal");
  return ParsePrincipal(std::string(it->second.data(), it->second.size()));
}

absl::Status NationalOnly(const Principal& p, std::string_view what) {
  if (p.Is(Principal::Kind::kNational)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("only France compétences (national) may ", absl::string_view(what.data(), what.size())));
}

}  // namespace parcours
