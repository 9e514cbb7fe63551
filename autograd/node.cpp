#include "autograd/node.hpp"

#include <cmath>
#include <string>

#include "autograd/grad_mode.hpp"
#include "autograd/tape.hpp"
#include "autograd/trace.hpp"
#include "core/error.hpp"
#include "core/print.hpp"

namespace ag {

namespace {
int64_t live_nodes = 0;  // the engine is single-threaded, like the rest of attograd
uint64_t next_node_id = 0;

// How core/print.cpp names a grad_fn (core/print.hpp).
const bool grad_fn_name_set = [] {
  detail::grad_fn_name = [](const Node& node) { return node.name; };
  return true;
}();
}  // namespace

Node::Node(const char* name, Edges inputs, uint32_t output_version)
    : name(name), inputs(std::move(inputs)), output_version(output_version), id(next_node_id++) {
  ++live_nodes;
}

Node::~Node() {
  --live_nodes;
  // Dropping a node drops its inputs; an input held only here dies too, and
  // its node with it, and so on down the graph. For a chain of 100,000 ops
  // that recursion of destructors would overflow the stack. So the inputs are
  // dropped here one at a time: a node about to die first hands its own
  // inputs over to `pending`, and then dies with nothing left to recurse into.
  std::vector<Tensor> pending;
  for (Edge& edge : inputs) pending.push_back(std::move(edge.tensor));
  inputs.clear();
  while (!pending.empty()) {
    Tensor t = std::move(pending.back());
    pending.pop_back();
    bool dies_here = t.defined() && t.use_count() == 1 && t.grad_fn().use_count() == 1;
    if (dies_here) {
      Node* producer = t.grad_fn().get();
      for (Edge& edge : producer->inputs) pending.push_back(std::move(edge.tensor));
      producer->release();  // also drops the copies its backward captured
    }
  }  // each t dies at the end of its iteration, its node now without inputs
}

void Node::release() {
  inputs.clear();
  inputs.shrink_to_fit();
  released = true;
}

Grads Node::backward(const Tensor& grad_output, const Tensor& output, const GradSums&) {
  return backward(grad_output, output);
}

Tensor GradSums::existing(size_t i) const {
  if (!enabled_ || i >= node_.inputs.size() || i >= max_inputs) return Tensor();
  const Tensor& input = node_.inputs[i].tensor;
  if (!input.defined() || !input.requires_grad()) return Tensor();
  const std::shared_ptr<TensorImpl>& slot = gradient_slot(input);
  // added into while the node runs: only a sum the engine alone holds
  if (!may_add_in_place(slot, /*users_grad=*/false)) return Tensor();
  handed_[i] = slot.get();
  return Tensor(slot);
}

Tensor GradSums::existing_or_new(size_t i, const Shape& shape, bool& adding) const {
  Tensor sum = existing(i);
  adding = sum.defined();
  return adding ? sum : Tensor::empty(shape);
}

Tensor GradSums::output_gradient_or_new(const Tensor& g) const {
  // (enabled_ is off under anomaly detection and while a tape records)
  const bool engine_alone_holds_g = enabled_ && !trace_enabled() && g.use_count() == 1;
  return engine_alone_holds_g ? g : Tensor::empty(g.shape());
}

std::shared_ptr<TensorImpl>& gradient_slot(const Tensor& t) {
  return t.is_leaf() ? t.impl()->grad : t.grad_fn()->grad_of_output;
}

bool may_add_in_place(const std::shared_ptr<TensorImpl>& sum, bool users_grad) {
  return sum && (users_grad || sum.use_count() == 1);
}

std::shared_ptr<TensorImpl> first_sum(const Tensor& g, bool users_grad) {
  return users_grad && g.use_count() > 1 ? g.detach().impl_ptr() : g.impl_ptr();
}

int64_t Node::live_count() { return live_nodes; }

void attach_node(Tensor& output, std::shared_ptr<Node> node) {
  output.impl()->grad_fn = std::move(node);
  output.impl()->requires_grad = true;
  if (trace_enabled()) trace_forward(*output.impl()->grad_fn, output);
  if (tape_recording()) tape_forward(*output.impl()->grad_fn, output);
}

namespace {
bool holds_infinity(const Tensor& t) {
  if (!t.defined()) return false;
  const real* x = t.data();
  for (int64_t i = 0, n = t.numel(); i < n; ++i)
    if (std::isinf(x[i])) return true;
  return false;
}
}  // namespace

void check_anomaly(const Tensor& output, const char* op, const Tensor* first, const Tensor* last,
                   bool infinity_given) {
  if (!is_anomaly_enabled() || is_running_backward()) return;
  const real* x = output.data();
  int64_t infinity_at = -1;
  for (int64_t i = 0, n = output.numel(); i < n; ++i) {
    AG_CHECK(!std::isnan(x[i]),
             "anomaly: the op {} (recorded as {}) produced {} at flat index {} of its output {}",
             forward_name(op), op, x[i], i, describe(output));
    if (infinity_at < 0 && std::isinf(x[i])) infinity_at = i;
  }
  if (infinity_at < 0 || infinity_given) return;
  for (const Tensor* t = first; t != last; ++t)
    if (holds_infinity(*t)) return;  // passed on, not made here
  throw Error(fmt::format(
      "anomaly: the op {} (recorded as {}) produced {} at flat index {} of its output {}, from "
      "finite inputs",
      forward_name(op), op, x[infinity_at], infinity_at, describe(output)));
}

}  // namespace ag
