// mTLS between services over real sockets: a ServerRunner configured with server.tls_* keys and
// clients made by MakeChannel, with a CA and certificates generated in the test.
#include "platform/tls.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parcours/bench/v1/bench.grpc.pb.h"
#include "platform/config.h"
#include "platform/server.h"
#include "platform/testing/health_client.h"
#include "platform/testing/pki.h"
#include "platform/testing/status_macros.h"

namespace parcours {
namespace {

using ::parcours::bench::v1::BenchService;
using ::parcours::bench::v1::EchoRequest;
using ::parcours::bench::v1::EchoResponse;
using ::testing::HasSubstr;

constexpr char kGateway[] = "spiffe://parcours.fr/service/gateway";
constexpr char kOther[] = "spiffe://parcours.fr/service/other";

// Answers with the peer's URI SANs as the API port sees them.
class PeerEcho final : public BenchService::Service {
 public:
  grpc::Status Echo(grpc::ServerContext* context, const EchoRequest* request,
                    EchoResponse* response) override {
    response->set_payload(absl::StrCat(request->payload(), "|",
                                       absl::StrJoin(PeerUriSans(*context->auth_context()), ",")));
    return grpc::Status::OK;
  }
};

struct Pki {
  std::string dir;
  std::string ca, server_cert, server_key;
  std::string gateway_cert, gateway_key;
  std::string other_cert, other_key;
  std::string foreign_cert, foreign_key;  // gateway's identity, signed by another CA
};

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new Pki;
    Pki& p = *pki_;
    p.dir = testing::MakeTempDir("tls_test");
    testing::TestCa ca;
    testing::CertSpec server;
    server.common_name = "referential-svc";
    server.dns = {"referential-svc", "localhost"};
    server.ips = {"127.0.0.1"};
    server.client_auth = false;
    testing::CertSpec gateway;
    gateway.common_name = "gateway";
    gateway.uris = {kGateway};
    testing::CertSpec other = gateway;
    other.common_name = "other";
    other.uris = {kOther};
    auto write = [&](const std::string& name, const std::string& content) {
      const std::string path = absl::StrCat(p.dir, "/", name);
      testing::WriteFile(path, content);
      return path;
    };
    p.ca = write("ca.pem", ca.cert_pem());
    auto s = ca.Issue(server);
    p.server_cert = write("server.pem", s.cert_pem);
    p.server_key = write("server.key", s.key_pem);
    auto g = ca.Issue(gateway);
    p.gateway_cert = write("gateway.pem", g.cert_pem);
    p.gateway_key = write("gateway.key", g.key_pem);
    auto o = ca.Issue(other);
    p.other_cert = write("other.pem", o.cert_pem);
    p.other_key = write("other.key", o.key_pem);
    testing::TestCa foreign_ca("Foreign CA");
    auto f = foreign_ca.Issue(gateway);
    p.foreign_cert = write("foreign.pem", f.cert_pem);
    p.foreign_key = write("foreign.key", f.key_pem);
  }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  // A runner with mTLS restricted to the gateway unless `extra` says otherwise.
  std::unique_ptr<ServerRunner> StartServer(std::map<std::string, std::string> extra = {},
                                            bool expect_ok = true) {
    std::map<std::string, std::string> values = {
        {"server.tls_cert_file", pki_->server_cert},
        {"server.tls_key_file", pki_->server_key},
        {"server.tls_client_ca_file", pki_->ca},
        {"server.allowed_client_identities", kGateway},
        {"server.metrics_listen", ""},
    };
    for (auto& [k, v] : extra) values[k] = v;
    auto options = ServerOptions::FromConfig(Config::FromMap(values), "tls-test");
    EXPECT_TRUE(options.ok()) << options.status();
    if (!options.ok()) return nullptr;
    auto runner = std::make_unique<ServerRunner>(*options);
    runner->AddService(&service_);
    absl::Status started = runner->Start();
    EXPECT_EQ(started.ok(), expect_ok) << started;
    return runner;
  }

  // A client channel from "backend.*" keys.
  std::shared_ptr<grpc::Channel> Channel(int port, const std::string& cert, const std::string& key,
                                         std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> values = {
        {"backend.address", absl::StrCat("127.0.0.1:", port)},
        {"backend.tls_ca_file", pki_->ca},
    };
    if (!cert.empty()) {
      values["backend.tls_cert_file"] = cert;
      values["backend.tls_key_file"] = key;
    }
    for (auto& [k, v] : extra) values[k] = v;
    auto channel = MakeChannel(Config::FromMap(values), "backend");
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }

  static grpc::Status Echo(const std::shared_ptr<grpc::Channel>& channel, std::string* payload) {
    auto stub = BenchService::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    EchoRequest request;
    request.set_payload("hi");
    EchoResponse response;
    grpc::Status status = stub->Echo(&context, request, &response);
    *payload = response.payload();
    return status;
  }

  static Pki* pki_;
  PeerEcho service_;
};
Pki* TlsTest::pki_ = nullptr;

TEST_F(TlsTest, AllowedClientCertificateIsServed) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  std::string payload;
  grpc::Status status = Echo(Channel(server->port(), pki_->gateway_cert, pki_->gateway_key), &payload);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(payload, absl::StrCat("hi|", kGateway));
}

TEST_F(TlsTest, ChannelUsesRoundRobin) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto channel = Channel(server->port(), pki_->gateway_cert, pki_->gateway_key);
  std::string payload;
  ASSERT_TRUE(Echo(channel, &payload).ok());
  EXPECT_EQ(channel->GetLoadBalancingPolicyName(), "round_robin");
}

TEST_F(TlsTest, OtherIdentityFromTheSameCaIsRefused) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  std::string payload;
  grpc::Status status = Echo(Channel(server->port(), pki_->other_cert, pki_->other_key), &payload);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  EXPECT_EQ(status.error_message(), "client identity not allowed");
}

TEST_F(TlsTest, ClientWithoutCertificateFails) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  std::string payload;
  grpc::Status status = Echo(Channel(server->port(), "", ""), &payload);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, CertificateFromAnotherCaFails) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  std::string payload;
  grpc::Status status =
      Echo(Channel(server->port(), pki_->foreign_cert, pki_->foreign_key), &payload);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, PlaintextClientFails) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto channel = MakeChannel(
      Config::FromMap({{"backend.address", absl::StrCat("127.0.0.1:", server->port())}}),
      "backend");
  ASSERT_OK(channel.status());
  std::string payload;
  grpc::Status status = Echo(*channel, &payload);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, AdminHealthStaysPlaintext) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto admin = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->admin_port()),
                                   grpc::InsecureChannelCredentials());
  testing::ServingStatus serving;
  grpc::Status status = testing::CheckHealth(admin, "", &serving);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(serving, testing::ServingStatus::kServing);
  // The API port's health answers the allowed client only.
  auto api = Channel(server->port(), pki_->gateway_cert, pki_->gateway_key);
  status = testing::CheckHealth(api, "", &serving);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(serving, testing::ServingStatus::kServing);
}

TEST_F(TlsTest, ServerNameIsVerified) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  std::string payload;
  // The certificate names referential-svc, localhost and 127.0.0.1.
  EXPECT_TRUE(Echo(Channel(server->port(), pki_->gateway_cert, pki_->gateway_key,
                           {{"backend.tls_server_name", "referential-svc"}}),
                   &payload)
                  .ok());
  grpc::Status status = Echo(Channel(server->port(), pki_->gateway_cert, pki_->gateway_key,
                                     {{"backend.tls_server_name", "evaluation-svc"}}),
                             &payload);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, OptionalClientCertificate) {
  auto server = StartServer({{"server.allowed_client_identities", ""},
                             {"server.tls_client_auth", "optional"}});
  ASSERT_NE(server, nullptr);
  std::string payload;
  ASSERT_TRUE(Echo(Channel(server->port(), "", ""), &payload).ok());
  EXPECT_EQ(payload, "hi|");
  ASSERT_TRUE(Echo(Channel(server->port(), pki_->other_cert, pki_->other_key), &payload).ok());
  EXPECT_EQ(payload, absl::StrCat("hi|", kOther));
  // Presented certificates are still verified.
  EXPECT_FALSE(Echo(Channel(server->port(), pki_->foreign_cert, pki_->foreign_key), &payload).ok());
}

TEST_F(TlsTest, AnyClientOfTheCaWithoutAllowList) {
  auto server = StartServer({{"server.allowed_client_identities", ""}});
  ASSERT_NE(server, nullptr);
  std::string payload;
  ASSERT_TRUE(Echo(Channel(server->port(), pki_->other_cert, pki_->other_key), &payload).ok());
  EXPECT_FALSE(Echo(Channel(server->port(), "", ""), &payload).ok());
}

TEST_F(TlsTest, ServerTlsWithoutClientAuth) {
  auto server = StartServer({{"server.tls_client_ca_file", ""},
                             {"server.allowed_client_identities", ""}});
  ASSERT_NE(server, nullptr);
  std::string payload;
  ASSERT_TRUE(Echo(Channel(server->port(), "", ""), &payload).ok());
  EXPECT_EQ(payload, "hi|");
}

TEST_F(TlsTest, MismatchedKeyFailsStart) {
  auto server = StartServer({{"server.tls_key_file", pki_->gateway_key}}, /*expect_ok=*/false);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->port(), 0);
  auto missing = StartServer({{"server.tls_client_ca_file", pki_->dir + "/missing.pem"}},
                             /*expect_ok=*/false);
  ASSERT_NE(missing, nullptr);
}

TEST(TlsConfigTest, ServerKeys) {
  auto none = ServerTlsOptions::FromConfig(Config::FromMap({}));
  ASSERT_OK(none.status());
  EXPECT_FALSE(none->enabled());

  auto full = ServerTlsOptions::FromConfig(
      Config::FromMap({{"server.tls_cert_file", "c"},
                       {"server.tls_key_file", "k"},
                       {"server.tls_client_ca_file", "ca"},
                       {"server.allowed_client_identities", " spiffe://a/x , spiffe://a/y,"}}));
  ASSERT_OK(full.status());
  EXPECT_TRUE(full->enabled());
  EXPECT_EQ(full->client_auth, ServerTlsOptions::ClientAuth::kRequire);
  EXPECT_THAT(full->allowed_client_identities, ::testing::ElementsAre("spiffe://a/x", "spiffe://a/y"));

  struct Bad {
    std::map<std::string, std::string> values;
    const char* key;
  };
  const std::vector<Bad> bad = {
      {{{"server.tls_cert_file", "c"}}, "server.tls_cert_file"},
      {{{"server.tls_client_ca_file", "ca"}}, "server.tls_client_ca_file"},
      {{{"server.tls_cert_file", "c"}, {"server.tls_key_file", "k"},
        {"server.allowed_client_identities", "spiffe://a/x"}},
       "server.allowed_client_identities"},
      {{{"server.tls_cert_file", "c"}, {"server.tls_key_file", "k"},
        {"server.tls_client_ca_file", "ca"}, {"server.tls_client_auth", "sometimes"}},
       "server.tls_client_auth"},
      {{{"server.tls_cert_file", "c"}, {"server.tls_key_file", "k"},
        {"server.tls_client_ca_file", "ca"}, {"server.tls_client_auth", "optional"},
        {"server.allowed_client_identities", "spiffe://a/x"}},
       "server.allowed_client_identities"},
  };
  for (const Bad& b : bad) {
    auto o = ServerTlsOptions::FromConfig(Config::FromMap(b.values));
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << b.key;
    EXPECT_THAT(std::string(o.status().message()), HasSubstr(b.key));
  }
  // ServerOptions::FromConfig reads them too.
  auto server = ServerOptions::FromConfig(
      Config::FromMap({{"server.tls_cert_file", "c"}, {"server.tls_key_file", "k"}}), "x");
  ASSERT_OK(server.status());
  EXPECT_EQ(server->tls.cert_file, "c");
  EXPECT_EQ(ServerOptions::FromConfig(Config::FromMap({{"server.tls_cert_file", "c"}}), "x")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TlsConfigTest, ChannelKeys) {
  auto plain = ChannelOptions::FromConfig(Config::FromMap({}), "referential", "127.0.0.1:1");
  ASSERT_OK(plain.status());
  EXPECT_EQ(plain->address, "127.0.0.1:1");
  EXPECT_TRUE(plain->tls_ca_file.empty());

  EXPECT_EQ(ChannelOptions::FromConfig(Config::FromMap({}), "referential").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChannelOptions::FromConfig(Config::FromMap({{"referential.address", "a:1"},
                                                        {"referential.tls_cert_file", "c"},
                                                        {"referential.tls_key_file", "k"}}),
                                       "referential")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChannelOptions::FromConfig(Config::FromMap({{"referential.address", "a:1"},
                                                        {"referential.tls_ca_file", "ca"},
                                                        {"referential.tls_cert_file", "c"}}),
                                       "referential")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  // A CA file that does not exist fails when the channel is made, not at the first call.
  auto channel = MakeChannel(Config::FromMap({{"referential.address", "a:1"},
                                              {"referential.tls_ca_file", "/nonexistent/ca.pem"}}),
                             "referential");
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace parcours
