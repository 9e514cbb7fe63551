// Data utilities: read_csv (core/io/csv.hpp) with its errors naming the file,
// line and column; randperm, random_split and DataLoader (layers/framework/data.hpp);
// StandardScaler (layers/framework/standard_scaler.hpp).
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"

namespace {

using namespace ag;
using ag::testing::check_error;
using ag::testing::check_shape;
using ag::testing::check_values;
namespace fs = std::filesystem;

std::string write_temp(const std::string& name, const std::string& text) {
  const fs::path path =
      fs::temp_directory_path() / ("attograd_test_csv_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(path) << text;
  return path.string();
}

std::vector<int64_t> sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

// ============================================================ read_csv

TEST_CASE("io/read_csv: a header, then rows of numbers, into a (rows, columns) tensor") {
  const std::string path = write_temp(
      "good.csv",
      "506,13,,\n"                      // skipped, as scikit-learn's Boston file's first line
      "\"CRIM\", \"ZN\",RM,\"a \"\"q\"\"\"\r\n"  // quoted names, spaces, \r\n
      "0.00632,18,6.575,-1\n"
      "\n"                              // empty lines are skipped
      " +2.5e-1 , 0 ,7, 1E3\n");
  CsvTable table = read_csv(path, {.skip_rows = 1});
  fs::remove(path);
  CHECK(table.columns == std::vector<std::string>{"CRIM", "ZN", "RM", "a \"q\""});
  check_shape(table.values, {2, 4});
  check_values(table.values, {0.00632, 18, 6.575, -1, 0.25, 0, 7, 1000});
  CHECK(table.num_rows() == 2);
  CHECK(table.column("RM") == 2);
  check_values(table.select({"RM", "CRIM"}), {6.575, 0.00632, 7, 0.25});
  check_error([&] { table.column("B"); },
              {"CsvTable: no column 'B'", "the columns are CRIM, ZN, RM, a \"q\""});
  // a header alone: no rows; a semicolon-separated file
  check_shape(parse_csv("x,y\n", "mem").values, {0, 2});
  check_values(parse_csv("x;y\n1;2\n", "mem", {.delimiter = ';'}).values, {1, 2});
}

TEST_CASE("io/read_csv: a missing or non-numeric field names the file, the line and the column") {
  const std::string header = "CRIM,ZN,RM\n1,2,3\n";
  const std::string path = write_temp("missing.csv", header + "4,5\n");
  check_error([&] { read_csv(path); },
              {"read_csv: '" + path + "': line 3, column 3 ('RM'): missing field",
               "the line has 2 fields, the header 3"});
  fs::remove(path);
  check_error([] { parse_csv("CRIM,ZN,RM\n1,2,3\n4,,6\n", "houses.csv"); },
              {"read_csv: 'houses.csv': line 3, column 2 ('ZN'): empty field"});
  check_error([] { parse_csv("CRIM,ZN,RM\n1,2,3\n4,5,n/a\n", "houses.csv"); },
              {"read_csv: 'houses.csv': line 3, column 3 ('RM'): 'n/a' is not a number"});
  check_error([] { parse_csv("a,b\n1,2x\n", "f.csv"); }, {"line 2, column 2 ('b'): '2x' is not a number"});
  check_error([] { parse_csv("a,b\n1,+-2\n", "f.csv"); }, {"'+-2' is not a number"});
  check_error([] { parse_csv("a,b\n1,nan\n", "f.csv"); }, {"column 2 ('b'): 'nan' is not a finite number"});
  check_error([] { parse_csv("a,b\n1,-inf\n", "f.csv"); }, {"'-inf' is not a finite number"});
  check_error([] { parse_csv("a,b\n1,1e999\n", "f.csv"); }, {"'1e999' is beyond the range of double"});
  check_error([] { parse_csv("a,b\n1,2,3\n", "f.csv"); },
              {"line 2, column 3: 3 fields, but the header names 2 columns"});
  check_error([] { parse_csv("a,b\n1,\"2\n", "f.csv"); },
              {"line 2, column 2 ('b'): a quote opened and not closed"});
  check_error([] { parse_csv("a,,b\n", "f.csv"); }, {"line 1, column 2: the header has an empty"});
  check_error([] { parse_csv("a,b,a\n", "f.csv"); }, {"line 1, column 3: the header names 'a' twice"});
  check_error([] { parse_csv("", "empty.csv"); }, {"read_csv: 'empty.csv': no header line"});
  check_error([] { parse_csv("1,2\n", "f.csv", {.skip_rows = 1}); },
              {"no header line after the 1 skipped"});
  if constexpr (!ag::testing::is_double)
    check_error([] { parse_csv("a\n1e300\n", "f.csv"); }, {"1e+300 is beyond the range of float"});
  check_error([] { read_csv("/nonexistent/attograd.csv"); },
              {"read_csv: cannot open '/nonexistent/attograd.csv'"});
}

// ============================================================ randperm, random_split

TEST_CASE("data/randperm and random_split: every index once, seeded, PyTorch's rounding") {
  Generator gen(1), same(1);
  const std::vector<int64_t> order = data::randperm(10, gen);
  CHECK(order == data::randperm(10, same));  // same seed, same order
  CHECK(sorted(order) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(order != sorted(order));
  CHECK(data::randperm(0, gen).empty());

  // fractions: floor(0.7 * 506) = 354, floor(0.15 * 506) = 75 twice; the 2 left go to the first two
  auto parts = data::random_split(506, {0.7, 0.15, 0.15}, gen);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].size() == 355);
  CHECK(parts[1].size() == 76);
  CHECK(parts[2].size() == 75);
  std::set<int64_t> all;
  for (const auto& part : parts) all.insert(part.begin(), part.end());
  CHECK(all.size() == 506);
  CHECK(*all.rbegin() == 505);
  // lengths
  auto halves = data::random_split(6, {4, 2}, gen);
  CHECK(halves[0].size() == 4);
  CHECK(halves[1].size() == 2);
  check_error([&] { data::random_split(6, {4, 3}, gen); },
              {"random_split: lengths 4, 3 sum to 7, not to the 6 items"});
  check_error([&] { data::random_split(6, {2.5, 3.5}, gen); },
              {"random_split: sizes 2.5, 3.5 are neither fractions summing to 1 nor lengths"});
  check_error([&] { data::random_split(6, {1.5, -0.5}, gen); }, {"random_split: fraction 1.5"});
  check_error([&] { data::randperm(-1, gen); }, {"randperm: n must be >= 0, got -1"});
}

// ============================================================ DataLoader

TEST_CASE("data/DataLoader: shuffled batches of matching rows, a new order every epoch") {
  Tensor x = reshape(arange(12), {6, 2});  // row i = [2i, 2i+1]
  Tensor y = arange(6);                     // row i = i
  Generator gen(3);
  data::DataLoader loader({x, y}, 4, /*shuffle=*/true, gen);
  CHECK(loader.size() == 2);  // 4 + 2
  std::vector<std::vector<int64_t>> epochs;
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::vector<int64_t> seen;
    std::vector<int64_t> sizes;
    for (const data::DataLoader::Batch& batch : loader) {
      REQUIRE(batch.size() == 2);
      sizes.push_back(batch[1].size(0));
      for (int64_t r = 0; r < batch[1].size(0); ++r) {
        const int64_t i = static_cast<int64_t>(batch[1].at({r}));
        CHECK(batch[0].at({r, 0}) == real(2 * i));  // x and y stay paired
        CHECK(batch[0].at({r, 1}) == real(2 * i + 1));
        seen.push_back(i);
      }
    }
    CHECK(sizes == std::vector<int64_t>{4, 2});
    CHECK(sorted(seen) == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
    CHECK(seen == loader.order());
    epochs.push_back(seen);
  }
  CHECK(epochs[0] != epochs[1]);  // reshuffled
  // in order, and drop_last
  data::DataLoader ordered({y}, 4, /*shuffle=*/false, gen, /*drop_last=*/true);
  CHECK(ordered.size() == 1);
  int batches = 0;
  for (const auto& batch : ordered) {
    check_values(batch[0], {0, 1, 2, 3});
    ++batches;
  }
  CHECK(batches == 1);
  check_error([&] { data::DataLoader({x, arange(5)}, 2); },
              {"DataLoader: tensor 1 (5) has 5 rows, tensor 0 (6,2) has 6"});
  check_error([&] { data::DataLoader({x}, 0); }, {"DataLoader: batch_size must be >= 1, got 0"});
  check_error([&] { data::DataLoader({}, 2); }, {"DataLoader: got no tensors"});
}

// ============================================================ StandardScaler

TEST_CASE("data/StandardScaler: fitted on the training rows, population std, by hand") {
  // column 0: 1, 2, 3 -> mean 2, std sqrt(2/3); column 1: constant 5 -> mean 5, scale 1
  Tensor train = tensor({{1, 5}, {2, 5}, {3, 5}});
  data::StandardScaler scaler;
  CHECK_FALSE(scaler.fitted());
  Tensor z = scaler.fit_transform(train);
  const double s = std::sqrt(2.0 / 3.0);
  check_values(scaler.mean, {2, 5});
  check_values(scaler.scale, {s, 1});
  check_values(z, {-1 / s, 0, 0, 0, 1 / s, 0});
  // the test rows use the training mean and scale
  Tensor test = tensor({{4, 6}});
  check_values(scaler.transform(test), {2 / s, 1});
  check_values(scaler.inverse_transform(scaler.transform(test)), {4, 6});
  // a 1-D target
  data::StandardScaler target;
  check_values(target.fit_transform(tensor({10, 20})), {-1, 1});
  check_values(target.inverse_transform(tensor({0.5})), {17.5});  // 0.5 * 5 + 15
  check_error([] { data::StandardScaler().transform(ones({2, 2})); },
              {"StandardScaler.transform: the scaler is not fitted"});
  check_error([&] { scaler.transform(ones({2, 3})); },
              {"StandardScaler.transform: x (2,3) has 3 features; the scaler was fitted on 2"});
  check_error([] { data::StandardScaler().fit(zeros({0, 3})); },
              {"StandardScaler.fit: x (0,3) has no rows"});
  Tensor bad = tensor({{1, 2}, {3, NAN}});
  check_error([&] { data::StandardScaler().fit(bad); },
              {"StandardScaler.fit: x (2,2) holds nan at row 1, column 1"});
}
