// Learning-rate schedules: each one's closed form, lr_at(epoch); the formulas
// and their PyTorch equivalents are in lr_scheduler.hpp.
// (No formula ID: the articles give no learning-rate schedules.)
#include "layers/framework/lr_scheduler.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace ag::optim {

// ===================================================================================
// LRScheduler
// ===================================================================================

LRScheduler::LRScheduler(Optimizer& optimizer, const char* name)
    : optimizer_(optimizer), name_(name), base_lr_(0) {
  // PyTorch: param_group.setdefault("initial_lr", param_group["lr"])
  if (!optimizer.has_initial_lr_) {
    optimizer.has_initial_lr_ = true;
    optimizer.initial_lr_ = optimizer.lr();
  }
  base_lr_ = optimizer.initial_lr_;
}

void LRScheduler::start() {
  last_epoch_ = 0;
  last_lr_ = static_cast<real>(lr_at(0));
  optimizer_.set_lr(last_lr_);
}

void LRScheduler::step() {
  ++last_epoch_;
  last_lr_ = static_cast<real>(lr_at(last_epoch_));
  optimizer_.set_lr(last_lr_);
}

void LRScheduler::check_setting(bool ok, const char* what, double value, const char* valid) const {
  AG_CHECK(ok, "{}: invalid {} {} (valid: {})", name_, what, value, valid);
}

// ===================================================================================
// StepLR
// ===================================================================================

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, real gamma)
    : LRScheduler(optimizer, "StepLR"), step_size(step_size), gamma(gamma) {
  check_setting(step_size >= 1, "step_size", double(step_size), "step_size >= 1");
  check_setting(std::isfinite(gamma) && gamma >= 0, "gamma", gamma, "a finite gamma >= 0");
  start();
}

double StepLR::lr_at(int64_t epoch) const {
  // lr_e = base_lr * gamma^floor(e / step_size)
  return double(base_lr_) * std::pow(double(gamma), double(epoch / step_size));
}

// ===================================================================================
// CosineAnnealingLR
// ===================================================================================

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, real eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), T_max(T_max), eta_min(eta_min) {
  check_setting(T_max >= 1, "T_max", double(T_max), "T_max >= 1");
  check_setting(std::isfinite(eta_min) && eta_min >= 0, "eta_min", eta_min,
                "a finite eta_min >= 0");
  start();
}

double CosineAnnealingLR::lr_at(int64_t epoch) const {
  // lr_e = eta_min + (base_lr - eta_min) * (1 + cos(pi e / T_max)) / 2
  return double(eta_min) + (double(base_lr_) - double(eta_min)) *
                               (1 + std::cos(M_PI * double(epoch) / double(T_max))) / 2;
}

// ===================================================================================
// LinearLR
// ===================================================================================

LinearLR::LinearLR(Optimizer& optimizer, real start_factor, real end_factor, int64_t total_iters)
    : LRScheduler(optimizer, "LinearLR"),
      start_factor(start_factor),
      end_factor(end_factor),
      total_iters(total_iters) {
  // start_factor 0 would make PyTorch's step divide by zero: refused there too.
  check_setting(start_factor > 0 && start_factor <= 1, "start_factor", start_factor,
                "0 < start_factor <= 1");
  check_setting(end_factor >= 0 && end_factor <= 1, "end_factor", end_factor,
                "0 <= end_factor <= 1");
  check_setting(total_iters >= 1, "total_iters", double(total_iters), "total_iters >= 1");
  start();
}

double LinearLR::lr_at(int64_t epoch) const {
  // lr_e = base_lr * (start + (end - start) * min(e, total_iters) / total_iters)
  const double progress = double(std::min(epoch, total_iters)) / double(total_iters);
  return double(base_lr_) *
         (double(start_factor) + (double(end_factor) - double(start_factor)) * progress);
}

// ===================================================================================
// SequentialLR
// ===================================================================================

SequentialLR::SequentialLR(Optimizer& optimizer,
                           std::vector<std::shared_ptr<LRScheduler>> schedulers_in,
                           std::vector<int64_t> milestones_in)
    : LRScheduler(optimizer, "SequentialLR"),
      schedulers(std::move(schedulers_in)),
      milestones(std::move(milestones_in)) {
  AG_CHECK(!schedulers.empty(), "SequentialLR: got no schedulers");
  AG_CHECK(milestones.size() + 1 == schedulers.size(),
           "SequentialLR: {} schedulers need {} milestones, got {}", schedulers.size(),
           schedulers.size() - 1, milestones.size());
  for (size_t i = 0; i < schedulers.size(); ++i) {
    AG_CHECK(schedulers[i] != nullptr, "SequentialLR: scheduler {} is null", i);
    AG_CHECK(&schedulers[i]->optimizer() == &optimizer,
             "SequentialLR: scheduler {} ({}) belongs to another optimizer", i,
             schedulers[i]->name());
  }
  for (size_t i = 0; i < milestones.size(); ++i)
    AG_CHECK(milestones[i] >= 1 && (i == 0 || milestones[i] > milestones[i - 1]),
             "SequentialLR: milestone {} is {}; milestones must be >= 1 and increasing", i,
             milestones[i]);
  start();
}

double SequentialLR::lr_at(int64_t epoch) const {
  // the scheduler whose stretch holds e, at e counted from its own milestone
  const size_t index = static_cast<size_t>(
      std::upper_bound(milestones.begin(), milestones.end(), epoch) - milestones.begin());
  const int64_t local = index == 0 ? epoch : epoch - milestones[index - 1];
  return schedulers[index]->lr_at(local);
}

}  // namespace ag::optim
