// Encoder-decoder with attention, seeds 001 (section 4.1) and 004 (sections
// 3.1-3.3) [F1.2] [F1.9] [F4.1] [F4.9], with a choice of score
// (layers/attention/attention_scores.hpp).
//
//   encoder   h_1..h_S = RNN or LSTM over embed(x_1..x_S)                 [F1.2] [F4.1]
//   decoder   for t = 1..T (Luong et al. 2015, with input feeding):
//     input     u_t = [embed(y_{t-1}); c_{t-1}]          (B,E+K)         [F1.9]
//     state     s_t = cell(u_t, s_{t-1})                 s_0 = the encoder's last state
//     (K = H, the size of an encoder state; 2H from a bidirectional encoder, below)
//     attention a_t = softmax_j score(s_t, h_j), c_t = sum_j a_t(j) h_j  [F4.2]-[F4.7]
//     output    p(y_t) = softmax(W_out [s_t; c_t] + b_out)               [F4.9]
//
// Without attention (score None) c_t is the encoder's last state h_S for
// every t: the whole source squeezed into one vector (Cho et al. 2014), the
// bottleneck attention was invented to remove.
//
// Training uses teacher forcing: y_{t-1} is the true previous token
// (forward). Inference decodes greedily: y_{t-1} is the model's own previous
// argmax, until the end token (greedy_decode).
//
// Seed 004 also defines the query as q = sum_k W_hk a_k over a context window
// [F4.3], a second definition of the same vector that it never uses; not
// adopted here (docs/errata.md says why). The query is F4.2's q = W_hq s_t.
//
// Batches of sources of different lengths are padded at the end; lengths tell
// the encoder where each one ends and the padding mask [F4.8] gives the
// padding zero attention.
//
// Stacked layers (num_layers = L; seed 004 stacks L = 2 with StackedRNNCells):
// the encoder is an RNN or LSTM of L layers, and so is the decoder, run one
// step at a time. With one layer the decoder is an RNNCell or LSTMCell
// (decoder.weight_ih, ...); with L > 1 an RNN or LSTM of L layers fed one step
// (decoder.weight_ih_l0, decoder.weight_ih_l1, ...), as PyTorch's stacked
// decoders step an nn.LSTM. Decoder layer l starts from encoder layer l's last
// state; the top layer's state is s_t, the query and the output's input.
// `dropout` is PyTorch's: on what each layer passes to the one above, in
// encoder and decoder, in training only (seed 004 drops the encoder's outputs
// and the decoder's output probabilities instead).
//
// A bidirectional encoder (Bahdanau et al. 2015, section 3.2 and appendix
// A.2) reads the source both ways, so each annotation knows what comes before
// and after it. With K = 2H:
//   keys      h_j = [->h_j; <-h_j]                  (B,S,2H): the encoder's output;
//             the scores compare s_t (H) with keys of 2H (general and additive
//             scores; the dot score needs equal sizes and is refused), and the
//             context c_t is 2H, so the decoder reads E + 2H and the output H + 2H
//   s_0       tanh(W_s <-h_1 + b_s)                 layer by layer, with one
//             Linear(H, H) `decoder_init`: the backward direction's state at the
//             first source token, the one that has read the whole source
//             (Bahdanau's s_0 = tanh(W_s <-h_1)). An LSTM decoder's c_0 is the
//             same direction's cell state, as it is the encoder's in the
//             one-way case (Bahdanau's GRU has no cell state)
//   no score  c_t = [->h_S; <-h_1] of the top layer, both directions' last states
#pragma once

#include <memory>
#include <vector>

#include "layers/attention/attention_scores.hpp"
#include "layers/basic/embedding.hpp"
#include "layers/recurrent/lstm.hpp"
#include "layers/transformer/decoding.hpp"

namespace ag::nn {

enum class CellType { RNN, LSTM };
enum class ScoreType { None, Dot, General, Additive };
const char* to_string(CellType cell);
const char* to_string(ScoreType score);

struct Seq2SeqOptions {
  int64_t source_vocab = 0, target_vocab = 0;
  int64_t embedding_dim = 16, hidden_size = 64;
  int64_t attention_size = 64;  // A of the general and additive scores
  CellType cell = CellType::LSTM;
  ScoreType score = ScoreType::Additive;
  int64_t pad_id = 0, bos_id = 1, eos_id = 2;
  // [F1.9] feed c_{t-1} into the decoder's input; false feeds zeros in its
  // place (the input size stays E+K): an ablation, to measure what the fed-back
  // context carries (chapter 04 decodes a trained model both ways).
  bool input_feeding = true;
  // Layers of the encoder and of the decoder; dropout between them (training only).
  int64_t num_layers = 1;
  real dropout = 0;
  // Bahdanau's encoder: keys [->h_j; <-h_j] (K = 2H), s_0 = tanh(W_s <-h_1 + b_s).
  bool bidirectional = false;
};

struct Seq2SeqOutput {
  Tensor logits;     // (B,T,V_target): the scores of y_t given y_<t and x
  Tensor attention;  // (B,T,S): a_t(j), undefined without attention
};

struct GreedyDecoding {
  // Per sequence the tokens produced before the end token (or max_length).
  std::vector<std::vector<int64_t>> tokens;
  Tensor attention;  // (B,T,S), T = steps run; undefined without attention
};

class Seq2Seq : public Module {
 public:
  explicit Seq2Seq(const Seq2SeqOptions& options);

  // Teacher forcing. source (B,S) token ids padded with pad_id, lengths the
  // true length of each source (empty = all S), target_in (B,T) the targets
  // shifted right: bos_id, y_1, ..., y_{T-1}.
  Seq2SeqOutput forward(const Tensor& source, const std::vector<int64_t>& source_lengths,
                        const Tensor& target_in);
  // Greedy decoding for inference (no graph is recorded): starts from
  // bos_id, feeds back the argmax, stops at eos_id or after max_length steps.
  GreedyDecoding greedy_decode(const Tensor& source, const std::vector<int64_t>& source_lengths,
                               int64_t max_length);
  // Sampling with temperature and top-k from gen (the same seed, the same tokens)
  // and beam search (per source its best beams, best first), layers/transformer/decoding.hpp;
  // both stop a sequence at eos_id, after at most max_length tokens.
  std::vector<std::vector<int64_t>> sample(const Tensor& source,
                                           const std::vector<int64_t>& source_lengths,
                                           int64_t max_length, const SamplingOptions& options,
                                           Generator& gen);
  std::vector<std::vector<Beam>> beam_search(const Tensor& source,
                                             const std::vector<int64_t>& source_lengths,
                                             int64_t max_length, const BeamSearchOptions& options);
  // The decoding state the two above step: the encoded sources, one row each,
  // each starting from bos_id (the decoder's state is its cache: one step reads
  // one token).
  std::unique_ptr<TokenDecoder> start_decoding(const Tensor& source,
                                               const std::vector<int64_t>& source_lengths);
  std::string extra_repr() const override;

  Seq2SeqOptions options;
  std::shared_ptr<Embedding> encoder_embedding, decoder_embedding;
  std::shared_ptr<RNN> encoder_rnn;  // one of the two encoders, by options.cell
  std::shared_ptr<LSTM> encoder_lstm;
  std::shared_ptr<RNNCell> decoder_rnn;  // one of the two decoder cells (one layer)
  std::shared_ptr<LSTMCell> decoder_lstm;
  std::shared_ptr<RNN> decoder_rnn_layers;  // or of the two stacked decoders (L > 1)
  std::shared_ptr<LSTM> decoder_lstm_layers;
  std::shared_ptr<Linear> decoder_init;       // W_s, b_s (H,H): bidirectional only
  std::shared_ptr<AttentionScore> attention;  // undefined for ScoreType::None
  std::shared_ptr<Linear> output;             // [s_t; c_t] (H+K) -> V_target
  // K: the size of a key and of the context, dirs * H
  int64_t key_size() const;

 private:
  struct Encoded {
    Tensor states;          // h_1..h_S (B,S,K), the keys
    Tensor projected_keys;  // project_keys(states) (B,S,A)
    Tensor mask;            // (B,1,S) padding mask, 1 = blocked
    RecurrentState start;   // the decoder's s_0: (B,H) each, (L,B,H) for L > 1
    Tensor summary;         // the top layer's last states (B,K): the context without attention
  };
  struct Step {
    Tensor readout;  // [s_t; c_t] (B,H+K): what the output layer maps to the logits
    Tensor weights;  // (B,S) or undefined
  };
  class Decoding;  // layers/recurrent/seq2seq_decoding.cpp
  // The source (B,S) of token ids and its lengths, checked at each entry
  // (forward, greedy_decode, sample, beam_search, start_decoding), naming `who`.
  void check_source(const char* who, const Tensor& source,
                    const std::vector<int64_t>& lengths) const;
  // The source, its lengths and target_in, checked at forward's entry.
  void check_teacher_forcing(const Tensor& source, const std::vector<int64_t>& lengths,
                             const Tensor& target_in) const;
  // The source's states and the decoder's start; the entries have checked the source.
  Encoded encode(const Tensor& source, const std::vector<int64_t>& lengths);
  // One decoder step: updates state and context in place.
  Step decode_step(const Encoded& encoded, const Tensor& embedded, RecurrentState& state,
                   Tensor& context);
  // The scores of y_t from readouts [s_t; c_t]: (..., H+K) -> (..., V)
  Tensor logits_of(const Tensor& readout);
};

}  // namespace ag::nn
