// Shape arithmetic that cannot overflow (core/shape): every size, element
// count, stride and concatenated size is checked, and a shape too large to
// count or to allocate is an ag::Error naming the function called and the
// shape, never undefined behaviour or another exception type. Zero-size
// tensors cost nothing to make, so the huge shapes below are cheap to test.
#include <doctest/doctest.h>

#include <climits>
#include <cstdio>
#include <limits>

#include "core/io/npy.hpp"
#include "core/io/safetensors.hpp"
#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/isolated.hpp"

using namespace ag;
using ag::testing::check_error;
using ag::testing::expect_error_in_child;
using ag::testing::run_in_child;

namespace {
constexpr int64_t k2_62 = int64_t(1) << 62;
constexpr int64_t k2_40 = int64_t(1) << 40;
}  // namespace

TEST_CASE("errors: a zero-size shape whose other sizes multiply past int64 is refused") {
  // (0, 2^62, 2^62) has no elements, but its strides (2^124, 2^62, 1) do not fit.
  check_error(
      [] {
        (void)zeros({0, k2_62, k2_62});
      },
      {"zeros: shape (0,4611686018427387904,4611686018427387904)", "int64"});
  check_error([] { (void)Tensor::empty({k2_62, 4, 0}); }, {"empty: shape", "int64"});
  // A zero-size tensor whose other sizes fit is fine, and so are ops on it.
  Tensor t = zeros({0, k2_40, 4});
  CHECK(t.numel() == 0);
  CHECK(transpose(t, 0, 1).shape() == Shape{k2_40, 0, 4});
  CHECK(sum(t, 1).shape() == Shape{0, 4});
  CHECK(narrow(t, 1, 5, 7).shape() == Shape{0, 7, 4});
}

TEST_CASE("errors: reshape to a shape whose product overflows names reshape and the shape") {
  check_error(
      [] {
        (void)reshape(zeros({0}), {k2_62, 4, 0});
      },
      {"reshape:", "(4611686018427387904,4,0)", "int64"});
  check_error([] { (void)reshape(zeros({0}), {k2_62, 4, -1}); }, {"reshape:", "int64"});
  check_error([] { (void)reshape(zeros({2, 3}), {k2_62, k2_62, -1}); }, {"reshape:"});
  CHECK(reshape(zeros({0, 3}), {k2_40, 0}).shape() == Shape{k2_40, 0});
}

TEST_CASE("errors: cat and stack whose result size overflows name cat and stack") {
  const Tensor half = zeros({0, k2_62});
  check_error([&] { (void)cat({half, half}, 1); }, {"cat:", "int64"});
  check_error([&] { (void)stack({half, half, half, half}, 0); }, {"stack:", "int64"});
  CHECK(cat({half, zeros({0, 5})}, 1).shape() == Shape{0, k2_62 + 5});
}

TEST_CASE("errors: ops whose result shape would overflow name the op") {
  // Broadcasting (2^40,1,0) with (1,2^40,0): (2^40,2^40,0), no elements, but 2^80 apart.
  const Tensor a = zeros({k2_40, 1, 0}), b = zeros({1, k2_40, 0});
  check_error([&] { (void)add(a, b); }, {"add:", "int64"});
  check_error([&] { (void)mul(a, b); }, {"mul:", "int64"});
  check_error([&] { (void)where(a, a, b); }, {"where:", "int64"});
  // (0, 2^40, 0) x (0, 2^40) would be (0, 2^40, 2^40).
  check_error([] { (void)matmul(zeros({0, k2_40, 0}), zeros({0, k2_40})); }, {"matmul:", "int64"});
  // index_select of 4 rows from (2, 0, 2^61): (4, 0, 2^61) is 2^63 apart.
  check_error(
      [] {
        (void)index_select(zeros({2, 0, int64_t(1) << 61}), 0, {0, 1, 1, 0});
      },
      {"index_select:", "int64"});
  check_error(
      [] {
        (void)nn::scaled_dot_product_attention(zeros({0, k2_40, 1}), zeros({0, k2_40, 1}),
                                               zeros({0, k2_40, 1}));
      },
      {"scaled_dot_product_attention:", "int64"});
}

TEST_CASE("errors: a tensor too large to allocate is an ag::Error naming the op, shape and bytes") {
  // 2^45 elements: hundreds of terabytes, which no allocator gives.
  const int64_t n = int64_t(1) << 45;
  const std::string bytes = std::to_string(n * int64_t(sizeof(real)));
  check_error([&] { (void)zeros({n}); }, {"zeros: cannot allocate " + bytes +
                                          " bytes for a tensor of shape (35184372088832)"});
  check_error([&] { (void)ones({1, n}); }, {"ones: cannot allocate", "(1,35184372088832)"});
  check_error([&] { (void)randn({n}); }, {"randn: cannot allocate"});
  // The result of an op, (2^22,1) + (1,2^23) -> (2^22,2^23): named after the op.
  const Tensor column = zeros({int64_t(1) << 22, 1}), row = zeros({1, int64_t(1) << 23});
  check_error([&] { (void)add(column, row); },
              {"add: cannot allocate", "for a tensor of shape (4194304,8388608)"});
}

TEST_CASE("errors: randint over a range wider than int64 draws inside it") {
  const int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  Generator gen(5);
  for (int i = 0; i < 100; ++i) {
    const int64_t v = gen.randint(lo, hi);
    CHECK(v < hi);
  }
  Tensor t = randint(lo, hi, {50}, gen);
  CHECK(t.numel() == 50);
  // Both halves of the range are reached: the draw is not stuck at one end.
  int negative = 0;
  for (real x : t.to_vector()) negative += x < 0;
  CHECK(negative > 5);
  CHECK(negative < 45);
}

TEST_CASE("errors: local_window_mask with an extreme center blocks everything, no overflow") {
  const int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  Tensor mask = nn::local_window_mask({lo, hi, 1}, 1, 3);
  ag::testing::check_values(mask, {1, 1, 1, 1, 1, 1, 0, 0, 0});
  Tensor wide = nn::local_window_mask({0}, hi, 3);
  ag::testing::check_values(wide, {0, 0, 0});
}

TEST_CASE("errors: print options that cannot be honoured are refused by to_string") {
  PrintOptions huge_precision;
  huge_precision.precision = INT_MAX;
  check_error([&] { (void)to_string(ones({2}), huge_precision); }, {"to_string:", "precision"});
  PrintOptions huge_edge;
  huge_edge.threshold = 0;
  huge_edge.edgeitems = std::numeric_limits<int64_t>::max();
  CHECK(to_string(from_vector({1, 2, 3, 4, 5}), huge_edge) == "tensor([1., 2., 3., 4., 5.])");
  huge_edge.edgeitems = std::numeric_limits<int64_t>::max() / 2 + 1;
  CHECK(to_string(from_vector({1, 2, 3, 4, 5}), huge_edge) == "tensor([1., 2., 3., 4., 5.])");
}

TEST_CASE("errors: a .safetensors or .npy file declaring a zero-size tensor of huge sizes") {
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[0,4611686018427387904,4611686018427387904],)"
      R"("data_offsets":[0,0]}})";
  std::string file;
  for (int k = 0; k < 8; ++k) file += static_cast<char>((header.size() >> (8 * k)) & 0xFF);
  file += header;
  check_error([&] { (void)parse_safetensors(file, "huge.safetensors"); },
              {"parse_safetensors: 'huge.safetensors': tensor 'a': shape "
               "(0,4611686018427387904,4611686018427387904)",
               "int64"});
  const std::string npy_header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, "
      "4611686018427387904), }\n";
  std::string npy = std::string("\x93NUMPY\x01\x00", 8);
  npy += static_cast<char>(npy_header.size() & 0xFF);
  npy += static_cast<char>(npy_header.size() >> 8);
  npy += npy_header;
  check_error(
      [&] { (void)parse_npy(npy, "huge.npy"); },
      {"parse_npy: 'huge.npy': shape (0,4611686018427387904,4611686018427387904)", "int64"});
}

TEST_CASE("errors: gradcheck with a function whose output shape changes between calls") {
  int calls = 0;
  Tensor x = ones({3});
  x.requires_grad_();
  check_error(
      [&] {
        (void)gradcheck(
            [&](const std::vector<Tensor>& in) {
              return ++calls == 1 ? in[0] * real(2) : narrow(in[0], 0, 0, 1) * real(2);
            },
            {x});
      },
      {"gradcheck:", "output", "(3)", "(1)"});
}

TEST_CASE("errors: set_trace with a null sink") {
  // In a child process: before the check, the next recorded op crashed.
  const std::string outcome = run_in_child([] {
    const int code =
        expect_error_in_child([] { set_trace(true, nullptr); }, {"set_trace:", "null"});
    if (code != 0) return code;
    Tensor w = ones({2});
    w.requires_grad_();
    (void)(w * w);  // tracing stayed off: nothing is printed anywhere
    return trace_enabled() ? 3 : 0;
  });
  INFO(outcome);
  CHECK(outcome.empty());
}

TEST_CASE("errors: a GEMM with a row past BLAS's int limit is refused, not passed as a bad int") {
  // No memory is touched: the sizes are refused before BLAS is called.
  const int64_t big = int64_t(INT_MAX) + 1;
  check_error([&] { gemm(false, false, 1, 1, big, 1, nullptr, nullptr, 0, nullptr); },
              {"gemm:", "2147483648", "2147483647"});
  check_error([&] { gemm(false, false, 2, big, 1, 1, nullptr, nullptr, 0, nullptr); },
              {"gemm:", "2147483648"});
}

namespace {
// While alive, BLAS's int is taken to be `limit`: GEMMs larger than that are
// split, rows longer than that refused, as they would be past 2^31 - 1.
struct BlasIntMax {
  explicit BlasIntMax(int64_t limit) : saved(blas_int_max()) { set_blas_int_max(limit); }
  ~BlasIntMax() { set_blas_int_max(saved); }
  int64_t saved;
};
}  // namespace

TEST_CASE("core: a GEMM with more rows or a longer inner sum than BLAS's int is split") {
  Generator gen(7);
  const Tensor a = randn({11, 3}, gen), b = randn({3, 4}, gen);
  const Tensor weight = randn({4, 3}, gen), bias = randn({4}, gen);
  Tensor x = randn({2, 5, 3}, gen);  // 10 rows
  x.requires_grad_();
  // Every product computed whole, then again with BLAS's int taken to be 4.
  auto products = [&] {
    Tensor w = weight.detach();
    w.requires_grad_();
    Tensor xc = x.detach();
    xc.requires_grad_();
    // 10 rows, in 3, out 4: y and dx split by rows, dW = g^T x by its inner sum over 10 rows
    Tensor y = nn::linear(xc, w, bias);
    sum(y * y).backward();
    return std::vector<Tensor>{matmul(a, b), y, xc.grad(), w.grad()};
  };
  const std::vector<Tensor> whole = products();
  std::vector<GemmCall> calls;
  record_gemm_calls(&calls);
  std::vector<Tensor> split;
  {
    BlasIntMax pieces(4);
    split = products();
  }
  record_gemm_calls(nullptr);
  bool any_split = false;
  for (const GemmCall& call : calls) any_split = any_split || call.m > 4 || call.k > 4;
  CHECK(any_split);
  for (size_t i = 0; i < whole.size(); ++i) {
    INFO("product " << i);
    CHECK(ag::testing::max_abs_diff(whole[i], split[i]) <= 1e-5);
  }
  // A row longer than the limit cannot be split: refused, naming the function called.
  BlasIntMax pieces(4);
  check_error(
      [&] {
        (void)matmul(randn({2, 9}, gen), randn({9, 3}, gen));
      },
      {"matmul: cannot multiply (2,9) by (9,3): a row of 9 elements is past BLAS's int "
       "limit 4"});
  check_error(
      [&] {
        (void)nn::linear(randn({2, 5}, gen), randn({3, 5}, gen), Tensor());
      },
      {"linear:", "BLAS's int limit 4"});
  CHECK(matmul(zeros({0, 9}), zeros({9, 0})).shape() == Shape{0, 0});
}
