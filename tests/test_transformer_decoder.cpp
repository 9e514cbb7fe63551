// The decoder layer [F1.1] [F2.6] [F3.3] [F3.6], the decoder stack, nn::Transformer
// [F1.2] and seed 002's TransformerModel [F2.8] [F4.8]: each by hand from its
// parts, the masks, the names, the errors, both modes, and gradchecks (double
// flavor) with respect to the inputs and every parameter. The PyTorch fixtures
// are in test_pytorch_interop.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

using namespace ag;
using namespace ag::testing;

namespace {

bool has_parameter(const std::vector<nn::NamedTensor>& list, const std::string& name) {
  return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
}

// The key projections' biases add q_i . b_k / sqrt(d_h) to every score of row i
// alike, which softmax ignores: no output depends on them (their gradient is
// exactly 0, which the check still compares).
const std::vector<std::string> kUnreadBiases = {"self_attn.k_proj.bias",
                                                "multihead_attn.k_proj.bias"};

Tensor padding_2d(const std::vector<int64_t>& lengths, int64_t length) {
  return reshape(nn::padding_mask(lengths, length), {int64_t(lengths.size()), length});
}

}  // namespace

// --- TransformerDecoderLayer ------------------------------------------------------------

TEST_CASE(
    "layers/transformer_decoder [F1.1] [F2.6] [F3.3] [F3.6]: self-attention, cross-attention "
    "over the memory and the FFN, each with its residual and norm, pre-norm and post-norm") {
  Generator gen(21);
  Tensor tgt = randn({2, 3, 4}, gen), memory = randn({2, 5, 4}, gen);
  Tensor tgt_mask = nn::causal_mask(3);
  Tensor memory_padding = padding_2d({5, 2}, 5);
  for (bool norm_first : {true, false}) {
    INFO("norm_first " << norm_first);
    manual_seed(21);
    nn::TransformerDecoderLayer layer(4, 2, 8, /*dropout=*/0.1, norm_first);
    layer.eval();  // dropout off
    Tensor y = layer.forward(tgt, memory, tgt_mask, Tensor(), Tensor(), memory_padding);
    auto self_attn = [&](const Tensor& t) { return layer.self_attn->forward(t, tgt_mask).context; };
    auto cross_attn = [&](const Tensor& t) {
      return layer.multihead_attn->forward(t, memory, memory, Tensor(), memory_padding).context;
    };
    auto ffn = [&](const Tensor& t) {
      return layer.linear2->forward(relu(layer.linear1->forward(t)));
    };
    Tensor expected;
    if (norm_first) {
      Tensor h = tgt + self_attn(layer.norm1->forward(tgt));
      h = h + cross_attn(layer.norm2->forward(h));
      expected = h + ffn(layer.norm3->forward(h));
    } else {
      Tensor h = layer.norm1->forward(tgt + self_attn(tgt));
      h = layer.norm2->forward(h + cross_attn(h));
      expected = layer.norm3->forward(h + ffn(h));
    }
    CHECK(max_abs_diff(y, expected) < tol);
    check_shape(layer.self_attention_weights, {2, 2, 3, 3});
    check_shape(layer.cross_attention_weights, {2, 2, 3, 5});
    // [F4.8] the padded source positions of sequence 1 (2..4) get weight exactly 0
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t t = 0; t < 3; ++t)
        for (int64_t s = 2; s < 5; ++s) CHECK(layer.cross_attention_weights.at({1, h, t, s}) == 0);
  }
}

TEST_CASE(
    "layers/transformer_decoder [F1.1] [F4.8]: every target position reads the memory; a later "
    "target token changes no earlier output") {
  manual_seed(22);
  nn::TransformerDecoderLayer layer(4, 2, 8, 0);
  Generator gen(22);
  Tensor tgt = randn({1, 4, 4}, gen), memory = randn({1, 3, 4}, gen);
  Tensor mask = nn::causal_mask(4);
  Tensor y = layer.forward(tgt, memory, mask);
  // the memory moves every position, the first one included (cross-attention)
  Tensor other_memory = memory + randn({1, 3, 4}, gen);
  Tensor y_memory = layer.forward(tgt, other_memory, mask);
  for (int64_t t = 0; t < 4; ++t)
    CHECK(max_abs_diff(narrow(y_memory, 1, t, 1), narrow(y, 1, t, 1)) > 1e-3);
  // changing target position 2 leaves positions 0 and 1 as they were (the lookahead mask)
  Tensor changed = tgt.clone();
  for (int64_t f = 0; f < 4; ++f) changed.data()[2 * 4 + f] += 1;
  Tensor y_changed = layer.forward(changed, memory, mask);
  CHECK(max_abs_diff(narrow(y_changed, 1, 0, 2), narrow(y, 1, 0, 2)) == 0);
  CHECK(max_abs_diff(narrow(y_changed, 1, 2, 2), narrow(y, 1, 2, 2)) > 1e-3);
}

TEST_CASE("layers/transformer_decoder: PyTorch's names, the summary, training mode") {
  nn::TransformerDecoderLayer layer(4, 2, 6, /*dropout=*/0.5);
  std::vector<std::string> names;
  for (const auto& [name, p] : layer.named_parameters()) names.push_back(name);
  // nn.TransformerDecoderLayer's state_dict order, with in_proj split in three
  const std::vector<std::string> expected = {"self_attn.q_proj.weight",
                                             "self_attn.q_proj.bias",
                                             "self_attn.k_proj.weight",
                                             "self_attn.k_proj.bias",
                                             "self_attn.v_proj.weight",
                                             "self_attn.v_proj.bias",
                                             "self_attn.out_proj.weight",
                                             "self_attn.out_proj.bias",
                                             "multihead_attn.q_proj.weight",
                                             "multihead_attn.q_proj.bias",
                                             "multihead_attn.k_proj.weight",
                                             "multihead_attn.k_proj.bias",
                                             "multihead_attn.v_proj.weight",
                                             "multihead_attn.v_proj.bias",
                                             "multihead_attn.out_proj.weight",
                                             "multihead_attn.out_proj.bias",
                                             "linear1.weight",
                                             "linear1.bias",
                                             "linear2.weight",
                                             "linear2.bias",
                                             "norm1.weight",
                                             "norm1.bias",
                                             "norm2.weight",
                                             "norm2.bias",
                                             "norm3.weight",
                                             "norm3.bias"};
  CHECK(names == expected);
  // 2 (4 (4*4 + 4)) + (6*4 + 6) + (4*6 + 4) + 3 (4 + 4)
  CHECK(layer.num_parameters() == 160 + 30 + 28 + 24);
  const std::string summary = layer.to_string();
  CHECK(summary.find(
            "TransformerDecoderLayer(\n  norm_first=true\n  (self_attn): MultiHeadAttention(") ==
        0);
  CHECK(summary.find("  (multihead_attn): MultiHeadAttention(") != std::string::npos);
  CHECK(summary.find("  (dropout3): Dropout(p=0.5)") != std::string::npos);
  // In training mode the dropouts act (the FeedForward's too, registered as `dropout`).
  Generator gen(23);
  Tensor tgt = randn({2, 3, 4}, gen), memory = randn({2, 2, 4}, gen);
  manual_seed(23);
  Tensor train_out = layer.forward(tgt, memory);
  CHECK(layer.dropout->is_training());
  layer.eval();
  CHECK(!layer.feed_forward->dropout->is_training());
  CHECK(max_abs_diff(train_out, layer.forward(tgt, memory)) > 0);
}

TEST_CASE("layers/transformer_decoder: errors name the layer, the argument and the shapes") {
  nn::TransformerDecoderLayer layer(8, 2, 16);
  Tensor tgt = zeros({2, 5, 8}), memory = zeros({2, 4, 8});
  check_error(
      [&] {
        (void)layer.forward(zeros({2, 5, 6}), memory);
      },
      {"TransformerDecoderLayer:", "tgt (2,5,6)", "d_model = 8"});
  // memory of the wrong size: batch, features
  check_error(
      [&] {
        (void)layer.forward(tgt, zeros({3, 4, 8}));
      },
      {"TransformerDecoderLayer:", "memory (3,4,8)", "batch = 2", "tgt (2,5,8)"});
  check_error(
      [&] {
        (void)layer.forward(tgt, zeros({2, 4, 7}));
      },
      {"TransformerDecoderLayer:", "memory (2,4,7)", "d_model = 8"});
  // mask shapes
  check_error([&] { (void)layer.forward(tgt, memory, nn::causal_mask(4)); },
              {"TransformerDecoderLayer:", "tgt_mask (4,4)", "(T,T) = (5,5)", "(B,T,T) = (2,5,5)"});
  check_error(
      [&] {
        (void)layer.forward(tgt, memory, Tensor(), zeros({4, 5}));
      },
      {"TransformerDecoderLayer:", "memory_mask (4,5)", "(T,S) = (5,4)"});
  check_error(
      [&] {
        (void)layer.forward(tgt, memory, Tensor(), Tensor(), zeros({2, 4}));
      },
      {"TransformerDecoderLayer:", "tgt_key_padding_mask (2,4)", "(B,T) = (2,5)"});
  check_error(
      [&] {
        (void)layer.forward(tgt, memory, Tensor(), Tensor(), Tensor(), zeros({2, 5}));
      },
      {"TransformerDecoderLayer:", "memory_key_padding_mask (2,5)", "(B,S) = (2,4)"});
  // a padding mask given as the attention mask is refused, shape and name
  check_error(
      [&] {
        (void)layer.forward(tgt, memory, Tensor(), zeros({2, 4}));
      },
      {"TransformerDecoderLayer:", "memory_mask (2,4)",
       "Padding (B,S) goes in memory_key_padding_mask"});
  nn::TransformerEncoderLayer encoder_layer(8, 2, 16);
  check_error(
      [&] {
        (void)encoder_layer.forward(tgt, zeros({5, 4}));
      },
      {"TransformerEncoderLayer:", "mask (5,4)", "(T,T) = (5,5)"});
  check_error(
      [&] {
        (void)encoder_layer.forward(tgt, Tensor(), zeros({5, 2}));
      },
      {"TransformerEncoderLayer:", "key_padding_mask (5,2)", "(B,T) = (2,5)"});
  // The stack checks for its first layer and names itself, as TransformerEncoder does.
  nn::TransformerDecoder decoder(2, 8, 2, 16);
  check_error(
      [&] {
        (void)decoder.forward(zeros({2, 5, 6}), memory);
      },
      {"TransformerDecoder: tgt (2,5,6) must be (batch, target length, d_model = 8)"});
  check_error(
      [&] {
        (void)decoder.forward(tgt, memory, Tensor(), zeros({4, 5}));
      },
      {"TransformerDecoder: memory_mask (4,5)", "(T,S) = (5,4)"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE(
    "layers/transformer_decoder [F1.1] [F2.6] [F3.6]: gradcheck of the decoder layer w.r.t. tgt, "
    "memory and every parameter, with masks") {
  for (bool norm_first : {true, false}) {
    INFO("norm_first " << norm_first);
    manual_seed(24);
    nn::TransformerDecoderLayer layer(4, 2, 6, /*dropout=*/0, norm_first);
    Tensor tgt = leaf({2, 3, 4}, 24), memory = leaf({2, 4, 4}, 25);
    Tensor mask = nn::causal_mask(3), padding = padding_2d({4, 3}, 4);
    auto f = [&](const std::vector<Tensor>& in) {
      return layer.forward(in[0], in[1], mask, Tensor(), Tensor(), padding);
    };
    check_gradients(f, {tgt, memory});
    check_module_gradients(
        layer,
        [&] {
          return f({tgt, memory});
        },
        {}, kUnreadBiases);
  }
}

TEST_CASE("layers/transformer_decoder: gradcheck of a 2-layer TransformerDecoder") {
  manual_seed(26);
  nn::TransformerDecoder decoder(2, 4, 2, 6, /*dropout=*/0);
  Tensor tgt = leaf({2, 3, 4}, 26), memory = leaf({2, 2, 4}, 27);
  Tensor mask = nn::causal_mask(3);
  check_gradients(
      [&](const std::vector<Tensor>& in) { return decoder.forward(in[0], in[1], mask); },
      {tgt, memory});
  check_module_gradients(
      decoder, [&] { return decoder.forward(tgt, memory, mask); }, {tgt, memory}, kUnreadBiases);
}
#endif

TEST_CASE("layers/transformer_decoder: a TransformerDecoder is its layers one after the other") {
  manual_seed(28);
  nn::TransformerDecoder decoder(2, 4, 2, 6, 0);
  Generator gen(28);
  Tensor tgt = randn({2, 3, 4}, gen), memory = randn({2, 2, 4}, gen);
  Tensor mask = nn::causal_mask(3);
  Tensor h = tgt;
  for (const auto& layer : decoder.layers) h = layer->forward(h, memory, mask);
  CHECK(max_abs_diff(decoder.forward(tgt, memory, mask), h) == 0);
  CHECK(has_parameter(decoder.named_parameters(), "1.multihead_attn.v_proj.weight"));
  check_error([] { nn::TransformerDecoder(-1, 4, 2, 6); }, {"TransformerDecoder:", "-1"});
}

// --- nn::Transformer -------------------------------------------------------------------------

TEST_CASE(
    "layers/encoder_decoder [F1.2]: Transformer = the decoder stack over the encoder stack, "
    "each ending in PyTorch's final norm; PyTorch's names") {
  manual_seed(31);
  nn::Transformer model(4, 2, 2, 1, 6, /*dropout=*/0);
  Generator gen(31);
  Tensor src = randn({2, 5, 4}, gen), tgt = randn({2, 3, 4}, gen);
  Tensor src_padding = padding_2d({5, 3}, 5);
  Tensor tgt_mask = nn::Transformer::generate_square_subsequent_mask(3);
  CHECK(max_abs_diff(tgt_mask, nn::causal_mask(3)) == 0);
  Tensor y =
      model.forward(src, tgt, Tensor(), tgt_mask, Tensor(), src_padding, Tensor(), src_padding);
  Tensor memory = src;
  for (const auto& layer : model.encoder->layers->layers)
    memory = layer->forward(memory, Tensor(), src_padding);
  memory = model.encoder->norm->forward(memory);
  Tensor h = tgt;
  for (const auto& layer : model.decoder->layers->layers)
    h = layer->forward(h, memory, tgt_mask, Tensor(), Tensor(), src_padding);
  CHECK(max_abs_diff(y, model.decoder->norm->forward(h)) == 0);
  // encode and decode are the two halves
  CHECK(max_abs_diff(y, model.decode(tgt, model.encode(src, Tensor(), src_padding), tgt_mask,
                                     Tensor(), Tensor(), src_padding)) == 0);
  const auto params = model.named_parameters();
  for (const char* name :
       {"encoder.layers.0.self_attn.q_proj.weight", "encoder.layers.1.linear1.weight",
        "encoder.layers.1.norm2.bias", "encoder.norm.weight",
        "decoder.layers.0.self_attn.out_proj.bias", "decoder.layers.0.multihead_attn.k_proj.weight",
        "decoder.layers.0.norm3.weight", "decoder.norm.bias"}) {
    INFO(name);
    CHECK(has_parameter(params, name));
  }
  check_shape(y, {2, 3, 4});
}

TEST_CASE("layers/encoder_decoder: Transformer's errors name it and the shapes") {
  nn::Transformer model(8, 2, 1, 1, 16);
  Tensor src = zeros({2, 4, 8}), tgt = zeros({2, 5, 8});
  check_error(
      [&] {
        (void)model.forward(src, zeros({3, 5, 8}));
      },
      {"Transformer:", "src (2,4,8)", "tgt (3,5,8)", "same batch"});
  check_error(
      [&] {
        (void)model.forward(src, zeros({2, 5, 6}));
      },
      {"Transformer:", "tgt (2,5,6)", "d_model = 8"});
  check_error([&] { (void)model.forward(src, tgt, nn::causal_mask(5)); },
              {"Transformer:", "src_mask (5,5)", "(S,S) = (4,4)"});
  check_error([&] { (void)model.forward(src, tgt, Tensor(), nn::causal_mask(4)); },
              {"Transformer:", "tgt_mask (4,4)", "(T,T) = (5,5)"});
  check_error(
      [&] {
        (void)model.forward(src, tgt, Tensor(), Tensor(), zeros({4, 5}));
      },
      {"Transformer:", "memory_mask (4,5)", "(T,S) = (5,4)"});
  check_error(
      [&] {
        (void)model.forward(src, tgt, Tensor(), Tensor(), Tensor(), zeros({2, 5}));
      },
      {"Transformer:", "src_key_padding_mask (2,5)", "(B,S) = (2,4)"});
  check_error(
      [&] {
        (void)model.forward(src, tgt, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(),
                            zeros({2, 5}));
      },
      {"Transformer:", "memory_key_padding_mask (2,5)", "(B,S) = (2,4)"});
  // memory of the wrong size
  check_error(
      [&] {
        (void)model.decode(tgt, zeros({1, 4, 8}));
      },
      {"Transformer::decode:", "memory (1,4,8)", "tgt (2,5,8)"});
  check_error([] { nn::Transformer(6, 4, 1, 1, 8); }, {"Transformer:", "d_model 6", "heads 4"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE(
    "layers/encoder_decoder [F1.2]: gradcheck of a Transformer w.r.t. src, tgt and every "
    "parameter, pre-norm and post-norm, with padding") {
  for (bool norm_first : {true, false}) {
    INFO("norm_first " << norm_first);
    manual_seed(32);
    nn::Transformer model(4, 2, 1, 1, 6, /*dropout=*/0, norm_first);
    Tensor src = leaf({2, 3, 4}, 32), tgt = leaf({2, 2, 4}, 33);
    Tensor padding = padding_2d({3, 2}, 3), mask = nn::causal_mask(2);
    auto f = [&](const std::vector<Tensor>& in) {
      return model.forward(in[0], in[1], Tensor(), mask, Tensor(), padding, Tensor(), padding);
    };
    check_gradients(f, {src, tgt});
    check_module_gradients(
        model,
        [&] {
          return f({src, tgt});
        },
        {}, kUnreadBiases);
  }
}
#endif

// --- seed 002's TransformerModel ---------------------------------------------------------------

namespace {
nn::TransformerModelOptions tiny_model_options() {
  nn::TransformerModelOptions o;
  o.vocab_size = 7;
  o.d_model = 4;
  o.heads = 2;
  o.num_encoder_layers = 1;
  o.num_decoder_layers = 1;
  o.d_ff = 6;
  o.max_len = 8;
  return o;
}
}  // namespace

TEST_CASE(
    "layers/transformer_model [F2.8] [F4.8]: the seed's fc(transformer(embedding(src), "
    "embedding(tgt))) with positions and seed 004's masks") {
  manual_seed(41);
  nn::TransformerModel model(tiny_model_options());
  Tensor source = tensor({{3, 4, 5, 6}, {5, 3, 0, 0}});     // pad_id 0
  Tensor target_in = tensor({{1, 6, 5, 4}, {1, 3, 5, 0}});  // bos_id 1, padded
  Tensor logits = model.forward(source, target_in);
  check_shape(logits, {2, 4, 7});
  auto embed = [&](const Tensor& t) {
    return model.positional->forward(model.embedding->forward(t));
  };
  Tensor src_padding = tensor({{0, 0, 0, 0}, {0, 0, 1, 1}});
  Tensor tgt_padding = tensor({{0, 0, 0, 0}, {0, 0, 0, 1}});
  Tensor expected = model.fc->forward(
      model.transformer->forward(embed(source), embed(target_in), Tensor(), nn::causal_mask(4),
                                 Tensor(), src_padding, tgt_padding, src_padding));
  CHECK(max_abs_diff(logits, expected) < tol);
  // The target's padding mask changes no real position: under the lookahead mask
  // only the padded queries could read a padded key.
  Tensor without = model.fc->forward(
      model.transformer->forward(embed(source), embed(target_in), Tensor(), nn::causal_mask(4),
                                 Tensor(), src_padding, Tensor(), src_padding));
  CHECK(max_abs_diff(narrow(logits, 1, 0, 3), narrow(without, 1, 0, 3)) < tol);
  // The source's padding does: it keeps the pad tokens from being read.
  Tensor other_pad = tensor({{3, 4, 5, 6}, {5, 3, 4, 6}});  // the padding replaced by tokens
  Tensor unpadded = model.forward(other_pad, target_in);
  CHECK(max_abs_diff(narrow(logits, 0, 1, 1), narrow(unpadded, 0, 1, 1)) > 1e-3);
  Tensor padded_again = model.forward(tensor({{3, 4, 5, 6}, {5, 3, 0, 0}}), target_in);
  CHECK(max_abs_diff(padded_again, logits) == 0);
  const auto params = model.named_parameters();
  CHECK(params.front().first == "embedding.weight");
  CHECK(has_parameter(params, "transformer.decoder.layers.0.multihead_attn.q_proj.weight"));
  CHECK(params.back().first == "fc.bias");
  CHECK(model.named_buffers().front().first == "positional.pe");
  check_error(
      [&] {
        (void)model.forward(source, tensor({{1, 2}}));
      },
      {"TransformerModel:", "target_in (1,2)", "source (2,4)"});
  check_error(
      [&] {
        (void)model.forward(zeros({1, 9}), target_in);
      },
      {"TransformerModel:", "source (1,9)", "max_len 8"});
  check_error(
      [] {
        nn::TransformerModelOptions o = tiny_model_options();
        o.eos_id = 7;
        nn::TransformerModel bad(o);
      },
      {"TransformerModel:", "special token id 7", "0..6"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE(
    "layers/transformer_model [F2.8]: gradcheck of TransformerModel through its cross-entropy, "
    "every parameter") {
  manual_seed(42);
  nn::TransformerModel model(tiny_model_options());
  Tensor source = tensor({{3, 4, 5}, {6, 3, 0}});
  Tensor target_in = tensor({{1, 6, 5}, {1, 4, 0}});
  Tensor targets = tensor({{6, 5, 2}, {4, 2, 0}});
  check_module_gradients(
      model,
      [&] {
        return nn::cross_entropy(model.forward(source, target_in), targets, /*ignore_index=*/0);
      },
      {}, kUnreadBiases);
}
#endif

// --- both modes ---------------------------------------------------------------------------

TEST_CASE(
    "modes/TransformerDecoderLayer and Transformer [F1.1] [F2.6]: fast and reference mode give "
    "the same outputs and gradients") {
  manual_seed(51);
  nn::TransformerDecoderLayer layer(6, 3, 8, 0);
  nn::Transformer model(6, 3, 1, 1, 8, 0);
  Tensor tgt = leaf({2, 4, 6}, 51), memory = leaf({2, 3, 6}, 52);
  Tensor padding = padding_2d({3, 1}, 3), mask = nn::causal_mask(4);
  auto run = [&](bool reference) {
    ReferenceModeGuard mode(reference);
    std::vector<Tensor> result;
    for (Tensor* x : {&tgt, &memory}) x->set_grad(Tensor());
    layer.zero_grad();
    model.zero_grad();
    Tensor a = layer.forward(tgt, memory, mask, Tensor(), Tensor(), padding);
    Tensor b = model.forward(memory, tgt, Tensor(), mask, Tensor(), padding, Tensor(), padding);
    Generator gen(5);
    (sum(a * randn(a.shape(), gen)) + sum(b * randn(b.shape(), gen))).backward();
    result = {a.detach(), b.detach(), tgt.grad(), memory.grad()};
    for (const Tensor& p : layer.parameters()) result.push_back(p.grad());
    for (const Tensor& p : model.parameters()) result.push_back(p.grad());
    return result;
  };
  const std::vector<Tensor> fast = run(false), reference = run(true);
  REQUIRE(fast.size() == reference.size());
  for (size_t i = 0; i < fast.size(); ++i) {
    INFO("output/gradient " << i);
    CHECK(max_abs_diff(fast[i], reference[i]) <= (is_double ? 1e-12 : 1e-5));
  }
}
