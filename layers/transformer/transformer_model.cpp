// Seed 002's TransformerModel: embedding, nn::Transformer, Linear; its masks,
// and decoding from a start token.
#include "layers/transformer/transformer_model.hpp"

#include <algorithm>

#include "autograd/grad_mode.hpp"
#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/mode.hpp"
#include "layers/attention/scaled_dot_product.hpp"
#include "layers/transformer/transformer_masks.hpp"

namespace ag::nn {

TransformerModel::TransformerModel(const TransformerModelOptions& o)
    : Module("TransformerModel"), options(o) {
  AG_CHECK(o.vocab_size > 0 && o.max_len > 0,
           "TransformerModel: vocab_size {} and max_len {} must be positive", o.vocab_size,
           o.max_len);
  for (int64_t id : {o.pad_id, o.bos_id, o.eos_id})
    AG_CHECK(id >= 0 && id < o.vocab_size,
             "TransformerModel: special token id {} is outside the vocabulary 0..{}", id,
             o.vocab_size - 1);
  embedding = register_module("embedding", std::make_shared<Embedding>(o.vocab_size, o.d_model));
  positional =
      register_module("positional", std::make_shared<PositionalEncoding>(o.d_model, o.max_len));
  transformer = register_module(
      "transformer",
      std::make_shared<Transformer>(o.d_model, o.heads, o.num_encoder_layers, o.num_decoder_layers,
                                    o.d_ff, o.dropout, o.norm_first));
  fc = register_module("fc", std::make_shared<Linear>(o.d_model, o.vocab_size));
}

namespace {

void check_tokens(const char* who, const char* name, const Tensor& tokens, int64_t max_len) {
  AG_CHECK(tokens.defined() && tokens.dim() == 2 && tokens.size(1) >= 1,
           "{}: {} {} must be token ids (batch, length >= 1)", who, name, describe(tokens));
  AG_CHECK(tokens.size(1) <= max_len, "{}: {} {} is longer than max_len {}", who, name,
           describe(tokens), max_len);
}

// source (B,S) and target_in (B,T) of one batch, each within max_len.
void check_teacher_forcing(const Tensor& source, const Tensor& target_in, int64_t max_len) {
  check_tokens("TransformerModel", "source", source, max_len);
  check_tokens("TransformerModel", "target_in", target_in, max_len);
  AG_CHECK(target_in.size(0) == source.size(0),
           "TransformerModel: target_in {} must have the batch of source {}", describe(target_in),
           describe(source));
}

// target (B,T) of T >= 1 new positions, within max_len after the cached ones.
void check_target(const Tensor& target, const KVCache* cache, int64_t max_len) {
  AG_CHECK(target.defined() && target.dim() == 2 && target.size(1) >= 1,
           "TransformerModel::decode: target {} must be token ids (batch, length >= 1)",
           describe(target));
  const int64_t past = cache ? cache->length() : 0;
  AG_CHECK(past + target.size(1) <= max_len,
           "TransformerModel::decode: {} cached + {} new target positions exceed max_len {}", past,
           target.size(1), max_len);
}

}  // namespace

Tensor TransformerModel::source_padding(const Tensor& source) const {
  // [F4.8] seed 004: padding_mask = cast(equal(x, 0)): 1 at the pad tokens    (B,S)
  return reshape(padding_mask(source, options.pad_id), {source.size(0), source.size(1)});
}

Tensor TransformerModel::forward(const Tensor& source, const Tensor& target_in) {
  check_teacher_forcing(source, target_in, options.max_len);
  // [F4.8] seed 004's decoder masks: the target's padding (B,T) here, the lookahead
  // mask in decode; the attention blocks where either blocks (their maximum)
  const Tensor target_padding =
      reshape(padding_mask(target_in, options.pad_id), {target_in.size(0), target_in.size(1)});
  // [F2.8] the seed's forward: fc(transformer(embedding(src), embedding(tgt)))
  return decode(target_in, encode(source), source_padding(source), target_padding);
}

Tensor TransformerModel::encode(const Tensor& source) {
  check_tokens("TransformerModel::encode", "source", source, options.max_len);
  // [F2.8] the source's embeddings, [F3.1] + PE                      (B,S) -> (B,S,d)
  Tensor src = positional->forward(embedding->forward(source));
  // [F1.2] memory = Encoder(src), the source's padding blocked as keys   (B,S,d)
  return transformer->encode(src, Tensor(), source_padding(source));
}

Tensor TransformerModel::decode(const Tensor& target, const Tensor& memory,
                                const Tensor& memory_padding, const Tensor& target_padding,
                                KVCache* cache) {
  check_target(target, cache, options.max_len);
  const int64_t past = cache ? cache->length() : 0;
  // [F2.8] the target's embeddings (the same table), [F3.1] + PE at positions past..
  Tensor tgt = positional->forward(embedding->forward(target), past);
  // [F4.8] the lookahead mask: target position t reads positions 0..t only  (T,T), or (T,past+T)
  Tensor lookahead = causal_mask_rows(past, target.size(1));
  // [F1.2] the decoder over the memory, then [F2.8] fc to the vocabulary    (B,T,vocab)
  return fc->forward(
      transformer->decode(tgt, memory, lookahead, Tensor(), target_padding, memory_padding, cache));
}

std::unique_ptr<TokenDecoder> TransformerModel::start_decoding(const Tensor& source,
                                                               bool use_cache) {
  check_tokens("TransformerModel::start_decoding", "source", source, options.max_len);
  NoGradGuard no_grad;
  std::vector<Tensor> inputs = {encode(source), source_padding(source)};  // once per source
  // The whole target (cache null), or the tokens after the cached ones: decode does both.
  auto run = [this](const Tensor& tokens, const std::vector<Tensor>& in, KVCache* cache) {
    return decode(tokens, in[0], in[1], Tensor(), cache);
  };
  return std::make_unique<TransformerTokenDecoder>(
      "TransformerModel", full({source.size(0), 1}, real(options.bos_id)), std::move(inputs),
      options.max_len, use_cache, run);
}

namespace {

void check_decoding(const char* who, const Tensor& source, int64_t max_length, int64_t max_len) {
  check_tokens(who, "source", source, max_len);
  AG_CHECK(max_length >= 1 && max_length <= max_len,
           "{}: max_length must be in 1..max_len = {} (the start token and the tokens fed back "
           "take max_length positions), got {}",
           who, max_len, max_length);
}

}  // namespace

GreedyDecoding TransformerModel::greedy_decode(const Tensor& source, int64_t max_length) {
  check_decoding("TransformerModel::greedy_decode", source, max_length, options.max_len);
  NoGradGuard no_grad;
  auto decoder = start_decoding(source, /*use_cache=*/!reference_mode());
  GreedyDecoding result;
  result.tokens = greedy_search(*decoder, max_length, options.eos_id);
  if (transformer->decoder->layers->layers.empty()) return result;
  // The cross-attention of the steps: one teacher-forced pass over bos and the
  // decoded tokens reads at every position what the step that chose its token
  // read (under the lookahead mask later tokens change nothing before them).
  const int64_t batch = source.size(0);
  int64_t steps = 1;
  for (const auto& row : result.tokens)
    steps = std::max(steps, std::min<int64_t>(max_length, int64_t(row.size()) + 1));
  std::vector<real> target(size_t(batch * steps), real(options.pad_id));
  for (int64_t b = 0; b < batch; ++b) {
    target[size_t(b * steps)] = real(options.bos_id);
    const auto& row = result.tokens[size_t(b)];
    for (int64_t t = 1; t < steps && t - 1 < int64_t(row.size()); ++t)
      target[size_t(b * steps + t)] = real(row[size_t(t - 1)]);
  }
  (void)decode(from_vector(target, {batch, steps}), encode(source), source_padding(source));
  // (B,h,T,S) -> the mean over the heads (B,T,S)
  result.attention = mean(transformer->decoder->layers->layers.back()->cross_attention_weights, 1);
  return result;
}

std::vector<std::vector<int64_t>> TransformerModel::sample(const Tensor& source, int64_t max_length,
                                                           const SamplingOptions& opt,
                                                           Generator& gen) {
  check_decoding("TransformerModel::sample", source, max_length, options.max_len);
  check_sampling_options("TransformerModel::sample", opt, options.vocab_size);
  auto decoder = start_decoding(source, /*use_cache=*/!reference_mode());
  return nn::sample(*decoder, max_length, opt, gen, options.eos_id);
}

std::vector<std::vector<Beam>> TransformerModel::beam_search(const Tensor& source,
                                                             int64_t max_length,
                                                             const BeamSearchOptions& opt) {
  check_decoding("TransformerModel::beam_search", source, max_length, options.max_len);
  check_beam_options("TransformerModel::beam_search", opt);
  auto decoder = start_decoding(source, /*use_cache=*/!reference_mode());
  return nn::beam_search(*decoder, max_length, opt, options.eos_id);
}

std::string TransformerModel::extra_repr() const {
  return fmt::format("vocab_size={}, d_model={}, max_len={}, pad_id={}, bos_id={}, eos_id={}",
                     options.vocab_size, options.d_model, options.max_len, options.pad_id,
                     options.bos_id, options.eos_id);
}

}  // namespace ag::nn
