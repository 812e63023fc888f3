// Small files keymesh keeps in node.data_dir: the stable instance id and the
// key-id sequence. All functions here block on file I/O: call them at start-up
// or from blocking contexts, never on a hot path.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace keymesh::persistence {

struct storage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Creates the directory (mode 0700) if it does not exist.
void ensure_data_dir(const std::string& dir);

/// Returns the id stored in DIR/instance_id, creating a random one
/// ("km-" + 10 lowercase base32 characters) on first use.
std::string load_or_create_instance_id(const std::string& dir);

/// The 32-byte key in DIR/secrets.key (64 hex digits), made on first use:
/// a single node's key for sealing its secret rings.
std::string load_or_create_secrets_key(const std::string& dir);

/// The next free key sequence number stored in DIR/key_sequence (0 if none).
uint64_t read_key_sequence(const std::string& dir);

/// Stores N as the next free key sequence number (atomic replace).
void write_key_sequence(const std::string& dir, uint64_t n);

/// Writes CONTENT to PATH through a temporary file and rename, with MODE.
void write_file_atomically(const std::string& path, const std::string& content,
                           unsigned mode = 0600);

/// Reads a whole (small) file; throws storage_error naming the path.
std::string read_small_file(const std::string& path, size_t max_bytes = 1 << 20);

} // namespace keymesh::persistence
