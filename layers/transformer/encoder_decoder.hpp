// nn::Transformer: the encoder-decoder of Vaswani et al. (2017), as
// torch.nn.Transformer (batch_first), the model inside seed 002's
// TransformerModel (section 5.2) [F1.2]:
//
//   src (B,S,d) --N encoder layers, LayerNorm--> memory (B,S,d)
//   tgt (B,T,d) --N decoder layers (each: masked self-attention, cross-attention
//                over the memory, feed-forward), LayerNorm--> (B,T,d)
//
// Its inputs are vectors (embedded tokens): TransformerModel
// (layers/transformer/transformer_model.hpp) adds the embedding and the output Linear. The masks are PyTorch's (1 = blocked):
// src_mask (S,S), tgt_mask (T,T) (the lookahead mask [F4.8]: causal_mask(T)),
// memory_mask (T,S), and the key padding masks src_key_padding_mask (B,S),
// tgt_key_padding_mask (B,T), memory_key_padding_mask (B,S) (usually the source's).
//
// Parameter names are PyTorch's: encoder.layers.0.self_attn..., encoder.norm,
// decoder.layers.0.self_attn..., decoder.layers.0.multihead_attn...,
// decoder.norm, with every attention's in_proj split into q_proj, k_proj,
// v_proj (docs/pytorch.md). As in PyTorch, both halves end in a LayerNorm,
// also when the layers are post-norm.
#pragma once

#include <memory>

#include "layers/basic/layer_norm.hpp"
#include "layers/transformer/transformer.hpp"
#include "layers/transformer/transformer_decoder.hpp"

namespace ag::nn {

// The encoder half as torch.nn.Transformer holds it: the layers (layers.0, ...)
// and a final norm (norm).
class TransformerEncoderStack : public Module {
 public:
  TransformerEncoderStack(int64_t num_layers, int64_t d_model, int64_t heads, int64_t d_ff,
                          real dropout, bool norm_first);
  Tensor forward(const Tensor& src, const Tensor& mask = Tensor(),
                 const Tensor& key_padding_mask = Tensor());
  std::shared_ptr<TransformerEncoder> layers;
  std::shared_ptr<LayerNorm> norm;
};

// The decoder half as torch.nn.Transformer holds it: the layers and a final norm.
class TransformerDecoderStack : public Module {
 public:
  TransformerDecoderStack(int64_t num_layers, int64_t d_model, int64_t heads, int64_t d_ff,
                          real dropout, bool norm_first);
  Tensor forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask = Tensor(),
                 const Tensor& memory_mask = Tensor(),
                 const Tensor& tgt_key_padding_mask = Tensor(),
                 const Tensor& memory_key_padding_mask = Tensor(), KVCache* cache = nullptr);
  std::shared_ptr<TransformerDecoder> layers;
  std::shared_ptr<LayerNorm> norm;
};

class Transformer : public Module {
 public:
  // PyTorch's defaults are d_model 512, 8 heads, 6 + 6 layers, d_ff 2048, dropout
  // 0.1 and post-norm (norm_first = false); pass the sizes, and norm_first = false
  // for PyTorch's order.
  Transformer(int64_t d_model, int64_t heads, int64_t num_encoder_layers,
              int64_t num_decoder_layers, int64_t d_ff, real dropout = real(0.1),
              bool norm_first = true);
  // src (B,S,d), tgt (B,T,d) -> (B,T,d), PyTorch's forward with its masks in its order.
  Tensor forward(const Tensor& src, const Tensor& tgt, const Tensor& src_mask = Tensor(),
                 const Tensor& tgt_mask = Tensor(), const Tensor& memory_mask = Tensor(),
                 const Tensor& src_key_padding_mask = Tensor(),
                 const Tensor& tgt_key_padding_mask = Tensor(),
                 const Tensor& memory_key_padding_mask = Tensor());
  // The two halves: forward = decode(tgt, encode(src)). Decoding runs encode
  // once and decode at every step, with a KV cache in fast mode: tgt then holds
  // the new positions only (masks as TransformerDecoderLayer's).
  Tensor encode(const Tensor& src, const Tensor& src_mask = Tensor(),
                const Tensor& src_key_padding_mask = Tensor());
  Tensor decode(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask = Tensor(),
                const Tensor& memory_mask = Tensor(), const Tensor& tgt_key_padding_mask = Tensor(),
                const Tensor& memory_key_padding_mask = Tensor(), KVCache* cache = nullptr);
  // PyTorch's name for the lookahead mask [F4.8]: causal_mask(length), 1 = blocked.
  static Tensor generate_square_subsequent_mask(int64_t length);
  std::string extra_repr() const override;

  int64_t d_model, heads;
  std::shared_ptr<TransformerEncoderStack> encoder;
  std::shared_ptr<TransformerDecoderStack> decoder;
};

}  // namespace ag::nn
