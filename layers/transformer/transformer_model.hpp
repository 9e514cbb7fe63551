// Seed 002's TransformerModel [F2.8] (section 5.2): tokens in, an embedding,
// nn.Transformer, a Linear to the vocabulary:
//
//   class TransformerModel(nn.Module):            # the seed
//       def __init__(self, vocab_size, d_model, nhead, num_layers):
//           self.embedding = nn.Embedding(vocab_size, d_model)
//           self.transformer = nn.Transformer(d_model, nhead, num_layers)
//           self.fc = nn.Linear(d_model, vocab_size)
//       def forward(self, src, tgt):
//           return self.fc(self.transformer(self.embedding(src), self.embedding(tgt)))
//
// The same names here (embedding, shared by source and target as in the seed;
// transformer; fc), with what the seed leaves out and a working model needs:
//   - positional encodings [F3.1] (buffer positional.pe): without them the
//     Transformer sees a bag of tokens and cannot tell 1 2 3 from 3 2 1;
//   - the masks [F4.8]: the lookahead mask on the target, so that position t
//     cannot read the token it must predict, and the padding of both sides;
//   - decoding: the seed's test calls model(src) with no target at all; a
//     translation is generated token by token from a start token.
//
//   source (B,S) --embedding + PE--> nn::Transformer encoder --> memory (B,S,d)
//   target_in (B,T) = bos y_1 .. y_{T-1} --embedding + PE--> decoder over memory
//   --fc--> logits (B,T,vocab): position t scores y_t
#pragma once

#include <memory>
#include <vector>

#include "layers/basic/embedding.hpp"
#include "layers/basic/linear.hpp"
#include "layers/basic/positional_encoding.hpp"
#include "layers/recurrent/seq2seq.hpp"
#include "layers/transformer/decoding.hpp"
#include "layers/transformer/encoder_decoder.hpp"

namespace ag::nn {

struct TransformerModelOptions {
  int64_t vocab_size = 16;  // one vocabulary for source and target, as the seed's
  int64_t d_model = 32;
  int64_t heads = 4;
  int64_t num_encoder_layers = 2;
  int64_t num_decoder_layers = 2;
  int64_t d_ff = 64;
  int64_t max_len = 64;  // the longest source, and the longest target with its start token
  real dropout = 0;
  bool norm_first = true;
  int64_t pad_id = 0, bos_id = 1, eos_id = 2;
};

class TransformerModel : public Module {
 public:
  explicit TransformerModel(const TransformerModelOptions& options);

  // Teacher forcing. source (B,S) padded with pad_id, target_in (B,T) the
  // targets shifted right behind bos_id, padded with pad_id -> logits (B,T,vocab).
  Tensor forward(const Tensor& source, const Tensor& target_in);
  // The two halves (forward = decode(target_in, encode(source), ...)):
  // source (B,S) -> memory (B,S,d), and its padding mask (B,S), 1 at pad_id.
  Tensor encode(const Tensor& source);
  Tensor source_padding(const Tensor& source) const;
  // target (B,T) over memory -> logits (B,T,vocab), under the lookahead mask;
  // target_padding (B,T) optional. With a KV cache, target holds the positions
  // after the cached ones and the logits are theirs (generation's fast path).
  Tensor decode(const Tensor& target, const Tensor& memory, const Tensor& memory_padding,
                const Tensor& target_padding = Tensor(), KVCache* cache = nullptr);

  // Decoding from bos_id, stopping a sequence at eos_id (not included) or after
  // max_length tokens; no graph is recorded. In fast mode each step runs the new
  // token only, with a KV cache; in reference mode the whole target, every step.
  // greedy_decode's attention (B,T,S) is the last decoder layer's cross-attention,
  // averaged over the heads: which source position each output token read.
  GreedyDecoding greedy_decode(const Tensor& source, int64_t max_length);
  std::vector<std::vector<int64_t>> sample(const Tensor& source, int64_t max_length,
                                           const SamplingOptions& options, Generator& gen);
  std::vector<std::vector<Beam>> beam_search(const Tensor& source, int64_t max_length,
                                             const BeamSearchOptions& options);
  // The decoding state the three above step, with or without the KV cache.
  std::unique_ptr<TokenDecoder> start_decoding(const Tensor& source, bool use_cache);
  std::string extra_repr() const override;

  TransformerModelOptions options;
  std::shared_ptr<Embedding> embedding;
  std::shared_ptr<PositionalEncoding> positional;
  std::shared_ptr<Transformer> transformer;
  std::shared_ptr<Linear> fc;
};

}  // namespace ag::nn
