// Checks on JSON request bodies shared by the route handlers: strict
// parsing, allowed members, short strings, and the token request.
#pragma once

#include <initializer_list>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "actors/messages.hpp"
#include "http/types.hpp"
#include "services/directory.hpp"
#include "state/session.hpp"

namespace keymesh::http {

using state::max_subject_bytes;
/// The user directory's limits of names and passwords.
using keymesh::max_name_bytes;
using keymesh::max_password_bytes;

response bad_request(std::string_view why);

/// Parses a JSON object body, or explains why not (in ERROR).
std::optional<nlohmann::json> parse_object(const request& req,
                                           response& error);

/// Checks that OBJ only has members from ALLOWED.
bool only_members(const nlohmann::json& obj,
                  std::initializer_list<const char*> allowed, response& error);

/// A string of 1 to 256 bytes.
bool valid_short_string(const nlohmann::json& v);

/// The member NAME of BODY if it is a string of 1 to MAX bytes.
std::optional<std::string> string_member(const nlohmann::json& body,
                                         const char* name, size_t max);

/// Builds the keystore's request from a POST /api/tokens body.
std::optional<token_request> parse_token_request(const nlohmann::json& body,
                                                 response& error);

} // namespace keymesh::http
