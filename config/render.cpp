#include "config/render.hpp"

#include <yaml-cpp/yaml.h>

#include "config/schema.hpp"

namespace keymesh::config {

namespace {

constexpr std::string_view redacted = "<redacted>";

void emit_value(YAML::Emitter& out, const key_spec& spec,
                const settings& value) {
  if (spec.is_list()) {
    settings copy = value;
    const auto& items = *std::get<std::vector<std::string>*>(spec.field(copy));
    if (items.empty())
      out << YAML::Flow;
    out << YAML::BeginSeq;
    for (const auto& item : items)
      out << item;
    out << YAML::EndSeq;
    return;
  }
  auto text = format_value(spec, value);
  if (spec.secret && !text.empty())
    text = redacted;
  out << text;
}

void emit_section(YAML::Emitter& out, const std::string& section,
                  const settings& value) {
  out << YAML::BeginMap;
  for (const auto& child : children_of(section)) {
    auto dot = child.rfind('.');
    out << YAML::Key
        << (dot == std::string::npos ? child : child.substr(dot + 1))
        << YAML::Value;
    if (auto spec = find_key(child))
      emit_value(out, *spec, value);
    else
      emit_section(out, child, value);
  }
  out << YAML::EndMap;
}

/// Keeps a cell inside its table column.
std::string cell(std::string text) {
  std::string result;
  for (char c : text) {
    if (c == '|')
      result += '\\';
    result += c == '\n' ? ' ' : c;
  }
  return result;
}

std::string code(const std::string& text) {
  return "`" + (text.empty() ? std::string{"\"\""} : text) + "`";
}

} // namespace

std::string render_effective(const settings& value) {
  YAML::Emitter out;
  emit_section(out, "", value);
  return "# keymesh effective configuration\n" + std::string{out.c_str()} +
         "\n";
}

std::string render_markdown_reference() {
  std::string result = "| Key | Type | Default | Environment | Description |\n"
                       "|-----|------|---------|-------------|-------------|\n";
  for (const auto& spec : schema()) {
    auto default_text = spec.default_text;
    if (spec.is_list() && default_text.empty())
      default_text = "[]";
    auto description = spec.description;
    if (spec.type != value_type::string && spec.type != value_type::path)
      description += " Allowed: " + allowed_text(spec) + ".";
    if (spec.secret)
      description += " Secret: shown as `" + std::string{redacted} + "`.";
    result += "| " + code(spec.name) + " | " + cell(type_name(spec)) + " | " +
              cell(code(default_text)) + " | " + code(spec.env_name) + " | " +
              cell(description) + " |\n";
  }
  return result;
}

} // namespace keymesh::config
