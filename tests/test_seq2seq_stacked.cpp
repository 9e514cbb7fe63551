// The encoder-decoder [F1.2] [F1.9] [F4.1] [F4.9] with stacked layers (seed
// 004's num_layers = 2, dropout between them) and Bahdanau's bidirectional
// encoder: keys [->h_j; <-h_j], s_0 = tanh(W_s <-h_1 + b_s), by hand; padding,
// dropout in training only, errors, and gradients by finite differences
// (double flavor). The comparison with a PyTorch model is in
// tests/test_pytorch_interop.cpp.
#include <doctest/doctest.h>

#include <algorithm>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

using namespace ag;
using namespace ag::testing;

namespace {

struct Shape2 {
  int64_t num_layers;
  bool bidirectional;
};

// 2 layers, one-way; 1 layer, bidirectional; both.
const std::vector<Shape2> kStackings = {{2, false}, {1, true}, {2, true}};

nn::Seq2SeqOptions stacked_options(nn::CellType cell, nn::ScoreType score, Shape2 stacking,
                                   real dropout = 0) {
  nn::Seq2SeqOptions o;
  o.source_vocab = 6;
  o.target_vocab = 5;
  o.embedding_dim = 2;
  o.hidden_size = 3;
  o.attention_size = 2;
  o.cell = cell;
  o.score = score;
  o.num_layers = stacking.num_layers;
  o.bidirectional = stacking.bidirectional;
  o.dropout = dropout;
  return o;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

TEST_CASE(
    "layers/seq2seq [F1.2] [F1.9] [F4.1] [F4.9]: 2 layers, bidirectional, both: names, keys of "
    "2H, no attention on padding, greedy step 1 = teacher forcing step 1") {
  manual_seed(31);
  for (nn::CellType cell : {nn::CellType::RNN, nn::CellType::LSTM})
    for (nn::ScoreType score :
         {nn::ScoreType::None, nn::ScoreType::Dot, nn::ScoreType::General, nn::ScoreType::Additive})
      for (Shape2 stacking : kStackings) {
        if (score == nn::ScoreType::Dot && stacking.bidirectional) continue;  // refused, below
        INFO(nn::to_string(cell) << " " << nn::to_string(score) << " " << stacking.num_layers
                                 << " layers, bidirectional " << stacking.bidirectional);
        nn::Seq2Seq model(stacked_options(cell, score, stacking));
        const int64_t H = 3, K = stacking.bidirectional ? 2 * H : H;
        CHECK(model.key_size() == K);
        Tensor source = tensor({{3, 4, 5, 0}, {5, 3, 0, 0}});
        Tensor target_in = tensor({{1, 3, 4}, {1, 4, 0}});
        nn::Seq2SeqOutput out = model.forward(source, {3, 2}, target_in);
        check_shape(out.logits, {2, 3, 5});
        check_shape(model.output->weight, {5, H + K});  // [s_t; c_t]
        CHECK(out.attention.defined() == (score != nn::ScoreType::None));
        if (out.attention.defined()) {
          check_shape(out.attention, {2, 3, 4});
          for (int64_t t = 0; t < 3; ++t) {  // [F4.8]
            CHECK(out.attention.at({0, t, 3}) == 0);
            CHECK(out.attention.at({1, t, 2}) == 0);
            CHECK(out.attention.at({1, t, 3}) == 0);
          }
        }
        nn::GreedyDecoding greedy = model.greedy_decode(source, {3, 2}, 4);
        const std::vector<int64_t> first =
            to_indices(reshape(argmax(narrow(out.logits, 1, 0, 1), -1), {-1}), "first");
        for (int64_t b = 0; b < 2; ++b) {
          if (first[b] == model.options.eos_id)
            CHECK(greedy.tokens[b].empty());
          else
            CHECK(greedy.tokens[b].at(0) == first[b]);
        }
        const std::vector<std::string> names = names_of(model);
        CHECK(contains(names, "encoder.weight_ih_l0"));
        CHECK(contains(names, "encoder.weight_ih_l1") == (stacking.num_layers == 2));
        CHECK(contains(names, "encoder.weight_ih_l0_reverse") == stacking.bidirectional);
        // one layer: a cell (decoder.weight_ih); two: a stacked RNN/LSTM (decoder.weight_ih_l1)
        CHECK(contains(names, "decoder.weight_ih") == (stacking.num_layers == 1));
        CHECK(contains(names, "decoder.weight_ih_l1") == (stacking.num_layers == 2));
        CHECK(contains(names, "decoder_init.weight") == stacking.bidirectional);
        const int64_t gates = cell == nn::CellType::LSTM ? 4 : 1;
        for (const auto& [name, p] : model.named_parameters())
          if (name == "decoder.weight_ih" || name == "decoder.weight_ih_l0")
            check_shape(p, {gates * H, 2 + K});  // [F1.9] [embedding; context]: E + K
      }
}

TEST_CASE(
    "layers/seq2seq [F1.2] [F4.1] [F4.9]: bidirectional encoder: s_0 = tanh(W_s <-h_1 + b_s) per "
    "layer, c_0 = <-c_1, context without attention [->h_S; <-h_1], by hand") {
  manual_seed(32);
  for (int64_t L : {1, 2}) {
    INFO(L << " layers");
    nn::Seq2Seq model(
        stacked_options(nn::CellType::LSTM, nn::ScoreType::None, {L, /*bidirectional=*/true}));
    const int64_t H = 3;
    const Tensor source = tensor({{3, 4, 5}, {5, 3, 0}});
    const std::vector<int64_t> lengths = {3, 2};
    const Tensor target_in = tensor({{1, 3}, {1, 4}});
    const Tensor logits = model.forward(source, lengths, target_in).logits;  // (B,2,V)

    // The encoder alone: h_n and c_n (2L,B,H), rows (layer, direction).
    const nn::SequenceOutput enc =
        model.encoder_lstm->forward(model.encoder_embedding->forward(source), lengths);
    auto row = [&](const Tensor& t, int64_t r) { return squeeze(narrow(t, 0, r, 1), 0); };
    std::vector<Tensor> h0, c0;
    for (int64_t l = 0; l < L; ++l) {  // backward direction = row 2l + 1
      h0.push_back(tanh(model.decoder_init->forward(row(enc.h_n, 2 * l + 1))));
      c0.push_back(row(enc.c_n, 2 * l + 1));
    }
    nn::RecurrentState s =
        L == 1 ? nn::RecurrentState{h0[0], c0[0]} : nn::RecurrentState{stack(h0, 0), stack(c0, 0)};
    // the top layer's forward state at each source's end and backward state at its start
    const Tensor context = cat({row(enc.h_n, 2 * L - 2), row(enc.h_n, 2 * L - 1)}, 1);  // (B,2H)
    const Tensor embedded = model.decoder_embedding->forward(target_in);
    for (int64_t t = 0; t < 2; ++t) {
      const Tensor input = cat({squeeze(narrow(embedded, 1, t, 1), 1), context}, 1);
      Tensor top;
      if (L == 1) {
        s = model.decoder_lstm->forward(input, s);
        top = s.h;
      } else {
        const nn::SequenceOutput step =
            model.decoder_lstm_layers->forward(unsqueeze(input, 1), {}, s);
        s = {step.h_n, step.c_n};
        top = row(step.h_n, L - 1);
      }
      const Tensor expected = model.output->forward(cat({top, context}, 1));  // (B,V)
      check_values(squeeze(narrow(logits, 1, t, 1), 1), values_of(expected));
    }
    // <-h_1 really is the backward direction's state at the first token: the
    // last output of the backward half, at position 0 (B,S,2H)
    check_values(narrow(narrow(enc.output, 1, 0, 1), 2, H, H), values_of(row(enc.h_n, 2 * L - 1)));
  }
}

TEST_CASE(
    "layers/seq2seq [F4.8]: 2 bidirectional layers: padding a source changes nothing (the "
    "backward direction starts at the last real token)") {
  manual_seed(33);
  for (nn::CellType cell : {nn::CellType::RNN, nn::CellType::LSTM}) {
    nn::Seq2Seq model(stacked_options(cell, nn::ScoreType::Additive, {2, true}));
    Tensor target_in = tensor({{1, 3, 4}});
    nn::Seq2SeqOutput alone = model.forward(tensor({{3, 4}}), {}, target_in);
    nn::Seq2SeqOutput padded = model.forward(tensor({{3, 4, 0, 0, 0}}), {2}, target_in);
    check_values(padded.logits, values_of(alone.logits));
  }
}

TEST_CASE("layers/seq2seq: dropout between layers acts in training only") {
  nn::Seq2SeqOptions with = stacked_options(nn::CellType::LSTM, nn::ScoreType::Additive, {2, true},
                                            /*dropout=*/0.5);
  nn::Seq2SeqOptions without = with;
  without.dropout = 0;
  manual_seed(34);
  nn::Seq2Seq dropped(with);
  manual_seed(34);
  nn::Seq2Seq plain(without);  // the same weights: dropout draws nothing at construction
  CHECK(dropped.to_string().find("dropout=0.5") != std::string::npos);
  Tensor source = tensor({{3, 4, 5}, {5, 3, 0}}), target_in = tensor({{1, 3, 4}, {1, 4, 0}});
  const std::vector<real> reference = plain.forward(source, {3, 2}, target_in).logits.to_vector();
  dropped.eval();
  CHECK(dropped.forward(source, {3, 2}, target_in).logits.to_vector() == reference);
  dropped.train();
  manual_seed(35);
  const std::vector<real> trained = dropped.forward(source, {3, 2}, target_in).logits.to_vector();
  CHECK(trained != reference);
  manual_seed(35);  // the same seed, the same masks
  CHECK(dropped.forward(source, {3, 2}, target_in).logits.to_vector() == trained);
}

TEST_CASE("layers/seq2seq: num_layers, dropout and a dot score on 2H keys are refused by name") {
  nn::Seq2SeqOptions bad = stacked_options(nn::CellType::LSTM, nn::ScoreType::Additive, {0, false});
  check_error([&] { nn::Seq2Seq m(bad); }, {"Seq2Seq:", "num_layers", ">= 1", "got 0"});
  bad = stacked_options(nn::CellType::LSTM, nn::ScoreType::Additive, {2, false}, /*dropout=*/1);
  check_error([&] { nn::Seq2Seq m(bad); }, {"Seq2Seq:", "dropout", "[0, 1)", "got 1"});
  bad.dropout = -0.25;
  check_error([&] { nn::Seq2Seq m(bad); }, {"Seq2Seq:", "dropout", "got -0.25"});
  bad = stacked_options(nn::CellType::RNN, nn::ScoreType::Dot, {1, true});
  check_error([&] { nn::Seq2Seq m(bad); }, {"Seq2Seq:", "dot score", "hidden_size 3",
                                            "2 * hidden_size = 6", "general or additive"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE(
    "grad/seq2seq [F1.2] [F1.9] [F4.1] [F4.9]: finite differences with 2 layers and a "
    "bidirectional encoder, dropout included") {
  manual_seed(36);
  struct Config {
    nn::CellType cell;
    nn::ScoreType score;
    Shape2 stacking;
    real dropout;
  };
  // Each of these paths once, hidden size 2 to keep it fast: the stacked LSTM
  // decoder with Bahdanau's s_0 and dropout in training, the stacked RNN
  // decoder, and the one-layer cell decoder with [->h_S; <-h_1] as context.
  for (const Config& c : {Config{nn::CellType::LSTM, nn::ScoreType::Additive, {2, true}, 0.5},
                          Config{nn::CellType::RNN, nn::ScoreType::General, {2, false}, 0},
                          Config{nn::CellType::RNN, nn::ScoreType::None, {1, true}, 0}}) {
    INFO(nn::to_string(c.cell) << " " << nn::to_string(c.score) << " " << c.stacking.num_layers
                               << " layers, bidirectional " << c.stacking.bidirectional
                               << ", dropout " << c.dropout);
    nn::Seq2SeqOptions o = stacked_options(c.cell, c.score, c.stacking, c.dropout);
    o.hidden_size = 2;
    nn::Seq2Seq model(o);
    Tensor source = tensor({{3, 4, 5}, {5, 3, 0}});
    Tensor target_in = tensor({{1, 3}, {1, 4}});
    Tensor target_out = tensor({{3, 2}, {4, 2}});
    check_module_gradients(model, [&] {
      manual_seed(37);  // in training, the same dropout masks in every evaluation
      return nn::cross_entropy(model.forward(source, {3, 2}, target_in).logits, target_out, 0);
    });
  }
}
#endif
