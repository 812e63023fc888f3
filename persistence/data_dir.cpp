#include "persistence/data_dir.hpp"

#include "common/random.hpp"
#include "persistence/sealed.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

namespace keymesh::persistence {

namespace fs = std::filesystem;

namespace {

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

bool valid_instance_id(const std::string& id) {
  if (id.empty() || id.size() > 64)
    return false;
  for (unsigned char c : id)
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.')
      return false;
  return true;
}

} // namespace

void ensure_data_dir(const std::string& dir) {
  std::error_code err;
  if (fs::is_directory(dir, err))
    return;
  fs::create_directories(dir, err);
  if (err)
    throw storage_error("cannot create data directory " + dir + ": "
                        + err.message());
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, err);
}

std::string read_small_file(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw storage_error("cannot read " + path + ": " + std::strerror(errno));
  std::string content;
  char buf[4096];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    content.append(buf, static_cast<size_t>(in.gcount()));
    if (content.size() > max_bytes)
      throw storage_error(path + " is larger than "
                          + std::to_string(max_bytes) + " bytes");
  }
  return content;
}

void write_file_atomically(const std::string& path, const std::string& content,
                           unsigned mode) {
  auto tmp = path + ".tmp";
  // A leftover temporary file (or a link planted there) is removed, and the
  // new one is created exclusively, so it always gets MODE.
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  static_cast<mode_t>(mode));
  if (fd < 0)
    throw storage_error("cannot write " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < content.size()) {
    auto n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      auto msg = std::string{std::strerror(errno)};
      ::close(fd);
      throw storage_error("cannot write " + tmp + ": " + msg);
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw storage_error("cannot rename " + tmp + " to " + path + ": "
                        + std::strerror(errno));
}

std::string load_or_create_instance_id(const std::string& dir) {
  auto path = (fs::path{dir} / "instance_id").string();
  std::error_code err;
  if (fs::exists(path, err)) {
    auto id = trim(read_small_file(path, 1024));
    if (!valid_instance_id(id))
      throw storage_error(path + " does not hold a valid instance id (1-64 "
                                 "characters of A-Z a-z 0-9 _ . -)");
    return id;
  }
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  auto raw = random_bytes(10);
  std::string id = "km-";
  for (unsigned char c : raw)
    id += alphabet[c % 32];
  write_file_atomically(path, id + "\n", 0644);
  return id;
}

namespace {

/// The key in DIR/NAME, made (0600) when the file does not exist.
std::string load_or_create_key(const std::string& dir, const char* name,
                               bool* created) {
  auto path = (fs::path{dir} / name).string();
  std::error_code err;
  bool make = !fs::exists(path, err);
  if (make)
    write_file_atomically(path, new_encryption_key_hex() + "\n", 0600);
  if (created != nullptr)
    *created = make;
  return read_encryption_key(path);
}

} // namespace

std::string load_or_create_secrets_key(const std::string& dir) {
  return load_or_create_key(dir, "secrets.key", nullptr);
}

std::string load_or_create_signing_key(const std::string& dir, bool* created) {
  return load_or_create_key(dir, "signing_keys.key", created);
}

uint64_t read_key_sequence(const std::string& dir) {
  auto path = (fs::path{dir} / "key_sequence").string();
  std::error_code err;
  if (!fs::exists(path, err))
    return 0;
  auto text = trim(read_small_file(path, 1024));
  try {
    size_t used = 0;
    auto n = std::stoull(text, &used);
    if (used != text.size())
      throw std::invalid_argument("trailing characters");
    return n;
  } catch (const std::exception&) {
    throw storage_error(path + " does not hold a number");
  }
}

void write_key_sequence(const std::string& dir, uint64_t n) {
  write_file_atomically((fs::path{dir} / "key_sequence").string(),
                        std::to_string(n) + "\n", 0644);
}

std::string known_members_path(const std::string& dir) {
  return (fs::path{dir} / "cluster-members").string();
}

std::set<std::string> parse_known_members(std::string_view text) {
  std::set<std::string> out;
  while (!text.empty()) {
    auto end = text.find('\n');
    auto line = trim(std::string{text.substr(0, end)});
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!line.empty() && line.front() != '#')
      out.insert(std::move(line));
  }
  return out;
}

std::set<std::string> read_known_members(const std::string& dir) {
  auto path = known_members_path(dir);
  std::error_code err;
  if (!fs::exists(path, err))
    return {};
  return parse_known_members(read_small_file(path));
}

void write_known_members(const std::string& dir,
                         const std::set<std::string>& ids) {
  std::string text = "# The peers this node has seen in its cluster (kept "
                     "by keymesh: a decision\n# needs a majority of them "
                     "and this node). Remove a line to forget a node\n# "
                     "that left for good, then restart this node.\n";
  for (auto& id : ids)
    text += id + "\n";
  write_file_atomically(known_members_path(dir), text, 0644);
}

} // namespace keymesh::persistence
