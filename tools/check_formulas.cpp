// check_formulas: keeps the formula map (docs/formulas.md) true to the code.
//
// Every formula of the five seed articles has an ID, F0.1 ... F4.10. The map
// promises, for each ID, a row of docs/formulas.md whose `file:line` links
// point at code carrying the ID in a `// [ID]` comment (on that line or one of
// the three above it), and a test that names the ID. This program checks all
// of it, both ways:
//
//   1. every ID has exactly one row, and every row is a known ID;
//   2. every `file:line` link of a row exists and carries [ID] there;
//   3. every [ID] in a comment of core/, autograd/, layers/ or tutorials/ has a row;
//   4. every ID is named in at least one file of tests/;
//   5. no `file:line` link anywhere under docs/ (or in README.md) points past
//      the end of its file, or at a file that does not exist;
//   6. every .cpp file of core/, autograd/ and layers/ that computes a formula
//      is linked from the formula's row: where a formula has plain code and a
//      fast twin (the reference and fast bodies of one function), the row links
//      to both. A line computes the formulas whose tags open the comment above
//      it, `// [F2.3] [F2.4] ...`; an [ID] later in a comment only mentions it.
//      (gdb's break-formula, tools/gdb/attograd.py, stops on the same lines.)
//
// Run from the repository root (make test does): prints each problem and
// exits 1, or prints a summary and exits 0.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// The seeds' formula IDs: seed 0 has F0.1..F0.10, seed 1 F1.1..F1.9, ...
std::vector<std::string> all_ids() {
  const int count_per_seed[] = {10, 9, 8, 6, 10};
  std::vector<std::string> ids;
  for (int seed = 0; seed < 5; ++seed)
    for (int n = 1; n <= count_per_seed[seed]; ++n)
      ids.push_back("F" + std::to_string(seed) + "." + std::to_string(n));
  return ids;
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> split_cells(const std::string& row) {
  // "| a | b |" -> {"a", "b"}; a `|` inside backquotes or after a backslash
  // (as in $\|x\|$) does not split.
  std::vector<std::string> cells;
  std::string cell;
  bool in_code = false;
  for (size_t i = 1; i < row.size(); ++i) {
    char c = row[i];
    if (c == '`') in_code = !in_code;
    if (c == '|' && !in_code && row[i - 1] != '\\') {
      cells.push_back(cell);
      cell.clear();
    } else {
      cell += c;
    }
  }
  return cells;
}

struct Problems {
  std::vector<std::string> list;
  void add(const std::string& message) { list.push_back(message); }
};

// Source files under dir with one of the extensions, sorted.
std::vector<fs::path> files_under(const fs::path& dir, const std::set<std::string>& extensions) {
  std::vector<fs::path> files;
  if (!fs::exists(dir)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file() && extensions.count(entry.path().extension().string()))
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

// `[layers/recurrent/rnn.cpp:42](../layers/recurrent/rnn.cpp#L42)`: the text's path and line,
// and the target's, which must agree.
const std::regex kLink(R"(\[([A-Za-z0-9_./-]+\.(?:cpp|hpp|py|sh|md)):(\d+)\]\(([^)#]*)#L(\d+)\))");
const std::regex kId(R"(\[(F\d\.\d+)\])");
// The tags that open a comment line, `// [F2.3] [F2.4] text`: the code below
// computes those formulas.
const std::regex kLeadingTags(R"(^\s*//\s*((?:\[F\d\.\d+\]\s*)+))");

}  // namespace

int main(int argc, char** argv) {
  const fs::path root = argc > 1 ? argv[1] : ".";
  const fs::path map_path = root / "docs/formulas.md";
  if (!fs::exists(map_path)) {
    std::cerr << "check_formulas: " << map_path << " not found (run from the repository root)\n";
    return 1;
  }
  Problems problems;
  const std::vector<std::string> ids = all_ids();
  const std::set<std::string> known(ids.begin(), ids.end());

  // 1. one row per ID.
  std::map<std::string, std::string> rows;  // ID -> row text
  for (const std::string& line : read_lines(map_path)) {
    if (line.rfind("| F", 0) != 0) continue;
    std::vector<std::string> cells = split_cells(line);
    std::string id = cells.empty() ? "" : cells[0];
    id.erase(std::remove(id.begin(), id.end(), ' '), id.end());
    if (!known.count(id))
      problems.add("docs/formulas.md: a row for '" + id + "', which is not a formula ID");
    else if (rows.count(id))
      problems.add("docs/formulas.md: two rows for " + id);
    else
      rows[id] = line;
  }
  for (const std::string& id : ids)
    if (!rows.count(id)) problems.add("docs/formulas.md: no row for " + id);

  // 2. each row's links point at code that carries its ID.
  int links_checked = 0;
  for (const auto& [id, row] : rows) {
    int links = 0;
    for (std::sregex_iterator it(row.begin(), row.end(), kLink), end; it != end; ++it) {
      ++links;
      const std::string file = (*it)[1], target = (*it)[3];
      const int line = std::stoi((*it)[2]);
      if (target != "../" + file || (*it)[4] != (*it)[2]) {
        problems.add("docs/formulas.md, " + id + ": the link text " + file + ":" +
                     std::string((*it)[2]) + " and its target " + target + "#L" +
                     std::string((*it)[4]) + " differ");
        continue;
      }
      const std::vector<std::string> lines = read_lines(root / file);
      if (lines.empty()) {
        problems.add("docs/formulas.md, " + id + ": " + file + " does not exist (or is empty)");
        continue;
      }
      if (line < 1 || line > static_cast<int>(lines.size())) {
        problems.add("docs/formulas.md, " + id + ": " + file + ":" + std::to_string(line) +
                     " is past the end of the file (" + std::to_string(lines.size()) + " lines)");
        continue;
      }
      bool carries = false;
      for (int l = std::max(1, line - 3); l <= line; ++l)
        carries = carries || lines[l - 1].find("[" + id + "]") != std::string::npos;
      if (!carries)
        problems.add("docs/formulas.md, " + id + ": " + file + ":" + std::to_string(line) +
                     " (or the three lines above it) carries no [" + id + "]");
      ++links_checked;
    }
    if (links == 0) problems.add("docs/formulas.md, " + id + ": the row links to no code");
  }

  // 3. every [ID] in the code has a row.
  std::set<std::string> in_code;
  std::map<std::string, std::set<std::string>> computed_in;  // ID -> library .cpp files
  for (const char* dir : {"core", "autograd", "layers", "tutorials"}) {
    for (const fs::path& file : files_under(root / dir, {".cpp", ".hpp"})) {
      const std::vector<std::string> lines = read_lines(file);
      for (size_t n = 0; n < lines.size(); ++n) {
        const std::string& text = lines[n];
        for (std::sregex_iterator it(text.begin(), text.end(), kId), end; it != end; ++it) {
          const std::string id = (*it)[1];
          in_code.insert(id);
          const std::string relative = fs::relative(file, root).string();
          std::smatch leading;
          if (std::string(dir) != "tutorials" && file.extension() == ".cpp" &&
              std::regex_search(text, leading, kLeadingTags) &&
              leading[1].str().find("[" + id + "]") != std::string::npos)
            computed_in[id].insert(relative);
          const std::string where = relative + ":" + std::to_string(n + 1);
          if (!known.count(id))
            problems.add(where + ": [" + id + "] is not a formula ID");
          else if (!rows.count(id))
            problems.add(where + ": [" + id + "] has no row in docs/formulas.md");
        }
      }
    }
  }
  for (const std::string& id : ids)
    if (!in_code.count(id))
      problems.add(id + ": no [" + id + "] comment in core/, autograd/, layers/ or tutorials/");

  // 6. every library file computing a formula is linked from its row.
  for (const auto& [id, files] : computed_in) {
    if (!rows.count(id)) continue;
    for (const std::string& file : files)
      if (rows[id].find("](../" + file + "#L") == std::string::npos)
        problems.add("docs/formulas.md, " + id + ": " + file + " computes [" + id +
                     "] but the row does not link to it (a fast twin and its plain code each "
                     "need a link)");
  }

  // 4. every ID named by a test.
  std::set<std::string> in_tests;
  for (const fs::path& file : files_under(root / "tests", {".cpp", ".hpp"})) {
    std::ostringstream text;
    text << std::ifstream(file).rdbuf();
    const std::string s = text.str();
    for (std::sregex_iterator it(s.begin(), s.end(), kId), end; it != end; ++it)
      in_tests.insert((*it)[1]);
  }
  for (const std::string& id : ids)
    if (!in_tests.count(id)) problems.add(id + ": no test in tests/ names [" + id + "]");

  // 5. no dead file:line link in the docs.
  std::vector<fs::path> docs = files_under(root / "docs", {".md"});
  docs.push_back(root / "README.md");
  for (const fs::path& doc : docs) {
    const std::vector<std::string> lines = read_lines(doc);
    for (size_t n = 0; n < lines.size(); ++n) {
      const std::string& text = lines[n];
      for (std::sregex_iterator it(text.begin(), text.end(), kLink), end; it != end; ++it) {
        // The target is relative to the document's directory.
        const fs::path target = (doc.parent_path() / std::string((*it)[3])).lexically_normal();
        const int line = std::stoi((*it)[4]);
        const std::string where = fs::relative(doc, root).string() + ":" + std::to_string(n + 1);
        const std::vector<std::string> target_lines = read_lines(target);
        if (target_lines.empty())
          problems.add(where + ": dead link, " + std::string((*it)[3]) + " does not exist");
        else if (line < 1 || line > static_cast<int>(target_lines.size()))
          problems.add(where + ": dead link, " + std::string((*it)[3]) + "#L" +
                       std::to_string(line) + " is past the end of the file");
      }
    }
  }

  for (const std::string& p : problems.list) std::cout << "check_formulas: " << p << "\n";
  if (!problems.list.empty()) {
    std::cout << "check_formulas: " << problems.list.size() << " problem(s) in the formula map\n";
    return 1;
  }
  std::cout << "check_formulas: " << ids.size() << " formula IDs, each with a row, "
            << links_checked << " code links that carry their ID, and a test\n";
  return 0;
}
