// Chapter 4: an RNN encoder-decoder with attention [F0.5]-[F0.7] [F1.2] [F1.4] [F1.5]
// [F1.7] [F1.9] [F4.1]-[F4.9], on a toy translation task: reverse a sequence of
// digits.
//
//   source  7 3 9 1            (3 to 10 digits, padded in a batch)
//   target  <s> 1 9 3 7 </s>   (the digits in reverse order, then the end token)
//
// The decoder must output the last source digit first, the first one last:
// at output step t the one source position that matters is S-1-t. Attention
// learns to look exactly there, and its weights draw the anti-diagonal. The
// same encoder-decoder without attention has to carry the whole source in
// one state vector; on longer sequences that bottleneck breaks it.
//
// Target: at least 98% of held-out sequences reversed exactly (every token).
// Text: docs/tutorials/04-seq2seq-attention.md
// make debug-04 breaks in: ag::nn::AdditiveScore::score
#include <algorithm>
#include <cmath>
#include <iostream>
#include <set>

#include "layers/nn.hpp"
#include "tutorials/terminal.hpp"

using namespace ag;
using namespace ag::tutorial;

namespace {

// Token ids: 0 padding, 1 start, 2 end, 3..12 the digits 0..9.
constexpr int64_t kPad = 0, kBos = 1, kEos = 2, kFirstDigit = 3, kVocab = 13;
constexpr double kTargetExactMatch = 0.98;

std::string show_tokens(const std::vector<int64_t>& tokens) {
  std::string s;
  for (int64_t t : tokens) {
    if (!s.empty()) s += ' ';
    s += t == kBos ? "<s>" : t == kEos ? "</s>" : t == kPad ? "_" : std::to_string(t - kFirstDigit);
  }
  return s;
}

// --- the data ------------------------------------------------------------------------

// Digit sequences of random lengths min_length..max_length, none repeated;
// `exclude` holds sequences that must not appear (the training set, when
// making the held-out set).
std::vector<std::vector<int64_t>> make_sequences(int64_t n, int64_t min_length, int64_t max_length,
                                                 Generator& gen,
                                                 const std::set<std::vector<int64_t>>& exclude) {
  std::set<std::vector<int64_t>> seen = exclude;
  std::vector<std::vector<int64_t>> out;
  while (static_cast<int64_t>(out.size()) < n) {
    std::vector<int64_t> s(static_cast<size_t>(gen.randint(min_length, max_length + 1)));
    for (int64_t& t : s) t = kFirstDigit + gen.randint(0, 10);
    if (seen.insert(s).second) out.push_back(s);
  }
  return out;
}

// A padded batch: source (B,S), and the target shifted right for teacher
// forcing (<s> y_1 .. y_n) and the tokens to predict (y_1 .. y_n </s>), both
// (B,n+1), padded with kPad (ignored by the loss).
struct Batch {
  Tensor source, target_in, target_out;
  std::vector<int64_t> lengths;
};

Batch make_batch(const std::vector<std::vector<int64_t>>& sequences,
                 const std::vector<int64_t>& idx) {
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
      tin[r * T + j + 1] = s[n - 1 - j];  // the reversal
      tout[r * T + j] = s[n - 1 - j];
    }
    tout[r * T + n] = kEos;
  }
  b.source = from_vector(src, {B, S});
  b.target_in = from_vector(tin, {B, T});
  b.target_out = from_vector(tout, {B, T});
  return b;
}

std::vector<int64_t> reversed(std::vector<int64_t> s) {
  std::reverse(s.begin(), s.end());
  return s;
}

// --- training and evaluation ------------------------------------------------------------

struct TrainSettings {
  int64_t steps = 400, batch = 32;
  real lr = 0.01;
};

// Adam on teacher-forced cross-entropy (padding ignored), minibatches drawn at random from the
// training set, gradients clipped to norm 1 (an RNN's gradients can spike).
std::vector<double> train(nn::Seq2Seq& model, const std::vector<std::vector<int64_t>>& data,
                          const TrainSettings& settings, const std::string& label,
                          const std::string& csv_path) {
  Generator pick(7);
  optim::Adam opt(model.parameters(), settings.lr);
  // The learning rate falls along a half cosine from lr to lr/20: large steps
  // early, small ones to settle at the end.
  optim::CosineAnnealingLR schedule(opt, /*T_max=*/settings.steps, /*eta_min=*/settings.lr / 20);
  Progress progress(label, settings.steps);
  LossCsv csv(csv_path);
  model.train();
  for (int64_t step = 1; step <= settings.steps; ++step) {
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < settings.batch; ++i)
      idx.push_back(pick.randint(0, static_cast<int64_t>(data.size())));
    Batch b = make_batch(data, idx);
    opt.zero_grad();
    nn::Seq2SeqOutput out = model.forward(b.source, b.lengths, b.target_in);
    Tensor loss = nn::cross_entropy(out.logits, b.target_out, /*ignore_index=*/kPad);
    loss.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    schedule.step();  // the lr of the next step
    csv.add(step, loss.item());
    progress.update(step, loss.item());
  }
  fmt::print("  loss curve: {}\n", csv.save());
  return csv.losses();
}

// The fraction of sequences whose greedy decoding is exactly their reversal,
// overall and by source length.
struct ExactMatch {
  double overall = 0;
  std::vector<double> by_length;  // index = length
};

ExactMatch exact_match(nn::Seq2Seq& model, const std::vector<std::vector<int64_t>>& data,
                       int64_t max_length) {
  model.eval();
  std::vector<int64_t> correct(max_length + 1, 0), count(max_length + 1, 0);
  int64_t total_correct = 0;
  const int64_t chunk = 250;
  for (int64_t start = 0; start < static_cast<int64_t>(data.size()); start += chunk) {
    std::vector<int64_t> idx;
    for (int64_t i = start; i < std::min<int64_t>(start + chunk, data.size()); ++i)
      idx.push_back(i);
    Batch b = make_batch(data, idx);
    nn::GreedyDecoding out = model.greedy_decode(b.source, b.lengths, max_length + 1);
    for (size_t r = 0; r < idx.size(); ++r) {
      const std::vector<int64_t>& s = data[idx[r]];
      const bool ok = out.tokens[r] == reversed(s);
      correct[s.size()] += ok;
      count[s.size()] += 1;
      total_correct += ok;
    }
  }
  ExactMatch m;
  m.overall = double(total_correct) / double(data.size());
  for (int64_t n = 0; n <= max_length; ++n)
    m.by_length.push_back(count[n] ? double(correct[n]) / double(count[n]) : -1);
  return m;
}

// The attention matrix of one held-out sequence: a row per output token, a
// column per source token, the source position the reversal needs in [ ].
void show_attention(nn::Seq2Seq& model, const std::vector<int64_t>& s) {
  Batch b = make_batch({s}, {0});
  nn::GreedyDecoding out = model.greedy_decode(b.source, b.lengths, s.size() + 1);
  const int64_t T = out.attention.size(1), S = out.attention.size(2);
  HeatMapOptions heat;
  for (int64_t j = 0; j < S; ++j) heat.col_labels.push_back(show_tokens({s[j]}));
  std::vector<int64_t> produced = out.tokens[0];
  for (int64_t t = 0; t < T; ++t) {
    const std::string token = t < int64_t(produced.size()) ? show_tokens({produced[t]}) : "</s>";
    heat.row_labels.push_back(fmt::format("out {:>2} = {:<4} ", t, token));
    heat.marked.push_back(t < S ? S - 1 - t : -1);
  }
  fmt::print("source {}  ->  decoded {}\n", show_tokens(s), show_tokens(produced));
  fmt::print("{}", heat_map(reshape(out.attention, {T, S}), heat));
}

// Seed 000's attention over RNN states, with three sequences of lengths 5, 3
// and 4 padded to 5: the states, one score per state, the weights and the
// context added back to every state.
void show_rnn_attention() {
  NoGradGuard no_grad;
  Generator gen(12);
  nn::SequenceAttention layer(4, 8);
  Tensor x = randn({3, 5, 4}, gen).set_name("x");
  // [F0.5] h_t = tanh(W_hh h_{t-1} + W_xh x_t + b); [F0.6] a = softmax_t(W_e h_t + b_e);
  // [F0.7] h_t + sum_i a_i h_i
  nn::SequenceAttentionOutput out = layer.forward(x, {5, 3, 4});
  fmt::print("x {} -> states h {} -> weights a {} -> context {} -> h_t + context {}\n",
             shape_str(x.shape()), shape_str(out.states.shape()), shape_str(out.weights.shape()),
             shape_str(out.context.shape()), shape_str(out.output.shape()));
  fmt::print("weights (lengths 5, 3, 4; padding gets 0):\n{}\n", out.weights);
}

// The three scores on one query and four keys, then what the weights become
// with the seed's double softmax, with hard attention and with a local window.
void show_scores() {
  NoGradGuard no_grad;  // a look at the numbers: nothing to train
  Generator gen(11);
  const int64_t H = 4;
  Tensor query = randn({1, H}, gen).set_name("s_t");  // a decoder state (B=1)
  Tensor keys = randn({1, 4, H}, gen).set_name("h");  // four encoder states
  nn::DotScore dot;
  nn::GeneralScore general(H, H, 3);
  nn::AdditiveScore additive(H, H, 3);
  // [F1.4] dot: e_t(j) = s_t^T h_j
  // [F4.2] [F4.4] [F4.5] general: e_t(j) = (W_hq s_t)^T (W_k h_j)
  // [F1.5] additive (Bahdanau): e_t(j) = v^T tanh(W_q s_t + W_k h_j)
  for (nn::AttentionScore* score : std::vector<nn::AttentionScore*>{&dot, &general, &additive}) {
    const Tensor e = score->score(query, score->project_keys(keys));
    const nn::AttentionOutput out = score->forward(query, keys);
    fmt::print("{:<14} e = {}\n{:<14} a = {}  context {}\n", score->type_name(), e, "", out.weights,
               shape_str(out.context.shape()));
  }
  // [F1.5] erratum: the seed writes softmax(sigma(W_q Q + W_k K + W_v V)). The
  // sum inside keeps A numbers per position, (1,4,3) here; Bahdanau's v^T makes
  // one score of them. The seed's Keras code instead takes a dot product of two
  // tanh projections: a multiplicative score, bounded by A, not an additive one.
  const Tensor inside =
      tanh(unsqueeze(additive.query_layer->forward(query), 1) + additive.project_keys(keys));
  const Tensor keras = squeeze(matmul(tanh(additive.project_keys(keys)),
                                      unsqueeze(tanh(additive.query_layer->forward(query)), 2)),
                               2);
  fmt::print("tanh(W_q s + W_k h_j) {}: {} numbers per position; v^T tanh(.) {}\n",
             shape_str(inside.shape()), inside.size(2),
             shape_str(squeeze(additive.weight_layer->forward(inside), 2).shape()));
  fmt::print("seed's Keras score tanh(W_q s)^T tanh(W_k h_j) = {}  (not Bahdanau's)\n", keras);
  const Tensor e = dot.score(query, keys);
  // [F4.6] one softmax, and the seed's softmax of a softmax
  fmt::print("softmax(e)            {}\n", nn::attention_weights(e));
  fmt::print("softmax(softmax(e))   {}   <- the seed's formula: flattened toward 1/4\n",
             nn::double_softmax(e));
  fmt::print("softmax(softmax(e)) of e = (1000, 0, 0, 0): {}   ceiling e/(e+3) = {:.4f}\n",
             nn::double_softmax(tensor({{1000, 0, 0, 0}})), std::exp(1.0) / (std::exp(1.0) + 3));
  // [F1.7] hard attention: one-hot at the best score
  fmt::print("hard attention        {}\n", nn::hard_attention(e, keys).weights);
  // [F4.7] local attention: only positions within 1 of position 2
  fmt::print("local window 2 +- 1   {}\n",
             nn::attention_weights(e, nn::local_window_mask({2}, 1, 4)));
  // [F4.8] padding: a source of length 2 in a batch padded to 4
  fmt::print("length 2 of 4         {}\n",
             nn::attention_weights(e, nn::padding_mask(std::vector<int64_t>{2}, 4)));
}

nn::Seq2SeqOptions options_for(nn::ScoreType score) {
  nn::Seq2SeqOptions o;
  o.source_vocab = kVocab;
  o.target_vocab = kVocab;
  o.embedding_dim = 16;
  o.hidden_size = 64;
  o.attention_size = 32;
  o.cell = nn::CellType::LSTM;
  o.score = score;
  o.pad_id = kPad;
  o.bos_id = kBos;
  o.eos_id = kEos;
  return o;
}

}  // namespace

int main() {
  manual_seed(0);
  Generator data_gen(4);

  section("1. The task: reverse a sequence of digits");
  const int64_t min_len = 3, max_len = 10;
  std::vector<std::vector<int64_t>> train_set =
      make_sequences(4000, min_len, max_len, data_gen, {});
  std::set<std::vector<int64_t>> train_seen(train_set.begin(), train_set.end());
  std::vector<std::vector<int64_t>> test_set =
      make_sequences(1000, min_len, max_len, data_gen, train_seen);
  fmt::print("{} training and {} held-out sequences (none in both), lengths {}..{}\n",
             train_set.size(), test_set.size(), min_len, max_len);
  Batch example = make_batch(train_set, {0, 1, 2});
  for (int64_t r = 0; r < 3; ++r)
    fmt::print("  source {:<22} target_in {:<26} target_out {}\n", show_tokens(train_set[r]),
               show_tokens(to_indices(reshape(narrow(example.target_in, 0, r, 1), {-1}), "ids")),
               show_tokens(to_indices(reshape(narrow(example.target_out, 0, r, 1), {-1}), "ids")));

  section("2. Recurrent states, and seed 000's attention over them");
  show_rnn_attention();
  manual_seed(0);  // what follows draws the same weights whether or not this section ran

  section("3. Three ways to score a source position, and what the weights become");
  show_scores();

  // Another score here (Dot, General) changes the whole chapter, its title included.
  const nn::Seq2SeqOptions options = options_for(nn::ScoreType::Additive);
  section(fmt::format("4. Seq2Seq with {} attention, trained with teacher forcing",
                      nn::to_string(options.score)));
  nn::Seq2Seq model(options);
  std::cout << model << "\n";
  TrainSettings settings;
  std::vector<double> losses =
      train(model, train_set, settings, "attend", "build/tutorials/04_attention_loss.csv");
  fmt::print("{}",
             loss_chart(losses, "training loss (cross-entropy per token, one point per batch)"));

  section("5. Held-out sequences, greedy decoding");
  ExactMatch attention_match = exact_match(model, test_set, max_len);
  fmt::print("exact match on held-out sequences: {:.1f}%\n", 100 * attention_match.overall);
  save_model(model, "build/tutorials/04_model.safetensors");
  // [F1.9] [F4.3] what the fed-back context c_{t-1} carries: decode the same
  // trained model with zeros in its place
  model.options.input_feeding = false;
  const double without_feeding = exact_match(model, test_set, max_len).overall;
  model.options.input_feeding = true;
  fmt::print("the same model decoded with c_(t-1) replaced by zeros in its input: {:.1f}%\n",
             100 * without_feeding);

  section("6. Where the decoder looks: the attention matrix a_t(j)");
  for (size_t wanted : {10, 7, 4})  // the first held-out sequence of each of three lengths
    for (const std::vector<int64_t>& s : test_set)
      if (s.size() == wanted) {
        show_attention(model, s);
        break;
      }

  section("7. The same encoder-decoder without attention: the source in one vector");
  nn::Seq2Seq plain(options_for(nn::ScoreType::None));
  train(plain, train_set, settings, "plain", "build/tutorials/04_no_attention_loss.csv");
  ExactMatch plain_match = exact_match(plain, test_set, max_len);
  fmt::print("{:>8} {:>12} {:>12}\n", "length", "attention", "none");
  for (int64_t n = min_len; n <= max_len; ++n)
    fmt::print("{:>8} {:>11.1f}% {:>11.1f}%\n", n, 100 * attention_match.by_length[n],
               100 * plain_match.by_length[n]);
  fmt::print("{:>8} {:>11.1f}% {:>11.1f}%\n", "all", 100 * attention_match.overall,
             100 * plain_match.overall);

  section("8. Seed 004's setting: two LSTM layers, dropout 0.5 between them");
  // Encoder and decoder each stack two layers, with dropout 0.5 on what the
  // first passes to the second (seed 004: StackedRNNCells, num_layers = 2,
  // dropout_rate = 0.5). Layers of 32 instead of 64 keep this run short.
  nn::Seq2SeqOptions two_layers = options_for(nn::ScoreType::Additive);
  two_layers.num_layers = 2;
  two_layers.dropout = 0.5;
  two_layers.hidden_size = 32;
  nn::Seq2Seq stacked(two_layers);
  train(stacked, train_set, settings, "2 layers", "build/tutorials/04_two_layers_loss.csv");
  fmt::print("2 layers of 32, dropout 0.5 ({} parameters): held-out exact match {:.1f}%\n",
             stacked.num_parameters(), 100 * exact_match(stacked, test_set, max_len).overall);

  const bool ok = attention_match.overall >= kTargetExactMatch;
  fmt::print("\nheld-out exact match {:.1f}% (target: >= {:.0f}%) {}\n",
             100 * attention_match.overall, 100 * kTargetExactMatch, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
