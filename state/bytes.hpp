// Little-endian fixed-width integers and length-prefixed strings, written
// to and read from a std::string: the binary stored forms of the state
// (snapshots, objects). The reader checks every length against the bytes
// that are left, so damaged input cannot make it read past the end or
// allocate what a length prefix claims.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace keymesh::state {

/// Appends X as sizeof(T) little-endian bytes.
template <class T>
void append_le(std::string& out, T x) {
  auto u = static_cast<std::make_unsigned_t<T>>(x);
  for (size_t i = 0; i < sizeof(T); ++i)
    out += static_cast<char>(static_cast<unsigned char>(u >> (8 * i)));
}

/// Appends S after its length as a little-endian Length.
template <class Length>
void append_text(std::string& out, std::string_view s) {
  append_le(out, static_cast<Length>(s.size()));
  out += s;
}

/// Reads what append_le and append_text wrote, from the front; each call
/// answers false (and consumes nothing) when too few bytes are left.
class le_reader {
public:
  explicit le_reader(std::string_view bytes) : rest_(bytes) {
  }

  template <class T>
  bool number(T& x) {
    if (rest_.size() < sizeof(T))
      return false;
    std::make_unsigned_t<T> u = 0;
    for (size_t i = 0; i < sizeof(T); ++i)
      u |= static_cast<std::make_unsigned_t<T>>(
             static_cast<unsigned char>(rest_[i]))
           << (8 * i);
    rest_.remove_prefix(sizeof(T));
    x = static_cast<T>(u);
    return true;
  }

  /// The next N bytes.
  bool take(uint64_t n, std::string& out) {
    if (n > rest_.size())
      return false;
    out.assign(rest_.substr(0, static_cast<size_t>(n)));
    rest_.remove_prefix(static_cast<size_t>(n));
    return true;
  }

  template <class Length>
  bool text(std::string& out) {
    auto saved = rest_;
    Length n = 0;
    if (number(n) && take(n, out))
      return true;
    rest_ = saved;
    return false;
  }

  std::string_view rest() const {
    return rest_;
  }

  size_t left() const {
    return rest_.size();
  }

private:
  std::string_view rest_;
};

} // namespace keymesh::state
