// nn::Transformer: the encoder and decoder stacks with PyTorch's final norms.
#include "layers/transformer/encoder_decoder.hpp"

#include "core/error.hpp"
#include "layers/attention/scaled_dot_product.hpp"
#include "layers/transformer/transformer_masks.hpp"

namespace ag::nn {

TransformerEncoderStack::TransformerEncoderStack(int64_t num_layers, int64_t d_model, int64_t heads,
                                                 int64_t d_ff, real dropout, bool norm_first)
    : Module("TransformerEncoderStack") {
  layers = register_module("layers", std::make_shared<TransformerEncoder>(
                                         num_layers, d_model, heads, d_ff, dropout, norm_first));
  norm = register_module("norm", std::make_shared<LayerNorm>(d_model));
}

Tensor TransformerEncoderStack::forward(const Tensor& src, const Tensor& mask,
                                        const Tensor& key_padding_mask) {
  return norm->forward(layers->forward(src, mask, key_padding_mask));
}

TransformerDecoderStack::TransformerDecoderStack(int64_t num_layers, int64_t d_model, int64_t heads,
                                                 int64_t d_ff, real dropout, bool norm_first)
    : Module("TransformerDecoderStack") {
  layers = register_module("layers", std::make_shared<TransformerDecoder>(
                                         num_layers, d_model, heads, d_ff, dropout, norm_first));
  norm = register_module("norm", std::make_shared<LayerNorm>(d_model));
}

Tensor TransformerDecoderStack::forward(const Tensor& tgt, const Tensor& memory,
                                        const Tensor& tgt_mask, const Tensor& memory_mask,
                                        const Tensor& tgt_key_padding_mask,
                                        const Tensor& memory_key_padding_mask, KVCache* cache) {
  return norm->forward(layers->forward(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                                       memory_key_padding_mask, cache));
}

Transformer::Transformer(int64_t d_model, int64_t heads, int64_t num_encoder_layers,
                         int64_t num_decoder_layers, int64_t d_ff, real dropout, bool norm_first)
    : Module("Transformer"), d_model(d_model), heads(heads) {
  AG_CHECK(d_model > 0 && heads > 0 && d_model % heads == 0 && d_ff > 0 &&
               num_encoder_layers >= 0 && num_decoder_layers >= 0,
           "Transformer: d_model {} must be a positive multiple of heads {}, d_ff {} positive, "
           "and the layer counts {} and {} >= 0",
           d_model, heads, d_ff, num_encoder_layers, num_decoder_layers);
  encoder = register_module(
      "encoder", std::make_shared<TransformerEncoderStack>(num_encoder_layers, d_model, heads, d_ff,
                                                           dropout, norm_first));
  decoder = register_module(
      "decoder", std::make_shared<TransformerDecoderStack>(num_decoder_layers, d_model, heads, d_ff,
                                                           dropout, norm_first));
}

namespace {

void check_sequence(const char* who, const char* name, const Tensor& x, int64_t d_model) {
  AG_CHECK(x.defined() && x.dim() == 3 && x.size(2) == d_model,
           "{}: {} {} must be (batch, length, d_model = {})", who, name, describe(x), d_model);
}

// src (B,S,d) and tgt (B,T,d) of one batch, and the masks of the encoder's
// self-attention (S over S), the decoder's (T over T) and its cross-attention
// (T over S).
void check_transformer(const Tensor& src, const Tensor& tgt, const Tensor& src_mask,
                       const Tensor& tgt_mask, const Tensor& memory_mask,
                       const Tensor& src_key_padding_mask, const Tensor& tgt_key_padding_mask,
                       const Tensor& memory_key_padding_mask, int64_t d_model, int64_t heads) {
  check_sequence("Transformer", "src", src, d_model);
  check_sequence("Transformer", "tgt", tgt, d_model);
  AG_CHECK(src.size(0) == tgt.size(0), "Transformer: src {} and tgt {} must have the same batch",
           describe(src), describe(tgt));
  const int64_t batch = src.size(0), S = src.size(1), T = tgt.size(1);
  check_attention_masks("Transformer", "src_mask", src_mask, "src_key_padding_mask",
                        src_key_padding_mask, batch, heads, S, S, "S", "S");
  check_attention_masks("Transformer", "tgt_mask", tgt_mask, "tgt_key_padding_mask",
                        tgt_key_padding_mask, batch, heads, T, T, "T", "T");
  check_attention_masks("Transformer", "memory_mask", memory_mask, "memory_key_padding_mask",
                        memory_key_padding_mask, batch, heads, T, S, "T", "S");
}

// tgt (B,T,d) and memory (B,S,d) of one batch.
void check_decode(const Tensor& tgt, const Tensor& memory, int64_t d_model) {
  check_sequence("Transformer::decode", "tgt", tgt, d_model);
  check_sequence("Transformer::decode", "memory", memory, d_model);
  AG_CHECK(memory.size(0) == tgt.size(0),
           "Transformer::decode: memory {} and tgt {} must have the same batch", describe(memory),
           describe(tgt));
}

}  // namespace

Tensor Transformer::forward(const Tensor& src, const Tensor& tgt, const Tensor& src_mask,
                            const Tensor& tgt_mask, const Tensor& memory_mask,
                            const Tensor& src_key_padding_mask, const Tensor& tgt_key_padding_mask,
                            const Tensor& memory_key_padding_mask) {
  check_transformer(src, tgt, src_mask, tgt_mask, memory_mask, src_key_padding_mask,
                    tgt_key_padding_mask, memory_key_padding_mask, d_model, heads);
  // [F1.2] memory = Encoder(x_1..x_S): the encoder layers, then the final norm     (B,S,d)
  Tensor memory = encode(src, src_mask, src_key_padding_mask);
  // [F1.2] y = Decoder(y_<t, memory): the decoder layers, then the final norm       (B,T,d)
  return decode(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask);
}

Tensor Transformer::encode(const Tensor& src, const Tensor& src_mask,
                           const Tensor& src_key_padding_mask) {
  check_sequence("Transformer::encode", "src", src, d_model);
  return encoder->forward(src, src_mask, src_key_padding_mask);
}

Tensor Transformer::decode(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask,
                           const Tensor& memory_mask, const Tensor& tgt_key_padding_mask,
                           const Tensor& memory_key_padding_mask, KVCache* cache) {
  check_decode(tgt, memory, d_model);
  return decoder->forward(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                          memory_key_padding_mask, cache);
}

Tensor Transformer::generate_square_subsequent_mask(int64_t length) { return causal_mask(length); }

std::string Transformer::extra_repr() const {
  return fmt::format("d_model={}, heads={}, num_encoder_layers={}, num_decoder_layers={}", d_model,
                     heads, encoder->layers->layers.size(), decoder->layers->layers.size());
}

}  // namespace ag::nn
