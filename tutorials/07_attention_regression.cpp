// Chapter 7: attention for regression [F4.10] [F0.5] [F0.6] [F0.7].
//
// Seed 004 ends by fitting its seq2seq-with-attention model to the Boston
// housing prices with a mean squared error. That data set is not available
// offline (and was withdrawn from scikit-learn), so this chapter makes a
// sequence regression of its own, the adding problem: a sequence of T = 30
// random values, two of them marked, and the target is the sum of the two.
//
//   x_t = (u_t, m_t)   u_t ~ U(0,1), m_t = 1 at two positions, else 0
//   y   = sum of the two marked u_t
//
// The model is seed 000's attention over RNN states: an RNN reads the
// sequence [F0.5], a linear score of each state and a softmax over time give
// the weights [F0.6], the context is added to the states [F0.7], and a linear
// layer reads the prediction off the last one. It trains with MSE [F4.10].
//
// Baseline: predict the mean of the training targets, the best constant
// (its MSE is the variance of y, about 2/12). Target: a held-out MSE below a
// tenth of the baseline's. The same RNN without the attention is trained too.
// Text: docs/tutorials/07-attention-regression.md
// make debug-07 breaks in: ag::nn::SequenceAttention::forward
#include <cmath>
#include <iostream>

#include "layers/nn.hpp"
#include "tutorials/terminal.hpp"

using namespace ag;
using namespace ag::tutorial;

namespace {

constexpr int64_t T = 30;             // sequence length
constexpr int64_t H = 32;             // RNN state size
constexpr double kTargetRatio = 0.1;  // model MSE / baseline MSE must be below this

struct Sequences {
  Tensor x;  // (N,T,2): feature 0 the value u_t, feature 1 the marker m_t
  Tensor y;  // (N,1)
};

// The adding problem (Hochreiter and Schmidhuber 1997): u_t ~ U(0,1), exactly
// two marked positions (m_t = 1), one in each half of the sequence; y is the
// sum of the two marked values.
Sequences make_sequences(int64_t n, Generator& gen) {
  std::vector<real> x(static_cast<size_t>(n * T * 2)), y;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t first = gen.randint(0, T / 2), second = gen.randint(T / 2, T);
    for (int64_t t = 0; t < T; ++t) {
      x[(i * T + t) * 2] = static_cast<real>(gen.uniform());
      x[(i * T + t) * 2 + 1] = t == first || t == second ? 1 : 0;
    }
    y.push_back(x[(i * T + first) * 2] + x[(i * T + second) * 2]);
  }
  Sequences w;
  w.x = from_vector(x, {n, T, 2}).set_name("x");
  w.y = from_vector(y, {n, 1}).set_name("y");
  return w;
}

// [F0.5]-[F0.7] then a linear read-out of the last step:
//   x (B,T,2) --SequenceAttention--> h_t + c (B,T,H) --last step--> (B,H) --Linear--> y_hat (B,1)
struct AttentionRegressor : nn::Module {
  std::shared_ptr<nn::SequenceAttention> attention;
  std::shared_ptr<nn::Linear> head;
  AttentionRegressor() : Module("AttentionRegressor") {
    attention = register_module("attention", std::make_shared<nn::SequenceAttention>(2, H));
    head = register_module("head", std::make_shared<nn::Linear>(H, 1));
  }
  nn::SequenceAttentionOutput features;  // of the last forward, for the pictures
  Tensor forward(const Tensor& x) {
    features = attention->forward(x);
    const Tensor last = squeeze(narrow(features.output, 1, T - 1, 1), 1);  // (B,H)
    return head->forward(last);
  }
};

// The same RNN and read-out without the attention: the prediction from the
// last state h_T alone.
struct LastStateRegressor : nn::Module {
  std::shared_ptr<nn::RNN> rnn;
  std::shared_ptr<nn::Linear> head;
  LastStateRegressor() : Module("LastStateRegressor") {
    rnn = register_module("rnn", std::make_shared<nn::RNN>(2, H));
    head = register_module("head", std::make_shared<nn::Linear>(H, 1));
  }
  Tensor forward(const Tensor& x) { return head->forward(rnn->forward(x).h_n); }
};

// Adam (lr 0.01 falling along a half cosine to 0.0005), batches of 50 drawn at
// random, gradients clipped to norm 1.
template <typename Model>
std::vector<double> train_model(Model& model, const Sequences& train, int64_t steps,
                                const std::string& label, const std::string& csv_path) {
  optim::Adam opt(model.parameters(), /*lr=*/0.01);
  Generator pick(6);
  const int64_t batch = 50;
  Progress progress(label, steps);
  LossCsv csv(csv_path);
  for (int64_t step = 1; step <= steps; ++step) {
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < batch; ++i) idx.push_back(pick.randint(0, train.x.size(0)));
    opt.set_lr(real(0.01 * (0.05 + 0.95 * 0.5 * (1 + std::cos(M_PI * (step - 1) / steps)))));
    opt.zero_grad();
    // [F4.10] the loss: MSE = 1/n sum (y - y_hat)^2
    Tensor loss =
        nn::mse_loss(model.forward(index_select(train.x, 0, idx)), index_select(train.y, 0, idx));
    loss.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    csv.add(step, loss.item());
    progress.update(step, loss.item());
  }
  fmt::print("  loss curve: {}\n", csv.save());
  return csv.losses();
}

double mse_of(const Tensor& prediction, const Tensor& target) {
  NoGradGuard no_grad;
  // [F4.10] MSE = 1/n sum (y - y_hat)^2
  return nn::mse_loss(prediction, target).item();
}

}  // namespace

int main() {
  manual_seed(0);
  Generator data_gen(5);

  section("1. The data: the adding problem");
  Sequences train = make_sequences(3000, data_gen);
  Sequences test = make_sequences(1000, data_gen);
  fmt::print("train x {} y {}   held-out x {} y {}\n", shape_str(train.x.shape()),
             shape_str(train.y.shape()), shape_str(test.x.shape()), shape_str(test.y.shape()));
  fmt::print("held-out sequence 0, the marked positions (counted from 1):");
  for (int64_t t = 0; t < T; ++t)
    if (test.x.at({0, t, 1}) != 0) fmt::print("  u_{} = {:.4f}", t + 1, test.x.at({0, t, 0}));
  fmt::print("   ->  y = {:.4f}\n", test.y.at({0, 0}));

  section("2. Baseline: predict the mean");
  const double mean_y = mean(train.y).item();
  const double baseline = mse_of(full({test.x.size(0), 1}, real(mean_y)), test.y);
  fmt::print("mean of the training targets {:.4f}; held-out MSE of predicting it: {:.4f}\n", mean_y,
             baseline);

  section("3. Attention over RNN states, trained with MSE");
  AttentionRegressor model;
  std::cout << model << "\n";
  const int64_t steps = 1500;
  std::vector<double> losses =
      train_model(model, train, steps, "attend", "build/tutorials/07_regression_loss.csv");
  fmt::print("{}", loss_chart(losses, "training loss (MSE, one point per batch)"));

  section("4. The same RNN without attention: the last state only");
  LastStateRegressor plain;
  train_model(plain, train, steps, "plain", "build/tutorials/07_no_attention_loss.csv");

  section("5. Held-out sequences");
  NoGradGuard no_grad;
  model.eval();
  const Tensor prediction = model.forward(test.x);
  const double model_mse = mse_of(prediction, test.y);
  const double plain_mse = mse_of(plain.forward(test.x), test.y);
  fmt::print("{:<36} {:.4f}\n{:<36} {:.4f}\n{:<36} {:.4f}\n", "MSE, predict the mean", baseline,
             "MSE, RNN, last state only", plain_mse, "MSE, attention over RNN states", model_mse);
  double on_marked = 0;  // the weight the two marked positions get, on average
  for (int64_t b = 0; b < test.x.size(0); ++b)
    for (int64_t t = 0; t < T; ++t)
      if (test.x.at({b, t, 1}) != 0) on_marked += model.features.weights.at({b, t});
  fmt::print("mean total weight on the two marked positions: {:.3f} (uniform: {:.3f})\n",
             on_marked / double(test.x.size(0)), 2.0 / T);
  fmt::print("attention weights a_i [F0.6] of 6 held-out sequences over positions 1..{}:\n", T);
  HeatMapOptions heat;
  for (int64_t b = 0; b < 6; ++b) heat.row_labels.push_back(fmt::format("sequence {} ", b));
  for (int64_t t = 1; t <= T; ++t) heat.col_labels.push_back(std::to_string(t));
  heat.scale = true;
  fmt::print("{}", heat_map(narrow(model.features.weights, 0, 0, 6), heat));

  const bool ok = model_mse < kTargetRatio * baseline;
  fmt::print(
      "\nheld-out MSE {:.4f} vs {:.4f} for predicting the mean: ratio {:.2f} (target: < {}) {}\n",
      model_mse, baseline, model_mse / baseline, kTargetRatio, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
