// Anomaly detection (ag::set_detect_anomaly) that tells a mask's -inf from a
// real anomaly: a NaN is always reported, and so is an infinity an op makes
// from finite inputs (exp overflowing, log(0), x / 0); the -inf that
// masked_fill writes on purpose, and the ops that pass it on (a softmax of
// masked scores gives finite weights), are not. Then every chapter's model,
// masks and all, trains a few steps with anomaly detection on, in both modes.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"

using namespace ag;
using ag::testing::AnomalyMode;
using ag::testing::check_error;
using ag::testing::check_values;
using ag::testing::inf;
using ag::testing::leaf;

namespace {

// The parameters of several modules, for one optimizer.
std::vector<Tensor> parameters_of(std::initializer_list<const nn::Module*> modules) {
  std::vector<Tensor> out;
  for (const nn::Module* m : modules)
    for (const Tensor& p : m->parameters()) out.push_back(p);
  return out;
}

// A few steps of Adam on `loss()` with anomaly detection on (and gradients
// clipped, as chapter 07 does); returns the last loss.
template <typename Loss>
real train_steps(const std::vector<Tensor>& params, Loss loss, int steps = 3) {
  AnomalyMode anomaly;
  optim::Adam opt(params, real(0.01));
  real last = 0;
  for (int step = 0; step < steps; ++step) {
    opt.zero_grad();
    Tensor l = loss();
    l.backward();
    optim::clip_grad_norm(params, 1);
    opt.step();
    last = l.item();
  }
  return last;
}

}  // namespace

TEST_CASE("engine: anomaly detection lets a mask's -inf through and the ops that pass it on") {
  AnomalyMode anomaly;
  Tensor scores = leaf({2, 3}, 1);
  const Tensor mask = tensor({{0, 1, 1}, {1, 1, 1}});  // row 1 fully masked
  Tensor masked = masked_fill(scores, mask, -inf);
  check_values(softmax(masked, 1), {1, 0, 0, 0, 0, 0});  // a fully masked row: zeros, no NaN
  (void)log_softmax(masked, 1);                          // -inf passed on, not made here
  (void)(masked + real(1));
  sum(softmax(masked, 1) * leaf({2, 3}, 2)).backward();  // every gradient finite
  CHECK(scores.grad().defined());
  (void)masked_fill(tensor({1, 2}), tensor({1, 0}), -inf);  // on constants too
}

TEST_CASE("engine: anomaly detection still names an infinity made from finite values, and NaN") {
  AnomalyMode anomaly;
  Tensor x = leaf({2}, 3);
  check_error([&] { (void)exp(x * real(1000)); }, {"anomaly: the op exp", "inf"});
  check_error([&] { (void)log(x - x); }, {"anomaly: the op log", "-inf"});
  check_error([&] { (void)div(x, zeros({2})); }, {"anomaly: the op div", "inf"});
  check_error(
      [&] {
        (void)masked_fill(x, tensor({1, 0}), std::numeric_limits<real>::quiet_NaN());
      },
      {"anomaly: the op masked_fill", "nan"});
  // A NaN is reported even where an input already held an infinity.
  Tensor masked = masked_fill(x, tensor({1, 0}), -inf);
  check_error([&] { (void)(masked - masked); }, {"anomaly: the op sub", "nan"});
}

TEST_CASE("attention/anomaly: masked attention in every layer trains with anomaly detection on") {
  Generator gen(8);
  SUBCASE("scaled_dot_product_attention with a causal and a padding mask") {
    Tensor q = leaf({2, 4, 8}, 4);
    const Tensor mask = nn::combine_masks(nn::causal_mask(4), nn::padding_mask({4, 2}, 4));
    AnomalyMode anomaly;
    nn::AttentionOutput out = nn::scaled_dot_product_attention(q, q, q, mask);
    sum(out.context).backward();
    CHECK(q.grad().defined());
  }
  SUBCASE("MultiHeadAttention with a key padding mask and a causal attn_mask") {
    nn::MultiHeadAttention mha(8, 2);
    const Tensor x = randn({2, 4, 8}, gen);
    const Tensor padding = tensor({{0, 0, 0, 0}, {0, 0, 1, 1}});
    train_steps(mha.parameters(),
                [&] { return sum(mha.forward(x, x, x, nn::causal_mask(4), padding).context); });
  }
  SUBCASE("Seq2Seq with source lengths, every score") {
    for (nn::ScoreType score : {nn::ScoreType::Dot, nn::ScoreType::General, nn::ScoreType::Additive,
                                nn::ScoreType::None}) {
      nn::Seq2SeqOptions o;
      o.source_vocab = o.target_vocab = 8;
      o.embedding_dim = 4;
      o.hidden_size = o.attention_size = 6;
      o.score = score;
      nn::Seq2Seq model(o);
      const Tensor source = tensor({{3, 4, 5, 6}, {3, 4, 0, 0}});
      const Tensor target_in = tensor({{1, 6, 5}, {1, 4, 3}});
      const Tensor target_out = tensor({{6, 5, 2}, {4, 3, 2}});
      train_steps(model.parameters(), [&] {
        return nn::cross_entropy(model.forward(source, {4, 2}, target_in).logits, target_out, 0);
      });
      AnomalyMode anomaly;
      (void)model.greedy_decode(source, {4, 2}, 4);
    }
  }
  SUBCASE("attention_weights, double_softmax and hard_attention with a local window") {
    Tensor e = leaf({2, 5}, 5);
    const Tensor window = nn::local_window_mask({1, 3}, 1, 5);
    AnomalyMode anomaly;
    sum(nn::attention_weights(e, window) + nn::double_softmax(e, window)).backward();
    (void)nn::hard_attention(e, randn({2, 5, 3}, gen), window);
  }
}

TEST_CASE("engine: anomaly detection on, every chapter's model trains a few steps") {
  Generator gen(9);
  SUBCASE("01 and 02: MLPs with tanh and ReLU, MSE and cross-entropy") {
    nn::Sequential regression({std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::Tanh>(),
                               std::make_shared<nn::Linear>(4, 1)});
    const Tensor x = randn({8, 3}, gen), y = randn({8, 1}, gen);
    train_steps(regression.parameters(), [&] { return nn::mse_loss(regression.forward(x), y); });
    nn::Sequential classifier({std::make_shared<nn::Linear>(2, 16), std::make_shared<nn::ReLU>(),
                               std::make_shared<nn::Linear>(16, 3)});
    const Tensor points = randn({12, 2}, gen), labels = randint(0, 3, {12}, gen);
    train_steps(classifier.parameters(),
                [&] { return nn::cross_entropy(classifier.forward(points), labels); });
  }
  SUBCASE("03: point attention and a classifier") {
    nn::PointAttention attention(6);
    nn::Linear classifier(6, 4);
    const Tensor x = randn({5, 7, 6}, gen), labels = randint(0, 4, {5}, gen);
    train_steps(parameters_of({&attention, &classifier}), [&] {
      return nn::cross_entropy(classifier.forward(attention.forward(x).context), labels);
    });
  }
  SUBCASE("04: seq2seq with padded sources, and seed 000's attention over RNN states") {
    nn::Seq2SeqOptions o;
    o.source_vocab = o.target_vocab = 13;
    o.embedding_dim = 8;
    o.hidden_size = o.attention_size = 16;
    nn::Seq2Seq model(o);
    const Tensor source = tensor({{3, 4, 5, 6, 7}, {8, 9, 0, 0, 0}, {5, 6, 7, 0, 0}});
    const Tensor target_in = tensor({{1, 7, 6, 5, 4, 3}, {1, 9, 8, 0, 0, 0}, {1, 7, 6, 5, 0, 0}});
    const Tensor target_out = tensor({{7, 6, 5, 4, 3, 2}, {9, 8, 2, 0, 0, 0}, {7, 6, 5, 2, 0, 0}});
    train_steps(model.parameters(), [&] {
      return nn::cross_entropy(model.forward(source, {5, 2, 3}, target_in).logits, target_out, 0);
    });
    AnomalyMode anomaly;
    (void)model.greedy_decode(source, {5, 2, 3}, 6);
    nn::SequenceAttention over_states(4, 8);
    sum(over_states.forward(randn({3, 5, 4}, gen), {5, 3, 4}).output).backward();
  }
  SUBCASE("05: multi-head self-attention, unmasked and with seed 000's time split per head") {
    Tensor split = ones({1, 2, 6, 6});
    for (int64_t k = 0; k < 2; ++k)
      for (int64_t i = 0; i < 6; ++i)
        for (int64_t j = 0; j < 6; ++j)
          if (i / 3 == k && j / 3 == k) split.data()[(k * 6 + i) * 6 + j] = 0;
    for (const Tensor& mask : {Tensor(), split}) {
      nn::Embedding embedding(5, 8);
      nn::PositionalEncoding positional(8, 6);
      nn::MultiHeadAttention attention(8, 2);
      nn::LayerNorm norm(8);
      nn::Linear classifier(8, 3);
      const Tensor tokens = randint(0, 5, {4, 6}, gen), targets = randint(0, 3, {4, 6}, gen);
      train_steps(parameters_of({&embedding, &attention, &norm, &classifier}), [&] {
        const Tensor x = positional.forward(embedding.forward(tokens));
        const Tensor h = x + attention.forward(x, mask).context;
        return nn::cross_entropy(classifier.forward(norm.forward(h)), targets);
      });
    }
  }
  SUBCASE("06: the tiny Transformer with its causal mask, ignored targets, and generation") {
    nn::TinyTransformerOptions o;
    o.vocab_size = 7;
    o.d_model = 16;
    o.heads = 2;
    o.d_ff = 32;
    o.num_layers = 2;
    o.max_len = 10;
    nn::TinyTransformer model(o);
    const Tensor inputs = randint(0, 7, {3, 8}, gen);
    Tensor targets = randint(0, 7, {3, 8}, gen);
    for (int64_t t = 0; t < 4; ++t) targets.data()[t] = -100;  // the prompt's targets ignored
    train_steps(model.parameters(),
                [&] { return nn::cross_entropy(model.forward(inputs), targets, -100); });
    AnomalyMode anomaly;
    CHECK(model.generate(narrow(inputs, 1, 0, 4), 4).size(1) == 8);
  }
  SUBCASE("07: attention over RNN states for regression, with clipped gradients") {
    nn::SequenceAttention attention(2, 8);
    nn::Linear head(8, 1);
    const Tensor x = randn({6, 5, 2}, gen), y = randn({6, 1}, gen);
    train_steps(parameters_of({&attention, &head}), [&] {
      const Tensor last = squeeze(narrow(attention.forward(x).output, 1, 4, 1), 1);
      return nn::mse_loss(head.forward(last), y);
    });
  }
  SUBCASE("08: seed 002's TransformerModel on padded sources and targets, and its decoding") {
    nn::TransformerModelOptions o;
    o.vocab_size = 12;
    o.d_model = 16;
    o.heads = 2;
    o.d_ff = 32;
    o.max_len = 8;
    nn::TransformerModel model(o);
    // pad 0, <s> 1, </s> 2: the padding is masked in every attention and ignored by the loss
    const Tensor source = tensor({{3, 4, 5, 6}, {7, 8, 0, 0}});
    const Tensor target_in = tensor({{1, 6, 5, 4, 3}, {1, 8, 7, 0, 0}});
    const Tensor target_out = tensor({{6, 5, 4, 3, 2}, {8, 7, 2, 0, 0}});
    train_steps(model.parameters(), [&] {
      return nn::cross_entropy(model.forward(source, target_in), target_out, 0);
    });
    AnomalyMode anomaly;
    (void)model.greedy_decode(source, 5);
  }
  SUBCASE("09: point attention over features as tokens, for regression") {
    nn::Embedding ids(4, 8), values(4, 8);
    nn::PointAttention attention(8);
    nn::Linear head(8, 1);
    const Tensor x = randn({6, 4}, gen), y = randn({6, 1}, gen);
    const Tensor features = arange(real(4));
    train_steps(parameters_of({&ids, &values, &attention, &head}), [&] {
      const Tensor tokens = tanh(unsqueeze(ids.forward(features), 0) +
                                 unsqueeze(x, 2) * unsqueeze(values.forward(features), 0));
      return nn::mse_loss(head.forward(attention.forward(tokens).context), y);
    });
  }
}
