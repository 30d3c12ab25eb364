// JSON logs on stdout, one object per line. No personal data and no tokens in logs: callers
// log resource names and codes, never request bodies.
#pragma once

#include <functional>
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

// The general form: string fields plus numeric ones written as JSON numbers (e.g. the access
// log's duration_ms). A field named like a standard key (trace_id, request_id, method) replaces
// the current call's value for that key; given empty, the key is left out.
enum class Level { kInfo, kWarn, kError };
using NumberField = std::pair<std::string_view, double>;
void Write(Level level, std::string_view msg, std::initializer_list<Field> fields,
           std::initializer_list<NumberField> numbers = {});

// Adds "service":name to every line (the server runner sets it from ServerOptions).
void SetServiceName(std::string name);

// Tests: every line (without its trailing newline) goes to `sink` instead of stdout; an empty
// function restores stdout.
void SetSinkForTesting(std::function<void(std::string_view)> sink);

// JSON string escaping as used for every line: quotes, backslash and control characters are
// escaped, valid UTF-8 passes through, invalid bytes become U+FFFD. Appends "..." to *out.
void AppendJsonString(std::string* out, std::string_view s);

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
