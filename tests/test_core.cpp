// Tests of core/: making tensors, element access, shapes and broadcasting,
// random numbers, the raw kernels (sum_to, broadcast_to, permute, batched
// matmul) and the OpenBLAS wrapper. Expected values are written out by hand
// (or checked against naive loops written here), never taken from the engine.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/attograd.hpp"
#include "core/kernels.hpp"
#include "tests/helpers.hpp"
#include "tests/isolated.hpp"

namespace {

using namespace ag;
using ag::testing::check_error;
using ag::testing::check_shape;
using ag::testing::check_values;
using ag::testing::iota;

// Small integers (exact in float) that are not a plain ramp, so a kernel that
// reads the wrong element gives a different number.
Tensor pattern(const Shape& shape, int mod, int shift) {
  std::vector<real> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<real>(int((i * 7 + 3) % mod) - shift);
  return from_vector(v, shape);
}

// Like check_error, but in a child process: for inputs that used to crash, so
// that a crash fails this one test instead of killing the whole test binary.
void check_error_isolated(const std::function<void()>& code,
                          const std::vector<std::string>& fragments) {
  std::string outcome = ag::testing::run_in_child(
      [&] { return ag::testing::expect_error_in_child(code, fragments); });
  INFO(outcome);
  CHECK(outcome.empty());
}

bool iequals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

}  // namespace

// =============================================================== creation

TEST_CASE("core: tensor from a 1-D list") {
  Tensor t = ag::tensor({1, 2.5, -3});
  check_shape(t, {3});
  CHECK(t.dim() == 1);
  CHECK(t.numel() == 3);
  check_values(t, {1, 2.5, -3});
}

TEST_CASE("core: tensor from a 2-D list is row-major") {
  Tensor t = ag::tensor({{1, 2, 3}, {4, 5, 6}});
  check_shape(t, {2, 3});
  check_values(t, {1, 2, 3, 4, 5, 6});
  CHECK(t.at({0, 2}) == 3);
  CHECK(t.at({1, 0}) == 4);
}

TEST_CASE("core: tensor from 3-D and 4-D lists") {
  Tensor t3 = ag::tensor({{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}, {{9, 10}, {11, 12}}});
  check_shape(t3, {3, 2, 2});
  check_values(t3, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  CHECK(t3.at({2, 0, 1}) == 10);

  Tensor t4 = ag::tensor({{{{1, 2, 3}, {4, 5, 6}}}, {{{7, 8, 9}, {10, 11, 12}}}});
  check_shape(t4, {2, 1, 2, 3});
  CHECK(t4.dim() == 4);
  check_values(t4, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  CHECK(t4.at({1, 0, 1, 0}) == 10);
}

TEST_CASE("core: a ragged nested list is an error naming the sizes") {
  check_error(
      [] {
        ag::tensor({{1, 2, 3}, {4, 5}});
      },
      {"tensor", "ragged", "a row has 2 values, expected 3"});
  check_error(
      [] {
        ag::tensor({{{1, 2}, {3, 4}}, {{5, 6}}});
      },
      {"tensor", "ragged", "a block has 1 rows, expected 2"});
  check_error(
      [] {
        ag::tensor({{{1, 2}, {3, 4}}, {{5, 6}, {7}}});
      },
      {"ragged", "a row has 1 values, expected 2"});
  check_error(
      [] {
        ag::tensor({{{{1, 2}}}, {{{3, 4}}, {{5, 6}}}});
      },
      {"ragged", "a group has 2 blocks, expected 1"});
}

TEST_CASE("core: scalar() is a 0-dim tensor") {
  Tensor s = scalar(4.5);
  check_shape(s, {});
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 4.5);
  CHECK(s.at({}) == 4.5);
}

TEST_CASE("core: zeros, ones, full, zeros_like, ones_like") {
  Tensor z = zeros({2, 3});
  check_shape(z, {2, 3});
  check_values(z, {0, 0, 0, 0, 0, 0});
  Tensor o = ones({3});
  check_shape(o, {3});
  check_values(o, {1, 1, 1});
  Tensor f = full({2, 2}, -1.5);
  check_shape(f, {2, 2});
  check_values(f, {-1.5, -1.5, -1.5, -1.5});
  Tensor src = ag::tensor({{1, 2}, {3, 4}, {5, 6}});
  Tensor zl = zeros_like(src);
  check_shape(zl, {3, 2});
  check_values(zl, {0, 0, 0, 0, 0, 0});
  Tensor ol = ones_like(src);
  check_shape(ol, {3, 2});
  check_values(ol, {1, 1, 1, 1, 1, 1});
  check_values(src, {1, 2, 3, 4, 5, 6});  // untouched
  Tensor empty = zeros({0, 3});
  check_shape(empty, {0, 3});
  CHECK(empty.numel() == 0);
  Tensor s = zeros({});
  check_shape(s, {});
  CHECK(s.numel() == 1);
  check_error([] { zeros({2, -1}); }, {"negative size", "(2,-1)"});
}

TEST_CASE("core: arange(end)") {
  Tensor a = arange(5);
  check_shape(a, {5});
  check_values(a, {0, 1, 2, 3, 4});
  Tensor frac = arange(2.5);  // 0, 1, 2
  check_values(frac, {0, 1, 2});
  CHECK(arange(0).numel() == 0);
}

TEST_CASE("core: arange(start, end, step) incl. negative and fractional steps") {
  check_values(arange(2, 6), {2, 3, 4, 5});
  check_values(arange(1, 10, 3), {1, 4, 7});
  check_values(arange(1, 2.5, 0.5), {1, 1.5, 2});
  check_values(arange(0, 1, 0.25), {0, 0.25, 0.5, 0.75});
  {
    Tensor tenths = arange(0, 1, 0.1);  // 10 values, as NumPy and PyTorch give
    check_shape(tenths, {10});
    check_values(tenths, {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}, 1e-6);
  }
  check_values(arange(5, 0, -1), {5, 4, 3, 2, 1});
  check_values(arange(5, 0, -2), {5, 3, 1});
  check_values(arange(2, -1, -0.5), {2, 1.5, 1, 0.5, 0, -0.5});
  check_values(arange(-3, -1), {-3, -2});
  CHECK(arange(3, 3).numel() == 0);
  check_error([] { arange(0, 5, 0); }, {"arange", "step must be non-zero"});
  check_error([] { arange(0, 5, -1); }, {"arange", "empty", "-1"});
  check_error([] { arange(5, 0, 1); }, {"arange", "empty"});
}

TEST_CASE("core: linspace includes both ends; steps 1 and 0") {
  Tensor l = linspace(0, 1, 5);
  check_shape(l, {5});
  check_values(l, {0, 0.25, 0.5, 0.75, 1});
  check_values(linspace(1, -1, 3), {1, 0, -1});
  check_values(linspace(-2, 2, 2), {-2, 2});
  Tensor one = linspace(3, 7, 1);
  check_shape(one, {1});
  check_values(one, {3});
  Tensor none = linspace(3, 7, 0);
  check_shape(none, {0});
  CHECK(none.numel() == 0);
  check_error([] { linspace(0, 1, -1); }, {"linspace", "steps", "-1"});
}

TEST_CASE("core: from_vector, and its size mismatch error") {
  Tensor t = from_vector({1, 2, 3, 4, 5, 6}, {3, 2});
  check_shape(t, {3, 2});
  check_values(t, {1, 2, 3, 4, 5, 6});
  Tensor v = from_vector({7, 8});
  check_shape(v, {2});
  check_values(v, {7, 8});
  Tensor s = from_vector({9}, {});
  check_shape(s, {});
  CHECK(s.item() == 9);
  check_error([] { from_vector({1, 2, 3, 4, 5}, {2, 3}); }, {"from_vector", "5", "(2,3)", "6"});
  check_error([] { from_vector({1, 2}, {}); }, {"from_vector", "2", "()", "1"});
}

// =============================================================== elements

TEST_CASE("core: shape, dim, numel, size") {
  Tensor t = zeros({2, 3, 4});
  CHECK(t.shape() == Shape{2, 3, 4});
  CHECK(t.dim() == 3);
  CHECK(t.numel() == 24);
  CHECK(t.size(0) == 2);
  CHECK(t.size(2) == 4);
  CHECK(t.size(-1) == 4);
  CHECK(t.size(-3) == 2);
  CHECK(ag::tensor({1, 2, 3}).size(-1) == 3);
  check_error([&] { t.size(3); },
              {"size: dim 3 is out of range for a tensor of shape (2,3,4) (valid: -3..2)"});
  check_error([&] { t.size(-4); }, {"dim -4 is out of range", "(valid: -3..2)"});
}

TEST_CASE("core: size of a 0-dim tensor is an error, not a crash") {
  // A 0-dim tensor has no dims to ask the size of (PyTorch: IndexError).
  check_error_isolated([] { scalar(1).size(0); }, {"size", "()"});
  check_error_isolated([] { scalar(1).size(-1); }, {"size", "()"});
}

TEST_CASE("core: item, and its error on several elements") {
  CHECK(ag::tensor({3.25}).item() == 3.25);
  CHECK(scalar(-2).item() == -2);
  CHECK(from_vector({7}, {1, 1, 1}).item() == 7);
  check_error([] { zeros({2, 3}).item(); }, {"item", "6 elements"});
  Tensor named = zeros({4});
  named.set_name("W");
  check_error([&] { named.item(); }, {"item", "'W'", "4 elements"});
  check_error([] { zeros({0}).item(); }, {"item", "0 elements"});
}

TEST_CASE("core: at with negative indices, and its errors") {
  Tensor t = ag::tensor({{1, 2, 3}, {4, 5, 6}});
  CHECK(t.at({0, 0}) == 1);
  CHECK(t.at({1, 2}) == 6);
  CHECK(t.at({-1, -1}) == 6);
  CHECK(t.at({-2, 1}) == 2);
  CHECK(t.at({1, -3}) == 4);
  check_error([&] { t.at({2, 0}); }, {"at", "index 2", "dim 0", "size 2"});
  check_error([&] { t.at({0, 3}); }, {"at", "index 3", "dim 1", "size 3"});
  check_error([&] { t.at({0, -4}); }, {"at", "index -4", "dim 1"});
  check_error([&] { t.at({0}); }, {"at", "2 indices", "got 1"});
  check_error([&] { t.at({0, 0, 0}); }, {"at", "got 3"});
}

TEST_CASE("core: to_vector copies the elements in row-major order") {
  Tensor t = ag::tensor({{1, 2}, {3, 4}});
  std::vector<real> v = t.to_vector();
  CHECK(v == std::vector<real>{1, 2, 3, 4});
  v[0] = 100;  // a copy: the tensor keeps its value
  CHECK(t.at({0, 0}) == 1);
}

TEST_CASE("core: copying a Tensor shares data, clone is deep") {
  Tensor a = ag::tensor({1, 2, 3});
  a.set_name("a");
  Tensor alias = a;
  CHECK(alias.is_same(a));
  Tensor c = a.clone();
  CHECK_FALSE(c.is_same(a));
  check_shape(c, {3});
  check_values(c, {1, 2, 3});
  CHECK(c.name() == "a");
  c.data()[0] = 42;
  c.data()[2] = -7;
  check_values(a, {1, 2, 3});  // original unchanged
  check_values(c, {42, 2, -7});
  alias.data()[1] = 20;  // a handle copy is the same tensor
  check_values(a, {1, 20, 3});
}

TEST_CASE("core: detach of a tensor requiring grad is outside the graph; clone is recorded") {
  Tensor x = ag::tensor({1, 2});
  x.requires_grad_();
  Tensor y = mul(x, real(3));
  Tensor c = y.detach();
  CHECK_FALSE(c.requires_grad());
  CHECK(c.grad_fn() == nullptr);
  check_values(c, {3, 6});
  CHECK(y.clone().requires_grad());  // as torch.clone (tests/test_clone_grad.cpp)
}

TEST_CASE("core: detach cuts requires_grad and grad_fn, keeps values") {
  Tensor x = ag::tensor({1, 2, 3});
  x.requires_grad_();
  Tensor y = mul(x, real(2));
  REQUIRE(y.requires_grad());
  REQUIRE(y.grad_fn() != nullptr);
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.grad_fn() == nullptr);
  CHECK(d.is_leaf());
  check_shape(d, {3});
  check_values(d, {2, 4, 6});
  // The original keeps its graph.
  CHECK(y.requires_grad());
  CHECK(y.grad_fn() != nullptr);
  // A leaf that requires grad, detached, does not.
  Tensor dx = x.detach();
  CHECK_FALSE(dx.requires_grad());
  CHECK(x.requires_grad());
  // Ops on the detached tensor record nothing.
  Tensor z = mul(d, real(2));
  CHECK_FALSE(z.requires_grad());
  CHECK(z.grad_fn() == nullptr);
}

TEST_CASE("core: set_name and name") {
  Tensor t = zeros({2, 3});
  CHECK(t.name().empty());
  Tensor& same = t.set_name("weights");
  CHECK(&same == &t);
  CHECK(t.name() == "weights");
  CHECK(describe(t) == "'weights' (2,3)");
  CHECK(describe(zeros({2, 3})) == "(2,3)");
  t.set_name("w2");
  CHECK(t.name() == "w2");
}

// =============================================================== random numbers

TEST_CASE("core: Generator, same seed same sequence, different seeds differ") {
  Generator g1(42), g2(42), g3(43);
  CHECK(g1.initial_seed() == 42);
  std::vector<uint64_t> s1, s2, s3;
  for (int i = 0; i < 20; ++i) {
    s1.push_back(g1.next_u64());
    s2.push_back(g2.next_u64());
    s3.push_back(g3.next_u64());
  }
  CHECK(s1 == s2);
  CHECK(s1 != s3);
  for (int i = 0; i < 20; ++i) CHECK(g1.uniform() == g2.uniform());
  for (int i = 0; i < 20; ++i) CHECK(g1.normal() == g2.normal());
  Tensor a = rand({8}, g1), b = rand({8}, g2), c = rand({8}, g3);
  CHECK(a.to_vector() == b.to_vector());
  CHECK(a.to_vector() != c.to_vector());
}

TEST_CASE("core: Generator is std::mt19937_64, the same on every machine") {
  // The C++ standard fixes mt19937_64's sequence: with seed 5489 its first
  // output is 14514284786278117030 and its 10000th is 9981545732273789042.
  Generator g(5489);
  CHECK(g.next_u64() == 14514284786278117030ull);
  for (int i = 2; i < 10000; ++i) g.next_u64();
  CHECK(g.next_u64() == 9981545732273789042ull);
  // uniform() is the top 53 bits times 2^-53: 14514284786278117030 >> 11 = 7087033586073299,
  // times 2^-53 = 0.7868209548678019...
  g.manual_seed(5489);
  CHECK(g.uniform() == doctest::Approx(0.7868209548678019).epsilon(1e-15));
}

TEST_CASE("core: manual_seed restarts a generator, including a pending normal") {
  Generator g(5);
  std::vector<double> first = {g.normal(), g.normal(), g.normal()};  // odd: one left pending
  g.manual_seed(5);
  CHECK(g.initial_seed() == 5);
  CHECK(g.normal() == first[0]);
  CHECK(g.normal() == first[1]);
  CHECK(g.normal() == first[2]);
}

TEST_CASE("core: manual_seed on the default generator reproduces rand and randn") {
  ag::manual_seed(123);
  Tensor r1 = rand({5, 3});
  Tensor n1 = randn({7});
  Tensor i1 = randint(0, 100, {6});
  ag::manual_seed(123);
  Tensor r2 = rand({5, 3});
  Tensor n2 = randn({7});
  Tensor i2 = randint(0, 100, {6});
  check_shape(r2, {5, 3});
  CHECK(r1.to_vector() == r2.to_vector());
  CHECK(n1.to_vector() == n2.to_vector());
  CHECK(i1.to_vector() == i2.to_vector());
  ag::manual_seed(124);
  CHECK(rand({5, 3}).to_vector() != r1.to_vector());
  CHECK(default_generator().initial_seed() == 124);
  // The default generator draws the same as an explicit one with that seed.
  ag::manual_seed(7);
  Generator g(7);
  CHECK(randn({9}).to_vector() == randn({9}, g).to_vector());
}

TEST_CASE("core: randn of 100,000 has mean ~0 and std ~1") {
  Generator g(2024);
  Tensor x = randn({100000}, g);
  check_shape(x, {100000});
  double sum = 0, sum_sq = 0;
  for (real v : x.to_vector()) {
    sum += v;
    sum_sq += double(v) * v;
  }
  double mean = sum / 1e5;
  double std = std::sqrt(sum_sq / 1e5 - mean * mean);
  CHECK(std::abs(mean) < 0.02);
  CHECK(std::abs(std - 1) < 0.02);
  // Tails as a normal has them: about 4.55% beyond 2 sigma (sd of count ~66).
  int beyond2 = 0;
  for (real v : x.to_vector()) beyond2 += std::abs(v) > 2;
  CHECK(beyond2 > 4155);
  CHECK(beyond2 < 4955);
}

TEST_CASE("core: rand of 100,000 is in [0,1) with mean ~0.5") {
  Generator g(99);
  Tensor x = rand({100000}, g);
  double sum = 0, lo = 1, hi = 0;
  int below_quarter = 0;
  for (real v : x.to_vector()) {
    sum += v;
    lo = std::min(lo, double(v));
    hi = std::max(hi, double(v));
    below_quarter += v < 0.25;
  }
  CHECK(lo >= 0);
  CHECK(hi < 1);
  CHECK(std::abs(sum / 1e5 - 0.5) < 0.01);
  CHECK(std::abs(below_quarter / 1e5 - 0.25) < 0.01);
}

TEST_CASE("core: rand never returns 1, even when a draw rounds up to 1 in float") {
  // The first draw of seed 3138459 is 0.99999997732..., which rounds to
  // exactly 1.0f when converted to float. rand must stay in [0, 1).
  Generator g(3138459);
  Tensor x = rand({4}, g);
  for (real v : x.to_vector()) {
    CHECK(v >= 0);
    CHECK(v < 1);
  }
  g.manual_seed(3138459);
  Tensor u = uniform({4}, -1, 1, g);  // [low, high): never high either
  for (real v : u.to_vector()) {
    CHECK(v >= -1);
    CHECK(v < 1);
  }
}

TEST_CASE("core: randint stays in [low, high) and every value appears") {
  Generator g(1);
  Tensor x = randint(-3, 7, {5000}, g);
  check_shape(x, {5000});
  std::set<int> seen;
  for (real v : x.to_vector()) {
    CHECK(v == std::floor(v));
    CHECK(v >= -3);
    CHECK(v < 7);
    seen.insert(static_cast<int>(v));
  }
  CHECK(seen.size() == 10);
  CHECK(*seen.begin() == -3);
  CHECK(*seen.rbegin() == 6);
  Tensor single = randint(4, 5, {20}, g);
  check_values(single, std::vector<double>(20, 4.0));
  check_error([&] { randint(3, 3, {2}, g); }, {"randint", "[3, 3)"});
}

TEST_CASE("core: uniform(low, high)") {
  Generator g(5);
  Tensor x = uniform({2, 20000}, -2, 3, g);
  check_shape(x, {2, 20000});
  double sum = 0, lo = 10, hi = -10;
  for (real v : x.to_vector()) {
    sum += v;
    lo = std::min(lo, double(v));
    hi = std::max(hi, double(v));
  }
  CHECK(lo >= -2);
  CHECK(hi < 3);
  CHECK(lo < -1.99);  // the whole range is used
  CHECK(hi > 2.99);
  CHECK(std::abs(sum / 40000 - 0.5) < 0.05);
  check_values(uniform({3}, 2, 2, g), {2, 2, 2});
  check_error([&] { uniform({3}, 1, 0, g); }, {"uniform", "low", "high"});
}

// =============================================================== shapes

TEST_CASE("core: shape_str, shape_numel, contiguous_strides") {
  CHECK(shape_str({2, 3}) == "(2,3)");
  CHECK(shape_str({}) == "()");
  CHECK(shape_str({4, 1, 5}) == "(4,1,5)");
  CHECK(shape_numel({}) == 1);
  CHECK(shape_numel({2, 3, 4}) == 24);
  CHECK(shape_numel({2, 0, 4}) == 0);
  CHECK(contiguous_strides({2, 3, 4}) == std::vector<int64_t>{12, 4, 1});
  CHECK(contiguous_strides({5}) == std::vector<int64_t>{1});
  CHECK(contiguous_strides({}).empty());
}

TEST_CASE("core: broadcast_shapes") {
  CHECK(broadcast_shapes({3, 1}, {1, 4}, "t") == Shape{3, 4});
  CHECK(broadcast_shapes({4}, {2, 3, 4}, "t") == Shape{2, 3, 4});
  CHECK(broadcast_shapes({2, 3, 4}, {4}, "t") == Shape{2, 3, 4});
  CHECK(broadcast_shapes({2, 1, 3}, {5, 1}, "t") == Shape{2, 5, 3});
  CHECK(broadcast_shapes({}, {2, 3}, "t") == Shape{2, 3});
  CHECK(broadcast_shapes({1}, {}, "t") == Shape{1});
  CHECK(broadcast_shapes({2, 3}, {2, 3}, "t") == Shape{2, 3});
  CHECK(broadcast_shapes({0, 1}, {1, 5}, "t") == Shape{0, 5});
}

TEST_CASE("core: broadcast_shapes error names the op, both shapes and the clash") {
  check_error(
      [] {
        broadcast_shapes({2, 3}, {4, 3}, "add");
      },
      {"add: shapes (2,3) and (4,3) cannot be broadcast", "sizes 2 and 4 differ", "neither is 1"});
  check_error(
      [] {
        broadcast_shapes({3}, {2, 4}, "mul");
      },
      {"mul: shapes (3) and (2,4) cannot be broadcast", "sizes 3 and 4"});
}

TEST_CASE("core: normalize_dim, and its error message") {
  CHECK(normalize_dim(0, 2, "op", {2, 3}) == 0);
  CHECK(normalize_dim(1, 2, "op", {2, 3}) == 1);
  CHECK(normalize_dim(-1, 2, "op", {2, 3}) == 1);
  CHECK(normalize_dim(-2, 2, "op", {2, 3}) == 0);
  CHECK(normalize_dim(-1, 4, "op", {1, 2, 3, 4}) == 3);
  // A 0-dim tensor accepts dims 0 and -1, as in PyTorch.
  CHECK(normalize_dim(0, 0, "op", {}) == 0);
  CHECK(normalize_dim(-1, 0, "op", {}) == 0);
  check_error(
      [] {
        normalize_dim(3, 2, "softmax", {2, 3});
      },
      {"softmax: dim 3 is out of range for a tensor of shape (2,3) (valid: -2..1)"});
  check_error(
      [] {
        normalize_dim(-3, 2, "sum", {2, 3});
      },
      {"sum: dim -3 is out of range for a tensor of shape (2,3) (valid: -2..1)"});
  check_error([] { normalize_dim(1, 0, "max", {}); },
              {"max: dim 1 is out of range for a tensor of shape () (valid: -1..0)"});
}

TEST_CASE("core: split_at") {
  DimSplit s = split_at({2, 3, 4}, 1);
  CHECK(s.outer == 2);
  CHECK(s.size == 3);
  CHECK(s.inner == 4);
  s = split_at({2, 3, 4}, 0);
  CHECK(s.outer == 1);
  CHECK(s.size == 2);
  CHECK(s.inner == 12);
  s = split_at({2, 3, 4}, 2);
  CHECK(s.outer == 6);
  CHECK(s.size == 4);
  CHECK(s.inner == 1);
}

// =============================================================== kernels

TEST_CASE("core: kernel::sum_to (3,4) -> (3,1), (4,), (1,4)") {
  Tensor g = iota({3, 4});  // rows 0..3, 4..7, 8..11
  Tensor rows = kernel::sum_to(g, {3, 1});
  check_shape(rows, {3, 1});
  check_values(rows, {6, 22, 38});
  Tensor cols = kernel::sum_to(g, {4});
  check_shape(cols, {4});
  check_values(cols, {12, 15, 18, 21});
  Tensor cols_kept = kernel::sum_to(g, {1, 4});
  check_shape(cols_kept, {1, 4});
  check_values(cols_kept, {12, 15, 18, 21});
  Tensor same = kernel::sum_to(g, {3, 4});
  check_shape(same, {3, 4});
  check_values(same, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  check_values(g, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});  // input untouched
}

TEST_CASE("core: kernel::sum_to (2,3,4) -> (1,3,1), (3,4), (2,1,4) and to a scalar") {
  Tensor g = iota({2, 3, 4});  // g[i,j,k] = 12i + 4j + k
  // sum over i, k of 12i + 4j + k = 48 + 32j + 12
  Tensor mid = kernel::sum_to(g, {1, 3, 1});
  check_shape(mid, {1, 3, 1});
  check_values(mid, {60, 92, 124});
  // sum over i: 12 + 2(4j + k)
  Tensor last2 = kernel::sum_to(g, {3, 4});
  check_shape(last2, {3, 4});
  check_values(last2, {12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34});
  // sum over j: 36i + 12 + 3k
  Tensor ends = kernel::sum_to(g, {2, 1, 4});
  check_shape(ends, {2, 1, 4});
  check_values(ends, {12, 15, 18, 21, 48, 51, 54, 57});
  // everything: 0 + 1 + ... + 23 = 276
  Tensor all = kernel::sum_to(g, {});
  check_shape(all, {});
  check_values(all, {276});
  Tensor all_kept = kernel::sum_to(g, {1, 1, 1});
  check_shape(all_kept, {1, 1, 1});
  check_values(all_kept, {276});
  Tensor one = kernel::sum_to(g, {1});
  check_shape(one, {1});
  check_values(one, {276});
}

TEST_CASE("core: kernel::broadcast_to") {
  Tensor row = ag::tensor({1, 2, 3});
  Tensor b = kernel::broadcast_to(row, {2, 3});
  check_shape(b, {2, 3});
  check_values(b, {1, 2, 3, 1, 2, 3});
  Tensor col = from_vector({1, 2, 3}, {3, 1});
  Tensor c = kernel::broadcast_to(col, {3, 2});
  check_shape(c, {3, 2});
  check_values(c, {1, 1, 2, 2, 3, 3});
  Tensor c3 = kernel::broadcast_to(col, {2, 3, 2});
  check_shape(c3, {2, 3, 2});
  check_values(c3, {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
  Tensor s = kernel::broadcast_to(scalar(5), {2, 2});
  check_shape(s, {2, 2});
  check_values(s, {5, 5, 5, 5});
  Tensor mid = kernel::broadcast_to(from_vector({1, 2}, {2, 1, 1}), {2, 2, 2});
  check_values(mid, {1, 1, 1, 1, 2, 2, 2, 2});
  // sum_to undoes it: each element was repeated (size of target / size of source) times.
  check_values(kernel::sum_to(c3, {3, 1}), {4, 8, 12});
}

TEST_CASE("core: kernel::permute on a 3-D tensor matches a naive loop") {
  const Shape in = {2, 3, 4};
  Tensor a = iota(in);
  std::vector<std::vector<int64_t>> perms = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                             {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (const auto& p : perms) {
    CAPTURE(p[0]);
    CAPTURE(p[1]);
    CAPTURE(p[2]);
    Tensor out = kernel::permute(a, p);
    Shape expected_shape = {in[p[0]], in[p[1]], in[p[2]]};
    check_shape(out, expected_shape);
    // out[o0, o1, o2] = a[idx] where idx[p[d]] = o_d
    std::vector<double> expected;
    for (int64_t o0 = 0; o0 < expected_shape[0]; ++o0)
      for (int64_t o1 = 0; o1 < expected_shape[1]; ++o1)
        for (int64_t o2 = 0; o2 < expected_shape[2]; ++o2) {
          int64_t idx[3];
          idx[p[0]] = o0;
          idx[p[1]] = o1;
          idx[p[2]] = o2;
          expected.push_back(double(idx[0] * 12 + idx[1] * 4 + idx[2]));
        }
    check_values(out, expected);
  }
  // One case written out: dims {2,0,1}, out[k,i,j] = 12i + 4j + k.
  check_values(kernel::permute(a, {2, 0, 1}), {0, 4, 8,  12, 16, 20, 1, 5, 9,  13, 17, 21,
                                               2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23});
}

// =============================================================== BLAS

TEST_CASE("core: blas_info names the OpenBLAS kernels in use") {
  const BlasInfo& info = blas_info();
  CHECK_FALSE(info.core.empty());
  CHECK_FALSE(info.reason.empty());
  CHECK_FALSE(info.config.empty());
}

TEST_CASE("core: blas runs the core AG_BLAS_CORETYPE forces, or one measured among this CPU's") {
  // This is how attograd guarantees fast kernels: whatever OPENBLAS_CORETYPE
  // the environment holds, and however the binary was linked.
  const BlasInfo& info = blas_info();
  INFO("core " << info.core << ", reason: " << info.reason);
  if (const char* forced = env("AG_BLAS_CORETYPE")) {
    CHECK(iequals(info.core, forced));
    CHECK(info.reason.find("forced by AG_BLAS_CORETYPE") != std::string::npos);
  } else if (!core_candidates(this_cpu()).empty()) {
    const std::vector<std::string> candidates = core_candidates(this_cpu());
    CHECK(std::find(candidates.begin(), candidates.end(), info.core) != candidates.end());
    CHECK(info.reason.find("measured fastest on this CPU") != std::string::npos);
  }
}

TEST_CASE("core: blas core candidates follow the CPU's instruction sets") {
  CpuIdentity cpu;
  CHECK(core_candidates(cpu).empty());  // no AVX: OpenBLAS's own detection
  cpu.avx = true;
  CHECK(core_candidates(cpu) == std::vector<std::string>{"Sandybridge"});
  cpu.avx2_fma = true;
  CHECK(core_candidates(cpu) == std::vector<std::string>{"Haswell", "Zen", "Sandybridge"});
  cpu.avx512 = true;
  CHECK(core_candidates(cpu) ==
        std::vector<std::string>{"SkylakeX", "Haswell", "Zen", "Sandybridge"});
  cpu.avx512_bf16 = true;
  CHECK(core_candidates(cpu).front() == "Cooperlake");
  // The key names the CPU, what it runs and the element type, on one line.
  cpu.vendor = "AuthenticAMD";
  cpu.family = 25;
  cpu.model = 97;
  cpu.brand = "AMD EPYC 9R14\t96-Core";
  const std::string key = cpu.key();
  CHECK(key.find("AuthenticAMD 25.97.0 avx512-bf16") == 0);
  CHECK(key.find(real_name) != std::string::npos);
  CHECK(key.find('\t') == std::string::npos);
  CHECK(!this_cpu().key().empty());
}

TEST_CASE("core: blas picks the core with the lowest mean time; a later one must be 2% faster") {
  // Zen-like: the AVX-512 kernels slower on most shapes than the AVX2 ones
  const std::vector<CoreTiming> zen4 = {
      {"SkylakeX", {2.0, 1.0, 4.0}}, {"Haswell", {1.8, 0.9, 3.9}}, {"Zen", {1.9, 0.9, 3.8}}};
  std::string report;
  CHECK(fastest_core(zen4, &report) == "Haswell");
  CHECK(report == "SkylakeX 1.08, Haswell 1.00, Zen 1.01");
  // each shape counts the same: one large win does not outweigh two small losses
  CHECK(fastest_core({{"SkylakeX", {1.0, 1.0, 10.0}}, {"Haswell", {1.5, 1.5, 5.0}}}) == "SkylakeX");
  // within 2% the first stays (noise decides nothing)
  CHECK(fastest_core({{"Cooperlake", {1.00}}, {"SkylakeX", {0.99}}}) == "Cooperlake");
  CHECK(fastest_core({{"Cooperlake", {1.00}}, {"SkylakeX", {0.97}}}) == "SkylakeX");
  CHECK(fastest_core({}).empty());
}

TEST_CASE("core: blas core cache, one line per CPU, read back and replaced") {
  std::string text =
      with_cached_core("", "cpu A", "Haswell", "OpenBLAS 0.3.21 Haswell", "Haswell 1.00");
  text = with_cached_core(text, "cpu B", "SkylakeX", "OpenBLAS 0.3.21 SkylakeX", "SkylakeX 1.00");
  std::string config, report;
  CHECK(cached_core(text, "cpu A", &config, &report) == "Haswell");
  CHECK(config == "OpenBLAS 0.3.21 Haswell");
  CHECK(report == "Haswell 1.00");
  CHECK(cached_core(text, "cpu B", nullptr, nullptr) == "SkylakeX");
  CHECK(cached_core(text, "cpu C", nullptr, nullptr).empty());
  text = with_cached_core(text, "cpu A", "Zen", "OpenBLAS 0.3.21 Zen", "Zen 1.00, Haswell 1.04");
  CHECK(cached_core(text, "cpu A", nullptr, nullptr) == "Zen");
  CHECK(cached_core(text, "cpu B", nullptr, nullptr) == "SkylakeX");
  text = with_cached_core(text, "cpu B", "", "", "");  // forgotten
  CHECK(cached_core(text, "cpu B", nullptr, nullptr).empty());
  CHECK(text.rfind("# ", 0) == 0);  // the file says what it is
  // comments and malformed lines are skipped, never matched
  CHECK(cached_core("# cpu A\tHaswell\tx\ty\ncpu A\tHaswell\n", "cpu A", nullptr, nullptr).empty());
}

namespace {

// The first line a fresh run of this test binary prints (its BLAS summary),
// with `env` added to the environment and no test run.
std::string first_line_of_fresh_run(const std::vector<std::pair<std::string, std::string>>& env) {
  // (OPENBLAS_CORETYPE: this process set it when it loaded OpenBLAS)
  const std::string printed = ag::testing::run_test_binary(
                                  "no test has this name", env,
                                  {"AG_BLAS_CORETYPE", "OPENBLAS_CORETYPE"}, /*stdout_only=*/true)
                                  .printed;
  return printed.substr(0, printed.find('\n'));
}

}  // namespace

TEST_CASE("core: blas in a fresh process: AG_BLAS_CORETYPE forces, a cached choice is used") {
  if (core_candidates(this_cpu()).empty()) return;  // OpenBLAS's own detection: nothing chosen
  CHECK(first_line_of_fresh_run({{"AG_BLAS_CORETYPE", "Haswell"}})
            .find("core Haswell (forced by AG_BLAS_CORETYPE=Haswell)") != std::string::npos);
  // A cache (in a directory of our own) naming a core for this CPU is used as it is.
  char dir[] = "/tmp/attograd-cache-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string cache = std::string(dir) + "/attograd/openblas-cores.tsv";
  REQUIRE(mkdir((std::string(dir) + "/attograd").c_str(), 0755) == 0);
  const std::string core = core_candidates(this_cpu()).back();
  // the config OpenBLAS reports with that core, as a measurement would have stored it
  std::string config = blas_info().config;
  const size_t at = config.find(" " + blas_info().core + " ");
  if (at != std::string::npos) config.replace(at + 1, blas_info().core.size(), core);
  {
    std::ofstream out(cache);
    out << with_cached_core("", this_cpu().key(), core, config, core + " 1.00");
  }
  const std::string line = first_line_of_fresh_run({{"XDG_CACHE_HOME", dir}});
  INFO(line);
  CHECK(line.find("core " + core + " (measured fastest on this CPU (" + core +
                  " 1.00), cached in " + cache) != std::string::npos);
  CHECK(line.find("measured again") == std::string::npos);
  // The same line with the config of another OpenBLAS build: used once, then forgotten.
  {
    std::ofstream out(cache);
    out << with_cached_core("", this_cpu().key(), core, "OpenBLAS 0.0.1 " + core, core + " 1.00");
  }
  CHECK(first_line_of_fresh_run({{"XDG_CACHE_HOME", dir}}).find("measured again next time") !=
        std::string::npos);
  std::ifstream in(cache);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(cached_core(text.str(), this_cpu().key(), nullptr, nullptr).empty());
  std::remove(cache.c_str());
  rmdir((std::string(dir) + "/attograd").c_str());
  rmdir(dir);
}

TEST_CASE("core: blas measures the cores once, caches the choice, and uses the cache after") {
  if (core_candidates(this_cpu()).empty()) return;
  char dir[] = "/tmp/attograd-cache-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string cache = std::string(dir) + "/attograd/openblas-cores.tsv";
  const std::string first = first_line_of_fresh_run({{"XDG_CACHE_HOME", dir}});
  INFO(first);
  CHECK(first.find("measured fastest on this CPU") != std::string::npos);
  CHECK(first.find("GEMM shapes, relative to the fastest), cached in " + cache) !=
        std::string::npos);
  std::ifstream in(cache);
  std::stringstream text;
  text << in.rdbuf();
  const std::string core = cached_core(text.str(), this_cpu().key(), nullptr, nullptr);
  CHECK(first.find("core " + core + " (") != std::string::npos);
  const std::vector<std::string> candidates = core_candidates(this_cpu());
  CHECK(std::find(candidates.begin(), candidates.end(), core) != candidates.end());
  const std::string second = first_line_of_fresh_run({{"XDG_CACHE_HOME", dir}});
  CHECK(second.find("core " + core + " (measured fastest on this CPU (") != std::string::npos);
  CHECK(second.find("GEMM shapes") == std::string::npos);  // from the cache, not measured
  std::remove(cache.c_str());
  rmdir((std::string(dir) + "/attograd").c_str());
  rmdir(dir);
}

TEST_CASE("core: blas core cache path: XDG_CACHE_HOME, else HOME/.cache") {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::string saved_xdg = xdg ? xdg : "", saved_home = home ? home : "";
  setenv("XDG_CACHE_HOME", "/x", 1);
  CHECK(core_cache_path() == "/x/attograd/openblas-cores.tsv");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/h", 1);
  CHECK(core_cache_path() == "/h/.cache/attograd/openblas-cores.tsv");
  unsetenv("HOME");
  CHECK(core_cache_path().empty());
  if (xdg) setenv("XDG_CACHE_HOME", saved_xdg.c_str(), 1);
  if (home) setenv("HOME", saved_home.c_str(), 1);
}

TEST_CASE("core: blas uses one thread unless AG_NUM_THREADS says otherwise") {
  if (env("AG_NUM_THREADS") == nullptr) CHECK(blas_info().threads == 1);
}

TEST_CASE("core: blas_summary names the core") {
  std::string summary = blas_summary();
  CHECK(summary.find("core " + blas_info().core) != std::string::npos);
  CHECK(summary.find("thread") != std::string::npos);
}

TEST_CASE("core: gemm, all four transpose combinations, (2,3) x (3,2)") {
  // [[1,2,3],[4,5,6]] x [[7,8],[9,10],[11,12]] = [[58,64],[139,154]]
  const std::vector<real> a = {1, 2, 3, 4, 5, 6};      // (2,3)
  const std::vector<real> at = {1, 4, 2, 5, 3, 6};     // (3,2), its transpose
  const std::vector<real> b = {7, 8, 9, 10, 11, 12};   // (3,2)
  const std::vector<real> bt = {7, 9, 11, 8, 10, 12};  // (2,3), its transpose
  const std::vector<real> expected = {58, 64, 139, 154};
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      std::vector<real> c(4, -1);
      gemm(ta, tb, 2, 2, 3, 1, (ta ? at : a).data(), (tb ? bt : b).data(), 0, c.data());
      CHECK(c == expected);
    }
}

TEST_CASE("core: gemm with distinct m, n, k, alpha and beta") {
  // A (2,3) = [[1,2,3],[4,5,6]], B (3,4) = [[1,0,2,-1],[0,1,1,2],[3,-2,0,1]]
  // A B = [[10,-4,4,6],[22,-7,13,12]]
  const std::vector<real> a = {1, 2, 3, 4, 5, 6};
  const std::vector<real> at = {1, 4, 2, 5, 3, 6};
  const std::vector<real> b = {1, 0, 2, -1, 0, 1, 1, 2, 3, -2, 0, 1};
  const std::vector<real> bt = {1, 0, 3, 0, 1, -2, 2, 1, 0, -1, 2, 1};  // (4,3)
  const std::vector<real> ab = {10, -4, 4, 6, 22, -7, 13, 12};
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      std::vector<real> c(8, 99);
      gemm(ta, tb, 2, 4, 3, 1, (ta ? at : a).data(), (tb ? bt : b).data(), 0, c.data());
      CHECK(c == ab);
      // C = 0.5 A B + 2 C0
      std::vector<real> c2 = {1, 2, 3, 4, 5, 6, 7, 8};
      gemm(ta, tb, 2, 4, 3, 0.5, (ta ? at : a).data(), (tb ? bt : b).data(), 2, c2.data());
      CHECK(c2 == std::vector<real>{7, 2, 8, 11, 21, 8.5, 20.5, 22});
    }
}

TEST_CASE("core: record_gemm_calls lists each GEMM's shape, transposes and beta, then stops") {
  std::vector<real> a(12, 1), b(12, 1), c(16, 0);
  std::vector<GemmCall> calls;
  record_gemm_calls(&calls);
  gemm(false, true, 2, 4, 3, 1, a.data(), b.data(), 0, c.data());  // (2,3) x (4,3)^T
  gemm_strided(true, false, 2, 2, 3, 1, a.data(), 4, b.data(), 5, 1, c.data(), 6);
  record_gemm_calls(nullptr);
  gemm(false, false, 1, 1, 1, 1, a.data(), b.data(), 0, c.data());  // not recorded
  REQUIRE(calls.size() == 2);
  const GemmCall& first = calls[0];
  CHECK((!first.transpose_a && first.transpose_b && !first.accumulate));
  CHECK((first.m == 2 && first.n == 4 && first.k == 3));
  CHECK((first.lda == 3 && first.ldb == 3 && first.ldc == 4));
  const GemmCall& second = calls[1];
  CHECK((second.transpose_a && !second.transpose_b && second.accumulate));
  CHECK((second.lda == 4 && second.ldb == 5 && second.ldc == 6));
}

namespace {

// Naive batched matmul of a (batch..., m, k) and b (batch..., k, n), where
// a_of(i) and b_of(i) give the offsets of the i-th output matrix's operands.
std::vector<double> naive_matmul(const Tensor& a, const Tensor& b, int64_t batches, int64_t m,
                                 int64_t k, int64_t n, const std::function<int64_t(int64_t)>& a_of,
                                 const std::function<int64_t(int64_t)>& b_of, bool ta = false,
                                 bool tb = false) {
  std::vector<double> out;
  for (int64_t t = 0; t < batches; ++t)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) {
          double x = a.data()[a_of(t) + (ta ? p * m + i : i * k + p)];
          double y = b.data()[b_of(t) + (tb ? j * k + p : p * n + j)];
          s += x * y;
        }
        out.push_back(s);
      }
  return out;
}

}  // namespace

TEST_CASE("core: kernel::matmul folds batch dims: (2,3,4) x (4,5)") {
  Tensor a = pattern({2, 3, 4}, 7, 3);
  Tensor b = pattern({4, 5}, 5, 2);
  Tensor out = kernel::matmul(a, b, false, false);
  check_shape(out, {2, 3, 5});
  check_values(out,
               naive_matmul(
                   a, b, 2, 3, 4, 5, [](int64_t t) { return t * 12; }, [](int64_t) { return 0; }));
  // b stored transposed (5,4)
  Tensor bt = pattern({5, 4}, 5, 2);
  Tensor out_t = kernel::matmul(a, bt, false, true);
  check_shape(out_t, {2, 3, 5});
  check_values(out_t, naive_matmul(
                          a, bt, 2, 3, 4, 5, [](int64_t t) { return t * 12; },
                          [](int64_t) { return 0; }, false, true));
}

TEST_CASE("core: kernel::matmul broadcasts batch dims: (2,1,3,4) x (3,4,2)") {
  Tensor a = pattern({2, 1, 3, 4}, 7, 3);
  Tensor b = pattern({3, 4, 2}, 5, 2);
  Tensor out = kernel::matmul(a, b, false, false);
  check_shape(out, {2, 3, 3, 2});
  // output batch t = (i, j): a's matrix i, b's matrix j
  check_values(out, naive_matmul(
                        a, b, 6, 3, 4, 2, [](int64_t t) { return (t / 3) * 12; },
                        [](int64_t t) { return (t % 3) * 8; }));
}

TEST_CASE("core: kernel::matmul with a transposed, batched left operand") {
  Tensor a = pattern({2, 4, 3}, 7, 3);  // (..., K, M) read as (..., M, K)
  Tensor b = pattern({2, 4, 5}, 5, 2);
  Tensor out = kernel::matmul(a, b, true, false);
  check_shape(out, {2, 3, 5});
  check_values(out, naive_matmul(
                        a, b, 2, 3, 4, 5, [](int64_t t) { return t * 12; },
                        [](int64_t t) { return t * 20; }, true, false));
  // 2-D left operand against a batched right one: the left is shared.
  Tensor a2 = pattern({3, 4}, 7, 3);
  Tensor out2 = kernel::matmul(a2, b, false, false);
  check_shape(out2, {2, 3, 5});
  check_values(out2,
               naive_matmul(
                   a2, b, 2, 3, 4, 5, [](int64_t) { return 0; }, [](int64_t t) { return t * 20; }));
}

TEST_CASE("core: kernel::matmul_rows_tn sums a^T g over all rows") {
  // a rows: [1,2], [3,4], [5,6]; g rows: [1], [0], [-1]  ->  a^T g = [1-5, 2-6] = [-4,-4]
  Tensor a = from_vector({1, 2, 3, 4, 5, 6}, {3, 1, 2});
  Tensor g = from_vector({1, 0, -1}, {3, 1, 1});
  Tensor out = kernel::matmul_rows_tn(a, g);
  check_shape(out, {2, 1});
  check_values(out, {-4, -4});
}

TEST_CASE("core: tensor literals of any depth, columns included") {
  Tensor column = ag::tensor({{1}, {0}});
  check_shape(column, {2, 1});
  check_values(column, {1, 0});
  check_shape(ag::tensor({{{1.5}}}), {1, 1, 1});
  check_shape(ag::tensor({3}), {1});
  Tensor five = ag::tensor({{{{{1, 2}}}}});
  check_shape(five, {1, 1, 1, 1, 2});
  check_values(ag::tensor({1, 2.5}), {1, 2.5});  // ints and decimals mix
  check_error(
      [] {
        (void)ag::tensor({{1, 2}, 3});
      },
      {"tensor: ragged nested list: a number stands where a row was expected"});
  check_error(
      [] {
        (void)ag::tensor({1, {2}});
      },
      {"tensor: ragged nested list: a list stands where a number was expected"});
}
