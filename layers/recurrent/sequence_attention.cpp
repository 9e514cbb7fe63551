#include "layers/recurrent/sequence_attention.hpp"

#include "autograd/ops.hpp"
#include "core/error.hpp"
#include "layers/attention/attention_scores.hpp"
#include "layers/attention/scaled_dot_product.hpp"

namespace ag::nn {

const char* encoder_name(SequenceEncoder encoder) {
  switch (encoder) {
    case SequenceEncoder::RNN:
      return "RNN";
    case SequenceEncoder::LSTM:
      return "LSTM";
    case SequenceEncoder::Conv1d:
      return "Conv1d";
  }
  return "?";
}

SequenceAttention::SequenceAttention(int64_t input_size, int64_t hidden_size,
                                     SequenceEncoder encoder, int64_t kernel_size)
    : Module("SequenceAttention"),
      input_size(input_size),
      hidden_size(hidden_size),
      encoder(encoder),
      kernel_size(kernel_size) {
  switch (encoder) {
    case SequenceEncoder::RNN:
      rnn = register_module("rnn", std::make_shared<RNN>(input_size, hidden_size));
      break;
    case SequenceEncoder::LSTM:
      lstm = register_module("lstm", std::make_shared<LSTM>(input_size, hidden_size));
      break;
    case SequenceEncoder::Conv1d:
      AG_CHECK(kernel_size >= 1 && kernel_size % 2 == 1,
               "SequenceAttention: kernel_size {} must be odd and positive, so that padding "
               "(kernel_size - 1) / 2 gives one state per step",
               kernel_size);
      conv = register_module("conv", std::make_shared<Conv1d>(input_size, hidden_size, kernel_size,
                                                              1, (kernel_size - 1) / 2));
      break;
  }
  linear = register_module("linear", std::make_shared<Linear>(hidden_size, 1));
}

namespace {

// x (B,T,input_size), and one length in 1..T per sequence (or none).
void check_sequences(const Tensor& x, const std::vector<int64_t>& lengths, int64_t input_size) {
  check_defined(x, "SequenceAttention");
  AG_CHECK(x.dim() == 3 && x.size(2) == input_size,
           "SequenceAttention: input {} must be (batch, time, input_size = {})", describe(x),
           input_size);
  check_lengths(lengths, x, "SequenceAttention");
}

}  // namespace

Tensor SequenceAttention::encode(const Tensor& x, const std::vector<int64_t>& lengths) {
  check_sequences(x, lengths, input_size);
  switch (encoder) {
    case SequenceEncoder::RNN:
      // [F0.5] h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)      (B,T,D) -> (B,T,H)
      return rnn->forward(x, lengths).output;
    case SequenceEncoder::LSTM:
      // h_t = o_t * tanh(c_t), the LSTM's gates (layers/recurrent/lstm.hpp)   (B,T,D) -> (B,T,H)
      return lstm->forward(x, lengths).output;
    case SequenceEncoder::Conv1d: {
      // steps past a sequence's length read as zeros, like the convolution's padding
      const Tensor steps =
          lengths.empty() ? x
                          : masked_fill(x, transpose(padding_mask(lengths, x.size(1)), 1, 2), 0);
      // h_t = tanh(b + sum_k W_k x_{t+k-(K-1)/2}): time moves to the last dim for the
      // convolution and back          (B,T,D) -> (B,D,T) -> (B,H,T) -> (B,T,H)
      return transpose(tanh(conv->forward(transpose(steps, 1, 2))), 1, 2);
    }
  }
  return Tensor();
}

std::string SequenceAttention::extra_repr() const {
  std::string repr = fmt::format("input_size={}, hidden_size={}, encoder={}", input_size,
                                 hidden_size, encoder_name(encoder));
  if (encoder == SequenceEncoder::Conv1d) repr += fmt::format(", kernel_size={}", kernel_size);
  return repr;
}

SequenceAttentionOutput SequenceAttention::forward(const Tensor& x,
                                                   const std::vector<int64_t>& lengths) {
  // Step 1 (RNN: [F0.5]): the encoder's states h_t       (B,T,D) -> (B,T,H)
  const Tensor h = encode(x, lengths);
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
