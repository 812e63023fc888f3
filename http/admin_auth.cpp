#include "http/admin_auth.hpp"

#include <filesystem>
#include <sstream>

#include <openssl/crypto.h>

#include "common/base64url.hpp"
#include "persistence/data_dir.hpp"
#include "common/random.hpp"

namespace keymesh::http {

namespace {

constexpr size_t min_key_length = 16;
constexpr size_t max_key_length = 4096;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

} // namespace

std::string_view bearer_token(std::string_view authorization) {
  authorization = trim(authorization);
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size()
      || !iequals(authorization.substr(0, scheme.size()), scheme)
      || authorization[scheme.size()] != ' ')
    return {};
  return trim(authorization.substr(scheme.size() + 1));
}

admin_auth admin_auth::load(const std::string& path) {
  using persistence::storage_error;
  auto content = persistence::read_small_file(path, 1 << 20);
  admin_auth result;
  std::istringstream in{content};
  std::string raw;
  for (size_t line_no = 1; std::getline(in, raw); ++line_no) {
    auto line = trim(raw);
    if (line.empty() || line.front() == '#')
      continue;
    auto where = path + ":" + std::to_string(line_no) + ": ";
    constexpr std::string_view hash_prefix = "sha256:";
    if (line.substr(0, hash_prefix.size()) == hash_prefix) {
      sha256_digest d;
      if (!parse_sha256_hex(line.substr(hash_prefix.size()), d))
        throw storage_error(where + "a sha256: entry needs exactly 64 hex "
                                    "digits");
      result.hashes_.push_back(d);
      continue;
    }
    if (line.size() < min_key_length || line.size() > max_key_length)
      throw storage_error(where + "an admin key must be "
                          + std::to_string(min_key_length) + " to "
                          + std::to_string(max_key_length) + " characters");
    for (unsigned char c : line)
      if (c < 0x21 || c > 0x7e)
        throw storage_error(where + "an admin key may only hold printable "
                                    "ASCII without spaces");
    result.hashes_.push_back(sha256(line));
  }
  if (result.hashes_.empty())
    throw storage_error(path + ": holds no admin key");
  return result;
}

std::string admin_auth::ensure_default_file(const std::string& data_dir,
                                            bool& created) {
  auto path = (std::filesystem::path{data_dir} / "admin.keys").string();
  std::error_code err;
  created = false;
  if (std::filesystem::exists(path, err))
    return path;
  auto key = keymesh::base64url_encode(keymesh::random_bytes(32));
  persistence::write_file_atomically(
    path,
    "# keymesh admin keys: one key, or sha256:<hex SHA-256 of a key>, per "
    "line.\n"
      + key + "\n",
    0600);
  created = true;
  return path;
}

admin_auth::outcome admin_auth::check(std::string_view authorization) const {
  auto token = bearer_token(authorization);
  if (token.empty())
    return outcome::missing;
  auto presented = sha256(token);
  int matched = 0;
  for (auto& h : hashes_)
    matched |= CRYPTO_memcmp(h.data(), presented.data(), h.size()) == 0;
  return matched ? outcome::accepted : outcome::rejected;
}

} // namespace keymesh::http
