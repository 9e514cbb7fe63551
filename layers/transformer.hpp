// The Transformer's encoder layer and a tiny Transformer language model.
//
// TransformerEncoderLayer [F3.3, F3.6], as torch.nn.TransformerEncoderLayer
// (ReLU, batch_first): multi-head self-attention and the feed-forward
// network, each wrapped in a residual connection and a layer norm. Seed 003
// (section 3.3) names these parts without formulas; the two standard orders:
//
//   norm_first = true  (pre-norm, the default here; trains without warm-up)
//     x = x + Dropout(SelfAttn(LN_1(x), mask))
//     x = x + Dropout(FFN(LN_2(x)))
//   norm_first = false (post-norm, Vaswani et al. 2017; PyTorch's default)
//     x = LN_1(x + Dropout(SelfAttn(x, mask)))
//     x = LN_2(x + Dropout(FFN(x)))
//
// TinyTransformer [F2.8]: seed 002's TransformerModel (section 5.2) is
// Embedding -> nn.Transformer -> Linear to the vocabulary. Here it is the
// decoder-only form, the smallest model that generates:
//
//   tokens (B,T) --Embedding--> (B,T,d) --+ PE [F3.1]--> N encoder layers
//   (with a causal mask [F4.8] they read only to the left) --LayerNorm--> (B,T,d)
//   --Linear(d, vocab)--> logits (B,T,vocab)
#pragma once

#include <vector>

#include "layers/dropout.hpp"
#include "layers/embedding.hpp"
#include "layers/feed_forward.hpp"
#include "layers/layer_norm.hpp"
#include "layers/linear.hpp"
#include "layers/module.hpp"
#include "layers/multi_head_attention.hpp"
#include "layers/positional_encoding.hpp"

namespace ag::nn {

class TransformerEncoderLayer : public Module {
 public:
  TransformerEncoderLayer(int64_t d_model, int64_t heads, int64_t d_ff, real dropout = real(0.1),
                          bool norm_first = true);
  // x: (B,T,d) -> (B,T,d). mask (1 = blocked) and key_padding_mask as
  // MultiHeadAttention's attn_mask and key_padding_mask.
  Tensor forward(const Tensor& x, const Tensor& mask = Tensor(),
                 const Tensor& key_padding_mask = Tensor());
  std::string extra_repr() const override;

  bool norm_first;
  std::shared_ptr<MultiHeadAttention> self_attn;
  // PyTorch keeps linear1, dropout and linear2 on the layer itself: its
  // linear1.weight is feed_forward.linear1.weight here.
  std::shared_ptr<FeedForward> feed_forward;
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<Dropout> dropout1, dropout2;
  // The per-head weights (B,h,T,T) of the last forward, to look at.
  Tensor attention_weights;
};

// A stack of layers named "0", "1", ... (as torch.nn.ModuleList).
class TransformerEncoder : public Module {
 public:
  TransformerEncoder(int64_t num_layers, int64_t d_model, int64_t heads, int64_t d_ff,
                     real dropout = real(0.1), bool norm_first = true);
  Tensor forward(const Tensor& x, const Tensor& mask = Tensor(),
                 const Tensor& key_padding_mask = Tensor());
  std::vector<std::shared_ptr<TransformerEncoderLayer>> layers;
};

struct TinyTransformerOptions {
  int64_t vocab_size = 16;
  int64_t d_model = 32;
  int64_t heads = 4;
  int64_t d_ff = 64;
  int64_t num_layers = 2;
  int64_t max_len = 64;
  real dropout = 0;
  bool norm_first = true;
};

class TinyTransformer : public Module {
 public:
  explicit TinyTransformer(const TinyTransformerOptions& options);
  // tokens (B,T) of whole numbers in 0..vocab-1 -> logits (B,T,vocab).
  // causal = true applies causal_mask(T): position t sees positions 0..t only,
  // so logits[:, t] predict token t+1 from the tokens up to t.
  // key_padding_mask (B,T) (or (B,1,T)), 1 where a token is padding, as
  // MultiHeadAttention's: no position attends to a padded one.
  Tensor forward(const Tensor& tokens, bool causal = true,
                 const Tensor& key_padding_mask = Tensor());
  // Greedy decoding: appends `steps` tokens to prompt (B,T0), each the argmax
  // of the logits at the last position, and returns (B, T0 + steps). No graph
  // is recorded. T0 + steps must not exceed max_len.
  Tensor generate(const Tensor& prompt, int64_t steps);
  std::string extra_repr() const override;

  TinyTransformerOptions options;
  std::shared_ptr<Embedding> embedding;
  std::shared_ptr<PositionalEncoding> positional;
  std::shared_ptr<TransformerEncoder> layers;
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> lm_head;
};

}  // namespace ag::nn
