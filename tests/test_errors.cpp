// Every documented misuse raises ag::Error whose message names the op, the
// shapes or values involved, and what would be valid (DESIGN.md, "Errors").
// The fragments checked below are taken from the messages in core/ and
// autograd/; a test fails if the error is missing or says less.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "tests/helpers.hpp"
#include "tests/isolated.hpp"

using namespace ag;
using ag::testing::check_error;
using ag::testing::check_values;
using ag::testing::expect_error_in_child;
using ag::testing::run_in_child;

namespace {

// Ones of this shape that require grad, like a parameter.
Tensor ones_param(const Shape& shape) {
  Tensor t = ones(shape);
  t.requires_grad_();
  return t;
}

}  // namespace

TEST_CASE("errors: ag::Error is a std::runtime_error") {
  static_assert(std::is_base_of_v<std::runtime_error, Error>);
  try {
    (void)matmul(zeros({2, 3}), zeros({2, 3}));
    FAIL("no error thrown");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("matmul") != std::string::npos);
  }
}

// --- shape mismatches --------------------------------------------------------------------

TEST_CASE("errors: elementwise ops refuse shapes that cannot broadcast") {
  Tensor a = zeros({2, 3}), b = zeros({4});
  const std::vector<std::string> shapes = {"(2,3)", "(4)", "cannot be broadcast",
                                           "sizes 3 and 4 differ"};
  auto with_op = [&](const char* op) {
    std::vector<std::string> f = shapes;
    f.insert(f.begin(), std::string(op) + ":");
    return f;
  };
  check_error([&] { (void)add(a, b); }, with_op("add"));
  check_error([&] { (void)sub(a, b); }, with_op("sub"));
  check_error([&] { (void)mul(a, b); }, with_op("mul"));
  check_error([&] { (void)div(a, b); }, with_op("div"));
  check_error([&] { (void)(a + b); }, with_op("add"));
  // Broadcasting that works is not an error.
  Tensor ok = add(zeros({2, 3}), zeros({3}));
  CHECK(ok.shape() == Shape{2, 3});
}

TEST_CASE("errors: matmul with inner sizes that differ") {
  check_error(
      [] {
        (void)matmul(zeros({2, 3}), zeros({2, 3}));
      },
      {"matmul: cannot multiply (2,3) by (2,3): inner sizes 3 and 2 differ"});
  check_error([] { (void)matmul(zeros({3}), zeros({4})); },
              {"matmul: cannot multiply (3) by (4): inner sizes 3 and 4 differ"});
  check_error(
      [] {
        (void)matmul(zeros({2, 3}), zeros({4}));
      },
      {"matmul: cannot multiply (2,3) by (4)"});
  check_error(
      [] {
        (void)matmul(zeros({5, 2, 3}), zeros({4, 5}));
      },
      {"matmul", "(5,2,3)", "(4,5)", "inner sizes 3 and 4 differ"});
}

TEST_CASE("errors: matmul with batch dims that clash names both operands' shapes") {
  // Batch dims (2) and (3) cannot broadcast. The message must show the
  // operands the user passed, not only their batch parts.
  check_error(
      [] {
        (void)matmul(zeros({2, 3, 4}), zeros({3, 4, 5}));
      },
      {"matmul", "cannot be broadcast", "(2,3,4)", "(3,4,5)"});
}

TEST_CASE("errors: matmul with a 0-dim operand") {
  check_error([] { (void)matmul(scalar(2), zeros({2})); },
              {"matmul: both operands need at least 1 dim, got () and (2)"});
  check_error(
      [] {
        (void)matmul(zeros({2, 2}), scalar(2));
      },
      {"matmul", "at least 1 dim", "(2,2) and ()"});
}

TEST_CASE("errors: cat and stack with mismatched shapes") {
  check_error(
      [] {
        (void)cat({zeros({2, 3}), zeros({2, 4})}, 0);
      },
      {"cat: tensor 1 has shape (2,4) but tensor 0 has (2,3)", "except along dim 0"});
  check_error(
      [] {
        (void)cat({zeros({2, 3}), zeros({3})}, 0);
      },
      {"cat: tensor 1 has shape (3) but tensor 0 has (2,3)"});
  check_error([] { (void)cat({}, 0); }, {"cat: needs at least one tensor"});
  check_error([] { (void)cat({scalar(1), scalar(2)}, 0); }, {"cat", "0-dim", "stack"});
  check_error(
      [] {
        (void)stack({zeros({2}), zeros({3})}, 0);
      },
      {"stack: tensor 1 has shape (3) but tensor 0 has (2); all must be equal"});
  check_error([] { (void)stack({}, 0); }, {"stack: needs at least one tensor"});
  // Mismatches along the cat dim itself are fine.
  CHECK(cat({zeros({2, 3}), zeros({2, 4})}, 1).shape() == Shape{2, 7});
}

TEST_CASE("errors: masked_fill with a mask that would enlarge the data") {
  check_error(
      [] {
        (void)masked_fill(zeros({3}), ones({2, 3}), 0);
      },
      {"masked_fill: mask of shape (2,3) would enlarge the result beyond (3)"});
  check_error(
      [] {
        (void)masked_fill(zeros({2, 3}), ones({4}), 0);
      },
      {"masked_fill", "(4)", "(2,3)", "cannot be broadcast"});
}

TEST_CASE("errors: where with shapes that clash") {
  check_error([] { (void)where(ones({2}), zeros({3}), zeros({2})); },
              {"where:", "(2)", "(3)", "cannot be broadcast"});
  check_error(
      [] {
        (void)where(ones({2, 3}), zeros({2, 3}), zeros({4}));
      },
      {"where:", "(2,3)", "(4)", "cannot be broadcast"});
}

TEST_CASE("errors: reshape to a wrong element count, or with two -1s") {
  check_error(
      [] {
        (void)reshape(zeros({2, 3}), {4, 2});
      },
      {"reshape: cannot reshape (2,3) (6 elements) into (4,2) (8)"});
  check_error(
      [] {
        (void)reshape(zeros({2, 3}), {-1, 4});
      },
      {"reshape: cannot reshape (2,3) (6 elements) into (-1,4)"});
  check_error(
      [] {
        (void)reshape(zeros({2, 3}), {-1, -1});
      },
      {"reshape: only one size may be -1 in (-1,-1)"});
  check_error(
      [] {
        (void)reshape(zeros({2, 3}), {-2, -3});
      },
      {"reshape: invalid size -2 in (-2,-3)"});
}

TEST_CASE("errors: permute with a wrong length or a repeated dim") {
  check_error(
      [] {
        (void)permute(zeros({2, 3}), {0});
      },
      {"permute: (2,3) has 2 dims but the permutation (0) has 1"});
  check_error(
      [] {
        (void)permute(zeros({2, 3}), {0, 1, 2});
      },
      {"permute", "has 2 dims", "(0,1,2) has 3"});
  check_error(
      [] {
        (void)permute(zeros({2, 3}), {1, 1});
      },
      {"permute: dim 1 appears twice in (1,1)"});
  check_error(
      [] {
        (void)permute(zeros({2, 3}), {0, -2});
      },  // -2 is dim 0 again
      {"permute: dim 0 appears twice in (0,-2)"});
  check_error(
      [] {
        (void)permute(zeros({2, 3}), {0, 2});
      },
      {"permute: dim 2 is out of range", "(valid: -2..1)"});
}

TEST_CASE("errors: from_vector and tensor literals with the wrong number of values") {
  check_error(
      [] {
        (void)from_vector({1, 2, 3, 4, 5}, {2, 3});
      },
      {"from_vector: 5 values cannot fill shape (2,3) (6 elements)"});
  check_error(
      [] {
        (void)from_vector({}, {-1, 0});
      },
      {"from_vector: negative size in shape (-1,0)"});
  check_error(
      [] {
        (void)tensor({{1, 2}, {3}});
      },
      {"tensor: ragged nested list: a row has 1 values, expected 2"});
  check_error(
      [] {
        (void)tensor({{{1, 2}, {3, 4}}, {{5, 6}}});
      },
      {"tensor: ragged nested list: a block has 1 rows, expected 2"});
  check_error(
      [] {
        (void)tensor({{{{1, 2}}, {{3, 4}}}, {{{5, 6}}}});
      },
      {"tensor: ragged nested list: a group has 1 blocks, expected 2"});
}

TEST_CASE("errors: a negative size names the function that was called") {
  check_error([] { (void)zeros({2, -1}); }, {"zeros", "negative size", "(2,-1)"});
  check_error([] { (void)randn({-3}); }, {"randn", "negative size", "(-3)"});
}

// --- bad dims ------------------------------------------------------------------------------

TEST_CASE("errors: a dim out of range names the op, the shape and the valid range") {
  Tensor a = zeros({2, 3});
  const std::string tail = "is out of range for a tensor of shape (2,3) (valid: -2..1)";
  check_error([&] { (void)sum(a, 2); }, {"sum: dim 2 " + tail});
  check_error([&] { (void)sum(a, -3); }, {"sum: dim -3 " + tail});
  check_error([&] { (void)mean(a, 2); }, {"mean: dim 2 " + tail});
  check_error([&] { (void)max(a, 5); }, {"max: dim 5 " + tail});
  check_error([&] { (void)argmax(a, 2); }, {"argmax: dim 2 " + tail});
  check_error([&] { (void)softmax(a, 2); }, {"softmax: dim 2 " + tail});
  check_error([&] { (void)log_softmax(a, -3); }, {"log_softmax: dim -3 " + tail});
  check_error([&] { (void)transpose(a, 0, 2); }, {"transpose: dim 2 " + tail});
  check_error([&] { (void)squeeze(a, 2); }, {"squeeze: dim 2 " + tail});
  check_error([&] { (void)narrow(a, 2, 0, 1); }, {"narrow: dim 2 " + tail});
  check_error([&] { (void)index_select(a, 2, std::vector<int64_t>{0}); },
              {"index_select: dim 2 " + tail});
  check_error([&] { (void)cat({a, a}, 2); }, {"cat: dim 2 " + tail});
  check_error([&] { (void)a.size(2); }, {"size: dim 2 " + tail});
  // unsqueeze and stack insert a new dim: one more place is valid.
  check_error([&] { (void)unsqueeze(a, 3); },
              {"unsqueeze: dim 3 is out of range", "(2,3)", "(valid: -3..2)"});
  check_error([&] { (void)unsqueeze(a, -4); }, {"unsqueeze: dim -4", "(valid: -3..2)"});
  check_error(
      [&] {
        (void)stack({a, a}, 3);
      },
      {"stack: dim 3 is out of range", "(2,3)", "(valid: -3..2)"});
  // The edges of the valid ranges work.
  CHECK(unsqueeze(a, 2).shape() == Shape{2, 3, 1});
  CHECK(stack({a, a}, -3).shape() == Shape{2, 2, 3});
  CHECK(sum(a, -2).shape() == Shape{3});
}

TEST_CASE("errors: a dim on a 0-dim tensor must be 0 or -1") {
  Tensor s = scalar(1);
  check_error([&] { (void)sum(s, 1); },
              {"sum: dim 1 is out of range for a tensor of shape () (valid: -1..0)"});
  check_error([&] { (void)softmax(s, 2); }, {"softmax: dim 2", "(valid: -1..0)"});
  // squeeze of a 0-dim tensor has nothing to remove, but its dim is still
  // checked, as in PyTorch (torch.tensor(1.).squeeze(5) raises).
  check_error([&] { (void)squeeze(s, 5); }, {"squeeze: dim 5", "(valid: -1..0)"});
}

TEST_CASE("errors: ops that need at least one dim") {
  check_error([] { (void)narrow(scalar(1), 0, 0, 1); }, {"narrow: cannot narrow a 0-dim tensor"});
  check_error([] { (void)index_select(scalar(1), 0, std::vector<int64_t>{0}); },
              {"index_select: cannot index a 0-dim tensor"});
  check_error([] { (void)slice(scalar(1), 0, 0, 1); }, {"slice: cannot slice a 0-dim tensor"});
}

TEST_CASE("errors: reductions over nothing") {
  check_error([] { (void)mean(zeros({0})); }, {"mean: (0) has no elements"});
  check_error([] { (void)max(zeros({0})); }, {"max: (0) has no elements"});
  check_error([] { (void)mean(zeros({2, 0}), 1); }, {"mean: dim 1 of (2,0) is empty"});
  check_error([] { (void)max(zeros({2, 0}), 1); }, {"max", "empty dim 1", "(2,0)"});
}

// --- bad indices ------------------------------------------------------------------------------

TEST_CASE("errors: index_select with an index out of range") {
  Tensor a = zeros({3, 2});
  check_error(
      [&] {
        (void)index_select(a, 0, std::vector<int64_t>{0, 3});
      },
      {"index_select: index 3 at position 1 is out of range for dim 0 of (3,2) "
       "(valid: 0..2)"});
  check_error([&] { (void)index_select(a, 1, std::vector<int64_t>{-1}); },
              {"index_select: index -1 at position 0", "(valid: 0..1)"});
  check_error(
      [&] {
        (void)index_select(a, 0, tensor({1, 5}));
      },
      {"index_select: index 5 at position 1", "(valid: 0..2)"});
}

TEST_CASE("errors: index_select with an index tensor that does not hold integers") {
  Tensor a = zeros({3, 2});
  check_error(
      [&] {
        (void)index_select(a, 0, tensor({0, 1.5}));
      },
      {"index_select: index 1.5 at position 1 is not an integer"});
  check_error(
      [&] {
        (void)index_select(a, 0, zeros({1, 1}));
      },
      {"index_select: indices must be a 0-D or 1-D tensor, got shape (1,1)"});
  check_error([&] { (void)index_select(a, 0, tensor({std::nanf("")})); },
              {"index_select", "nan", "not an integer"});
}

TEST_CASE("errors: index_select with an infinite or huge index reports that value") {
  // inf == floor(inf), so inf passes the integer test, and converting it (or
  // 1e30) to int64_t is undefined behaviour; the message must show the value.
  Tensor a = zeros({3});
  check_error([&] { (void)index_select(a, 0, tensor({std::numeric_limits<real>::infinity()})); },
              {"index_select", "inf"});
  check_error([&] { (void)index_select(a, 0, tensor({real(1e30)})); }, {"index_select", "1e+30"});
}

TEST_CASE("errors: at() with an index out of range or the wrong number of indices") {
  Tensor a = zeros({2, 3});
  check_error(
      [&] {
        (void)a.at({1, 3});
      },
      {"at: index 3 is out of range for dim 1 of size 3 in (2,3)"});
  check_error([&] { (void)a.at({-3, 0}); }, {"at: index -3 is out of range for dim 0 of size 2"});
  check_error([&] { (void)a.at({1}); }, {"at: (2,3) needs 2 indices, got 1"});
  CHECK(tensor({{1, 2, 3}, {4, 5, 6}}).at({-1, -1}) == real(6));
}

TEST_CASE("errors: narrow outside the dim") {
  Tensor a = zeros({2, 3});
  check_error([&] { (void)narrow(a, 1, 2, 2); },
              {"narrow: [2, 4) is outside dim 1 of (2,3) (size 3)"});
  check_error([&] { (void)narrow(a, 0, 0, 3); }, {"narrow: [0, 3) is outside dim 0", "(size 2)"});
  check_error([&] { (void)narrow(a, 1, 1, -1); }, {"narrow", "outside dim 1"});
  CHECK(narrow(a, 1, 1, 2).shape() == Shape{2, 2});
}

// --- backward misuse
// -------------------------------------------------------------------------------

TEST_CASE("errors: backward twice through a freed graph") {
  Tensor x = ones_param({2});
  Tensor L = sum(x * x);
  L.backward();
  check_error([&] { L.backward(); }, {"backward: trying to go through the graph a second time",
                                      "SumBackward", "retain_graph"});
  // A new root over a freed part of an old graph: the message names the freed node.
  Tensor y = exp(x);
  sum(y).backward();
  check_error([&] { sum(y * real(2)).backward(); }, {"second time", "ExpBackward"});
}

TEST_CASE("errors: backward on a non-scalar without a gradient") {
  Tensor y = ones_param({2, 3}) * real(2);
  check_error([&] { y.backward(); },
              {"backward: (2,3) has 6 elements", "1-element", "gradient of shape (2,3)"});
}

TEST_CASE("errors: backward with a gradient of the wrong shape") {
  Tensor y = ones_param({2, 3}) * real(2);
  check_error([&] { y.backward(ones({3})); },
              {"backward: gradient of shape (3) does not match (2,3)"});
  check_error([&] { y.backward(ones({3, 2})); }, {"gradient of shape (3,2) does not match (2,3)"});
}

TEST_CASE("errors: backward on a tensor that does not require grad") {
  check_error([] { sum(ones({2})).backward(); }, {"backward: () does not require grad"});
  Tensor x = ones_param({2});
  Tensor y;
  {
    NoGradGuard no_grad;
    y = sum(x * x);
  }
  check_error([&] { y.backward(); }, {"does not require grad", "NoGradGuard"});
  check_error([] { Tensor().backward(); }, {"backward: called on an undefined tensor"});
}

TEST_CASE("errors: retain_grad on a tensor that does not require grad") {
  check_error([] { zeros({2}).retain_grad(); }, {"retain_grad: (2) does not require grad"});
}

TEST_CASE("errors: item() on a tensor with more than one element") {
  check_error(
      [] {
        (void)zeros({2, 3}).item();
      },
      {"item: only a 1-element tensor has an item; (2,3) has 6 elements"});
  check_error([] { (void)zeros({0}).item(); }, {"item", "(0) has 0 elements"});
  CHECK(scalar(4).item() == real(4));
}

// --- in-place changes ----------------------------------------------------------------------------

TEST_CASE("errors: in-place change of a tensor that requires grad is refused") {
  Tensor w = ones_param({2});
  const std::vector<std::string> common = {"in-place change of (2), which requires grad",
                                           "NoGradGuard"};
  auto expect = [&](const char* op) {
    std::vector<std::string> f = common;
    f.insert(f.begin(), std::string(op) + ":");
    return f;
  };
  check_error([&] { w.fill_(3); }, expect("fill_"));
  check_error([&] { w.add_(ones({2})); }, expect("add_"));
  check_error([&] { w.mul_(2); }, expect("mul_"));
  check_error([&] { w.copy_(zeros({2})); }, expect("copy_"));
  // Refused means untouched.
  check_values(w, {1, 1});
  CHECK(w.version() == 0);
  // Non-leaves that require grad too.
  Tensor h = w * real(2);
  check_error([&] { h.mul_(2); }, expect("mul_"));
}

TEST_CASE("errors: zero_ on a tensor that requires grad names zero_") {
  Tensor w = ones_param({2});
  check_error([&] { w.zero_(); }, {"zero_:", "requires grad", "NoGradGuard"});
}

TEST_CASE("errors: the same in-place changes work inside NoGradGuard") {
  Tensor w = ones_param({2});
  NoGradGuard no_grad;
  w.fill_(3);
  check_values(w, {3, 3});
  w.add_(ones({2}), 2);
  check_values(w, {5, 5});
  w.mul_(2);
  check_values(w, {10, 10});
  w.copy_(tensor({1, 2}));
  check_values(w, {1, 2});
  w.zero_();
  check_values(w, {0, 0});
  CHECK(w.version() == 5);
  CHECK(w.requires_grad());
}

TEST_CASE("errors: a detached copy can be changed in place") {
  Tensor w = ones_param({2});
  Tensor d = w.detach();
  d.fill_(7);
  check_values(d, {7, 7});
  check_values(w, {1, 1});
}

TEST_CASE("errors: changing an input in place after it was used, then backward") {
  Tensor w = ones_param({2});
  Tensor x = tensor({3, 4});
  Tensor L = sum(w * x);
  x.fill_(0);  // allowed: x does not require grad; but MulBackward saved it
  check_error([&] { L.backward(); }, {"backward:", "changed in place", "MulBackward",
                                      "version 0 then, 1 now", "detach()ed copy"});
  CHECK_FALSE(w.grad().defined());
}

TEST_CASE("errors: changing a parameter in place (under NoGradGuard) before backward") {
  Tensor w = ones_param({2});
  Tensor L = sum(w * w);
  {
    NoGradGuard no_grad;
    w.mul_(2);
  }
  check_error([&] { L.backward(); }, {"changed in place", "MulBackward", "(2)"});
}

TEST_CASE("errors: changing an op's output in place, then backward") {
  Tensor w = ones_param({2});
  Tensor h = exp(w);
  Tensor L = sum(h);
  {
    NoGradGuard no_grad;
    h.fill_(0);
  }
  check_error([&] { L.backward(); }, {"backward:", "changed in place"});
}

TEST_CASE("errors: add_ and copy_ with a shape mismatch") {
  Tensor t = zeros({2, 3});
  check_error([&] { t.add_(ones({3})); }, {"add_: shape (3) does not match (2,3)"});
  check_error([&] { t.copy_(ones({3, 2})); }, {"copy_: shape (3,2) does not match (2,3)"});
  CHECK(t.version() == 0);
}

TEST_CASE("errors: in-place ops with an undefined tensor argument") {
  // The classic mistake: an optimizer step before any backward(), or for a
  // parameter the loss does not use, where grad() is still undefined.
  SUBCASE("add_") {
    std::string outcome = run_in_child([] {
      Tensor w = ones_param({2});
      NoGradGuard no_grad;
      return expect_error_in_child([&] { w.add_(w.grad(), real(-0.1)); }, {"add_", "undefined"});
    });
    INFO(outcome);
    CHECK(outcome.empty());
  }
  SUBCASE("copy_") {
    std::string outcome = run_in_child([] {
      Tensor t = zeros({2});
      return expect_error_in_child([&] { t.copy_(Tensor()); }, {"copy_", "undefined"});
    });
    INFO(outcome);
    CHECK(outcome.empty());
  }
}

TEST_CASE("errors: ops with an undefined tensor argument") {
  SUBCASE("add") {
    std::string outcome = run_in_child([] {
      return expect_error_in_child([] { (void)add(Tensor(), zeros({2})); }, {"add", "undefined"});
    });
    INFO(outcome);
    CHECK(outcome.empty());
  }
  SUBCASE("matmul") {
    std::string outcome = run_in_child([] {
      return expect_error_in_child(
          [] {
            (void)matmul(zeros({2, 2}), Tensor());
          },
          {"matmul", "undefined"});
    });
    INFO(outcome);
    CHECK(outcome.empty());
  }
}

// --- autograd fields
// ---------------------------------------------------------------------------------

TEST_CASE("errors: requires_grad_(false) on a non-leaf") {
  Tensor h = ones_param({2}) * real(2);
  check_error([&] { h.requires_grad_(false); },
              {"requires_grad_: (2) was made by an op", "only leaf tensors", "detach()"});
  CHECK(h.requires_grad());
  Tensor leaf = ones_param({2});
  leaf.requires_grad_(false);  // fine on a leaf
  CHECK_FALSE(leaf.requires_grad());
}

TEST_CASE("errors: set_grad with a gradient of the wrong shape") {
  Tensor w = ones_param({2, 3});
  check_error(
      [&] {
        w.set_grad(ones({3, 2}));
      },
      {"set_grad: gradient of shape (3,2) does not match (2,3)"});
  CHECK_FALSE(w.grad().defined());
}

// --- creation
// --------------------------------------------------------------------------------------------

TEST_CASE("errors: arange with a zero step or an empty range") {
  check_error([] { (void)arange(0, 1, 0); }, {"arange: step must be non-zero"});
  check_error([] { (void)arange(1, 0, 1); }, {"arange: the range [1, 0) is empty with step 1"});
  check_error([] { (void)arange(0, 5, -1); }, {"arange: the range [0, 5) is empty with step -1"});
  CHECK(arange(3, 0, -1).numel() == 3);
}

TEST_CASE("errors: linspace with negative steps") {
  check_error([] { (void)linspace(0, 1, -1); }, {"linspace: steps must be >= 0, got -1"});
  CHECK(linspace(0, 1, 0).numel() == 0);
}

TEST_CASE("errors: randint and uniform with an empty range") {
  check_error([] { (void)randint(3, 3, {2}); }, {"randint: empty range [3, 3)"});
  check_error([] { (void)randint(5, 2, {2}); }, {"randint: empty range [5, 2)"});
  check_error([] { (void)uniform({2}, 1, 0); }, {"uniform: low 1 is greater than high 0"});
}

// --- names in messages
// ---------------------------------------------------------------------------------

TEST_CASE("errors: named tensors appear in messages by name") {
  Tensor W = zeros({2, 3});
  W.set_name("W");
  Tensor x = zeros({2, 3});
  x.set_name("x");
  check_error([&] { (void)matmul(x, W); },
              {"matmul: cannot multiply 'x' (2,3) by 'W' (2,3): inner sizes 3 and 2 differ"});
  check_error([&] { (void)reshape(W, {4}); }, {"reshape: cannot reshape 'W' (2,3)"});
  check_error([&] { (void)narrow(W, 1, 2, 5); }, {"outside dim 1 of 'W' (2,3)"});
  check_error([&] { (void)index_select(W, 0, std::vector<int64_t>{2}); }, {"of 'W' (2,3)"});
  check_error([&] { (void)W.item(); }, {"item:", "'W' (2,3) has 6 elements"});
  check_error([&] { (void)W.at({0, 3}); }, {"in 'W' (2,3)"});
  Tensor p = ones_param({2});
  p.set_name("bias");
  check_error([&] { p.fill_(0); }, {"fill_: in-place change of 'bias' (2)"});
  check_error([&] { p.set_grad(ones({3})); }, {"does not match 'bias' (2)"});
  Tensor h = p * real(2);
  h.set_name("h");
  check_error([&] { h.backward(); }, {"backward: 'h' (2) has 2 elements"});
}

TEST_CASE("errors: named tensors appear by name in broadcasting errors") {
  Tensor scores = zeros({2, 3});
  scores.set_name("scores");
  Tensor bias = zeros({4});
  bias.set_name("bias");
  check_error([&] { (void)add(scores, bias); },
              {"add:", "'scores' (2,3)", "'bias' (4)", "cannot be broadcast"});
}

TEST_CASE("errors: sizes that overflow are refused") {
  const int64_t big = int64_t(1) << 32;
  check_error([&] { (void)zeros({big, big}); }, {"zeros:", "more elements than"});
  check_error([] { (void)arange(0, real(1e30)); }, {"arange:", "would have"});
  Tensor t = zeros({3, 4});
  check_error([&] { (void)narrow(t, 0, 2, std::numeric_limits<int64_t>::max()); },
              {"narrow:", "outside dim 0"});
}

TEST_CASE("errors: set_grad on an undefined tensor") {
  check_error([] { Tensor().set_grad(Tensor()); }, {"undefined tensor"});
}
