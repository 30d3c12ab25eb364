// A client context of a test calling a backend directly as France compétences: the
// `x-parcours-principal: national` the gateway would forward (referential-svc's writes need it).
#pragma once

#include "grpcpp/client_context.h"
#include "platform/principal.h"

namespace parcours::testing {

class NationalContext : public grpc::ClientContext {
 public:
  NationalContext() { AddMetadata(kPrincipalMetadata, "national"); }
};

}  // namespace parcours::testing
