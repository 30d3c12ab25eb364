// JSON logs on stdout, one object per line. No personal data and no tokens in logs: callers
// log resource names and codes, never request bodies.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "grpcpp/server_context.h"

namespace parcours::log {

using Field = std::pair<std::string_view, std::string>;

void Info(std::string_view msg, std::initializer_list<Field> fields = {});
void Warn(std::string_view msg, std::initializer_list<Field> fields = {});
void Error(std::string_view msg, std::initializer_list<Field> fields = {});

// W3C trace context: the trace id (32 hex) from a `traceparent` header value, "" if malformed.
std::string TraceIdFromTraceparent(std::string_view traceparent);

// Ids of the call being served on this thread (set by the server runner's interceptor), so a
// log line written deep in a handler carries them: {"trace_id":..., "request_id":...}.
struct CallIds {
  std::string trace_id;
  std::string request_id;  // x-request-id metadata, or generated
  std::string method;
};
const CallIds& CurrentCall();
void SetCurrentCall(CallIds ids);  // used by the interceptor
void ClearCurrentCall();

}  // namespace parcours::log
