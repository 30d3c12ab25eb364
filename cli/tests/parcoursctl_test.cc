// Runs the built parcoursctl binary against an in-process gRPC server:
//  - parcours.bench.v1.BenchService (compiled in): Echo returns the payload; "bad" fails with
//    INVALID_ARGUMENT + google.rpc.BadRequest; "slow" waits for the client to give up.
//  - parcours.clitest.v1.StreamTestService (NOT compiled in: given to parcoursctl with --protoset,
//    served with a generic callback service) to exercise the streaming kinds.
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "parcours/bench/v1/bench.grpc.pb.h"
#ifdef PARCOURSCTL_TEST_GATEWAY_AUTH
#include "absl/strings/escaping.h"
#include "absl/strings/str_join.h"
#include "gateway/auth/authenticator.h"
#include "openssl/hmac.h"
#include "openssl/sha.h"
#include "platform/clock.h"
#include "platform/testing/pki.h"
#endif

extern char** environ;

namespace {

namespace pb = google::protobuf;
using parcours::bench::v1::BenchService;
using parcours::bench::v1::EchoRequest;
using parcours::bench::v1::EchoResponse;

// ---------------------------------------------------------------------------------------------
// Running the binary.

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TempPath(const std::string& name) {
  static std::atomic<int> counter{0};
  return absl::StrCat(::testing::TempDir(), "/parcoursctl_test_", getpid(), "_", counter++, "_",
                      name);
}

// Runs parcoursctl with args; stdin from `input`; extra environment variables in `env`
// (PARCOURS_ADDR is always removed from the inherited environment unless given).
RunResult RunCtl(const std::vector<std::string>& args, const std::string& input = "",
              const std::map<std::string, std::string>& env = {}) {
  std::string in_path = TempPath("stdin"), out_path = TempPath("stdout"),
              err_path = TempPath("stderr");
  { std::ofstream(in_path, std::ios::binary) << input; }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);

  std::vector<std::string> argv_s = {PARCOURSCTL_PATH};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    if (key == "PARCOURS_ADDR" || env.count(key) != 0) continue;
    env_s.push_back(kv);
  }
  for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  RunResult result;
  pid_t pid = 0;
  int rc = posix_spawn(&pid, PARCOURSCTL_PATH, &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << PARCOURSCTL_PATH << ": " << strerror(rc);
    return result;
  }
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  result.exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  unlink(in_path.c_str());
  unlink(out_path.c_str());
  unlink(err_path.c_str());
  return result;
}

std::string Show(const RunResult& r) {
  return absl::StrCat("exit=", r.exit_code, "\n--- stdout ---\n", r.out, "--- stderr ---\n", r.err);
}

// ---------------------------------------------------------------------------------------------
// BenchService (compiled in).

class BenchImpl final : public BenchService::Service {
 public:
  grpc::Status Echo(grpc::ServerContext* ctx, const EchoRequest* req, EchoResponse* resp) override {
    calls++;
    {
      std::lock_guard<std::mutex> lock(mu);
      last_payload = req->payload();
      auto it = ctx->client_metadata().find("x-test");
      last_x_test = it == ctx->client_metadata().end()
                        ? "<none>"
                        : std::string(it->second.data(), it->second.size());
      auto auth = ctx->client_metadata().find("authorization");
      last_authorization = auth == ctx->client_metadata().end()
                               ? "<none>"
                               : std::string(auth->second.data(), auth->second.size());
    }
    if (req->payload() == "bad") {
      google::rpc::BadRequest bad;
      auto* v = bad.add_field_violations();
      v->set_field("payload");
      v->set_description("must not be <bad>");
      google::rpc::Status st;
      st.set_code(grpc::StatusCode::INVALID_ARGUMENT);
      st.set_message("invalid request");
      st.add_details()->PackFrom(bad);
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "invalid request",
                          st.SerializeAsString());
    }
    if (req->payload() == "slow") {
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!ctx->IsCancelled() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    resp->set_payload(req->payload());
    return grpc::Status::OK;
  }

  std::atomic<int> calls{0};
  std::mutex mu;
  std::string last_payload, last_x_test, last_authorization;
};

// ---------------------------------------------------------------------------------------------
// StreamTestService (not compiled in), described here and written out as a FileDescriptorSet.

constexpr char kStreamProto[] = R"pb(
  name: "parcours/clitest/v1/stream.proto"
  package: "parcours.clitest.v1"
  syntax: "proto3"
  message_type {
    name: "Num"
    field { name: "value" json_name: "value" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL }
  }
  service {
    name: "StreamTestService"
    # n -> 1..n; n > 100: two messages then RESOURCE_EXHAUSTED.
    method {
      name: "Count"
      input_type: ".parcours.clitest.v1.Num"
      output_type: ".parcours.clitest.v1.Num"
      server_streaming: true
    }
    # sum of every value.
    method {
      name: "Sum"
      input_type: ".parcours.clitest.v1.Num"
      output_type: ".parcours.clitest.v1.Num"
      client_streaming: true
    }
    # each value * 10.
    method {
      name: "Scale"
      input_type: ".parcours.clitest.v1.Num"
      output_type: ".parcours.clitest.v1.Num"
      client_streaming: true
      server_streaming: true
    }
  }
)pb";

class StreamTypes {
 public:
  StreamTypes() {
    EXPECT_TRUE(pb::TextFormat::ParseFromString(kStreamProto, &file_proto_));
    file_ = pool_.BuildFile(file_proto_);
    EXPECT_NE(file_, nullptr);
    num_ = factory_.GetPrototype(file_->FindMessageTypeByName("Num"));
  }
  const pb::FileDescriptorProto& file_proto() const { return file_proto_; }

  bool Decode(const grpc::ByteBuffer& buffer, int* value) const {
    std::vector<grpc::Slice> slices;
    if (!buffer.Dump(&slices).ok()) return false;
    std::string bytes;
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    std::unique_ptr<pb::Message> m(num_->New());
    if (!m->ParseFromString(bytes)) return false;
    *value = m->GetReflection()->GetInt32(*m, m->GetDescriptor()->field(0));
    return true;
  }
  grpc::ByteBuffer Encode(int value) const {
    std::unique_ptr<pb::Message> m(num_->New());
    m->GetReflection()->SetInt32(m.get(), m->GetDescriptor()->field(0), value);
    grpc::Slice slice(m->SerializeAsString());
    return grpc::ByteBuffer(&slice, 1);
  }

 private:
  pb::FileDescriptorProto file_proto_;
  pb::DescriptorPool pool_;
  const pb::FileDescriptor* file_ = nullptr;
  pb::DynamicMessageFactory factory_;
  const pb::Message* num_ = nullptr;
};

class StreamReactor : public grpc::ServerGenericBidiReactor {
 public:
  StreamReactor(const std::string& method, const StreamTypes* types)
      : method_(method), types_(types) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      int v = 0;
      if (!types_->Decode(in_, &v)) {
        Finish(grpc::Status(grpc::StatusCode::INTERNAL, "undecodable request"));
        return;
      }
      values_.push_back(v);
      in_.Clear();
      StartRead(&in_);
      return;
    }
    // The client half-closed: answer.
    if (method_ == "/parcours.clitest.v1.StreamTestService/Count") {
      if (values_.size() != 1) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "one request expected"));
        return;
      }
      int n = values_[0];
      if (n > 100) {
        outputs_ = {1, 2};
        final_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many");
      } else {
        for (int i = 1; i <= n; ++i) outputs_.push_back(i);
      }
    } else if (method_ == "/parcours.clitest.v1.StreamTestService/Sum") {
      int sum = 0;
      for (int v : values_) sum += v;
      outputs_ = {sum};
    } else if (method_ == "/parcours.clitest.v1.StreamTestService/Scale") {
      for (int v : values_) outputs_.push_back(v * 10);
    } else {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, method_));
      return;
    }
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    if (next_ < outputs_.size()) {
      out_ = types_->Encode(outputs_[next_++]);
      StartWrite(&out_);
    } else {
      Finish(final_);
    }
  }

  std::string method_;
  const StreamTypes* types_;
  grpc::ByteBuffer in_, out_;
  std::vector<int> values_, outputs_;
  size_t next_ = 0;
  grpc::Status final_ = grpc::Status::OK;
};

class StreamService : public grpc::CallbackGenericService {
 public:
  explicit StreamService(const StreamTypes* types) : types_(types) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new StreamReactor(ctx->method(), types_);
  }

 private:
  const StreamTypes* types_;
};

// ---------------------------------------------------------------------------------------------

class ParcoursctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&bench_);
    builder.RegisterCallbackGenericService(&stream_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    addr_ = absl::StrCat("127.0.0.1:", port);

    pb::FileDescriptorSet set;
    *set.add_file() = types_.file_proto();
    protoset_ = TempPath("stream.protoset");
    std::ofstream(protoset_, std::ios::binary) << set.SerializeAsString();
  }
  void TearDown() override {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    unlink(protoset_.c_str());
  }

  RunResult Call(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), {"call", "--addr", addr_});
    return RunCtl(args, input);
  }

  BenchImpl bench_;
  StreamTypes types_;
  StreamService stream_{&types_};
  std::unique_ptr<grpc::Server> server_;
  std::string addr_;
  std::string protoset_;
};

TEST_F(ParcoursctlTest, ListPrintsCompiledInServicesWithSignatures) {
  RunResult r = RunCtl({"list"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(absl::StrContains(
      r.out, "parcours.bench.v1.BenchService/Echo (EchoRequest) returns (EchoResponse)\n"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "parcours.referential.v1.ReferentialService/GetVersion "
                                       "(GetVersionRequest) returns (Version)\n"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "returns (google.protobuf.Empty)")) << r.out;
  // Only parcours.* services: no google.* service, and every line names a parcours service.
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    EXPECT_TRUE(absl::StartsWith(line, "parcours.")) << line;
  }
  EXPECT_GT(n, 3);
  EXPECT_EQ(r.err, "");
}

TEST_F(ParcoursctlTest, ListOneServiceByShortName) {
  RunResult r = RunCtl({"list", "BenchService"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(r.out, "parcours.bench.v1.BenchService/Echo (EchoRequest) returns (EchoResponse)\n");

  RunResult unknown = RunCtl({"list", "NoSuchService"});
  EXPECT_EQ(unknown.exit_code, 2) << Show(unknown);
  EXPECT_TRUE(absl::StrContains(unknown.err, "unknown service 'NoSuchService'")) << unknown.err;
}

TEST_F(ParcoursctlTest, ListWithProtosetShowsStreamingKinds) {
  RunResult r = RunCtl({"--protoset", protoset_, "list", "parcours.clitest.v1.StreamTestService"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(r.out,
            "parcours.clitest.v1.StreamTestService/Count (Num) returns (stream Num)\n"
            "parcours.clitest.v1.StreamTestService/Sum (stream Num) returns (Num)\n"
            "parcours.clitest.v1.StreamTestService/Scale (stream Num) returns (stream Num)\n");
  // Compiled-in services are still there.
  RunResult all = RunCtl({"list", "--protoset", protoset_});
  ASSERT_EQ(all.exit_code, 0) << Show(all);
  EXPECT_TRUE(absl::StrContains(all.out, "parcours.bench.v1.BenchService/Echo")) << all.out;
  EXPECT_TRUE(absl::StrContains(all.out, "StreamTestService/Count")) << all.out;
}

TEST_F(ParcoursctlTest, DescribeMessage) {
  RunResult full = RunCtl({"describe", "parcours.bench.v1.EchoRequest"});
  ASSERT_EQ(full.exit_code, 0) << Show(full);
  EXPECT_TRUE(absl::StrContains(full.out, "message EchoRequest {")) << full.out;
  EXPECT_TRUE(absl::StrContains(full.out, "string payload = 1;")) << full.out;
  RunResult short_name = RunCtl({"describe", "EchoResponse"});
  ASSERT_EQ(short_name.exit_code, 0) << Show(short_name);
  EXPECT_TRUE(absl::StrContains(short_name.out, "// parcours.bench.v1.EchoResponse")) << short_name.out;
  RunResult unknown = RunCtl({"describe", "NoSuchType"});
  EXPECT_EQ(unknown.exit_code, 2) << Show(unknown);
}

TEST_F(ParcoursctlTest, CallEchoPrintsPrettyJsonWithUtf8) {
  RunResult r = Call({"parcours.bench.v1.BenchService/Echo", R"({"payload":"héllo <&>"})"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(r.out, "{\n  \"payload\": \"héllo <&>\"\n}\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(bench_.calls.load(), 1);
  std::lock_guard<std::mutex> lock(bench_.mu);
  EXPECT_EQ(bench_.last_payload, "héllo <&>");
}

TEST_F(ParcoursctlTest, CallKeepsJsonEscapesInStrings) {
  // Quote, backslash, newline, an escaped "\u003c" written literally, a control character.
  RunResult r = Call({"BenchService/Echo", R"({"payload":"q\"b\\s\nl \\u003c \u0001 {[,:]}"})"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(r.out, "{\n  \"payload\": \"q\\\"b\\\\s\\nl \\\\u003c \\u0001 {[,:]}\"\n}\n");
  std::lock_guard<std::mutex> lock(bench_.mu);
  EXPECT_EQ(bench_.last_payload, "q\"b\\s\nl \\u003c \x01 {[,:]}");
}

TEST_F(ParcoursctlTest, CallAcceptsShortServiceNameAndDefaultsToEmptyRequest) {
  RunResult r = Call({"BenchService/Echo"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(r.out, "{}\n");  // payload "" is the default: omitted
  RunResult defaults = Call({"--emit-defaults", "BenchService/Echo", ""});
  ASSERT_EQ(defaults.exit_code, 0) << Show(defaults);
  EXPECT_EQ(defaults.out, "{\n  \"payload\": \"\"\n}\n");
  EXPECT_EQ(bench_.calls.load(), 2);
}

TEST_F(ParcoursctlTest, CallReadsFileAndStdin) {
  std::string path = TempPath("req.json");
  std::ofstream(path) << R"({"payload": "from file"})";
  RunResult file = Call({"BenchService/Echo", "@" + path});
  unlink(path.c_str());
  ASSERT_EQ(file.exit_code, 0) << Show(file);
  EXPECT_EQ(file.out, "{\n  \"payload\": \"from file\"\n}\n");

  RunResult in = Call({"BenchService/Echo", "-"}, R"({"payload": "from stdin"})");
  ASSERT_EQ(in.exit_code, 0) << Show(in);
  EXPECT_EQ(in.out, "{\n  \"payload\": \"from stdin\"\n}\n");

  RunResult missing = Call({"BenchService/Echo", "@/nonexistent/req.json"});
  EXPECT_EQ(missing.exit_code, 2) << Show(missing);
  EXPECT_EQ(bench_.calls.load(), 2);
}

TEST_F(ParcoursctlTest, CallSendsHeaders) {
  RunResult r = Call({"-H", "X-Test: some value", "--header=authorization: Bearer abc.def",
                      "BenchService/Echo", R"({"payload":"h"})"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  std::lock_guard<std::mutex> lock(bench_.mu);
  EXPECT_EQ(bench_.last_x_test, "some value");
  EXPECT_EQ(bench_.last_authorization, "Bearer abc.def");
}

TEST_F(ParcoursctlTest, BadHeaderIsUsageError) {
  RunResult r = Call({"-H", "no colon here", "BenchService/Echo", "{}"});
  EXPECT_EQ(r.exit_code, 2) << Show(r);
  EXPECT_EQ(bench_.calls.load(), 0);
}

TEST_F(ParcoursctlTest, ErrorStatusPrintsCodeAndDecodedDetails) {
  RunResult r = Call({"BenchService/Echo", R"({"payload":"bad"})"});
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "ERROR: INVALID_ARGUMENT (3): invalid request\n"
            "{\n"
            "  \"@type\": \"type.googleapis.com/google.rpc.BadRequest\",\n"
            "  \"fieldViolations\": [\n"
            "    {\n"
            "      \"field\": \"payload\",\n"
            "      \"description\": \"must not be <bad>\"\n"
            "    }\n"
            "  ]\n"
            "}\n");
  EXPECT_EQ(bench_.calls.load(), 1);
}

TEST_F(ParcoursctlTest, MalformedJsonExits2WithoutSending) {
  RunResult r = Call({"BenchService/Echo", R"({"payload":)"});
  EXPECT_EQ(r.exit_code, 2) << Show(r);
  EXPECT_TRUE(absl::StrContains(r.err, "invalid JSON for parcours.bench.v1.EchoRequest")) << r.err;
  RunResult unknown_field = Call({"BenchService/Echo", R"({"nope": 1})"});
  EXPECT_EQ(unknown_field.exit_code, 2) << Show(unknown_field);
  EXPECT_TRUE(absl::StrContains(unknown_field.err, "nope")) << unknown_field.err;
  RunResult wrong_type = Call({"BenchService/Echo", R"({"payload": {}})"});
  EXPECT_EQ(wrong_type.exit_code, 2) << Show(wrong_type);
  EXPECT_EQ(bench_.calls.load(), 0);
}

TEST_F(ParcoursctlTest, UnknownMethodOrServiceExits2) {
  RunResult method = Call({"BenchService/Nope", "{}"});
  EXPECT_EQ(method.exit_code, 2) << Show(method);
  EXPECT_TRUE(absl::StrContains(method.err, "has no method 'Nope'")) << method.err;
  EXPECT_TRUE(absl::StrContains(method.err, "Echo")) << method.err;  // lists the real ones
  RunResult service = Call({"NoSuchService/Echo", "{}"});
  EXPECT_EQ(service.exit_code, 2) << Show(service);
  RunResult malformed = Call({"Echo", "{}"});
  EXPECT_EQ(malformed.exit_code, 2) << Show(malformed);
  EXPECT_EQ(bench_.calls.load(), 0);
}

TEST_F(ParcoursctlTest, UnreachableAddressIsUnavailable) {
  // A bound but non-listening socket: connections to it are refused, and no server can take
  // the port meanwhile.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  std::string addr = absl::StrCat("127.0.0.1:", ntohs(sa.sin_port));
  RunResult r = RunCtl({"call", "--addr", addr, "BenchService/Echo", "{}"});
  close(fd);
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "ERROR: UNAVAILABLE (14): ")) << r.err;
}

TEST_F(ParcoursctlTest, AddressFromEnvironment) {
  RunResult r = RunCtl({"call", "BenchService/Echo", R"({"payload":"env"})"}, "",
                    {{"PARCOURS_ADDR", addr_}});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(bench_.calls.load(), 1);
}

TEST_F(ParcoursctlTest, TimeoutGivesDeadlineExceeded) {
  auto start = std::chrono::steady_clock::now();
  RunResult r = Call({"--timeout", "200ms", "BenchService/Echo", R"({"payload":"slow"})"});
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "ERROR: DEADLINE_EXCEEDED (4): ")) << r.err;
  EXPECT_LT(elapsed, std::chrono::seconds(4));
  RunResult bad = Call({"--timeout", "soon", "BenchService/Echo", "{}"});
  EXPECT_EQ(bad.exit_code, 2) << Show(bad);
}

TEST_F(ParcoursctlTest, ServerStreamingPrintsOneDocumentPerMessage) {
  RunResult r = Call({"--protoset", protoset_, "StreamTestService/Count", R"({"value": 3})"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(r.out, "{\n  \"value\": 1\n}\n{\n  \"value\": 2\n}\n{\n  \"value\": 3\n}\n");
}

TEST_F(ParcoursctlTest, ServerStreamingErrorAfterMessages) {
  RunResult r = Call({"--protoset", protoset_, "StreamTestService/Count", R"({"value": 1000})"});
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_EQ(r.out, "{\n  \"value\": 1\n}\n{\n  \"value\": 2\n}\n");
  EXPECT_TRUE(absl::StartsWith(r.err, "ERROR: RESOURCE_EXHAUSTED (8): too many")) << r.err;
}

TEST_F(ParcoursctlTest, ClientStreamingReadsJsonObjectsFromStdin) {
  RunResult r = Call({"--protoset", protoset_, "StreamTestService/Sum"},
                     "{\"value\": 1}\n{\"value\": 2}\n{\n  \"value\": 39\n}\n");
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(r.out, "{\n  \"value\": 42\n}\n");

  RunResult bad = Call({"--protoset", protoset_, "StreamTestService/Sum"},
                       "{\"value\": 1}\n{\"value\": \"x\"}\n");
  EXPECT_EQ(bad.exit_code, 2) << Show(bad);
  EXPECT_TRUE(absl::StrContains(bad.err, "message #2")) << bad.err;
}

TEST_F(ParcoursctlTest, BidiStreaming) {
  RunResult r = Call({"--protoset", protoset_, "StreamTestService/Scale", "-"},
                     "{\"value\": 1}{\"value\": 2}");
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(r.out, "{\n  \"value\": 10\n}\n{\n  \"value\": 20\n}\n");
}

TEST(ParcoursctlCli, HelpAndUsageErrors) {
  RunResult help = RunCtl({"--help"});
  EXPECT_EQ(help.exit_code, 0) << Show(help);
  EXPECT_TRUE(absl::StrContains(help.out, "PARCOURS_ADDR")) << help.out;
  EXPECT_TRUE(absl::StrContains(help.out, "127.0.0.1:8080")) << help.out;

  RunResult unknown = RunCtl({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2) << Show(unknown);
  EXPECT_TRUE(absl::StrContains(unknown.err, "unknown command 'frobnicate'")) << unknown.err;
  EXPECT_TRUE(absl::StrContains(unknown.err, "Usage:")) << unknown.err;

  RunResult none = RunCtl({});
  EXPECT_EQ(none.exit_code, 2) << Show(none);

  RunResult option = RunCtl({"list", "--frob"});
  EXPECT_EQ(option.exit_code, 2) << Show(option);

  RunResult missing_value = RunCtl({"call", "BenchService/Echo", "--addr"});
  EXPECT_EQ(missing_value.exit_code, 2) << Show(missing_value);
}

#ifdef PARCOURSCTL_TEST_GATEWAY_AUTH
// `parcoursctl token` mints what the gateway's Authenticator accepts.
TEST(ParcoursctlToken, MintsTokensTheGatewayAccepts) {
  const std::string dir = parcours::testing::MakeTempDir("parcoursctl_token");
  const std::string ec_key = parcours::testing::NewEcP256KeyPem();
  const std::string rsa_key = parcours::testing::NewRsaKeyPem(2048);
  parcours::testing::WriteFile(dir + "/ec.key", ec_key);
  parcours::testing::WriteFile(dir + "/rsa.key", rsa_key);
  // The gateway's keys file: the RSA key first (kid "0" by position), then the EC key by name.
  parcours::testing::WriteFile(
      dir + "/keys.pem", absl::StrCat(parcours::testing::PublicKeyPem(rsa_key), "# kid: dev-ec\n",
                                      parcours::testing::PublicKeyPem(ec_key)));
  parcours::gateway::AuthConfig config;
  config.jwt_keys_file = dir + "/keys.pem";
  config.jwt_issuer = "https://auth.parcours.test";
  config.jwt_audience = "parcours-gateway";
  config.subject_digest_key = std::string(32, 's');
  parcours::SystemClock clock;
  auto auth = parcours::gateway::NewAuthenticator(config, clock);
  ASSERT_TRUE(auth.ok()) << auth.status();

  RunResult es = RunCtl({"token", "--key", dir + "/ec.key", "--kid", "dev-ec", "--principal",
                         "operator:OP-1", "--subject", "alice \"a\"", "--issuer",
                         "https://auth.parcours.test", "--ttl", "15m"});
  ASSERT_EQ(es.exit_code, 0) << Show(es);
  ASSERT_TRUE(absl::EndsWith(es.out, "\n"));
  const std::string es_token = es.out.substr(0, es.out.size() - 1);
  auto caller = (*auth)->VerifyToken(es_token);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->principal.ToString(), "operator:OP-1");
  // The subject claim came through with its quotes; not a plain id, it is audited as its keyed
  // digest.
  unsigned char digest[SHA256_DIGEST_LENGTH];
  unsigned int digest_len = 0;
  const std::string subject = "alice \"a\"";
  HMAC(EVP_sha256(), config.subject_digest_key.data(), static_cast<int>(config.subject_digest_key.size()),
       reinterpret_cast<const unsigned char*>(subject.data()), subject.size(), digest, &digest_len);
  EXPECT_EQ(caller->subject, absl::StrCat("sub-hmac:", absl::BytesToHexString(absl::string_view(
                                                           reinterpret_cast<const char*>(digest), 8))));
  // The header says ES256.
  std::string header;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(es_token.substr(0, es_token.find('.')), &header));
  EXPECT_TRUE(absl::StrContains(header, "\"alg\":\"ES256\"")) << header;

  // RSA, default kid "0", subject defaults to the principal.
  RunResult rs = RunCtl({"token", "--key", dir + "/rsa.key", "--principal", "national",
                         "--issuer", "https://auth.parcours.test"});
  ASSERT_EQ(rs.exit_code, 0) << Show(rs);
  caller = (*auth)->VerifyToken(rs.out.substr(0, rs.out.size() - 1));
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->principal.ToString(), "national");
  EXPECT_EQ(caller->subject, "national");

  // The default issuer (parcours-dev) is not this gateway's.
  RunResult other = RunCtl({"token", "--key", dir + "/rsa.key", "--principal", "national"});
  ASSERT_EQ(other.exit_code, 0) << Show(other);
  EXPECT_EQ((*auth)->VerifyToken(other.out.substr(0, other.out.size() - 1)).status().code(),
            absl::StatusCode::kUnauthenticated);

  // Usage errors: nothing printed on stdout, exit 2.
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"token", "--principal", "national"},
           {"token", "--key", dir + "/ec.key"},
           {"token", "--key", dir + "/ec.key", "--principal", "admin:1"},
           {"token", "--key", dir + "/ec.key", "--principal", "operator:"},
           {"token", "--key", dir + "/ec.key", "--principal", "national", "--ttl", "soon"},
           {"token", "--key", dir + "/ec.key", "--principal", "national", "--ttl", "-1h"},
           {"token", "--key", dir + "/missing.key", "--principal", "national"},
           {"token", "--key", dir + "/keys.pem", "--principal", "national"},  // public keys
           {"list", "--principal", "national"},
       }) {
    RunResult r = RunCtl(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ") << "\n" << Show(r);
    EXPECT_EQ(r.out, "") << absl::StrJoin(args, " ");
  }
}
#endif  // PARCOURSCTL_TEST_GATEWAY_AUTH

}  // namespace
