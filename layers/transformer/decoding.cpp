// Greedy decoding, sampling with temperature and top-k, and beam search with
// length normalisation, over any TokenDecoder.
#include "layers/transformer/decoding.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

#include "autograd/grad_mode.hpp"
#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"

namespace ag::nn {

void check_sampling_options(const char* who, const SamplingOptions& options, int64_t vocab) {
  AG_CHECK(options.temperature > 0 && std::isfinite(options.temperature),
           "{}: temperature must be a positive number, got {} (for the argmax, decode greedily)",
           who, options.temperature);
  AG_CHECK(options.top_k >= 0 && options.top_k <= vocab,
           "{}: top_k must be in 0..{} (the vocabulary; 0 keeps every token), got {}", who, vocab,
           options.top_k);
}

void check_beam_options(const char* who, const BeamSearchOptions& options) {
  AG_CHECK(options.beam_width >= 1, "{}: beam_width must be >= 1, got {}", who, options.beam_width);
  AG_CHECK(options.length_penalty >= 0 && std::isfinite(options.length_penalty),
           "{}: length_penalty (alpha) must be >= 0, got {}", who, options.length_penalty);
}

TransformerTokenDecoder::TransformerTokenDecoder(std::string model, const Tensor& prefix,
                                                 std::vector<Tensor> inputs, int64_t max_len,
                                                 bool use_cache, Run run)
    : model_(std::move(model)),
      tokens_(prefix),
      inputs_(std::move(inputs)),
      max_len_(max_len),
      use_cache_(use_cache),
      run_(std::move(run)) {
  AG_CHECK(prefix.defined() && prefix.dim() == 2 && prefix.size(1) >= 1,
           "{} decoding: the prefix {} must be (batch, length >= 1)", model_, describe(prefix));
}

Tensor TransformerTokenDecoder::next_logits() {
  if (logits_.defined()) return logits_;
  NoGradGuard no_grad;
  const int64_t rows = tokens_.size(0), length = tokens_.size(1);
  Tensor logits;
  if (!use_cache_) {
    // Every position again: under the causal mask the earlier positions give
    // what they gave before, and only the last one is new.     (R,T) -> (R,T,vocab)
    logits = run_(tokens_, inputs_, nullptr);
  } else {
    // Only the positions the cache has not seen: their queries, keys and values,
    // attending over the cached keys and values.               (R,n) -> (R,n,vocab)
    const int64_t seen = cache_.length();
    logits = run_(narrow(tokens_, 1, seen, length - seen), inputs_, &cache_);
  }
  // the logits after the last position                          (R,vocab)
  logits_ = reshape(narrow(logits, 1, logits.size(1) - 1, 1), {rows, logits.size(2)});
  return logits_;
}

void TransformerTokenDecoder::append(const std::vector<int64_t>& tokens) {
  AG_CHECK(static_cast<int64_t>(tokens.size()) == rows(),
           "{} decoding: {} tokens appended to {} rows", model_, tokens.size(), rows());
  AG_CHECK(tokens_.size(1) < max_len_,
           "{} decoding: a sequence of {} tokens cannot grow past max_len {}", model_,
           tokens_.size(1), max_len_);
  const std::vector<real> column(tokens.begin(), tokens.end());
  tokens_ = cat({tokens_, from_vector(column, {rows(), 1})}, 1);
  logits_ = Tensor();
}

void TransformerTokenDecoder::reorder(const std::vector<int64_t>& rows) {
  NoGradGuard no_grad;
  tokens_ = index_select(tokens_, 0, rows);
  for (Tensor& input : inputs_)
    if (input.defined()) input = index_select(input, 0, rows);
  if (logits_.defined()) logits_ = index_select(logits_, 0, rows);
  cache_.reorder(rows);
}

namespace {

void check_logits(const char* op, const Tensor& logits) {
  AG_CHECK(logits.defined() && logits.dim() == 2 && logits.size(1) >= 1,
           "{}: logits {} must be (rows, vocab)", op, describe(logits));
}

// One row's sampling distribution, in double: softmax(z / temperature) over the
// top_k largest z (ties: the lower token id first), 0 elsewhere.
std::vector<double> row_probabilities(const real* z, int64_t vocab, const SamplingOptions& options,
                                      int64_t row) {
  std::vector<int64_t> kept(static_cast<size_t>(vocab));
  std::iota(kept.begin(), kept.end(), 0);
  if (options.top_k > 0 && options.top_k < vocab) {
    auto larger = [z](int64_t a, int64_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); };
    std::partial_sort(kept.begin(), kept.begin() + options.top_k, kept.end(), larger);
    kept.resize(static_cast<size_t>(options.top_k));
  }
  double max = -std::numeric_limits<double>::infinity();
  for (int64_t v : kept) max = std::max(max, double(z[v]) / options.temperature);
  std::vector<double> p(static_cast<size_t>(vocab), 0.0);
  double total = 0;
  // [F4.9] p(y) = exp(z_y / T) / sum_k exp(z_k / T) over the kept tokens (max subtracted)
  for (int64_t v : kept) total += p[v] = std::exp(double(z[v]) / options.temperature - max);
  AG_CHECK(total > 0 && std::isfinite(total),
           "sample_next: the logits of row {} give no distribution (NaN, or every kept logit -inf)",
           row);
  for (double& x : p) x /= total;
  return p;
}

}  // namespace

Tensor sampling_probabilities(const Tensor& logits, const SamplingOptions& options) {
  check_logits("sampling_probabilities", logits);
  check_sampling_options("sampling_probabilities", options, logits.size(1));
  const int64_t rows = logits.size(0), vocab = logits.size(1);
  Tensor p = Tensor::empty({rows, vocab});
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<double> row = row_probabilities(logits.data() + r * vocab, vocab, options, r);
    for (int64_t v = 0; v < vocab; ++v) p.data()[r * vocab + v] = static_cast<real>(row[v]);
  }
  return p;
}

std::vector<int64_t> sample_next(const Tensor& logits, const SamplingOptions& options,
                                 Generator& gen) {
  check_logits("sample_next", logits);
  check_sampling_options("sample_next", options, logits.size(1));
  const int64_t rows = logits.size(0), vocab = logits.size(1);
  std::vector<int64_t> tokens(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<double> p = row_probabilities(logits.data() + r * vocab, vocab, options, r);
    // [F4.9] y ~ p: the first token whose cumulative probability passes u ~ U[0,1)
    const double u = gen.uniform();
    double cumulative = 0;
    int64_t chosen = -1;
    for (int64_t v = 0; v < vocab && chosen < 0; ++v) {
      cumulative += p[v];
      if (p[v] > 0 && u < cumulative) chosen = v;
    }
    // u within rounding of 1: the last token that has any probability
    for (int64_t v = vocab - 1; chosen < 0; --v)
      if (p[v] > 0) chosen = v;
    tokens[r] = chosen;
  }
  return tokens;
}

namespace {

void check_max_length(const char* op, int64_t max_length) {
  AG_CHECK(max_length >= 1, "{}: max_length must be >= 1, got {}", op, max_length);
}

// Greedy decoding and sampling differ only in how a row's next token is chosen.
template <typename Choose>
std::vector<std::vector<int64_t>> decode_rows(TokenDecoder& decoder, int64_t max_length,
                                              int64_t eos_id, Choose choose) {
  NoGradGuard no_grad;
  const int64_t rows = decoder.rows();
  std::vector<std::vector<int64_t>> tokens(static_cast<size_t>(rows));
  std::vector<bool> finished(static_cast<size_t>(rows), false);
  for (int64_t step = 0; step < max_length; ++step) {
    const std::vector<int64_t> next = choose(decoder.next_logits());
    bool all_finished = true;
    for (int64_t r = 0; r < rows; ++r) {
      if (finished[r]) continue;
      if (next[r] == eos_id)
        finished[r] = true;
      else
        tokens[r].push_back(next[r]);
      all_finished = all_finished && finished[r];
    }
    if (all_finished || step + 1 == max_length) break;
    // A finished row is fed its own choices too (its tokens are not kept): the
    // batch stays whole, and a row never reads another's.
    decoder.append(next);
  }
  return tokens;
}

}  // namespace

std::vector<std::vector<int64_t>> greedy_search(TokenDecoder& decoder, int64_t max_length,
                                                int64_t eos_id) {
  check_max_length("greedy_search", max_length);
  return decode_rows(decoder, max_length, eos_id, [](const Tensor& logits) {
    // [F4.9] greedy decoding: y_t = argmax p(y_t | y_<t, x), fed back as the next input
    return to_indices(argmax(logits, 1), "greedy_search");
  });
}

std::vector<std::vector<int64_t>> sample(TokenDecoder& decoder, int64_t max_length,
                                         const SamplingOptions& options, Generator& gen,
                                         int64_t eos_id) {
  check_max_length("sample", max_length);
  check_sampling_options("sample", options, std::numeric_limits<int64_t>::max());
  return decode_rows(decoder, max_length, eos_id,
                     [&](const Tensor& logits) { return sample_next(logits, options, gen); });
}

// --- beam search ------------------------------------------------------------------------
//
// Per input, at most W = beam_width live prefixes ("beams"). At every step each
// live beam's log-probability is extended by every token's, log P(y_<t) + log p(y_t),
// and the best extensions win: one ending in the end token is finished (scored
// log P / length^alpha), the others become the next live beams, until W of them
// are live. At max_length the live beams are finished as they are. An input is
// done when it has W finished beams and no live one can still beat the worst:
// log-probabilities only fall as a beam grows, so a live beam of log-probability
// L can at best score L / n^alpha with n its final length, at most L / max_length^alpha.

namespace {

struct LiveBeam {
  int64_t input;                // which row of the decoder's first batch it extends
  std::vector<int64_t> tokens;  // generated so far
  double log_prob;
};

struct Candidate {
  double log_prob;
  int64_t row, token;  // the live beam (decoder row) it extends, and its new token
};

// Keeps `list` sorted by score, best first, and at most `width` long.
void keep_best(std::vector<Beam>& list, Beam beam, int64_t width) {
  auto at = std::upper_bound(list.begin(), list.end(), beam.score,
                             [](double score, const Beam& b) { return score > b.score; });
  list.insert(at, std::move(beam));
  if (static_cast<int64_t>(list.size()) > width) list.pop_back();
}

}  // namespace

std::vector<std::vector<Beam>> beam_search(TokenDecoder& decoder, int64_t max_length,
                                           const BeamSearchOptions& options, int64_t eos_id) {
  check_max_length("beam_search", max_length);
  check_beam_options("beam_search", options);
  NoGradGuard no_grad;
  const int64_t inputs = decoder.rows(), width = options.beam_width;
  const double alpha = options.length_penalty;
  auto score = [alpha](double log_prob, int64_t length) {
    return log_prob / std::pow(double(length), alpha);
  };
  std::vector<LiveBeam> live;  // in decoder row order, grouped by input
  for (int64_t b = 0; b < inputs; ++b) live.push_back({b, {}, 0.0});
  std::vector<std::vector<Beam>> finished(static_cast<size_t>(inputs));

  for (int64_t step = 1; step <= max_length && !live.empty(); ++step) {
    // log p(y_t | y_<t, x) of every live beam    (rows, vocab)
    const Tensor log_p = log_softmax(decoder.next_logits(), 1);
    const int64_t vocab = log_p.size(1);
    std::vector<LiveBeam> next;
    std::vector<int64_t> rows, tokens;
    for (size_t first = 0; first < live.size();) {
      const int64_t input = live[first].input;
      size_t end = first;
      while (end < live.size() && live[end].input == input) ++end;
      std::vector<Candidate> candidates;
      for (size_t r = first; r < end; ++r)
        for (int64_t v = 0; v < vocab; ++v)
          candidates.push_back(
              {live[r].log_prob + double(log_p.data()[int64_t(r) * vocab + v]), int64_t(r), v});
      // Each live beam has one end token, so the best W + (live beams) candidates
      // hold at least W that go on.
      const size_t wanted = std::min(candidates.size(), size_t(width) + (end - first));
      std::partial_sort(candidates.begin(), candidates.begin() + wanted, candidates.end(),
                        [](const Candidate& a, const Candidate& b) {
                          if (a.log_prob != b.log_prob) return a.log_prob > b.log_prob;
                          return a.row != b.row ? a.row < b.row : a.token < b.token;
                        });
      std::vector<LiveBeam> going_on;
      for (size_t c = 0; c < wanted && int64_t(going_on.size()) < width; ++c) {
        const Candidate& cand = candidates[c];
        const LiveBeam& parent = live[size_t(cand.row)];
        if (cand.token == eos_id) {
          keep_best(finished[input],
                    {parent.tokens, cand.log_prob, score(cand.log_prob, step), true}, width);
          continue;
        }
        LiveBeam beam{input, parent.tokens, cand.log_prob};
        beam.tokens.push_back(cand.token);
        if (step == max_length) {
          keep_best(finished[input],
                    {beam.tokens, beam.log_prob, score(beam.log_prob, step), false}, width);
          continue;
        }
        going_on.push_back(std::move(beam));
        rows.push_back(cand.row);
        tokens.push_back(cand.token);
      }
      // Done when W beams are finished and the best live one cannot beat the worst of them.
      const std::vector<Beam>& done = finished[input];
      if (!going_on.empty() && int64_t(done.size()) == width) {
        const double best = going_on.front().log_prob;
        const double bound = std::max(score(best, step + 1), score(best, max_length));
        if (bound <= done.back().score) {
          rows.resize(rows.size() - going_on.size());
          tokens.resize(tokens.size() - going_on.size());
          going_on.clear();
        }
      }
      for (LiveBeam& beam : going_on) next.push_back(std::move(beam));
      first = end;
    }
    live = std::move(next);
    if (live.empty()) break;
    decoder.reorder(rows);
    decoder.append(tokens);
  }
  return finished;
}

}  // namespace ag::nn
