// Randomized property test of broadcasting binary ops.
//
// With a fixed seed, thousands of random broadcast-compatible shape pairs
// (ranks 0..4, sizes 1..4, dims randomly set to 1 or leading dims dropped) and
// random values. For add, sub, mul, div, where and masked_fill:
//   - both flavors: the forward equals a naive reference written here, which
//     maps every output element to its input elements by hand-written index
//     arithmetic (div/mod per element), independent of the engine's kernels
//     (broadcast_strides, for_each_row, the zip fast paths);
//   - double flavor: gradcheck passes on every case (this exercises the
//     backward's sum_to for every broadcast pattern); it is cheap because the
//     derived shapes are mostly small (about 0.2 s for all 3000 cases at -O1).
// A failure prints the case number and seed; rerun that case alone by setting
// kFirstCase to it.
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <utility>

#include "tests/helpers.hpp"

namespace {

using namespace ag;

constexpr uint64_t kBroadcastSeed = 0xA770'6EAD;
constexpr int kBroadcastCases = 3000;
constexpr int kFirstCase = 0;  // for reproducing one case: set to its number
constexpr int kOps = 6;        // add, sub, mul, div, where, masked_fill

// ---- shapes -----------------------------------------------------------------------

// A shape derived from `base`: each dim set to 1 with probability 0.3, and with
// probability 0.3 some leading dims dropped. Any two such shapes broadcast.
Shape derive(const Shape& base, Generator& gen) {
  Shape s = base;
  for (int64_t& d : s)
    if (gen.bernoulli(0.3)) d = 1;
  if (!s.empty() && gen.bernoulli(0.3)) {
    int64_t drop = gen.randint(1, static_cast<int64_t>(s.size()) + 1);
    s.erase(s.begin(), s.begin() + drop);
  }
  return s;
}

// Broadcast shape by NumPy's rule, computed here independently of the engine.
// Returns false if the shapes are incompatible (never, for derived shapes).
bool reference_broadcast(const Shape& a, const Shape& b, Shape& out) {
  const size_t rank = std::max(a.size(), b.size());
  out.assign(rank, 1);
  for (size_t k = 0; k < rank; ++k) {  // k counts from the right
    int64_t sa = k < a.size() ? a[a.size() - 1 - k] : 1;
    int64_t sb = k < b.size() ? b[b.size() - 1 - k] : 1;
    if (sa != sb && sa != 1 && sb != 1) return false;
    out[rank - 1 - k] = sa == 1 ? sb : sa;
  }
  return true;
}

// The flat index in a tensor of shape `in` of the element that broadcasting
// reads for output flat index `flat` of shape `out`: unravel by div/mod,
// drop the leading dims `in` lacks, use index 0 along dims where `in` is 1.
int64_t source_index(int64_t flat, const Shape& out, const Shape& in) {
  int64_t index = 0, stride = 1;
  const size_t lead = out.size() - in.size();
  for (size_t d = out.size(); d-- > 0;) {
    int64_t i = flat % out[d];
    flat /= out[d];
    if (d < lead) continue;
    int64_t size = in[d - lead];
    if (size != 1) index += i * stride;
    stride *= size;
  }
  return index;
}

std::string describe_shapes(int case_number, const Shape& a, const Shape& b, const Shape& cond,
                            const Shape& mask) {
  std::ostringstream s;
  s << "case " << case_number << " (seed " << kBroadcastSeed << ", kFirstCase = " << case_number
    << " reproduces it): a " << shape_str(a) << ", b " << shape_str(b) << ", where condition "
    << shape_str(cond) << ", masked_fill mask " << shape_str(mask);
  return s.str();
}

// ---- values -----------------------------------------------------------------------

Tensor normal(const Shape& shape, Generator& gen) { return randn(shape, gen); }

// |x| in [0.5, 2), random sign: a divisor kept away from 0.
Tensor nonzero(const Shape& shape, Generator& gen) {
  Tensor t = uniform(shape, real(0.5), real(2), gen);
  for (int64_t i = 0; i < t.numel(); ++i)
    if (gen.bernoulli(0.5)) t.data()[i] = -t.data()[i];
  return t;
}

Tensor mask01(const Shape& shape, Generator& gen) {
  Tensor t = zeros(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = gen.bernoulli(0.5) ? 1 : 0;
  return t;
}

// Compares got with the reference: shape, then every element. One CHECK per
// (case, op), with the first mismatch described. Returns whether it matched.
bool check_against_reference(const std::string& op, const Tensor& got, const Shape& shape,
                             const std::vector<double>& expected) {
  INFO("op " << op << ": got shape " << shape_str(got.shape()) << ", reference "
             << shape_str(shape));
  CHECK(got.shape() == shape);
  if (got.shape() != shape) return false;
  REQUIRE(got.numel() == static_cast<int64_t>(expected.size()));
  int64_t mismatches = 0, first = -1;
  for (int64_t i = 0; i < got.numel(); ++i) {
    double g = got.data()[i], e = expected[i];
    if (!(std::abs(g - e) <= ag::testing::tol * std::max(1.0, std::abs(e)))) {
      if (first < 0) first = i;
      ++mismatches;
    }
  }
  INFO(mismatches << " mismatching elements; first at flat index " << first << ": got "
                  << (first >= 0 ? double(got.data()[first]) : 0.0) << ", expected "
                  << (first >= 0 ? expected[first] : 0.0));
  CHECK(mismatches == 0);
  return mismatches == 0;
}

// As ag::testing::check_gradients, also returning whether it passed.
bool check_gradients_passed(const std::string& op, const GradcheckFunction& f,
                            const std::vector<Tensor>& inputs) {
  GradcheckResult result = gradcheck(f, inputs);
  INFO("gradcheck " << op << ": " << result.message);
  CHECK(result.ok);
  return result.ok;
}

// After this many failing cases the test stops: one broken kernel would
// otherwise print thousands of near-identical failures.
constexpr int kMaxFailingCases = 10;

}  // namespace

TEST_CASE("property: broadcasting binary ops match a naive reference (and gradcheck in double)") {
  Generator gen(kBroadcastSeed);
  int forward_checked = 0;  // (case, op) pairs whose forward was compared
  int grad_checked = 0;     // (case, op) pairs gradchecked (double flavor)
  int broadcasting = 0;     // cases where a or b was actually expanded
  int with_scalar = 0;      // cases with a 0-dim operand
  int cases = 0;
  int failing_cases = 0;

  for (int c = 0; c < kBroadcastCases; ++c) {
    // Three families of base shapes: c % 4 == 0, ranks 0..4 with sizes 1..2
    // (many size-1 dims); c % 4 == 1, ranks 0..2 with sizes 1..4; the others
    // ranks 0..4 with sizes 1..4, up to (4,4,4,4).
    int64_t rank, max_size;
    if (c % 4 == 0) {
      rank = gen.randint(0, 5), max_size = 2;
    } else if (c % 4 == 1) {
      rank = gen.randint(0, 3), max_size = 4;
    } else {
      rank = gen.randint(0, 5), max_size = 4;
    }
    Shape base(rank);
    for (int64_t& d : base) d = gen.randint(1, max_size + 1);
    const Shape sa = derive(base, gen), sb = derive(base, gen), sc = derive(base, gen);
    const Shape sm = derive(sa, gen);  // masked_fill: the mask must not enlarge a
    const Tensor a = normal(sa, gen), b = nonzero(sb, gen);
    const Tensor cond = mask01(sc, gen), mask = mask01(sm, gen);
    const real fill = static_cast<real>(gen.normal());
    if (c < kFirstCase) continue;  // the generator has advanced exactly as in a full run
    ++cases;

    INFO(describe_shapes(c, sa, sb, sc, sm));
    Shape out, out3;
    REQUIRE(reference_broadcast(sa, sb, out));
    REQUIRE(reference_broadcast(out, sc, out3));
    if (out != sa || out != sb) ++broadcasting;
    if (sa.empty() || sb.empty()) ++with_scalar;

    // ---- forward against the reference ----
    const int64_t n = shape_numel(out);
    std::vector<double> e_add(n), e_sub(n), e_mul(n), e_div(n);
    for (int64_t i = 0; i < n; ++i) {
      real x = a.data()[source_index(i, out, sa)], y = b.data()[source_index(i, out, sb)];
      e_add[i] = x + y;
      e_sub[i] = x - y;
      e_mul[i] = x * y;
      e_div[i] = x / y;
    }
    std::vector<double> e_where(shape_numel(out3));
    for (int64_t i = 0; i < shape_numel(out3); ++i)
      e_where[i] = cond.data()[source_index(i, out3, sc)] != 0
                       ? a.data()[source_index(i, out3, sa)]
                       : b.data()[source_index(i, out3, sb)];
    std::vector<double> e_fill(a.numel());
    for (int64_t i = 0; i < a.numel(); ++i)
      e_fill[i] = mask.data()[source_index(i, sa, sm)] != 0 ? fill : a.data()[i];

    bool ok = true;
    ok &= check_against_reference("add", add(a, b), out, e_add);
    ok &= check_against_reference("sub", sub(a, b), out, e_sub);
    ok &= check_against_reference("mul", mul(a, b), out, e_mul);
    ok &= check_against_reference("div", div(a, b), out, e_div);
    ok &= check_against_reference("where", where(cond, a, b), out3, e_where);
    ok &= check_against_reference("masked_fill", masked_fill(a, mask, fill), sa, e_fill);
    forward_checked += kOps;

    // ---- gradients (double flavor, every case) ----
    if constexpr (ag::testing::is_double) {
      using Inputs = std::vector<Tensor>;
      Tensor ga = a.detach(), gb = b.detach();
      ga.requires_grad_(true);
      gb.requires_grad_(true);
      const std::pair<const char*, GradcheckFunction> binary[] = {
          {"add", [](const Inputs& x) { return add(x[0], x[1]); }},
          {"sub", [](const Inputs& x) { return sub(x[0], x[1]); }},
          {"mul", [](const Inputs& x) { return mul(x[0], x[1]); }},
          {"div", [](const Inputs& x) { return div(x[0], x[1]); }},
          {"where", [&cond](const Inputs& x) { return where(cond, x[0], x[1]); }},
      };
      for (const auto& [op, f] : binary) {
        ok &= check_gradients_passed(op, f, {ga, gb});
        ++grad_checked;
      }
      ok &= check_gradients_passed(
          "masked_fill", [&mask, fill](const Inputs& x) { return masked_fill(x[0], mask, fill); },
          {ga});
      ++grad_checked;
    }

    if (!ok && ++failing_cases >= kMaxFailingCases) {
      FAIL("stopping after " << failing_cases << " failing cases (case " << c << " of "
                             << kBroadcastCases << ")");
    }
  }

  // The loop really ran, over the cases and patterns it was meant to.
  const int expected_cases = kBroadcastCases - kFirstCase;
  CHECK(cases == expected_cases);
  CHECK(forward_checked == expected_cases * kOps);
  if constexpr (ag::testing::is_double) {
    CHECK(grad_checked == expected_cases * kOps);
  } else {
    CHECK(grad_checked == 0);
  }
  if (kFirstCase == 0) {
    // Not exact counts (they follow from the random draws), but far below what
    // the generator produces: a sanity floor against a degenerate generator.
    INFO("broadcasting cases " << broadcasting << ", with a 0-dim operand " << with_scalar);
    CHECK(broadcasting >= kBroadcastCases / 3);
    CHECK(with_scalar >= kBroadcastCases / 50);
  }
}

TEST_CASE("property: the reference itself (hand-checked cases)") {
  // The reference's index mapping, on cases worked out by hand, so a bug in it
  // cannot make the randomized test agree with a wrong engine.
  Shape out;
  REQUIRE(reference_broadcast({3, 1}, {1, 4}, out));
  CHECK(out == Shape{3, 4});
  REQUIRE(reference_broadcast({4}, {2, 3, 4}, out));
  CHECK(out == Shape{2, 3, 4});
  REQUIRE(reference_broadcast({}, {2, 3}, out));
  CHECK(out == Shape{2, 3});
  REQUIRE(reference_broadcast({2, 1, 3}, {5, 1}, out));
  CHECK(out == Shape{2, 5, 3});
  CHECK_FALSE(reference_broadcast({2, 3}, {3, 2}, out));
  // out (3,4): element [2,1] (flat 9) reads (3,1) at [2,0] = 2 and (1,4) at [0,1] = 1
  CHECK(source_index(9, {3, 4}, {3, 1}) == 2);
  CHECK(source_index(9, {3, 4}, {1, 4}) == 1);
  // out (2,3,4): element [1,2,3] (flat 23) reads (4,) at [3] and (3,1) at [2,0] = 2
  CHECK(source_index(23, {2, 3, 4}, {4}) == 3);
  CHECK(source_index(23, {2, 3, 4}, {3, 1}) == 2);
  CHECK(source_index(23, {2, 3, 4}, {}) == 0);
  CHECK(source_index(23, {2, 3, 4}, {2, 1, 4}) == 7);  // [1,0,3] = 4 + 3
}
