// (No formula ID: the articles give no learning-rate schedules.)
// Learning-rate schedules, as torch.optim.lr_scheduler: StepLR,
// CosineAnnealingLR, LinearLR (a linear warm-up) and SequentialLR (one
// schedule after another, e.g. a warm-up then a cosine).
//
// A scheduler changes its optimizer's learning rate each time step() is
// called, once per epoch or once per batch, after optimizer.step(), as in
// PyTorch:
//
//   optim::Adam opt(model.parameters(), /*lr=*/0.01);
//   optim::CosineAnnealingLR scheduler(opt, /*T_max=*/steps, /*eta_min=*/0.0005);
//   for (int64_t step = 0; step < steps; ++step) {
//     opt.zero_grad();
//     loss(model).backward();
//     opt.step();
//     scheduler.step();        // the lr of the next step
//   }
//
// The lr after e calls of step() is lr_at(e), a closed form of e and the
// optimizer's initial lr (epoch 0 is the lr the scheduler sets when it is
// made). PyTorch's step() computes the same numbers by updating the previous
// lr (a "chainable" form); the two agree to rounding, checked against PyTorch
// 1.13's trajectories (tests/test_optim_trajectories.cpp). A scheduler holds a
// reference to its optimizer, which must outlive it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/framework/optim.hpp"

namespace ag::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // One epoch (or batch) on: last_epoch + 1, and the optimizer's lr becomes
  // lr_at(last_epoch).
  void step();
  // The lr of epoch e (e >= 0) by the schedule's formula.
  virtual double lr_at(int64_t epoch) const = 0;

  int64_t last_epoch() const { return last_epoch_; }  // calls of step() so far
  real get_last_lr() const { return last_lr_; }       // the lr the schedule set last
  real base_lr() const { return base_lr_; }           // the optimizer's initial lr
  const std::string& name() const { return name_; }   // "StepLR", ...
  Optimizer& optimizer() const { return optimizer_; }

 protected:
  // Takes the optimizer's initial_lr() as base_lr (recording it in the
  // optimizer if this is its first scheduler). Each derived constructor calls
  // start() once its own settings are checked: lr_at is virtual, so the base
  // cannot call it.
  LRScheduler(Optimizer& optimizer, const char* name);
  void start();  // last_epoch = 0: the optimizer's lr becomes lr_at(0)
  // Throws "<name>: invalid <what> <value> (valid: <valid>)" unless ok.
  void check_setting(bool ok, const char* what, double value, const char* valid) const;

  Optimizer& optimizer_;
  std::string name_;
  real base_lr_;
  int64_t last_epoch_ = 0;
  real last_lr_ = 0;
};

// torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=0.1): the lr is
// multiplied by gamma every step_size epochs,
//   lr_e = base_lr * gamma^floor(e / step_size)
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, real gamma = real(0.1));
  double lr_at(int64_t epoch) const override;
  int64_t step_size;
  real gamma;
};

// torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max, eta_min=0): the lr
// falls from base_lr to eta_min along half a cosine over T_max epochs,
//   lr_e = eta_min + (base_lr - eta_min) * (1 + cos(pi e / T_max)) / 2
// and, past T_max, rises again along the same cosine, as PyTorch's does
// (Loshchilov and Hutter's SGDR without the restarts).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, real eta_min = 0);
  double lr_at(int64_t epoch) const override;
  int64_t T_max;
  real eta_min;
};

// torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1/3, end_factor=1,
// total_iters=5): the lr moves linearly from start_factor * base_lr to
// end_factor * base_lr over total_iters epochs, then stays,
//   lr_e = base_lr * (start + (end - start) * min(e, total_iters) / total_iters)
// With a small start_factor and end_factor 1 it is the linear warm-up of
// Goyal et al. (2017) and of Transformer training: small steps while Adam's
// moments and the weights are still far from anything sensible.
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, real start_factor = real(1.0 / 3), real end_factor = 1,
           int64_t total_iters = 5);
  double lr_at(int64_t epoch) const override;
  real start_factor, end_factor;
  int64_t total_iters;
};

// torch.optim.lr_scheduler.SequentialLR(optimizer, schedulers, milestones):
// schedulers[0] until epoch milestones[0], then schedulers[1] counted from 0
// again, and so on. All must belong to `optimizer`; milestones are increasing,
// one fewer than the schedulers. The schedulers inside are driven by this one:
// do not call their step().
//   auto warmup = std::make_shared<optim::LinearLR>(opt, 0.1, 1.0, 100);
//   auto cosine = std::make_shared<optim::CosineAnnealingLR>(opt, 900);
//   optim::SequentialLR scheduler(opt, {warmup, cosine}, {100});
class SequentialLR : public LRScheduler {
 public:
  SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<int64_t> milestones);
  double lr_at(int64_t epoch) const override;
  std::vector<std::shared_ptr<LRScheduler>> schedulers;
  std::vector<int64_t> milestones;
};

}  // namespace ag::optim
