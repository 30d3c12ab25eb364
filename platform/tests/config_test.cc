#include "platform/config.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace parcours {
namespace {

using ::testing::HasSubstr;

class ConfigTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const std::string& name : env_) unsetenv(name.c_str());
    for (const std::string& path : files_) unlink(path.c_str());
  }

  std::string WriteFile(const std::string& name, const std::string& content) {
    const std::string path =
        ::testing::TempDir() + "/parcours_config_test_" + std::to_string(getpid()) + "_" + name;
    std::ofstream(path, std::ios::binary) << content;
    files_.push_back(path);
    return path;
  }

  void SetEnv(const std::string& name, const std::string& value) {
    setenv(name.c_str(), value.c_str(), 1);
    env_.push_back(name);
  }

  std::vector<std::string> env_;
  std::vector<std::string> files_;
};

TEST_F(ConfigTest, FlattensNestedYaml) {
  const std::string path = WriteFile("nested.yaml", R"(
database:
  dsn: "sqlite::memory:"
  pool:
    size: 8
server:
  port: 8443
  shutdown_grace: 20s
  reflection: true
empty:
)");
  auto config = Config::Load(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetString("database.dsn"), "sqlite::memory:");
  EXPECT_EQ(*config->GetInt("database.pool.size", 0), 8);
  EXPECT_EQ(*config->GetInt("server.port", 0), 8443);
  EXPECT_EQ(*config->GetDuration("server.shutdown_grace", absl::ZeroDuration()), absl::Seconds(20));
  EXPECT_TRUE(*config->GetBool("server.reflection", false));
  EXPECT_FALSE(config->Has("database"));
  EXPECT_FALSE(config->Has("empty"));
  EXPECT_FALSE(config->Has("server.missing"));
  EXPECT_EQ(config->GetString("server.missing", "dflt"), "dflt");
  EXPECT_EQ(*config->GetInt("server.missing", 5), 5);
}

TEST_F(ConfigTest, PrecedenceYamlEnvOverride) {
  const std::string path = WriteFile("prec.yaml", R"(
prectest:
  a: yaml
  b: yaml
  c: yaml
  d: yaml
)");
  SetEnv("PARCOURS_PRECTEST_B", "env");
  SetEnv("PARCOURS_PRECTEST_C", "env");
  SetEnv("PARCOURS_PRECTEST_E", "env-only");
  auto config = Config::Load(path, {"prectest.c=override", "prectest.d=over=ride", "prectest.f="});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetString("prectest.a"), "yaml");
  EXPECT_EQ(config->GetString("prectest.b"), "env");
  EXPECT_EQ(config->GetString("prectest.c"), "override");
  EXPECT_EQ(config->GetString("prectest.d"), "over=ride");  // split at the first '='
  EXPECT_TRUE(config->Has("prectest.e"));                    // env-only key, found on read
  EXPECT_EQ(config->GetString("prectest.e"), "env-only");
  EXPECT_TRUE(config->Has("prectest.f"));
  EXPECT_EQ(config->GetString("prectest.f", "dflt"), "");
  EXPECT_EQ(config->GetString("prectest.g", "dflt"), "dflt");
  // values() reflects yaml + env + overrides for the keys it knows.
  EXPECT_EQ(config->values().at("prectest.b"), "env");
  EXPECT_EQ(config->values().at("prectest.c"), "override");
}

TEST_F(ConfigTest, EnvAppliesWithoutYaml) {
  SetEnv("PARCOURS_ENVONLY_PORT", "9000");
  auto config = Config::Load("");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetInt("envonly.port", 1), 9000);
  EXPECT_EQ(*config->GetInt("envonly.other", 1), 1);
}

TEST_F(ConfigTest, FromMapIgnoresEnvironment) {
  SetEnv("PARCOURS_FROMMAP_X", "env");
  Config config = Config::FromMap({{"frommap.x", "map"}});
  EXPECT_EQ(config.GetString("frommap.x"), "map");
  config.Set("frommap.y", "set");
  EXPECT_EQ(config.GetString("frommap.y"), "set");
}

TEST_F(ConfigTest, SetWinsOverEnvironment) {
  SetEnv("PARCOURS_SETTEST_X", "env");
  auto config = Config::Load("");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->GetString("settest.x"), "env");
  config->Set("settest.x", "set");
  EXPECT_EQ(config->GetString("settest.x"), "set");
}

TEST_F(ConfigTest, MissingFileIsNotFoundNamingPath) {
  const std::string path = ::testing::TempDir() + "/parcours_definitely_missing.yaml";
  auto config = Config::Load(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(path));
}

TEST_F(ConfigTest, RejectsBadYamlAndOverrides) {
  auto seq = Config::Load(WriteFile("seq.yaml", "server:\n  hosts:\n    - a\n    - b\n"));
  ASSERT_FALSE(seq.ok());
  EXPECT_EQ(seq.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(seq.status().message()), HasSubstr("server.hosts"));

  auto syntax = Config::Load(WriteFile("syntax.yaml", "a: [unclosed\n"));
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.status().code(), absl::StatusCode::kInvalidArgument);

  auto scalar = Config::Load(WriteFile("scalar.yaml", "just a string\n"));
  ASSERT_FALSE(scalar.ok());
  EXPECT_EQ(scalar.status().code(), absl::StatusCode::kInvalidArgument);

  auto dup = Config::Load(WriteFile("dup.yaml", "a.b: 1\na:\n  b: 2\n"));
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("a.b"));

  for (const char* bad : {"novalue", "=x"}) {
    auto o = Config::Load("", {bad});
    ASSERT_FALSE(o.ok()) << bad;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(ConfigTest, EmptyYamlIsEmptyConfig) {
  auto config = Config::Load(WriteFile("empty.yaml", "# nothing\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->values().empty());
}

TEST_F(ConfigTest, TypedGettersRejectBadValuesNamingKey) {
  Config config = Config::FromMap({{"n", "12x"}, {"b", "maybe"}, {"d", "20"}, {"ok.n", "-3"},
                                   {"ok.b", "off"}, {"ok.d", "1m30s"}});
  auto n = config.GetInt("n", 0);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(n.status().message()), HasSubstr("\"n\""));
  auto b = config.GetBool("b", false);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("\"b\""));
  auto d = config.GetDuration("d", absl::ZeroDuration());  // unitless: refused
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("\"d\""));

  EXPECT_EQ(*config.GetInt("ok.n", 0), -3);
  EXPECT_FALSE(*config.GetBool("ok.b", true));
  EXPECT_EQ(*config.GetDuration("ok.d", absl::ZeroDuration()), absl::Seconds(90));
}

TEST_F(ConfigTest, ReadSecretFileStripsOneNewline) {
  Config config = Config::FromMap({{"key_file", WriteFile("secret", "s3cr3t\n\n")},
                                   {"crlf_file", WriteFile("crlf", "abc\r\n")},
                                   {"raw_file", WriteFile("raw", "no-newline")}});
  EXPECT_EQ(*config.ReadSecretFile("key_file"), "s3cr3t\n");
  EXPECT_EQ(*config.ReadSecretFile("crlf_file"), "abc");
  EXPECT_EQ(*config.ReadSecretFile("raw_file"), "no-newline");
}

TEST_F(ConfigTest, ReadSecretFileErrors) {
  Config config = Config::FromMap(
      {{"missing_file", ::testing::TempDir() + "/parcours_no_such_secret"}});
  auto unset = config.ReadSecretFile("unset_file");
  ASSERT_FALSE(unset.ok());
  EXPECT_EQ(unset.status().code(), absl::StatusCode::kNotFound);
  auto missing = config.ReadSecretFile("missing_file");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("parcours_no_such_secret"));
  // An empty file (or a lone newline) is no key: refused, never read as "".
  for (const char* content : {"", "\n"}) {
    Config empty = Config::FromMap({{"empty_file", WriteFile("empty", content)}});
    auto read = empty.ReadSecretFile("empty_file");
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(read.status().message()), HasSubstr("empty"));
  }
}

TEST_F(ConfigTest, SecretPathFromEnvironment) {
  const std::string path = WriteFile("envsecret", "from-env\n");
  SetEnv("PARCOURS_SECRETTEST_KEY_FILE", path);
  auto config = Config::Load("");
  ASSERT_TRUE(config.ok());
  auto secret = config->ReadSecretFile("secrettest.key_file");
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(*secret, "from-env");
}

}  // namespace
}  // namespace parcours
