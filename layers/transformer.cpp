// Transformer encoder layer (residuals and layer norms around attention and
// the feed-forward network) and the tiny Transformer language model.
#include "layers/transformer.hpp"

#include "autograd/grad_mode.hpp"
#include "autograd/ops.hpp"
#include "core/error.hpp"
#include "layers/scaled_dot_product.hpp"

namespace ag::nn {

TransformerEncoderLayer::TransformerEncoderLayer(int64_t d_model, int64_t heads, int64_t d_ff,
                                                 real dropout, bool norm_first)
    : Module("TransformerEncoderLayer"), norm_first(norm_first) {
  self_attn = register_module("self_attn", std::make_shared<MultiHeadAttention>(d_model, heads));
  feed_forward =
      register_module("feed_forward", std::make_shared<FeedForward>(d_model, d_ff, dropout));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(d_model));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(d_model));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(dropout));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(dropout));
}

Tensor TransformerEncoderLayer::forward(const Tensor& x, const Tensor& mask,
                                        const Tensor& key_padding_mask) {
  AG_CHECK(x.defined() && x.dim() == 3 && x.size(2) == self_attn->d_model,
           "TransformerEncoderLayer: input {} must be (batch, time, d_model = {})", describe(x),
           self_attn->d_model);
  check_attention_masks("TransformerEncoderLayer", mask, key_padding_mask, x.size(0),
                        self_attn->heads, x.size(1), x.size(1));
  auto attend = [&](const Tensor& input) {
    AttentionOutput attended = self_attn->forward(input, input, input, mask, key_padding_mask);
    attention_weights = attended.weights;
    return dropout1->forward(attended.context);
  };
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
                                   const Tensor& key_padding_mask) {
  if (!layers.empty()) {  // the input and masks the first layer will check, named here
    const MultiHeadAttention& attention = *layers[0]->self_attn;
    AG_CHECK(x.defined() && x.dim() == 3 && x.size(2) == attention.d_model,
             "TransformerEncoder: input {} must be (batch, time, d_model = {})", describe(x),
             attention.d_model);
    check_attention_masks("TransformerEncoder", mask, key_padding_mask, x.size(0), attention.heads,
                          x.size(1), x.size(1));
  }
  // [F3.3] the layers stacked: each one's output is the next one's input
  Tensor h = x;
  for (const auto& layer : layers) h = layer->forward(h, mask, key_padding_mask);
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

// Tokens (B,T) of whole numbers in the vocabulary, T at most max_len, checked at `op`'s entry.
void check_model_tokens(const Tensor& tokens, const TinyTransformerOptions& options,
                        const char* op) {
  AG_CHECK(tokens.defined() && tokens.dim() == 2, "{}: tokens {} must be (batch, time)", op,
           describe(tokens));
  AG_CHECK(tokens.size(1) <= options.max_len, "{}: sequence length {} exceeds max_len {}", op,
           tokens.size(1), options.max_len);
  check_tokens(tokens, options.vocab_size, op);
}

}  // namespace

Tensor TinyTransformer::forward(const Tensor& tokens, bool causal, const Tensor& key_padding_mask) {
  check_model_tokens(tokens, options, "TinyTransformer");
  check_attention_masks("TinyTransformer", Tensor(), key_padding_mask, tokens.size(0),
                        options.heads, tokens.size(1), tokens.size(1));
  // [F2.8] Embedding, then [F3.1] + PE            (B,T) -> (B,T,d)
  Tensor x = positional->forward(embedding->forward(tokens));
  // [F4.8] the lookahead mask: query t may not read keys after t     (T,T)
  Tensor mask = causal ? causal_mask(tokens.size(1)) : Tensor();
  // [F3.3] [F3.6] N encoder layers, then the final layer norm        (B,T,d)
  Tensor h = norm->forward(layers->forward(x, mask, key_padding_mask));
  // [F2.8] Linear to the vocabulary                (B,T,d) -> (B,T,vocab)
  return lm_head->forward(h);
}

Tensor TinyTransformer::generate(const Tensor& prompt, int64_t steps) {
  AG_CHECK(prompt.defined() && prompt.dim() == 2 && prompt.size(1) >= 1 && steps >= 0,
           "TinyTransformer::generate: prompt {} must be (batch, time >= 1) and steps {} >= 0",
           describe(prompt), steps);
  check_model_tokens(prompt, options, "TinyTransformer::generate");
  AG_CHECK(steps <= options.max_len - prompt.size(1),  // (the sum could overflow)
           "TinyTransformer::generate: {} prompt tokens + {} steps exceed max_len {}",
           prompt.size(1), steps, options.max_len);
  NoGradGuard no_grad;
  Tensor sequence = prompt;
  for (int64_t s = 0; s < steps; ++s) {
    Tensor logits = forward(sequence, /*causal=*/true);  // (B,T,vocab)
    // greedy decoding: the next token is the most likely one after the last position
    Tensor last = narrow(logits, 1, logits.size(1) - 1, 1);  // (B,1,vocab)
    sequence = cat({sequence, argmax(last, -1)}, 1);         // (B,T+1)
  }
  return sequence;
}

std::string TinyTransformer::extra_repr() const {
  return fmt::format("vocab_size={}, d_model={}, heads={}, d_ff={}, num_layers={}, max_len={}",
                     options.vocab_size, options.d_model, options.heads, options.d_ff,
                     options.num_layers, options.max_len);
}

}  // namespace ag::nn
