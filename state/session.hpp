// The session model: what a session holds, how it is stored in the
// `sessions` keyspace (compact JSON), the subject index entries in the
// `subjects` keyspace, and the checks on what clients send.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace keymesh::state {

inline constexpr const char* sessions_keyspace = "sessions";
/// Keys "<sub>\x1f<sid>", partitioned by the subject, so one partition
/// lists all of a subject's sessions.
inline constexpr const char* subjects_keyspace = "subjects";

/// The longest subject, client id, attribute name or revoked value.
inline constexpr size_t max_subject_bytes = 256;

/// The most clients that may take part in one session.
inline constexpr size_t max_session_clients = 64;

struct session {
  std::string sid;
  std::string sub;
  std::string client_id;
  /// Unix ms.
  int64_t created_at = 0;
  int64_t expires_at = 0;
  int64_t last_seen = 0;
  /// Seconds; 0: no idle timeout.
  int64_t idle_timeout = 0;
  std::map<std::string, std::string> attributes;
  /// The relying parties that took part (client_id -> the sid the client
  /// was given, empty: this session's sid); each is told over back-channel
  /// logout when the session ends. CLIENT_ID takes part without being
  /// listed here.
  std::map<std::string, std::string> clients;

  /// Every participating client with the sid its logout token carries.
  std::map<std::string, std::string> participants() const;

  /// When the record ends: the absolute expiry or the idle deadline.
  int64_t record_expiry() const;
};

/// 128 random bits, base64url (22 characters).
std::string new_session_id();

/// Whether TEXT can be a session id (22 base64url characters); anything
/// else is refused before it reaches a shard.
bool valid_session_id(std::string_view text);

/// The stored form (compact JSON).
std::string encode_session(const session& s);

std::optional<session> decode_session(std::string_view stored);

/// The API form: JSON with times in Unix seconds.
std::string session_json(const session& s);

/// Why CLIENTS cannot be a session's participants (too many, an empty or
/// over-long client_id or sid, text that is not UTF-8), or empty.
std::string clients_problem(const std::map<std::string, std::string>& clients);

/// Total bytes of attribute names and values.
size_t attribute_bytes(const std::map<std::string, std::string>& attrs);

std::string subject_index_key(std::string_view sub, std::string_view sid);

/// The sid of a subject index key.
std::string_view sid_of_index_key(std::string_view key);

} // namespace keymesh::state
