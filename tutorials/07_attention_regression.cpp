// Chapter 7: attention for regression [F4.10] [F0.5] [F0.6] [F0.7].
//
// Seed 004 ends by fitting its seq2seq-with-attention model to the Boston
// housing prices with a mean squared error. That data set is not available
// offline (and was withdrawn from scikit-learn), so this chapter makes a
// regression of its own: a window of a noisy sine wave (random amplitude,
// frequency and phase for every window), and the value that comes next.
//
//   window x_1..x_T (T = 20 noisy samples)  ->  y = x_{T+1} (noisy too)
//
// The model is seed 000's attention over RNN states: an RNN reads the window
// [F0.5], a linear score of each state and a softmax over time give the
// weights [F0.6], the context is added to the states [F0.7], and a linear
// layer reads the prediction off the last one. It trains with MSE [F4.10].
//
// Baseline: repeat the last value (y_hat = x_T), the forecast that needs no
// model. Target: a held-out MSE below half the baseline's. The noise alone
// gives an MSE of sigma^2 = 0.01 to any forecast (the floor).
// Text: docs/tutorials/07-attention-regression.md
#include <cmath>
#include <iostream>

#include "layers/nn.hpp"
#include "tutorials/terminal.hpp"

using namespace ag;
using namespace ag::tutorial;

namespace {

constexpr int64_t T = 20;             // window length
constexpr int64_t H = 32;             // RNN state size
constexpr double kNoise = 0.1;        // sigma of the noise on every sample
constexpr double kTargetRatio = 0.5;  // model MSE / baseline MSE must be below this

struct Windows {
  Tensor x;                   // (N,T,1)
  Tensor y;                   // (N,1)
  std::vector<double> clean;  // the noiseless next value of each window
};

// x_t = A sin(w t + phi) + sigma eps_t, A ~ U(0.5,1.5), w ~ U(0.2,0.6) radians
// per step, phi ~ U(0, 2 pi), eps ~ N(0,1); y is the next sample, x_{T+1}.
Windows make_windows(int64_t n, Generator& gen) {
  std::vector<real> x, y;
  Windows w;
  for (int64_t i = 0; i < n; ++i) {
    const double amplitude = 0.5 + gen.uniform(), omega = 0.2 + 0.4 * gen.uniform();
    const double phase = 2 * M_PI * gen.uniform();
    for (int64_t t = 0; t <= T; ++t) {
      const double clean = amplitude * std::sin(omega * t + phase);
      const real noisy = static_cast<real>(clean + kNoise * gen.normal());
      if (t < T) {
        x.push_back(noisy);
      } else {
        y.push_back(noisy);
        w.clean.push_back(clean);
      }
    }
  }
  w.x = from_vector(x, {n, T, 1}).set_name("x");
  w.y = from_vector(y, {n, 1}).set_name("y");
  return w;
}

// [F0.5]-[F0.7] then a linear read-out of the last step:
//   x (B,T,1) --SequenceAttention--> h_t + c (B,T,H) --last step--> (B,H) --Linear--> y_hat (B,1)
struct AttentionRegressor : nn::Module {
  std::shared_ptr<nn::SequenceAttention> attention;
  std::shared_ptr<nn::Linear> head;
  AttentionRegressor() : Module("AttentionRegressor") {
    attention = register_module("attention", std::make_shared<nn::SequenceAttention>(1, H));
    head = register_module("head", std::make_shared<nn::Linear>(H, 1));
  }
  nn::SequenceAttentionOutput features;  // of the last forward, for the pictures
  Tensor forward(const Tensor& x) {
    features = attention->forward(x);
    const Tensor last = squeeze(narrow(features.output, 1, T - 1, 1), 1);  // (B,H)
    return head->forward(last);
  }
};

double mse_of(const Tensor& prediction, const Tensor& target) {
  NoGradGuard no_grad;
  // [F4.10] MSE = 1/n sum (y - y_hat)^2
  return nn::mse_loss(prediction, target).item();
}

}  // namespace

int main() {
  manual_seed(0);
  Generator data_gen(5);

  section("1. The data: windows of noisy sine waves, and the next value");
  Windows train = make_windows(3000, data_gen);
  Windows test = make_windows(1000, data_gen);
  fmt::print("train x {} y {}   held-out x {} y {}\n", shape_str(train.x.shape()),
             shape_str(train.y.shape()), shape_str(test.x.shape()), shape_str(test.y.shape()));
  ChartOptions series;
  series.title = "held-out window 0: x_1..x_20, then y = x_21";
  series.height = 8;
  std::vector<double> first;
  for (int64_t t = 0; t < T; ++t) first.push_back(test.x.at({0, t, 0}));
  first.push_back(test.y.at({0, 0}));
  fmt::print("{}", line_chart(first, series));

  section("2. Baseline: repeat the last value");
  // y_hat = x_T for every window
  const Tensor last_value = reshape(narrow(test.x, 1, T - 1, 1), {-1, 1});
  const double baseline = mse_of(last_value, test.y);
  double floor = 0;
  for (size_t i = 0; i < test.clean.size(); ++i)
    floor += std::pow(test.y.at({int64_t(i), 0}) - test.clean[i], 2);
  floor /= double(test.clean.size());
  fmt::print(
      "held-out MSE of the last value: {:.4f}   (the noise floor, MSE of the noiseless "
      "truth: {:.4f})\n",
      baseline, floor);

  section("3. Attention over RNN states, trained with MSE");
  AttentionRegressor model;
  std::cout << model << "\n";
  optim::Adam opt(model.parameters(), /*lr=*/0.01);
  Generator pick(6);
  const int64_t steps = 2000, batch = 50;
  Progress progress("train", steps);
  LossCsv csv("build/tutorials/07_regression_loss.csv");
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
  fmt::print("  loss curve: {}\n", csv.path());
  ChartOptions chart;
  chart.title = "training loss (MSE, one point per batch)";
  chart.log_y = true;
  fmt::print("{}", line_chart(csv.losses(), chart));

  section("4. Held-out windows");
  NoGradGuard no_grad;
  model.eval();
  const Tensor prediction = model.forward(test.x);
  const double model_mse = mse_of(prediction, test.y);
  fmt::print("{:<34} {:.4f}\n{:<34} {:.4f}\n{:<34} {:.4f}\n", "MSE, repeat the last value",
             baseline, "MSE, attention over RNN states", model_mse, "noise floor (sigma^2)", floor);
  fmt::print("attention weights a_i [F0.6] of 6 held-out windows over positions 1..{}:\n", T);
  HeatMapOptions heat;
  for (int64_t b = 0; b < 6; ++b) heat.row_labels.push_back(fmt::format("window {} ", b));
  heat.scale = true;
  fmt::print("{}", heat_map(narrow(model.features.weights, 0, 0, 6), heat));

  const bool ok = model_mse < kTargetRatio * baseline;
  fmt::print("\nheld-out MSE {:.4f} vs {:.4f} for the last value: ratio {:.2f} (target: < {}) {}\n",
             model_mse, baseline, model_mse / baseline, kTargetRatio, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
