// The HTTP API's OpenAPI 3.1 document (docs/openapi.yaml as JSON), embedded
// at build time (scripts/embed_openapi.py) and served at /api/openapi.json.
#pragma once

#include <string_view>

namespace keymesh::http {

/// The document as compact JSON.
std::string_view openapi_json();

} // namespace keymesh::http
