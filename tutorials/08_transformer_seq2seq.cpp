// Chapter 8: the encoder-decoder Transformer [F1.1] [F1.2] [F2.6] [F2.8] [F4.8] [F4.9],
// seed 002's TransformerModel, on chapter 04's toy translation: reverse a
// sequence of digits.
//
//   source  7 3 9 1            (3 to 10 digits, padded in a batch)
//   target  <s> 1 9 3 7 </s>   (the digits in reverse order, then the end token)
//
// An encoder reads the whole source at once (self-attention, no recurrence); a
// decoder writes the target one token at a time, reading its own past tokens
// through masked self-attention and the source through cross-attention [F1.1].
// The same task as chapter 04's LSTM with additive attention, so the two can be
// compared: both are trained here, on the same data, side by side.
//
// Then the ways to decode [F4.9]: greedy, sampling (temperature, top-k) and beam
// search, and the KV cache that makes every generation step cost one position.
//
// Target: at least 98% of held-out sequences reversed exactly (greedy decoding).
// Text: docs/tutorials/08-transformer-seq2seq.md
// make debug-08 breaks in: ag::nn::TransformerDecoderLayer::forward
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <set>

#include "layers/nn.hpp"
#include "tutorials/terminal.hpp"

using namespace ag;
using namespace ag::tutorial;

namespace {

// Token ids, chapter 04's: 0 padding, 1 start, 2 end, 3..12 the digits 0..9.
constexpr int64_t kPad = 0, kBos = 1, kEos = 2, kFirstDigit = 3, kVocab = 13;
constexpr int64_t kMinLength = 3, kMaxLength = 10;
constexpr double kTargetExactMatch = 0.98;

using Sequences = std::vector<std::vector<int64_t>>;

std::string show_tokens(const std::vector<int64_t>& tokens) {
  std::string s;
  for (int64_t t : tokens) {
    if (!s.empty()) s += ' ';
    s += t == kBos ? "<s>" : t == kEos ? "</s>" : t == kPad ? "_" : std::to_string(t - kFirstDigit);
  }
  return s;
}

std::vector<int64_t> reversed(std::vector<int64_t> s) {
  std::reverse(s.begin(), s.end());
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// --- the data: chapter 04's, drawn the same way from the same seed ------------------------

Sequences make_sequences(int64_t n, Generator& gen, const std::set<std::vector<int64_t>>& exclude) {
  std::set<std::vector<int64_t>> seen = exclude;
  Sequences out;
  while (static_cast<int64_t>(out.size()) < n) {
    std::vector<int64_t> s(static_cast<size_t>(gen.randint(kMinLength, kMaxLength + 1)));
    for (int64_t& t : s) t = kFirstDigit + gen.randint(0, 10);
    if (seen.insert(s).second) out.push_back(s);
  }
  return out;
}

// A padded batch: source (B,S); target_in = <s> y_1 .. y_n and target_out =
// y_1 .. y_n </s>, both (B,n+1), padded with kPad (ignored by the loss).
struct Batch {
  Tensor source, target_in, target_out;
  std::vector<int64_t> lengths;
};

Batch make_batch(const Sequences& sequences, const std::vector<int64_t>& idx) {
  Batch b;
  int64_t S = 0;
  for (int64_t i : idx) S = std::max<int64_t>(S, sequences[i].size());
  const int64_t B = static_cast<int64_t>(idx.size()), T = S + 1;
  std::vector<real> src(B * S, kPad), tin(B * T, kPad), tout(B * T, kPad);
  for (int64_t r = 0; r < B; ++r) {
    const std::vector<int64_t>& s = sequences[idx[r]];
    const int64_t n = static_cast<int64_t>(s.size());
    b.lengths.push_back(n);
    tin[r * T] = kBos;
    for (int64_t j = 0; j < n; ++j) {
      src[r * S + j] = s[j];
      tin[r * T + j + 1] = s[n - 1 - j];
      tout[r * T + j] = s[n - 1 - j];
    }
    tout[r * T + n] = kEos;
  }
  b.source = from_vector(src, {B, S});
  b.target_in = from_vector(tin, {B, T});
  b.target_out = from_vector(tout, {B, T});
  return b;
}

// --- training: the same loop for both models ------------------------------------------

struct TrainSettings {
  int64_t steps, batch;
  double lr;
};

struct Trained {
  double seconds;              // wall-clock time of the training loop, this run
  std::vector<double> losses;  // one per step
};

// Adam on teacher-forced cross-entropy (padding ignored), random minibatches, the
// learning rate falling along a half cosine from lr to lr/20, gradients clipped
// to norm 1: chapter 04's loop. `logits` runs the model on a batch.
Trained train(nn::Module& model, const std::function<Tensor(const Batch&)>& logits,
              const Sequences& data, const TrainSettings& t, const std::string& label,
              const std::string& csv_path) {
  Generator pick(7);
  optim::Adam opt(model.parameters(), real(t.lr));
  Progress progress(label, t.steps);
  LossCsv csv(csv_path);
  model.train();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t step = 1; step <= t.steps; ++step) {
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < t.batch; ++i)
      idx.push_back(pick.randint(0, static_cast<int64_t>(data.size())));
    Batch b = make_batch(data, idx);
    const double fraction = double(step - 1) / double(t.steps);
    opt.set_lr(real(t.lr * (0.05 + 0.95 * 0.5 * (1 + std::cos(M_PI * fraction)))));
    opt.zero_grad();
    Tensor loss = nn::cross_entropy(logits(b), b.target_out, /*ignore_index=*/kPad);
    loss.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    csv.add(step, loss.item());
    progress.update(step, loss.item());
  }
  const double seconds = seconds_since(start);
  fmt::print("  loss curve: {}\n", csv.path());
  model.eval();
  return {seconds, csv.losses()};
}

// The share of sequences decoded exactly (their reversal), overall and by length.
struct ExactMatch {
  double overall = 0;
  std::vector<double> by_length;  // index = length
};

ExactMatch exact_match(const Sequences& data, const Sequences& decoded) {
  std::vector<int64_t> correct(kMaxLength + 1, 0), count(kMaxLength + 1, 0);
  int64_t total = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    const bool ok = decoded[i] == reversed(data[i]);
    correct[data[i].size()] += ok;
    count[data[i].size()] += 1;
    total += ok;
  }
  ExactMatch m;
  m.overall = double(total) / double(data.size());
  for (int64_t n = 0; n <= kMaxLength; ++n)
    m.by_length.push_back(count[n] ? double(correct[n]) / double(count[n]) : -1);
  return m;
}

// Decodes the whole set in batches of 250 with `decode` (one batch of sources
// -> one token list per source).
Sequences decode_all(const Sequences& data, const std::function<Sequences(const Batch&)>& decode) {
  Sequences out;
  for (size_t start = 0; start < data.size(); start += 250) {
    std::vector<int64_t> idx;
    for (size_t i = start; i < std::min(start + 250, data.size()); ++i) idx.push_back(int64_t(i));
    for (auto& tokens : decode(make_batch(data, idx))) out.push_back(tokens);
  }
  return out;
}

nn::TransformerModelOptions transformer_options() {
  nn::TransformerModelOptions o;
  o.vocab_size = kVocab;
  o.d_model = 32;
  o.heads = 4;
  o.num_encoder_layers = 2;
  o.num_decoder_layers = 2;
  o.d_ff = 64;
  o.max_len = kMaxLength + 1;  // the longest target with its start token
  o.dropout = 0;
  o.norm_first = true;
  o.pad_id = kPad;
  o.bos_id = kBos;
  o.eos_id = kEos;
  return o;
}

nn::Seq2SeqOptions seq2seq_options() {  // chapter 04's model
  nn::Seq2SeqOptions o;
  o.source_vocab = o.target_vocab = kVocab;
  o.embedding_dim = 16;
  o.hidden_size = 64;
  o.attention_size = 32;
  o.cell = nn::CellType::LSTM;
  o.score = nn::ScoreType::Additive;
  o.pad_id = kPad;
  o.bos_id = kBos;
  o.eos_id = kEos;
  return o;
}

// One held-out sequence: the decoded tokens and the cross-attention of the last
// decoder layer, averaged over the heads, a row per output token, a column per
// source token, the position the reversal needs in [ ].
void show_cross_attention(nn::TransformerModel& model, const std::vector<int64_t>& s) {
  Batch b = make_batch({s}, {0});
  nn::GreedyDecoding out = model.greedy_decode(b.source, kMaxLength + 1);
  const int64_t T = out.attention.size(1), S = out.attention.size(2);
  HeatMapOptions heat;
  for (int64_t j = 0; j < S; ++j) heat.col_labels.push_back(show_tokens({s[j]}));
  const std::vector<int64_t>& produced = out.tokens[0];
  for (int64_t t = 0; t < T; ++t) {
    const std::string token = t < int64_t(produced.size()) ? show_tokens({produced[t]}) : "</s>";
    heat.row_labels.push_back(fmt::format("out {:>2} = {:<4} ", t, token));
    heat.marked.push_back(t < S ? S - 1 - t : -1);
  }
  fmt::print("source {}  ->  decoded {}\n", show_tokens(s), show_tokens(produced));
  fmt::print("{}", heat_map(reshape(out.attention, {T, S}), heat));
}

}  // namespace

int main() {
  manual_seed(0);
  Generator data_gen(4);  // chapter 04's data seed: the same sequences

  section("1. The task: chapter 04's, reverse a sequence of digits");
  Sequences train_set = make_sequences(4000, data_gen, {});
  Sequences test_set = make_sequences(
      1000, data_gen, std::set<std::vector<int64_t>>(train_set.begin(), train_set.end()));
  fmt::print("{} training and {} held-out sequences (none in both), lengths {}..{}\n",
             train_set.size(), test_set.size(), kMinLength, kMaxLength);
  for (int64_t r = 0; r < 2; ++r)
    fmt::print("  source {:<22} target {}\n", show_tokens(train_set[r]),
               show_tokens(reversed(train_set[r])) + " </s>");

  section("2. The masks [F4.8]: padding on both sides, the lookahead mask on the target");
  {
    Batch b = make_batch(train_set, {0, 1});
    Tensor source_padding = reshape(nn::padding_mask(b.source, kPad), {2, b.source.size(1)});
    const int64_t T = b.target_in.size(1);
    // [F4.8] seed 004: lookahead = 1 - band_part(ones((T, T)), -1, 0); padding = (target == 0);
    // combined = maximum(padding, lookahead)
    Tensor lookahead = nn::causal_mask(T);
    Tensor target_padding = nn::padding_mask(b.target_in, kPad);     // (B,1,T)
    Tensor combined = nn::combine_masks(lookahead, target_padding);  // (B,T,T)
    fmt::print("source padding (B,S), 1 = a pad token, blocked as a key:\n{}\n", source_padding);
    HeatMapOptions view;
    view.numbers = true;
    for (int64_t t = 0; t < T; ++t)
      view.row_labels.push_back(
          fmt::format("query {:<4} ", show_tokens({int64_t(b.target_in.at({1, t}))})));
    for (int64_t t = 0; t < T; ++t)
      view.col_labels.push_back(show_tokens({int64_t(b.target_in.at({1, t}))}));
    fmt::print("target_in of sequence 1: the lookahead mask and its padding combined by max:\n{}",
               heat_map(reshape(narrow(combined, 0, 1, 1), {T, T}), view));
  }

  section("3. Seed 002's TransformerModel: embedding, nn::Transformer, fc [F2.8]");
  nn::TransformerModel transformer(transformer_options());
  std::cout << transformer << "\n";

  section("4. Training it, teacher forcing, Adam and cross-entropy");
  const TrainSettings transformer_settings{400, 32, 5e-3};  // chapter 04's steps and batch
  const Trained transformer_run = train(
      transformer, [&](const Batch& b) { return transformer.forward(b.source, b.target_in); },
      train_set, transformer_settings, "transformer", "build/tutorials/08_transformer_loss.csv");
  fmt::print("{}", loss_chart(transformer_run.losses,
                              "training loss (cross-entropy per token, one point per batch)"));

  section("5. Held-out sequences, greedy decoding");
  auto greedy = [&](const Batch& b) {
    return transformer.greedy_decode(b.source, kMaxLength + 1).tokens;
  };
  const ExactMatch transformer_match = exact_match(test_set, decode_all(test_set, greedy));
  fmt::print("exact match on {} held-out sequences: {:.1f}%\n", test_set.size(),
             100 * transformer_match.overall);

  section("6. Side by side with chapter 04's LSTM encoder-decoder with additive attention");
  manual_seed(0);
  nn::Seq2Seq lstm(seq2seq_options());
  const TrainSettings lstm_settings{400, 32, 1e-2};  // chapter 04's settings
  const Trained lstm_run = train(
      lstm, [&](const Batch& b) { return lstm.forward(b.source, b.lengths, b.target_in).logits; },
      train_set, lstm_settings, "lstm", "build/tutorials/08_lstm_loss.csv");
  const ExactMatch lstm_match =
      exact_match(test_set, decode_all(test_set, [&](const Batch& b) {
                    return lstm.greedy_decode(b.source, b.lengths, kMaxLength + 1).tokens;
                  }));
  fmt::print("{:<28} {:>14} {:>14}\n", "", "Transformer", "LSTM (ch. 04)");
  fmt::print("{:<28} {:>14} {:>14}\n", "parameters", transformer.num_parameters(),
             lstm.num_parameters());
  fmt::print("{:<28} {:>14} {:>14}\n", "training steps x batch",
             fmt::format("{} x {}", transformer_settings.steps, transformer_settings.batch),
             fmt::format("{} x {}", lstm_settings.steps, lstm_settings.batch));
  fmt::print("{:<28} {:>14} {:>14}\n", "learning rate (Adam, cosine)", transformer_settings.lr,
             lstm_settings.lr);
  fmt::print("{:<28} {:>13.1f}s {:>13.1f}s\n", "training time (this run)", transformer_run.seconds,
             lstm_run.seconds);
  fmt::print("{:<28} {:>13.2f}ms {:>13.2f}ms\n", "time per step",
             1e3 * transformer_run.seconds / double(transformer_settings.steps),
             1e3 * lstm_run.seconds / double(lstm_settings.steps));
  fmt::print("{:<28} {:>14.4f} {:>14.4f}\n", "final training loss", transformer_run.losses.back(),
             lstm_run.losses.back());
  for (int64_t n = kMinLength; n <= kMaxLength; ++n)
    fmt::print("{:<28} {:>13.1f}% {:>13.1f}%\n", fmt::format("exact match, length {}", n),
               100 * transformer_match.by_length[n], 100 * lstm_match.by_length[n]);
  fmt::print("{:<28} {:>13.1f}% {:>13.1f}%\n", "exact match, all", 100 * transformer_match.overall,
             100 * lstm_match.overall);

  section("7. Where the decoder reads: cross-attention [F1.1] [F2.6]");
  for (size_t wanted : {10, 6})  // the first held-out sequence of each length
    for (const std::vector<int64_t>& s : test_set)
      if (s.size() == wanted) {
        show_cross_attention(transformer, s);
        break;
      }

  section("8. Greedy, sampling and beam search [F4.9]");
  {
    Sequences first(test_set.begin(), test_set.begin() + 250);
    Generator gen(8);
    nn::SamplingOptions warm{1.0, 0}, hot{2.0, 0}, top3{2.0, 3};
    nn::BeamSearchOptions beams{4, 1.0};
    auto sampled = [&](const nn::SamplingOptions& o) {
      return exact_match(first, decode_all(first,
                                           [&](const Batch& b) {
                                             return transformer.sample(b.source, kMaxLength + 1, o,
                                                                       gen);
                                           }))
          .overall;
    };
    const double greedy_match = exact_match(first, decode_all(first, greedy)).overall;
    const double beam_match =
        exact_match(first, decode_all(first,
                                      [&](const Batch& b) {
                                        Sequences best;
                                        for (const auto& found : transformer.beam_search(
                                                 b.source, kMaxLength + 1, beams))
                                          best.push_back(found.front().tokens);
                                        return best;
                                      }))
            .overall;
    fmt::print("exact match on the first {} held-out sequences:\n", first.size());
    fmt::print("  greedy                                 {:6.1f}%\n", 100 * greedy_match);
    fmt::print("  sampling, temperature 1                {:6.1f}%\n", 100 * sampled(warm));
    fmt::print("  sampling, temperature 2                {:6.1f}%\n", 100 * sampled(hot));
    fmt::print("  sampling, temperature 2, top_k 3       {:6.1f}%\n", 100 * sampled(top3));
    fmt::print("  beam search, width 4, length penalty 1 {:6.1f}%\n", 100 * beam_match);

    const std::vector<int64_t> s = *std::find_if(test_set.begin(), test_set.end(),
                                                 [](const auto& x) { return x.size() == 7; });
    Batch one = make_batch({s}, {0});
    fmt::print("\nsource {}: five samples at temperature 2\n", show_tokens(s));
    for (int i = 0; i < 5; ++i)
      fmt::print("  {}\n",
                 show_tokens(transformer.sample(one.source, kMaxLength + 1, hot, gen)[0]));
    fmt::print("its four beams (log P, and log P / length):\n");
    const auto found = transformer.beam_search(one.source, kMaxLength + 1, beams);
    for (const nn::Beam& beam : found[0])
      fmt::print("  {:<24} {:9.4f} {:9.4f}\n",
                 show_tokens(beam.tokens) + (beam.ended ? " </s>" : ""), beam.log_prob, beam.score);
  }

  section("9. The KV cache: every step one new position [F2.2]");
  bool same_tokens = false;
  {
    auto decode_with = [&](bool use_cache) {
      return decode_all(test_set, [&](const Batch& b) {
        auto decoder = transformer.start_decoding(b.source, use_cache);
        return nn::greedy_search(*decoder, kMaxLength + 1, kEos);
      });
    };
    // Each way twice; the faster of the two is the figure (the machine may be busy).
    double with_cache = 1e9, without_cache = 1e9;
    Sequences cached, uncached;
    for (int repeat = 0; repeat < 2; ++repeat) {
      auto start = std::chrono::steady_clock::now();
      uncached = decode_with(false);
      without_cache = std::min(without_cache, seconds_since(start));
      start = std::chrono::steady_clock::now();
      cached = decode_with(true);
      with_cache = std::min(with_cache, seconds_since(start));
    }
    fmt::print("greedy decoding of the {} held-out sources, up to {} tokens each:\n",
               test_set.size(), kMaxLength + 1);
    fmt::print("  without the cache (the whole target again at every step) {:7.1f} ms\n",
               1e3 * without_cache);
    fmt::print("  with the KV cache (one new position per step)             {:7.1f} ms\n",
               1e3 * with_cache);
    same_tokens = cached == uncached;
    fmt::print("  speedup {:.2f}x; the same tokens: {}\n", without_cache / with_cache,
               same_tokens ? "yes" : "NO");
  }

  const bool ok = transformer_match.overall >= kTargetExactMatch && same_tokens;
  fmt::print("\nheld-out exact match {:.1f}% (target: >= {:.0f}%) {}\n",
             100 * transformer_match.overall, 100 * kTargetExactMatch, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
