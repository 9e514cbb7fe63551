// Files for the tests that write them: a fresh directory removed when the test
// ends, and a file's bytes read back whole.
#pragma once

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/real.hpp"

namespace ag::testing {

// A fresh directory under the system's temporary directory, named after
// `what`, removed with everything in it when the test ends.
class TempDir {
 public:
  explicit TempDir(const char* what) {
    static int counter = 0;
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("attograd_{}_{}_{}_{}", what, real_name, ::getpid(), counter++);
    std::filesystem::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // The names in the directory, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(dir_))
      out.push_back(entry.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::filesystem::path dir_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace ag::testing
