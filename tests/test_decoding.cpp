// Decoding [F4.9] for Seq2Seq, TinyTransformer and TransformerModel: sampling's
// distribution by hand, seeded sampling, greedy decoding step by step, beam
// search against an exhaustive search on a tiny vocabulary, and the KV cache:
// cached and uncached generation give the same logits over 30+ tokens.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"

using namespace ag;
using namespace ag::testing;

namespace {

nn::TinyTransformerOptions tiny_transformer_options(int64_t max_len) {
  nn::TinyTransformerOptions o;
  o.vocab_size = 5;
  o.d_model = 8;
  o.heads = 2;
  o.d_ff = 12;
  o.num_layers = 2;
  o.max_len = max_len;
  return o;
}

nn::TransformerModelOptions model_options(int64_t max_len) {
  nn::TransformerModelOptions o;
  o.vocab_size = 5;  // pad 0, bos 1, eos 2, and tokens 3, 4
  o.d_model = 8;
  o.heads = 2;
  o.num_encoder_layers = 1;
  o.num_decoder_layers = 2;
  o.d_ff = 12;
  o.max_len = max_len;
  return o;
}

nn::Seq2SeqOptions seq2seq_options() {
  nn::Seq2SeqOptions o;
  o.source_vocab = 6;
  o.target_vocab = 5;  // pad 0, bos 1, eos 2, and tokens 3, 4
  o.embedding_dim = 4;
  o.hidden_size = 6;
  o.attention_size = 5;
  return o;
}

Tensor row(const std::vector<int64_t>& tokens) {
  return from_vector(std::vector<real>(tokens.begin(), tokens.end()), {1, int64_t(tokens.size())});
}

// log p of each token of `next` after the matching logits row (T,V): the sum.
double sequence_log_prob(const Tensor& logits, const std::vector<int64_t>& next) {
  const Tensor log_p = log_softmax(logits, -1);
  const int64_t vocab = log_p.size(-1);
  double total = 0;
  for (size_t t = 0; t < next.size(); ++t) total += log_p.data()[int64_t(t) * vocab + next[t]];
  return total;
}

struct Scored {
  std::vector<int64_t> tokens;
  bool ended;
  double log_prob, score;
};

// Every sequence of up to max_length tokens over 0..vocab-1: those that end with
// eos at step n (n = 1..max_length), and those of max_length tokens without it;
// each scored log P / length^alpha from log_prob(tokens, ended), best first.
std::vector<Scored> exhaustive_search(
    int64_t vocab, int64_t eos, int64_t max_length, double alpha,
    const std::function<double(const std::vector<int64_t>&, bool)>& log_prob) {
  std::vector<Scored> all;
  std::vector<std::vector<int64_t>> prefixes = {{}};
  for (int64_t length = 1; length <= max_length; ++length) {
    std::vector<std::vector<int64_t>> longer;
    for (const auto& prefix : prefixes) {
      const double ended = log_prob(prefix, true);
      all.push_back({prefix, true, ended, ended / std::pow(double(length), alpha)});
      for (int64_t v = 0; v < vocab; ++v)
        if (v != eos) {
          longer.push_back(prefix);
          longer.back().push_back(v);
        }
    }
    prefixes = longer;
  }
  for (const auto& tokens : prefixes) {
    const double lp = log_prob(tokens, false);
    all.push_back({tokens, false, lp, lp / std::pow(double(max_length), alpha)});
  }
  std::sort(all.begin(), all.end(),
            [](const Scored& a, const Scored& b) { return a.score > b.score; });
  return all;
}

// Beam search as wide as the number of prefixes finds exactly the exhaustive
// search's ranking; a narrow one gives true log-probabilities, sorted.
void check_beams_against_exhaustive(
    const std::function<std::vector<nn::Beam>(const nn::BeamSearchOptions&)>& beam,
    const std::function<double(const std::vector<int64_t>&, bool)>& log_prob, int64_t vocab,
    int64_t eos, int64_t max_length) {
  const double lp_tol = is_double ? 1e-10 : 1e-4;
  for (double alpha : {0.0, 1.0}) {
    INFO("length_penalty " << alpha);
    const std::vector<Scored> best = exhaustive_search(vocab, eos, max_length, alpha, log_prob);
    nn::BeamSearchOptions wide;
    wide.beam_width = 64;  // (vocab - 1)^max_length = 64 prefixes at most: nothing is pruned
    wide.length_penalty = alpha;
    const std::vector<nn::Beam> beams = beam(wide);
    REQUIRE(beams.size() == 64);
    for (size_t i = 0; i < 10; ++i) {
      INFO("rank " << i);
      CHECK(beams[i].tokens == best[i].tokens);
      CHECK(beams[i].ended == best[i].ended);
      CHECK(std::abs(beams[i].log_prob - best[i].log_prob) < lp_tol);
      CHECK(std::abs(beams[i].score - best[i].score) < lp_tol);
    }
    nn::BeamSearchOptions narrow;
    narrow.beam_width = 2;
    narrow.length_penalty = alpha;
    const std::vector<nn::Beam> few = beam(narrow);
    REQUIRE(few.size() == 2);
    CHECK(few[0].score >= few[1].score);
    CHECK(few[0].score <= best[0].score + lp_tol);
    for (const nn::Beam& b : few) {
      CHECK(std::abs(b.log_prob - log_prob(b.tokens, b.ended)) < lp_tol);
      const double length = double(b.tokens.size() + (b.ended ? 1 : 0));
      CHECK(std::abs(b.score - b.log_prob / std::pow(length, alpha)) < lp_tol);
    }
  }
}

}  // namespace

// --- sampling --------------------------------------------------------------------------------

TEST_CASE("decoding/sampling [F4.9]: softmax(logits / temperature) over the top k, by hand") {
  Tensor logits = tensor({{1, 2, 0, 2}, {0, 0, 0, 0}});
  nn::SamplingOptions plain;
  const double e = std::exp(1.0), z = e + 2 * e * e + 1;
  check_values(nn::sampling_probabilities(logits, plain),
               {e / z, e * e / z, 1 / z, e * e / z, 0.25, 0.25, 0.25, 0.25}, 1e-6);
  nn::SamplingOptions hot;
  hot.temperature = 2;  // exp(z / 2)
  const double s = std::exp(0.5), zs = s + 2 * e + 1;
  check_values(nn::sampling_probabilities(logits, hot),
               {s / zs, e / zs, 1 / zs, e / zs, 0.25, 0.25, 0.25, 0.25}, 1e-6);
  nn::SamplingOptions top2;
  top2.top_k = 2;  // the two largest; ties go to the lower token id
  check_values(nn::sampling_probabilities(logits, top2), {0, 0.5, 0, 0.5, 0.5, 0.5, 0, 0}, 1e-6);
  nn::SamplingOptions top1;
  top1.top_k = 1;
  top1.temperature = 0.1;
  check_values(nn::sampling_probabilities(logits, top1), {0, 1, 0, 0, 1, 0, 0, 0}, 1e-6);
  check_error(
      [&] {
        nn::sampling_probabilities(logits, {0.0, 0});
      },
      {"sampling_probabilities:", "temperature", "got 0"});
  check_error(
      [&] {
        nn::sampling_probabilities(logits, {1.0, 5});
      },
      {"sampling_probabilities:", "top_k", "0..4", "got 5"});
}

TEST_CASE(
    "decoding/sampling [F4.9]: draws follow the distribution; the same seed, the same draws") {
  Tensor logits = tensor({{0, std::log(2.0f), std::log(3.0f), -1000}});  // p = 1/6, 2/6, 3/6, ~0
  Generator gen(7);
  std::vector<int64_t> counts(4, 0);
  const int n = 6000;
  for (int i = 0; i < n; ++i) counts[size_t(nn::sample_next(logits, {}, gen)[0])] += 1;
  CHECK(std::abs(counts[0] / double(n) - 1.0 / 6) < 0.02);
  CHECK(std::abs(counts[1] / double(n) - 2.0 / 6) < 0.02);
  CHECK(std::abs(counts[2] / double(n) - 3.0 / 6) < 0.02);
  CHECK(counts[3] == 0);
  Generator a(3), b(3);
  std::vector<int64_t> first, second;
  for (int i = 0; i < 50; ++i) {
    first.push_back(nn::sample_next(logits, {}, a)[0]);
    second.push_back(nn::sample_next(logits, {}, b)[0]);
  }
  CHECK(first == second);
}

TEST_CASE(
    "decoding/sampling [F4.9]: seeded sampling from the three models repeats; top_k 1 is greedy") {
  manual_seed(61);
  nn::TinyTransformer tiny(tiny_transformer_options(16));
  nn::TransformerModel model(model_options(10));
  nn::Seq2Seq seq2seq(seq2seq_options());
  tiny.eval();
  model.eval();
  seq2seq.eval();
  Tensor prompt = tensor({{3, 1}, {4, 4}});
  Tensor source = tensor({{3, 4, 4}, {4, 3, 0}});
  nn::SamplingOptions warm;
  warm.temperature = 1.5;
  Generator g1(9), g2(9), g3(10);
  Tensor s1 = tiny.sample(prompt, 8, warm, g1), s2 = tiny.sample(prompt, 8, warm, g2);
  CHECK(max_abs_diff(s1, s2) == 0);
  CHECK(max_abs_diff(narrow(s1, 1, 0, 2), prompt) == 0);
  CHECK(max_abs_diff(s1, tiny.sample(prompt, 8, warm, g3)) > 0);  // another seed, other tokens
  Generator m1(9), m2(9);
  CHECK(model.sample(source, 6, warm, m1) == model.sample(source, 6, warm, m2));
  Generator q1(9), q2(9);
  CHECK(seq2seq.sample(source, {3, 2}, 6, warm, q1) == seq2seq.sample(source, {3, 2}, 6, warm, q2));
  nn::SamplingOptions greedy;
  greedy.top_k = 1;
  Generator g(1);
  CHECK(max_abs_diff(tiny.sample(prompt, 8, greedy, g), tiny.generate(prompt, 8)) == 0);
  CHECK(model.sample(source, 6, greedy, g) == model.greedy_decode(source, 6).tokens);
  CHECK(seq2seq.sample(source, {3, 2}, 6, greedy, g) ==
        seq2seq.greedy_decode(source, {3, 2}, 6).tokens);
}

// --- greedy --------------------------------------------------------------------------------

TEST_CASE(
    "decoding/greedy [F4.9]: TransformerModel's greedy decoding is the argmax of the teacher-"
    "forced logits, step by step, until the end token") {
  manual_seed(62);
  nn::TransformerModel model(model_options(10));
  model.eval();
  Tensor source = tensor({{3, 4, 4, 3}, {4, 3, 0, 0}});
  nn::GreedyDecoding out = model.greedy_decode(source, 7);
  for (int64_t b = 0; b < 2; ++b) {
    Tensor src = narrow(source, 0, b, 1);
    std::vector<int64_t> target = {1};  // bos
    std::vector<int64_t> expected;
    for (int64_t step = 0; step < 7; ++step) {
      // teacher forcing without a target padding mask (a token may be pad_id)
      Tensor logits = model.decode(row(target), model.encode(src), model.source_padding(src));
      const int64_t next =
          int64_t(argmax(narrow(logits, 1, int64_t(target.size()) - 1, 1), -1).item());
      if (next == 2) break;
      expected.push_back(next);
      target.push_back(next);
    }
    CHECK(out.tokens[size_t(b)] == expected);
  }
  // the attention: (B, steps, S), each row a distribution over the real source positions
  REQUIRE(out.attention.defined());
  CHECK(out.attention.size(0) == 2);
  CHECK(out.attention.size(2) == 4);
  for (int64_t t = 0; t < out.attention.size(1); ++t) {
    CHECK(out.attention.at({1, t, 2}) == 0);  // padding
    double total = 0;
    for (int64_t s = 0; s < 4; ++s) total += out.attention.at({1, t, s});
    CHECK(total == doctest::Approx(1));
  }
}

// --- beam search -----------------------------------------------------------------------------

TEST_CASE(
    "decoding/beam_search: as wide as the search space it is an exhaustive search (Seq2Seq, "
    "vocabulary 5, 3 steps); narrower, true log-probabilities") {
  manual_seed(63);
  nn::Seq2Seq model(seq2seq_options());
  model.eval();
  Tensor source = tensor({{3, 5, 4}});
  auto log_prob = [&](const std::vector<int64_t>& tokens, bool ended) {
    NoGradGuard no_grad;
    std::vector<int64_t> in = {1}, out = tokens;
    in.insert(in.end(), tokens.begin(), tokens.end());
    if (ended) out.push_back(2);
    in.resize(out.size());
    Tensor logits = model.forward(source, {3}, row(in)).logits;
    return sequence_log_prob(reshape(logits, {logits.size(1), logits.size(2)}), out);
  };
  check_beams_against_exhaustive(
      [&](const nn::BeamSearchOptions& o) { return model.beam_search(source, {3}, 3, o)[0]; },
      log_prob, 5, 2, 3);
}

TEST_CASE(
    "decoding/beam_search: a 2-layer Seq2Seq with a bidirectional encoder (its (L,B,H) state "
    "reordered with the beams) is an exhaustive search too; top_k 1 sampling is greedy") {
  manual_seed(65);
  nn::Seq2SeqOptions options = seq2seq_options();
  options.num_layers = 2;
  options.bidirectional = true;
  for (nn::CellType cell : {nn::CellType::LSTM, nn::CellType::RNN}) {
    options.cell = cell;
    INFO("cell " << nn::to_string(cell));
    nn::Seq2Seq model(options);
    model.eval();
    Tensor source = tensor({{3, 5, 4}});
    auto log_prob = [&](const std::vector<int64_t>& tokens, bool ended) {
      NoGradGuard no_grad;
      std::vector<int64_t> in = {1}, out = tokens;
      in.insert(in.end(), tokens.begin(), tokens.end());
      if (ended) out.push_back(2);
      in.resize(out.size());
      Tensor logits = model.forward(source, {3}, row(in)).logits;
      return sequence_log_prob(reshape(logits, {logits.size(1), logits.size(2)}), out);
    };
    check_beams_against_exhaustive(
        [&](const nn::BeamSearchOptions& o) { return model.beam_search(source, {3}, 3, o)[0]; },
        log_prob, 5, 2, 3);
    // a padded batch of two: sampling with top_k 1 follows greedy_decode, row by row
    Tensor batch = tensor({{3, 4, 4}, {4, 3, 0}});
    nn::SamplingOptions greedy;
    greedy.top_k = 1;
    Generator g(1);
    CHECK(model.sample(batch, {3, 2}, 6, greedy, g) == model.greedy_decode(batch, {3, 2}, 6).tokens);
  }
}

TEST_CASE(
    "decoding/beam_search: exhaustive search for TinyTransformer (end token 2) and "
    "TransformerModel; width 1 without length penalty is greedy") {
  manual_seed(64);
  nn::TinyTransformer tiny(tiny_transformer_options(8));
  tiny.eval();
  const std::vector<int64_t> prompt = {3, 1};
  auto tiny_log_prob = [&](const std::vector<int64_t>& tokens, bool ended) {
    NoGradGuard no_grad;
    std::vector<int64_t> seq = prompt, out = tokens;
    seq.insert(seq.end(), tokens.begin(), tokens.end());
    if (ended) out.push_back(2);
    Tensor logits = tiny.forward(row(seq));
    logits = narrow(reshape(logits, {logits.size(1), 5}), 0, int64_t(prompt.size()) - 1,
                    int64_t(out.size()));
    return sequence_log_prob(logits, out);
  };
  check_beams_against_exhaustive(
      [&](const nn::BeamSearchOptions& o) { return tiny.beam_search(row(prompt), 3, o, 2)[0]; },
      tiny_log_prob, 5, 2, 3);

  manual_seed(65);
  nn::TransformerModel model(model_options(8));
  model.eval();
  Tensor source = tensor({{4, 3, 3}});
  auto model_log_prob = [&](const std::vector<int64_t>& tokens, bool ended) {
    NoGradGuard no_grad;
    std::vector<int64_t> in = {1}, out = tokens;
    in.insert(in.end(), tokens.begin(), tokens.end());
    if (ended) out.push_back(2);
    in.resize(out.size());
    // decode without a target padding mask: a generated token may be pad_id
    Tensor logits = model.decode(row(in), model.encode(source), model.source_padding(source));
    return sequence_log_prob(reshape(logits, {logits.size(1), 5}), out);
  };
  check_beams_against_exhaustive(
      [&](const nn::BeamSearchOptions& o) { return model.beam_search(source, 3, o)[0]; },
      model_log_prob, 5, 2, 3);

  // width 1, alpha 0: the greedy path (a batch of two sources, decoded independently)
  Tensor sources = tensor({{4, 3, 3}, {3, 3, 0}});
  nn::BeamSearchOptions one;
  one.beam_width = 1;
  one.length_penalty = 0;
  const auto beams = model.beam_search(sources, 6, one);
  const auto greedy = model.greedy_decode(sources, 6).tokens;
  REQUIRE(beams.size() == 2);
  for (size_t b = 0; b < 2; ++b) {
    REQUIRE(beams[b].size() == 1);
    CHECK(beams[b][0].tokens == greedy[b]);
  }
}

TEST_CASE("decoding/beam_search: errors name the model; a beam width of 0 is refused") {
  manual_seed(66);
  nn::TinyTransformer tiny(tiny_transformer_options(8));
  nn::TransformerModel model(model_options(8));
  nn::Seq2Seq seq2seq(seq2seq_options());
  nn::BeamSearchOptions zero;
  zero.beam_width = 0;
  Tensor prompt = tensor({{3, 1}}), source = tensor({{3, 4}});
  check_error([&] { tiny.beam_search(prompt, 3, zero); },
              {"TinyTransformer::beam_search:", "beam_width must be >= 1, got 0"});
  check_error([&] { model.beam_search(source, 3, zero); },
              {"TransformerModel::beam_search:", "beam_width must be >= 1, got 0"});
  check_error([&] { seq2seq.beam_search(source, {2}, 3, zero); },
              {"Seq2Seq::beam_search:", "beam_width must be >= 1, got 0"});
  auto decoder = model.start_decoding(source, true);
  check_error([&] { nn::beam_search(*decoder, 3, zero); },
              {"beam_search:", "beam_width must be >= 1, got 0"});
  nn::BeamSearchOptions negative;
  negative.length_penalty = -1;
  check_error([&] { model.beam_search(source, 3, negative); },
              {"TransformerModel::beam_search:", "length_penalty", "-1"});
  nn::SamplingOptions cold;
  cold.temperature = 0;
  Generator gen(1);
  check_error([&] { tiny.sample(prompt, 3, cold, gen); },
              {"TinyTransformer::sample:", "temperature", "got 0"});
  nn::SamplingOptions too_many;
  too_many.top_k = 6;
  check_error([&] { seq2seq.sample(source, {2}, 3, too_many, gen); },
              {"Seq2Seq::sample:", "top_k", "0..5", "got 6"});
  // max_len exceeded
  check_error([&] { tiny.beam_search(prompt, 7, {}); },
              {"TinyTransformer::beam_search:", "2 prompt tokens + 7 steps exceed max_len 8"});
  check_error([&] { tiny.sample(prompt, 7, {}, gen); },
              {"TinyTransformer::sample:", "2 prompt tokens + 7 steps exceed max_len 8"});
  check_error([&] { model.greedy_decode(source, 9); },
              {"TransformerModel::greedy_decode:", "max_length", "1..max_len = 8", "got 9"});
  check_error(
      [&] {
        model.sample(zeros({1, 9}), 3, {}, gen);
      },
      {"TransformerModel::sample:", "source (1,9)", "max_len 8"});
  check_error([&] { seq2seq.beam_search(source, {2}, 0, {}); },
              {"Seq2Seq::beam_search:", "max_length must be >= 1, got 0"});
  // Seq2Seq's source is checked at each entry, which the message names (not its encoder).
  check_error(
      [&] {
        seq2seq.sample(tensor({{3, 9}}), {2}, 3, {}, gen);
      },
      {"Seq2Seq::sample: source token 9 at position 1 is outside the source vocabulary 0..5"});
  check_error([&] { seq2seq.beam_search(source, {3}, 3, {}); },
              {"Seq2Seq::beam_search: length 3 of sequence 0 is outside 1..2"});
  check_error(
      [&] {
        (void)seq2seq.start_decoding(zeros({2}), {});
      },
      {"Seq2Seq::start_decoding: source (2) must be token ids (batch, source length >= 1)"});
}

// --- the KV cache -----------------------------------------------------------------------

namespace {

// Runs two decoders side by side for `steps` steps, appending the same tokens
// (drawn at random, so no argmax tie can part them) and reordering both rows
// once, as beam search does; returns the largest difference of their logits.
double cached_against_uncached(nn::TokenDecoder& cached, nn::TokenDecoder& plain, int64_t steps,
                               int64_t vocab) {
  Generator gen(77);
  double worst = 0;
  for (int64_t step = 0; step < steps; ++step) {
    worst = std::max(worst, max_abs_diff(cached.next_logits(), plain.next_logits()));
    if (step == steps / 2) {
      std::vector<int64_t> rows;  // keep row 1 twice, drop row 0, keep the rest
      for (int64_t r = 0; r < plain.rows(); ++r) rows.push_back(r == 0 ? 1 : r);
      cached.reorder(rows);
      plain.reorder(rows);
    }
    std::vector<int64_t> tokens;
    for (int64_t r = 0; r < plain.rows(); ++r) tokens.push_back(gen.randint(0, vocab));
    cached.append(tokens);
    plain.append(tokens);
  }
  return std::max(worst, max_abs_diff(cached.next_logits(), plain.next_logits()));
}

}  // namespace

TEST_CASE(
    "decoding/kv_cache [F2.2] [F2.6]: TinyTransformer's cached generation gives the uncached "
    "logits over 34 tokens, across a reorder") {
  manual_seed(71);
  nn::TinyTransformerOptions o = tiny_transformer_options(40);
  o.vocab_size = 7;
  for (bool norm_first : {true, false}) {
    o.norm_first = norm_first;
    nn::TinyTransformer model(o);
    model.eval();
    Tensor prompt = tensor({{3, 1, 4, 1}, {5, 6, 2, 0}, {1, 1, 2, 3}});
    auto cached = model.start_decoding(prompt, /*use_cache=*/true);
    auto plain = model.start_decoding(prompt, /*use_cache=*/false);
    const double worst = cached_against_uncached(*cached, *plain, 36, 7);
    MESSAGE("norm_first " << norm_first << ": largest cached/uncached logit difference " << worst);
    CHECK(worst < (is_double ? 1e-12 : 1e-5));
    // and the tokens generate() makes with the cache (fast mode) are the uncached ones
    Tensor fast = model.generate(prompt, 30);
    ReferenceModeGuard plain_mode;
    CHECK(max_abs_diff(model.generate(prompt, 30), fast) == 0);
  }
}

TEST_CASE(
    "decoding/kv_cache [F2.2] [F2.6]: TransformerModel's cached decoder (self- and cross-"
    "attention) gives the uncached logits over 32 tokens; beam search agrees") {
  manual_seed(72);
  nn::TransformerModelOptions o = model_options(40);
  o.vocab_size = 7;
  nn::TransformerModel model(o);
  model.eval();
  Tensor source = tensor({{3, 4, 5, 6, 3}, {6, 5, 0, 0, 0}, {4, 4, 4, 3, 0}});
  auto cached = model.start_decoding(source, /*use_cache=*/true);
  auto plain = model.start_decoding(source, /*use_cache=*/false);
  const double worst = cached_against_uncached(*cached, *plain, 34, 7);
  MESSAGE("largest cached/uncached logit difference " << worst);
  CHECK(worst < (is_double ? 1e-12 : 1e-5));
  nn::BeamSearchOptions beams;
  beams.beam_width = 3;
  const auto fast = model.beam_search(source, 12, beams);
  ReferenceModeGuard plain_mode;  // no cache
  const auto reference = model.beam_search(source, 12, beams);
  REQUIRE(fast.size() == reference.size());
  for (size_t b = 0; b < fast.size(); ++b)
    for (size_t i = 0; i < fast[b].size(); ++i) {
      CHECK(fast[b][i].tokens == reference[b][i].tokens);
      CHECK(std::abs(fast[b][i].log_prob - reference[b][i].log_prob) < (is_double ? 1e-10 : 1e-4));
    }
}

TEST_CASE("decoding/kv_cache: the cache's misuse is an error naming the step and the shapes") {
  manual_seed(73);
  nn::TinyTransformer model(tiny_transformer_options(6));
  nn::KVCache cache;
  Tensor logits = model.forward(tensor({{1, 2, 3, 4}}), true, Tensor(), &cache);
  check_shape(logits, {1, 4, 5});
  CHECK(cache.length() == 4);
  check_error(
      [&] {
        model.forward(tensor({{1, 2, 3}}), true, Tensor(), &cache);
      },
      {"TinyTransformer:", "sequence length 7", "max_len 6"});
  check_error([&] { model.forward(tensor({{1}}), false, Tensor(), &cache); },
              {"TinyTransformer:", "KV cache needs the causal mask"});
  check_error(
      [&] {
        model.forward(tensor({{1}, {2}}), true, Tensor(), &cache);
      },
      {"self_attention_step:", "x (2,1,8)", "has 2 sequences", "(1,4,8)"});
  nn::MultiHeadAttention attention(8, 2);
  nn::AttentionCache cross;
  check_error(
      [&] {
        nn::cross_attention_step(attention, zeros({2, 1, 8}), zeros({3, 4, 8}), cross);
      },
      {"cross_attention_step:", "memory (3,4,8)", "batch = 2"});
  // a failed step leaves the cache as it was
  nn::AttentionCache self;
  (void)nn::self_attention_step(attention, zeros({1, 2, 8}), self);
  check_error(
      [&] {
        nn::self_attention_step(attention, zeros({1, 1, 8}), self, zeros({1, 2}));
      },
      {"MultiHeadAttention:", "attn_mask (1,2)"});
  CHECK(self.length() == 2);
  auto decoder = model.start_decoding(tensor({{1, 2, 3, 4, 1}}), true);
  decoder->append({2});
  check_error([&] { decoder->append({2}); },
              {"TinyTransformer decoding:", "6 tokens", "max_len 6"});
  check_error(
      [&] {
        decoder->append({2, 3});
      },
      {"TinyTransformer decoding:", "2 tokens", "1 rows"});
}
