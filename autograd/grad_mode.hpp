// Grad mode: whether ops record the graph, and anomaly detection.
#pragma once

namespace ag {

// The switches themselves (grad_mode.cpp), read inline: every op asks.
namespace detail {
extern thread_local constinit bool grad_enabled;
extern thread_local constinit bool running_backward;
extern constinit bool anomaly_enabled;
}  // namespace detail

// True unless a NoGradGuard is alive on this thread.
inline bool is_grad_enabled() { return detail::grad_enabled; }
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
inline bool is_anomaly_enabled() { return detail::anomaly_enabled; }

// True while the engine runs backward formulas. Anomaly detection then checks
// each node's gradients (naming the node, e.g. SqrtBackward) instead of the
// helper ops inside the formulas (which the user never called).
inline bool is_running_backward() { return detail::running_backward; }
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
