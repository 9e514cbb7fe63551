// The KV cache: what a Transformer keeps between the steps of generation.
//
// A model that generates appends one token at a time and needs, at each step,
// the logits after the last position. Without a cache, every step runs the
// whole sequence through the model again, and step t recomputes t positions
// whose outputs cannot have changed: under the causal mask [F4.8] a position
// never reads a later one. With a cache, every self-attention keeps the keys
// K = X W_K^T + b_K and values V = X W_V^T + b_V [F2.2] of the positions it has
// seen; a step projects only the new position, appends its key and value, and
// attends with its one query over all of them:
//
//   step:  x (B,1,d) -> q, k, v (B,1,d)      K = [K_cache; k], V = [V_cache; v]  (B,t+1,d)
//          softmax(q K^T / sqrt(d_h)) V per head                                 (B,1,d)
//
// A decoder's cross-attention reads the encoder's memory, which does not
// change while the target grows: its keys and values are projected once, at
// the first step. The position-wise parts of a layer (layer norms, the
// feed-forward network, residuals) need nothing cached.
//
// A cache is a fast path of generation: the models' decoding (layers/transformer/decoding.hpp)
// uses it in fast mode and recomputes the whole sequence in reference mode
// (core/mode.hpp), and the tests check that both give the same logits.
#pragma once

#include <vector>

#include "layers/attention/multi_head_attention.hpp"

namespace ag::nn {

// The projected keys and values one attention has seen, batch rows first.
struct AttentionCache {
  Tensor keys;    // (B,T,d): K of positions 0..T-1; undefined before the first step
  Tensor values;  // (B,T,d): V of the same positions
  int64_t length() const { return keys.defined() ? keys.size(1) : 0; }
  // Row i becomes old row rows[i] (beam search keeps, repeats and drops hypotheses).
  void reorder(const std::vector<int64_t>& rows);
};

// What one Transformer layer keeps.
struct LayerCache {
  AttentionCache self_attn;   // grows by the new positions at every step
  AttentionCache cross_attn;  // a decoder layer's: the memory's keys and values, kept as they are
};

// One LayerCache per layer of a model, made as the layers ask for them.
struct KVCache {
  std::vector<LayerCache> layers;
  LayerCache& layer(size_t index);
  // The number of positions the model has seen (those in the first layer's self-attention).
  int64_t length() const;
  void reorder(const std::vector<int64_t>& rows);
};

// Self-attention of new positions x (B,n,d) that follow the cached ones: projects
// only x, attends with its n queries over the cached keys and values and its own,
// then appends its keys and values to the cache. attn_mask is for the n new
// queries over all past + n keys: (n, past + n) (rows past.. of causal_mask(past + n));
// key_padding_mask (B, past + n). The cache changes only when the call succeeds.
AttentionOutput self_attention_step(MultiHeadAttention& attention, const Tensor& x,
                                    AttentionCache& cache, const Tensor& attn_mask = Tensor(),
                                    const Tensor& key_padding_mask = Tensor());

// Cross-attention of query (B,n,d) over memory (B,S,d): the memory's keys and
// values are projected at the first call and kept; later calls read them from the
// cache (memory then only tells the batch size). Masks as MultiHeadAttention's,
// for n queries over S keys.
AttentionOutput cross_attention_step(MultiHeadAttention& attention, const Tensor& query,
                                     const Tensor& memory, AttentionCache& cache,
                                     const Tensor& attn_mask = Tensor(),
                                     const Tensor& key_padding_mask = Tensor());

}  // namespace ag::nn
