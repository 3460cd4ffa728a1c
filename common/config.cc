#include "common/config.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

extern char** environ;

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

// Levenshtein distance: how many one-character edits turn `a` into `b`.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

// " (nearest: gateway.listen)", or nothing when there is no candidate.
std::string NearestHint(std::string_view name, const std::vector<std::string>& candidates) {
  const std::string* nearest = nullptr;
  size_t best = std::numeric_limits<size_t>::max();
  for (const std::string& candidate : candidates) {
    // The distance is at least the difference in length: such a candidate cannot be nearer.
    const size_t length_gap = name.size() > candidate.size() ? name.size() - candidate.size()
                                                             : candidate.size() - name.size();
    if (length_gap >= best) continue;
    const size_t distance = EditDistance(name, candidate);
    if (distance < best) {
      best = distance;
      nearest = &candidate;
    }
  }
  return nearest == nullptr ? std::string() : absl::StrCat(" (nearest: ", *nearest, ")");
}

}  // namespace

Config::Environment Config::ProcessEnv() {
  Environment env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const size_t equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    env.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
  }
  return env;
}

absl::StatusOr<Config> Config::LoadFile(const std::string& path, Environment env) {
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

absl::StatusOr<Config> Config::FromYamlString(std::string_view yaml, Environment env) {
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

std::optional<std::string> Config::Env(std::string_view key) const {
  auto it = env_.find(EnvName(key));
  if (it == env_.end()) return std::nullopt;
  return it->second;
}

std::optional<Config::Raw> Config::Lookup(std::string_view key) {
  if (std::optional<std::string> value = Env(key); value.has_value()) {
    return Raw{*std::move(value), Source::kEnvironment};
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
  return Raw{node.Scalar(), Source::kFile};
}

void Config::AddError(std::string_view key, std::string_view value, std::string_view expected) {
  const std::string source =
      Env(key).has_value() ? absl::StrCat(" (from ", EnvName(key), ")") : std::string();
  errors_.push_back(
      absl::StrCat(Absl(key), source, ": got ", Absl(value), ", expected ", Absl(expected)));
}

void Config::Remember(std::string_view key, std::string value, Source source) {
  Setting& setting = settings_[std::string(key)];
  setting.value = std::move(value);
  setting.source = source;
}

std::string Config::GetString(std::string_view key, std::string_view default_value) {
  std::optional<Raw> raw = Lookup(key);
  std::string value = raw.has_value() ? std::move(raw->text) : std::string(default_value);
  Remember(key, value, raw.has_value() ? raw->source : Source::kDefault);
  return value;
}

std::string Config::GetSecret(std::string_view key, std::string_view default_value) {
  std::string value = GetString(key, default_value);
  settings_.find(key)->second.secret = true;
  return value;
}

int64_t Config::GetInt(std::string_view key, int64_t default_value, int64_t min, int64_t max) {
  std::optional<Raw> raw = Lookup(key);
  int64_t value = default_value;
  if (raw.has_value() && (!absl::SimpleAtoi(raw->text, &value) || value < min || value > max)) {
    AddError(key, Quoted(raw->text), absl::StrCat("an integer in [", min, ", ", max, "]"));
    value = default_value;
  }
  Remember(key, absl::StrCat(value), raw.has_value() ? raw->source : Source::kDefault);
  return value;
}

bool Config::GetBool(std::string_view key, bool default_value) {
  std::optional<Raw> raw = Lookup(key);
  bool value = default_value;
  if (raw.has_value()) {
    const std::string text = absl::AsciiStrToLower(absl::StripAsciiWhitespace(raw->text));
    if (text == "true" || text == "1" || text == "yes" || text == "on") {
      value = true;
    } else if (text == "false" || text == "0" || text == "no" || text == "off") {
      value = false;
    } else {
      AddError(key, Quoted(raw->text), "a boolean (true/false, 1/0, yes/no, on/off)");
    }
  }
  Remember(key, value ? "true" : "false", raw.has_value() ? raw->source : Source::kDefault);
  return value;
}

double Config::GetDouble(std::string_view key, double default_value, double min, double max) {
  std::optional<Raw> raw = Lookup(key);
  double value = default_value;
  // Written as a negated range test so that NaN, which compares false with everything, fails.
  if (raw.has_value() &&
      (!absl::SimpleAtod(raw->text, &value) || !(value >= min && value <= max))) {
    AddError(key, Quoted(raw->text), absl::StrCat("a number in [", min, ", ", max, "]"));
    value = default_value;
  }
  Remember(key, absl::StrCat(value), raw.has_value() ? raw->source : Source::kDefault);
  return value;
}

std::vector<std::string> Config::GetStringList(std::string_view key,
                                               const std::vector<std::string>& default_value) {
  std::vector<std::string> items = default_value;
  Source source = Source::kDefault;
  const YAML::Node node =
      Env(key).has_value() ? YAML::Node(YAML::NodeType::Undefined) : FindNode(key);
  if (node.IsDefined() && node.IsMap()) {
    AddError(key, KindOf(node), "a sequence or a comma-separated string");
  } else if (node.IsDefined() && node.IsSequence()) {
    items.clear();
    source = Source::kFile;
    for (const YAML::Node& item : node) {
      if (!item.IsScalar()) {
        AddError(key, absl::StrCat("an element that is ", KindOf(item)), "a sequence of scalars");
        items = default_value;
        break;
      }
      const absl::string_view text = absl::StripAsciiWhitespace(item.Scalar());
      if (!text.empty()) items.emplace_back(text);
    }
  } else if (std::optional<Raw> raw = Lookup(key); raw.has_value()) {
    // The environment, a YAML scalar and an absent key all go the scalar way.
    items = SplitList(raw->text);
    source = raw->source;
  }
  Remember(key, absl::StrJoin(items, ","), source);
  return items;
}

absl::Status Config::status() const {
  if (errors_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid configuration: ", absl::StrJoin(errors_, "; ")));
}

std::vector<std::string> Config::FileKeys() const {
  std::vector<std::string> keys;
  std::function<void(const YAML::Node&, const std::string&)> walk = [&](const YAML::Node& map,
                                                                        const std::string& prefix) {
    for (const auto& entry : map) {
      const std::string key = prefix + entry.first.as<std::string>();
      if (entry.second.IsMap() && entry.second.size() > 0) {
        walk(entry.second, key + ".");
      } else {
        keys.push_back(key);
      }
    }
  };
  if (root_.IsMap()) walk(root_, "");
  return keys;
}

absl::Status Config::CheckUnknownKeys() const {
  std::vector<std::string> known_keys, known_env, sections;
  for (const auto& [key, setting] : settings_) {
    known_keys.push_back(key);
    known_env.push_back(EnvName(key));
    sections.push_back(EnvName(key.substr(0, key.find('.'))) + "_");
  }
  std::vector<std::string> unknown;
  for (const std::string& key : FileKeys()) {
    if (settings_.count(key) > 0) continue;
    // An empty section ("gateway:" with nothing under it) holds no setting to misspell.
    const bool section_of_known = absl::c_any_of(
        known_keys, [&](const std::string& k) { return absl::StartsWith(k, key + "."); });
    if (section_of_known) continue;
    unknown.push_back(
        absl::StrCat("key ", key, " in the file is no setting", NearestHint(key, known_keys)));
  }
  for (const auto& variable : env_) {
    // A plain reference: clang does not let a lambda capture a structured binding (C++20).
    const std::string& name = variable.first;
    const bool ours =
        absl::c_any_of(sections, [&](const std::string& s) { return absl::StartsWith(name, s); });
    if (!ours || absl::c_linear_search(known_env, name)) continue;
    unknown.push_back(
        absl::StrCat("variable ", name, " overrides no setting", NearestHint(name, known_env)));
  }
  if (unknown.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown configuration: ", absl::StrJoin(unknown, "; ")));
}

std::string Config::EffectiveJson() const {
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  for (const auto& [key, setting] : settings_) {
    std::string source = "default";
    if (setting.source == Source::kFile) source = "file";
    if (setting.source == Source::kEnvironment) source = EnvName(key);
    std::string value = setting.value;
    if (setting.secret) value = value.empty() ? "(empty)" : "(set)";
    json[key] = {{"value", std::move(value)}, {"source", std::move(source)}};
  }
  // A value need not be UTF-8 (a file or a variable may hold any bytes); shown, not refused: the
  // dump is made at every start, and throwing there would take the binary down with it.
  return json.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace im::common
