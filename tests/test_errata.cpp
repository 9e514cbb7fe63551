// The numbers docs/errata.md quotes for F0.2 and F0.5, recomputed (the other
// errata are checked beside their layers: see the test named in each section).
// They print as MESSAGE lines (no -s needed; -s would bury them under SUCCESS lines):
//   build/release/tests/attograd_tests -tc="errata*"
#include <doctest/doctest.h>

#include <cmath>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"

using namespace ag;
using ag::testing::check_error;
using ag::testing::check_values;

TEST_CASE("errata [F0.2]: softmax follows the scores; the seed's e^i (i the position) does not") {
  // attograd: a_i = exp(e_i) / sum_j exp(e_j). Reversing the scores reverses the weights.
  Tensor a = softmax(tensor({3, 1, 0.2}), 0);
  Tensor reversed = softmax(tensor({0.2, 1, 3}), 0);
  MESSAGE("softmax of scores (3, 1, 0.2): " << a);
  MESSAGE("softmax of scores (0.2, 1, 3): " << reversed);
  const double z = std::exp(3.0) + std::exp(1.0) + std::exp(0.2);
  check_values(a, {std::exp(3.0) / z, std::exp(1.0) / z, std::exp(0.2) / z}, 1e-6);
  check_values(reversed, {std::exp(0.2) / z, std::exp(1.0) / z, std::exp(3.0) / z}, 1e-6);
  // The seed's text read literally, e^i / sum_j e^j over the positions i = 1..3:
  // the same weights for both score vectors, and for any other.
  Tensor positions = tensor({1, 2, 3});
  Tensor literal = exp(positions) / sum(exp(positions));
  MESSAGE("the seed's e^i / sum_j e^j, i = 1..3: " << literal << " whatever the scores");
  const double zp = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  check_values(literal, {std::exp(1.0) / zp, std::exp(2.0) / zp, std::exp(3.0) / zp}, 1e-6);
  CHECK(a.data()[0] > 0.8);        // the largest score takes most of the weight
  CHECK(literal.data()[0] < 0.1);  // the literal reading gives it the least
}

TEST_CASE("errata [F0.5]: the seed's h_t = f(W h_{t-1} + b + x_t) needs input size = hidden size") {
  Generator gen(1);
  Tensor h = randn({2, 3}, gen), x = randn({2, 5}, gen), w = randn({3, 3}, gen);
  // Inputs of 5 features, a state of 3: the seed's sum has no meaning.
  check_error([&] { (void)(matmul(h, transpose(w, 0, 1)) + x); },
              {"add: (2,3) and (2,5) cannot be broadcast"});
  // The standard form maps the input with its own matrix W_xh (3,5).
  nn::RNN rnn(/*input_size=*/5, /*hidden_size=*/3);
  nn::SequenceOutput out = rnn.forward(randn({2, 4, 5}, gen));
  MESSAGE(rnn.to_string());
  CHECK(out.output.shape() == Shape{2, 4, 3});
  CHECK(rnn.weight_ih_l0.shape() == Shape{3, 5});
}
