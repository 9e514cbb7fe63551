// Printing: every expected string below is what PyTorch 2.x prints for the same
// tensor (torch.float32, default print options), minus PyTorch's "0" in
// grad_fn names (MulBackward0) and plus attograd's name= suffix.
#include <sstream>

#include "tests/helpers.hpp"

using namespace ag;
using ag::testing::check_error;

TEST_CASE("print: 1-D tensor in fixed notation") {
  CHECK(to_string(tensor({0.1, 0.2, 0.3})) == "tensor([0.1000, 0.2000, 0.3000])");
}

TEST_CASE("print: 2-D tensor, rows aligned under the first bracket") {
  CHECK(to_string(tensor({{0.1, 0.2}, {0.3, 0.4}})) ==
        "tensor([[0.1000, 0.2000],\n"
        "        [0.3000, 0.4000]])");
}

TEST_CASE("print: 3-D tensor, a blank line between blocks") {
  CHECK(to_string(reshape(arange(12), {2, 2, 3})) ==
        "tensor([[[ 0.,  1.,  2.],\n"
        "         [ 3.,  4.,  5.]],\n"
        "\n"
        "        [[ 6.,  7.,  8.],\n"
        "         [ 9., 10., 11.]]])");
}

TEST_CASE("print: 0-dim tensor") {
  CHECK(to_string(scalar(3.5)) == "tensor(3.5000)");
  CHECK(to_string(scalar(-2)) == "tensor(-2.)");
}

TEST_CASE("print: empty tensors") {
  CHECK(to_string(zeros({0})) == "tensor([])");
  CHECK(to_string(zeros({0, 3})) == "tensor([], size=(0, 3))");
}

TEST_CASE("print: int mode when every value is whole") {
  CHECK(to_string(tensor({1, 2, 3})) == "tensor([1., 2., 3.])");
  CHECK(to_string(tensor({-1, 20, 3})) == "tensor([-1., 20.,  3.])");
  CHECK(to_string(zeros({3})) == "tensor([0., 0., 0.])");
}

TEST_CASE("print: scientific notation when magnitudes are far apart") {
  // Whole numbers too: int mode gives way when max/min > 1000.
  CHECK(to_string(tensor({1e5, 1, 2})) == "tensor([1.0000e+05, 1.0000e+00, 2.0000e+00])");
  CHECK(to_string(tensor({1e-5, 0.5})) == "tensor([1.0000e-05, 5.0000e-01])");
  CHECK(to_string(tensor({1e9, 2.5e9})) == "tensor([1.0000e+09, 2.5000e+09])");
  CHECK(to_string(tensor({0.5, 600})) == "tensor([5.0000e-01, 6.0000e+02])");
  CHECK(to_string(tensor({0.5, 400})) == "tensor([  0.5000, 400.0000])");
}

TEST_CASE("print: negative numbers are padded to line up") {
  CHECK(to_string(tensor({-1.5, 2.25, 10})) == "tensor([-1.5000,  2.2500, 10.0000])");
  CHECK(to_string(tensor({{-1, 2}, {3, -4}})) ==
        "tensor([[-1.,  2.],\n"
        "        [ 3., -4.]])");
}

TEST_CASE("print: nan and inf take the width of the other values") {
  CHECK(to_string(tensor({NAN, INFINITY, -INFINITY, 1.5})) ==
        "tensor([   nan,    inf,   -inf, 1.5000])");
  CHECK(to_string(tensor({NAN, 1})) == "tensor([nan, 1.])");
  // 0 * inf is a NaN with its sign bit set on x86; it still prints as nan.
  CHECK(to_string(tensor({0}) * tensor({INFINITY})) == "tensor([nan])");
}

TEST_CASE("print: long rows wrap at 80 characters") {
  CHECK(to_string(arange(30)) ==
        "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
        "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n"
        "        28., 29.])");
}

TEST_CASE("print: more than 1000 elements are summarised") {
  CHECK(to_string(arange(2000) + 1000) ==
        "tensor([1000., 1001., 1002.,  ..., 2997., 2998., 2999.])");
  std::string text = to_string(reshape(arange(2000) + 1000, {40, 50}));
  CHECK(text ==
        "tensor([[1000., 1001., 1002.,  ..., 1047., 1048., 1049.],\n"
        "        [1050., 1051., 1052.,  ..., 1097., 1098., 1099.],\n"
        "        [1100., 1101., 1102.,  ..., 1147., 1148., 1149.],\n"
        "        ...,\n"
        "        [2850., 2851., 2852.,  ..., 2897., 2898., 2899.],\n"
        "        [2900., 2901., 2902.,  ..., 2947., 2948., 2949.],\n"
        "        [2950., 2951., 2952.,  ..., 2997., 2998., 2999.]])");
  // The format is chosen from the shown values only: 0 to 1999 would span
  // more than 1000x and go scientific.
  CHECK(to_string(arange(2000)) ==
        "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
        "        1.9990e+03])");
}

TEST_CASE("print: options change precision and summarising") {
  PrintOptions options;
  options.precision = 2;
  CHECK(to_string(tensor({0.123, 1}), options) == "tensor([0.12, 1.00])");
  options.threshold = 5;
  options.edgeitems = 1;
  CHECK(to_string(arange(6) + 1, options) == "tensor([1.,  ..., 6.])");
  options.edgeitems = 0;
  check_error([&] { to_string(arange(6), options); }, {"to_string", "edgeitems 0"});
}

TEST_CASE("print: requires_grad suffix on a leaf") {
  Tensor a = tensor({1.5, 2});
  a.requires_grad_();
  CHECK(to_string(a) == "tensor([1.5000, 2.0000], requires_grad=True)");
}

TEST_CASE("print: grad_fn suffix on an op's output") {
  Tensor a = tensor({1.5, 2});
  a.requires_grad_();
  Tensor b = tensor({3, 4});
  CHECK(to_string(a * b) == "tensor([4.5000, 8.0000], grad_fn=<MulBackward>)");
  CHECK(to_string(sum(a * b)) == "tensor(12.5000, grad_fn=<SumBackward>)");
  NoGradGuard no_grad;
  CHECK(to_string(a * b) == "tensor([4.5000, 8.0000])");
}

TEST_CASE("print: name suffix comes first") {
  Tensor w = tensor({{1, 2}}).set_name("W");
  CHECK(to_string(w) == "tensor([[1., 2.]], name='W')");
  w.requires_grad_();
  Tensor y = (w * 2).set_name("y");
  CHECK(to_string(y) == "tensor([[2., 4.]], name='y', grad_fn=<MulBackward>)");
}

TEST_CASE("print: suffixes past 80 characters go on their own line") {
  Tensor a = arange(14) + 10;
  a.requires_grad_();
  CHECK(to_string(a) ==
        "tensor([10., 11., 12., 13., 14., 15., 16., 17., 18., 19., 20., 21., 22., 23.],\n"
        "       requires_grad=True)");
}

TEST_CASE("print: fmt and operator<< give the same text as to_string") {
  Tensor t = tensor({{0.1, -2}, {3, 4}});
  std::ostringstream out;
  out << t;
  CHECK(fmt::format("{}", t) == to_string(t));
  CHECK(out.str() == to_string(t));
  CHECK(fmt::format("{}", Tensor()) == "tensor(undefined)");
}
