// Grad mode: whether ops record the graph, and anomaly detection.
#pragma once

namespace ag {

// True unless a NoGradGuard is alive on this thread.
bool is_grad_enabled();
void set_grad_enabled(bool enabled);

// While alive, ops record nothing: for evaluation, and for optimizer updates
// (the one place in-place changes of parameters are allowed).
//   { ag::NoGradGuard no_grad; w.add_(w.grad(), -lr); }
class NoGradGuard {
 public:
  NoGradGuard() : previous_(is_grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// With anomaly detection on, every op checks its output (and backward checks
// every gradient) for NaN or Inf and throws an ag::Error naming the op.
void set_detect_anomaly(bool enabled);
bool is_anomaly_enabled();

// True while the engine runs backward formulas. Anomaly detection then checks
// each node's gradients (naming the node, e.g. SqrtBackward) instead of the
// helper ops inside the formulas (which the user never called).
bool is_running_backward();
class BackwardScope {
 public:
  BackwardScope();
  ~BackwardScope();
  BackwardScope(const BackwardScope&) = delete;
  BackwardScope& operator=(const BackwardScope&) = delete;

 private:
  bool previous_;
};

}  // namespace ag
