#include "autograd/grad_mode.hpp"

namespace ag {

namespace {
thread_local bool grad_enabled = true;
thread_local bool running_backward = false;
bool anomaly_enabled = false;
}  // namespace

bool is_running_backward() { return running_backward; }
BackwardScope::BackwardScope() : previous_(running_backward) { running_backward = true; }
BackwardScope::~BackwardScope() { running_backward = previous_; }

bool is_grad_enabled() { return grad_enabled; }
void set_grad_enabled(bool enabled) { grad_enabled = enabled; }
void set_detect_anomaly(bool enabled) { anomaly_enabled = enabled; }
bool is_anomaly_enabled() { return anomaly_enabled; }

}  // namespace ag
