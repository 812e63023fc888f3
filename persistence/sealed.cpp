#include "persistence/sealed.hpp"

#include "common/aead.hpp"
#include "common/digest.hpp"
#include "common/random.hpp"
#include "persistence/data_dir.hpp"

namespace keymesh::persistence {

std::string seal(const std::string& key, std::string_view plaintext,
                 std::string_view aad) {
  try {
    return aead_seal(key, plaintext, aad);
  } catch (const std::runtime_error& ex) {
    throw storage_error(ex.what());
  }
}

std::optional<std::string> unseal(const std::string& key,
                                  std::string_view sealed,
                                  std::string_view aad) {
  return aead_open(key, sealed, aad);
}

std::string read_encryption_key(const std::string& path) {
  auto text = read_small_file(path, 4096);
  auto end = text.find_first_of("\r\n");
  auto line = text.substr(0, end);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t'))
    line.pop_back();
  // 32 bytes in hex, like a SHA-256 digest.
  sha256_digest raw{};
  if (!parse_sha256_hex(line, raw))
    throw storage_error(path + " does not hold an encryption key: its first "
                               "line must be 64 hex digits (make one with "
                               "`keymesh keygen`)");
  return std::string{reinterpret_cast<const char*>(raw.data()), raw.size()};
}

std::string new_encryption_key_hex() {
  auto key = random_bytes(encryption_key_bytes);
  return to_hex(reinterpret_cast<const unsigned char*>(key.data()),
                key.size());
}

} // namespace keymesh::persistence
