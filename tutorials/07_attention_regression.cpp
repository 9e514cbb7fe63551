// Chapter 7: attention for regression [F4.10] [F0.5] [F0.6] [F0.7].
//
// Seed 004 ends by fitting its seq2seq-with-attention model to the Boston
// housing prices with a mean squared error; chapter 09 does that on the real
// data, whose rows are not sequences. This chapter makes a sequence regression
// of its own, the adding problem: a sequence of T = 30 random values, two of
// them marked, and the target is the sum of the two.
//
//   x_t = (u_t, m_t)   u_t ~ U(0,1), m_t = 1 at two positions, else 0
//   y   = sum of the two marked u_t
//
// The model is seed 000's attention over RNN states: an RNN reads the
// sequence [F0.5], a linear score of each state and a softmax over time give
// the weights [F0.6], the context is added to the states [F0.7], and a linear
// layer reads the prediction off the last one. It trains with MSE [F4.10].
// The seed makes the states "with an RNN or a CNN": the same attention is
// then trained over an LSTM's states and over a 1-D convolution's.
//
// Baseline: predict the mean of the training targets, the best constant
// (its MSE is the variance of y, about 2/12). Target: a held-out MSE below a
// tenth of the baseline's. The same RNN without the attention is trained too.
// Text: docs/tutorials/07-attention-regression.md
// make debug-07 breaks in: ag::nn::SequenceAttention::forward
#include <algorithm>
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
// The states come from an RNN [F0.5] unless another encoder is asked for: an
// LSTM, or a Conv1d of kernel 3 (h_t from x_{t-1}, x_t, x_{t+1} only).
struct AttentionRegressor : nn::Module {
  std::shared_ptr<nn::SequenceAttention> attention;
  std::shared_ptr<nn::Linear> head;
  explicit AttentionRegressor(nn::SequenceEncoder encoder = nn::SequenceEncoder::RNN)
      : Module("AttentionRegressor") {
    attention =
        register_module("attention", std::make_shared<nn::SequenceAttention>(2, H, encoder, 3));
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
  Tensor forward(const Tensor& x) { return head->forward(squeeze(rnn->forward(x).h_n, 0)); }
};

// Adam (lr 0.01 falling along a half cosine to 0.0005: optim::CosineAnnealingLR),
// batches of 50 drawn at random, gradients clipped to norm 1.
template <typename Model>
std::vector<double> train_model(Model& model, const Sequences& train, int64_t steps,
                                const std::string& label, const std::string& csv_path) {
  optim::Adam opt(model.parameters(), /*lr=*/0.01);
  optim::CosineAnnealingLR schedule(opt, /*T_max=*/steps, /*eta_min=*/0.0005);
  Generator pick(6);
  const int64_t batch = 50;
  Progress progress(label, steps);
  LossCsv csv(csv_path);
  for (int64_t step = 1; step <= steps; ++step) {
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < batch; ++i) idx.push_back(pick.randint(0, train.x.size(0)));
    opt.zero_grad();
    // [F4.10] the loss: MSE = 1/n sum (y - y_hat)^2
    Tensor loss =
        nn::mse_loss(model.forward(index_select(train.x, 0, idx)), index_select(train.y, 0, idx));
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

double mse_of(const Tensor& prediction, const Tensor& target) {
  NoGradGuard no_grad;
  // [F4.10] MSE = 1/n sum (y - y_hat)^2
  return nn::mse_loss(prediction, target).item();
}

// The total weight [F0.6] that the positions within `radius` steps of a marked
// one get (radius 0: the two marked positions), on average over the sequences of
// the model's last forward.
double weight_near_marked(const AttentionRegressor& model, const Sequences& data,
                          int64_t radius) {
  double total = 0;
  for (int64_t b = 0; b < data.x.size(0); ++b)
    for (int64_t t = 0; t < T; ++t) {
      bool near = false;
      for (int64_t s = std::max<int64_t>(0, t - radius); s <= std::min(T - 1, t + radius); ++s)
        near = near || data.x.at({b, s, 1}) != 0;
      if (near) total += model.features.weights.at({b, t});
    }
  return total / double(data.x.size(0));
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
  AttentionRegressor model;  // over RNN states
  std::cout << model << "\n";
  const int64_t steps = 1500;
  std::vector<double> losses =
      train_model(model, train, steps, "attend", "build/tutorials/07_regression_loss.csv");
  fmt::print("{}", loss_chart(losses, "training loss (MSE, one point per batch)"));

  section("4. The same RNN without attention: the last state only");
  LastStateRegressor plain;
  train_model(plain, train, steps, "plain", "build/tutorials/07_no_attention_loss.csv");

  section("5. The same attention over other encoders: an LSTM, a CNN");
  // Seed 000 makes the states "with an RNN or a CNN". An LSTM's gates carry a
  // value over many steps; a convolution of kernel 3 sees only x_{t-1}, x_t,
  // x_{t+1}, and the attention alone joins the two marked steps.
  AttentionRegressor over_lstm(nn::SequenceEncoder::LSTM);
  AttentionRegressor over_cnn(nn::SequenceEncoder::Conv1d);
  fmt::print("parameters: {} over LSTM states, {} over Conv1d states (kernel 3); over RNN: {}\n",
             over_lstm.num_parameters(), over_cnn.num_parameters(), model.num_parameters());
  train_model(over_lstm, train, steps, "lstm", "build/tutorials/07_lstm_loss.csv");
  train_model(over_cnn, train, steps, "cnn", "build/tutorials/07_cnn_loss.csv");

  section("6. Held-out sequences");
  NoGradGuard no_grad;
  for (AttentionRegressor* m : {&model, &over_lstm, &over_cnn}) m->eval();
  const double plain_mse = mse_of(plain.forward(test.x), test.y);
  fmt::print("{:<44} {:.4f}\n{:<44} {:.4f}\n", "MSE, predict the mean", baseline,
             "MSE, RNN, last state only", plain_mse);
  double model_mse = 0;
  for (AttentionRegressor* m : {&model, &over_lstm, &over_cnn}) {
    const double mse = mse_of(m->forward(test.x), test.y);  // m->features: this forward's
    if (m == &model) model_mse = mse;
    fmt::print("{:<44} {:.4f}   weight on the marked positions {:.3f}, within 1 step {:.3f}\n",
               fmt::format("MSE, attention over {} states",
                           nn::encoder_name(m->attention->encoder)),
               mse, weight_near_marked(*m, test, 0), weight_near_marked(*m, test, 1));
  }
  fmt::print("(uniform weights: {:.3f} on the marked positions, about {:.3f} within 1 step)\n",
             2.0 / T, 6.0 / T);
  HeatMapOptions heat;
  for (int64_t b = 0; b < 6; ++b) heat.row_labels.push_back(fmt::format("sequence {} ", b));
  for (int64_t t = 1; t <= T; ++t) heat.col_labels.push_back(std::to_string(t));
  heat.scale = true;
  for (const AttentionRegressor* m : {&model, &over_cnn}) {
    fmt::print("attention weights a_i [F0.6] over {} states, 6 held-out sequences, positions 1..{}:\n",
               nn::encoder_name(m->attention->encoder), T);
    fmt::print("{}", heat_map(narrow(m->features.weights, 0, 0, 6), heat));
  }
  save_model(model, "build/tutorials/07_model.safetensors");

  const bool ok = model_mse < kTargetRatio * baseline;
  fmt::print(
      "\nheld-out MSE {:.4f} vs {:.4f} for predicting the mean: ratio {:.2f} (target: < {}) {}\n",
      model_mse, baseline, model_mse / baseline, kTargetRatio, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
