#include "layers/sequence_attention.hpp"

#include "autograd/ops.hpp"
#include "core/error.hpp"
#include "layers/attention_scores.hpp"
#include "layers/scaled_dot_product.hpp"

namespace ag::nn {

SequenceAttention::SequenceAttention(int64_t input_size, int64_t hidden_size)
    : Module("SequenceAttention"), input_size(input_size), hidden_size(hidden_size) {
  rnn = register_module("rnn", std::make_shared<RNN>(input_size, hidden_size));
  linear = register_module("linear", std::make_shared<Linear>(hidden_size, 1));
}

SequenceAttentionOutput SequenceAttention::forward(const Tensor& x,
                                                   const std::vector<int64_t>& lengths) {
  check_defined(x, "SequenceAttention");
  AG_CHECK(x.dim() == 3 && x.size(2) == input_size,
           "SequenceAttention: input {} must be (batch, time, input_size = {})", describe(x),
           input_size);
  check_lengths(lengths, x, "SequenceAttention");
  // [F0.5] h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)      (B,T,D) -> (B,T,H)
  const Tensor h = rnn->forward(x, lengths).output;
  // [F0.6] e_i = W_e h_i + b_e, one score per state     (B,T,H) -> (B,T)
  const Tensor e = squeeze(linear->forward(h), 2);
  const Tensor mask = lengths.empty() ? Tensor() : padding_mask(lengths, x.size(1));
  // [F0.6] a_i = exp(e_i) / sum_j exp(e_j) over the time steps, padding excluded
  const Tensor a = attention_weights(e, mask);
  // [F0.6] c = sum_i a_i h_i                            (B,T), (B,T,H) -> (B,H)
  const Tensor context = weighted_context(a, h);
  // [F0.7] h_t = h_t + sum_i a_i h_i                    (B,T,H) + (B,1,H)
  Tensor output = h + unsqueeze(context, 1);
  if (!lengths.empty()) output = masked_fill(output, transpose(mask, 1, 2), 0);
  return {output, context, a, h};
}

}  // namespace ag::nn
