// Multi-head attention [F0.8-F0.10, F2.2, F2.6, F3.2], seed 003's SelfAttention
// [F3.5], the positional encoding [F3.1], the feed-forward network [F3.3], the
// encoder layer [F3.3, F3.6] and the tiny Transformer [F2.8]: values by hand,
// heads one by one, causality, and gradcheck (double flavor) with respect to
// the inputs and every parameter.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"

using namespace ag;
using ag::testing::check_error;
using ag::testing::check_gradients;
using ag::testing::check_shape;
using ag::testing::check_values;

namespace {

// Largest |a - b| over the elements of two tensors of the same shape.
double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::abs(double(a.data()[i]) - double(b.data()[i])));
  return worst;
}

// Rows [start, start+n) of a Linear's weight (out, in) and bias: the part of
// the projection that feeds one head.
Tensor rows(const Tensor& t, int64_t start, int64_t n) { return narrow(t, 0, start, n); }

#ifdef AG_USE_DOUBLE
Tensor leaf(const Shape& shape, Generator& gen) {
  Tensor t = randn(shape, gen);
  t.requires_grad_();
  return t;
}

// Finite differences for the PARAMETERS of a module, which ag::gradcheck
// cannot reach (it perturbs copies of its inputs, and a module computes with
// its own tensors). The same test as ag::gradcheck: L = sum(v * f()) with a
// fixed random v, analytic dL/dp from one backward, numeric from central
// differences of every element of every parameter, |a - n| <= 1e-8 + 1e-6 |n|.
void check_parameter_gradients(nn::Module& module, const std::function<Tensor()>& f) {
  module.zero_grad();
  Tensor out = f();
  Generator gen(0);
  Tensor v = randn(out.shape(), gen);
  sum(out * v).backward();
  auto weighted = [&] {
    NoGradGuard no_grad;
    Tensor y = f();
    double total = 0;
    for (int64_t i = 0; i < y.numel(); ++i) total += double(y.data()[i]) * double(v.data()[i]);
    return total;
  };
  const double eps = 1e-6;
  for (auto& [name, p] : module.named_parameters()) {
    REQUIRE_MESSAGE(p.grad().defined(), "parameter " << name << " got no gradient");
    const Tensor analytic = p.grad();
    for (int64_t j = 0; j < p.numel(); ++j) {
      const real saved = p.data()[j];
      p.data()[j] = saved + eps;
      const double plus = weighted();
      p.data()[j] = saved - eps;
      const double minus = weighted();
      p.data()[j] = saved;
      const double numeric = (plus - minus) / (2 * eps), a = analytic.data()[j];
      INFO("parameter " << name << " element " << j << ": analytic " << a << " vs numeric "
                        << numeric);
      CHECK(std::abs(a - numeric) <= 1e-8 + 1e-6 * std::abs(numeric));
    }
  }
  module.zero_grad();
}
#endif

}  // namespace

// --- MultiHeadAttention -------------------------------------------------------------------

TEST_CASE("layers/multi_head_attention [F2.6] [F3.2]: shapes, parameter names, summary") {
  manual_seed(1);
  nn::MultiHeadAttention mha(8, 2);
  Generator gen(1);
  Tensor x = randn({3, 5, 8}, gen), memory = randn({3, 7, 8}, gen);
  auto [out, weights] = mha.forward(x, memory, memory);
  check_shape(out, {3, 5, 8});
  check_shape(weights, {3, 2, 5, 7});
  check_values(sum(weights, -1), std::vector<double>(30, 1.0));
  std::vector<std::string> names;
  for (const auto& [name, p] : mha.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"q_proj.weight", "q_proj.bias", "k_proj.weight",
                                          "k_proj.bias", "v_proj.weight", "v_proj.bias",
                                          "out_proj.weight", "out_proj.bias"});
  CHECK(mha.to_string().find("MultiHeadAttention(d_model=8, heads=2, head_dim=4, bias=true") == 0);
  CHECK(nn::MultiHeadAttention(8, 4, /*bias=*/false).num_parameters() == 4 * 8 * 8);
}

TEST_CASE(
    "layers/multi_head_attention [F0.8]: the features are split into heads, not the time steps") {
  // x (1,2,4), 2 heads of 2 features: head 0 gets features 0,1 of EVERY
  // position, head 1 features 2,3.
  Tensor x = tensor({{{0, 1, 2, 3}, {4, 5, 6, 7}}});
  Tensor heads = nn::split_heads(x, 2);
  check_shape(heads, {1, 2, 2, 2});
  check_values(heads, {0, 1, 4, 5, 2, 3, 6, 7});
  check_values(nn::merge_heads(heads), {0, 1, 2, 3, 4, 5, 6, 7});
  check_error([&] { (void)nn::split_heads(x, 3); }, {"split_heads:", "(1,2,4)", "heads = 3"});
}

TEST_CASE(
    "layers/multi_head_attention [F0.9] [F0.10] [F2.2]: the heads one by one, concatenated, "
    "equal the fused computation") {
  manual_seed(2);
  const int64_t d = 6, h = 3, d_h = 2;
  nn::MultiHeadAttention mha(d, h);
  Generator gen(2);
  Tensor x = randn({2, 4, d}, gen), memory = randn({2, 5, d}, gen);
  Tensor mask = nn::padding_mask(std::vector<int64_t>{5, 3}, 5);  // (2,1,5)
  auto [fused, fused_weights] = mha.forward(x, memory, memory, mask);

  std::vector<Tensor> contexts;
  for (int64_t k = 0; k < h; ++k) {
    // [F2.2] head k's projections are rows k*d_h .. (k+1)*d_h - 1 of W_Q, W_K, W_V
    Tensor q =
        nn::linear(x, rows(mha.q_proj->weight, k * d_h, d_h), rows(mha.q_proj->bias, k * d_h, d_h));
    Tensor key = nn::linear(memory, rows(mha.k_proj->weight, k * d_h, d_h),
                            rows(mha.k_proj->bias, k * d_h, d_h));
    Tensor value = nn::linear(memory, rows(mha.v_proj->weight, k * d_h, d_h),
                              rows(mha.v_proj->bias, k * d_h, d_h));
    // [F0.9] c_k = sum_i a_ki v_i, with d_k = d_h
    auto [c_k, a_k] = nn::scaled_dot_product_attention(q, key, value, mask);
    Tensor fused_a_k = reshape(narrow(fused_weights, 1, k, 1), {2, 4, 5});
    CHECK(max_abs_diff(a_k, fused_a_k) < 1e-6);
    contexts.push_back(c_k);
  }
  // [F0.10] c = W_c [c_1; c_2; c_3] + b_c
  Tensor one_by_one = mha.out_proj->forward(cat(contexts, -1));
  CHECK(max_abs_diff(one_by_one, fused) < (testing::is_double ? 1e-12 : 1e-5));
}

TEST_CASE(
    "layers/multi_head_attention [F4.8]: masks broadcast over the heads; blocked weights are "
    "exactly 0") {
  manual_seed(3);
  nn::MultiHeadAttention mha(8, 4);
  Generator gen(3);
  Tensor x = randn({2, 4, 8}, gen);
  // Padding (B,1,T): sequence 1 has 2 real tokens. Combined with the causal mask: (B,T,T).
  Tensor mask =
      nn::combine_masks(nn::padding_mask(std::vector<int64_t>{4, 2}, 4), nn::causal_mask(4));
  auto [out, weights] = mha.forward(x, mask);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t head = 0; head < 4; ++head)
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t j = 0; j < 4; ++j) {
          const bool blocked = j > i || (b == 1 && j >= 2);
          if (blocked) CHECK(weights.at({b, head, i, j}) == 0);
          if (!blocked) CHECK(weights.at({b, head, i, j}) > 0);
        }
  // A 4-D mask is used as given.
  Tensor mask4 = reshape(nn::causal_mask(4), {1, 1, 4, 4});
  CHECK(max_abs_diff(mha.forward(x, mask4).weights, mha.forward(x, nn::causal_mask(4)).weights) ==
        0);
}

TEST_CASE("layers/multi_head_attention: errors name the shapes") {
  check_error([] { nn::MultiHeadAttention(6, 4); },
              {"MultiHeadAttention:", "d_model = 6", "heads = 4"});
  nn::MultiHeadAttention mha(4, 2);
  check_error(
      [&] {
        (void)mha.forward(zeros({2, 3, 5}));
      },
      {"MultiHeadAttention:", "query", "(2,3,5)", "d_model = 4"});
  check_error([&] { (void)mha.forward(zeros({3, 4})); }, {"MultiHeadAttention:", "(3,4)"});
  check_error(
      [&] {
        (void)mha.forward(zeros({2, 3, 4}), zeros({1, 5, 4}), zeros({1, 5, 4}));
      },
      {"MultiHeadAttention:", "(2,3,4)", "(1,5,4)", "batch size"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE(
    "layers/multi_head_attention [F0.8] [F0.9] [F0.10] [F2.6]: gradcheck w.r.t. the inputs and "
    "every parameter, with and without a mask") {
  manual_seed(4);
  nn::MultiHeadAttention mha(4, 2);
  Generator gen(4);
  Tensor x = leaf({2, 3, 4}, gen), memory = leaf({2, 5, 4}, gen);
  Tensor mask = nn::padding_mask(std::vector<int64_t>{5, 2}, 5);
  for (const Tensor& m : {Tensor(), mask}) {
    check_gradients(
        [&](const std::vector<Tensor>& in) {
          auto r = mha.forward(in[0], in[1], in[1], m);
          return cat({reshape(r.context, {-1}), reshape(r.weights, {-1})}, 0);
        },
        {x, memory});
    check_parameter_gradients(mha, [&] { return mha.forward(x, memory, memory, m).context; });
  }
  Tensor square = leaf({2, 4, 4}, gen);
  check_gradients(
      [&](const std::vector<Tensor>& in) { return mha.forward(in[0], nn::causal_mask(4)).context; },
      {square});
}
#endif

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
  check_parameter_gradients(attention, [&] { return attention.forward(x); });
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

// --- FeedForward and the encoder layer
// ------------------------------------------------------------

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
    CHECK(max_abs_diff(y, expected) == 0);
    check_shape(layer.attention_weights, {2, 2, 3, 3});
  }
  // In training mode the dropouts act: the output changes.
  manual_seed(7);
  nn::TransformerEncoderLayer layer(4, 2, 8, /*dropout=*/0.5);
  Tensor train_out = layer.forward(x);
  layer.eval();
  CHECK(max_abs_diff(train_out, layer.forward(x)) > 0);
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
    check_parameter_gradients(layer, [&] { return layer.forward(x, mask); });
  }
}
#endif

// --- TinyTransformer --------------------------------------------------------------------------

namespace {
nn::TinyTransformerOptions tiny_options(int64_t layers) {
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
  nn::TinyTransformer model(tiny_options(2));
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
  CHECK(std::find(names.begin(), names.end(), "layers.0.feed_forward.linear2.bias") != names.end());
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
  nn::TinyTransformer model(tiny_options(2));
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
  nn::TinyTransformer model(tiny_options(1));
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
  nn::TinyTransformer model(tiny_options(1));
  Tensor tokens = tensor({{1, 2, 3, 1}, {4, 0, 2, 2}});
  check_parameter_gradients(model, [&] { return model.forward(tokens); });
  // and through the loss it trains with
  check_parameter_gradients(model, [&] {
    return nn::cross_entropy(model.forward(tokens), tensor({{2, 3, 1, 0}, {0, 2, 2, 4}}));
  });
}
#endif
