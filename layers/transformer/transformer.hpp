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

#include <memory>
#include <vector>

#include "layers/attention/multi_head_attention.hpp"
#include "layers/basic/dropout.hpp"
#include "layers/basic/embedding.hpp"
#include "layers/basic/feed_forward.hpp"
#include "layers/basic/layer_norm.hpp"
#include "layers/basic/linear.hpp"
#include "layers/basic/positional_encoding.hpp"
#include "layers/framework/module.hpp"
#include "layers/transformer/decoding.hpp"
#include "layers/transformer/kv_cache.hpp"

namespace ag::nn {

class TransformerEncoderLayer : public Module {
 public:
  TransformerEncoderLayer(int64_t d_model, int64_t heads, int64_t d_ff, real dropout = real(0.1),
                          bool norm_first = true);
  // x: (B,T,d) -> (B,T,d). mask (1 = blocked) and key_padding_mask as
  // MultiHeadAttention's attn_mask and key_padding_mask: (T,T) and (B,T).
  // With a KV cache (generation, layers/transformer/kv_cache.hpp), x holds only the new
  // positions, (B,n,d), after the `past` ones in the cache; mask is then
  // (n, past + n) and key_padding_mask (B, past + n).
  Tensor forward(const Tensor& x, const Tensor& mask = Tensor(),
                 const Tensor& key_padding_mask = Tensor(), AttentionCache* cache = nullptr);
  std::string extra_repr() const override;

  bool norm_first;
  std::shared_ptr<MultiHeadAttention> self_attn;
  // The feed-forward network [F3.3]. Its three parts are registered on the
  // layer itself, under PyTorch's names (linear1, dropout, linear2), so the
  // layer's parameters are named as torch.nn.TransformerEncoderLayer's.
  std::shared_ptr<FeedForward> feed_forward;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout;
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
  // With a KV cache, layer i keeps its keys and values in cache->layer(i).
  Tensor forward(const Tensor& x, const Tensor& mask = Tensor(),
                 const Tensor& key_padding_mask = Tensor(), KVCache* cache = nullptr);
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
  // With a KV cache (causal only), tokens are the positions after the ones the
  // cache holds, and the logits are theirs: what forward on the whole sequence
  // gives at those positions, without recomputing the earlier ones.
  // key_padding_mask (B,T) (or (B,1,T); (B, past + T) with a cache), 1 where a
  // token is padding, as MultiHeadAttention's: no position attends to a padded one.
  Tensor forward(const Tensor& tokens, bool causal = true,
                 const Tensor& key_padding_mask = Tensor(), KVCache* cache = nullptr);

  // Decoding (layers/transformer/decoding.hpp; no graph is recorded). Each appends up to
  // `steps` tokens to prompt (B,T0); T0 + steps must not exceed max_len. In
  // fast mode each step runs only the new token through the model, with a KV
  // cache; in reference mode the whole sequence, every step (core/mode.hpp).
  // Greedy: each token the argmax of the logits at the last position. -> (B, T0 + steps)
  Tensor generate(const Tensor& prompt, int64_t steps);
  // Sampling with temperature and top-k from gen: the same seed, the same tokens.
  Tensor sample(const Tensor& prompt, int64_t steps, const SamplingOptions& options,
                Generator& gen);
  // Beam search: per prompt the best beams, best first, each with its tokens
  // (after the prompt) and log-probability. A beam ends at eos_id (-1: none).
  std::vector<std::vector<Beam>> beam_search(const Tensor& prompt, int64_t steps,
                                             const BeamSearchOptions& options, int64_t eos_id = -1);
  // The decoding state the three above step (a TokenDecoder over the prompt's
  // rows), with or without the KV cache: what the tests and the benchmark
  // compare.
  std::unique_ptr<TokenDecoder> start_decoding(const Tensor& prompt, bool use_cache);
  std::string extra_repr() const override;

  TinyTransformerOptions options;
  std::shared_ptr<Embedding> embedding;
  std::shared_ptr<PositionalEncoding> positional;
  std::shared_ptr<TransformerEncoder> layers;
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> lm_head;
};

}  // namespace ag::nn
