// Fuzz target: the configuration loader (YAML text through the schema, its
// values, relations and error messages), and the same text as the value of
// a few environment variables.
#include <cstdint>
#include <string>

#include "config/loader.hpp"
#include "config/render.hpp"

using namespace keymesh;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text{reinterpret_cast<const char*>(data), size};
  auto result = config::load_from_string(text, {}, "fuzz.yaml");
  if (result.ok())
    config::render_effective(result.value); // what `config check` prints
  auto line = text.substr(0, text.find('\n'));
  for (auto* name :
       {"KEYMESH_HTTP_LISTEN", "KEYMESH_KEYS_LEEWAY",
        "KEYMESH_CLUSTER_STATIC_PEERS", "KEYMESH_HTTP_MAX_BODY_BYTES"})
    config::load_from_string("", {{name, line}}, "fuzz.yaml");
  return 0;
}
