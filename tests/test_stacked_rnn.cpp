// Stacked and bidirectional RNN [F0.5] and LSTM, as PyTorch's num_layers,
// dropout and bidirectional: the layers and directions composed by hand from
// one-layer modules (padding and initial states included), dropout between
// layers in training only, PyTorch's names, errors, and gradients by finite
// differences (double flavor). The comparison with PyTorch itself is in
// tests/test_pytorch_interop.cpp.
#include <doctest/doctest.h>

#include <cstdio>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

using namespace ag;
using namespace ag::testing;

namespace {

nn::SequenceOutput run(nn::RNN& m, const Tensor& x, const std::vector<int64_t>& lengths,
                       const nn::RecurrentState& initial) {
  return m.forward(x, lengths, initial.h);
}
nn::SequenceOutput run(nn::LSTM& m, const Tensor& x, const std::vector<int64_t>& lengths,
                       const nn::RecurrentState& initial) {
  return m.forward(x, lengths, initial);
}

// x (B,T,F) with its time steps in the opposite order.
Tensor reverse_time(const Tensor& x) {
  std::vector<int64_t> index;
  for (int64_t t = x.size(1) - 1; t >= 0; --t) index.push_back(t);
  return index_select(x, 1, index);
}

// Row `row` of a state (rows, B, H), for sequence b only: (1,1,H).
Tensor state_row(const Tensor& state, int64_t row, int64_t b) {
  if (!state.defined()) return Tensor();
  return narrow(narrow(state, 0, row, 1), 1, b, 1);
}

// The stacked, bidirectional module `stacked`, recomputed sequence by
// sequence from one-layer modules of the same kind holding its weights:
// layer l forward reads the sequence as it is, layer l reverse reads it
// reversed within its own length (so it starts at its last real step), and
// layer l + 1 reads [forward; reverse]. Checks output, h_n and c_n.
template <typename M>
void check_against_one_layer_modules(M& stacked, const Tensor& x,
                                     const std::vector<int64_t>& lengths,
                                     const nn::RecurrentState& initial) {
  const int64_t L = stacked.num_layers, dirs = stacked.num_directions();
  const int64_t H = stacked.hidden_size, B = x.size(0), T = x.size(1);
  const nn::SequenceOutput out = run(stacked, x, lengths, initial);
  check_shape(out.output, {B, T, dirs * H});
  check_shape(out.h_n, {L * dirs, B, H});
  std::vector<std::shared_ptr<M>> single;  // row l*dirs + d, as h_n
  for (int64_t l = 0; l < L; ++l)
    for (int64_t d = 0; d < dirs; ++d) {
      const int64_t index = l * dirs + d;
      auto m = std::make_shared<M>(l == 0 ? stacked.input_size : dirs * H, H);
      set_values(m->weight_ih_l0, stacked.weights[index].weight_ih);
      set_values(m->weight_hh_l0, stacked.weights[index].weight_hh);
      set_values(m->bias_ih_l0, stacked.weights[index].bias_ih);
      set_values(m->bias_hh_l0, stacked.weights[index].bias_hh);
      single.push_back(m);
    }
  for (int64_t b = 0; b < B; ++b) {
    INFO("sequence " << b);
    const int64_t length = lengths.empty() ? T : lengths[b];
    Tensor layer_input = narrow(narrow(x, 0, b, 1), 1, 0, length);  // (1,length,D)
    for (int64_t l = 0; l < L; ++l) {
      INFO("layer " << l);
      std::vector<Tensor> directions;
      for (int64_t d = 0; d < dirs; ++d) {
        const int64_t row = l * dirs + d;
        const nn::RecurrentState start{state_row(initial.h, row, b), state_row(initial.c, row, b)};
        const Tensor input = d == 0 ? layer_input : reverse_time(layer_input);
        const nn::SequenceOutput one = run(*single[row], input, {}, start);
        directions.push_back(d == 0 ? one.output : reverse_time(one.output));
        check_values(state_row(out.h_n, row, b), values_of(one.h_n));
        if (one.c_n.defined()) check_values(state_row(out.c_n, row, b), values_of(one.c_n));
      }
      layer_input = dirs == 1 ? directions[0] : cat(directions, 2);
    }
    check_values(narrow(narrow(out.output, 0, b, 1), 1, 0, length), values_of(layer_input));
    if (length < T)  // padding: zeros in both directions
      for (real v : narrow(narrow(out.output, 0, b, 1), 1, length, T - length).to_vector())
        CHECK(v == 0);
  }
}

}  // namespace

TEST_CASE(
    "layers/rnn [F0.5]: 2 layers, bidirectional, both: one-layer RNNs composed by hand, the "
    "reverse direction starting at each sequence's last step") {
  manual_seed(21);
  Generator gen(21);
  const Tensor x = randn({3, 4, 3}, gen);
  for (auto [layers, bidirectional] : {std::pair{2, false}, {1, true}, {2, true}}) {
    INFO(layers << " layers, bidirectional " << bidirectional);
    nn::RNN rnn(3, 2, layers, /*dropout=*/0, bidirectional);
    const int64_t rows = layers * rnn.num_directions();
    check_against_one_layer_modules(rnn, x, {}, {randn({rows, 3, 2}, gen), Tensor()});
    check_against_one_layer_modules(rnn, x, {4, 1, 3}, {});
    check_against_one_layer_modules(rnn, x, {2, 4, 3}, {randn({rows, 3, 2}, gen), Tensor()});
  }
}

TEST_CASE(
    "layers/lstm: 2 layers, bidirectional, both: one-layer LSTMs composed by hand, h_n and c_n "
    "per layer and direction") {
  manual_seed(22);
  Generator gen(22);
  const Tensor x = randn({3, 4, 3}, gen);
  for (auto [layers, bidirectional] : {std::pair{2, false}, {1, true}, {2, true}}) {
    INFO(layers << " layers, bidirectional " << bidirectional);
    nn::LSTM lstm(3, 2, layers, /*dropout=*/0, bidirectional);
    const int64_t rows = layers * lstm.num_directions();
    check_against_one_layer_modules(lstm, x, {},
                                    {randn({rows, 3, 2}, gen), randn({rows, 3, 2}, gen)});
    check_against_one_layer_modules(lstm, x, {4, 1, 3}, {});
    check_against_one_layer_modules(lstm, x, {2, 4, 3},
                                    {randn({rows, 3, 2}, gen), randn({rows, 3, 2}, gen)});
  }
}

TEST_CASE(
    "layers/rnn [F0.5]: dropout between layers in training only, never after the last layer") {
  Generator gen(23);
  const Tensor x = randn({4, 5, 3}, gen);
  manual_seed(23);
  nn::RNN stacked(3, 6, /*num_layers=*/2, /*dropout=*/0.5);
  nn::RNN layer0(3, 6), layer1(6, 6);
  for (auto [from, to] : {std::pair{0, &layer0}, {1, &layer1}}) {
    set_values(to->weight_ih_l0, stacked.weights[from].weight_ih);
    set_values(to->weight_hh_l0, stacked.weights[from].weight_hh);
    set_values(to->bias_ih_l0, stacked.weights[from].bias_ih);
    set_values(to->bias_hh_l0, stacked.weights[from].bias_hh);
  }
  // Training: layer 1 reads layer 0's outputs through dropout, drawn from the
  // default generator; the same seed draws the same mask by hand.
  manual_seed(99);
  const nn::SequenceOutput trained = stacked.forward(x);
  manual_seed(99);
  const Tensor dropped = nn::dropout(layer0.forward(x).output, 0.5, /*training=*/true);
  int64_t zeros_count = 0;
  for (real v : dropped.to_vector()) zeros_count += v == 0;
  CHECK(zeros_count > dropped.numel() / 4);  // the mask really drops something
  const nn::SequenceOutput by_hand = layer1.forward(dropped);
  check_values(trained.output, values_of(by_hand.output));
  check_values(narrow(trained.h_n, 0, 1, 1), values_of(by_hand.h_n));
  // Eval: no dropout anywhere.
  stacked.eval();
  const nn::SequenceOutput evaluated = stacked.forward(x);
  check_values(evaluated.output, values_of(layer1.forward(layer0.forward(x).output).output));
  // One layer: the dropout has no layer to act between (PyTorch's rule).
  manual_seed(24);
  nn::RNN one(3, 6, /*num_layers=*/1, /*dropout=*/0.5);
  const std::vector<real> in_training = one.forward(x).output.to_vector();
  one.eval();
  CHECK(one.forward(x).output.to_vector() == in_training);
}

TEST_CASE("layers/lstm: PyTorch's parameter names, order and shapes for 2 bidirectional layers") {
  nn::LSTM lstm(3, 5, /*num_layers=*/2, /*dropout=*/0.25, /*bidirectional=*/true);
  CHECK(names_of(lstm) == std::vector<std::string>{
                              "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                              "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
                              "bias_hh_l0_reverse", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1",
                              "bias_hh_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse",
                              "bias_ih_l1_reverse", "bias_hh_l1_reverse"});
  check_shape(lstm.weights[0].weight_ih, {20, 3});  // layer 0 reads x (D = 3)
  check_shape(lstm.weights[1].weight_ih, {20, 3});
  check_shape(lstm.weights[2].weight_ih, {20, 10});  // layer 1 reads [->h; <-h] (2H = 10)
  check_shape(lstm.weights[3].weight_hh, {20, 5});
  CHECK(lstm.weight_ih_l0.is_same(lstm.weights[0].weight_ih));
  CHECK(lstm.extra_repr() ==
        "input_size=3, hidden_size=5, num_layers=2, batch_first=true, dropout=0.25, "
        "bidirectional=true");
  CHECK(nn::RNN(3, 5).extra_repr() == "input_size=3, hidden_size=5, batch_first=true");
  CHECK(names_of(nn::RNN(3, 5, 2)) ==
        std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                 "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"});
  const std::string path = "build/test_stacked_lstm_weights.safetensors";
  lstm.save(path);
  nn::LSTM other(3, 5, 2, 0.25, true);
  other.load(path);
  CHECK(other.weights[3].weight_hh.to_vector() == lstm.weights[3].weight_hh.to_vector());
  nn::LSTM one_way(3, 5, 2);
  check_error([&] { one_way.load(path); }, {"_reverse", "that LSTM does not have"});
  std::remove(path.c_str());
}

TEST_CASE("layers/rnn: num_layers, dropout and h0/c0 errors name the layer and the values") {
  check_error([] { nn::RNN bad(3, 4, /*num_layers=*/0); }, {"RNN:", "num_layers", ">= 1", "got 0"});
  check_error([] { nn::LSTM bad(3, 4, /*num_layers=*/0); },
              {"LSTM:", "num_layers", ">= 1", "got 0"});
  check_error([] { nn::RNN bad(3, 4, 2, /*dropout=*/1); }, {"RNN:", "dropout", "[0, 1)", "got 1"});
  check_error([] { nn::LSTM bad(3, 4, 2, /*dropout=*/-0.5); },
              {"LSTM:", "dropout", "[0, 1)", "got -0.5"});
  nn::RNN rnn(3, 4, /*num_layers=*/2, 0, /*bidirectional=*/true);
  // the one-layer shape (B,H) is not enough: PyTorch's (num_layers * num_directions, B, H)
  check_error(
      [&] {
        (void)rnn.forward(zeros({2, 5, 3}), {}, zeros({2, 4}));
      },
      {"RNN:", "initial state h0 (2,4)", "num_layers * num_directions = 4", "batch = 2",
       "hidden_size = 4"});
  check_error(
      [&] {
        (void)rnn.forward(zeros({2, 5, 3}), {}, zeros({2, 2, 4}));
      },
      {"RNN:", "h0 (2,2,4)", "= 4"});
  nn::LSTM lstm(3, 4, /*num_layers=*/2);
  check_error(
      [&] {
        (void)lstm.forward(zeros({2, 5, 3}), {}, {zeros({2, 2, 4}), zeros({2, 3, 4})});
      },
      {"LSTM:", "initial state c0 (2,3,4)", "batch = 2"});
  check_error(
      [&] {
        (void)lstm.forward(zeros({2, 5, 3}), {}, {zeros({1, 2, 4}), Tensor()});
      },
      {"LSTM:", "initial state h0 (1,2,4)", "num_layers * num_directions = 2"});
  // layer 1's input size is the layers' business, not the caller's: x must still have D = 3
  check_error(
      [&] {
        (void)lstm.forward(zeros({2, 5, 4}));
      },
      {"LSTM:", "(2,5,4)", "input_size = 3"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE(
    "grad/rnn [F0.5]: finite differences for RNN with 2 layers, bidirectional and both (padding, "
    "h0)") {
  manual_seed(25);
  Generator gen(25);
  for (auto [layers, bidirectional] : {std::pair{2, false}, {1, true}, {2, true}}) {
    INFO(layers << " layers, bidirectional " << bidirectional);
    nn::RNN rnn(2, 2, layers, 0, bidirectional);
    Tensor x = leaf({2, 3, 2}, gen), h0 = leaf({layers * rnn.num_directions(), 2, 2}, gen);
    check_module_gradients(rnn,
                           [&] {
                             nn::SequenceOutput out = rnn.forward(x, {3, 2}, h0);
                             return cat({reshape(out.output, {-1}), reshape(out.h_n, {-1})}, 0);
                           },
                           {x, h0});
  }
}

TEST_CASE(
    "grad/lstm: finite differences for LSTM with 2 layers, bidirectional and both (padding, h0, "
    "c0), and through dropout") {
  manual_seed(26);
  Generator gen(26);
  for (auto [layers, bidirectional] : {std::pair{2, false}, {1, true}, {2, true}}) {
    INFO(layers << " layers, bidirectional " << bidirectional);
    nn::LSTM lstm(2, 2, layers, 0, bidirectional);
    const int64_t rows = layers * lstm.num_directions();
    Tensor x = leaf({2, 3, 2}, gen), h0 = leaf({rows, 2, 2}, gen), c0 = leaf({rows, 2, 2}, gen);
    check_module_gradients(
        lstm,
        [&] {
          nn::SequenceOutput out = lstm.forward(x, {2, 3}, {h0, c0});
          return cat({reshape(out.output, {-1}), reshape(out.h_n, {-1}), reshape(out.c_n, {-1})},
                     0);
        },
        {x, h0, c0});
  }
  // Training mode with dropout between the layers: the same seed draws the
  // same mask in every evaluation, so the function is fixed and differentiable.
  nn::LSTM dropped(2, 2, /*num_layers=*/2, /*dropout=*/0.5, /*bidirectional=*/true);
  Tensor x = leaf({2, 3, 2}, gen);
  check_module_gradients(dropped,
                         [&] {
                           manual_seed(27);
                           return reshape(dropped.forward(x, {3, 1}).output, {-1});
                         },
                         {x});
}
#endif
