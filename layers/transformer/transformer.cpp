// Transformer encoder layer (residuals and layer norms around attention and
// the feed-forward network) and the tiny Transformer language model.
#include "layers/transformer/transformer.hpp"

#include <typeinfo>

#include "autograd/ops.hpp"
#include "core/error.hpp"
#include "layers/attention/scaled_dot_product.hpp"
#include "layers/transformer/transformer_masks.hpp"

namespace ag::nn {

TransformerEncoderLayer::TransformerEncoderLayer(int64_t d_model, int64_t heads, int64_t d_ff,
                                                 real dropout, bool norm_first)
    : Module("TransformerEncoderLayer"), norm_first(norm_first) {
  self_attn = register_module("self_attn", std::make_shared<MultiHeadAttention>(d_model, heads));
  // The FeedForward computes FFN(x); its parts are registered here, in PyTorch's
  // order and under its names (the FeedForward itself is not registered).
  feed_forward = std::make_shared<FeedForward>(d_model, d_ff, dropout);
  linear1 = register_module("linear1", feed_forward->linear1);
  this->dropout = register_module("dropout", feed_forward->dropout);
  linear2 = register_module("linear2", feed_forward->linear2);
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(d_model));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(d_model));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(dropout));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(dropout));
}

namespace {

// Whether a Dropout module returns its input as it is: p = 0, or not training
// (and not a subclass with its own forward; a p made invalid after
// construction goes to dropout(), which says so).
bool passes_through(const Dropout& dropout) {
  return typeid(dropout) == typeid(Dropout) && dropout.p >= 0 && dropout.p <= 1 &&
         (dropout.p == 0 || !dropout.is_training());
}

// x (B,T,d) for `attention` and the masks of its self-attention: T queries
// over the cached positions and their own. `cache` is the layer's
// AttentionCache or the stack's KVCache (null: nothing cached). `layer` names
// the module the user called (the encoder stack checks for its first layer).
template <typename Cache>
void check_encoder_input(const char* layer, const Tensor& x, const Tensor& mask,
                         const Tensor& key_padding_mask, const MultiHeadAttention& attention,
                         const Cache* cache) {
  AG_CHECK(x.defined() && x.dim() == 3 && x.size(2) == attention.d_model,
           "{}: input {} must be (batch, time, d_model = {})", layer, describe(x),
           attention.d_model);
  const int64_t past = cache ? cache->length() : 0;
  check_attention_masks(layer, "mask", mask, "key_padding_mask", key_padding_mask, x.size(0),
                        attention.heads, x.size(1), past + x.size(1), "T", "T");
}

}  // namespace

Tensor TransformerEncoderLayer::forward(const Tensor& x, const Tensor& mask,
                                        const Tensor& key_padding_mask, AttentionCache* cache) {
  check_encoder_input("TransformerEncoderLayer", x, mask, key_padding_mask, *self_attn, cache);
  auto attend = [&](const Tensor& input) {
    // With a KV cache (generation's fast path) input is the new positions only:
    // their keys and values join the cached ones.
    AttentionOutput attended =
        cache ? self_attention_step(*self_attn, input, *cache, mask, key_padding_mask)
              : self_attn->forward(input, input, input, mask, key_padding_mask);
    attention_weights = attended.weights;
    return dropout1->forward(attended.context);
  };
  // With both dropouts passing x through (p = 0, or in eval), no cache and the
  // layer's own FeedForward, the attention's output projection and the FFN's
  // second layer write the residual sums themselves (forward_plus_residual;
  // in fast mode linear_plus_residual): the same sums, without a pass over
  // (B,T,d) each.
  if (!cache && passes_through(*dropout1) && passes_through(*dropout2) &&
      typeid(*feed_forward) == typeid(FeedForward)) {
    if (norm_first) {
      const Tensor normed = norm1->forward(x);
      // [F3.6] x = x + SelfAttn(LN_1(x))                  (B,T,d)
      const AttentionOutput attended =
          self_attn->forward_plus_residual(x, normed, normed, normed, mask, key_padding_mask);
      attention_weights = attended.weights;
      const Tensor& h = attended.context;
      // [F3.3] [F3.6] x = x + FFN(LN_2(x))                 (B,T,d)
      return feed_forward->forward_plus_residual(h, norm2->forward(h));
    }
    // [F3.6] x = LN_1(x + SelfAttn(x))                     (B,T,d)
    const AttentionOutput attended =
        self_attn->forward_plus_residual(x, x, x, x, mask, key_padding_mask);
    attention_weights = attended.weights;
    const Tensor h = norm1->forward(attended.context);
    // [F3.3] [F3.6] x = LN_2(x + FFN(x))                   (B,T,d)
    return norm2->forward(feed_forward->forward_plus_residual(h, h));
  }
  if (norm_first) {
    // [F3.6] x = x + Dropout(SelfAttn(LN_1(x)))          (B,T,d)
    Tensor h = x + attend(norm1->forward(x));
    // [F3.3] [F3.6] x = x + Dropout(FFN(LN_2(x)))        (B,T,d)
    return h + dropout2->forward(feed_forward->forward(norm2->forward(h)));
  }
  // [F3.6] x = LN_1(x + Dropout(SelfAttn(x)))            (B,T,d)
  Tensor h = norm1->forward(x + attend(x));
  // [F3.3] [F3.6] x = LN_2(x + Dropout(FFN(x)))          (B,T,d)
  return norm2->forward(h + dropout2->forward(feed_forward->forward(h)));
}

std::string TransformerEncoderLayer::extra_repr() const {
  return fmt::format("norm_first={}", norm_first);
}

TransformerEncoder::TransformerEncoder(int64_t num_layers, int64_t d_model, int64_t heads,
                                       int64_t d_ff, real dropout, bool norm_first)
    : Module("TransformerEncoder") {
  AG_CHECK(num_layers >= 0, "TransformerEncoder: num_layers must be >= 0, got {}", num_layers);
  for (int64_t i = 0; i < num_layers; ++i)
    layers.push_back(register_module(
        std::to_string(i),
        std::make_shared<TransformerEncoderLayer>(d_model, heads, d_ff, dropout, norm_first)));
}

Tensor TransformerEncoder::forward(const Tensor& x, const Tensor& mask,
                                   const Tensor& key_padding_mask, KVCache* cache) {
  if (!layers.empty())  // the input and masks the first layer will check, named here
    check_encoder_input("TransformerEncoder", x, mask, key_padding_mask, *layers[0]->self_attn,
                        cache);
  // [F3.3] the layers stacked: each one's output is the next one's input
  Tensor h = x;
  for (size_t i = 0; i < layers.size(); ++i)
    h = layers[i]->forward(h, mask, key_padding_mask, cache ? &cache->layer(i).self_attn : nullptr);
  return h;
}

TinyTransformer::TinyTransformer(const TinyTransformerOptions& opt)
    : Module("TinyTransformer"), options(opt) {
  embedding =
      register_module("embedding", std::make_shared<Embedding>(opt.vocab_size, opt.d_model));
  positional =
      register_module("positional", std::make_shared<PositionalEncoding>(opt.d_model, opt.max_len));
  layers = register_module(
      "layers", std::make_shared<TransformerEncoder>(opt.num_layers, opt.d_model, opt.heads,
                                                     opt.d_ff, opt.dropout, opt.norm_first));
  norm = register_module("norm", std::make_shared<LayerNorm>(opt.d_model));
  lm_head = register_module("lm_head", std::make_shared<Linear>(opt.d_model, opt.vocab_size));
}

namespace {

// tokens (B,T) of the vocabulary, within max_len after the cached positions
// (a cache only with the causal mask), and the padding mask.
void check_tiny_transformer(const Tensor& tokens, bool causal, const Tensor& key_padding_mask,
                            const KVCache* cache, const TinyTransformerOptions& options) {
  AG_CHECK(tokens.defined() && tokens.dim() == 2,
           "TinyTransformer: tokens {} must be (batch, time)", describe(tokens));
  AG_CHECK(causal || !cache,
           "TinyTransformer: a KV cache needs the causal mask (without it earlier positions "
           "read later ones, and their keys and values change)");
  const int64_t past = cache ? cache->length() : 0;
  AG_CHECK(past + tokens.size(1) <= options.max_len,
           "TinyTransformer: sequence length {} exceeds max_len {}", past + tokens.size(1),
           options.max_len);
  check_tokens(tokens, options.vocab_size, "TinyTransformer");
  check_attention_masks("TinyTransformer", "mask", Tensor(), "key_padding_mask", key_padding_mask,
                        tokens.size(0), options.heads, tokens.size(1), past + tokens.size(1), "T",
                        "T");
}

}  // namespace

Tensor TinyTransformer::forward(const Tensor& tokens, bool causal, const Tensor& key_padding_mask,
                               KVCache* cache) {
  check_tiny_transformer(tokens, causal, key_padding_mask, cache, options);
  const int64_t past = cache ? cache->length() : 0;
  // [F2.8] [F3.1] Embedding, then + PE at positions past..past+T-1   (B,T) -> (B,T,d)
  Tensor x = positional->forward(embedding->forward(tokens), past);
  // [F4.8] the lookahead mask: query t may not read keys after t   (T,T), or (T,past+T)
  Tensor mask = causal ? causal_mask_rows(past, tokens.size(1)) : Tensor();
  // [F3.3] [F3.6] N encoder layers, then the final layer norm        (B,T,d)
  Tensor h = norm->forward(layers->forward(x, mask, key_padding_mask, cache));
  // [F2.8] Linear to the vocabulary                (B,T,d) -> (B,T,vocab)
  return lm_head->forward(h);
}

std::string TinyTransformer::extra_repr() const {
  return fmt::format("vocab_size={}, d_model={}, heads={}, d_ff={}, num_layers={}, max_len={}",
                     options.vocab_size, options.d_model, options.heads, options.d_ff,
                     options.num_layers, options.max_len);
}

}  // namespace ag::nn
