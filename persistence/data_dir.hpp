// Small files keymesh keeps in node.data_dir: the stable instance id, the
// key-id sequence, the members a clustered node has known. All functions here block on file I/O: call them at start-up
// or from blocking contexts, never on a hot path.
#pragma once

#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>

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

/// The 32-byte key in DIR/signing_keys.key (64 hex digits, mode 0600),
/// made on first use (then CREATED is set): the key a single node without
/// keys.encryption_key_file seals its signing keys with.
std::string load_or_create_signing_key(const std::string& dir,
                                       bool* created = nullptr);

/// The next free key sequence number stored in DIR/key_sequence (0 if none).
uint64_t read_key_sequence(const std::string& dir);

/// Stores N as the next free key sequence number (atomic replace).
void write_key_sequence(const std::string& dir, uint64_t n);

/// DIR/cluster-members: the peers a clustered node has seen.
std::string known_members_path(const std::string& dir);

/// The ids in a cluster-members file's TEXT: one a line, surrounding
/// whitespace trimmed, empty lines and '#' comments skipped.
std::set<std::string> parse_known_members(std::string_view text);

/// DIR/cluster-members read (empty when there is none); throws
/// storage_error naming the path when it cannot be read.
std::set<std::string> read_known_members(const std::string& dir);

/// Writes IDS to DIR/cluster-members (atomic replace) under a comment that
/// says how to forget a node.
void write_known_members(const std::string& dir,
                         const std::set<std::string>& ids);

/// Writes CONTENT to PATH through a temporary file and rename, with MODE.
void write_file_atomically(const std::string& path, const std::string& content,
                           unsigned mode = 0600);

/// Reads a whole (small) file; throws storage_error naming the path.
std::string read_small_file(const std::string& path, size_t max_bytes = 1 << 20);

} // namespace keymesh::persistence
