// Chapter 2: a linear softmax classifier, then a small MLP, on 3-class spirals.
//
// A linear classifier cuts the plane into regions with straight borders, so it
// cannot follow spiral arms; one hidden layer with ReLU bends the borders.
// Both are trained the same way: logits, cross-entropy, backward, optimizer
// step. The decision regions are drawn in the terminal for each.
//
// Target: the MLP classifies at least 95% of the training points correctly.
// Text: docs/tutorials/02-linear-softmax.md
// make debug-02 breaks in: ag::nn::Linear::forward
#include <cmath>
#include <iostream>

#include "layers/nn.hpp"
#include "tutorials/terminal.hpp"

using namespace ag;
using namespace ag::tutorial;

namespace {

constexpr int64_t kClasses = 3;
constexpr int64_t kPointsPerClass = 100;
constexpr double kTarget = 0.95;

// The points of a data set (N,2) and their classes (N), kept both as a list of
// ids (for accuracy and plots) and as a tensor of whole numbers (for the loss).
struct Dataset {
  Tensor x;
  std::vector<int64_t> labels;
  Tensor y;
};

// Spirals as in CS231n: class k is an arm whose radius grows from 0 to 1 while
// its angle turns through 4 radians, starting at 4k, with a little noise on the
// angle. The arms wind around each other, so no straight line separates them.
Dataset make_spirals(int64_t per_class, int64_t classes, Generator& gen) {
  std::vector<real> xy;
  Dataset d;
  for (int64_t k = 0; k < classes; ++k)
    for (int64_t i = 0; i < per_class; ++i) {
      const double radius = double(i) / double(per_class - 1);
      const double angle = 4.0 * k + 4.0 * radius + 0.2 * gen.normal();
      xy.push_back(static_cast<real>(radius * std::sin(angle)));
      xy.push_back(static_cast<real>(radius * std::cos(angle)));
      d.labels.push_back(k);
    }
  d.x = from_vector(xy, {per_class * classes, 2}).set_name("x");
  d.y = from_vector(std::vector<real>(d.labels.begin(), d.labels.end())).set_name("y");
  return d;
}

// Full-batch training: every step sees all points. Returns the loss curve.
//   logits z = model(x)                     (N,3)
//   p_k = exp(z_k) / sum_j exp(z_j)         softmax over the classes
//   loss = mean_i -log p_{y_i}              cross-entropy; its gradient is p - onehot(y)
std::vector<double> train(nn::UnaryModule& model, const Dataset& data, optim::Optimizer& opt,
                          int64_t steps, const std::string& label, const std::string& csv_path) {
  Progress progress(label, steps);
  LossCsv csv(csv_path, "accuracy");
  for (int64_t step = 1; step <= steps; ++step) {
    opt.zero_grad();
    Tensor logits = model(data.x);
    Tensor loss = nn::cross_entropy(logits, data.y);
    loss.backward();
    opt.step();
    const double acc = accuracy(logits, data.labels);  // of the logits before this step
    csv.add(step, loss.item(), acc);
    progress.update(step, loss.item(), fmt::format("train acc {:5.1f}%", 100 * acc));
  }
  fmt::print("  loss curve: {}\n", csv.save());
  return csv.losses();
}

double evaluate(nn::UnaryModule& model, const Dataset& data) {
  NoGradGuard no_grad;
  return accuracy(model(data.x), data.labels);
}

void draw_regions(nn::UnaryModule& model, const Dataset& data) {
  Classify classify = [&model](const Tensor& points) { return predicted_classes(model(points)); };
  fmt::print("{}", region_plot(classify, data.x, data.labels));
}

}  // namespace

int main() {
  manual_seed(0);  // the model's initial weights
  Generator data_gen(1);

  section("1. The data: three spiral arms");
  Dataset data = make_spirals(kPointsPerClass, kClasses, data_gen);
  fmt::print("x: {} points in the plane {}, y: {} class ids {}\n", data.x.size(0),
             shape_str(data.x.shape()), data.y.size(0), shape_str(data.y.shape()));
  fmt::print("the middle point of each arm:\n");
  for (int64_t i : {int64_t{50}, kPointsPerClass + 50, 2 * kPointsPerClass + 50})
    fmt::print("  x[{:>3}] = ({:7.4f}, {:7.4f})   y = {}\n", i, data.x.at({i, 0}),
               data.x.at({i, 1}), data.labels[i]);

  section("2. A linear softmax classifier");
  // z = x W^T + b: W (3,2), b (3). The region of class k is where z_k is the
  // largest of the three: an intersection of half-planes, a wedge.
  nn::Linear linear(2, kClasses);
  std::cout << linear << "\n";
  optim::Adam linear_opt(linear.parameters(), /*lr=*/0.05);
  train(linear, data, linear_opt, 300, "linear", "build/tutorials/02_linear_loss.csv");
  const double linear_acc = evaluate(linear, data);
  fmt::print("linear classifier: training accuracy {:.1f}% (chance: 33.3%)\n", 100 * linear_acc);
  draw_regions(linear, data);
  fmt::print("Straight borders: each wedge holds parts of all three arms.\n");

  section("3. A two-layer MLP");
  // h = relu(x W1^T + b1)   (N,2) -> (N,H)
  // z = h W2^T + b2         (N,H) -> (N,3)
  // ReLU makes the map piecewise linear with many pieces, so borders can bend.
  const int64_t hidden = 64;
  nn::Sequential mlp({std::make_shared<nn::Linear>(2, hidden), std::make_shared<nn::ReLU>(),
                      std::make_shared<nn::Linear>(hidden, kClasses)});
  std::cout << mlp << "\n";
  optim::Adam mlp_opt(mlp.parameters(), /*lr=*/0.01);
  const int64_t steps = 1000;
  std::vector<double> losses =
      train(mlp, data, mlp_opt, steps, "mlp", "build/tutorials/02_mlp_loss.csv");
  fmt::print("{}", loss_chart(losses, "MLP training loss (cross-entropy)"));
  const double mlp_acc = evaluate(mlp, data);
  draw_regions(mlp, data);
  save_model(mlp, "build/tutorials/02_model.safetensors");

  fmt::print("\nlinear softmax: training accuracy {:.1f}%\n", 100 * linear_acc);
  fmt::print("MLP training accuracy: {:.1f}% (target: >= {:.0f}%) {}\n", 100 * mlp_acc,
             100 * kTarget, mlp_acc >= kTarget ? "PASS" : "FAIL");
  return mlp_acc >= kTarget ? 0 : 1;
}
