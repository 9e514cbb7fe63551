// Chapter 9: attention over the features of a house: seed 004's experiment on
// its own data [F4.10] [F0.1] [F0.2] [F0.4].
//
// Seed 004 (section 4) ends by fitting its attention model to the Boston
// housing prices with a mean squared error, after StandardScaler and
// train_test_split. This chapter does that experiment on the real data: the
// 506 districts of Boston (Harrison and Rubinfeld, 1978) in scikit-learn's
// copy, shipped in tutorials/data/ (source and licence in its README.md).
//
// A row is not a sequence, so the model makes one: every feature becomes a
// token, its id embedded and its standardized value scaled in,
//   token_i = tanh(E_id[i] + x_i E_value[i])                          (B,12,d)
// then point attention pools the tokens [F0.1]-[F0.4] (one weight per feature,
// per house) and a small MLP reads the price off the pooled vector. It trains
// with MSE [F4.10] against two baselines on the same split: the mean price,
// and linear regression in closed form.
//
// Target: a held-out MSE below linear regression's.
// Text: docs/tutorials/09-attention-over-features.md
// make debug-09 breaks in: ag::nn::PointAttention::forward
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <numeric>

#include "layers/nn.hpp"
#include "tutorials/terminal.hpp"

using namespace ag;
using namespace ag::tutorial;

namespace {

constexpr int64_t kDim = 16;     // d: the size of a token
constexpr int64_t kHidden = 32;  // the head's hidden layer
constexpr int64_t kEpochs = 100;
constexpr int64_t kBatch = 32;

// The 12 features the model sees, in the file's order. The file has a 13th, B,
// left out (see main).
const std::vector<std::string> kFeatures = {"CRIM", "ZN",  "INDUS", "CHAS", "NOX",     "RM",
                                            "AGE",  "DIS", "RAD",   "TAX",  "PTRATIO", "LSTAT"};
const std::vector<std::string> kMeaning = {
    "crime rate per person in the town",
    "share of residential land zoned for lots over 25,000 sq ft",
    "share of non-retail business acres in the town",
    "1 if the tract bounds the Charles River, else 0",
    "nitric oxides concentration (parts per 10 million)",
    "average number of rooms per dwelling",
    "share of owner-occupied units built before 1940",
    "weighted distance to five Boston employment centres",
    "index of access to radial highways",
    "property-tax rate per $10,000",
    "pupil-teacher ratio in the town",
    "% of the population of lower status"};
const std::string kTarget = "MEDV";  // median value of owner-occupied homes, in $1000s

// The data file, from the repository root (where make runs the chapters) or
// from the program's place in build/<flavor>/tutorials/.
std::string data_file() {
  namespace fs = std::filesystem;
  const fs::path relative = fs::path("tutorials") / "data" / "boston_house_prices.csv";
  if (fs::exists(relative)) return relative.string();
  return (fs::canonical("/proc/self/exe").parent_path() / ".." / ".." / ".." / relative).string();
}

// --- the baselines --------------------------------------------------------------------------

double mse_of(const Tensor& prediction, const Tensor& target) {
  NoGradGuard no_grad;
  // [F4.10] MSE = 1/n sum (y - y_hat)^2
  return nn::mse_loss(prediction, target).item();
}

// Least squares in closed form: with A = [x, 1] (a column of ones for the
// intercept), w minimises |A w - y|^2 where the gradient 2 A^T (A w - y) is 0,
// the normal equations (A^T A) w = A^T y, solved here by Gaussian elimination
// with partial pivoting, in double.
struct LinearRegression {
  std::vector<double> w;  // one weight per feature, then the intercept

  void fit(const Tensor& x, const Tensor& y) {
    const int64_t n = x.size(0), k = x.size(1) + 1;
    std::vector<double> ata(k * k, 0), aty(k, 0);
    for (int64_t r = 0; r < n; ++r) {
      std::vector<double> a(k, 1);  // the row [x_r, 1]
      for (int64_t j = 0; j + 1 < k; ++j) a[j] = x.at({r, j});
      for (int64_t i = 0; i < k; ++i) {
        aty[i] += a[i] * y.at({r});
        for (int64_t j = 0; j < k; ++j) ata[i * k + j] += a[i] * a[j];
      }
    }
    // eliminate below each pivot (the largest remaining entry of its column) ...
    for (int64_t c = 0; c < k; ++c) {
      int64_t pivot = c;
      for (int64_t r = c + 1; r < k; ++r)
        if (std::abs(ata[r * k + c]) > std::abs(ata[pivot * k + c])) pivot = r;
      for (int64_t j = 0; j < k; ++j) std::swap(ata[c * k + j], ata[pivot * k + j]);
      std::swap(aty[c], aty[pivot]);
      for (int64_t r = c + 1; r < k; ++r) {
        const double f = ata[r * k + c] / ata[c * k + c];
        for (int64_t j = c; j < k; ++j) ata[r * k + j] -= f * ata[c * k + j];
        aty[r] -= f * aty[c];
      }
    }
    // ... then solve from the last unknown up
    w.assign(k, 0);
    for (int64_t i = k - 1; i >= 0; --i) {
      double s = aty[i];
      for (int64_t j = i + 1; j < k; ++j) s -= ata[i * k + j] * w[j];
      w[i] = s / ata[i * k + i];
    }
  }

  Tensor predict(const Tensor& x) const {
    const int64_t n = x.size(0), features = x.size(1);
    std::vector<real> out(n);
    for (int64_t r = 0; r < n; ++r) {
      double s = w[features];
      for (int64_t j = 0; j < features; ++j) s += w[j] * x.at({r, j});
      out[r] = static_cast<real>(s);
    }
    return from_vector(out, {n});
  }
};

// --- the model -------------------------------------------------------------------------------

// Each feature a token, point attention over the 12 tokens, an MLP head:
//   x (B,12) --tokens--> (B,12,d) --PointAttention--> context (B,d), weights (B,12,1)
//            --Linear(d,32), ReLU, Linear(32,1)--> y_hat (B)
struct FeatureAttentionRegressor : nn::Module {
  std::shared_ptr<nn::Embedding> id_embedding;     // E_id (12,d): which feature a token is
  std::shared_ptr<nn::Embedding> value_embedding;  // E_value (12,d): how its value enters
  std::shared_ptr<nn::PointAttention> attention;   // [F0.1]-[F0.4]
  std::shared_ptr<nn::Sequential> head;
  Tensor feature_ids;  // 0, 1, ..., 11
  Tensor weights;      // (B,12,1) of the last forward, for the pictures

  explicit FeatureAttentionRegressor(int64_t features) : Module("FeatureAttentionRegressor") {
    id_embedding = register_module("id_embedding", std::make_shared<nn::Embedding>(features, kDim));
    value_embedding =
        register_module("value_embedding", std::make_shared<nn::Embedding>(features, kDim));
    attention = register_module("attention", std::make_shared<nn::PointAttention>(kDim));
    head = register_module(
        "head", std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::UnaryModule>>{
                    std::make_shared<nn::Linear>(kDim, kHidden), std::make_shared<nn::ReLU>(),
                    std::make_shared<nn::Linear>(kHidden, 1)}));
    feature_ids = arange(real(features));
  }

  Tensor forward(const Tensor& x) {
    // token_i = tanh(E_id[i] + x_i E_value[i])      (1,12,d) + (B,12,1) * (1,12,d) -> (B,12,d)
    const Tensor ids = unsqueeze(id_embedding->forward(feature_ids), 0);
    const Tensor values = unsqueeze(x, 2) * unsqueeze(value_embedding->forward(feature_ids), 0);
    const Tensor tokens = tanh(ids + values);
    // point attention [F0.1] [F0.2] [F0.4]: a score per token, softmax over the 12, the sum
    const nn::AttentionOutput pooled = attention->forward(tokens);
    weights = pooled.weights;
    return squeeze(head->forward(pooled.context), 1);  // (B,1) -> (B)
  }
};

// The parameters' values, to keep the best epoch's and put them back.
std::vector<Tensor> snapshot(const nn::Module& model) {
  std::vector<Tensor> values;
  for (const Tensor& p : model.parameters()) values.push_back(p.detach().clone());
  return values;
}

void restore(nn::Module& model, const std::vector<Tensor>& values) {
  NoGradGuard no_grad;
  std::vector<Tensor> params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(values[i]);
}

}  // namespace

int main() {
  manual_seed(0);
  Generator data_gen(4);

  section("1. The data: 506 districts of Boston");
  const std::string path = data_file();
  // The file's first line is "506,13,,,...", its size; the header follows.
  const CsvTable table = read_csv(path, {.skip_rows = 1});
  fmt::print("{}: {} rows; columns", path, table.num_rows());
  for (const std::string& c : table.columns) fmt::print(" {}", c);
  fmt::print("\n");
  // B = 1000 (Bk - 0.63)^2, Bk the share of Black residents of the town: the
  // reason scikit-learn withdrew the data set. Not a feature here.
  const Tensor x = table.select(kFeatures);                               // (506,12)
  const Tensor y = reshape(table.select({kTarget}), {table.num_rows()});  // (506)
  const int64_t features = x.size(1);
  fmt::print("the {} features (B left out):\n", features);
  for (int64_t j = 0; j < features; ++j) fmt::print("  {:<8} {}\n", kFeatures[j], kMeaning[j]);
  fmt::print("target {}: median value of owner-occupied homes in $1000s, {:.1f} to {:.1f}\n",
             kTarget, -max(-y).item(), max(y).item());

  section("2. Training, validation and test rows; standardization");
  // 70% to train on, 15% to choose the epoch, 15% held out to the end
  const std::vector<std::vector<int64_t>> parts =
      data::random_split(table.num_rows(), {0.7, 0.15, 0.15}, data_gen);
  const std::vector<int64_t>&train_rows = parts[0], &validation_rows = parts[1],
        &test_rows = parts[2];
  fmt::print("rows: {} train, {} validation, {} test\n", train_rows.size(), validation_rows.size(),
             test_rows.size());
  // mean and standard deviation of each feature from the training rows only,
  // then applied to all three parts
  data::StandardScaler x_scaler, y_scaler;
  x_scaler.fit(index_select(x, 0, train_rows));
  y_scaler.fit(index_select(y, 0, train_rows));
  auto features_of = [&](const std::vector<int64_t>& rows) {
    return x_scaler.transform(index_select(x, 0, rows));
  };
  const Tensor x_train = features_of(train_rows), x_validation = features_of(validation_rows),
               x_test = features_of(test_rows);
  const Tensor y_train = index_select(y, 0, train_rows),
               y_validation = index_select(y, 0, validation_rows),
               y_test = index_select(y, 0, test_rows);
  fmt::print("training means, for example:");
  for (int64_t j = 0; j < features; ++j)
    if (kFeatures[j] == "RM" || kFeatures[j] == "LSTAT")
      fmt::print(" {} {:.2f} (std {:.2f}),", kFeatures[j], x_scaler.mean.at({j}),
                 x_scaler.scale.at({j}));
  fmt::print(" price {:.2f} (std {:.2f})\n", y_scaler.mean.at({0}), y_scaler.scale.at({0}));

  section("3. Two baselines: the mean price, and linear regression");
  const double mean_price = mean(y_train).item();
  const double mean_mse = mse_of(full({int64_t(test_rows.size())}, real(mean_price)), y_test);
  LinearRegression linear;
  linear.fit(x_train, y_train);
  const double linear_mse = mse_of(linear.predict(x_test), y_test);
  fmt::print("predict the training mean {:.2f}:            held-out MSE {:.2f}\n", mean_price,
             mean_mse);
  fmt::print("linear regression (normal equations):      held-out MSE {:.2f}\n", linear_mse);
  fmt::print("its weights on the standardized features ($1000s per standard deviation):\n ");
  for (int64_t j = 0; j < features; ++j) fmt::print(" {} {:+.2f}", kFeatures[j], linear.w[j]);
  fmt::print("\n");

  section("4. Attention over the features, trained with MSE");
  FeatureAttentionRegressor model(features);
  std::cout << model << "\n";
  // AdamW; the lr rises linearly for 3 epochs, then falls along a half cosine
  data::DataLoader loader({x_train, y_scaler.transform(y_train)}, kBatch, /*shuffle=*/true,
                          data_gen);
  const int64_t warmup = 3 * loader.size(), total = kEpochs * loader.size();
  optim::AdamW opt(model.parameters(), /*lr=*/0.01, {0.9, 0.999}, 1e-8, /*weight_decay=*/1e-4);
  auto warm = std::make_shared<optim::LinearLR>(opt, 0.1, 1.0, warmup);
  auto cosine = std::make_shared<optim::CosineAnnealingLR>(opt, total - warmup, 1e-4);
  optim::SequentialLR schedule(opt, {warm, cosine}, {warmup});
  auto validation_mse = [&] {
    NoGradGuard no_grad;
    model.eval();
    const double mse =
        mse_of(y_scaler.inverse_transform(model.forward(x_validation)), y_validation);
    model.train();
    return mse;
  };
  Progress progress("train", kEpochs);
  LossCsv csv("build/tutorials/09_boston_loss.csv", "validation_mse");
  double best_mse = INFINITY;
  int64_t best_epoch = 0;
  std::vector<Tensor> best = snapshot(model);
  for (int64_t epoch = 1; epoch <= kEpochs; ++epoch) {
    double epoch_loss = 0;
    for (const data::DataLoader::Batch& batch : loader) {
      opt.zero_grad();
      // [F4.10] MSE = 1/n sum (y - y_hat)^2, on the standardized price
      Tensor loss = nn::mse_loss(model.forward(batch[0]), batch[1]);
      loss.backward();
      opt.step();
      schedule.step();  // per batch: the lr of the next step
      epoch_loss += loss.item() * double(batch[0].size(0));
    }
    epoch_loss /= double(loader.num_rows());
    // keep the epoch whose validation MSE is lowest
    const double mse = validation_mse();
    if (mse < best_mse) {
      best_mse = mse;
      best_epoch = epoch;
      best = snapshot(model);
    }
    csv.add(epoch, epoch_loss, mse);
    progress.update(epoch, epoch_loss, fmt::format("validation MSE {:.2f}", mse));
  }
  restore(model, best);
  ChartOptions chart;
  chart.title = "training loss (MSE of the standardized price, mean over each epoch)";
  chart.log_y = true;
  chart.x_label = "epoch";
  fmt::print("{}", line_chart(csv.losses(), chart));
  fmt::print("kept epoch {}: validation MSE {:.2f}\n", best_epoch, best_mse);

  section("5. Held-out districts");
  NoGradGuard no_grad;
  model.eval();
  const double model_mse = mse_of(y_scaler.inverse_transform(model.forward(x_test)), y_test);
  fmt::print("{:<44} {:.2f}\n{:<44} {:.2f}\n{:<44} {:.2f}\n", "held-out MSE, predict the mean",
             mean_mse, "held-out MSE, linear regression", linear_mse,
             "held-out MSE, attention over the features", model_mse);

  // the weights a_i [F0.2] of each held-out district, averaged over the districts
  const Tensor weights = reshape(model.weights, {x_test.size(0), features});  // (n,12)
  const Tensor average = mean(weights, 0);
  std::vector<int64_t> order(features);
  std::iota(order.begin(), order.end(), int64_t{0});
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return average.at({a}) > average.at({b}); });
  fmt::print(
      "\nthe features the attention weights most, mean weight over the held-out districts\n"
      "(uniform: {:.3f}):\n",
      1.0 / double(features));
  for (int64_t j : order)
    fmt::print("  {:<8} {:.3f} {}\n", kFeatures[j], average.at({j}),
               std::string(static_cast<size_t>(std::lround(average.at({j}) * 100)), '#'));
  fmt::print("the weights a_i of 6 held-out districts (price in $1000s, and the model's guess):\n");
  HeatMapOptions heat;
  for (const std::string& name : kFeatures) heat.col_labels.push_back(name.substr(0, 5));
  heat.numbers = true;
  const Tensor guesses = y_scaler.inverse_transform(model.forward(narrow(x_test, 0, 0, 6)));
  for (int64_t r = 0; r < 6; ++r)
    heat.row_labels.push_back(fmt::format("{:4.1f} ({:4.1f}) ", y_test.at({r}), guesses.at({r})));
  fmt::print("{}", heat_map(reshape(model.weights, {6, features}), heat));

  const bool ok = model_mse < linear_mse;
  fmt::print("\nheld-out MSE {:.2f} vs {:.2f} for linear regression (target: below it) {}\n",
             model_mse, linear_mse, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
