#include "config/loader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "config/schema.hpp"

namespace keymesh::config {

namespace {

constexpr std::string_view env_prefix = "KEYMESH_";

std::string join(const std::vector<std::string>& items) {
  std::string result;
  for (const auto& item : items)
    result += (result.empty() ? "" : ", ") + item;
  return result;
}

std::string last_component(std::string_view name) {
  auto dot = name.rfind('.');
  return std::string{dot == std::string_view::npos ? name
                                                   : name.substr(dot + 1)};
}

/// "cluster" gives {"enabled", ..., "tls", "srv"}.
std::vector<std::string> short_names_of(std::string_view section) {
  std::vector<std::string> result;
  for (const auto& child : children_of(section))
    result.push_back(last_component(child));
  return result;
}

std::string short_children(std::string_view section) {
  return join(short_names_of(section));
}

/// The closest candidate within a few edits of `name`, if any.
std::optional<std::string> closest(std::string_view name,
                                   const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    auto distance = edit_distance(name, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

std::string kind_of(const YAML::Node& node) {
  if (node.IsMap())
    return "a map";
  if (node.IsSequence())
    return "a list";
  if (node.IsNull())
    return "nothing";
  return "a scalar";
}

std::string where(const std::string& source, const YAML::Node& node) {
  return source + ":" + std::to_string(node.Mark().line + 1);
}

std::chrono::milliseconds duration_of(const key_spec& spec, settings& value) {
  auto field = spec.field(value);
  if (auto secs = std::get_if<std::chrono::seconds*>(&field))
    return **secs;
  return *std::get<std::chrono::milliseconds*>(field);
}

/// One load: collects errors into `result` and remembers where each key's
/// value came from for the checks that relate two keys.
class loader {
public:
  explicit loader(load_result& result)
      : result_(result) {}

  void apply_yaml(const std::string& text, const std::string& source) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      error(source + ":" + std::to_string(e.mark.line + 1) + ":" +
            std::to_string(e.mark.column + 1) + ": invalid YAML: " + e.msg);
      return;
    } catch (const std::exception& e) {
      error(source + ": invalid YAML: " + e.what());
      return;
    }
    if (root.IsNull())
      return;
    if (!root.IsMap()) {
      error(where(source, root) +
            ": the top level must be a map of sections (" +
            join(children_of("")) + "), got " + kind_of(root));
      return;
    }
    try {
      walk(root, "", source);
    } catch (const std::exception& e) {
      error(source + ": cannot read YAML: " + e.what());
    }
  }

  void apply_env(const std::map<std::string, std::string>& env) {
    for (const auto& [name, text] : env) {
      if (name.compare(0, env_prefix.size(), env_prefix) != 0 ||
          std::find(reserved_environment.begin(), reserved_environment.end(),
                    name) != reserved_environment.end())
        continue;
      auto origin = "env " + name;
      auto spec = find_env(name);
      if (spec == nullptr) {
        unknown_env(origin, name);
        continue;
      }
      if (!spec->is_list()) {
        store(*spec, origin, assign(*spec, result_.value, text));
        continue;
      }
      std::vector<std::string> items;
      std::istringstream stream{text};
      for (std::string item; std::getline(stream, item, ',');) {
        auto first = item.find_first_not_of(" \t");
        if (first != std::string::npos)
          items.push_back(
              item.substr(first, item.find_last_not_of(" \t") - first + 1));
      }
      store(*spec, origin, assign_list(*spec, result_.value, items));
    }
  }

  void check_relations() {
    require("keys.default_token_ttl", relation::at_most, "keys.max_token_ttl");
    require("cluster.failure_timeout", relation::longer_than,
            "cluster.heartbeat");
    require("sessions.default_ttl", relation::at_most, "sessions.max_ttl");
    require("objects.default_ttl", relation::at_most, "objects.max_ttl");
    require("logout.retry_initial", relation::at_most, "logout.retry_max");
    require("logout.lease", relation::longer_than, "logout.timeout");
    auto& v = result_.value;
    if (v.sessions.posture == "durable" && v.database.driver == "sqlite"
        && v.cluster.enabled)
      error("sessions.posture: durable in a cluster needs a database every "
            "node shares (database.driver: mysql); each node's SQLite file "
            "would only hold the sessions it created");
    if (!v.cluster.static_peers_insecure_http)
      for (auto& url : v.cluster.static_peers)
        if (url.compare(0, 7, "http://") == 0)
          error("cluster.static_peers: " + url
                + " is plain http: anyone on the path can replace its keys. "
                  "Use https, or set cluster.static_peers_insecure_http: "
                  "true to accept plain http peers");
    if (!v.keys.encryption_key_file.empty() && v.cluster.enabled)
      error("keys.encryption_key_file: a clustered node never persists its "
            "private keys (peers keep verifying its tokens from their "
            "copies of its public keys); leave it empty when "
            "cluster.enabled is true");
  }

private:
  void error(std::string message) {
    result_.errors.push_back(std::move(message));
  }

  void value_error(const key_spec& spec, const std::string& origin,
                   const std::string& value, const std::string& problem) {
    error(origin + ": " + spec.name + ": invalid value \"" +
          (spec.secret ? "<redacted>" : value) + "\" (" + problem +
          "); allowed: " + allowed_text(spec));
  }

  void type_error(const key_spec& spec, const std::string& origin,
                  const std::string& expected, const YAML::Node& got) {
    error(origin + ": " + spec.name + ": expected " + expected + ", got " +
          kind_of(got) + "; allowed: " + allowed_text(spec));
    failed_.insert(spec.name);
  }

  void store(const key_spec& spec, const std::string& origin,
             const std::optional<config::value_error>& problem) {
    if (problem) {
      value_error(spec, origin, problem->value, problem->problem);
      failed_.insert(spec.name);
    } else {
      origins_[spec.name] = origin;
      failed_.erase(spec.name);
    }
  }

  void walk(const YAML::Node& map, const std::string& section,
            const std::string& source) {
    std::set<std::string> seen;
    for (const auto& pair : map) {
      const YAML::Node& key = pair.first;
      const YAML::Node& value = pair.second;
      auto origin = where(source, key);
      if (!key.IsScalar()) {
        error(origin + ": keys must be plain names, got " + kind_of(key));
        continue;
      }
      auto name = section.empty() ? key.Scalar() : section + "." + key.Scalar();
      if (!seen.insert(name).second) {
        error(origin + ": " + name + ": duplicate key");
      } else if (auto spec = find_key(name)) {
        from_yaml(*spec, value, origin, source);
      } else if (is_section(name)) {
        if (value.IsMap())
          walk(value, name, source);
        else if (!value.IsNull())
          error(origin + ": " + name + ": expected a map, got " +
                kind_of(value) + "; allowed keys: " + short_children(name));
      } else {
        unknown_key(origin, name, section);
      }
    }
  }

  void from_yaml(const key_spec& spec, const YAML::Node& value,
                 const std::string& origin, const std::string& source) {
    if (!spec.is_list()) {
      if (value.IsNull())
        store(spec, origin, assign(spec, result_.value, ""));
      else if (value.IsScalar())
        store(spec, origin, assign(spec, result_.value, value.Scalar()));
      else
        type_error(spec, origin, "a single value", value);
      return;
    }
    if (value.IsNull()) {
      store(spec, origin, assign_list(spec, result_.value, {}));
      return;
    }
    if (!value.IsSequence()) {
      type_error(spec, origin, "a list", value);
      return;
    }
    std::vector<std::string> items;
    for (const auto& item : value) {
      if (!item.IsScalar()) {
        type_error(spec, where(source, item), "a list of single values", item);
        return;
      }
      items.push_back(item.Scalar());
    }
    auto problem = assign_list(spec, result_.value, items);
    auto item_origin = origin;
    if (problem) {
      auto pos = std::find(items.begin(), items.end(), problem->value);
      if (pos != items.end())
        item_origin = where(source, value[pos - items.begin()]);
    }
    store(spec, problem ? item_origin : origin, problem);
  }

  void unknown_key(const std::string& origin, const std::string& name,
                   const std::string& section) {
    auto short_names = short_names_of(section);
    std::string hint;
    if (auto match = closest(last_component(name), short_names)) {
      auto full = section.empty() ? *match : section + "." + *match;
      hint = " (did you mean \"" + full + "\"?)";
    }
    error(origin + ": unknown key \"" + name + "\"" + hint + "; allowed " +
          (section.empty() ? "sections" : "keys in " + section) + ": " +
          short_children(section));
  }

  void unknown_env(const std::string& origin, const std::string& name) {
    std::vector<std::string> candidates;
    for (const auto& spec : schema())
      candidates.push_back(spec.env_name);
    std::string hint;
    if (auto match = closest(name, candidates))
      hint = " (did you mean " + *match + "?)";
    error(origin + ": unknown variable" + hint +
          "; KEYMESH_* variables must name a configuration key, as in "
          "KEYMESH_HTTP_LISTEN for http.listen");
  }

  std::string origin_of(const std::string& name) const {
    auto i = origins_.find(name);
    return i == origins_.end() ? "default" : i->second;
  }

  enum class relation { at_most, longer_than };

  /// Requires `constrained` to relate to `reference` as given. Blames
  /// `constrained` unless only `reference` was set explicitly.
  void require(const std::string& constrained_name, relation rel,
               const std::string& reference_name) {
    if (failed_.count(constrained_name) != 0 ||
        failed_.count(reference_name) != 0)
      return;
    const auto& constrained = *find_key(constrained_name);
    const auto& reference = *find_key(reference_name);
    auto lhs = duration_of(constrained, result_.value);
    auto rhs = duration_of(reference, result_.value);
    if (rel == relation::at_most ? lhs <= rhs : lhs > rhs)
      return;
    bool blame_reference = origins_.count(constrained_name) == 0 &&
                           origins_.count(reference_name) != 0;
    const auto& bad = blame_reference ? reference : constrained;
    const auto& other = blame_reference ? constrained : reference;
    std::string wanted;
    if (rel == relation::at_most)
      wanted = blame_reference ? "at least " : "at most ";
    else
      wanted = blame_reference ? "shorter than " : "longer than ";
    error(origin_of(bad.name) + ": " + bad.name + ": invalid value \"" +
          format_value(bad, result_.value) + "\" (" + other.name + " is " +
          format_value(other, result_.value) + ", from " +
          origin_of(other.name) + "); allowed: a duration " + wanted +
          other.name);
  }

  load_result& result_;
  std::map<std::string, std::string> origins_;
  std::set<std::string> failed_;
};

load_result run(const std::optional<std::string>& yaml_text,
                const std::map<std::string, std::string>& env,
                const std::string& source_name,
                std::optional<std::string> file_error) {
  load_result result;
  loader state{result};
  if (file_error)
    result.errors.push_back(std::move(*file_error));
  if (yaml_text)
    state.apply_yaml(*yaml_text, source_name);
  state.apply_env(env);
  state.check_relations();
  return result;
}

} // namespace

size_t edit_distance(std::string_view lhs, std::string_view rhs) {
  // rows[i][j]: distance between the first i chars of lhs and j of rhs.
  std::vector<std::vector<size_t>> rows(lhs.size() + 1,
                                        std::vector<size_t>(rhs.size() + 1));
  for (size_t i = 0; i <= lhs.size(); ++i)
    rows[i][0] = i;
  for (size_t j = 0; j <= rhs.size(); ++j)
    rows[0][j] = j;
  for (size_t i = 1; i <= lhs.size(); ++i) {
    for (size_t j = 1; j <= rhs.size(); ++j) {
      size_t cost = lhs[i - 1] == rhs[j - 1] ? 0 : 1;
      rows[i][j] = std::min(
          {rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lhs[i - 1] == rhs[j - 2] &&
          lhs[i - 2] == rhs[j - 1])
        rows[i][j] = std::min(rows[i][j], rows[i - 2][j - 2] + 1);
    }
  }
  return rows[lhs.size()][rhs.size()];
}

load_result load(const std::string& yaml_path,
                 const std::map<std::string, std::string>& env) {
  if (yaml_path.empty())
    return run(std::nullopt, env, "", std::nullopt);
  std::error_code ec;
  if (std::filesystem::is_directory(yaml_path, ec))
    return run(std::nullopt, env, yaml_path,
               "config file \"" + yaml_path + "\": is a directory");
  std::ifstream in{yaml_path, std::ios::binary};
  if (!in)
    return run(std::nullopt, env, yaml_path,
               "config file \"" + yaml_path +
                   "\": cannot be read: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return run(text.str(), env, yaml_path, std::nullopt);
}

load_result load_from_string(const std::string& yaml_text,
                             const std::map<std::string, std::string>& env,
                             const std::string& source_name) {
  return run(yaml_text, env, source_name, std::nullopt);
}

std::map<std::string, std::string> keymesh_environment(char** envp) {
  std::map<std::string, std::string> result;
  if (envp == nullptr)
    return result;
  for (auto entry = envp; *entry != nullptr; ++entry) {
    std::string_view text{*entry};
    auto equals = text.find('=');
    if (equals == std::string_view::npos ||
        text.compare(0, env_prefix.size(), env_prefix) != 0)
      continue;
    result.emplace(text.substr(0, equals), text.substr(equals + 1));
  }
  return result;
}

} // namespace keymesh::config
