// Optimizers and learning-rate schedules against PyTorch 1.13: ten steps of
// torch.optim (SGD, Adam, AdamW, RMSprop) and torch.optim.lr_scheduler
// (StepLR, CosineAnnealingLR, LinearLR, SequentialLR) on one small problem,
// stored by tests/data/pytorch/make_optim_fixtures.py as optim_NAME.safetensors;
// attograd takes the same steps and must land on the same weights, with the
// same learning rate at every step. Then RMSprop and AdamW by hand, and the
// errors of the optimizers and the schedules.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>

#include "core/io/safetensors.hpp"
#include "layers/nn.hpp"
#include "tests/helpers.hpp"

namespace {

using namespace ag;
using ag::testing::check_error;
using ag::testing::check_values;
using ag::testing::leaf;
namespace fs = std::filesystem;

fs::path fixture(const std::string& name) {
  const fs::path relative = fs::path("tests") / "data" / "pytorch" / name;
  if (fs::exists(relative)) return relative;  // make test runs in the repository root
  return fs::canonical("/proc/self/exe").parent_path() / ".." / ".." / ".." / relative;
}

using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;
using MakeScheduler = std::function<std::unique_ptr<optim::LRScheduler>(optim::Optimizer&)>;

// The weights PyTorch computed in float32; attograd's float flavor rounds
// differently along the way, its double flavor not at all.
constexpr double weight_tol = ag::testing::is_double ? 2e-6 : 1e-5;

// Takes the ten steps of the fixture's problem, L = sum((tanh(x W^T + b) - y)^2),
// and compares W, b and the lr after every step with PyTorch's.
void check_trajectory(const std::string& name, const MakeOptimizer& make_optimizer,
                      const MakeScheduler& make_scheduler = nullptr) {
  INFO("trajectory " << name);
  std::map<std::string, Tensor> pytorch;
  for (auto& [key, value] : load_safetensors(fixture("optim_" + name + ".safetensors").string()))
    pytorch[key] = value;
  const Tensor x = pytorch.at("x"), y = pytorch.at("y");
  Tensor weight = pytorch.at("weight.0").clone().requires_grad_();
  Tensor bias = pytorch.at("bias.0").clone().requires_grad_();
  std::unique_ptr<optim::Optimizer> opt = make_optimizer({weight, bias});
  std::unique_ptr<optim::LRScheduler> scheduler = make_scheduler ? make_scheduler(*opt) : nullptr;
  auto check_lr = [&](int k) {
    const double want = pytorch.at("lr." + std::to_string(k)).item();
    INFO("lr after " << k << " steps: " << double(opt->lr()) << ", PyTorch " << want);
    CHECK(std::abs(double(opt->lr()) - want) <= 1e-6 * want);
    if (scheduler) CHECK(double(scheduler->get_last_lr()) == double(opt->lr()));
  };
  check_lr(0);
  double worst = 0;
  for (int k = 1; k <= 10; ++k) {
    opt->zero_grad();
    sum(pow(tanh(nn::linear(x, weight, bias)) - y, 2)).backward();
    opt->step();
    if (scheduler) scheduler->step();
    INFO("step " << k);
    const double diff =
        std::max(ag::testing::max_abs_diff(weight, pytorch.at("weight." + std::to_string(k))),
                 ag::testing::max_abs_diff(bias, pytorch.at("bias." + std::to_string(k))));
    CHECK(diff < weight_tol);
    worst = std::max(worst, diff);
    check_lr(k);
    if (scheduler) CHECK(scheduler->last_epoch() == k);
  }
  MESSAGE(name << ": largest |attograd - PyTorch| over 10 steps " << worst);
}

template <typename O, typename... Args>
MakeOptimizer optimizer(Args... args) {
  return [=](std::vector<Tensor> params) { return std::make_unique<O>(std::move(params), args...); };
}

std::unique_ptr<optim::Optimizer> sgd(std::vector<Tensor> params) {
  return std::make_unique<optim::SGD>(std::move(params), real(0.1));
}

}  // namespace

TEST_CASE("optim/pytorch: SGD (momentum, weight decay) and Adam follow PyTorch for 10 steps") {
  check_trajectory("sgd_momentum", optimizer<optim::SGD>(real(0.1), real(0.9), real(0.01)));
  check_trajectory("adam", [](std::vector<Tensor> p) {
    return std::make_unique<optim::Adam>(std::move(p), real(0.05), std::pair<real, real>{0.9, 0.999},
                                         real(1e-8), real(0.1));
  });
}

TEST_CASE("optim/pytorch: AdamW follows torch.optim.AdamW for 10 steps") {
  check_trajectory("adamw", [](std::vector<Tensor> p) {
    return std::make_unique<optim::AdamW>(std::move(p), real(0.05),
                                          std::pair<real, real>{0.9, 0.999}, real(1e-8), real(0.1));
  });
}

TEST_CASE("optim/pytorch: RMSprop, plain and centered with momentum, follows PyTorch for 10 steps") {
  check_trajectory("rmsprop", optimizer<optim::RMSprop>(real(0.01)));
  check_trajectory("rmsprop_centered_momentum",
                   optimizer<optim::RMSprop>(real(0.01), real(0.9), real(1e-6), real(0.1),
                                             real(0.5), true));
}

TEST_CASE("optim/pytorch: StepLR, CosineAnnealingLR and LinearLR give PyTorch's lr every step") {
  check_trajectory("step_lr", sgd, [](optim::Optimizer& opt) {
    return std::make_unique<optim::StepLR>(opt, 3, real(0.5));
  });
  check_trajectory("cosine_annealing_lr", sgd, [](optim::Optimizer& opt) {
    return std::make_unique<optim::CosineAnnealingLR>(opt, 4, real(0.01));
  });
  check_trajectory("linear_lr", sgd, [](optim::Optimizer& opt) {
    return std::make_unique<optim::LinearLR>(opt, real(0.25), real(1), 4);
  });
}

TEST_CASE("optim/pytorch: SequentialLR, a linear warm-up then a cosine, gives PyTorch's lr") {
  check_trajectory("sequential_lr", sgd, [](optim::Optimizer& opt) {
    auto warmup = std::make_shared<optim::LinearLR>(opt, real(0.1), real(1), 3);
    auto cosine = std::make_shared<optim::CosineAnnealingLR>(opt, 5, real(0.001));
    return std::make_unique<optim::SequentialLR>(
        opt, std::vector<std::shared_ptr<optim::LRScheduler>>{warmup, cosine},
        std::vector<int64_t>{3});
  });
}

TEST_CASE("optim/RMSprop: two steps by hand, plain and centered") {
  // p = 1, grad = 2 (p - 3) = -4; lr 0.1, alpha 0.5, eps 0:
  // step 1: v = 0.5 * 16 = 8, p1 = 1 - 0.1 * (-4) / sqrt(8) = 1 + 0.4/2.828427 = 1.1414213562373095
  // step 2: grad = 2 (1.1414213562 - 3) = -3.7171572875; v = 4 + 0.5 * 13.817258 = 10.908629
  //         p2 = p1 + 0.1 * 3.7171572875 / sqrt(10.908629) = 1.2539662639358515
  Tensor p = leaf(tensor({1}));
  optim::RMSprop opt({p}, 0.1, 0.5, 0);
  CHECK(opt.name() == "RMSprop");
  CHECK(opt.alpha() == doctest::Approx(0.5));
  for (double expected : {1.1414213562373094, 1.2539662639358515}) {
    opt.zero_grad();
    sum(pow(p - real(3), 2)).backward();
    opt.step();
    check_values(p, {expected}, 1e-9 + ag::testing::tol);
  }
  // centered, step 1: g_avg = 0.5 * (-4) = -2, v = 8, denom = sqrt(8 - 4) = 2: p1 = 1 + 0.1 * 4 / 2
  Tensor q = leaf(tensor({1}));
  optim::RMSprop centered({q}, 0.1, 0.5, 0, 0, 0, true);
  sum(pow(q - real(3), 2)).backward();
  centered.step();
  check_values(q, {1.2});
}

TEST_CASE("optim/AdamW: the decay shrinks p directly, the step is Adam's on the plain gradient") {
  // p = 0.5, grad = 2 (0.5 - 0.6) = -0.2, lr 0.1, wd 1: p = 0.5 (1 - 0.1) = 0.45, then
  // Adam's first step lr * g / (|g| + eps) with g = -0.2: p1 = 0.45 + 0.1 = 0.5499999975
  // (Adam's L2 decay would have moved p down, test_optim.cpp)
  Tensor p = leaf(tensor({0.5}));
  optim::AdamW opt({p}, 0.1, {0.9, 0.999}, 1e-8, /*weight_decay=*/1);
  sum(pow(p - real(0.6), 2)).backward();
  opt.step();
  check_values(p, {0.45 + 0.1 * 0.2 / (0.2 + 1e-8)});
  CHECK(opt.weight_decay() == doctest::Approx(1));
  optim::AdamW defaults({leaf(ones({2}))});
  CHECK(defaults.weight_decay() == doctest::Approx(0.01));  // PyTorch's default, not Adam's 0
  CHECK(defaults.lr() == doctest::Approx(1e-3));
}

TEST_CASE("optim/schedulers: the lr is set on construction and by step(); initial_lr is shared") {
  Tensor w = leaf(ones({2}));
  optim::SGD opt({w}, 0.4);
  optim::LinearLR warmup(opt, 0.5, 1, 2);
  CHECK(opt.lr() == doctest::Approx(0.2));  // epoch 0: start_factor * lr, at once
  CHECK(opt.initial_lr() == doctest::Approx(0.4));
  CHECK(warmup.last_epoch() == 0);
  warmup.step();
  CHECK(opt.lr() == doctest::Approx(0.3));
  // A second scheduler on the same optimizer starts from the initial lr, not the warmed one.
  optim::StepLR decay(opt, 1, 0.5);
  CHECK(decay.base_lr() == doctest::Approx(0.4));
  decay.step();
  CHECK(opt.lr() == doctest::Approx(0.2));
  CHECK(warmup.lr_at(100) == doctest::Approx(0.4));  // past total_iters it stays at end_factor
}

TEST_CASE("optim/errors: RMSprop, AdamW and the schedulers name the value out of range") {
  Tensor w = leaf(ones({2, 3}));
  check_error([&] { optim::RMSprop({w}, -0.1); }, {"RMSprop:", "invalid learning rate -0.1"});
  check_error([&] { optim::RMSprop({w}, 0.01, 1); }, {"RMSprop:", "invalid alpha 1", "0 <= alpha < 1"});
  check_error([&] { optim::RMSprop({w}, 0.01, -0.5); }, {"RMSprop:", "invalid alpha -0.5"});
  check_error([&] { optim::RMSprop({w}, 0.01, 0.99, -1); }, {"RMSprop:", "invalid eps -1"});
  check_error([&] { optim::RMSprop({w}, 0.01, 0.99, 1e-8, -1); },
              {"RMSprop:", "invalid weight_decay -1"});
  check_error([&] { optim::RMSprop({w}, 0.01, 0.99, 1e-8, 0, -0.9); },
              {"RMSprop:", "invalid momentum -0.9"});
  check_error([&] { optim::AdamW({w}, std::numeric_limits<real>::infinity()); },
              {"AdamW:", "invalid learning rate inf"});
  check_error([&] { optim::AdamW({w}, 0.1, {0.9, 1}); }, {"AdamW:", "invalid beta2 1"});
  check_error([&] { optim::AdamW({w}, 0.1, {0.9, 0.999}, 1e-8, -0.01); },
              {"AdamW:", "invalid weight_decay -0.01"});
  check_error([&] { optim::AdamW({}); }, {"AdamW:", "empty"});
  optim::SGD opt({w}, 0.1);
  check_error([&] { optim::StepLR(opt, 0); }, {"StepLR:", "invalid step_size 0", "step_size >= 1"});
  check_error([&] { optim::StepLR(opt, 2, -0.5); }, {"StepLR:", "invalid gamma -0.5"});
  check_error([&] { optim::CosineAnnealingLR(opt, 0); }, {"CosineAnnealingLR:", "invalid T_max 0"});
  check_error([&] { optim::CosineAnnealingLR(opt, 10, -1); },
              {"CosineAnnealingLR:", "invalid eta_min -1"});
  check_error([&] { optim::LinearLR(opt, 0); },
              {"LinearLR:", "invalid start_factor 0", "0 < start_factor <= 1"});
  check_error([&] { optim::LinearLR(opt, 0.5, 1.5); }, {"LinearLR:", "invalid end_factor 1.5"});
  check_error([&] { optim::LinearLR(opt, 0.5, 1, 0); }, {"LinearLR:", "invalid total_iters 0"});
  auto warmup = std::make_shared<optim::LinearLR>(opt, 0.5, 1, 2);
  auto cosine = std::make_shared<optim::CosineAnnealingLR>(opt, 5);
  check_error([&] { optim::SequentialLR(opt, {warmup, cosine}, {}); },
              {"SequentialLR:", "2 schedulers need 1 milestones, got 0"});
  check_error([&] { optim::SequentialLR(opt, {warmup, cosine, cosine}, {3, 3}); },
              {"SequentialLR:", "milestone 1 is 3", "increasing"});
  optim::SGD other({leaf(ones({1}))}, 0.1);
  auto elsewhere = std::make_shared<optim::StepLR>(other, 2);
  check_error([&] { optim::SequentialLR(opt, {warmup, elsewhere}, {2}); },
              {"SequentialLR:", "scheduler 1 (StepLR)", "another optimizer"});
}
