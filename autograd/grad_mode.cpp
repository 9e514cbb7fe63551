#include "autograd/grad_mode.hpp"

namespace ag {

namespace detail {
thread_local constinit bool grad_enabled = true;
thread_local constinit bool running_backward = false;
constinit bool anomaly_enabled = false;
}  // namespace detail

using detail::anomaly_enabled;
using detail::grad_enabled;
using detail::running_backward;

BackwardScope::BackwardScope() : previous_(running_backward) { running_backward = true; }
BackwardScope::~BackwardScope() { running_backward = previous_; }

void set_grad_enabled(bool enabled) { grad_enabled = enabled; }
void set_detect_anomaly(bool enabled) { anomaly_enabled = enabled; }

}  // namespace ag
