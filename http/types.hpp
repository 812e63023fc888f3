// HTTP message types shared by the Beast server and the request handlers,
// and the helpers that build keymesh's JSON responses.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace keymesh::http {

namespace bhttp = boost::beast::http;

using request = bhttp::request<bhttp::string_body>;
using response = bhttp::response<bhttp::string_body>;

/// Receives the one response to a request; may be called from any thread.
using responder = std::function<void(response)>;

/// A JSON response with the given status and body, never cached.
response json_response(bhttp::status status, std::string body);

/// keymesh's error format: {"error": CODE, "error_description": TEXT}.
response error_response(bhttp::status status, std::string_view code,
                        std::string_view description);

/// The error code keymesh uses for an HTTP status (e.g. 404 → "not_found").
std::string_view error_code_for(bhttp::status status);

/// error_response with the standard code for STATUS.
response error_response(bhttp::status status, std::string_view description);

} // namespace keymesh::http
