// Attention scores for an encoder-decoder: one query (the decoder state s_t)
// against the encoder states h_1..h_S, as in seeds 001 and 004.
//
//   query s (B,Hq), keys h (B,S,Hk)
//   e_t(j)   = score(s_t, h_j)                          (B,S)   one of the three below
//   a_t(j)   = exp(e_t(j)) / sum_k exp(e_t(k))          (B,S)   [F4.6] one softmax, not two
//   c_t      = sum_j a_t(j) h_j                         (B,Hk)  [F4.7] the context
//
// The scores (each a module; its formula is above its score()):
//   DotScore       e = s^T h_j                          [F1.4]  Luong's "dot"; Hq = Hk
//   GeneralScore   e = (W_q s)^T (W_k h_j)              [F4.2] [F4.4] [F4.5] Luong's "general"
//   AdditiveScore  e = v^T tanh(W_q s + W_k h_j)        [F1.5]  Bahdanau's
//
// A mask (1 = blocked) of shape (B,S) or (B,1,S), e.g. padding_mask(lengths, S)
// [F4.8] or local_window_mask [F4.7], gives blocked positions weight exactly 0.
// A row whose every position is blocked gets all-zero weights and a zero
// context (the engine's softmax over a row of -inf is zeros), never NaN.
#pragma once

#include <vector>

#include "layers/attention/attention_output.hpp"
#include "layers/basic/linear.hpp"

namespace ag::nn {

class AttentionScore : public Module {
 public:
  using Module::Module;
  // What the query is compared with: W_k h_j for the general and additive
  // scores, h_j itself for dot. Depends on the encoder states only, so a
  // decoder computes it once per source sequence, not once per step.
  //   keys (B,S,Hk) -> (B,S,A)
  virtual Tensor project_keys(const Tensor& keys) { return keys; }
  // e_t(j) for every j: query (B,Hq), projected keys (B,S,A) -> (B,S)
  virtual Tensor score(const Tensor& query, const Tensor& projected_keys) = 0;

  // Score, mask, softmax over S and context, with the keys projected here.
  AttentionOutput forward(const Tensor& query, const Tensor& keys, const Tensor& mask = Tensor());
  // The same with keys already projected (projected_keys = project_keys(keys)).
  // Returns context (B,Hk), weights (B,S).
  AttentionOutput attend(const Tensor& query, const Tensor& keys, const Tensor& projected_keys,
                         const Tensor& mask = Tensor());
  // [F1.7] hard attention: all the weight on the best-scoring position (see
  // hard_attention below). For inference only.
  AttentionOutput attend_hard(const Tensor& query, const Tensor& keys, const Tensor& projected_keys,
                              const Tensor& mask = Tensor());
};

// [F1.4] e_t(j) = s_t^T h_j: no parameters; query and keys of the same size.
class DotScore : public AttentionScore {
 public:
  DotScore() : AttentionScore("DotScore") {}
  Tensor score(const Tensor& query, const Tensor& projected_keys) override;
};

// What the general and additive scores share: the query and the keys each
// projected to A features, W_q s_t and W_k h_j, by submodules query_layer
// Linear(Hq,A) and key_layer Linear(Hk,A), no biases (the names of seed 004's
// Attention class). The keys are projected once per source sequence.
class ProjectedScore : public AttentionScore {
 public:
  // keys (B,S,Hk) -> W_k h_j (B,S,A)
  Tensor project_keys(const Tensor& keys) override;
  std::string extra_repr() const override;

  int64_t query_size, key_size, attention_size;
  std::shared_ptr<Linear> query_layer, key_layer;

 protected:
  ProjectedScore(const std::string& name, int64_t query_size, int64_t key_size,
                 int64_t attention_size);
};

// [F4.2] q = W_hq s_t, [F4.4] k_j = W_k h_j, [F4.5] e_t(j) = q^T k_j.
class GeneralScore : public ProjectedScore {
 public:
  GeneralScore(int64_t query_size, int64_t key_size, int64_t attention_size);
  Tensor score(const Tensor& query, const Tensor& projected_keys) override;
};

// [F1.5] e_t(j) = v^T tanh(W_q s_t + W_k h_j) (Bahdanau et al. 2015). Besides
// query_layer and key_layer, a submodule weight_layer Linear(A,1), no bias:
// the vector v.
class AdditiveScore : public ProjectedScore {
 public:
  AdditiveScore(int64_t query_size, int64_t key_size, int64_t attention_size);
  Tensor score(const Tensor& query, const Tensor& projected_keys) override;

  std::shared_ptr<Linear> weight_layer;
};

// --- the steps after the score, as functions ------------------------------------------

// [F4.6] a_t(j) = exp(e_t(j)) / sum_k exp(e_t(k)): scores (B,S), optional mask
// (B,S) or (B,1,S) -> weights (B,S). Blocked positions get exactly 0.
Tensor attention_weights(const Tensor& scores, const Tensor& mask = Tensor());
// The seed's formula [F4.6], softmax(exp(e_j) / sum_k exp(e_k)): a softmax of
// a softmax. Here only to show what it does (docs/errata.md): its weights lie
// within [1/(1 + (S-1)e), e/(e + S-1)], so they are pushed toward uniform.
Tensor double_softmax(const Tensor& scores, const Tensor& mask = Tensor());
// [F4.7] c_t = sum_j a_t(j) h_j: weights (B,S), values (B,S,H) -> (B,H)
Tensor weighted_context(const Tensor& weights, const Tensor& values);
// [F1.7] hard attention: weights one-hot at argmax_j e_t(j) (ties: the first;
// blocked positions never win), context = the value there. Its gradient with
// respect to the scores is zero almost everywhere (a small change of a score
// does not move the argmax), so backprop cannot train the score: none is
// recorded for it. Gradients still reach the values. A fully blocked row gets
// zero weights and a zero context; a row with a NaN score (not blocked) gets
// NaN weights and a NaN context.
AttentionOutput hard_attention(const Tensor& scores, const Tensor& values,
                               const Tensor& mask = Tensor());
// [F4.7] local attention: (B,1,S), 1 (blocked) at positions j with
// |j - centers[b]| > half_width, so only a window of 2*half_width + 1 states
// around each center can be attended to. Combine with a padding mask by
// combine_masks.
Tensor local_window_mask(const std::vector<int64_t>& centers, int64_t half_width, int64_t length);

}  // namespace ag::nn
