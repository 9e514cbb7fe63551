// A property test of the shape-changing ops: with a fixed seed, a few
// thousand random shapes, valid and invalid (negative sizes; zero-size shapes
// whose other sizes are 2^61, 2^62 or 2^63 - 1; shapes too large to count or
// to allocate), go through creation, reshape, transpose, permute, unsqueeze,
// squeeze, narrow, slice, cat, stack, index_select, broadcasting, matmul, the
// reductions, softmax, the masks and printing. Each call must either return
// the shape a reference computed here (with 128-bit arithmetic, independently
// of core/shape) or raise an ag::Error that names the function called; under
// `make MODE=asan test` UndefinedBehaviorSanitizer checks that no size
// arithmetic overflows on the way. Sizes are small (at most 5), zero, or
// huge, so that no tensor this test makes has more than a few hundred
// elements, and every huge one fails to allocate before it touches memory.
#include <doctest/doctest.h>

#include <algorithm>
#include <climits>
#include <functional>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"

namespace {

using namespace ag;
__extension__ typedef unsigned __int128 Big;  // (a GCC extension: -Wpedantic)

constexpr uint64_t kShapeSeed = 0x5A9E'0F11;
constexpr int kShapeCases = 2000;
constexpr int64_t kMax = INT64_MAX, kMin = INT64_MIN;

// --- the reference arithmetic --------------------------------------------------------

// a * b, saturating at 2^126 (no two sizes multiply past it).
Big times(Big a, Big b) {
  const Big cap = Big(1) << 126;
  if (a == 0 || b == 0) return 0;
  return a > cap / b ? cap : a * b;
}
Big numel_of(const Shape& s) {
  Big n = 1;
  for (int64_t x : s) n = times(n, Big(x));
  return n;
}
// The product with zeros counted as 1: what must fit in int64 for a valid shape.
Big extent_of(const Shape& s) {
  Big n = 1;
  for (int64_t x : s) n = times(n, Big(x == 0 ? 1 : x));
  return n;
}
bool has_negative(const Shape& s) {
  return std::any_of(s.begin(), s.end(), [](int64_t x) { return x < 0; });
}
bool valid(const Shape& s) { return !has_negative(s) && extent_of(s) <= Big(kMax); }
// Valid, and small enough to allocate (the generator never makes sizes in between).
bool makeable(const Shape& s) { return valid(s) && numel_of(s) <= 1000; }

// --- random shapes ---------------------------------------------------------------------

struct Random {
  Generator gen{kShapeSeed};
  int64_t below(int64_t n) { return gen.randint(0, n); }
  bool chance(double p) { return gen.bernoulli(p); }
  int64_t size() {  // mostly small, some zero, some huge, a few negative
    // Huge: a tensor this large cannot be a std::vector at all (more elements
    // than it can count), so it is refused before any allocator is asked; the
    // allocator's own refusal is tested in test_shape.cpp.
    static const int64_t huge[] = {int64_t(1) << 61, int64_t(1) << 62, kMax};
    const int64_t r = below(100);
    if (r < 60) return 1 + below(5) % 3 + (below(4) == 0 ? 2 : 0);  // 1, 2, 3, 5
    if (r < 78) return 0;
    if (r < 94) return huge[below(3)];
    return r < 97 ? -1 : -7;
  }
  Shape shape(int64_t max_rank = 4) {
    Shape s(below(max_rank + 1));
    for (int64_t& x : s) x = size();
    return s;
  }
  // A shape a tensor can have: retried until valid and small or empty.
  Shape makeable_shape(int64_t max_rank = 4) {
    for (;;) {
      Shape s = shape(max_rank);
      if (makeable(s)) return s;
    }
  }
  int64_t offset() {  // a start, length or index: in range, or far from it
    static const int64_t odd[] = {-1, -3, kMax, kMin, int64_t(1) << 62};
    return below(4) ? below(7) - 1 : odd[below(5)];
  }
  int64_t dim(int64_t rank) { return below(rank + 5) - rank - 2; }  // some out of range
};

std::string str(const Shape& s) { return shape_str(s); }

// --- the check of one call ----------------------------------------------------------------

int calls = 0, errors = 0, failures = 0;

// Runs f: with `expected` set, it must return a tensor of that shape; unset,
// it must raise an ag::Error whose message starts with "op:".
void expect(const std::string& what, const char* op, const std::optional<Shape>& expected,
            const std::function<Tensor()>& f) {
  ++calls;
  std::string problem;
  try {
    const Tensor out = f();
    if (!expected)
      problem = "returned " + str(out.shape()) + ", expected an error";
    else if (out.shape() != *expected)
      problem = "returned " + str(out.shape()) + ", expected " + str(*expected);
  } catch (const Error& e) {
    ++errors;
    const std::string message = e.what();
    if (expected)
      problem = "raised \"" + message + "\", expected " + str(*expected);
    else if (message.rfind(std::string(op) + ":", 0) != 0)
      problem = "raised \"" + message + "\", which does not name " + op;
  } catch (const std::exception& e) {
    problem = std::string("raised ") + typeid(e).name() + " (" + e.what() + "), not ag::Error";
  }
  if (problem.empty()) return;
  ++failures;
  if (failures <= 20) FAIL_CHECK(what << ": " << problem);
}

// The shape a call that is `ok` must return: s when it is valid and small
// enough to allocate; otherwise (sizes past int64, or terabytes of elements:
// a zero-size input reduced over its empty dim, (0, 2^61) -> (2^61)) an error.
std::optional<Shape> when(bool ok, Shape s) {
  if (!ok || !valid(s) || numel_of(s) > (Big(1) << 30)) return std::nullopt;
  return s;
}

// dim in range for a tensor of `rank` dims (a 0-dim tensor takes -1 and 0).
bool dim_ok(int64_t d, int64_t rank) {
  return rank == 0 ? (d == -1 || d == 0) : (d >= -rank && d < rank);
}
int64_t norm(int64_t d, int64_t rank) { return d < 0 ? d + std::max<int64_t>(rank, 1) : d; }

// The result of broadcasting, or nothing when the shapes clash.
std::optional<Shape> broadcast(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t k = 0; k < n; ++k) {
    const int64_t x = k < a.size() ? a[a.size() - 1 - k] : 1;
    const int64_t y = k < b.size() ? b[b.size() - 1 - k] : 1;
    if (x != y && x != 1 && y != 1) return std::nullopt;
    out[n - 1 - k] = x == 1 ? y : x;
  }
  return out;
}

// The shape torch.reshape gives, or nothing.
std::optional<Shape> reshaped(const Shape& in, Shape target) {
  const Big numel = numel_of(in);
  int64_t inferred = -1;
  Shape known;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      if (inferred >= 0) return std::nullopt;
      inferred = int64_t(i);
    } else if (target[i] < 0) {
      return std::nullopt;
    } else {
      known.push_back(target[i]);
    }
  }
  if (extent_of(known) > Big(kMax)) return std::nullopt;
  if (inferred >= 0) {
    const Big k = numel_of(known);
    if (k == 0 || numel % k != 0) return std::nullopt;
    target[inferred] = int64_t(numel / k);
  }
  if (!valid(target) || numel_of(target) != numel) return std::nullopt;
  return target;
}

}  // namespace

TEST_CASE("property: shape-changing ops give the reference's shape or an ag::Error naming them") {
  Random r;
  for (int c = 0; c < kShapeCases; ++c) {
    // --- creation from any shape ---
    const Shape any = r.shape();
    expect("zeros" + str(any), "zeros", when(makeable(any), any), [&] { return zeros(any); });
    expect("full" + str(any), "full", when(makeable(any), any), [&] { return full(any, 2); });

    const Shape s = r.makeable_shape();
    const int64_t rank = int64_t(s.size());
    const Tensor t = zeros(s);
    (void)to_string(t);

    // --- reshape ---
    Shape target = r.shape();
    if (!target.empty() && r.chance(0.3)) target[r.below(int64_t(target.size()))] = -1;
    const auto reshape_result = reshaped(s, target);
    expect("reshape " + str(s) + " to " + str(target), "reshape", reshape_result,
           [&] { return reshape(t, target); });

    // --- transpose, permute, unsqueeze, squeeze ---
    const int64_t d0 = r.dim(rank), d1 = r.dim(rank);
    std::optional<Shape> swapped;
    if (dim_ok(d0, rank) && dim_ok(d1, rank)) {
      swapped = s;
      if (rank > 0) std::swap((*swapped)[norm(d0, rank)], (*swapped)[norm(d1, rank)]);
    }
    expect("transpose " + str(s), "transpose", swapped, [&] { return transpose(t, d0, d1); });

    std::vector<int64_t> order(rank);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(uint32_t(c)));
    bool order_ok = true;
    if (r.chance(0.2) && rank > 0) order[r.below(rank)] = r.dim(rank);  // maybe repeated or out of range
    if (r.chance(0.1)) order.push_back(0), order_ok = false;            // wrong length
    std::vector<bool> seen(rank, false);
    Shape permuted;
    for (int64_t d : order) {
      if (!dim_ok(d, rank) || rank == 0 || seen[norm(d, rank)]) {
        order_ok = false;
        break;
      }
      seen[norm(d, rank)] = true;
      permuted.push_back(s[norm(d, rank)]);
    }
    expect("permute " + str(s), "permute", when(order_ok, permuted),
           [&] { return permute(t, order); });

    const int64_t u = r.dim(rank + 1);
    Shape unsqueezed = s;
    if (dim_ok(u, rank + 1)) unsqueezed.insert(unsqueezed.begin() + norm(u, rank + 1), 1);
    expect("unsqueeze " + str(s), "unsqueeze", when(dim_ok(u, rank + 1), unsqueezed),
           [&] { return unsqueeze(t, u); });
    Shape squeezed = s;
    if (rank > 0 && dim_ok(d0, rank) && s[norm(d0, rank)] == 1)
      squeezed.erase(squeezed.begin() + norm(d0, rank));
    expect("squeeze " + str(s), "squeeze", when(dim_ok(d0, rank), squeezed),
           [&] { return squeeze(t, d0); });

    // --- narrow and slice ---
    const int64_t start = r.offset(), length = r.offset();
    std::optional<Shape> narrowed;
    if (rank > 0 && dim_ok(d0, rank)) {
      const int64_t size = s[norm(d0, rank)];
      if (start >= 0 && length >= 0 && start <= size && length <= size - start) {
        narrowed = s;
        (*narrowed)[norm(d0, rank)] = length;
      }
    }
    expect("narrow " + str(s), "narrow", narrowed, [&] { return narrow(t, d0, start, length); });
    std::optional<Shape> sliced;
    if (rank > 0 && dim_ok(d0, rank)) {
      const int64_t size = s[norm(d0, rank)];
      // Python's rules: a negative bound counts from the end, then both are clamped.
      auto clamp = [&](int64_t b, int64_t lo) {
        return std::clamp<int64_t>(b < 0 ? b + size : b, lo, size);
      };
      const int64_t from = clamp(start, 0), to = clamp(length, from);
      sliced = s;
      (*sliced)[norm(d0, rank)] = to - from;
    }
    expect("slice " + str(s), "slice", sliced, [&] { return slice(t, d0, start, length); });

    // --- cat and stack ---
    if (rank > 0 && dim_ok(d0, rank)) {
      const int64_t d = norm(d0, rank);
      std::vector<Tensor> parts = {t};
      Big total = Big(s[d]);
      bool parts_ok = true;
      for (int64_t k = 0, n = r.below(3); k < n; ++k) {
        Shape part = s;
        part[d] = r.size();
        if (r.chance(0.1) && rank > 1) {  // a clash outside dim
          int64_t& x = part[(d + 1) % rank];
          x = x < kMax ? x + 1 : x - 1;
        }
        if (!makeable(part)) continue;
        for (int64_t j = 0; j < rank; ++j)
          if (j != d && part[j] != s[j]) parts_ok = false;
        total += Big(part[d]);
        parts.push_back(zeros(part));
      }
      Shape joined = s;
      if (total <= Big(kMax)) joined[d] = int64_t(total);
      const auto cat_result = when(parts_ok && total <= Big(kMax), joined);
      expect("cat along " + std::to_string(d) + " of " + str(s), "cat", cat_result,
             [&] { return cat(parts, d0); });
    }
    const int64_t copies = 1 + r.below(4), sd = r.dim(rank + 1);
    Shape stacked = s;
    if (dim_ok(sd, rank + 1)) stacked.insert(stacked.begin() + norm(sd, rank + 1), copies);
    expect("stack " + str(s), "stack", when(dim_ok(sd, rank + 1) && valid(stacked), stacked),
           [&] { return stack(std::vector<Tensor>(size_t(copies), t), sd); });

    // --- index_select ---
    if (rank > 0 && dim_ok(d1, rank)) {
      const int64_t size = s[norm(d1, rank)];
      std::vector<int64_t> index(size_t(r.below(6)));
      for (int64_t& i : index) i = size > 0 && r.chance(0.9) ? r.below(size) : r.offset();
      const bool in_range = std::all_of(index.begin(), index.end(),
                                        [&](int64_t i) { return i >= 0 && i < size; });
      Shape selected = s;
      selected[norm(d1, rank)] = int64_t(index.size());
      expect("index_select " + str(s), "index_select", when(in_range && valid(selected), selected),
             [&] { return index_select(t, d1, index); });
    }

    // --- broadcasting and matmul ---
    Shape other = s;
    for (int64_t& x : other)
      if (r.chance(0.3)) x = r.chance(0.5) ? 1 : r.size();
    if (!other.empty() && r.chance(0.3)) other.erase(other.begin());
    if (makeable(other)) {
      const Tensor b = zeros(other);
      const auto joint = broadcast(s, other);
      expect("add " + str(s) + " " + str(other), "add", when(bool(joint), joint.value_or(Shape{})),
             [&] { return add(t, b); });
      expect("where " + str(s) + " " + str(other), "where",
             when(bool(joint), joint.value_or(Shape{})), [&] { return where(b, t, t); });
      // matmul of t and a matrix or batch whose inner size matches t's last (or not)
      Shape right = other;
      if (rank >= 1 && !right.empty() && r.chance(0.8)) {
        if (right.size() == 1)
          right[0] = s.back();
        else
          right[right.size() - 2] = s.back();
      }
      if (makeable(right)) {
        std::optional<Shape> product;
        const Shape& a = s;
        const Shape& bs = right;
        if (!a.empty() && !bs.empty()) {
          const int64_t ka = a.back(), kb = bs.size() == 1 ? bs[0] : bs[bs.size() - 2];
          if (ka == kb) {
            if (a.size() == 1 && bs.size() == 1) {
              product = Shape{};
            } else if (a.size() == 1) {
              product = bs;
              product->erase(product->end() - 2);
            } else if (bs.size() == 1) {
              product = Shape(a.begin(), a.end() - 1);
            } else {
              const auto batch =
                  broadcast(Shape(a.begin(), a.end() - 2), Shape(bs.begin(), bs.end() - 2));
              if (batch) {
                product = *batch;
                product->push_back(a[a.size() - 2]);
                product->push_back(bs.back());
              }
            }
          }
        }
        const Tensor b_right = zeros(right);
        expect("matmul " + str(s) + " " + str(right), "matmul",
               when(bool(product), product.value_or(Shape{})), [&] { return matmul(t, b_right); });
      }
    }

    // --- reductions and softmax along a dim ---
    if (dim_ok(d0, rank)) {
      const int64_t d = norm(d0, rank);
      Shape reduced = s;
      if (rank > 0) reduced.erase(reduced.begin() + d);
      const bool nonempty = rank == 0 || s[d] > 0;
      expect("sum " + str(s), "sum", when(true, reduced), [&] { return sum(t, d0); });
      expect("mean " + str(s), "mean", when(nonempty, reduced), [&] { return mean(t, d0); });
      expect("max " + str(s), "max", when(nonempty, reduced), [&] { return max(t, d0); });
      expect("argmax " + str(s), "argmax", when(nonempty, reduced), [&] { return argmax(t, d0); });
      expect("softmax " + str(s), "softmax", s, [&] { return softmax(t, d0); });
    } else {
      expect("sum " + str(s), "sum", std::nullopt, [&] { return sum(t, d0); });
      expect("softmax " + str(s), "softmax", std::nullopt, [&] { return softmax(t, d0); });
    }

    // --- masks from sizes ---
    const int64_t L = r.size();
    expect("causal_mask " + std::to_string(L), "causal_mask", when(makeable({L, L}), Shape{L, L}),
           [&] { return nn::causal_mask(L); });
    std::vector<int64_t> lengths(size_t(r.below(4)));
    for (int64_t& l : lengths) l = r.chance(0.8) && L > 0 ? r.below(std::min<int64_t>(L, 6) + 1) : r.offset();
    const bool lengths_ok = std::all_of(lengths.begin(), lengths.end(),
                                        [&](int64_t l) { return l >= 0 && l <= L; });
    const Shape padding = {int64_t(lengths.size()), 1, L};
    expect("padding_mask " + std::to_string(L), "padding_mask",
           when(L >= 0 && lengths_ok && makeable(padding), padding),
           [&] { return nn::padding_mask(lengths, L); });
    const int64_t half = r.offset();
    std::vector<int64_t> centers(lengths.size());
    for (int64_t& x : centers) x = r.offset();
    expect("local_window_mask " + std::to_string(L), "local_window_mask",
           when(L >= 0 && half >= 0 && makeable(padding), padding),
           [&] { return nn::local_window_mask(centers, half, L); });
  }
  INFO(calls << " calls, " << errors << " of them errors, " << failures << " failures");
  CHECK(failures == 0);
  // The generator reaches both outcomes often.
  CHECK(errors > calls / 10);
  CHECK(errors < calls * 9 / 10);
}
