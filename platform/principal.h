// Who is calling. The gateway authenticates the caller and sets the `x-parcours-principal`
// metadata ("national", "region:<code>", "operator:<id>", "certifier:<id>", "jury-member:<id>");
// backends accept calls only from the gateway (mTLS in Kubernetes) and re-check scope with it.
// A caller's scope never comes from a request field.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"

namespace parcours {

inline constexpr char kPrincipalMetadata[] = "x-parcours-principal";

struct Principal {
  enum class Kind { kNational, kRegion, kOperator, kCertifier, kJuryMember };
  Kind kind;
  std::string id;  // empty for kNational

  bool Is(Kind k) const { return kind == k; }
  // "certifier:CPNE-IA"
  std::string ToString() const;
};

// Letters, digits, '-', '_' and '.', 1..128 characters: what an id of a principal may be.
bool ValidPrincipalId(std::string_view id);

// Parses "kind[:id]"; INVALID_ARGUMENT-free: a malformed value is UNAUTHENTICATED.
absl::StatusOr<Principal> ParsePrincipal(const std::string& value);
// The principal of a call; UNAUTHENTICATED when the metadata is missing or malformed.
absl::StatusOr<Principal> PrincipalOf(const grpc::ServerContextBase& context);

// PERMISSION_DENIED "only France compétences (national) may <what>" unless `p` is national.
absl::Status NationalOnly(const Principal& p, std::string_view what);

}  // namespace parcours
