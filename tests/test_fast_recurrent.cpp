// The recurrent layers' fast twins against their plain code, through the
// public layers: LSTMCell, LSTM (one layer, stacked, bidirectional, padded,
// with and without an initial state, with dropout between layers) and
// LSTM::step; RNNCell, RNN and RNN::step [F0.5] the same way. In both modes:
// the outputs, the gradients of the input, of h0 and c0 and of every
// parameter agree to float rounding, a gradcheck passes in each mode (double
// flavor, small shapes), and a bad call raises the same message.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

using namespace ag;
using ag::testing::check_same_error;

namespace {

// Everything a recurrent layer returns, flattened into one tensor, so that
// one backward reaches the inputs through the outputs and the last states.
Tensor flat_parts(const std::vector<Tensor>& parts) {
  std::vector<Tensor> rows;
  for (const Tensor& p : parts)
    if (p.defined()) rows.push_back(reshape(p, {-1}));
  return cat(rows, 0);
}
Tensor flat(const nn::SequenceOutput& out) { return flat_parts({out.output, out.h_n, out.c_n}); }
Tensor flat(const nn::RecurrentState& state) { return flat_parts({state.h, state.c}); }

// f() in one mode: its value and the gradients of sum(w * f()) for random
// weights w with respect to the module's parameters and the extra inputs.
std::vector<Tensor> values_and_grads(const nn::Module& module, const std::function<Tensor()>& f,
                                     const std::vector<Tensor>& inputs, bool reference) {
  ReferenceModeGuard mode(reference);
  std::vector<Tensor> wrt = inputs;
  for (const Tensor& p : module.parameters()) wrt.push_back(p);
  for (const Tensor& x : wrt) x.impl()->grad.reset();
  Tensor out = f();
  Generator gen(5);
  sum(out * randn(out.shape(), gen)).backward();
  std::vector<Tensor> result{out.detach()};
  for (const Tensor& x : wrt) result.push_back(x.grad());
  return result;
}

// f() in both modes: values and gradients agree; in the double flavor, each
// mode's gradients agree with finite differences (`unread`: the parameters f
// does not use, as check_module_gradients takes them). Returns the largest difference.
double check_modes_agree(nn::Module& module, const std::function<Tensor()>& f,
                         const std::vector<Tensor>& inputs,
                         const std::vector<std::string>& unread = {}) {
  const std::vector<Tensor> fast = values_and_grads(module, f, inputs, false);
  const std::vector<Tensor> reference = values_and_grads(module, f, inputs, true);
  const double tolerance = testing::is_double ? 1e-12 : 2e-5;
  double worst = 0;
  for (size_t i = 0; i < fast.size(); ++i) {
    INFO((i == 0 ? std::string("output") : "gradient " + std::to_string(i - 1)));
    REQUIRE(fast[i].defined() == reference[i].defined());
    if (!fast[i].defined()) continue;
    const double diff = testing::max_abs_diff(fast[i], reference[i]);
    CHECK(diff <= tolerance);
    worst = std::max(worst, diff);
  }
  if constexpr (testing::is_double) {
    for (bool plain : {false, true}) {
      INFO("gradcheck in " << std::string(plain ? "reference" : "fast") << " mode");
      ReferenceModeGuard mode(plain);
      testing::check_module_gradients(module, f, inputs, unread);
    }
  }
  return worst;
}

// The name of the op that made the input of the op that made t (t is a
// narrow of the fused op's output in fast mode), or "" for a leaf.
std::string maker_of_input(const Tensor& t) {
  const Tensor& input = t.grad_fn()->inputs[0].tensor;
  return input.grad_fn() ? input.grad_fn()->name : "";
}

}  // namespace

TEST_CASE(
    "modes/LSTMCell: both modes agree on h', c' and every gradient, with and without a state") {
  manual_seed(1);
  nn::LSTMCell cell(5, 4);
  const Tensor x = testing::leaf({3, 5}, 11);
  const Tensor h = testing::leaf({3, 4}, 12), c = testing::leaf({3, 4}, 13);
  double worst = check_modes_agree(cell, [&] { return flat(cell.forward(x, {h, c})); }, {x, h, c});
  // from zeros, h W_hh^T is 0: weight_hh moves nothing
  worst = std::max(
      worst, check_modes_agree(cell, [&] { return flat(cell.forward(x)); }, {x}, {"weight_hh"}));
  // two steps: the second reads the first's h and c
  worst =
      std::max(worst, check_modes_agree(cell,
                                        [&] {
                                          const nn::RecurrentState first = cell.forward(x, {h, c});
                                          return flat(cell.forward(x * real(0.5), first));
                                        },
                                        {x, h, c}));
  MESSAGE("largest fast/reference difference: " << worst);
  // the fast mode runs the fused op (h' is a narrow of its output), the reference the formulas
  {
    ReferenceModeGuard fast(false);
    CHECK(maker_of_input(cell.forward(x, {h, c}).h) == "LSTMCellBackward");
  }
  {
    ReferenceModeGuard plain;
    CHECK(cell.forward(x, {h, c}).h.grad_fn()->name == std::string("MulBackward"));
  }
  check_same_error([&] { cell.forward(zeros({3, 4})); }, {"LSTMCell: input (3,4)"});
  check_same_error([&] { cell.forward(x, {zeros({3, 5}), c}); }, {"LSTMCell: h (3,5)"});
  check_same_error([&] { cell.forward(x, {h, zeros({2, 4})}); }, {"LSTMCell: c (2,4)"});
}

TEST_CASE("modes/LSTM: both modes agree, one layer, with and without h0 and c0") {
  manual_seed(2);
  nn::LSTM lstm(3, 4);
  const Tensor x = testing::leaf({2, 5, 3}, 21);
  const Tensor h0 = testing::leaf({1, 2, 4}, 22), c0 = testing::leaf({1, 2, 4}, 23);
  double worst = check_modes_agree(lstm,
                                   [&] {
                                     return flat(lstm.forward(x, {}, {h0, c0}));
                                   },
                                   {x, h0, c0});
  worst = std::max(worst, check_modes_agree(lstm, [&] { return flat(lstm.forward(x)); }, {x}));
  // fast mode: the five steps are one op
  {
    ReferenceModeGuard fast(false);
    CHECK(maker_of_input(lstm.forward(x).output) == "LSTMLayerBackward");
  }
  // only h0: c starts at zeros
  worst = std::max(worst, check_modes_agree(lstm,
                                            [&] {
                                              return flat(lstm.forward(x, {}, {h0, Tensor()}));
                                            },
                                            {x, h0}));
  MESSAGE("largest fast/reference difference: " << worst);
}

TEST_CASE("modes/LSTM: both modes agree with padding (lengths), forward and reverse") {
  manual_seed(3);
  nn::LSTM lstm(3, 4, /*num_layers=*/1, /*dropout=*/0, /*bidirectional=*/true);
  const Tensor x = testing::leaf({3, 5, 3}, 31);
  const Tensor h0 = testing::leaf({2, 3, 4}, 32), c0 = testing::leaf({2, 3, 4}, 33);
  const std::vector<int64_t> lengths{5, 2, 1};
  double worst = check_modes_agree(lstm,
                                   [&] {
                                     return flat(lstm.forward(x, lengths, {h0, c0}));
                                   },
                                   {x, h0, c0});
  worst =
      std::max(worst, check_modes_agree(lstm, [&] { return flat(lstm.forward(x, lengths)); }, {x}));
  // padding outputs zeros in both modes, exactly
  for (bool plain : {false, true}) {
    ReferenceModeGuard mode(plain);
    const Tensor out = lstm.forward(x, lengths, {h0, c0}).output;
    for (int64_t t = 2; t < 5; ++t)
      for (int64_t k = 0; k < 8; ++k) CHECK(out.at({1, t, k}) == 0);
  }
  MESSAGE("largest fast/reference difference: " << worst);
}

TEST_CASE("modes/LSTM: both modes agree stacked and bidirectional, padded, with dropout") {
  manual_seed(4);
  nn::LSTM lstm(3, 2, /*num_layers=*/2, /*dropout=*/0.25, /*bidirectional=*/true);
  const Tensor x = testing::leaf({2, 3, 3}, 41);
  const Tensor h0 = testing::leaf({4, 2, 2}, 42), c0 = testing::leaf({4, 2, 2}, 43);
  const std::vector<int64_t> lengths{3, 2};
  double worst = 0;
  for (bool training : {false, true}) {
    INFO((training ? "training (dropout between the layers)" : "eval"));
    lstm.train(training);
    worst = std::max(worst,
                     check_modes_agree(lstm,
                                       [&] {
                                         manual_seed(17);  // the same dropout masks at every call
                                         return flat(lstm.forward(x, lengths, {h0, c0}));
                                       },
                                       {x, h0, c0}));
  }
  lstm.eval();
  worst = std::max(worst, check_modes_agree(lstm, [&] { return flat(lstm.forward(x)); }, {x}));
  MESSAGE("largest fast/reference difference: " << worst);
}

TEST_CASE("modes/LSTM: a longer sequence at the benchmark's sizes agrees in both modes") {
  manual_seed(5);
  nn::LSTM lstm(32, 64);
  const Tensor x = testing::leaf({32, 12, 32}, 51);
  const std::vector<Tensor> fast = values_and_grads(
      lstm, [&] { return flat(lstm.forward(x)); }, {x}, false);
  const std::vector<Tensor> reference = values_and_grads(
      lstm, [&] { return flat(lstm.forward(x)); }, {x}, true);
  for (size_t i = 0; i < fast.size(); ++i) {
    INFO((i == 0 ? std::string("output") : "gradient " + std::to_string(i - 1)));
    CHECK(testing::max_abs_diff(fast[i], reference[i]) <= (testing::is_double ? 1e-12 : 1e-4));
  }
}

TEST_CASE("modes/LSTM: the steps' h W_hh^T from a copy of W_hh^T and as A B^T both agree") {
  // Where small A B^T products run through a copy of A (set_small_nt_via_tt),
  // the layer's steps use one copy of W_hh^T instead: a batch of 16 and
  // 4H = 64 gates are such a product. Forced on and off, so both run on any CPU.
  for (int via_tt : {1, 0}) {
    INFO("set_small_nt_via_tt(" << via_tt << ")");
    testing::GemmFormSetting setting(set_small_nt_via_tt, via_tt);
    manual_seed(52);
    nn::LSTM lstm(8, 16);
    const Tensor x = testing::leaf({16, 3, 8}, 53), h0 = testing::leaf({1, 16, 16}, 54);
    const Tensor c0 = testing::leaf({1, 16, 16}, 55);
    check_modes_agree(lstm, [&] { return flat(lstm.forward(x, {}, {h0, c0})); }, {x, h0, c0});
    std::vector<int64_t> lengths(16, 3);
    lengths[2] = 1;
    lengths[7] = 2;
    check_modes_agree(lstm, [&] { return flat(lstm.forward(x, lengths)); }, {x});
    nn::LSTM both_ways(8, 16, 1, 0, /*bidirectional=*/true);  // the reverse steps too
    check_modes_agree(both_ways, [&] { return flat(both_ways.forward(x, lengths)); }, {x});
  }
}

TEST_CASE("modes/LSTM::step: the public step agrees in both modes") {
  manual_seed(6);
  nn::LSTM lstm(3, 4);
  const nn::RecurrentWeights& w = lstm.weights[0];
  const Tensor input_part = testing::leaf({2, 16}, 61);
  const Tensor h = testing::leaf({2, 4}, 62), c = testing::leaf({2, 4}, 63);
  // the step starts from input_part = W_ih x_t + b_ih: it does not read those two
  const double worst = check_modes_agree(lstm,
                                         [&] {
                                           return flat(lstm.step(input_part, {h, c}, w));
                                         },
                                         {input_part, h, c}, {"weight_ih_l0", "bias_ih_l0"});
  MESSAGE("largest fast/reference difference: " << worst);
  {
    ReferenceModeGuard fast(false);
    CHECK(maker_of_input(lstm.step(input_part, {h, c}, w).c) == "LSTMStepBackward");
  }
}

TEST_CASE("modes/LSTM: the same error messages in both modes") {
  nn::LSTM lstm(3, 4, 2, 0, true);
  const Tensor x = zeros({2, 5, 3});
  check_same_error([&] { lstm.forward(zeros({2, 5, 4})); }, {"LSTM: input (2,5,4)"});
  check_same_error([&] { lstm.forward(x, {5, 6}); }, {"LSTM: length 6 of sequence 1"});
  check_same_error([&] { lstm.forward(x, {5}); }, {"LSTM: 1 lengths given"});
  check_same_error(
      [&] {
        lstm.forward(x, {}, {zeros({2, 2, 4}), Tensor()});
      },
      {"LSTM: initial state h0 (2,2,4)"});
  check_same_error(
      [&] {
        lstm.forward(x, {}, {Tensor(), zeros({4, 2, 3})});
      },
      {"LSTM: initial state c0 (4,2,3)"});
}

TEST_CASE("modes/RNNCell [F0.5]: both modes agree on h' and every gradient, with and without h") {
  manual_seed(7);
  nn::RNNCell cell(5, 4);
  const Tensor x = testing::leaf({3, 5}, 71), h = testing::leaf({3, 4}, 72);
  double worst = check_modes_agree(cell, [&] { return cell.forward(x, h); }, {x, h});
  // from zeros, W_hh h is 0: weight_hh moves nothing
  worst =
      std::max(worst, check_modes_agree(cell, [&] { return cell.forward(x); }, {x}, {"weight_hh"}));
  worst = std::max(
      worst, check_modes_agree(
                 cell, [&] { return cell.forward(x * real(0.5), cell.forward(x, h)); }, {x, h}));
  MESSAGE("largest fast/reference difference: " << worst);
  {
    ReferenceModeGuard fast(false);
    CHECK(cell.forward(x, h).grad_fn()->name == std::string("RNNCellBackward"));
  }
  check_same_error([&] { cell.forward(zeros({3, 4})); }, {"RNNCell: input (3,4)"});
  check_same_error([&] { cell.forward(x, zeros({3, 5})); }, {"RNNCell: state (3,5)"});
}

TEST_CASE("modes/RNN [F0.5]: both modes agree, one layer, padded, bidirectional, stacked") {
  manual_seed(8);
  nn::RNN rnn(3, 4);
  const Tensor x = testing::leaf({3, 5, 3}, 81), h0 = testing::leaf({1, 3, 4}, 82);
  const std::vector<int64_t> lengths{5, 2, 1};
  double worst = check_modes_agree(rnn, [&] { return flat(rnn.forward(x, {}, h0)); }, {x, h0});
  worst = std::max(worst, check_modes_agree(rnn, [&] { return flat(rnn.forward(x)); }, {x}));
  worst = std::max(
      worst, check_modes_agree(rnn, [&] { return flat(rnn.forward(x, lengths, h0)); }, {x, h0}));
  {
    ReferenceModeGuard fast(false);
    CHECK(maker_of_input(rnn.forward(x).output) == "RNNLayerBackward");
  }
  nn::RNN both(3, 4, /*num_layers=*/1, /*dropout=*/0, /*bidirectional=*/true);
  const Tensor h0_both = testing::leaf({2, 3, 4}, 83);
  worst = std::max(worst,
                   check_modes_agree(both, [&] { return flat(both.forward(x, lengths, h0_both)); },
                                     {x, h0_both}));
  nn::RNN stacked(3, 2, /*num_layers=*/2, /*dropout=*/0.25, /*bidirectional=*/true);
  const Tensor h0_stacked = testing::leaf({4, 3, 2}, 84);
  worst =
      std::max(worst, check_modes_agree(stacked,
                                        [&] {
                                          manual_seed(17);  // the same dropout masks at every call
                                          return flat(stacked.forward(x, lengths, h0_stacked));
                                        },
                                        {x, h0_stacked}));
  // padding outputs zeros in both modes, exactly
  for (bool plain : {false, true}) {
    ReferenceModeGuard mode(plain);
    const Tensor out = both.forward(x, lengths, h0_both).output;
    for (int64_t t = 2; t < 5; ++t)
      for (int64_t k = 0; k < 8; ++k) CHECK(out.at({1, t, k}) == 0);
  }
  MESSAGE("largest fast/reference difference: " << worst);
}

TEST_CASE("modes/RNN::step [F0.5]: the public step agrees in both modes; the same errors") {
  manual_seed(9);
  nn::RNN rnn(3, 4, 2);
  const Tensor input_part = testing::leaf({2, 4}, 91), h = testing::leaf({2, 4}, 92);
  // the step starts from input_part = W_ih x_t + b_ih: it does not read those two
  const double worst =
      check_modes_agree(rnn,
                        [&] {
                          return rnn.step(input_part, {h, Tensor()}, rnn.weights[1]).h;
                        },
                        {input_part, h}, {"_l0", "weight_ih_l1", "bias_ih_l1"});
  MESSAGE("largest fast/reference difference: " << worst);
  const Tensor x = zeros({2, 5, 3});
  check_same_error([&] { rnn.forward(zeros({2, 5, 4})); }, {"RNN: input (2,5,4)"});
  check_same_error([&] { rnn.forward(x, {0, 5}); }, {"RNN: length 0 of sequence 0"});
  check_same_error(
      [&] {
        rnn.forward(x, {}, zeros({1, 2, 4}));
      },
      {"RNN: initial state h0 (1,2,4)"});
}
