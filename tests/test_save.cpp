// What a save guarantees: the file at the path is the old one or the new one,
// whole, never a mix or nothing. Saves write a temporary file in the same
// directory, sync it and rename it over the path; a failed save removes only
// its temporary. Failures are made for real, in child processes: a file-size
// limit (RLIMIT_FSIZE) that makes write() fail, or, with SIGXFSZ left at its
// default, kills the process in the middle of the write.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/io/npy.hpp"
#include "core/io/safetensors.hpp"
#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/isolated.hpp"
#include "tests/temp_dir.hpp"
#include "tutorials/terminal.hpp"

namespace {

using namespace ag;
using ag::testing::check_error;
using ag::testing::expect_error_in_child;
using ag::testing::run_in_child;
using ag::testing::read_bytes;
using ag::testing::TempDir;
namespace fs = std::filesystem;



// In a child process: files may grow to `bytes` at most. With `kill` false,
// SIGXFSZ is ignored, so a write past the limit fails with EFBIG (as on a full
// disk); with `kill` true, the signal ends the process in the middle of the
// write (no core file).
void limit_file_size(rlim_t bytes, bool kill) {
  const rlimit no_core{0, 0}, limit{bytes, bytes};
  setrlimit(RLIMIT_CORE, &no_core);
  std::signal(SIGXFSZ, kill ? SIG_DFL : SIG_IGN);
  setrlimit(RLIMIT_FSIZE, &limit);
}

// Each way the project writes a file, given a path and how big a file to make.
struct Saver {
  const char* op;
  std::function<void(const std::string& path, int64_t elements)> save;
};

std::vector<Saver> savers() {
  return {
      {"save_safetensors",
       [](const std::string& path, int64_t n) {
         save_safetensors(path, {{"w", arange(real(n))}, {"b", ones({3})}});
       }},
      {"save_npy", [](const std::string& path, int64_t n) { save_npy(path, arange(real(n))); }},
      {"save_safetensors",  // Module::save
       [](const std::string& path, int64_t n) { nn::Linear(int(n / 10), 10).save(path); }},
      {"write_dot",
       [](const std::string& path, int64_t n) {
         Tensor x = arange(real(n));
         x.requires_grad_();
         Tensor y = x;
         for (int64_t i = 0; i < n / 100; ++i) y = y * real(2);
         write_dot(sum(y), path);
       }},
  };
}

}  // namespace

TEST_CASE("io/save: a save that fails midway keeps the old file byte for byte") {
  for (const Saver& saver : savers()) {
    INFO("saving with " << std::string(saver.op));
    TempDir dir("save");
    const std::string path = dir.path("model.file");
    saver.save(path, 1000);
    const std::string old = read_bytes(path);
    REQUIRE(old.size() > 100);
    // The new file would be ~100 times larger than the limit lets a file grow.
    const std::string outcome = run_in_child([&] {
      limit_file_size(old.size() * 2, /*kill=*/false);
      return expect_error_in_child([&] { saver.save(path, 100000); },
                                   {std::string(saver.op) + ":", path, "File too large"});
    });
    INFO(outcome);
    CHECK(outcome.empty());
    CHECK(read_bytes(path) == old);
    // The temporary was removed: the directory holds the old file and nothing else.
    CHECK(dir.names() == std::vector<std::string>{"model.file"});
  }
}

TEST_CASE("io/save: a save killed midway leaves the old file whole and loadable") {
  TempDir dir("save");
  const std::string st = dir.path("model.safetensors"), npy = dir.path("array.npy");
  save_safetensors(st, {{"w", arange(real(1000))}});
  save_npy(npy, arange(real(1000)));
  const std::string old_st = read_bytes(st), old_npy = read_bytes(npy);
  for (const std::string& path : {st, npy}) {
    INFO(path);
    const std::string outcome = run_in_child([&] {
      limit_file_size(old_st.size() * 4, /*kill=*/true);
      if (path == st)
        save_safetensors(st, {{"w", arange(real(100000))}});
      else
        save_npy(npy, arange(real(100000)));
      return 0;  // not reached: SIGXFSZ ends the process during the write
    });
    INFO(outcome);
    CHECK(outcome.find("signal " + std::to_string(SIGXFSZ)) != std::string::npos);
  }
  CHECK(read_bytes(st) == old_st);
  CHECK(read_bytes(npy) == old_npy);
  CHECK(load_safetensors(st).at(0).second.numel() == 1000);
  CHECK(load_npy(npy).numel() == 1000);
}

TEST_CASE("io/save: a failed save never removes or replaces what is at the path") {
  TempDir dir("save");
  // A link to a device that fails every write (/dev/full: "No space left on
  // device"); renaming over the path would replace the link, removing it after
  // the failure would delete it. Only regular files are saved to.
  const std::string link = dir.path("full.npy");
  fs::create_symlink("/dev/full", link);
  check_error([&] { save_npy(link, ones({100})); },
              {"save_npy: '" + link + "'", "/dev/full", "not a regular file"});
  CHECK(fs::is_symlink(link));
  CHECK(fs::read_symlink(link) == "/dev/full");
  // A directory at the path: refused, left as it was.
  const std::string sub = dir.path("sub");
  fs::create_directory(sub);
  std::ofstream(sub + "/inside").put('x');
  check_error(
      [&] {
        save_safetensors(sub, {{"w", ones({2})}});
      },
      {"save_safetensors: '" + sub + "'", "not a regular file"});
  CHECK(fs::exists(sub + "/inside"));
  CHECK(dir.names() == std::vector<std::string>{"full.npy", "sub"});
}

TEST_CASE("io/save: a save through a symbolic link replaces the file it points to") {
  TempDir dir("save");
  const std::string file = dir.path("real.npy"), link = dir.path("link.npy");
  save_npy(file, ones({2}));
  fs::create_symlink("real.npy", link);  // relative, as ln -s makes it
  save_npy(link, zeros({5}));
  CHECK(fs::is_symlink(link));
  CHECK(load_npy(file).numel() == 5);
  CHECK(dir.names() == std::vector<std::string>{"link.npy", "real.npy"});
}

TEST_CASE("io/save: a replaced file keeps its permissions; a new one gets the umask's") {
  TempDir dir("save");
  const std::string old = dir.path("old.npy"), fresh = dir.path("new.npy");
  save_npy(old, ones({2}));
  fs::permissions(old, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  save_npy(old, ones({3}));
  CHECK((fs::status(old).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
  const mode_t mask = ::umask(022);
  ::umask(mask);
  save_npy(fresh, ones({1}));
  CHECK(static_cast<mode_t>(fs::status(fresh).permissions() & fs::perms::all) == (0666 & ~mask));
}

TEST_CASE("io/save: a path with a NUL byte is refused, not cut short at it") {
  TempDir dir("save");
  const std::string cut = dir.path("a.npy"), with_nul = cut + std::string("\0.bak", 5);
  check_error([&] { save_npy(with_nul, ones({1})); },
              {"save_npy:", "contains a NUL byte at position " + std::to_string(cut.size())});
  CHECK(dir.names().empty());  // before, "a.npy" was written
  save_npy(cut, ones({1}));
  check_error([&] { (void)load_npy(with_nul); }, {"load_npy:", "NUL byte"});
  check_error([&] { (void)load_safetensors(with_nul); }, {"load_safetensors:", "NUL byte"});
  check_error([&] { save_safetensors(with_nul, {}); }, {"save_safetensors:", "NUL byte"});
  Tensor w = ones({1});
  w.requires_grad_();
  check_error([&] { write_dot(w * w, with_nul); }, {"write_dot:", "NUL byte"});
  check_error([&] { nn::Linear(2, 2).load(with_nul); }, {"load_safetensors:", "NUL byte"});
  check_error([&] { save_npy("", ones({1})); }, {"save_npy:", "empty path"});
}

TEST_CASE("io/save: the chapters' loss curves are written whole, as CSV") {
  TempDir dir("save");
  const std::string path = dir.path("curves/loss.csv");
  {
    tutorial::LossCsv csv(path, "accuracy");
    csv.add(1, 2.5, 0.25);
    csv.add(2, 1.25, 0.5);
    CHECK(csv.save() == path);
  }
  CHECK(read_bytes(path) == "step,loss,accuracy\n1,2.5,0.25\n2,1.25,0.5\n");
  CHECK(dir.names() == std::vector<std::string>{"curves"});
}
