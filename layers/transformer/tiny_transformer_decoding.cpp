// Generation with the tiny Transformer: greedy decoding, sampling and beam
// search, each step with the KV cache in fast mode and over the whole sequence
// in reference mode.
// (No formula ID here: each step is TinyTransformer::forward, whose lines carry them.)
#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/mode.hpp"
#include "layers/basic/embedding.hpp"
#include "layers/transformer/transformer.hpp"

namespace ag::nn {

namespace {

void check_prompt(const char* who, const Tensor& prompt, int64_t steps,
                  const TinyTransformerOptions& options) {
  AG_CHECK(prompt.defined() && prompt.dim() == 2 && prompt.size(1) >= 1 && steps >= 0,
           "{}: prompt {} must be (batch, time >= 1) and steps {} >= 0", who, describe(prompt),
           steps);
  AG_CHECK(steps <= options.max_len - prompt.size(1),  // (the sum could overflow)
           "{}: {} prompt tokens + {} steps exceed max_len {}", who, prompt.size(1), steps,
           options.max_len);
  check_tokens(prompt, options.vocab_size, who);
}

// The prompt (B,T0) followed by each row's tokens, as many in every row -> (B,T0+steps).
Tensor join(const Tensor& prompt, const std::vector<std::vector<int64_t>>& tokens) {
  const int64_t batch = prompt.size(0), steps = tokens.empty() ? 0 : int64_t(tokens[0].size());
  std::vector<real> values;
  for (const std::vector<int64_t>& row : tokens)
    values.insert(values.end(), row.begin(), row.end());
  return steps == 0 ? prompt : cat({prompt, from_vector(values, {batch, steps})}, 1);
}

}  // namespace

std::unique_ptr<TokenDecoder> TinyTransformer::start_decoding(const Tensor& prompt,
                                                              bool use_cache) {
  check_prompt("TinyTransformer::start_decoding", prompt, 0, options);
  // The whole sequence (cache null), or the tokens after the cached ones: forward does both.
  auto run = [this](const Tensor& tokens, const std::vector<Tensor>&, KVCache* cache) {
    return forward(tokens, /*causal=*/true, Tensor(), cache);
  };
  return std::make_unique<TransformerTokenDecoder>("TinyTransformer", prompt, std::vector<Tensor>{},
                                                   options.max_len, use_cache, run);
}

Tensor TinyTransformer::generate(const Tensor& prompt, int64_t steps) {
  check_prompt("TinyTransformer::generate", prompt, steps, options);
  if (steps == 0) return prompt;
  auto decoder = start_decoding(prompt, /*use_cache=*/!reference_mode());
  return join(prompt, greedy_search(*decoder, steps));
}

Tensor TinyTransformer::sample(const Tensor& prompt, int64_t steps, const SamplingOptions& opt,
                               Generator& gen) {
  check_prompt("TinyTransformer::sample", prompt, steps, options);
  check_sampling_options("TinyTransformer::sample", opt, options.vocab_size);
  if (steps == 0) return prompt;
  auto decoder = start_decoding(prompt, /*use_cache=*/!reference_mode());
  return join(prompt, nn::sample(*decoder, steps, opt, gen));
}

std::vector<std::vector<Beam>> TinyTransformer::beam_search(const Tensor& prompt, int64_t steps,
                                                            const BeamSearchOptions& opt,
                                                            int64_t eos_id) {
  check_prompt("TinyTransformer::beam_search", prompt, steps, options);
  check_beam_options("TinyTransformer::beam_search", opt);
  AG_CHECK(steps >= 1, "TinyTransformer::beam_search: steps must be >= 1, got {}", steps);
  auto decoder = start_decoding(prompt, /*use_cache=*/!reference_mode());
  return nn::beam_search(*decoder, steps, opt, eos_id);
}

}  // namespace ag::nn
