#include "common/config.h"

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace im::common {
namespace {

// Debian builds abseil with ABSL_OPTION_USE_STD_STRING_VIEW 0, so absl::string_view is its own
// type and std::string_view does not convert to it implicitly.
absl::string_view Absl(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

// Anything but a map at the top level would make every dotted key unreachable.
absl::Status CheckRoot(const YAML::Node& root, std::string_view source) {
  if (root.IsNull() || root.IsMap()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("config ", Absl(source), ": the top level must be a map of keys"));
}

const char* KindOf(const YAML::Node& node) {
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a sequence";
  return "a scalar";
}

std::string Quoted(std::string_view raw) {
  return absl::StrCat("\"", absl::CHexEscape(Absl(raw)), "\"");
}

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> items;
  for (absl::string_view item : absl::StrSplit(Absl(text), ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (!item.empty()) items.emplace_back(item);
  }
  return items;
}

}  // namespace

Config::EnvLookup Config::ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

absl::StatusOr<Config> Config::LoadFile(const std::string& path, EnvLookup env) {
  if (path.empty()) return Config(YAML::Node(), std::move(env));
  // yaml-cpp reads a directory as an empty document; say so instead of running on defaults.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("config ", path, ": is a directory"));
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config ", path, ": ", e.what()));
  }
  if (absl::Status status = CheckRoot(root, path); !status.ok()) return status;
  return Config(std::move(root), std::move(env));
}

absl::StatusOr<Config> Config::FromYamlString(std::string_view yaml, EnvLookup env) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", e.what()));
  }
  if (absl::Status status = CheckRoot(root, "string"); !status.ok()) return status;
  return Config(std::move(root), std::move(env));
}

std::string Config::EnvName(std::string_view key) {
  std::string name = "IM_";
  name.reserve(name.size() + key.size());
  for (char c : key) {
    // Dots, and anything else a shell would not take in a variable name, become underscores.
    name.push_back(absl::ascii_isalnum(static_cast<unsigned char>(c))
                       ? absl::ascii_toupper(static_cast<unsigned char>(c))
                       : '_');
  }
  return name;
}

YAML::Node Config::FindNode(std::string_view key) const {
  // Node::operator= would overwrite the node it refers to (it is yaml-cpp's value assignment),
  // so the walk rebinds with reset() and only ever uses the const operator[].
  YAML::Node node;
  node.reset(root_);
  for (absl::string_view part : absl::StrSplit(Absl(key), '.')) {
    // A scalar or sequence on the way makes the key absent; Lookup reports it as misplaced.
    if (!node.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& parent = node;
    YAML::Node child = parent[std::string(part.data(), part.size())];
    // A missing key yields yaml-cpp's "zombie" node, whose Type() throws; hand back a plain
    // undefined node instead so that callers may ask it anything.
    if (!child.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    node.reset(child);
  }
  return node;
}

std::optional<std::string> Config::Lookup(std::string_view key) {
  if (env_) {
    if (std::optional<std::string> value = env_(EnvName(key)); value.has_value()) return value;
  }
  const YAML::Node node = FindNode(key);
  if (!node.IsDefined()) {
    // Tells "gateway: 5" with gateway.port asked for apart from a key that is simply absent.
    for (size_t dot = key.find('.'); dot != std::string_view::npos; dot = key.find('.', dot + 1)) {
      const std::string_view prefix = key.substr(0, dot);
      const YAML::Node parent = FindNode(prefix);
      if (!parent.IsDefined() || parent.IsNull()) break;
      if (!parent.IsMap()) {
        AddError(key, absl::StrCat(KindOf(parent), " at ", Absl(prefix)),
                 absl::StrCat("a map at ", Absl(prefix)));
        break;
      }
    }
    return std::nullopt;
  }
  // `key:` or `key: ~` is YAML's null: treated as not set, so the default applies.
  if (node.IsNull()) return std::nullopt;
  if (!node.IsScalar()) {
    AddError(key, KindOf(node), "a scalar");
    return std::nullopt;
  }
  return node.Scalar();
}

void Config::AddError(std::string_view key, std::string_view value, std::string_view expected) {
  std::string source;
  if (env_) {
    const std::string env_name = EnvName(key);
    if (env_(env_name).has_value()) source = absl::StrCat(" (from ", env_name, ")");
  }
  errors_.push_back(
      absl::StrCat(Absl(key), source, ": got ", Absl(value), ", expected ", Absl(expected)));
}

std::string Config::GetString(std::string_view key, std::string_view default_value) {
  std::optional<std::string> value = Lookup(key);
  return value.has_value() ? *std::move(value) : std::string(default_value);
}

int64_t Config::GetInt(std::string_view key, int64_t default_value, int64_t min, int64_t max) {
  std::optional<std::string> value = Lookup(key);
  if (!value.has_value()) return default_value;
  int64_t parsed = 0;
  if (!absl::SimpleAtoi(*value, &parsed) || parsed < min || parsed > max) {
    AddError(key, Quoted(*value), absl::StrCat("an integer in [", min, ", ", max, "]"));
    return default_value;
  }
  return parsed;
}

bool Config::GetBool(std::string_view key, bool default_value) {
  std::optional<std::string> value = Lookup(key);
  if (!value.has_value()) return default_value;
  const std::string text = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*value));
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  AddError(key, Quoted(*value), "a boolean (true/false, 1/0, yes/no, on/off)");
  return default_value;
}

double Config::GetDouble(std::string_view key, double default_value, double min, double max) {
  std::optional<std::string> value = Lookup(key);
  if (!value.has_value()) return default_value;
  double parsed = 0;
  // Written as a negated range test so that NaN, which compares false with everything, fails.
  if (!absl::SimpleAtod(*value, &parsed) || !(parsed >= min && parsed <= max)) {
    AddError(key, Quoted(*value), absl::StrCat("a number in [", min, ", ", max, "]"));
    return default_value;
  }
  return parsed;
}

std::vector<std::string> Config::GetStringList(std::string_view key,
                                               const std::vector<std::string>& default_value) {
  const bool from_env = env_ && env_(EnvName(key)).has_value();
  const YAML::Node node = from_env ? YAML::Node(YAML::NodeType::Undefined) : FindNode(key);
  if (node.IsDefined() && node.IsMap()) {
    AddError(key, KindOf(node), "a sequence or a comma-separated string");
    return default_value;
  }
  if (node.IsDefined() && node.IsSequence()) {
    std::vector<std::string> items;
    for (const YAML::Node& item : node) {
      if (!item.IsScalar()) {
        AddError(key, absl::StrCat("an element that is ", KindOf(item)), "a sequence of scalars");
        return default_value;
      }
      const absl::string_view text = absl::StripAsciiWhitespace(item.Scalar());
      if (!text.empty()) items.emplace_back(text);
    }
    return items;
  }
  // The environment, a YAML scalar and an absent key all go the scalar way.
  std::optional<std::string> value = Lookup(key);
  return value.has_value() ? SplitList(*value) : default_value;
}

absl::Status Config::status() const {
  if (errors_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid configuration: ", absl::StrJoin(errors_, "; ")));
}

}  // namespace im::common
