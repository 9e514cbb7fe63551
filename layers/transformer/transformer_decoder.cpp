// The Transformer's decoder layer (self-attention, cross-attention over the
// memory, feed-forward, each with its residual and layer norm) and the stack.
#include "layers/transformer/transformer_decoder.hpp"

#include "autograd/ops.hpp"
#include "core/error.hpp"
#include "layers/transformer/transformer_masks.hpp"

namespace ag::nn {

TransformerDecoderLayer::TransformerDecoderLayer(int64_t d_model, int64_t heads, int64_t d_ff,
                                                 real dropout_p, bool norm_first)
    : Module("TransformerDecoderLayer"), norm_first(norm_first) {
  self_attn = register_module("self_attn", std::make_shared<MultiHeadAttention>(d_model, heads));
  multihead_attn =
      register_module("multihead_attn", std::make_shared<MultiHeadAttention>(d_model, heads));
  // The FeedForward computes FFN(x); its parts are registered here, in PyTorch's
  // order and under its names (the FeedForward itself is not registered).
  feed_forward = std::make_shared<FeedForward>(d_model, d_ff, dropout_p);
  linear1 = register_module("linear1", feed_forward->linear1);
  dropout = register_module("dropout", feed_forward->dropout);
  linear2 = register_module("linear2", feed_forward->linear2);
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(d_model));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(d_model));
  norm3 = register_module("norm3", std::make_shared<LayerNorm>(d_model));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(dropout_p));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(dropout_p));
  dropout3 = register_module("dropout3", std::make_shared<Dropout>(dropout_p));
}

namespace {

// tgt (B,T,d) and memory (B,S,d) for `attention` (the self-attention, whose
// d_model and heads the cross-attention shares), and the masks of both: T
// queries over past + T target keys (the first `past` of them cached), and
// over the S positions of the memory. `layer` names the module the user
// called (the decoder stack checks for its first layer).
void check_decoder_input(const char* layer, const Tensor& tgt, const Tensor& memory,
                         const Tensor& tgt_mask, const Tensor& memory_mask,
                         const Tensor& tgt_key_padding_mask, const Tensor& memory_key_padding_mask,
                         const MultiHeadAttention& attention, int64_t past) {
  const int64_t d = attention.d_model, heads = attention.heads;
  AG_CHECK(tgt.defined() && tgt.dim() == 3 && tgt.size(2) == d,
           "{}: tgt {} must be (batch, target length, d_model = {})", layer, describe(tgt), d);
  AG_CHECK(
      memory.defined() && memory.dim() == 3 && memory.size(0) == tgt.size(0) && memory.size(2) == d,
      "{}: memory {} must be (batch = {}, source length, d_model = {}) for tgt {}", layer,
      describe(memory), tgt.size(0), d, describe(tgt));
  const int64_t batch = tgt.size(0), tq = tgt.size(1), source = memory.size(1);
  check_attention_masks(layer, "tgt_mask", tgt_mask, "tgt_key_padding_mask", tgt_key_padding_mask,
                        batch, heads, tq, past + tq, "T", "T");
  check_attention_masks(layer, "memory_mask", memory_mask, "memory_key_padding_mask",
                        memory_key_padding_mask, batch, heads, tq, source, "T", "S");
}

}  // namespace

Tensor TransformerDecoderLayer::forward(const Tensor& tgt, const Tensor& memory,
                                        const Tensor& tgt_mask, const Tensor& memory_mask,
                                        const Tensor& tgt_key_padding_mask,
                                        const Tensor& memory_key_padding_mask, LayerCache* cache) {
  check_decoder_input("TransformerDecoderLayer", tgt, memory, tgt_mask, memory_mask,
                      tgt_key_padding_mask, memory_key_padding_mask, *self_attn,
                      cache ? cache->self_attn.length() : 0);
  auto self_attend = [&](const Tensor& x) {
    AttentionOutput attended;
    if (cache) {
      // Generation's fast path: x holds the new positions only; the keys and
      // values of the earlier ones come from the cache.
      attended =
          self_attention_step(*self_attn, x, cache->self_attn, tgt_mask, tgt_key_padding_mask);
    } else {
      // [F2.6] masked multi-head self-attention of the target        (B,T,d) -> (B,T,d)
      attended = self_attn->forward(x, x, x, tgt_mask, tgt_key_padding_mask);
    }
    self_attention_weights = attended.weights;
    return dropout1->forward(attended.context);
  };
  auto cross_attend = [&](const Tensor& x) {
    AttentionOutput attended;
    if (cache) {
      // Generation's fast path: the memory's keys and values, projected at the first step.
      attended = cross_attention_step(*multihead_attn, x, memory, cache->cross_attn, memory_mask,
                                      memory_key_padding_mask);
    } else {
      // [F1.1] [F2.6] queries from the target, keys and values from the memory:
      // softmax(Q K^T / sqrt(d_h)) V per head                 (B,T,d) over (B,S,d) -> (B,T,d)
      attended = multihead_attn->forward(x, memory, memory, memory_mask, memory_key_padding_mask);
    }
    cross_attention_weights = attended.weights;
    return dropout2->forward(attended.context);
  };

  if (norm_first) {
    // [F3.6] x = x + Dropout(SelfAttn(LN_1(x)))                      (B,T,d)
    Tensor x = tgt + self_attend(norm1->forward(tgt));
    // [F3.6] x = x + Dropout(CrossAttn(LN_2(x), memory))             (B,T,d)
    x = x + cross_attend(norm2->forward(x));
    // [F3.3] [F3.6] x = x + Dropout(FFN(LN_3(x)))                    (B,T,d)
    return x + dropout3->forward(feed_forward->forward(norm3->forward(x)));
  }
  // [F3.6] x = LN_1(x + Dropout(SelfAttn(x)))                        (B,T,d)
  Tensor x = norm1->forward(tgt + self_attend(tgt));
  // [F3.6] x = LN_2(x + Dropout(CrossAttn(x, memory)))               (B,T,d)
  x = norm2->forward(x + cross_attend(x));
  // [F3.3] [F3.6] x = LN_3(x + Dropout(FFN(x)))                      (B,T,d)
  return norm3->forward(x + dropout3->forward(feed_forward->forward(x)));
}

std::string TransformerDecoderLayer::extra_repr() const {
  return fmt::format("norm_first={}", norm_first);
}

TransformerDecoder::TransformerDecoder(int64_t num_layers, int64_t d_model, int64_t heads,
                                       int64_t d_ff, real dropout, bool norm_first)
    : Module("TransformerDecoder") {
  AG_CHECK(num_layers >= 0, "TransformerDecoder: num_layers must be >= 0, got {}", num_layers);
  for (int64_t i = 0; i < num_layers; ++i)
    layers.push_back(register_module(
        std::to_string(i),
        std::make_shared<TransformerDecoderLayer>(d_model, heads, d_ff, dropout, norm_first)));
}

Tensor TransformerDecoder::forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask,
                                   const Tensor& memory_mask, const Tensor& tgt_key_padding_mask,
                                   const Tensor& memory_key_padding_mask, KVCache* cache) {
  if (!layers.empty())  // the inputs and masks the first layer will check, named here
    check_decoder_input("TransformerDecoder", tgt, memory, tgt_mask, memory_mask,
                        tgt_key_padding_mask, memory_key_padding_mask, *layers[0]->self_attn,
                        cache ? cache->length() : 0);
  // [F3.3] the layers stacked: each one's output is the next one's target; all read the memory
  Tensor h = tgt;
  for (size_t i = 0; i < layers.size(); ++i)
    h = layers[i]->forward(h, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                           memory_key_padding_mask, cache ? &cache->layer(i) : nullptr);
  return h;
}

}  // namespace ag::nn
