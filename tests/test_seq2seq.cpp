// Attention scores [F1.4] [F1.5] [F4.2] [F4.4] [F4.5], softmax [F4.6] (and the
// seed's double softmax), context and local window [F4.7], hard attention
// [F1.7], padding [F4.8], and the encoder-decoder [F1.2] [F1.9] [F4.1] [F4.9]:
// values by hand, exact zeros where masked, errors, and gradients by finite
// differences (double flavor).
#include <doctest/doctest.h>

#include <cmath>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

using namespace ag;
using namespace ag::testing;

namespace {

// softmax of a row of doubles, by hand
std::vector<double> softmax_row(const std::vector<double>& e) {
  double z = 0;
  for (double x : e) z += std::exp(x);
  std::vector<double> a;
  for (double x : e) a.push_back(std::exp(x) / z);
  return a;
}

std::vector<std::shared_ptr<nn::AttentionScore>> all_scores(int64_t H) {
  return {std::make_shared<nn::DotScore>(), std::make_shared<nn::GeneralScore>(H, H, 3),
          std::make_shared<nn::AdditiveScore>(H, H, 3)};
}

// Each encoder-decoder cell with each score (and with none).
std::vector<std::pair<nn::CellType, nn::ScoreType>> every_config() {
  std::vector<std::pair<nn::CellType, nn::ScoreType>> configs;
  for (nn::CellType cell : {nn::CellType::RNN, nn::CellType::LSTM})
    for (nn::ScoreType score :
         {nn::ScoreType::None, nn::ScoreType::Dot, nn::ScoreType::General, nn::ScoreType::Additive})
      configs.push_back({cell, score});
  return configs;
}

nn::Seq2SeqOptions tiny_options(nn::CellType cell, nn::ScoreType score) {
  nn::Seq2SeqOptions o;
  o.source_vocab = 6;
  o.target_vocab = 5;
  o.embedding_dim = 2;
  o.hidden_size = 3;
  o.attention_size = 2;
  o.cell = cell;
  o.score = score;
  return o;
}

}  // namespace

TEST_CASE("attention/scores [F1.4] [F4.6] [F4.7]: dot e_j = s^T h_j, softmax, context by hand") {
  Tensor query = tensor({{1, 2}});
  Tensor keys = tensor({{{1, 0}, {0, 1}, {1, 1}}});  // (1,3,2)
  nn::DotScore dot;
  nn::AttentionOutput out = dot.forward(query, keys);
  const std::vector<double> a = softmax_row({1, 2, 3});
  check_shape(out.weights, {1, 3});
  check_values(out.weights, a);
  check_values(out.context, {a[0] + a[2], a[1] + a[2]});
}

TEST_CASE("attention/scores [F4.2] [F4.4] [F4.5]: general e_j = (W_hq s)^T (W_k h_j) by hand") {
  Generator gen(1);
  nn::GeneralScore general(2, 3, 2);
  Tensor query = randn({2, 2}, gen), keys = randn({2, 4, 3}, gen);
  nn::AttentionOutput out = general.forward(query, keys);
  const Tensor& Wq = general.query_layer->weight;  // (A,Hq)
  const Tensor& Wk = general.key_layer->weight;    // (A,Hk)
  for (int64_t b = 0; b < 2; ++b) {
    std::vector<double> e(4, 0);
    for (int64_t j = 0; j < 4; ++j)
      for (int64_t r = 0; r < 2; ++r) {
        double q = 0, k = 0;  // [F4.2] q_r = (W_hq s)_r, [F4.4] k_r = (W_k h_j)_r
        for (int64_t c = 0; c < 2; ++c) q += Wq.at({r, c}) * query.at({b, c});
        for (int64_t c = 0; c < 3; ++c) k += Wk.at({r, c}) * keys.at({b, j, c});
        e[j] += q * k;  // [F4.5] e_t(j) = q^T k_j
      }
    const std::vector<double> a = softmax_row(e);
    for (int64_t j = 0; j < 4; ++j)
      CHECK(out.weights.at({b, j}) == doctest::Approx(a[j]).epsilon(testing::tol));
    for (int64_t c = 0; c < 3; ++c) {
      double ctx = 0;
      for (int64_t j = 0; j < 4; ++j) ctx += a[j] * keys.at({b, j, c});
      CHECK(out.context.at({b, c}) == doctest::Approx(ctx).epsilon(testing::tol));
    }
  }
}

TEST_CASE("attention/scores [F1.5]: additive e_j = v^T tanh(W_q s + W_k h_j) by hand") {
  nn::AdditiveScore additive(1, 2, 2);
  set_values(additive.query_layer->weight, tensor({{1}, {-1}}));
  set_values(additive.key_layer->weight, tensor({{0.5, 0}, {0, 2}}));
  set_values(additive.weight_layer->weight, tensor({{1, 3}}));
  Tensor query = tensor({{0.5}});
  Tensor keys = tensor({{{1, 0}, {0, 1}}});
  nn::AttentionOutput out = additive.forward(query, keys);
  const double e0 = std::tanh(0.5 + 0.5) + 3 * std::tanh(-0.5 + 0);
  const double e1 = std::tanh(0.5 + 0) + 3 * std::tanh(-0.5 + 2);
  const std::vector<double> a = softmax_row({e0, e1});
  check_values(out.weights, a);
  check_values(out.context, {a[0], a[1]});
}

TEST_CASE(
    "attention/scores [F4.6]: the seed's double softmax flattens the weights toward uniform") {
  Tensor scores = tensor({{4, 0, -2, 1}});
  Tensor once = nn::attention_weights(scores);
  Tensor twice = nn::double_softmax(scores);
  // The seed's formula is softmax(softmax(e)): by hand, the same numbers.
  const std::vector<double> a = softmax_row({4, 0, -2, 1});
  check_values(once, a);
  check_values(twice, softmax_row(a));
  // The largest weight falls from 0.94 to below e/(e + S - 1), the ceiling of
  // any double softmax over S = 4 positions, and the entropy rises toward log 4.
  const double ceiling = std::exp(1.0) / (std::exp(1.0) + 3);
  CHECK(once.at({0, 0}) > 0.9);
  CHECK(twice.at({0, 0}) < ceiling);
  auto entropy = [](const Tensor& w) {
    double h = 0;
    for (real p : w.to_vector()) h -= p * std::log(p);
    return h;
  };
  CHECK(entropy(twice) > entropy(once));
  CHECK(entropy(twice) > 0.9 * std::log(4.0));
  // Even scores a thousand apart cannot push a double softmax past the ceiling.
  Tensor extreme = nn::double_softmax(tensor({{1000, 0, 0, 0}}));
  CHECK(extreme.at({0, 0}) == doctest::Approx(ceiling).epsilon(1e-5));
}

TEST_CASE(
    "attention/scores [F4.7] [F4.8]: masked positions get exactly 0; a fully masked row is 0") {
  Generator gen(2);
  const int64_t H = 3;
  Tensor query = randn({3, H}, gen), keys = randn({3, 5, H}, gen);
  // Sequence 0: length 5, but a local window of half-width 1 around position 3.
  // Sequence 1: length 2 (padding). Sequence 2: every position blocked.
  Tensor window = nn::local_window_mask({3, 0, 0}, 1, 5);
  check_values(window, {1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1});
  Tensor padding = nn::padding_mask(std::vector<int64_t>{5, 2, 0}, 5);
  Tensor mask = nn::combine_masks(window, padding);
  for (const auto& score : all_scores(H)) {
    const std::string name = score->type_name();
    INFO(name);
    nn::AttentionOutput out = score->forward(query, keys, mask);
    for (int64_t j : {0, 1}) CHECK(out.weights.at({0, j}) == 0);
    CHECK(out.weights.at({0, 2}) + out.weights.at({0, 3}) + out.weights.at({0, 4}) ==
          doctest::Approx(1));
    for (int64_t j = 2; j < 5; ++j) CHECK(out.weights.at({1, j}) == 0);
    for (int64_t j = 0; j < 5; ++j) CHECK(out.weights.at({2, j}) == 0);
    for (int64_t c = 0; c < H; ++c) CHECK(out.context.at({2, c}) == 0);
    for (real w : out.weights.to_vector()) CHECK(std::isfinite(w));
  }
  // (B,S) masks work as (B,1,S) ones do.
  nn::DotScore dot;
  CHECK(dot.forward(query, keys, reshape(mask, {3, 5})).weights.to_vector() ==
        dot.forward(query, keys, mask).weights.to_vector());
}

TEST_CASE(
    "attention/scores [F1.7]: hard attention is one-hot at the argmax; no gradient to the score") {
  manual_seed(3);
  nn::GeneralScore general(2, 2, 2);
  Generator gen(3);
  Tensor query = randn({2, 2}, gen), keys = randn({2, 4, 2}, gen);
  keys.requires_grad_();
  Tensor projected = general.project_keys(keys);
  Tensor soft = general.attend(query, keys, projected).weights;
  nn::AttentionOutput hard =
      general.attend_hard(query, keys, projected, nn::padding_mask(std::vector<int64_t>{4, 2}, 4));
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t len = b == 0 ? 4 : 2;
    int64_t best = 0;
    for (int64_t j = 1; j < len; ++j)
      if (soft.at({b, j}) > soft.at({b, best})) best = j;
    for (int64_t j = 0; j < 4; ++j) CHECK(hard.weights.at({b, j}) == (j == best ? 1 : 0));
    for (int64_t c = 0; c < 2; ++c) CHECK(hard.context.at({b, c}) == keys.at({b, best, c}));
  }
  sum(hard.context).backward();
  // The values get their gradient (1 at the chosen position) ...
  REQUIRE(keys.grad().defined());
  // ... but no gradient reaches the score's parameters: argmax is flat almost everywhere.
  CHECK_FALSE(general.query_layer->weight.grad().defined());
  // A fully masked row: no position wins, zeros.
  nn::AttentionOutput none = nn::hard_attention(zeros({1, 3}), zeros({1, 3, 2}), ones({1, 3}));
  check_values(none.weights, {0, 0, 0});
  check_values(none.context, {0, 0});
}

TEST_CASE("attention/scores: errors name the score and the shapes") {
  nn::DotScore dot;
  check_error(
      [&] {
        (void)dot.forward(zeros({2, 3}), zeros({2, 4, 5}));
      },
      {"DotScore:", "(2,4,5)", "key_size = 3"});
  check_error(
      [&] {
        (void)dot.forward(zeros({2, 3}), zeros({3, 4, 3}));
      },
      {"DotScore:", "(2,3)", "(3,4,3)", "same B"});
  check_error(
      [&] {
        (void)dot.forward(zeros({2, 3}), zeros({2, 4, 3}), zeros({2, 1, 5}));
      },
      {"DotScore:", "mask (2,1,5)", "(B,S) or (B,1,S)"});
  check_error([] { (void)nn::local_window_mask({0}, -1, 3); },
              {"local_window_mask:", "half_width -1"});
  // The general and additive scores check the keys (ProjectedScore) and the query.
  nn::GeneralScore general(3, 4, 2);
  nn::AdditiveScore additive(3, 4, 2);
  for (nn::AttentionScore* score : std::vector<nn::AttentionScore*>{&general, &additive}) {
    const std::string name = score->type_name() + ":";
    check_error(
        [&] {
          (void)score->forward(zeros({2, 3}), zeros({2, 5, 3}));
        },
        {name, "(2,5,3)", "key_size = 4"});
    check_error(
        [&] {
          (void)score->forward(zeros({2, 5}), zeros({2, 5, 4}));
        },
        {name, "(2,5)", "query_size = 3"});
  }
  check_error(
      [] {
        (void)nn::weighted_context(zeros({2, 3}), zeros({2, 4, 5}));
      },
      {"weighted_context:", "(2,3)", "(2,4,5)"});
  check_error(
      [] {
        (void)nn::hard_attention(zeros({2, 3}), zeros({2, 4, 5}));
      },
      {"hard_attention:", "(2,3)", "(2,4,5)"});
  check_error(
      [] {
        (void)nn::attention_weights(zeros({2, 3, 1}));
      },
      {"attention_weights:", "(2,3,1)", "(batch, source length)"});
}

TEST_CASE(
    "layers/seq2seq [F1.2] [F1.9] [F4.1] [F4.9]: shapes, names, no attention on padding, greedy "
    "step 1 = teacher forcing step 1") {
  manual_seed(4);
  for (const auto& [cell, score] : every_config()) {
    INFO(nn::to_string(cell) << " " << nn::to_string(score));
    nn::Seq2Seq model(tiny_options(cell, score));
    Tensor source = tensor({{3, 4, 5, 0}, {5, 3, 0, 0}});
    Tensor target_in = tensor({{1, 3, 4}, {1, 4, 0}});
    nn::Seq2SeqOutput out = model.forward(source, {3, 2}, target_in);
    check_shape(out.logits, {2, 3, 5});
    CHECK(out.attention.defined() == (score != nn::ScoreType::None));
    if (out.attention.defined()) {
      check_shape(out.attention, {2, 3, 4});
      for (int64_t t = 0; t < 3; ++t) {  // [F4.8] padding gets no attention
        CHECK(out.attention.at({0, t, 3}) == 0);
        CHECK(out.attention.at({1, t, 2}) == 0);
        CHECK(out.attention.at({1, t, 3}) == 0);
      }
    }
    // Greedy decoding and teacher forcing share step 1 (both read <s>): its
    // first step sees only <s>, so its first logits' argmax is the first token.
    nn::GreedyDecoding greedy = model.greedy_decode(source, {3, 2}, 4);
    CHECK(greedy.tokens.size() == 2);
    CHECK(greedy.attention.defined() == (score != nn::ScoreType::None));
    const std::vector<int64_t> first =
        to_indices(reshape(argmax(narrow(out.logits, 1, 0, 1), -1), {-1}), "first");
    for (int64_t b = 0; b < 2; ++b) {
      if (first[b] == model.options.eos_id)
        CHECK(greedy.tokens[b].empty());
      else
        CHECK(greedy.tokens[b].at(0) == first[b]);
    }
    const auto params = model.named_parameters();
    CHECK(params.front().first == "encoder_embedding.weight");
    if (cell == nn::CellType::LSTM) {
      CHECK(params[1].first == "encoder.weight_ih_l0");
      check_shape(params[1].second, {12, 2});  // 4H x E
    }
  }
}

TEST_CASE(
    "layers/seq2seq [F4.8]: padding a source changes nothing (lengths and the padding mask)") {
  manual_seed(5);
  for (nn::CellType cell : {nn::CellType::RNN, nn::CellType::LSTM}) {
    nn::Seq2Seq model(tiny_options(cell, nn::ScoreType::Additive));
    Tensor target_in = tensor({{1, 3, 4}});
    nn::Seq2SeqOutput alone = model.forward(tensor({{3, 4}}), {}, target_in);
    nn::Seq2SeqOutput padded = model.forward(tensor({{3, 4, 0, 0, 0}}), {2}, target_in);
    const std::vector<real> a = alone.logits.to_vector(), p = padded.logits.to_vector();
    for (size_t i = 0; i < a.size(); ++i)
      CHECK(p[i] == doctest::Approx(a[i]).epsilon(testing::tol));
  }
}

TEST_CASE(
    "layers/seq2seq [F4.9]: greedy decoding stops at the end token and returns the attention") {
  manual_seed(6);
  nn::Seq2Seq model(tiny_options(nn::CellType::LSTM, nn::ScoreType::Dot));
  // An output layer that always prefers the end token (id 2) after one step's bias.
  {
    NoGradGuard no_grad;
    model.output->weight.zero_();
    model.output->bias.copy_(tensor({0, 0, 5, 1, 0}));
  }
  nn::GreedyDecoding out = model.greedy_decode(tensor({{3, 4, 5}}), {}, 10);
  CHECK(out.tokens.at(0).empty());
  check_shape(out.attention, {1, 1, 3});  // one step was run
  {
    NoGradGuard no_grad;
    model.output->bias.copy_(tensor({0, 0, 0, 5, 0}));  // never the end token
  }
  out = model.greedy_decode(tensor({{3, 4, 5}}), {}, 4);
  CHECK(out.tokens.at(0) == std::vector<int64_t>{3, 3, 3, 3});
  check_shape(out.attention, {1, 4, 3});
  Tensor row_sums = sum(out.attention, -1);
  check_values(row_sums, {1, 1, 1, 1});
}

TEST_CASE("layers/seq2seq: errors name the model and the shapes") {
  nn::Seq2SeqOptions bad = tiny_options(nn::CellType::RNN, nn::ScoreType::Dot);
  bad.hidden_size = 0;
  check_error([&] { nn::Seq2Seq m(bad); }, {"Seq2Seq:", "hidden_size 0", "positive"});
  bad = tiny_options(nn::CellType::RNN, nn::ScoreType::Dot);
  bad.eos_id = 9;
  check_error([&] { nn::Seq2Seq m(bad); }, {"Seq2Seq:", "token id 9", "0..4"});
  nn::Seq2Seq model(tiny_options(nn::CellType::RNN, nn::ScoreType::Dot));
  check_error(
      [&] {
        (void)model.forward(tensor({3, 4}), {}, tensor({{1}}));
      },
      {"Seq2Seq:", "source (2)", "(batch, source length"});
  check_error(
      [&] {
        (void)model.forward(tensor({{3, 4}}), {}, tensor({{1}, {1}}));
      },
      {"Seq2Seq:", "target_in (2,1)", "batch = 1"});
  check_error(
      [&] {
        (void)model.greedy_decode(tensor({{3, 4}}), {}, 0);
      },
      {"greedy_decode:", "max_length", "0"});
  check_error(
      [&] {
        (void)model.forward(tensor({{3, 4}}), {3}, tensor({{1}}));
      },
      {"Seq2Seq:", "length 3", "1..2"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE(
    "grad/attention_scores [F1.4] [F1.5] [F4.2] [F4.4] [F4.5] [F4.6] [F4.7]: finite differences, "
    "masked") {
  manual_seed(7);
  Generator gen(7);
  const int64_t H = 3;
  Tensor query = randn({2, H}, gen), keys = randn({2, 4, H}, gen);
  query.requires_grad_();
  keys.requires_grad_();
  Tensor mask = nn::padding_mask(std::vector<int64_t>{4, 2}, 4);
  for (const auto& score : all_scores(H)) {
    const std::string name = score->type_name();
    INFO(name);
    check_module_gradients(
        *score,
        [&] {
          nn::AttentionOutput out = score->forward(query, keys, mask);
          return cat({reshape(out.context, {-1}), reshape(out.weights, {-1})}, 0);
        },
        {query, keys});
  }
  check_module_gradients(nn::DotScore(),
                         [&] {
                           return nn::double_softmax(reshape(keys, {2, 12}), Tensor());
                         },
                         {keys});
}

TEST_CASE("grad/seq2seq [F1.2] [F1.9] [F4.1] [F4.9]: finite differences of a tiny Seq2Seq") {
  manual_seed(8);
  for (const auto& [cell, score] : every_config()) {
    INFO(nn::to_string(cell) << " " << nn::to_string(score));
    nn::Seq2Seq model(tiny_options(cell, score));
    Tensor source = tensor({{3, 4, 5}, {5, 3, 0}});
    Tensor target_in = tensor({{1, 3, 4}, {1, 4, 0}});
    Tensor target_out = tensor({{3, 4, 2}, {4, 2, 0}});
    check_module_gradients(model, [&] {
      return nn::cross_entropy(model.forward(source, {3, 2}, target_in).logits, target_out, 0);
    });
  }
}
#endif

TEST_CASE(
    "layers/seq2seq [F1.9] [F4.3]: input feeding puts c_{t-1} in the decoder's input; off, zeros") {
  manual_seed(9);
  nn::Seq2Seq model(tiny_options(nn::CellType::LSTM, nn::ScoreType::General));
  Tensor source = tensor({{3, 4, 5}});
  Tensor target_in = tensor({{1, 3, 4}});
  const std::vector<real> fed = model.forward(source, {}, target_in).logits.to_vector();
  model.options.input_feeding = false;
  const std::vector<real> unfed = model.forward(source, {}, target_in).logits.to_vector();
  // Step 1 sees c_0 = 0 either way; from step 2 on the fed-back context matters.
  for (size_t i = 0; i < 5; ++i) CHECK(fed[i] == unfed[i]);
  double differ = 0;
  for (size_t i = 5; i < fed.size(); ++i) differ += std::abs(fed[i] - unfed[i]);
  CHECK(differ > 0);
}
