// The Transformer's decoder layer, as torch.nn.TransformerDecoderLayer (ReLU,
// batch_first): the encoder layer's two blocks with a third between them,
// cross-attention, through which the target reads the source.
//
//   tgt (B,T,d): the target so far      memory (B,S,d): the encoder's output
//
//   self-attention   queries, keys, values from the target; the lookahead mask
//                    [F4.8] keeps position t from reading t+1.. (tgt_mask)
//   cross-attention  queries from the target, keys and values from the memory
//                    [F1.1] [F2.6]: every target position may read every source
//                    position (but padding: memory_key_padding_mask)
//   feed-forward     FFN(x) = W_2 ReLU(W_1 x + b_1) + b_2, per position [F3.3]
//
// each in a residual connection with a layer norm [F3.6], in one of the two orders:
//
//   norm_first = true  (pre-norm, the default here)
//     x = x + Dropout(SelfAttn(LN_1(x), tgt_mask))
//     x = x + Dropout(CrossAttn(LN_2(x), memory, memory_mask))
//     x = x + Dropout(FFN(LN_3(x)))
//   norm_first = false (post-norm, Vaswani et al. 2017; PyTorch's default)
//     x = LN_1(x + Dropout(SelfAttn(x, tgt_mask)))
//     x = LN_2(x + Dropout(CrossAttn(x, memory, memory_mask)))
//     x = LN_3(x + Dropout(FFN(x)))
//
// Names as PyTorch's: self_attn, multihead_attn (the cross-attention), linear1,
// dropout, linear2, norm1..norm3, dropout1..dropout3; the attentions' in_proj
// split into q_proj, k_proj, v_proj (docs/pytorch.md).
#pragma once

#include <memory>
#include <vector>

#include "layers/attention/multi_head_attention.hpp"
#include "layers/basic/dropout.hpp"
#include "layers/basic/feed_forward.hpp"
#include "layers/basic/layer_norm.hpp"
#include "layers/framework/module.hpp"
#include "layers/transformer/kv_cache.hpp"

namespace ag::nn {

class TransformerDecoderLayer : public Module {
 public:
  TransformerDecoderLayer(int64_t d_model, int64_t heads, int64_t d_ff, real dropout = real(0.1),
                          bool norm_first = true);
  // tgt (B,T,d), memory (B,S,d) -> (B,T,d). The masks (1 = blocked), PyTorch's:
  //   tgt_mask                 (T,T): which target positions each one reads; causal_mask(T)
  //   memory_mask              (T,S): which source positions each target position reads
  //   tgt_key_padding_mask     (B,T): padding of the target
  //   memory_key_padding_mask  (B,S): padding of the source
  // (each attention mask may also be (B,T,.) or (B,h,T,.), as MultiHeadAttention's).
  // With a KV cache (generation, layers/transformer/kv_cache.hpp) tgt holds only the new
  // positions, (B,n,d), after the `past` cached ones: tgt_mask is then
  // (n, past + n), tgt_key_padding_mask (B, past + n), memory_mask (n,S).
  Tensor forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask = Tensor(),
                 const Tensor& memory_mask = Tensor(),
                 const Tensor& tgt_key_padding_mask = Tensor(),
                 const Tensor& memory_key_padding_mask = Tensor(), LayerCache* cache = nullptr);
  std::string extra_repr() const override;

  bool norm_first;
  std::shared_ptr<MultiHeadAttention> self_attn;       // the target over itself
  std::shared_ptr<MultiHeadAttention> multihead_attn;  // the target over the memory
  // FFN(x) [F3.3]: computed by feed_forward, whose parts are registered on the
  // layer under PyTorch's names (as TransformerEncoderLayer's).
  std::shared_ptr<FeedForward> feed_forward;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout;
  std::shared_ptr<LayerNorm> norm1, norm2, norm3;
  std::shared_ptr<Dropout> dropout1, dropout2, dropout3;
  // The per-head weights of the last forward, to look at:
  Tensor self_attention_weights;   // (B,h,T,T)
  Tensor cross_attention_weights;  // (B,h,T,S): which source position each target position reads
};

// A stack of decoder layers named "0", "1", ... (as attograd's TransformerEncoder;
// PyTorch's nn.TransformerDecoder names them layers.0, ... and may add a final
// norm: nn::Transformer has both). Each layer reads the same memory.
class TransformerDecoder : public Module {
 public:
  TransformerDecoder(int64_t num_layers, int64_t d_model, int64_t heads, int64_t d_ff,
                     real dropout = real(0.1), bool norm_first = true);
  // As the layer's forward; with a KV cache, layer i keeps its own in cache->layer(i).
  Tensor forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask = Tensor(),
                 const Tensor& memory_mask = Tensor(),
                 const Tensor& tgt_key_padding_mask = Tensor(),
                 const Tensor& memory_key_padding_mask = Tensor(), KVCache* cache = nullptr);
  std::vector<std::shared_ptr<TransformerDecoderLayer>> layers;
};

}  // namespace ag::nn
