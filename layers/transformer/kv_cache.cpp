// The KV cache: keys and values kept between generation steps, and the
// attention steps that read and extend them.
#include "layers/transformer/kv_cache.hpp"

#include "autograd/ops.hpp"
#include "core/error.hpp"

namespace ag::nn {

void AttentionCache::reorder(const std::vector<int64_t>& rows) {
  if (length() == 0) return;
  keys = index_select(keys, 0, rows);
  values = index_select(values, 0, rows);
}

LayerCache& KVCache::layer(size_t index) {
  if (layers.size() <= index) layers.resize(index + 1);
  return layers[index];
}

int64_t KVCache::length() const { return layers.empty() ? 0 : layers[0].self_attn.length(); }

void KVCache::reorder(const std::vector<int64_t>& rows) {
  for (LayerCache& layer : layers) {
    layer.self_attn.reorder(rows);
    layer.cross_attn.reorder(rows);
  }
}

namespace {

void check_step_input(const char* op, const char* what, const Tensor& x,
                      const MultiHeadAttention& attention, const AttentionCache& cache) {
  AG_CHECK(x.defined() && x.dim() == 3 && x.size(2) == attention.d_model,
           "{}: {} {} must be (batch, new positions, d_model = {})", op, what, describe(x),
           attention.d_model);
  AG_CHECK(cache.length() == 0 || cache.keys.size(0) == x.size(0),
           "{}: {} {} has {} sequences but the cache holds keys {} of {}", op, what, describe(x),
           x.size(0), describe(cache.keys), cache.keys.size(0));
}

// query (B,n,d) as a step's input, and memory (B,S,d) of the same batch.
void check_cross_step(const Tensor& query, const Tensor& memory,
                      const MultiHeadAttention& attention, const AttentionCache& cache) {
  check_step_input("cross_attention_step", "query", query, attention, cache);
  AG_CHECK(memory.defined() && memory.dim() == 3 && memory.size(0) == query.size(0) &&
               memory.size(2) == attention.d_model,
           "cross_attention_step: memory {} must be (batch = {}, source length, d_model = {})",
           describe(memory), query.size(0), attention.d_model);
}

}  // namespace

AttentionOutput self_attention_step(MultiHeadAttention& attention, const Tensor& x,
                                    AttentionCache& cache, const Tensor& attn_mask,
                                    const Tensor& key_padding_mask) {
  check_step_input("self_attention_step", "x", x, attention, cache);
  // [F2.2] only the new positions are projected: q, k, v = x W^T + b          (B,n,d)
  Tensor q = attention.q_proj->forward(x);
  Tensor k = attention.k_proj->forward(x);
  Tensor v = attention.v_proj->forward(x);
  // the keys and values of every position so far: the cached ones, then the new ones
  Tensor keys = cache.length() > 0 ? cat({cache.keys, k}, 1) : k;      // (B,past+n,d)
  Tensor values = cache.length() > 0 ? cat({cache.values, v}, 1) : v;  // (B,past+n,d)
  // [F2.6] the new queries over all keys, per head, as MultiHeadAttention::forward
  AttentionOutput out = attention.attend(q, keys, values, attn_mask, key_padding_mask);
  cache.keys = keys;
  cache.values = values;
  return out;
}

AttentionOutput cross_attention_step(MultiHeadAttention& attention, const Tensor& query,
                                     const Tensor& memory, AttentionCache& cache,
                                     const Tensor& attn_mask, const Tensor& key_padding_mask) {
  check_cross_step(query, memory, attention, cache);
  // [F2.2] the memory's keys and values, projected at the first step only       (B,S,d)
  Tensor keys = cache.length() > 0 ? cache.keys : attention.k_proj->forward(memory);
  Tensor values = cache.length() > 0 ? cache.values : attention.v_proj->forward(memory);
  // [F2.6] the new queries over the memory, per head
  AttentionOutput out =
      attention.attend(attention.q_proj->forward(query), keys, values, attn_mask, key_padding_mask);
  cache.keys = keys;
  cache.values = values;
  return out;
}

}  // namespace ag::nn
