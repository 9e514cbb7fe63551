// Chapter 6: a tiny Transformer [F2.8, F3.1, F3.3, F3.6, F4.8], decoder-only,
// that learns to reverse a sequence of digits, in the spirit of the Annotated
// Transformer's copy task.
//
// Each example is L digits, a separator, then the same digits reversed:
//
//   3 1 4 1 5 9 | 9 5 1 4 1 3
//
// The model reads left to right and predicts each next token; with the causal
// mask [F4.8] position t sees positions 0..t only, so one forward pass trains
// every position at once (teacher forcing) without any position peeking at
// its answer. Only the answers after the separator count in the loss.
// At test time it is given the digits and the separator and generates the L
// answers greedily, one token at a time, each fed back in.
//
//   tokens (B,T) --Embedding [F2.8] + PE [F3.1]--> 2 encoder layers with the causal
//   mask (multi-head attention, FFN [F3.3], residuals, LayerNorm [F3.6])
//   --LayerNorm, Linear--> logits (B,T,vocab); cross-entropy, Adam [F2.8]
//
// Target: at least 98% of held-out sequences reversed exactly (every digit right).
// Text: docs/tutorials/06-tiny-transformer.md
// make debug-06 breaks in: ag::nn::TransformerEncoderLayer::forward
#include <cmath>
#include <iostream>

#include "layers/nn.hpp"
#include "tutorials/terminal.hpp"

using namespace ag;
using namespace ag::tutorial;

namespace {

constexpr int64_t L = 6;           // digits per sequence
constexpr int64_t kDigits = 10;    // 0..9
constexpr int64_t kSep = kDigits;  // the separator token
constexpr int64_t kVocab = kDigits + 1;
constexpr int64_t kFull = 2 * L + 1;  // digits, separator, reversed digits
constexpr int64_t kIgnore = -100;     // cross_entropy's ignore_index
constexpr double kTarget = 0.98;

std::string token_str(int64_t t) { return t == kSep ? "|" : std::to_string(t); }

struct Examples {
  Tensor inputs;                           // (N, 2L): the full sequence but its last token
  Tensor targets;                          // (N, 2L): the next token, or -100 where not scored
  std::vector<std::vector<int64_t>> full;  // (N, 2L+1) as lists
};

Examples make_examples(int64_t n, Generator& gen) {
  Examples e;
  std::vector<real> inputs, targets;
  for (int64_t b = 0; b < n; ++b) {
    std::vector<int64_t> seq;
    for (int64_t i = 0; i < L; ++i) seq.push_back(gen.randint(0, kDigits));
    seq.push_back(kSep);
    for (int64_t i = L - 1; i >= 0; --i) seq.push_back(seq[size_t(i)]);
    for (int64_t t = 0; t < kFull - 1; ++t) {
      inputs.push_back(real(seq[size_t(t)]));
      // position t predicts token t+1; only the answers (after the separator) count
      targets.push_back(real(t >= L ? seq[size_t(t + 1)] : kIgnore));
    }
    e.full.push_back(seq);
  }
  e.inputs = from_vector(inputs, {n, kFull - 1});
  e.targets = from_vector(targets, {n, kFull - 1});
  return e;
}

// The share of sequences whose L generated answers are all right, and the
// generated sequences (N, 2L+1).
std::pair<double, Tensor> exact_match(nn::TinyTransformer& model, const Examples& data) {
  const int64_t n = data.inputs.size(0);
  Tensor prompt = narrow(data.inputs, 1, 0, L + 1);  // the digits and the separator
  Tensor generated = model.generate(prompt, L);      // greedy, (N, 2L+1)
  int64_t correct = 0;
  for (int64_t b = 0; b < n; ++b) {
    bool all = true;
    for (int64_t t = L + 1; t < kFull; ++t)
      all = all && int64_t(generated.at({b, t})) == data.full[size_t(b)][size_t(t)];
    correct += all;
  }
  return {double(correct) / double(n), generated};
}

void show_sequence(const std::string& label, const Tensor& tokens, int64_t row) {
  std::string s;
  for (int64_t t = 0; t < tokens.size(1); ++t) s += token_str(int64_t(tokens.at({row, t}))) + " ";
  fmt::print("{}{}\n", label, s);
}

}  // namespace

int main() {
  manual_seed(0);
  Generator data_gen(3);

  section("1. The causal mask [F4.8]");
  // [F4.8] seed 004: look_ahead_mask = 1 - band_part(ones((L, L)), -1, 0):
  // 1 above the diagonal, where key j comes after query i.
  Tensor mask = nn::causal_mask(6);
  HeatMapOptions mask_view;
  mask_view.numbers = true;
  for (int64_t i = 0; i < 6; ++i) mask_view.row_labels.push_back(fmt::format("query {} ", i));
  fmt::print("causal_mask(6), 1 = blocked (columns: keys):\n{}", heat_map(mask, mask_view));
  // What it does to attention: blocked scores become -inf, their weights exactly 0.
  Generator demo_gen(1);
  Tensor x = randn({6, 4}, demo_gen);
  nn::AttentionOutput masked = nn::scaled_dot_product_attention(x, x, x, mask);
  fmt::print(
      "softmax(x x^T / 2 + mask) for random x (6,4): each query spreads its weight over "
      "keys 0..i only\n{}",
      heat_map(masked.weights, mask_view));

  section("2. The positional encoding [F3.1]");
  Tensor pe = nn::sinusoidal_encoding(16, 32);
  HeatMapOptions pe_view;
  pe_view.scale = true;
  for (int64_t p = 0; p < 16; ++p) pe_view.row_labels.push_back(fmt::format("pos {:>2} ", p));
  fmt::print(
      "PE (16 positions, features 0..15 of 32): sin in even columns, cos in odd ones; the\n"
      "first pairs turn fast, later ones slowly, so every position gets its own pattern\n{}",
      heat_map(narrow(pe, 1, 0, 16), pe_view));

  section("3. The task: reverse L = 6 digits after the separator");
  Examples train = make_examples(10000, data_gen);
  Examples test = make_examples(1000, data_gen);
  for (int64_t b = 0; b < 2; ++b) {
    std::string s;
    for (int64_t t : train.full[size_t(b)]) s += token_str(t) + " ";
    fmt::print("example {}: {}\n", b, s);
  }
  fmt::print(
      "inputs {} and targets {}: position t predicts token t+1; positions before the\n"
      "separator have target {} (ignored), so only the {} answers are scored\n",
      shape_str(train.inputs.shape()), shape_str(train.targets.shape()), kIgnore, L);
  show_sequence("inputs  of example 0: ", train.inputs, 0);
  std::string t0;
  for (int64_t t = 0; t < kFull - 1; ++t) {
    const int64_t y = int64_t(train.targets.at({0, t}));
    t0 += (y == kIgnore ? std::string(".") : token_str(y)) + " ";
  }
  fmt::print("targets of example 0: {}\n", t0);

  section("4. The model, trained with Adam and cross-entropy [F2.8]");
  nn::TinyTransformerOptions opt;
  opt.vocab_size = kVocab;
  opt.d_model = 32;
  opt.heads = 4;
  opt.d_ff = 64;
  opt.num_layers = 2;
  opt.max_len = kFull;
  nn::TinyTransformer model(opt);
  std::cout << model << "\n";
  // [F2.8] Adam(lr 0.001) and cross-entropy, the seed's recipe
  optim::Adam adam(model.parameters(), /*lr=*/1e-3);
  const int64_t steps = 800, batch = 64;
  Generator batch_gen(5);
  Progress progress("train", steps);
  LossCsv csv("build/tutorials/06_tiny_transformer_loss.csv");
  for (int64_t step = 1; step <= steps; ++step) {
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < batch; ++i) idx.push_back(batch_gen.randint(0, train.inputs.size(0)));
    adam.zero_grad();
    Tensor logits = model.forward(index_select(train.inputs, 0, idx));  // causal: (B,2L,vocab)
    Tensor loss = nn::cross_entropy(logits, index_select(train.targets, 0, idx), kIgnore);
    loss.backward();
    adam.step();
    csv.add(step, loss.item());
    progress.update(step, loss.item());
  }
  fmt::print("  loss curve: {}\n", csv.save());
  fmt::print("{}",
             loss_chart(csv.losses(),
                        "training loss (cross-entropy over the answers, one point per batch)"));

  section("5. Greedy generation on held-out sequences");
  model.eval();
  NoGradGuard no_grad;
  // One sequence, step by step: each generated token is fed back in.
  Tensor prompt = narrow(narrow(test.inputs, 0, 0, 1), 1, 0, L + 1);
  Tensor growing = prompt;
  show_sequence("prompt:    ", growing, 0);
  for (int64_t s = 0; s < L; ++s) {
    growing = model.generate(growing, 1);
    show_sequence(fmt::format("step {}:    ", s + 1), growing, 0);
  }
  auto [match, generated] = exact_match(model, test);
  for (int64_t b = 1; b < 4; ++b) show_sequence(fmt::format("held-out {}: ", b), generated, b);

  // Which head reverses? For each layer and head, the mean weight that the
  // query at position L+k (it predicts answer k, the digit at L-1-k) puts on
  // the key at L-1-k, over the held-out prompts.
  (void)model.forward(test.inputs);
  int64_t best_layer = 0, best_head = 0;
  double best = -1;
  for (int64_t l = 0; l < opt.num_layers; ++l) {
    const Tensor& w = model.layers->layers[size_t(l)]->attention_weights;  // (N,h,2L,2L)
    for (int64_t h = 0; h < opt.heads; ++h) {
      double total = 0;
      for (int64_t b = 0; b < w.size(0); ++b)
        for (int64_t k = 0; k < L; ++k) total += w.at({b, h, L + k, L - 1 - k});
      const double mean_weight = total / double(w.size(0) * L);
      fmt::print("layer {} head {}: mean weight on the digit to copy {:.2f}\n", l, h, mean_weight);
      if (mean_weight > best) best = mean_weight, best_layer = l, best_head = h;
    }
  }
  const Tensor& w = model.layers->layers[size_t(best_layer)]->attention_weights;
  Tensor head = reshape(narrow(narrow(w, 0, 0, 1), 1, best_head, 1), {kFull - 1, kFull - 1});
  HeatMapOptions view;
  for (int64_t t = 0; t < kFull - 1; ++t) {
    const std::string tok = token_str(int64_t(test.inputs.at({0, t})));
    view.row_labels.push_back(fmt::format("{:>2} {} ", t, tok));
    view.col_labels.push_back(tok);
  }
  fmt::print(
      "\nlayer {} head {} on held-out sequence 0 (rows: queries, columns: keys); the\n"
      "answers look back across the separator at their mirror image, and nothing\n"
      "lies above the diagonal (the causal mask):\n{}",
      best_layer, best_head, heat_map(head, view));

  save_model(model, "build/tutorials/06_model.safetensors");

  const bool ok = match >= kTarget;
  fmt::print("\nexact match on {} held-out sequences {:.1f}% (target: >= {:.0f}%) {}\n",
             test.inputs.size(0), 100 * match, 100 * kTarget, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
