#include "platform/log.h"

#include <errno.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace parcours::log {
namespace {

struct State {
  std::mutex mu;  // one line at a time, and guards the fields below
  std::string service;
  std::function<void(std::string_view)> sink;
};

State& GetState() {
  static State* state = new State();  // never destroyed: logging may happen during exit
  return *state;
}

thread_local CallIds current_call;

const char* LevelName(Level level) {
  switch (level) {
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

// Length of the valid UTF-8 sequence starting at s[i], 0 if invalid (RFC 3629: no overlongs,
// no surrogates, nothing above U+10FFFF).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

void WriteAll(std::string_view line) {
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDOUT_FILENO, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // stdout closed or full: nothing sensible to do from a logger
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

bool HasField(std::initializer_list<Field> fields, std::string_view key) {
  for (const auto& f : fields) {
    if (f.first == key) return true;
  }
  return false;
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out->append("\\\"");
          break;
        case '\\':
          out->append("\\\\");
          break;
        case '\n':
          out->append("\\n");
          break;
        case '\r':
          out->append("\\r");
          break;
        case '\t':
          out->append("\\t");
          break;
        case '\b':
          out->append("\\b");
          break;
        case '\f':
          out->append("\\f");
          break;
        default:
          if (c < 0x20) {
            out->append("\\u00");
            out->push_back(kHex[c >> 4]);
            out->push_back(kHex[c & 0xF]);
          } else {
            out->push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out->append("\\ufffd");  // invalid byte: the line must stay valid JSON
      ++i;
    } else {
      out->append(s.data() + i, n);
      i += n;
    }
  }
  out->push_back('"');
}

void Write(Level level, std::string_view msg, std::initializer_list<Field> fields,
           std::initializer_list<NumberField> numbers) {
  State& state = GetState();
  std::string line;
  line.reserve(256);
  line.append("{\"ts\":\"");
  line.append(absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()));
  line.append("\",\"level\":\"");
  line.append(LevelName(level));
  line.push_back('"');
  {
    // The service name is set once at start-up; read it under the lock anyway.
    std::lock_guard<std::mutex> lock(state.mu);
    if (!state.service.empty()) {
      line.append(",\"service\":");
      AppendJsonString(&line, state.service);
    }
  }
  line.append(",\"msg\":");
  AppendJsonString(&line, msg);
  const CallIds& call = current_call;
  const auto add_call_field = [&](std::string_view key, const std::string& value) {
    if (value.empty() || HasField(fields, key)) return;
    line.append(",\"").append(key).append("\":");
    AppendJsonString(&line, value);
  };
  add_call_field("trace_id", call.trace_id);
  add_call_field("request_id", call.request_id);
  add_call_field("method", call.method);
  for (const auto& [key, value] : fields) {
    if (value.empty() && (key == "trace_id" || key == "request_id" || key == "method")) continue;
    line.push_back(',');
    AppendJsonString(&line, key);
    line.push_back(':');
    AppendJsonString(&line, value);
  }
  for (const auto& [key, value] : numbers) {
    line.push_back(',');
    AppendJsonString(&line, key);
    line.push_back(':');
    // JSON has no NaN/Inf.
    if (value != value || value > 1e300 || value < -1e300) {
      line.append("null");
    } else {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.3f", value);
      std::string_view v(buf);
      // Trim trailing zeros of the fraction: 12.500 -> 12.5, 3.000 -> 3.
      if (v.find('.') != std::string_view::npos) {
        while (!v.empty() && v.back() == '0') v.remove_suffix(1);
        if (!v.empty() && v.back() == '.') v.remove_suffix(1);
      }
      if (v == "-0") v = "0";
      line.append(v);
    }
  }
  line.push_back('}');

  std::lock_guard<std::mutex> lock(state.mu);
  if (state.sink) {
    state.sink(line);
  } else {
    line.push_back('\n');
    WriteAll(line);
  }
}

void Info(std::string_view msg, std::initializer_list<Field> fields) {
  Write(Level::kInfo, msg, fields);
}
void Warn(std::string_view msg, std::initializer_list<Field> fields) {
  Write(Level::kWarn, msg, fields);
}
void Error(std::string_view msg, std::initializer_list<Field> fields) {
  Write(Level::kError, msg, fields);
}

void SetServiceName(std::string name) {
  State& state = GetState();
  std::lock_guard<std::mutex> lock(state.mu);
  state.service = std::move(name);
}

void SetSinkForTesting(std::function<void(std::string_view)> sink) {
  State& state = GetState();
  std::lock_guard<std::mutex> lock(state.mu);
  state.sink = std::move(sink);
}

std::string TraceIdFromTraceparent(std::string_view tp) {
  // version "-" trace-id "-" parent-id "-" trace-flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55.
  constexpr size_t kLen = 55;
  if (tp.size() < kLen) return "";
  if (tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return "";
  const std::string_view version = tp.substr(0, 2);
  const std::string_view trace_id = tp.substr(3, 32);
  const std::string_view parent_id = tp.substr(36, 16);
  const std::string_view flags = tp.substr(53, 2);
  if (!IsLowerHex(version) || version == "ff") return "";
  // Version 00 has exactly these fields; a later version may append "-..." fields.
  if (version == "00" ? tp.size() != kLen : (tp.size() > kLen && tp[kLen] != '-')) return "";
  if (!IsLowerHex(trace_id) || AllZero(trace_id)) return "";
  if (!IsLowerHex(parent_id) || AllZero(parent_id)) return "";
  if (!IsLowerHex(flags)) return "";
  return std::string(trace_id);
}

const CallIds& CurrentCall() { return current_call; }

void SetCurrentCall(CallIds ids) { current_call = std::move(ids); }

void ClearCurrentCall() {
  current_call.trace_id.clear();
  current_call.request_id.clear();
  current_call.method.clear();
}

}  // namespace parcours::log
