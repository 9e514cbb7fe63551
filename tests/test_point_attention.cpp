// Seed 000's point attention: Softmax [F0.2] and PointAttention [F0.1-F0.4].
// Output shapes, values computed by hand, gradcheck of the output with respect
// to the input and the score's parameters (double flavor), and the error
// messages of misuse.
#include <doctest/doctest.h>

#include <cmath>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

using namespace ag;
using namespace ag::testing;

// --- Softmax [F0.2] ------------------------------------------------------------------------

TEST_CASE("layers/softmax [F0.2]: a_i = exp(e_i) / sum_j exp(e_j), not e^i") {
  nn::Softmax softmax_layer(/*dim=*/1);
  Tensor e = tensor({{1, 2, 3}, {1000, 1000, 1000}});
  Tensor a = softmax_layer.forward(e);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  // Large scores do not overflow: the max is subtracted first.
  check_values(
      a, {std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z, 1.0 / 3, 1.0 / 3, 1.0 / 3});
  // The seed's literal e^i (exponent = the position i) would give the same
  // weights whatever the scores: positions 0,1,2 -> 1, e, e^2 normalised.
  // That it depends on the scores is the point of attention.
  Tensor shifted = softmax_layer.forward(tensor({{3, 2, 1}}));
  CHECK(shifted.data()[0] > shifted.data()[2]);
  CHECK(softmax_layer.to_string().find("Softmax(dim=1)") == 0);
}

// --- PointAttention [F0.1-F0.4] -----------------------------------------------------------

TEST_CASE(
    "layers/point_attention [F0.4]: the seed's shapes, x (3,5,64) -> context (3,64), a (3,5,1)") {
  manual_seed(0);
  nn::PointAttention attention(64);
  Tensor x = randn({3, 5, 64});
  auto [context, weights] = attention.forward(x);
  check_shape(context, {3, 64});
  check_shape(weights, {3, 5, 1});
  // [F0.2] the weights of each sequence sum to 1.
  check_values(sum(weights, 1), {1, 1, 1});
  auto names = attention.named_parameters();
  REQUIRE(names.size() == 2);
  CHECK(names[0].first == "linear.weight");
  CHECK(names[1].first == "linear.bias");
  check_shape(names[0].second, {1, 64});
}

TEST_CASE("layers/point_attention [F0.1] [F0.2] [F0.3] [F0.4]: each step by hand") {
  nn::PointAttention attention(2);
  set_values(attention.linear->weight, tensor({{1, -1}}));
  set_values(attention.linear->bias, tensor({0.5}));
  // One sequence of three elements.
  Tensor x = tensor({{{1, 0}, {0, 1}, {2, 2}}});
  // [F0.1] e = W_e x + b_e = (1.5, -0.5, 0.5)
  const double e[3] = {1.5, -0.5, 0.5};
  // [F0.2] a = exp(e) / sum exp(e)
  const double z = std::exp(e[0]) + std::exp(e[1]) + std::exp(e[2]);
  const double a[3] = {std::exp(e[0]) / z, std::exp(e[1]) / z, std::exp(e[2]) / z};
  auto [context, weights] = attention.forward(x);
  check_values(weights, {a[0], a[1], a[2]});
  // [F0.4] context = sum_i a_i x_i
  check_values(context, {a[0] * 1 + a[2] * 2, a[1] * 1 + a[2] * 2});
  // [F0.3] the residual form: every element plus the context.
  Tensor h = nn::add_context(x, context);
  check_shape(h, {1, 3, 2});
  check_values(h, {1 + context.data()[0], context.data()[1], context.data()[0],
                   1 + context.data()[1], 2 + context.data()[0], 2 + context.data()[1]});
}

TEST_CASE("layers/point_attention: errors") {
  nn::PointAttention attention(4);
  check_error(
      [&] {
        (void)attention.forward(zeros({2, 4}));
      },
      {"PointAttention:", "(2,4)", "(batch, time, hidden = 4)"});
  check_error(
      [] {
        (void)nn::add_context(zeros({2, 3, 4}), zeros({2, 5}));
      },
      {"add_context:", "(2,3,4)", "(2,5)"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE("layers/point_attention [F0.1] [F0.2] [F0.3] [F0.4]: gradcheck w.r.t. x and the score") {
  manual_seed(13);
  nn::PointAttention attention(3);
  auto outputs = [&](const Tensor& x) {
    nn::AttentionOutput out = attention.forward(x);
    return concat({reshape(out.context, {-1}), reshape(out.weights, {-1}),
                   reshape(nn::add_context(x, out.context), {-1})},
                  0);
  };
  Tensor x = leaf({2, 4, 3}, 14);
  check_gradients([&](const std::vector<Tensor>& in) { return outputs(in[0]); }, {x});
  // The score's W_e and b_e are the module's own tensors: perturbed in place.
  check_module_gradients(attention, [&] { return outputs(x); }, {x});
}
#endif
