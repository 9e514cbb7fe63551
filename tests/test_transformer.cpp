// Seed 003's SelfAttention [F3.5], the positional encoding [F3.1], the
// feed-forward network [F3.3], the encoder layer [F3.3, F3.6] and the tiny
// Transformer [F2.8]: values by hand, causality, generation, and gradcheck
// (double flavor) with respect to the inputs and every parameter. The
// multi-head attention inside them is tested in test_multi_head_attention.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

using namespace ag;
using namespace ag::testing;

// --- SelfAttention, seed 003 ---------------------------------------------------------------

TEST_CASE("layers/self_attention [F3.5]: seed 003's code line by line, residual before out") {
  manual_seed(5);
  nn::SelfAttention attention(4, /*dropout=*/0.5);
  Generator gen(5);
  Tensor x = randn({2, 3, 4}, gen);
  Tensor q = attention.query->forward(x), k = attention.key->forward(x),
         v = attention.value->forward(x);
  Tensor scores = matmul(q, transpose(k, -2, -1)) / real(2);  // sqrt(d_model = 4) = 2
  Tensor expected = attention.out->forward(matmul(softmax(scores, -1), v) + x);
  auto [out, weights] = attention.forward_with_weights(x);
  CHECK(max_abs_diff(out, expected) == 0);
  CHECK(max_abs_diff(weights, softmax(scores, -1)) == 0);
  // The dropout (p = 0.5, training mode) is never applied, as in the seed.
  CHECK(attention.is_training());
  CHECK(max_abs_diff(attention.forward(x), expected) == 0);
  std::vector<std::string> names;
  for (const auto& [name, p] : attention.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"query.weight", "query.bias", "key.weight", "key.bias",
                                          "value.weight", "value.bias", "out.weight", "out.bias"});
  // The seed's defaults: d_model = 512.
  CHECK(nn::SelfAttention().num_parameters() == 4 * (512 * 512 + 512));
  check_error([&] { (void)attention.forward(zeros({3, 5})); }, {"SelfAttention:", "(3,5)"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE("layers/self_attention [F3.5]: gradcheck w.r.t. the input and every parameter") {
  manual_seed(6);
  nn::SelfAttention attention(3);
  Generator gen(6);
  Tensor x = leaf({2, 4, 3}, gen);
  check_gradients([&](const std::vector<Tensor>& in) { return attention.forward(in[0]); }, {x});
  check_module_gradients(attention, [&] { return attention.forward(x); });
}
#endif

// --- PositionalEncoding ----------------------------------------------------------------------

TEST_CASE("layers/positional_encoding [F3.1]: PE(pos,2i) = sin(pos/10000^(2i/d)), cos for 2i+1") {
  Tensor pe = nn::sinusoidal_encoding(3, 4);  // d = 4: frequencies 1 and 1/100
  check_values(pe,
               {0, 1, 0, 1,                                                    //
                std::sin(1.0), std::cos(1.0), std::sin(0.01), std::cos(0.01),  //
                std::sin(2.0), std::cos(2.0), std::sin(0.02), std::cos(0.02)},
               testing::is_double ? 1e-15 : 1e-6);
  // PE(pos + k) is a rotation of PE(pos) in every pair (sin, cos): for the
  // pair of frequency w, [sin(w(p+k)), cos(w(p+k))] = R(wk) [sin(wp), cos(wp)].
  Tensor big = nn::sinusoidal_encoding(50, 8);
  const double w = 1 / std::pow(10000.0, 2.0 / 8);  // pair i = 1
  for (int64_t p : {0, 7, 30}) {
    const int64_t k = 9;
    const double s = big.at({p, 2}), c = big.at({p, 3});
    CHECK(big.at({p + k, 2}) == doctest::Approx(s * std::cos(w * k) + c * std::sin(w * k)));
    CHECK(big.at({p + k, 3}) == doctest::Approx(c * std::cos(w * k) - s * std::sin(w * k)));
  }
  nn::PositionalEncoding positional(4, 3);
  CHECK(positional.named_parameters().empty());  // a buffer, not trained
  CHECK(positional.named_buffers().size() == 1);
  Tensor x = ones({2, 2, 4});
  Tensor y = positional.forward(x);
  check_values(
      y,
      {1, 2, 1, 2, 1 + std::sin(1.0), 1 + std::cos(1.0), 1 + std::sin(0.01), 1 + std::cos(0.01), 1,
       2, 1, 2, 1 + std::sin(1.0), 1 + std::cos(1.0), 1 + std::sin(0.01), 1 + std::cos(0.01)},
      testing::is_double ? 1e-15 : 1e-6);
  check_error(
      [&] {
        (void)positional.forward(zeros({1, 4, 4}));
      },
      {"PositionalEncoding:", "length 4", "max_len 3"});
  check_error(
      [&] {
        (void)positional.forward(zeros({1, 2, 5}));
      },
      {"PositionalEncoding:", "(1,2,5)", "d_model = 4"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE("layers/positional_encoding [F3.1]: gradcheck of x + PE w.r.t. x, batched or not") {
  nn::PositionalEncoding positional(4, 6);
  Generator gen(13);
  check_gradients([&](const std::vector<Tensor>& in) { return positional.forward(in[0]); },
                  {leaf({2, 5, 4}, gen)});
  check_gradients([&](const std::vector<Tensor>& in) { return positional.forward(in[0]); },
                  {leaf({3, 4}, gen)});
  // The table is a buffer: there is no parameter to check.
  CHECK(positional.named_parameters().empty());
}
#endif

// --- FeedForward and the encoder layer --------------------------------------------------

TEST_CASE("layers/feed_forward [F3.3]: FFN(x) = W_2 ReLU(W_1 x + b_1) + b_2, by hand") {
  nn::FeedForward ff(2, 3);
  {
    NoGradGuard no_grad;
    ff.linear1->weight.copy_(tensor({{1, 0}, {0, 1}, {1, -1}}));
    ff.linear1->bias.copy_(tensor({0, -1, 0}));
    ff.linear2->weight.copy_(tensor({{1, 1, 1}, {0, 2, -1}}));
    ff.linear2->bias.copy_(tensor({0.5, 0}));
  }
  // x = (2, 1): W_1 x + b_1 = (2, 0, 1) -> ReLU (2, 0, 1) -> W_2 (.) + b_2 = (3.5, -1)
  // x = (-1, 3): (-1, 2, -4) -> (0, 2, 0) -> (2.5, 4)
  check_values(ff.forward(tensor({{2, 1}, {-1, 3}})), {3.5, -1, 2.5, 4});
}

#ifdef AG_USE_DOUBLE
TEST_CASE("layers/feed_forward [F3.3]: gradcheck w.r.t. the input and every parameter") {
  manual_seed(14);
  nn::FeedForward ff(3, 5);
  Generator gen(14);
  Tensor x = leaf({2, 4, 3}, gen);
  check_gradients([&](const std::vector<Tensor>& in) { return ff.forward(in[0]); }, {x});
  check_module_gradients(ff, [&] { return ff.forward(x); }, {x});
}
#endif

TEST_CASE("layers/feed_forward, layers/transformer: errors name the layer and the shapes") {
  check_error([] { nn::FeedForward(4, 0); }, {"FeedForward:", "d_ff must be positive", "4 and 0"});
  check_error([] { nn::PositionalEncoding(0, 8); }, {"PositionalEncoding:", "0 and 8"});
  nn::FeedForward ff(4, 8);
  check_error(
      [&] {
        (void)ff.forward(zeros({2, 3, 5}));
      },
      {"FeedForward:", "(2,3,5)", "d_model = 4"});
  nn::TransformerEncoderLayer layer(4, 2, 8);
  check_error(
      [&] {
        (void)layer.forward(zeros({2, 3, 5}));
      },
      {"TransformerEncoderLayer:", "(2,3,5)", "(batch, time, d_model = 4)"});
  check_error([&] { (void)layer.forward(zeros({3, 4})); }, {"TransformerEncoderLayer:", "(3,4)"});
  nn::TransformerEncoder encoder(2, 4, 2, 8);
  check_error([&] { (void)encoder.forward(zeros({2, 3, 6})); }, {"TransformerEncoder:", "(2,3,6)"});
}

TEST_CASE(
    "layers/transformer [F3.3] [F3.6]: the encoder layer is residual + LayerNorm around "
    "attention and the FFN, pre-norm and post-norm") {
  Generator gen(7);
  Tensor x = randn({2, 3, 4}, gen);
  Tensor mask = nn::causal_mask(3);
  for (bool norm_first : {true, false}) {
    manual_seed(7);
    nn::TransformerEncoderLayer layer(4, 2, 8, /*dropout=*/0.1, norm_first);
    layer.eval();  // dropout off
    Tensor y = layer.forward(x, mask);
    auto attn = [&](const Tensor& t) { return layer.self_attn->forward(t, mask).context; };
    auto ffn = [&](const Tensor& t) { return layer.feed_forward->forward(t); };
    auto ln1 = [&](const Tensor& t) { return layer.norm1->forward(t); };
    auto ln2 = [&](const Tensor& t) { return layer.norm2->forward(t); };
    Tensor expected;
    if (norm_first) {
      Tensor h = x + attn(ln1(x));
      expected = h + ffn(ln2(h));
    } else {
      Tensor h = ln1(x + attn(x));
      expected = ln2(h + ffn(h));
    }
    // exactly so in reference mode; in fast mode the output projection and the
    // FFN's second layer make the residual sums themselves, adding the same
    // terms in another order (linear_plus_residual)
    CHECK(max_abs_diff(y, expected) <= (reference_mode() ? 0 : 1e-5));
    check_shape(layer.attention_weights, {2, 2, 3, 3});
  }
  // In training mode the dropouts act: the output changes.
  manual_seed(7);
  nn::TransformerEncoderLayer layer(4, 2, 8, /*dropout=*/0.5);
  Tensor train_out = layer.forward(x);
  layer.eval();
  CHECK(max_abs_diff(train_out, layer.forward(x)) > 0);
}

TEST_CASE(
    "layers/transformer: the summary of an encoder layer, nested settings on their own lines") {
  nn::TransformerEncoderLayer layer(4, 2, 6, /*dropout=*/0.1);
  const std::string expected =
      "TransformerEncoderLayer(\n"
      "  norm_first=true\n"
      "  (self_attn): MultiHeadAttention(\n"
      "    d_model=4, heads=2, head_dim=2, bias=true\n"
      "    (q_proj): Linear(in_features=4, out_features=4, bias=true)  weight (4,4)  bias (4)\n"
      "    (k_proj): Linear(in_features=4, out_features=4, bias=true)  weight (4,4)  bias (4)\n"
      "    (v_proj): Linear(in_features=4, out_features=4, bias=true)  weight (4,4)  bias (4)\n"
      "    (out_proj): Linear(in_features=4, out_features=4, bias=true)  weight (4,4)  bias (4)\n"
      "  )\n"
      "  (linear1): Linear(in_features=4, out_features=6, bias=true)  weight (6,4)  bias (6)\n"
      "  (dropout): Dropout(p=0.1)\n"
      "  (linear2): Linear(in_features=6, out_features=4, bias=true)  weight (4,6)  bias (4)\n"
      "  (norm1): LayerNorm((4,), eps=1e-05, elementwise_affine=true)  weight (4)  bias (4)\n"
      "  (norm2): LayerNorm((4,), eps=1e-05, elementwise_affine=true)  weight (4)  bias (4)\n"
      "  (dropout1): Dropout(p=0.1)\n"
      "  (dropout2): Dropout(p=0.1)\n"
      ")\n"
      "parameters: 154";  // 4 (4*4 + 4) + (6*4 + 6) + (4*6 + 4) + 2 (4 + 4)
  CHECK(layer.to_string() == expected);
}

#ifdef AG_USE_DOUBLE
TEST_CASE(
    "layers/transformer [F3.3] [F3.6]: gradcheck of the encoder layer, inputs and parameters") {
  for (bool norm_first : {true, false}) {
    manual_seed(8);
    nn::TransformerEncoderLayer layer(4, 2, 6, /*dropout=*/0, norm_first);
    Generator gen(8);
    Tensor x = leaf({2, 3, 4}, gen);
    Tensor mask = nn::causal_mask(3);
    check_gradients([&](const std::vector<Tensor>& in) { return layer.forward(in[0], mask); }, {x});
    // The key projection's bias adds q_i . b_k / sqrt(d_h) to every score of
    // row i alike, which softmax ignores: the output does not depend on it (its
    // gradient is exactly 0, which the check still compares).
    check_module_gradients(layer, [&] { return layer.forward(x, mask); }, {},
                           {"self_attn.k_proj.bias"});
  }
}

TEST_CASE("layers/transformer: gradcheck of a 2-layer TransformerEncoder, input and parameters") {
  manual_seed(15);
  nn::TransformerEncoder encoder(2, 4, 2, 6, /*dropout=*/0);
  Generator gen(15);
  Tensor x = leaf({2, 3, 4}, gen);
  Tensor mask = nn::causal_mask(3);
  check_gradients([&](const std::vector<Tensor>& in) { return encoder.forward(in[0], mask); }, {x});
  // The key projection's bias adds q_i . b_k / sqrt(d_h) to every score of
  // row i alike, which softmax ignores: the output does not depend on it (its
  // gradient is exactly 0, which the check still compares).
  check_module_gradients(encoder, [&] { return encoder.forward(x, mask); }, {x},
                         {"self_attn.k_proj.bias"});
}
#endif

// --- TinyTransformer --------------------------------------------------------------------------

namespace {
nn::TinyTransformerOptions tiny_options_of_depth(int64_t layers) {
  nn::TinyTransformerOptions opt;
  opt.vocab_size = 5;
  opt.d_model = 4;
  opt.heads = 2;
  opt.d_ff = 6;
  opt.num_layers = layers;
  opt.max_len = 8;
  return opt;
}
}  // namespace

TEST_CASE(
    "layers/transformer [F2.8]: TinyTransformer = Embedding + PE, layers, norm, Linear to the "
    "vocabulary") {
  manual_seed(9);
  nn::TinyTransformer model(tiny_options_of_depth(2));
  Tensor tokens = tensor({{1, 2, 3, 4}, {0, 0, 1, 1}});
  Tensor logits = model.forward(tokens);
  check_shape(logits, {2, 4, 5});
  // The same model written out: [F2.8] embedding, [F3.1] + PE, the layers with
  // the causal mask [F4.8], final norm, Linear.
  Tensor h = model.positional->forward(model.embedding->forward(tokens));
  for (const auto& layer : model.layers->layers) h = layer->forward(h, nn::causal_mask(4));
  Tensor expected = model.lm_head->forward(model.norm->forward(h));
  CHECK(max_abs_diff(logits, expected) == 0);
  std::vector<std::string> names;
  for (const auto& [name, p] : model.named_parameters()) names.push_back(name);
  CHECK(names.front() == "embedding.weight");
  CHECK(std::find(names.begin(), names.end(), "layers.1.self_attn.q_proj.weight") != names.end());
  CHECK(std::find(names.begin(), names.end(), "layers.0.linear2.bias") != names.end());
  CHECK(names.back() == "lm_head.bias");
  CHECK(model.named_buffers().front().first == "positional.pe");
  check_error(
      [&] {
        (void)model.forward(zeros({1, 9}));
      },
      {"TinyTransformer:", "length 9", "max_len 8"});
  check_error([&] { (void)model.forward(zeros({9})); }, {"TinyTransformer:", "(9)"});
  check_error(
      [&] {
        (void)model.generate(zeros({1, 6}), 3);
      },
      {"TinyTransformer::generate:", "6 prompt tokens", "3 steps", "max_len 8"});
}

TEST_CASE(
    "layers/transformer [F4.8]: with the causal mask a later token never changes an earlier "
    "output") {
  manual_seed(10);
  nn::TinyTransformer model(tiny_options_of_depth(2));
  Tensor tokens = tensor({{1, 2, 3, 4, 0, 2}});
  Tensor changed = tensor({{1, 2, 3, 0, 4, 4}});  // tokens 3.. differ
  Tensor before = model.forward(tokens), after = model.forward(changed);
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t c = 0; c < 5; ++c) CHECK(after.at({0, t, c}) == before.at({0, t, c}));
  CHECK(max_abs_diff(narrow(after, 1, 3, 3), narrow(before, 1, 3, 3)) > 0);
  // Without the mask (an encoder), every position sees the change.
  Tensor open_before = model.forward(tokens, /*causal=*/false);
  Tensor open_after = model.forward(changed, /*causal=*/false);
  CHECK(max_abs_diff(narrow(open_after, 1, 0, 1), narrow(open_before, 1, 0, 1)) > 0);
}

TEST_CASE("layers/transformer [F2.8]: greedy generation appends the argmax of the last position") {
  manual_seed(11);
  nn::TinyTransformer model(tiny_options_of_depth(1));
  Tensor prompt = tensor({{1, 2}, {3, 3}});
  Tensor generated = model.generate(prompt, 3);
  check_shape(generated, {2, 5});
  CHECK(!generated.requires_grad());
  // Step by step by hand: each new token is the argmax of the logits after the
  // tokens so far.
  std::vector<std::vector<int64_t>> sequences = {{1, 2}, {3, 3}};
  for (int step = 0; step < 3; ++step) {
    for (auto& seq : sequences) {
      Tensor logits = model.forward(
          from_vector(std::vector<real>(seq.begin(), seq.end()), {1, int64_t(seq.size())}));
      int64_t best = 0;
      for (int64_t c = 1; c < 5; ++c)
        if (logits.at({0, int64_t(seq.size()) - 1, c}) >
            logits.at({0, int64_t(seq.size()) - 1, best}))
          best = c;
      seq.push_back(best);
    }
  }
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 5; ++t)
      CHECK(int64_t(generated.at({b, t})) == sequences[size_t(b)][size_t(t)]);
}

#ifdef AG_USE_DOUBLE
TEST_CASE("layers/transformer [F2.8]: gradcheck of a 1-layer TinyTransformer, every parameter") {
  manual_seed(12);
  nn::TinyTransformer model(tiny_options_of_depth(1));
  Tensor tokens = tensor({{1, 2, 3, 1}, {4, 0, 2, 2}});
  // self_attn.k_proj.bias: a constant per row of scores, which softmax ignores
  // (see the encoder layer's gradcheck above).
  check_module_gradients(model, [&] { return model.forward(tokens); }, {},
                         {"self_attn.k_proj.bias"});
  // and through the loss it trains with
  check_module_gradients(
      model,
      [&] {
        return nn::cross_entropy(model.forward(tokens), tensor({{2, 3, 1, 0}, {0, 2, 2, 4}}));
      },
      {}, {"self_attn.k_proj.bias"});
}
#endif
