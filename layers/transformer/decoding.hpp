// Decoding: turning a model's next-token scores into sequences, the three ways
// people generate.
//
//   greedy       y_t = argmax p(y_t | y_<t)                             [F4.9]
//   sampling     y_t ~ softmax(logits / temperature), only the top_k    [F4.9]
//                most likely tokens kept (seed 004: tf.random.categorical)
//   beam search  keeps the beam_width most likely prefixes at every step and
//                ranks finished ones by log P(y) / |y|^alpha (length normalisation)
//
// Greedy picks the best token at every step, which need not give the best
// sequence: a slightly worse first token can lead to a much more likely whole.
// Beam search looks further; with a beam as wide as the number of prefixes it
// is an exhaustive search (a test checks it against one). Sampling trades
// likelihood for variety: temperature < 1 sharpens the distribution, > 1
// flattens it, and top_k cuts off its tail.
//
// The algorithms work on any model that can say what comes next: a
// TokenDecoder holds a batch of rows (one prefix each) and gives the logits of
// the next token of every row. nn::Seq2Seq, nn::TinyTransformer and
// nn::TransformerModel each make one (start_decoding) and have the three as
// methods (greedy_decode or generate, sample, beam_search).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/generator.hpp"
#include "core/tensor.hpp"
#include "layers/transformer/kv_cache.hpp"

namespace ag::nn {

struct SamplingOptions {
  double temperature = 1.0;  // > 0: the logits are divided by it before the softmax
  int64_t top_k = 0;         // k > 0: only the k largest logits of a row; 0: all
};

struct BeamSearchOptions {
  int64_t beam_width = 4;       // >= 1 prefixes kept per input at every step
  double length_penalty = 1.0;  // alpha >= 0: finished beams ranked by log P / length^alpha
};

// One hypothesis of beam search.
struct Beam {
  std::vector<int64_t> tokens;  // the generated tokens, the end token not included
  double log_prob = 0;          // log P(tokens, and the end token if it ended | input)
  double score = 0;             // log_prob / length^alpha, length counting the end token
  bool ended = false;           // true: it ended with the end token; false: at max_length
};

// A batch of rows being decoded: each row is a prefix (a prompt, or a start
// token and the tokens chosen so far, with whatever the model keeps for it).
// A decoder made by a model's start_decoding refers to the model: keep the
// model alive, and its weights unchanged, while the decoder is in use.
class TokenDecoder {
 public:
  virtual ~TokenDecoder() = default;
  virtual int64_t rows() const = 0;
  // The logits of the token that follows each row's prefix: (rows, vocab).
  virtual Tensor next_logits() = 0;
  // Appends tokens[r] to row r's prefix (one token per row).
  virtual void append(const std::vector<int64_t>& tokens) = 0;
  // Row i becomes the old row rows[i]: beam search keeps, repeats and drops
  // rows as its hypotheses change. Rows may become fewer.
  virtual void reorder(const std::vector<int64_t>& rows) = 0;
};

// The TokenDecoder of a Transformer that generates (TinyTransformer, TransformerModel):
// rows of token sequences that grow by one token a step, and the model's logits
// after the last token. next_logits() has the two bodies of a fast path: the
// plain one runs the whole sequence through the model again (the reference);
// with use_cache, only the tokens the KV cache has not seen (the prefix at the
// first step, then the one token appended), so a step costs one position, not
// all of them. Both give the same logits (tests/test_decoding.cpp).
class TransformerTokenDecoder : public TokenDecoder {
 public:
  // run(tokens, inputs, cache): the model's logits (R,n,vocab) for tokens (R,n)
  // that follow the cache->length() positions the cache holds, or for the whole
  // sequence when cache is null. inputs are per-row tensors the model reads
  // besides the tokens (an encoder's memory and its padding mask), reordered
  // with the rows.
  using Run = std::function<Tensor(const Tensor& tokens, const std::vector<Tensor>& inputs,
                                   KVCache* cache)>;
  TransformerTokenDecoder(std::string model, const Tensor& prefix, std::vector<Tensor> inputs,
                          int64_t max_len, bool use_cache, Run run);
  int64_t rows() const override { return tokens_.size(0); }
  Tensor next_logits() override;
  void append(const std::vector<int64_t>& tokens) override;
  void reorder(const std::vector<int64_t>& rows) override;
  const Tensor& tokens() const { return tokens_; }  // (R,T): the prefix and every token appended

 private:
  std::string model_;
  Tensor tokens_;
  std::vector<Tensor> inputs_;
  int64_t max_len_;
  bool use_cache_;
  Run run_;
  KVCache cache_;  // the keys and values of tokens_[:, :cache_.length()], per layer
  Tensor logits_;  // the last next_logits(), until the next append
};

// The distribution sampling draws from, row by row: softmax(logits / temperature)
// over the top_k largest logits (the rest 0).   logits (N,V) -> (N,V)
Tensor sampling_probabilities(const Tensor& logits, const SamplingOptions& options);
// One token per row of logits (N,V), drawn from sampling_probabilities with gen.
std::vector<int64_t> sample_next(const Tensor& logits, const SamplingOptions& options,
                                 Generator& gen);

// Up to max_length tokens per row; a row stops at eos_id, which is not included
// (eos_id -1: no end token, every row gets max_length tokens).
std::vector<std::vector<int64_t>> greedy_search(TokenDecoder& decoder, int64_t max_length,
                                                int64_t eos_id = -1);
std::vector<std::vector<int64_t>> sample(TokenDecoder& decoder, int64_t max_length,
                                         const SamplingOptions& options, Generator& gen,
                                         int64_t eos_id = -1);
// Per row of the decoder, its best beams (at most beam_width), best score first.
std::vector<std::vector<Beam>> beam_search(TokenDecoder& decoder, int64_t max_length,
                                           const BeamSearchOptions& options, int64_t eos_id = -1);

// The checks the models' decoding methods make at their entry, naming `who`.
void check_sampling_options(const char* who, const SamplingOptions& options, int64_t vocab);
void check_beam_options(const char* who, const BeamSearchOptions& options);

}  // namespace ag::nn
