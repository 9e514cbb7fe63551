// Chapter 3: point attention [F0.1]-[F0.4], on a task where one element of
// each sequence is all that matters.
//
// Each sequence holds T random vectors. One of them, at a random position,
// is "marked" (its feature 0 is 1, in every other element it is 0), and the
// label is which of the features 1..C of the marked element is the largest.
// The other T-1 elements are distractors. A model that averages the sequence
// sees the marked element diluted T times among noise; point attention can
// learn to put (almost) all its weight on the marked element and read it.
//
//   x (B,T,H) --PointAttention(H)--> context (B,H) --Linear(H,C)--> logits (B,C)
//
// Targets: at least 95% accuracy on held-out sequences; the mean attention
// weight on the marked element is reported (it should be large, > 0.8).
// Text: docs/tutorials/03-point-attention.md
// make debug-03 breaks in: ag::nn::PointAttention::forward
#include <algorithm>
#include <cmath>
#include <iostream>

#include "layers/nn.hpp"
#include "tutorials/terminal.hpp"

using namespace ag;
using namespace ag::tutorial;

namespace {

constexpr int64_t T = 10;  // sequence length
constexpr int64_t H = 16;  // features per element (feature 0 is the marker)
constexpr int64_t C = 4;   // classes: argmax of features 1..C of the marked element
constexpr double kTargetAccuracy = 0.95;
constexpr double kTargetWeight = 0.8;

struct Sequences {
  Tensor x;                     // (N,T,H)
  Tensor y;                     // (N) class ids as whole numbers
  std::vector<int64_t> labels;  // the same ids
  std::vector<int64_t> marked;  // the marked position of each sequence
};

Sequences make_sequences(int64_t n, Generator& gen) {
  Sequences s;
  std::vector<real> x(static_cast<size_t>(n * T * H));
  for (int64_t b = 0; b < n; ++b) {
    const int64_t m = gen.randint(0, T);
    for (int64_t t = 0; t < T; ++t) {
      real* element = &x[static_cast<size_t>((b * T + t) * H)];
      element[0] = t == m ? 1 : 0;  // the marker
      for (int64_t f = 1; f < H; ++f) element[f] = static_cast<real>(gen.normal());
    }
    const real* chosen = &x[static_cast<size_t>((b * T + m) * H)];
    s.labels.push_back(std::max_element(chosen + 1, chosen + 1 + C) - (chosen + 1));
    s.marked.push_back(m);
  }
  s.x = from_vector(x, {n, T, H}).set_name("x");
  s.y = from_vector(std::vector<real>(s.labels.begin(), s.labels.end())).set_name("y");
  return s;
}

// What the classifiers return: class scores, and the weights of the elements.
struct Prediction {
  Tensor logits;   // (B,C)
  Tensor weights;  // (B,T,1)
};

// Point attention, then a linear read-out of the context.
struct AttentionClassifier : nn::Module {
  std::shared_ptr<nn::PointAttention> attention;
  std::shared_ptr<nn::Linear> classifier;
  AttentionClassifier() : Module("AttentionClassifier") {
    attention = register_module("attention", std::make_shared<nn::PointAttention>(H));
    classifier = register_module("classifier", std::make_shared<nn::Linear>(H, C));
  }
  Prediction forward(const Tensor& x) {
    nn::AttentionOutput out = attention->forward(x);  // context (B,H), weights (B,T,1)
    return {classifier->forward(out.context), out.weights};
  }
};

// The baseline: the mean of the sequence, then the same read-out. A mean is
// point attention with every score equal: a_i = 1/T whatever x_i holds.
struct MeanClassifier : nn::Module {
  std::shared_ptr<nn::Linear> classifier;
  MeanClassifier() : Module("MeanClassifier") {
    classifier = register_module("classifier", std::make_shared<nn::Linear>(H, C));
  }
  Prediction forward(const Tensor& x) {
    return {classifier->forward(mean(x, /*dim=*/1)), full({x.size(0), T, 1}, real(1) / T)};
  }
};

// Mean over the sequences of the weight on the marked position.
double mean_marked_weight(const Tensor& weights, const std::vector<int64_t>& marked) {
  double total = 0;
  for (size_t b = 0; b < marked.size(); ++b) total += weights.at({int64_t(b), marked[b], 0});
  return total / static_cast<double>(marked.size());
}

// Minibatches of 100 sequences in a new random order every epoch, Adam, and
// cross-entropy; the loss and the weight on the marked element are logged.
template <typename Model>
std::vector<double> train_model(Model& model, const Sequences& data, int64_t epochs,
                                const std::string& label, const std::string& csv_path) {
  Generator shuffle_gen(4);
  optim::Adam opt(model.parameters(), /*lr=*/0.02);
  const int64_t batch = 100, per_epoch = data.x.size(0) / batch;
  Progress progress(label, epochs * per_epoch);
  LossCsv csv(csv_path, "marked_weight");
  std::vector<int64_t> order(static_cast<size_t>(data.x.size(0)));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    for (size_t i = order.size() - 1; i > 0; --i)  // Fisher-Yates shuffle
      std::swap(order[i], order[static_cast<size_t>(shuffle_gen.randint(0, int64_t(i) + 1))]);
    for (int64_t k = 0; k < per_epoch; ++k) {
      std::vector<int64_t> idx(order.begin() + k * batch, order.begin() + (k + 1) * batch);
      std::vector<int64_t> marked;
      for (int64_t i : idx) marked.push_back(data.marked[static_cast<size_t>(i)]);
      opt.zero_grad();
      Prediction out = model.forward(index_select(data.x, 0, idx));
      Tensor loss = nn::cross_entropy(out.logits, index_select(data.y, 0, idx));
      loss.backward();
      opt.step();
      const double w = mean_marked_weight(out.weights, marked);
      csv.add(++step, loss.item(), w);
      progress.update(step, loss.item(), fmt::format("weight on marked {:.3f}", w));
    }
  }
  fmt::print("  loss curve: {}\n", csv.save());
  return csv.losses();
}

// The attention weights of the first 8 held-out sequences: one row each,
// one column per position, the marked element in [brackets].
void show_weights(const Tensor& weights, const Sequences& data, bool numbers) {
  HeatMapOptions heat;
  const int64_t shown = 8;
  for (int64_t b = 0; b < shown; ++b) {
    heat.row_labels.push_back(fmt::format("seq {} (class {}) ", b, data.labels[b]));
    heat.marked.push_back(data.marked[b]);
  }
  heat.numbers = numbers;
  fmt::print("{}", heat_map(reshape(narrow(weights, 0, 0, shown), {shown, T}), heat));
}

void show_seed_shapes() {
  // The seed's example: x = torch.randn(3, 5, 64); attention = Attention(64).
  Tensor x = randn({3, 5, 64}).set_name("x");
  nn::PointAttention attention(64);
  std::cout << attention << "\n";
  // The three steps written out, with the layer's own parameters:
  // [F0.1] e_i = W_e x_i + b_e             a Linear(64,1) on every element: (3,5,64) -> (3,5,1)
  Tensor e = attention.linear->forward(x).set_name("e");
  // [F0.2] a_i = exp(e_i) / sum_j exp(e_j)  softmax over the sequence axis, dim 1: (3,5,1)
  Tensor a = softmax(e, /*dim=*/1).set_name("a");
  // [F0.4] context = sum_i a_i x_i         (3,5,1) * (3,5,64) summed over dim 1 -> (3,64)
  Tensor context = sum(a * x, /*dim=*/1).set_name("context");
  fmt::print("x {}  ->  e {}  ->  a {}  ->  context {}\n", shape_str(x.shape()),
             shape_str(e.shape()), shape_str(a.shape()), shape_str(context.shape()));
  Tensor a0 = reshape(narrow(a, 0, 0, 1), {5});
  fmt::print("weights of sequence 0: {}, sum {:.4f}\n", a0, sum(a0).item());
  // The layer does exactly these three steps.
  nn::AttentionOutput out = attention.forward(x);
  double diff = 0;
  for (int64_t i = 0; i < context.numel(); ++i)
    diff = std::max(diff, double(std::abs(out.context.data()[i] - context.data()[i])));
  fmt::print("attention.forward(x): context {}, weights {}; differs from the steps above by {}\n",
             shape_str(out.context.shape()), shape_str(out.weights.shape()), diff);
  // [F0.3] h_t = x_t + sum_i a_i h_i: the residual form, every element plus
  // the context (in point attention h_i = x_i): (3,5,64) + (3,64) -> (3,5,64)
  Tensor h = nn::add_context(x, out.context);
  fmt::print("add_context(x, context): {} + {} -> {}\n", shape_str(x.shape()),
             shape_str(out.context.shape()), shape_str(h.shape()));
}

}  // namespace

int main() {
  manual_seed(0);  // model weights and the seed-shapes example
  Generator data_gen(3);

  section("1. Point attention, with the seed's shapes (3,5,64)");
  show_seed_shapes();

  section("2. The task: find the marked element");
  Sequences train = make_sequences(4000, data_gen);
  Sequences test = make_sequences(1000, data_gen);
  fmt::print("train x {}  y {}   held-out x {}  y {}\n", shape_str(train.x.shape()),
             shape_str(train.y.shape()), shape_str(test.x.shape()), shape_str(test.y.shape()));
  const int64_t m0 = train.marked[0];
  Tensor head = reshape(narrow(narrow(narrow(train.x, 0, 0, 1), 1, m0, 1), 2, 0, C + 1), {C + 1});
  fmt::print(
      "sequence 0: marked position {}; features 0..{} of that element:\n  {}\n"
      "  label = argmax of features 1..{}, counted from 0: {} (feature {} is the largest)\n",
      m0, C, head, C, train.labels[0], train.labels[0] + 1);

  section("3. Baseline: the mean of the sequence");
  MeanClassifier baseline;
  train_model(baseline, train, 5, "mean", "build/tutorials/03_mean_loss.csv");
  double baseline_acc = 0;
  {
    NoGradGuard no_grad;  // evaluation: nothing is recorded
    baseline_acc = accuracy(baseline.forward(test.x).logits, test.labels);
  }
  fmt::print("mean of the sequence: held-out accuracy {:.1f}% (chance: {:.0f}%)\n",
             100 * baseline_acc, 100.0 / C);

  section("4. Point attention, trained");
  AttentionClassifier model;
  std::cout << model << "\n";
  fmt::print("before training, the weights are random, spread around 1/T = {}:\n", 1.0 / T);
  {
    NoGradGuard no_grad;
    show_weights(model.forward(test.x).weights, test, /*numbers=*/true);
  }
  std::vector<double> losses =
      train_model(model, train, 15, "attend", "build/tutorials/03_attention_loss.csv");
  fmt::print("{}", loss_chart(losses, "training loss (cross-entropy, one point per batch)"));

  section("5. Held-out sequences");
  NoGradGuard no_grad;
  model.eval();
  Prediction out = model.forward(test.x);
  const double acc = accuracy(out.logits, test.labels);
  const double marked_weight = mean_marked_weight(out.weights, test.marked);
  fmt::print("held-out accuracy {:.1f}%, mean attention weight on the marked element {:.3f}\n",
             100 * acc, marked_weight);
  // [F0.1] e_i = W_e x_i + b_e: what the score learned to look at. A large
  // weight on feature 0 (the marker) and small ones elsewhere give the marked
  // element a score far above the others, whatever their random features.
  const std::vector<real> w_e = model.attention->linear->weight.to_vector();
  real largest_other = 0;
  for (int64_t f = 1; f < H; ++f) largest_other = std::max(largest_other, std::abs(w_e[f]));
  fmt::print("score weights W_e (1,{}): on the marker {:.2f}, largest of the others {:.2f}\n", H,
             w_e[0], largest_other);
  fmt::print("attention weights a_i [F0.2], [ ] = the marked element:\n");
  show_weights(out.weights, test, /*numbers=*/false);
  fmt::print("the same, as numbers:\n");
  show_weights(out.weights, test, /*numbers=*/true);
  save_model(model, "build/tutorials/03_model.safetensors");

  const bool ok = acc >= kTargetAccuracy && marked_weight > kTargetWeight;
  fmt::print(
      "\nheld-out accuracy {:.1f}% (target: >= {:.0f}%), mean weight on the marked "
      "element {:.3f} (target: > {}) {}\n",
      100 * acc, 100 * kTargetAccuracy, marked_weight, kTargetWeight, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
