// parcoursctl: the command line for integrators and operations.
//
// A small grpcurl replacement (grpcurl is not packaged in Debian) that knows every service compiled
// into the binary through protobuf's generated descriptor pool: it lists services, describes types
// and calls any method with JSON in and JSON out, decoding google.rpc.Status error details.
// See kUsage below for the full documentation.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/descriptor_database.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/status.h"
#include "openssl/bio.h"
#include "openssl/bn.h"
#include "openssl/core_names.h"
#include "openssl/ec.h"
#include "openssl/evp.h"
#include "openssl/pem.h"
#include "openssl/rand.h"

namespace {

namespace pb = google::protobuf;

constexpr int kExitOk = 0;
constexpr int kExitRpcError = 1;
constexpr int kExitUsage = 2;

constexpr char kDefaultAddr[] = "127.0.0.1:8080";
constexpr char kAddrEnv[] = "PARCOURS_ADDR";

constexpr char kUsage[] = R"(parcoursctl - call Parcours gRPC services with JSON.

Usage:
  parcoursctl list [SERVICE]
  parcoursctl describe NAME
  parcoursctl call [--addr HOST:PORT] [--timeout DURATION] [-H 'key: value']... [-v]
                   [--emit-defaults] SERVICE/METHOD [JSON | @FILE | -]
  parcoursctl token --key FILE --principal PRINCIPAL [--kid KID] [--subject S] [--issuer I]
                    [--audience A] [--ttl DURATION]
  parcoursctl help | --help | -h

Commands:
  list [SERVICE]  Print every service compiled into parcoursctl (packages parcours.*; google.* is
                  skipped) with one line per method:
                    parcours.bench.v1.BenchService/Echo (EchoRequest) returns (EchoResponse)
                  Streaming sides are marked "stream". With SERVICE, print only that service.
  describe NAME   Print the definition of a message, enum or service (full or unambiguous short
                  name, e.g. parcours.bench.v1.EchoRequest or EchoRequest), or of a method
                  (SERVICE/METHOD).
  call            Call SERVICE/METHOD. SERVICE is the full name (parcours.bench.v1.BenchService)
                  or, when unambiguous, the short one (BenchService); "/pkg.Service/Method" and
                  "Service.Method" are accepted too.
                  The request is JSON (proto3 JSON mapping, camelCase or original field names):
                    'JSON'  inline; empty or omitted means {}
                    @FILE   read from FILE
                    -       read from stdin
                  For client-streaming and bidi methods the input holds any number of JSON objects
                  one after the other (typically one per line, NDJSON); with no argument they are
                  read from stdin. Every message is validated before anything is sent.
                  Each response is printed to stdout as pretty JSON (2-space indent, UTF-8 as is,
                  default proto3 JSON: fields at their default value are omitted), one document per
                  message as it arrives for server-streaming methods.
                  On error, stderr gets
                    ERROR: <CODE_NAME> (<code>): <message>
                  followed by each google.rpc.Status detail (grpc-status-details-bin) as JSON,
                  e.g. google.rpc.BadRequest, PreconditionFailure, ResourceInfo, RetryInfo.
  token           Print a signed JWT for development and tests, to send as
                  -H 'authorization: Bearer TOKEN'. The key is a PEM private key: EC P-256 signs
                  ES256, RSA (2048 bits or more) signs RS256 (scripts/dev-keys.sh makes one).
                  Claims: iss, aud, sub, iat, nbf (now), exp (now + ttl), jti (random) and
                  parcours_principal. The gateway must know the public key under the same kid
                  and expect the same issuer and audience (auth.jwt_issuer, auth.jwt_audience).

Options (call):
  --addr HOST:PORT       Server address, plaintext. Default: $PARCOURS_ADDR, else 127.0.0.1:8080.
                         Any gRPC target works (dns:///host:port, unix:/path).
  --timeout DURATION     Deadline of the call: 10s (default), 500ms, 2m, 1.5 (seconds);
                         0 means no deadline (long server streams).
  -H, --header 'K: V'    Add request metadata; repeatable, e.g. -H 'authorization: Bearer TOKEN'.
                         Keys are lower-cased; values of keys ending in -bin are base64.
  -v, --verbose          Print request and response metadata (headers, trailers) to stderr.
  --emit-defaults        Also print fields that hold their default value.

Options (token):
  --key FILE             PEM private key (PKCS#8 or traditional), required.
  --principal P          The caller: national, region:<code>, operator:<id>, certifier:<id>,
                         jury-member:<id>. Required.
  --kid KID              Key id in the token header. Default: 0 (the first key of a PEM keys
                         file without "# kid:" lines).
  --subject S            sub claim. Default: the principal.
  --issuer I             iss claim. Default: parcours-dev.
  --audience A           aud claim. Default: parcours-gateway.
  --ttl DURATION         Lifetime: 1h (default), 15m, 24h.

Options (all commands):
  --protoset FILE        Also load the services and types of a FileDescriptorSet (protoc
                         --descriptor_set_out=FILE --include_imports); repeatable. Files already
                         compiled into parcoursctl are taken from the binary.
  -h, --help             Print this help.

Exit status:
  0  success
  1  the RPC failed (the server or the transport returned an error status)
  2  usage error: unknown command, option, service or method; unreadable or invalid JSON
     (nothing is sent)

Examples:
  parcoursctl list
  parcoursctl describe parcours.referential.v1.Version
  parcoursctl call ReferentialService/GetVersion '{"name": "certifications/RNCP1/versions/1"}'
  PARCOURS_ADDR=referential:8080 parcoursctl call -H 'authorization: Bearer X' \
      parcours.bench.v1.BenchService/Echo @request.json
  parcoursctl token --key .parcours/keys/jwt-dev.key --kid jwt-dev --principal operator:OP-1
)";

// ----------------------------------------------------------------------------------------------
// Small helpers.

void PrintUsageError(const std::string& message) {
  std::cerr << "parcoursctl: " << message << "\n"
            << "Run 'parcoursctl --help' for usage.\n";
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN_CODE";
  }
}

bool ReadWholeFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

std::string ReadStdin() {
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

// Re-indents the compact output of protobuf's JSON printer with 2 spaces (its own pretty mode
// indents by 1) and undoes the escapes it applies for HTML safety (<, >, &, ') so that the
// terminal shows text as written. Every backslash in JSON starts an escape sequence, so strings
// are scanned escape by escape and an escaped backslash is never mistaken for the start of one.
std::string PrettyJson(const std::string& compact) {
  std::string out;
  out.reserve(compact.size() * 2);
  int indent = 0;
  auto newline = [&] {
    out.push_back('\n');
    out.append(2 * indent, ' ');
  };
  const size_t n = compact.size();
  for (size_t i = 0; i < n; ++i) {
    char c = compact[i];
    if (c == '"') {
      out.push_back('"');
      for (++i; i < n && compact[i] != '"'; ++i) {
        if (compact[i] != '\\' || i + 1 >= n) {
          out.push_back(compact[i]);
          continue;
        }
        if (compact[i + 1] == 'u' && i + 6 <= n) {
          absl::string_view hex(compact.data() + i + 2, 4);
          char plain = 0;
          if (hex == "003c" || hex == "003C") plain = '<';
          if (hex == "003e" || hex == "003E") plain = '>';
          if (hex == "0026") plain = '&';
          if (hex == "0027") plain = '\'';
          if (plain != 0) {
            out.push_back(plain);
            i += 5;
            continue;
          }
        }
        out.push_back(compact[i]);
        out.push_back(compact[++i]);
      }
      out.push_back('"');
    } else if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      size_t j = i + 1;
      while (j < n && absl::ascii_isspace(static_cast<unsigned char>(compact[j]))) ++j;
      out.push_back(c);
      if (j < n && compact[j] == close) {
        out.push_back(close);
        i = j;
      } else {
        ++indent;
        newline();
      }
    } else if (c == '}' || c == ']') {
      --indent;
      newline();
      out.push_back(c);
    } else if (c == ',') {
      out.push_back(',');
      newline();
    } else if (c == ':') {
      out.append(": ");
    } else if (!absl::ascii_isspace(static_cast<unsigned char>(c))) {
      out.push_back(c);
    }
  }
  out.push_back('\n');
  return out;
}

bool ToJson(const pb::Message& message, bool emit_defaults, std::string* out, std::string* error) {
  pb::util::JsonPrintOptions options;
  options.add_whitespace = false;  // PrettyJson indents
  options.always_print_primitive_fields = emit_defaults;
  options.preserve_proto_field_names = false;
  std::string json;
  auto status = pb::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    *error = std::string(status.message());
    return false;
  }
  *out = PrettyJson(json);
  return true;
}

// Splits a text made of JSON objects written one after the other (NDJSON or pretty-printed) into
// one string per object. Only the object boundaries are found here; the content is validated by
// the protobuf JSON parser.
bool SplitJsonObjects(absl::string_view text, std::vector<std::string>* objects,
                      std::string* error) {
  size_t i = 0;
  while (true) {
    while (i < text.size() && absl::ascii_isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= text.size()) return true;
    if (text[i] != '{') {
      *error = absl::StrCat("expected '{' at offset ", i, " (message #", objects->size() + 1, ")");
      return false;
    }
    size_t start = i;
    int depth = 0;
    bool in_string = false;
    for (; i < text.size(); ++i) {
      char c = text[i];
      if (in_string) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_string = false;
        }
        continue;
      }
      if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) break;
      }
    }
    if (i >= text.size()) {
      *error = absl::StrCat("unterminated JSON object at offset ", start, " (message #",
                            objects->size() + 1, ")");
      return false;
    }
    objects->emplace_back(text.substr(start, i + 1 - start));
    ++i;
  }
}

// ----------------------------------------------------------------------------------------------
// Descriptors: the compiled-in pool, optionally extended by --protoset files.

class CollectErrors : public pb::DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element_name,
                const pb::Message* /*descriptor*/, ErrorLocation /*location*/,
                const std::string& message) override {
    errors_.push_back(absl::StrCat(filename, ": ", element_name, ": ", message));
  }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

class Registry {
 public:
  // Loads the compiled-in descriptors and the given FileDescriptorSet files.
  bool Load(const std::vector<std::string>& protosets, std::string* error) {
    std::vector<std::string> names;
    pb::DescriptorPool::internal_generated_database()->FindAllFileNames(&names);
    if (protosets.empty()) {
      pool_ = pb::DescriptorPool::generated_pool();
    } else {
      for (const auto& path : protosets) {
        std::string bytes;
        pb::FileDescriptorSet set;
        if (!ReadWholeFile(path, &bytes)) {
          *error = absl::StrCat("cannot read protoset ", path);
          return false;
        }
        if (!set.ParseFromString(bytes)) {
          *error = absl::StrCat(path, " is not a FileDescriptorSet");
          return false;
        }
        for (const auto& file : set.file()) {
          names.push_back(file.name());
          // A file compiled in wins (the merged database asks the generated one first); a file
          // given twice must be identical, which SimpleDescriptorDatabase checks.
          if (!protoset_db_.AddAndOwn(new pb::FileDescriptorProto(file))) {
            *error = absl::StrCat(path, ": conflicting definition of ", file.name());
            return false;
          }
        }
      }
      merged_db_ = std::make_unique<pb::MergedDescriptorDatabase>(
          pb::DescriptorPool::internal_generated_database(), &protoset_db_);
      own_pool_ = std::make_unique<pb::DescriptorPool>(merged_db_.get(), &errors_);
      pool_ = own_pool_.get();
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    for (const auto& name : names) {
      const pb::FileDescriptor* file = pool_->FindFileByName(name);
      if (file == nullptr) {
        *error = absl::StrCat("cannot load ", name, ": ", absl::StrJoin(errors_.errors(), "; "));
        return false;
      }
      files_.push_back(file);
    }
    return true;
  }

  const pb::DescriptorPool* pool() const { return pool_; }

  // Every service of the loaded files outside the google.* packages, sorted by full name.
  std::vector<const pb::ServiceDescriptor*> Services() const {
    std::vector<const pb::ServiceDescriptor*> out;
    for (const auto* file : files_) {
      if (file->package() == "google" || absl::StartsWith(file->package(), "google.")) continue;
      for (int i = 0; i < file->service_count(); ++i) out.push_back(file->service(i));
    }
    std::sort(out.begin(), out.end(),
              [](auto* a, auto* b) { return a->full_name() < b->full_name(); });
    return out;
  }

  // Full name, or a suffix at a '.' boundary (e.g. BenchService, v1.BenchService) when only one
  // service matches.
  const pb::ServiceDescriptor* FindService(absl::string_view name, std::string* error) const {
    if (const auto* s = pool_->FindServiceByName(std::string(name))) return s;
    std::vector<const pb::ServiceDescriptor*> matches;
    for (const auto* s : Services()) {
      if (absl::EndsWith(s->full_name(), absl::StrCat(".", name))) matches.push_back(s);
    }
    if (matches.size() == 1) return matches[0];
    if (matches.empty()) {
      *error = absl::StrCat("unknown service '", name, "' (see 'parcoursctl list')");
    } else {
      std::vector<std::string> names;
      for (const auto* s : matches) names.push_back(s->full_name());
      *error = absl::StrCat("ambiguous service '", name, "': ", absl::StrJoin(names, ", "),
                            "; use the full name");
    }
    return nullptr;
  }

  const pb::MethodDescriptor* FindMethod(absl::string_view spec, std::string* error) const {
    absl::string_view s = spec;
    absl::ConsumePrefix(&s, "/");
    size_t cut = s.rfind('/');
    if (cut == absl::string_view::npos) cut = s.rfind('.');
    if (cut == absl::string_view::npos || cut == 0 || cut + 1 >= s.size()) {
      *error = absl::StrCat("'", spec, "' is not SERVICE/METHOD");
      return nullptr;
    }
    const auto* service = FindService(s.substr(0, cut), error);
    if (service == nullptr) return nullptr;
    std::string method_name(s.substr(cut + 1));
    if (const auto* m = service->FindMethodByName(method_name)) return m;
    std::vector<std::string> names;
    for (int i = 0; i < service->method_count(); ++i) names.push_back(service->method(i)->name());
    *error = absl::StrCat("service ", service->full_name(), " has no method '", method_name,
                          "'; its methods: ", absl::StrJoin(names, ", "));
    return nullptr;
  }

  // describe: a message, enum, service or method, by full name or unambiguous short name.
  bool Describe(absl::string_view name, std::string* out, std::string* error) const {
    std::string n(absl::StripPrefix(name, "."));
    if (n.find('/') != std::string::npos) {
      const auto* m = FindMethod(n, error);
      if (m == nullptr) return false;
      *out = absl::StrCat("// ", m->service()->full_name(), "/", m->name(), "\n", m->DebugString());
      return true;
    }
    if (const auto* d = pool_->FindMessageTypeByName(n)) return Render(d, out);
    if (const auto* e = pool_->FindEnumTypeByName(n)) return Render(e, out);
    if (const auto* s = pool_->FindServiceByName(n)) return Render(s, out);
    // Short name: search every loaded file.
    std::vector<std::string> matches;
    std::string suffix = absl::StrCat(".", n);
    std::string rendered;
    auto consider = [&](const auto* d) {
      if (absl::EndsWith(d->full_name(), suffix)) {
        matches.push_back(d->full_name());
        Render(d, &rendered);
      }
    };
    for (const auto* file : files_) {
      for (int i = 0; i < file->message_type_count(); ++i) VisitMessage(file->message_type(i), consider);
      for (int i = 0; i < file->enum_type_count(); ++i) consider(file->enum_type(i));
      for (int i = 0; i < file->service_count(); ++i) consider(file->service(i));
    }
    if (matches.size() == 1) {
      *out = rendered;
      return true;
    }
    if (matches.empty()) {
      *error = absl::StrCat("unknown type or service '", name, "'");
    } else {
      *error = absl::StrCat("ambiguous name '", name, "': ", absl::StrJoin(matches, ", "),
                            "; use the full name");
    }
    return false;
  }

 private:
  template <typename D>
  static bool Render(const D* d, std::string* out) {
    *out = absl::StrCat("// ", d->full_name(), " (", d->file()->name(), ")\n", d->DebugString());
    return true;
  }

  template <typename F>
  static void VisitMessage(const pb::Descriptor* d, const F& f) {
    f(d);
    for (int i = 0; i < d->nested_type_count(); ++i) VisitMessage(d->nested_type(i), f);
    for (int i = 0; i < d->enum_type_count(); ++i) f(d->enum_type(i));
  }

  const pb::DescriptorPool* pool_ = nullptr;
  pb::SimpleDescriptorDatabase protoset_db_;
  std::unique_ptr<pb::MergedDescriptorDatabase> merged_db_;
  CollectErrors errors_;
  std::unique_ptr<pb::DescriptorPool> own_pool_;
  std::vector<const pb::FileDescriptor*> files_;
};

// Type name as written in the service's .proto: relative to the service package when it is the
// same package, fully qualified otherwise (e.g. google.protobuf.Empty).
std::string TypeName(const pb::Descriptor* type, const pb::ServiceDescriptor* service) {
  const std::string& pkg = service->file()->package();
  if (type->file()->package() == pkg && !pkg.empty()) {
    return type->full_name().substr(pkg.size() + 1);
  }
  return type->full_name();
}

std::string MethodLine(const pb::MethodDescriptor* m) {
  return absl::StrCat(m->service()->full_name(), "/", m->name(), " (",
                      m->client_streaming() ? "stream " : "", TypeName(m->input_type(), m->service()),
                      ") returns (", m->server_streaming() ? "stream " : "",
                      TypeName(m->output_type(), m->service()), ")");
}

// ----------------------------------------------------------------------------------------------
// Command line.

struct Options {
  std::string addr;
  std::string timeout = "10s";
  std::vector<std::string> headers;
  std::vector<std::string> protosets;
  bool verbose = false;
  bool emit_defaults = false;
  bool help = false;
  std::vector<std::string> positional;
  // token
  std::string key_file;
  std::string kid = "0";
  std::string principal;
  std::optional<std::string> subject;
  std::string issuer = "parcours-dev";
  std::string audience = "parcours-gateway";
  std::string ttl = "1h";
  std::vector<std::string> token_options;  // seen, to refuse them on other commands
};

// Options may appear anywhere; "--" ends them. Returns false (with *error) on a bad option.
bool ParseArgs(int argc, char** argv, Options* opts, std::string* error) {
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_done || arg == "-" || arg.size() < 2 || arg[0] != '-') {
      opts->positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    // Options with a value: "--opt VALUE", "--opt=VALUE", "-HVALUE".
    std::string name = arg;
    std::optional<std::string> value;
    if (absl::StartsWith(arg, "--")) {
      size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
      }
    } else if (absl::StartsWith(arg, "-H") && arg.size() > 2) {
      name = "-H";
      value = arg.substr(2);
    }
    auto take_value = [&](std::string* dst) {
      if (!value) {
        if (i + 1 >= argc) {
          *error = absl::StrCat("option ", name, " needs a value");
          return false;
        }
        value = argv[++i];
      }
      *dst = *value;
      return true;
    };
    auto no_value = [&]() {
      if (value) *error = absl::StrCat("option ", name, " takes no value");
      return !value;
    };
    std::string v;
    if (name == "--addr") {
      if (!take_value(&opts->addr)) return false;
    } else if (name == "--timeout") {
      if (!take_value(&opts->timeout)) return false;
    } else if (name == "-H" || name == "--header") {
      if (!take_value(&v)) return false;
      opts->headers.push_back(v);
    } else if (name == "--protoset") {
      if (!take_value(&v)) return false;
      opts->protosets.push_back(v);
    } else if (name == "-v" || name == "--verbose") {
      if (!no_value()) return false;
      opts->verbose = true;
    } else if (name == "--emit-defaults") {
      if (!no_value()) return false;
      opts->emit_defaults = true;
    } else if (name == "--key" || name == "--kid" || name == "--principal" ||
               name == "--subject" || name == "--issuer" || name == "--audience" ||
               name == "--ttl") {
      if (!take_value(&v)) return false;
      opts->token_options.push_back(name);
      if (name == "--key") opts->key_file = v;
      if (name == "--kid") opts->kid = v;
      if (name == "--principal") opts->principal = v;
      if (name == "--subject") opts->subject = v;
      if (name == "--issuer") opts->issuer = v;
      if (name == "--audience") opts->audience = v;
      if (name == "--ttl") opts->ttl = v;
    } else if (name == "-h" || name == "--help") {
      if (!no_value()) return false;
      opts->help = true;
    } else {
      *error = absl::StrCat("unknown option '", arg, "'");
      return false;
    }
  }
  return true;
}

bool ParseTimeout(const std::string& text, absl::Duration* out) {
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds)) {
    if (!std::isfinite(seconds)) return false;
    *out = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, out)) {
    return false;
  }
  return *out >= absl::ZeroDuration() && *out != absl::InfiniteDuration();
}

bool ParseHeader(const std::string& header, std::pair<std::string, std::string>* out,
                 std::string* error) {
  size_t colon = header.find(':');
  if (colon == std::string::npos) {
    *error = absl::StrCat("header '", header, "' is not 'key: value'");
    return false;
  }
  std::string key = absl::AsciiStrToLower(absl::StripAsciiWhitespace(header.substr(0, colon)));
  std::string value(absl::StripAsciiWhitespace(header.substr(colon + 1)));
  if (key.empty() || !std::all_of(key.begin(), key.end(), [](char c) {
        return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'z') || c == '-' || c == '_' || c == '.';
      })) {
    *error = absl::StrCat("invalid header key '", key, "' (allowed: a-z 0-9 - _ .)");
    return false;
  }
  if (absl::StartsWith(key, "grpc-")) {
    *error = absl::StrCat("header key '", key, "' is reserved by gRPC");
    return false;
  }
  if (absl::EndsWith(key, "-bin")) {
    std::string decoded;
    if (!absl::Base64Unescape(value, &decoded)) {
      *error = absl::StrCat("value of binary header '", key, "' is not base64");
      return false;
    }
    value = decoded;
  } else if (!std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) {
    *error = absl::StrCat("value of header '", key, "' must be printable ASCII");
    return false;
  }
  *out = {key, value};
  return true;
}

// ----------------------------------------------------------------------------------------------
// Commands.

int RunList(const Registry& registry, const Options& opts) {
  if (opts.positional.size() > 2) {
    PrintUsageError("usage: parcoursctl list [SERVICE]");
    return kExitUsage;
  }
  std::vector<const pb::ServiceDescriptor*> services;
  if (opts.positional.size() == 2) {
    std::string error;
    const auto* s = registry.FindService(opts.positional[1], &error);
    if (s == nullptr) {
      PrintUsageError(error);
      return kExitUsage;
    }
    services.push_back(s);
  } else {
    services = registry.Services();
  }
  for (const auto* s : services) {
    for (int i = 0; i < s->method_count(); ++i) std::cout << MethodLine(s->method(i)) << "\n";
  }
  return kExitOk;
}

int RunDescribe(const Registry& registry, const Options& opts) {
  if (opts.positional.size() != 2) {
    PrintUsageError("usage: parcoursctl describe NAME");
    return kExitUsage;
  }
  std::string out, error;
  if (!registry.Describe(opts.positional[1], &out, &error)) {
    PrintUsageError(error);
    return kExitUsage;
  }
  std::cout << out;
  return kExitOk;
}

void PrintMetadata(const char* prefix,
                   const std::multimap<grpc::string_ref, grpc::string_ref>& md) {
  for (const auto& [k, v] : md) {
    std::string key(k.data(), k.size());
    std::string value(v.data(), v.size());
    if (absl::EndsWith(key, "-bin")) value = absl::Base64Escape(value);
    std::cerr << prefix << key << ": " << value << "\n";
  }
}

void PrintRpcError(const grpc::Status& status) {
  int code = static_cast<int>(status.error_code());
  std::cerr << "ERROR: " << CodeName(status.error_code()) << " (" << code
            << "): " << status.error_message() << "\n";
  const std::string& details = status.error_details();
  if (details.empty()) return;
  google::rpc::Status rpc_status;
  if (!rpc_status.ParseFromString(details)) {
    std::cerr << "(grpc-status-details-bin: " << details.size()
              << " bytes, not a google.rpc.Status)\n";
    return;
  }
  for (const auto& any : rpc_status.details()) {
    std::string json, error;
    if (ToJson(any, /*emit_defaults=*/false, &json, &error)) {
      std::cerr << json;
    } else {
      std::cerr << "(detail " << any.type_url() << ", " << any.value().size()
                << " bytes: type not compiled in)\n";
    }
  }
}

grpc::Slice ToSlice(const pb::Message& m) {
  std::string bytes = m.SerializeAsString();
  return grpc::Slice(bytes);
}

bool ParseByteBuffer(const grpc::ByteBuffer& buffer, pb::Message* m) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return m->ParseFromString(bytes);
}

int RunCall(const Registry& registry, const Options& opts) {
  if (opts.positional.size() < 2 || opts.positional.size() > 3) {
    PrintUsageError("usage: parcoursctl call [options] SERVICE/METHOD [JSON | @FILE | -]");
    return kExitUsage;
  }
  std::string error;
  const pb::MethodDescriptor* method = registry.FindMethod(opts.positional[1], &error);
  if (method == nullptr) {
    PrintUsageError(error);
    return kExitUsage;
  }

  absl::Duration timeout;
  if (!ParseTimeout(opts.timeout, &timeout)) {
    PrintUsageError(absl::StrCat("invalid --timeout '", opts.timeout, "' (e.g. 10s, 500ms, 0)"));
    return kExitUsage;
  }
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& h : opts.headers) {
    std::pair<std::string, std::string> kv;
    if (!ParseHeader(h, &kv, &error)) {
      PrintUsageError(error);
      return kExitUsage;
    }
    headers.push_back(std::move(kv));
  }

  // Request text.
  std::string text;
  std::optional<std::string> arg;
  if (opts.positional.size() == 3) arg = opts.positional[2];
  if (!arg && method->client_streaming()) arg = "-";
  if (arg && *arg == "-") {
    text = ReadStdin();
  } else if (arg && absl::StartsWith(*arg, "@")) {
    if (!ReadWholeFile(arg->substr(1), &text)) {
      PrintUsageError(absl::StrCat("cannot read ", arg->substr(1)));
      return kExitUsage;
    }
  } else if (arg) {
    text = *arg;
  }

  // JSON -> protobuf, all messages before anything is sent.
  pb::DynamicMessageFactory factory;
  const pb::Message* request_prototype = factory.GetPrototype(method->input_type());
  std::vector<std::string> documents;
  if (method->client_streaming()) {
    if (!SplitJsonObjects(text, &documents, &error)) {
      PrintUsageError(absl::StrCat("invalid JSON input: ", error));
      return kExitUsage;
    }
  } else {
    if (absl::StripAsciiWhitespace(text).empty()) text = "{}";
    documents.push_back(text);
  }
  std::vector<grpc::ByteBuffer> requests;
  for (size_t i = 0; i < documents.size(); ++i) {
    std::unique_ptr<pb::Message> request(request_prototype->New());
    pb::util::JsonParseOptions parse_options;
    parse_options.ignore_unknown_fields = false;
    auto st = pb::util::JsonStringToMessage(documents[i], request.get(), parse_options);
    if (!st.ok()) {
      std::string which =
          method->client_streaming() ? absl::StrCat(" (message #", i + 1, ")") : std::string();
      PrintUsageError(absl::StrCat("invalid JSON for ", method->input_type()->full_name(), which,
                                   ": ", st.message().ToString()));
      return kExitUsage;
    }
    grpc::Slice slice = ToSlice(*request);
    requests.emplace_back(&slice, 1);
  }

  std::string addr = opts.addr;
  if (addr.empty()) {
    const char* env = std::getenv(kAddrEnv);
    addr = (env != nullptr && *env != '\0') ? env : kDefaultAddr;
  }
  std::string path = absl::StrCat("/", method->service()->full_name(), "/", method->name());

  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  if (timeout > absl::ZeroDuration()) {
    context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
  }
  for (const auto& [k, v] : headers) context.AddMetadata(k, v);
  if (opts.verbose) {
    std::cerr << "> " << path << " on " << addr << "\n";
    for (const auto& [k, v] : headers) {
      std::cerr << "> " << k << ": " << (absl::EndsWith(k, "-bin") ? absl::Base64Escape(v) : v)
                << "\n";
    }
  }

  // One generic bidi call drives all four kinds: write every request then half-close, while
  // reading responses as they arrive. At most one write and one read are in flight.
  enum Tag : intptr_t { kStart = 1, kRead, kWrite, kWritesDone, kFinish };
  auto tag = [](Tag t) { return reinterpret_cast<void*>(static_cast<intptr_t>(t)); };
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&context, path, &cq);
  void* got = nullptr;
  bool ok = false;
  call->StartCall(tag(kStart));
  cq.Next(&got, &ok);
  bool started = ok;

  const pb::Message* response_prototype = factory.GetPrototype(method->output_type());
  size_t next_request = 0;
  size_t responses = 0;
  bool write_pending = false, read_pending = false;
  bool output_failed = false;
  grpc::ByteBuffer response_buffer;
  auto issue_write = [&] {
    if (next_request < requests.size()) {
      call->Write(requests[next_request++], tag(kWrite));
    } else {
      call->WritesDone(tag(kWritesDone));
    }
    write_pending = true;
  };
  if (started) {
    issue_write();
    call->Read(&response_buffer, tag(kRead));
    read_pending = true;
  }
  while (write_pending || read_pending) {
    if (!cq.Next(&got, &ok)) break;
    switch (static_cast<Tag>(reinterpret_cast<intptr_t>(got))) {
      case kWrite:
        write_pending = false;
        if (ok) issue_write();
        break;
      case kWritesDone:
        write_pending = false;
        break;
      case kRead: {
        read_pending = false;
        if (!ok) break;
        ++responses;
        std::unique_ptr<pb::Message> response(response_prototype->New());
        std::string json;
        if (!ParseByteBuffer(response_buffer, response.get())) {
          std::cerr << "parcoursctl: cannot decode response #" << responses << " as "
                    << method->output_type()->full_name() << "\n";
          output_failed = true;
          context.TryCancel();
        } else if (!ToJson(*response, opts.emit_defaults, &json, &error)) {
          std::cerr << "parcoursctl: cannot print response #" << responses << ": " << error << "\n";
          output_failed = true;
          context.TryCancel();
        } else {
          std::cout << json << std::flush;
        }
        response_buffer.Clear();
        call->Read(&response_buffer, tag(kRead));
        read_pending = true;
        break;
      }
      default:
        break;
    }
  }
  grpc::Status status;
  call->Finish(&status, tag(kFinish));
  cq.Next(&got, &ok);
  cq.Shutdown();
  while (cq.Next(&got, &ok)) {
  }

  if (opts.verbose) {
    PrintMetadata("< ", context.GetServerInitialMetadata());
    PrintMetadata("< (trailer) ", context.GetServerTrailingMetadata());
  }
  if (status.ok() && !method->server_streaming() && responses != 1) {
    status = grpc::Status(grpc::StatusCode::INTERNAL,
                          absl::StrCat("unary method returned ", responses, " responses"));
  }
  if (!status.ok()) {
    PrintRpcError(status);
    return kExitRpcError;
  }
  return output_failed ? kExitRpcError : kExitOk;
}

// ----------------------------------------------------------------------------------------------
// token: development JWTs (ES256 / RS256) signed with OpenSSL.

struct OpenSslFree {
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
template <typename T>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree>;

std::string Base64Url(absl::string_view in) {
  std::string out;
  absl::WebSafeBase64Escape(in, &out);  // no padding
  return out;
}

// A JSON string literal.
std::string JsonQuote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out.append(buf);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
  return out;
}

// The gateway's principal syntax (platform/principal.h), checked here so that a typo fails now
// rather than at the gateway.
bool ValidPrincipal(const std::string& p) {
  if (p == "national") return true;
  const size_t colon = p.find(':');
  if (colon == std::string::npos) return false;
  const std::string kind = p.substr(0, colon), id = p.substr(colon + 1);
  if (kind != "region" && kind != "operator" && kind != "certifier" && kind != "jury-member") {
    return false;
  }
  return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

int RunToken(const Options& opts) {
  if (opts.positional.size() != 1) {
    PrintUsageError("usage: parcoursctl token --key FILE --principal PRINCIPAL [options]");
    return kExitUsage;
  }
  if (opts.key_file.empty()) {
    PrintUsageError("token: --key is required");
    return kExitUsage;
  }
  if (!ValidPrincipal(opts.principal)) {
    PrintUsageError(absl::StrCat("token: --principal '", opts.principal,
                                 "' is not national, region:<code>, operator:<id>, "
                                 "certifier:<id> or jury-member:<id>"));
    return kExitUsage;
  }
  absl::Duration ttl;
  if (!absl::ParseDuration(opts.ttl, &ttl) || ttl <= absl::ZeroDuration() ||
      ttl == absl::InfiniteDuration()) {
    PrintUsageError(absl::StrCat("token: invalid --ttl '", opts.ttl, "' (e.g. 1h, 15m)"));
    return kExitUsage;
  }
  if (opts.kid.empty() || opts.issuer.empty() || opts.audience.empty()) {
    PrintUsageError("token: --kid, --issuer and --audience must not be empty");
    return kExitUsage;
  }
  std::string pem;
  if (!ReadWholeFile(opts.key_file, &pem)) {
    PrintUsageError(absl::StrCat("token: cannot read ", opts.key_file));
    return kExitUsage;
  }
  OpenSslPtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  OpenSslPtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    PrintUsageError(absl::StrCat("token: ", opts.key_file, " holds no PEM private key"));
    return kExitUsage;
  }
  std::string alg;
  if (EVP_PKEY_is_a(key.get(), "EC")) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group,
                                       sizeof(group), &len) &&
        (std::string(group) == "prime256v1" || std::string(group) == "P-256")) {
      alg = "ES256";
    }
  } else if (EVP_PKEY_is_a(key.get(), "RSA") && EVP_PKEY_get_bits(key.get()) >= 2048) {
    alg = "RS256";
  }
  if (alg.empty()) {
    PrintUsageError("token: the key must be EC P-256 (ES256) or RSA of 2048 bits or more (RS256)");
    return kExitUsage;
  }

  const int64_t now = absl::ToUnixSeconds(absl::Now());
  unsigned char jti[16];
  RAND_bytes(jti, sizeof(jti));
  const std::string header = absl::StrCat("{\"alg\":\"", alg, "\",\"typ\":\"JWT\",\"kid\":",
                                          JsonQuote(opts.kid), "}");
  const std::string claims = absl::StrCat(
      "{\"iss\":", JsonQuote(opts.issuer), ",\"aud\":", JsonQuote(opts.audience),
      ",\"sub\":", JsonQuote(opts.subject.value_or(opts.principal)), ",\"iat\":", now,
      ",\"nbf\":", now, ",\"exp\":", now + absl::ToInt64Seconds(ttl),
      ",\"jti\":", JsonQuote(absl::BytesToHexString(
                       absl::string_view(reinterpret_cast<const char*>(jti), sizeof(jti)))),
      ",\"parcours_principal\":", JsonQuote(opts.principal), "}");
  const std::string input = absl::StrCat(Base64Url(header), ".", Base64Url(claims));

  OpenSslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  size_t sig_len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &sig_len, data, input.size()) != 1) {
    std::cerr << "parcoursctl: token: signing failed\n";
    return kExitRpcError;
  }
  std::string sig(sig_len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len, data,
                     input.size()) != 1) {
    std::cerr << "parcoursctl: token: signing failed\n";
    return kExitRpcError;
  }
  sig.resize(sig_len);
  if (alg == "ES256") {
    // OpenSSL signs in DER; JOSE wants r || s, 32 bytes each.
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    OpenSslPtr<ECDSA_SIG> ecdsa(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
    std::string raw(64, '\0');
    if (!ecdsa ||
        BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa.get()), reinterpret_cast<unsigned char*>(raw.data()),
                     32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa.get()),
                     reinterpret_cast<unsigned char*>(raw.data()) + 32, 32) != 32) {
      std::cerr << "parcoursctl: token: signing failed\n";
      return kExitRpcError;
    }
    sig = raw;
  }
  std::cout << input << "." << Base64Url(sig) << "\n";
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  std::string error;
  if (!ParseArgs(argc, argv, &opts, &error)) {
    PrintUsageError(error);
    return kExitUsage;
  }
  if (opts.help || (!opts.positional.empty() && opts.positional[0] == "help")) {
    std::cout << kUsage;
    return kExitOk;
  }
  if (opts.positional.empty()) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  const std::string& command = opts.positional[0];
  if (command != "list" && command != "describe" && command != "call" && command != "token") {
    std::cerr << "parcoursctl: unknown command '" << command << "'\n\n" << kUsage;
    return kExitUsage;
  }
  if (command == "token") return RunToken(opts);
  if (!opts.token_options.empty()) {
    PrintUsageError(absl::StrCat("option ", opts.token_options.front(), " is for 'token' only"));
    return kExitUsage;
  }
  Registry registry;
  if (!registry.Load(opts.protosets, &error)) {
    PrintUsageError(error);
    return kExitUsage;
  }
  if (command == "list") return RunList(registry, opts);
  if (command == "describe") return RunDescribe(registry, opts);
  return RunCall(registry, opts);
}
