// Conv1d (layers/basic/conv1d.hpp): the formula by hand (padding, stride, dilation),
// PyTorch's names, shapes and initialisation, gradients by finite differences
// in both modes, and the errors. The PyTorch fixture is in test_pytorch_interop.cpp,
// the comparison of the two modes in test_fast_paths.cpp.
#include <doctest/doctest.h>

#include <cmath>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

namespace {

using namespace ag;
using ag::testing::check_error;
using ag::testing::check_shape;
using ag::testing::check_values;

// x (1,2,4): channel 0 = [1,2,3,4], channel 1 = [0,1,0,-1];
// W (1,2,2): W[0,0,:] = [1,2], W[0,1,:] = [3,-1]; bias 0.5.
struct Example {
  Tensor x = tensor({{{1, 2, 3, 4}, {0, 1, 0, -1}}});
  Tensor w = tensor({{{1, 2}, {3, -1}}});
  Tensor b = tensor({0.5});
};

}  // namespace

TEST_CASE("layers/conv1d: y[t] = bias + sum_c sum_k W[c,k] x[c, t*S + k*D - P], by hand") {
  Example e;
  for (bool plain : {false, true}) {
    INFO(std::string(plain ? "reference" : "fast") << " mode");
    ReferenceModeGuard mode(plain);
    // padding 1: T_out = (4 + 2 - 1 - 1)/1 + 1 = 5; step t reads x[t-1], x[t]
    //   t=0: (1*0 + 2*1) + (3*0 - 1*0) + 0.5 = 2.5     t=1: (1 + 4) + (0 - 1) + 0.5 = 4.5
    //   t=2: (2 + 6) + (3 - 0) + 0.5 = 11.5            t=3: (3 + 8) + (0 + 1) + 0.5 = 12.5
    //   t=4: (4 + 0) + (-3 + 0) + 0.5 = 1.5
    Tensor y = nn::conv1d(e.x, e.w, e.b, /*stride=*/1, /*padding=*/1);
    check_shape(y, {1, 1, 5});
    check_values(y, {2.5, 4.5, 11.5, 12.5, 1.5});
    // stride 2, padding 1, dilation 2: the kernel spans 3 steps, T_out = (6 - 3)/2 + 1 = 2;
    // step t reads x[2t - 1], x[2t + 1]
    //   t=0: (0 + 2*2) + (0 - 1*1) + 0.5 = 3.5         t=1: (1*2 + 2*4) + (3*1 + 1) + 0.5 = 14.5
    check_values(nn::conv1d(e.x, e.w, e.b, 2, 1, 2), {3.5, 14.5});
    // no padding, no bias: t=0 reads x[0], x[1]: 1 + 4 + 0 - 1 = 4; then 8 + 3 = 11, 11 + 1 = 12
    check_values(nn::conv1d(e.x, e.w), {4, 11, 12});
    // an unbatched (C_in, T) input gives (C_out, T_out)
    Tensor unbatched = nn::conv1d(squeeze(e.x, 0), e.w, e.b, 1, 1);
    check_shape(unbatched, {1, 5});
    check_values(unbatched, {2.5, 4.5, 11.5, 12.5, 1.5});
  }
}

TEST_CASE("layers/conv1d: gradients by hand for one output step") {
  // L = y[0,0,1] with padding 1: y[1] reads x[c,0], x[c,1] through W[c,0], W[c,1], so
  //   dL/dx[c,0] = W[c,0], dL/dx[c,1] = W[c,1], other steps 0;  dL/dW[c,k] = x[c,k];  dL/db = 1
  Example e;
  for (bool plain : {false, true}) {
    ReferenceModeGuard mode(plain);
    Tensor x = e.x.clone().requires_grad_(), w = e.w.clone().requires_grad_(),
           b = e.b.clone().requires_grad_();
    Tensor y = nn::conv1d(x, w, b, 1, 1);
    sum(narrow(y, 2, 1, 1)).backward();
    check_values(x.grad(), {1, 2, 0, 0, 3, -1, 0, 0});
    check_values(w.grad(), {1, 2, 0, 1});
    check_values(b.grad(), {1});
    CHECK(std::string(y.grad_fn()->name) == "Conv1dBackward");
  }
}

TEST_CASE("layers/conv1d: PyTorch's parameter names, shapes, initialisation and summary") {
  manual_seed(0);
  nn::Conv1d conv(4, 6, 3, /*stride=*/1, /*padding=*/1);
  auto named = conv.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "weight");
  check_shape(named[0].second, {6, 4, 3});
  CHECK(named[1].first == "bias");
  check_shape(named[1].second, {6});
  // kaiming_uniform_(a = sqrt(5)) and the bias: both within 1/sqrt(in_channels * K)
  const double bound = 1 / std::sqrt(12.0);
  for (const auto& [name, p] : named)
    for (real v : p.to_vector()) CHECK(std::abs(double(v)) <= bound);
  CHECK(conv.extra_repr() ==
        "in_channels=4, out_channels=6, kernel_size=3, stride=1, padding=1, dilation=1, bias=true");
  check_shape(conv.forward(zeros({2, 4, 7})), {2, 6, 7});  // padding (K-1)/2 keeps the length
  nn::Conv1d no_bias(4, 6, 3, 2, 0, 1, false);
  CHECK(no_bias.named_parameters().size() == 1);
  check_shape(no_bias.forward(zeros({2, 4, 7})), {2, 6, 3});
}

TEST_CASE("grad/conv1d: finite differences, every stride, padding and dilation, both modes") {
  if constexpr (!ag::testing::is_double) return;
  struct Setting {
    int64_t kernel, stride, padding, dilation;
    bool bias;
  };
  const Setting settings[] = {{3, 1, 1, 1, true},
                              {2, 2, 0, 1, false},
                              {3, 2, 2, 2, true},
                              {1, 1, 0, 1, true},
                              {3, 3, 1, 1, true}};
  for (const Setting& s : settings) {
    INFO("kernel " << s.kernel << " stride " << s.stride << " padding " << s.padding << " dilation "
                   << s.dilation << " bias " << s.bias);
    Tensor x = ag::testing::leaf({2, 3, 7}, 1);
    Tensor w = ag::testing::leaf({4, 3, s.kernel}, 2);
    Tensor b = ag::testing::leaf({4}, 3);
    for (bool plain : {false, true}) {
      INFO(std::string(plain ? "reference" : "fast") << " mode");
      ReferenceModeGuard mode(plain);
      if (s.bias)
        ag::testing::check_gradients(
            [&](const std::vector<Tensor>& in) {
              return nn::conv1d(in[0], in[1], in[2], s.stride, s.padding, s.dilation);
            },
            {x, w, b});
      else
        ag::testing::check_gradients(
            [&](const std::vector<Tensor>& in) {
              return nn::conv1d(in[0], in[1], Tensor(), s.stride, s.padding, s.dilation);
            },
            {x, w});
    }
  }
  manual_seed(2);
  nn::Conv1d conv(2, 3, 3, 1, 1);
  Tensor x = ag::testing::leaf({2, 2, 5}, 4);
  ag::testing::check_module_gradients(conv, [&] { return conv.forward(x); }, {x});
}

TEST_CASE("errors: conv1d and Conv1d name the kernel that does not fit the padded input") {
  Example e;
  // kernel 3, dilation 2 spans 5 steps; the input has 2 + 2 * 1 = 4
  check_error(
      [&] {
        nn::conv1d(narrow(e.x, 2, 0, 2), tensor({{{1, 2, 3}, {4, 5, 6}}}), {}, 1, 1, 2);
      },
      {"conv1d:", "kernel_size 3, dilation 2", "spans 5 steps", "2 steps + 2 * padding 1 = 4"});
  nn::Conv1d conv(2, 3, 5);
  check_error(
      [&] {
        conv.forward(zeros({1, 2, 4}));
      },
      {"Conv1d:", "kernel_size 5, dilation 1", "spans 5 steps", "(1,2,4)",
       "4 steps + 2 * padding 0 = 4"});
  check_error(
      [&] {
        conv.forward(zeros({1, 3, 8}));
      },
      {"Conv1d:", "input (1,3,8)", "in_channels = 2", "(3,2,5)"});
  check_error([&] { conv.forward(zeros({8})); }, {"Conv1d:", "input (8)"});
  check_error([&] { nn::conv1d(e.x, e.w, e.b, 0); },
              {"conv1d:", "stride 0, padding 0 and dilation 1"});
  check_error([&] { nn::conv1d(e.x, e.w, e.b, 1, -1); }, {"conv1d:", "padding -1"});
  check_error([&] { nn::conv1d(e.x, e.w, tensor({1, 2})); }, {"conv1d:", "bias (2)", "shape (1)"});
  check_error([&] { nn::conv1d(e.x, reshape(e.w, {2, 2})); }, {"conv1d:", "weight (2,2)", "3-D"});
  check_error([] { nn::Conv1d(2, 3, 0); }, {"Conv1d:", "kernel_size 0"});
  check_error([] { nn::Conv1d(2, 3, 3, 1, 0, 0); }, {"Conv1d:", "dilation 0"});
}
