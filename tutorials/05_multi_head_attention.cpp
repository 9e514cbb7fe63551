// Chapter 5: multi-head self-attention [F0.8-F0.10, F2.6, F3.1, F3.2], after
// the scaled dot-product attention it is made of [F1.1, F1.6, F1.8, F2.7].
//
// The task: each sequence holds T random digits; at every position the model
// must name BOTH neighbours, the digit on the left and the digit on the right
// (or "edge" past the ends). Nothing of that is at the position itself: the
// model has to look elsewhere, and at two different places at once.
//
//   tokens (B,T) --Embedding + PE--> x (B,T,d) --x + MultiHeadAttention(x)--> h
//                --LayerNorm, Linear--> logits (B,T,C),  C = (V+1)^2 (left, right) pairs
//
// One head can look at both neighbours only by averaging them, and an average
// does not say which digit was on which side; two heads can each take one side.
// The chapter trains both and shows each head's weights as heat maps.
//
// Target: at least 95% per-token accuracy on held-out sequences (2 heads).
// Text: docs/tutorials/05-multi-head-attention.md
// make debug-05 breaks in: multi_head_attention.cpp:ag::nn::MultiHeadAttention::forward
#include <cmath>
#include <iostream>

#include "layers/nn.hpp"
#include "tutorials/terminal.hpp"

using namespace ag;
using namespace ag::tutorial;

namespace {

constexpr int64_t T = 8;                  // sequence length
constexpr int64_t V = 6;                  // digits 0..5
constexpr int64_t kEdge = V;              // "no neighbour": left of position 0, right of T-1
constexpr int64_t C = (V + 1) * (V + 1);  // classes: left * (V+1) + right
constexpr int64_t D = 32;                 // d_model
constexpr double kTarget = 0.95;

// --- 1. and 2.: scaled dot-product attention, the seeds' numbers recomputed ------------

void print_matrix(const std::string& name, const Tensor& m, int decimals = 4) {
  fmt::print("{} {} =\n", name, shape_str(m.shape()));
  const int64_t cols = m.size(-1), n = m.numel() / cols;
  for (int64_t r = 0; r < n; ++r) {
    std::string line = "   ";
    for (int64_t c = 0; c < cols; ++c)
      line += fmt::format(" {:>{}.{}f}", m.data()[r * cols + c], decimals + 5, decimals);
    fmt::print("{}\n", line);
  }
}

void seed_examples() {
  // [F1.8] seed 001 section 4.4: Q (2,3), K (3,2), scale 1/sqrt(3). The COLUMNS
  // of K are the two keys, so the keys as rows are K^T (2,3).
  Tensor q = tensor({{1, 2, 3}, {4, 5, 6}});
  Tensor k = tensor({{7, 8}, {9, 10}, {11, 12}});
  print_matrix("[F1.8] Q K (the seed writes [[64,72],[128,152]])", matmul(q, k), 0);
  // [F1.8] softmax(Q K / sqrt(3)): the keys K^T as rows, V = I so the output is the weights
  auto [out, weights] =
      nn::scaled_dot_product_attention(q, transpose(k, 0, 1), tensor({{1, 0}, {0, 1}}));
  print_matrix("[F1.8] Q K / sqrt(3)", matmul(q, k) / std::sqrt(real(3)), 3);
  print_matrix("[F1.8] softmax(Q K / sqrt(3)), the true weights", weights, 6);
  print_matrix("[F1.8] the seed's softmax([[64,72],[128,152]])",
               softmax(tensor({{64, 72}, {128, 152}}), -1), 6);

  // [F2.7] seed 002 section 4.3: the four tokens of "wo feichang xihuan
  // biancheng" (I very-much like programming), 3-d embeddings, W_Q = W_K = W_V = I.
  Tensor x = tensor({{0.1, 0.2, 0.3}, {0.4, 0.5, 0.6}, {0.7, 0.8, 0.9}, {1.0, 1.1, 1.2}});
  // [F2.7] A = X X^T / sqrt(3), H = softmax(A), O = H X        (Q = K = V = X)
  auto [o, h] = nn::scaled_dot_product_attention(x, x, x);
  print_matrix("\n[F2.7] A = X X^T / sqrt(3)", matmul(x, transpose(x, 0, 1)) / std::sqrt(real(3)));
  print_matrix("[F2.7] H = softmax(A) (the seed: [0.16, 0.25, 0.42, 0.17])", h);
  print_matrix("[F2.7] O = H V (the seed: [0.048, 0.150, 0.378, 0.290])", o);
}

// [F1.6] var(q.k) for unit-variance q and k is d_k; divided by sqrt(d_k) it is 1.
void scaling_table() {
  Generator gen(6);
  const int64_t n = 4000, keys = 8;
  fmt::print("{:>6} {:>12} {:>20} {:>24} {:>22}\n", "d_k", "var(q.k)", "var(q.k/sqrt(d_k))",
             "largest weight, unscaled", "largest weight, scaled");
  for (int64_t d_k : {4, 16, 64, 256}) {
    Tensor q = randn({n, 1, d_k}, gen), k = randn({n, keys, d_k}, gen);
    Tensor scores = matmul(q, transpose(k, -2, -1));  // (n,1,8): 8 scores per query
    auto variance = [](const Tensor& t) {
      Tensor centred = t - mean(t);
      return double(mean(centred * centred).item());
    };
    // [F1.6] q.k / sqrt(d_k): variance d_k / d_k = 1, whatever d_k
    Tensor scaled = scores / std::sqrt(real(d_k));
    fmt::print("{:>6} {:>12.2f} {:>20.3f} {:>24.3f} {:>22.3f}\n", d_k, variance(scores),
               variance(scaled), mean(max(softmax(scores, -1), -1)).item(),
               mean(max(softmax(scaled, -1), -1)).item());
  }
  fmt::print(
      "(mean over {} queries of the largest of {} softmax weights; 1/{} = {:.3f} is uniform)\n", n,
      keys, keys, 1.0 / keys);
}

// --- 3.: the task ---------------------------------------------------------------------

struct Sequences {
  Tensor tokens;              // (N,T) digits
  Tensor targets;             // (N,T) classes left*(V+1)+right
  std::vector<int64_t> flat;  // the targets, row by row
};

Sequences make_sequences(int64_t n, Generator& gen) {
  std::vector<real> tokens(static_cast<size_t>(n * T)), targets(tokens.size());
  Sequences s;
  for (int64_t b = 0; b < n; ++b) {
    real* row = &tokens[static_cast<size_t>(b * T)];
    for (int64_t t = 0; t < T; ++t) row[t] = static_cast<real>(gen.randint(0, V));
    for (int64_t t = 0; t < T; ++t) {
      const int64_t left = t > 0 ? int64_t(row[t - 1]) : kEdge;
      const int64_t right = t < T - 1 ? int64_t(row[t + 1]) : kEdge;
      targets[static_cast<size_t>(b * T + t)] = static_cast<real>(left * (V + 1) + right);
      s.flat.push_back(left * (V + 1) + right);
    }
  }
  s.tokens = from_vector(tokens, {n, T});
  s.targets = from_vector(targets, {n, T});
  return s;
}

std::string digit(int64_t d) { return d == kEdge ? "-" : std::to_string(d); }

// --- 4.: the model --------------------------------------------------------------------

struct NeighbourModel : nn::Module {
  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::PositionalEncoding> positional;
  std::shared_ptr<nn::MultiHeadAttention> attention;
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::Linear> classifier;
  Tensor mask;     // undefined, or which (query, key) pairs each head may use
  Tensor weights;  // (B,h,T,T) of the last forward

  explicit NeighbourModel(int64_t heads, Tensor head_mask = Tensor())
      : Module("NeighbourModel"), mask(std::move(head_mask)) {
    embedding = register_module("embedding", std::make_shared<nn::Embedding>(V, D));
    positional = register_module("positional", std::make_shared<nn::PositionalEncoding>(D, T));
    attention = register_module("attention", std::make_shared<nn::MultiHeadAttention>(D, heads));
    norm = register_module("norm", std::make_shared<nn::LayerNorm>(D));
    classifier = register_module("classifier", std::make_shared<nn::Linear>(D, C));
  }
  Tensor forward(const Tensor& tokens) {
    // [F3.1] x = Embedding(tokens) + PE          (B,T) -> (B,T,d)
    Tensor x = positional->forward(embedding->forward(tokens));
    // [F0.8]-[F0.10] h = x + MultiHead(x): self-attention; without a mask every
    // position sees all
    nn::AttentionOutput attended = attention->forward(x, mask);
    weights = attended.weights;
    Tensor h = x + attended.context;
    return classifier->forward(norm->forward(h));  // (B,T,C)
  }
};

double token_accuracy(const Tensor& logits, const std::vector<int64_t>& targets) {
  return accuracy(reshape(logits, {-1, C}), targets);
}

std::vector<double> train_model(NeighbourModel& model, const Sequences& data, int64_t steps,
                                const std::string& label, const std::string& csv_path) {
  Generator batch_gen(5);
  optim::Adam opt(model.parameters(), /*lr=*/0.01);
  const int64_t batch = 64, n = data.tokens.size(0);
  Progress progress(label, steps);
  LossCsv csv(csv_path, "token_accuracy");
  for (int64_t step = 1; step <= steps; ++step) {
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < batch; ++i) idx.push_back(batch_gen.randint(0, n));
    Tensor targets = index_select(data.targets, 0, idx);
    opt.zero_grad();
    Tensor logits = model.forward(index_select(data.tokens, 0, idx));
    Tensor loss = nn::cross_entropy(logits, targets);  // classes last: (B,T,C) with (B,T)
    loss.backward();
    opt.step();
    const double acc = token_accuracy(logits, to_indices(reshape(targets, {-1}), "targets"));
    csv.add(step, loss.item(), acc);
    progress.update(step, loss.item(), fmt::format("acc {:.1f}%", 100 * acc));
  }
  fmt::print("  loss curve: {}\n", csv.save());
  return csv.losses();
}

// [F0.8] seed 000's split: head k gets a subset of the TIME STEPS, here the
// halves 0..T/2-1 and T/2..T-1, and attends only within it. As a mask for 2
// heads (1,2,T,T): head k blocks every pair unless query and key are both in
// half k. A query outside head k's half has its whole row blocked, so that
// head gives it a zero context, and position i's output comes from its own
// half only.
Tensor time_split_mask() {
  Tensor mask = ones({1, 2, T, T});
  for (int64_t k = 0; k < 2; ++k)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j)
        // [F0.8] H_k = {h_t : t in half k}: open only inside head k's own half
        if (i / (T / 2) == k && j / (T / 2) == k) mask.data()[(k * T + i) * T + j] = 0;
  return mask;
}

// --- 5.: what the heads learned ----------------------------------------------------------

// The mean over held-out sequences of head k's weights (T,T).
Tensor mean_head_weights(const Tensor& weights, int64_t head) {
  return mean(reshape(narrow(weights, 1, head, 1), {weights.size(0), T, T}), 0);
}

void show_head(const Tensor& m, const std::string& title, const std::vector<std::string>& labels,
               bool numbers) {
  HeatMapOptions heat;
  heat.row_labels = labels;
  heat.col_labels = labels;
  heat.numbers = numbers;
  fmt::print("{}\n{}", title, heat_map(m, heat));
}

// Per head: the query position of each row puts most of its weight on which
// offset (key - query)?
std::string describe_head(const Tensor& mean_weights) {
  std::vector<int64_t> offsets;
  for (int64_t i = 0; i < T; ++i) {
    int64_t best = 0;
    for (int64_t j = 1; j < T; ++j)
      if (mean_weights.at({i, j}) > mean_weights.at({i, best})) best = j;
    offsets.push_back(best - i);
  }
  std::string out;
  for (int64_t o : offsets) out += fmt::format("{:+d} ", o);
  return out;
}

}  // namespace

int main() {
  manual_seed(0);
  Generator data_gen(3);

  section("1. Scaled dot-product attention: the seeds' worked examples, recomputed");
  seed_examples();

  section("2. Why divide by sqrt(d_k) [F1.6]");
  scaling_table();

  section("3. The task: name both neighbours");
  Sequences train = make_sequences(8000, data_gen);
  Sequences test = make_sequences(1000, data_gen);
  fmt::print("train tokens {}   held-out tokens {}   classes (left, right): {}\n",
             shape_str(train.tokens.shape()), shape_str(test.tokens.shape()), C);
  for (int64_t b = 0; b < 2; ++b) {
    std::string tokens, targets;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t y = train.flat[size_t(b * T + t)];
      tokens += fmt::format("  {}  ", int64_t(train.tokens.at({b, t})));
      targets += fmt::format("({},{})", digit(y / (V + 1)), digit(y % (V + 1)));
    }
    fmt::print("sequence {}: {}\n  targets: {}\n", b, tokens, targets);
  }

  section("4. One head, then two heads");
  const int64_t steps = 700;
  NeighbourModel one(/*heads=*/1);
  train_model(one, train, steps, "1 head", "build/tutorials/05_one_head_loss.csv");
  NeighbourModel two(/*heads=*/2);
  std::cout << two << "\n";
  std::vector<double> losses =
      train_model(two, train, steps, "2 heads", "build/tutorials/05_two_heads_loss.csv");
  NeighbourModel split(/*heads=*/2, time_split_mask());
  train_model(split, train, steps, "seed 000", "build/tutorials/05_time_split_loss.csv");
  fmt::print("{}",
             loss_chart(losses, "training loss, 2 heads (cross-entropy, one point per batch)"));

  section("5. Held-out sequences, and what each head looks at");
  NoGradGuard no_grad;
  one.eval();
  two.eval();
  split.eval();
  const double acc_one = token_accuracy(one.forward(test.tokens), test.flat);
  const double acc_two = token_accuracy(two.forward(test.tokens), test.flat);
  Tensor split_logits = split.forward(test.tokens);
  const double acc_split = token_accuracy(split_logits, test.flat);
  fmt::print(
      "per-token held-out accuracy: 1 head {:.1f}%, 2 heads {:.1f}%, 2 heads splitting the "
      "time steps (seed 000) {:.1f}%\n",
      100 * acc_one, 100 * acc_two, 100 * acc_split);
  // Where the time split fails: the positions next to the cut, T/2-1 and T/2.
  std::vector<int64_t> predicted = predicted_classes(reshape(split_logits, {-1, C}));
  fmt::print("seed 000's split, accuracy by position:");
  for (int64_t t = 0; t < T; ++t) {
    int64_t correct = 0;
    for (int64_t b = 0; b < test.tokens.size(0); ++b)
      correct += predicted[size_t(b * T + t)] == test.flat[size_t(b * T + t)];
    fmt::print(" {}: {:.0f}%", t, 100.0 * double(correct) / double(test.tokens.size(0)));
  }
  fmt::print("\n");
  std::vector<std::string> labels;
  for (int64_t t = 0; t < T; ++t) labels.push_back(std::to_string(t));
  fmt::print("\nmean weights over the held-out sequences: row = query position, column = key\n");
  show_head(mean_head_weights(one.weights, 0), "1 head:", labels, false);
  for (int64_t k = 0; k < 2; ++k) {
    Tensor m = mean_head_weights(two.weights, k);
    show_head(
        m, fmt::format("2 heads, head {}: largest weight at key - query = {}", k, describe_head(m)),
        labels, false);
  }
  std::vector<std::string> token_labels;
  for (int64_t t = 0; t < T; ++t)
    token_labels.push_back(fmt::format("{}", int64_t(test.tokens.at({0, t}))));
  fmt::print("\nheld-out sequence 0 (rows and columns labelled by its digits), as numbers:\n");
  for (int64_t k = 0; k < 2; ++k) {
    Tensor w = reshape(narrow(narrow(two.weights, 0, 0, 1), 1, k, 1), {T, T});
    show_head(w, fmt::format("head {}:", k), token_labels, true);
  }

  save_model(two, "build/tutorials/05_model.safetensors");  // the two-head model

  const bool ok = acc_two >= kTarget;
  fmt::print("\nper-token held-out accuracy with 2 heads {:.1f}% (target: >= {:.0f}%) {}\n",
             100 * acc_two, 100 * kTarget, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
