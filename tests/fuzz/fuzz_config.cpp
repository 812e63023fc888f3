// Fuzz target: the configuration loader (YAML text through the schema, its
// values, relations and error messages), and the first line as the value
// of an environment variable; the text as a cluster-members file of
// node.data_dir.
#include <cstdint>
#include <string>

#include "config/loader.hpp"
#include "config/render.hpp"
#include "persistence/data_dir.hpp"

using namespace keymesh;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text{reinterpret_cast<const char*>(data), size};
  auto result = config::load_from_string(text, {}, "fuzz.yaml");
  if (result.ok())
    config::render_effective(result.value); // what `config check` prints
  // The first line as the value of one environment variable (of a few
  // kinds: an address, a duration, a URL list, a size), chosen by its
  // length so that each input costs one more load, not four.
  static const char* names[] = {"KEYMESH_HTTP_LISTEN", "KEYMESH_KEYS_LEEWAY",
                                "KEYMESH_CLUSTER_STATIC_PEERS",
                                "KEYMESH_HTTP_MAX_BODY_BYTES"};
  auto line = text.substr(0, text.find('\n'));
  config::load_from_string("", {{names[line.size() % 4], line}}, "fuzz.yaml");
  for (auto& id : persistence::parse_known_members(text))
    if (id.empty() || id.front() == '#' || id.find('\n') != std::string::npos)
      __builtin_trap();
  return 0;
}
