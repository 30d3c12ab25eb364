#include "platform/config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "yaml-cpp/yaml.h"

namespace parcours {
namespace {

// Debian's Abseil is built with its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0).
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// "database.dsn" -> "PARCOURS_DATABASE_DSN".
std::string EnvName(std::string_view key) {
  std::string name = absl::StrCat("PARCOURS_", absl::AsciiStrToUpper(AV(key)));
  for (char& c : name) {
    if (c == '.') c = '_';
  }
  return name;
}

std::optional<std::string> GetEnv(std::string_view key) {
  const char* v = std::getenv(EnvName(key).c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

// Flattens nested maps into dotted keys. Null values are treated as unset.
absl::Status Flatten(const YAML::Node& node, const std::string& prefix,
                     std::map<std::string, std::string>& out) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return absl::OkStatus();
    case YAML::NodeType::Scalar: {
      if (prefix.empty()) {
        return absl::InvalidArgumentError("config: the top level must be a mapping of keys");
      }
      if (!out.emplace(prefix, node.Scalar()).second) {
        return absl::InvalidArgumentError(absl::StrCat("config key \"", prefix, "\" is set twice"));
      }
      return absl::OkStatus();
    }
    case YAML::NodeType::Sequence:
      return absl::InvalidArgumentError(
          absl::StrCat("config key \"", prefix.empty() ? "<top level>" : prefix,
                       "\": lists are not supported (use a comma-separated string)"));
    case YAML::NodeType::Map:
      for (const auto& kv : node) {
        if (!kv.first.IsScalar() || kv.first.Scalar().empty()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "config: keys must be non-empty strings (under \"", prefix, "\")"));
        }
        const std::string key =
            prefix.empty() ? kv.first.Scalar() : absl::StrCat(prefix, ".", kv.first.Scalar());
        if (absl::Status s = Flatten(kv.second, key, out); !s.ok()) return s;
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> Config::Load(const std::string& yaml_path,
                                    const std::vector<std::string>& overrides) {
  Config config;
  config.read_env_ = true;
  if (!yaml_path.empty()) {
    std::error_code ec;
    if (std::filesystem::is_directory(yaml_path, ec)) {
      return absl::FailedPreconditionError(
          absl::StrCat("config file ", yaml_path, " is a directory"));
    }
    std::ifstream in(yaml_path, std::ios::binary);
    if (!in) {
      const int err = errno;
      if (err == ENOENT || err == ENOTDIR) {
        return absl::NotFoundError(absl::StrCat("config file ", yaml_path, " not found"));
      }
      return absl::FailedPreconditionError(
          absl::StrCat("config file ", yaml_path, " cannot be read: ", std::strerror(err)));
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("config file ", yaml_path, ": ", e.what()));
    }
    std::map<std::string, std::string> flat;
    if (absl::Status s = Flatten(root, "", flat); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(yaml_path, ": ", s.message()));
    }
    config.values_ = std::move(flat);
  }
  // The environment overrides YAML keys (also consulted at lookup time for every other key).
  for (auto& [key, value] : config.values_) {
    if (std::optional<std::string> env = GetEnv(key)) value = std::move(*env);
  }
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("config override \"", o, "\" must have the form key=value"));
    }
    config.Set(o.substr(0, eq), o.substr(eq + 1));
  }
  return config;
}

Config Config::FromMap(std::map<std::string, std::string> values) {
  Config config;
  config.values_ = std::move(values);
  return config;
}

std::optional<std::string> Config::Lookup(std::string_view key) const {
  if (read_env_ && pinned_.find(key) == pinned_.end()) {
    if (std::optional<std::string> env = GetEnv(key)) return env;
  }
  auto it = values_.find(std::string(key));
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

bool Config::Has(std::string_view key) const { return Lookup(key).has_value(); }

std::string Config::GetString(std::string_view key, std::string_view default_value) const {
  std::optional<std::string> v = Lookup(key);
  return v ? *v : std::string(default_value);
}

absl::StatusOr<int64_t> Config::GetInt(std::string_view key, int64_t default_value) const {
  std::optional<std::string> v = Lookup(key);
  if (!v) return default_value;
  int64_t out = 0;
  if (!absl::SimpleAtoi(*v, &out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config key \"", AV(key), "\": \"", *v, "\" is not an integer"));
  }
  return out;
}

absl::StatusOr<bool> Config::GetBool(std::string_view key, bool default_value) const {
  std::optional<std::string> v = Lookup(key);
  if (!v) return default_value;
  const std::string s = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*v));
  if (s == "true" || s == "yes" || s == "on" || s == "1") return true;
  if (s == "false" || s == "no" || s == "off" || s == "0") return false;
  return absl::InvalidArgumentError(
      absl::StrCat("config key \"", AV(key), "\": \"", *v, "\" is not a boolean (true/false)"));
}

absl::StatusOr<absl::Duration> Config::GetDuration(std::string_view key,
                                                   absl::Duration default_value) const {
  std::optional<std::string> v = Lookup(key);
  if (!v) return default_value;
  absl::Duration d;
  if (!absl::ParseDuration(absl::StripAsciiWhitespace(*v), &d)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config key \"", AV(key), "\": \"", *v, "\" is not a duration (e.g. 500ms, 20s, 2m)"));
  }
  return d;
}

absl::StatusOr<std::string> Config::ReadSecretFile(std::string_view key) const {
  std::optional<std::string> path = Lookup(key);
  if (!path || path->empty()) {
    return absl::NotFoundError(absl::StrCat("config key \"", AV(key), "\" is not set"));
  }
  std::error_code ec;
  if (std::filesystem::is_directory(*path, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("secret file ", *path, " (config key \"", AV(key), "\") is a directory"));
  }
  std::ifstream in(*path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string what = absl::StrCat("secret file ", *path, " (config key \"", AV(key), "\")");
    if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(absl::StrCat(what, " not found"));
    if (err == EACCES) return absl::PermissionDeniedError(absl::StrCat(what, " is not readable"));
    return absl::FailedPreconditionError(
        absl::StrCat(what, " cannot be read: ", std::strerror(err)));
  }
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return absl::FailedPreconditionError(
        absl::StrCat("secret file ", *path, " (config key \"", AV(key), "\") cannot be read"));
  }
  if (!content.empty() && content.back() == '\n') {
    content.pop_back();
    if (!content.empty() && content.back() == '\r') content.pop_back();
  }
  // An empty key (a Secret not synced yet) would be a key anyone knows, or, replaced by random
  // bytes, a different key per replica: refused.
  if (content.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("secret file ", *path, " (config key \"", AV(key), "\") is empty"));
  }
  return content;
}

}  // namespace parcours
