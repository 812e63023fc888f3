// The guides quote example programs (docs/embedding.md: "<!-- quote FILE
// [TAG] -->" before a code block); each quote must be the part of FILE
// between its two "// [TAG]" lines, less their common indentation. The
// examples are built and run by CTest, so a guide that quotes them cannot
// show code that no longer compiles or works.
#define CAF_SUITE doc_quotes
#include "caf/test/unit_test.hpp"

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string source_dir() {
  auto* dir = std::getenv("KEYMESH_SOURCE_DIR");
  return dir != nullptr ? dir : KEYMESH_TEST_SOURCE_DIR;
}

std::string read_text(const std::string& path) {
  std::ifstream in{path};
  if (!in.good())
    CAF_FAIL("cannot read " << path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

/// The lines between the two "// [TAG]" lines of FILE, dedented.
std::string region(const std::string& file, const std::string& tag) {
  auto lines = lines_of(read_text(source_dir() + "/" + file));
  std::vector<size_t> marks;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto first = lines[i].find_first_not_of(' ');
    if (first != std::string::npos
        && lines[i].compare(first, std::string::npos, "// [" + tag + "]")
             == 0)
      marks.push_back(i);
  }
  if (marks.size() != 2)
    CAF_FAIL(file << " must mark [" << tag << "] twice");
  size_t indent = std::string::npos;
  for (size_t i = marks[0] + 1; i < marks[1]; ++i)
    if (auto n = lines[i].find_first_not_of(' '); n != std::string::npos)
      indent = std::min(indent, n);
  std::string out;
  for (size_t i = marks[0] + 1; i < marks[1]; ++i)
    out += (lines[i].size() > indent ? lines[i].substr(indent) : "") + "\n";
  return out;
}

} // namespace

CAF_TEST(every_quote_in_the_embedding_guide_matches_its_example) {
  auto guide = read_text(source_dir() + "/docs/embedding.md");
  std::regex quote{R"(<!-- quote (\S+) \[([A-Za-z0-9_-]+)\] -->\n```cpp\n)"};
  size_t quotes = 0;
  for (std::sregex_iterator it{guide.begin(), guide.end(), quote}, end;
       it != end; ++it) {
    auto body_start = static_cast<size_t>(it->position(0) + it->length(0));
    auto body_end = guide.find("```\n", body_start);
    CAF_REQUIRE(body_end != std::string::npos);
    auto shown = guide.substr(body_start, body_end - body_start);
    auto file = (*it)[1].str();
    auto tag = (*it)[2].str();
    CAF_MESSAGE("quote of " << file << " [" << tag << "]");
    CAF_CHECK_EQUAL(shown, region(file, tag));
    ++quotes;
  }
  // The guide quotes the sessions example twice at least: a test that
  // found no quote would prove nothing.
  CAF_CHECK_GREATER_OR_EQUAL(quotes, 2u);
}
