// nn::SequenceAttention [F0.6] [F0.7] over the states of each encoder seed 000
// allows ("an RNN or a CNN"): an LSTM's, or tanh of a Conv1d's features. The
// RNN case is in test_rnn.cpp, the PyTorch fixtures of all three in
// test_pytorch_interop.cpp.
#include <doctest/doctest.h>

#include <cmath>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

namespace {

using namespace ag;
using ag::testing::check_error;
using ag::testing::check_shape;
using ag::testing::max_abs_diff;
using ag::testing::names_of;

}  // namespace

TEST_CASE("layers/sequence_attention [F0.6] [F0.7]: LSTM and Conv1d encoders, names and states") {
  manual_seed(11);
  Generator gen(11);
  Tensor x = randn({2, 6, 3}, gen);

  nn::SequenceAttention over_lstm(3, 4, nn::SequenceEncoder::LSTM);
  CHECK(names_of(over_lstm) == std::vector<std::string>{"lstm.weight_ih_l0", "lstm.weight_hh_l0",
                                                        "lstm.bias_ih_l0", "lstm.bias_hh_l0",
                                                        "linear.weight", "linear.bias"});
  CHECK(over_lstm.rnn == nullptr);
  // the states are the LSTM's own output
  CHECK(max_abs_diff(over_lstm.encode(x), over_lstm.lstm->forward(x).output) == 0);

  nn::SequenceAttention over_conv(3, 4, nn::SequenceEncoder::Conv1d, 5);
  CHECK(names_of(over_conv) ==
        std::vector<std::string>{"conv.weight", "conv.bias", "linear.weight", "linear.bias"});
  CHECK(over_conv.conv->padding == 2);
  CHECK(over_conv.extra_repr() == "input_size=3, hidden_size=4, encoder=Conv1d, kernel_size=5");
  // h_t = tanh(conv(x)_t), one state per step, time back in dim 1
  Tensor states = over_conv.encode(x);
  check_shape(states, {2, 6, 4});
  Tensor by_hand = transpose(tanh(over_conv.conv->forward(transpose(x, 1, 2))), 1, 2);
  CHECK(max_abs_diff(states, by_hand) < ag::testing::tol);

  // [F0.6] [F0.7] the attention over them: weights sum to 1, output = h_t + sum_i a_i h_i
  for (nn::SequenceAttention* layer : {&over_lstm, &over_conv}) {
    INFO("encoder " << std::string(nn::encoder_name(layer->encoder)));
    nn::SequenceAttentionOutput out = layer->forward(x);
    check_shape(out.output, {2, 6, 4});
    for (int64_t b = 0; b < 2; ++b) {
      double total = 0;
      for (int64_t t = 0; t < 6; ++t) total += out.weights.at({b, t});
      CHECK(total == doctest::Approx(1).epsilon(ag::testing::tol));
      for (int64_t k = 0; k < 4; ++k) {
        double c = 0;
        for (int64_t i = 0; i < 6; ++i) c += out.weights.at({b, i}) * out.states.at({b, i, k});
        CHECK(out.context.at({b, k}) == doctest::Approx(c).epsilon(ag::testing::tol));
        CHECK(out.output.at({b, 2, k}) ==
              doctest::Approx(out.states.at({b, 2, k}) + c).epsilon(ag::testing::tol));
      }
    }
  }
}

TEST_CASE("layers/sequence_attention [F0.6]: padding a sequence changes nothing, every encoder") {
  // Sequence 1 has 3 real steps; whatever its padding holds, its states, weights
  // and output are those of the 3 steps alone (the convolution reads zeros past
  // the end, as it reads its own padding).
  manual_seed(12);
  Generator gen(12);
  Tensor x = randn({2, 5, 3}, gen);
  Tensor alone = narrow(narrow(x, 0, 1, 1), 1, 0, 3);  // (1,3,3)
  for (nn::SequenceEncoder encoder :
       {nn::SequenceEncoder::RNN, nn::SequenceEncoder::LSTM, nn::SequenceEncoder::Conv1d}) {
    INFO("encoder " << std::string(nn::encoder_name(encoder)));
    nn::SequenceAttention layer(3, 4, encoder);
    nn::SequenceAttentionOutput padded = layer.forward(x, {5, 3});
    nn::SequenceAttentionOutput own = layer.forward(alone);
    CHECK(max_abs_diff(narrow(narrow(padded.states, 0, 1, 1), 1, 0, 3), own.states) <
          ag::testing::tol);
    CHECK(max_abs_diff(narrow(padded.context, 0, 1, 1), own.context) < ag::testing::tol);
    CHECK(max_abs_diff(narrow(narrow(padded.weights, 0, 1, 1), 1, 0, 3), own.weights) <
          ag::testing::tol);
    CHECK(padded.weights.at({1, 3}) == 0);  // no weight on padding
    CHECK(padded.output.at({1, 4, 0}) == 0);
  }
}

TEST_CASE("grad/sequence_attention [F0.6] [F0.7]: finite differences over LSTM and Conv1d states") {
  if constexpr (!ag::testing::is_double) return;
  manual_seed(13);
  Generator gen(13);
  Tensor x = randn({2, 4, 2}, gen);
  x.requires_grad_();
  for (nn::SequenceEncoder encoder : {nn::SequenceEncoder::LSTM, nn::SequenceEncoder::Conv1d}) {
    INFO("encoder " << std::string(nn::encoder_name(encoder)));
    nn::SequenceAttention layer(2, 3, encoder);
    for (bool plain : {false, true}) {
      ReferenceModeGuard mode(plain);
      ag::testing::check_module_gradients(
          layer,
          [&] {
            nn::SequenceAttentionOutput out = layer.forward(x, {4, 3});
            return cat({reshape(out.output, {-1}), reshape(out.weights, {-1})}, 0);
          },
          // the score's bias adds the same to every e_i, which softmax ignores: its gradient is 0
          {x}, {"linear.bias"});
    }
  }
}

TEST_CASE("errors: SequenceAttention names a bad kernel_size, input or lengths") {
  check_error([] { nn::SequenceAttention(3, 4, nn::SequenceEncoder::Conv1d, 4); },
              {"SequenceAttention:", "kernel_size 4 must be odd"});
  nn::SequenceAttention layer(3, 4, nn::SequenceEncoder::Conv1d);
  check_error(
      [&] {
        layer.forward(zeros({2, 5, 2}));
      },
      {"SequenceAttention:", "(2,5,2)", "input_size = 3"});
  check_error(
      [&] {
        layer.forward(zeros({2, 5, 3}), {5, 6});
      },
      {"SequenceAttention:", "length 6 of sequence 1", "1..5"});
}
