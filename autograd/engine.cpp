// The backward engine: reverse-mode differentiation over the recorded graph.
//
// backward() on a root tensor L:
//   1. Sort the graph topologically, without recursion (an RNN unrolled over
//      10,000 steps is a chain 10,000 nodes deep; recursion would overflow the
//      stack): after sorting, every tensor comes after all tensors made from it.
//   2. Seed dL/dL = 1 (or the gradient given), then visit tensors from the root
//      down. Each visited tensor's node turns dL/d(output) into dL/d(input) for
//      each input; a tensor used twice (b = a + a) receives the sum.
//   3. Leaves (tensors no op made, such as parameters) keep their gradient in
//      .grad, adding to what earlier backward() calls left there; the
//      intermediate ones are dropped as soon as they are used.
//   4. Free each node's saved tensors after use, unless retain_graph.
#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.hpp"
#include "autograd/node.hpp"
#include "autograd/tape.hpp"
#include "autograd/trace.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/kernels.hpp"

namespace ag {

namespace {

uint64_t backward_epoch = 0;  // marks nodes visited by the current backward()

void check_not_released(const Node& node, const Tensor& t) {
  AG_CHECK(!node.released,
           "backward: trying to go through the graph a second time: the saved values of {} (the "
           "op that made {}) were freed by an earlier backward(); call backward(ag::Tensor(), "
           "/*retain_graph=*/true) the first time if you need to go through it twice",
           node.name, describe(t));
}

// Reverse post-order of the tensors behind root: outputs before inputs. Only
// tensors made by ops are listed; leaves are reached through their users.
std::vector<Tensor> topological_order(const Tensor& root) {
  const uint64_t mark = ++backward_epoch;
  std::vector<Tensor> post_order;
  // Each stack entry: a tensor and how many of its node's inputs were pushed.
  std::vector<std::pair<Tensor, size_t>> stack;
  check_not_released(*root.grad_fn(), root);
  root.grad_fn()->visit_mark = mark;
  root.grad_fn()->grad_of_output.reset();
  stack.push_back({root, 0});
  while (!stack.empty()) {
    Node& node = *stack.back().first.grad_fn();
    size_t& next = stack.back().second;
    if (next < node.inputs.size()) {
      const Tensor& input = node.inputs[next++].tensor;
      Node* producer = input.grad_fn().get();
      if (producer && producer->visit_mark != mark) {
        check_not_released(*producer, input);
        producer->visit_mark = mark;
        producer->grad_of_output.reset();  // drop leftovers of an interrupted backward
        stack.push_back({input, 0});       // may reallocate: node/next not used after
      }
    } else {
      post_order.push_back(std::move(stack.back().first));
      stack.pop_back();
    }
  }
  std::reverse(post_order.begin(), post_order.end());
  return post_order;
}

// Adds g to a gradient sum (slot): a .grad (users_grad) or a node's
// grad_of_output, by the aliasing rule of autograd/node.hpp (may_add_in_place).
void accumulate(std::shared_ptr<TensorImpl>& slot, const Tensor& g, bool users_grad) {
  if (!slot) {
    slot = first_sum(g, users_grad);
    return;
  }
  if (may_add_in_place(slot, users_grad)) {
    real* sum = slot->data.data();  // sum[i] += g[i]
    kernel::zip_loop(sum, g.data(), sum, g.numel(), false, false,
                     [](real x, real y) { return x + y; });
    if (users_grad) ++slot->version;
    return;
  }
  Tensor sum = kernel::zip(Tensor(slot), g, "backward", [](real x, real y) { return x + y; });
  slot = sum.impl_ptr();
}

// Sends g to a tensor: into its .grad if it is a leaf, else to the node that
// made it, which passes it on when its turn comes.
void send_gradient(const Tensor& t, const Tensor& g) {
  accumulate(gradient_slot(t), g, /*users_grad=*/t.is_leaf());
}

void check_versions(const Node& node, const Tensor& output) {
  AG_CHECK(output.version() == node.output_version,
           "backward: the output {} of {} was changed in place after it was computed; its "
           "gradient would be wrong. Change a detach()ed copy instead",
           describe(output), node.name);
  for (const Node::Edge& edge : node.inputs)
    AG_CHECK(
        edge.tensor.version() == edge.version,
        "backward: {}, an input of {}, was changed in place after {} used it (version {} then, "
        "{} now); the gradient would use the new values. Change a detach()ed copy instead",
        describe(edge.tensor), node.name, node.name, edge.version, edge.tensor.version());
}

void check_gradient_finite(const Tensor& g, const Node& node, const Tensor& input) {
  const real* x = g.data();
  for (int64_t i = 0, n = g.numel(); i < n; ++i)
    AG_CHECK(std::isfinite(x[i]),
             "anomaly: {} produced {} in the gradient of its input {} at flat index {}", node.name,
             x[i], describe(input), i);
}

}  // namespace

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  AG_CHECK(defined(), "backward: called on an undefined tensor");
  AG_CHECK(requires_grad(),
           "backward: {} does not require grad: no input of the ops that made it has "
           "requires_grad set (or it was made under NoGradGuard)",
           describe(*this));
  Tensor seed = gradient;
  if (!seed.defined()) {
    AG_CHECK(numel() == 1,
             "backward: {} has {} elements; backward() without a gradient needs a 1-element "
             "tensor (a loss). Reduce it first (sum, mean) or pass a gradient of shape {}",
             describe(*this), numel(), shape_str(shape()));
    seed = ones(shape());
  } else {
    AG_CHECK(seed.shape() == shape(), "backward: gradient of shape {} does not match {}",
             shape_str(seed.shape()), describe(*this));
  }
  NoGradGuard no_grad;  // gradients are plain values: computing them records nothing
  BackwardScope in_backward;
  if (is_leaf()) {  // x.backward() on a leaf: dx/dx = 1
    send_gradient(*this, seed);
    if (tape_recording()) tape_backward_done();
    return;
  }

  std::vector<Tensor> order = topological_order(*this);
  send_gradient(*this, seed);
  for (Tensor& t : order) {
    Node& node = *t.grad_fn();
    Tensor grad_output(std::move(node.grad_of_output));
    if (grad_output.defined()) {
      if (t.impl()->retains_grad) accumulate(t.impl()->grad, grad_output, /*users_grad=*/true);
      check_versions(node, t);
      // Not under anomaly detection, which checks each gradient on its own, nor
      // while a tape records each op's own gradients.
      const GradSums sums(node, !is_anomaly_enabled() && !tape_recording());
      Grads grads = node.backward(grad_output, t, sums);
      if (trace_enabled()) trace_backward(node, grad_output, grads);
      if (tape_recording()) tape_backward(node, grad_output, grads);
      AG_CHECK(grads.size() == node.inputs.size(),
               "backward: {} returned {} gradients for {} inputs", node.name, grads.size(),
               node.inputs.size());
      for (size_t i = 0; i < grads.size(); ++i) {
        const Tensor& input = node.inputs[i].tensor;
        if (!grads[i].defined() || !input.requires_grad()) continue;
        AG_CHECK(grads[i].shape() == input.shape(),
                 "backward: {} returned a gradient of shape {} for its input {}", node.name,
                 shape_str(grads[i].shape()), describe(input));
        if (is_anomaly_enabled()) check_gradient_finite(grads[i], node, input);
        // The node added this gradient into the input's sum itself (GradSums).
        if (sums.handed_out(i, grads[i])) {
          if (input.is_leaf()) ++grads[i].impl()->version;  // a change of the user's .grad
          continue;
        }
        send_gradient(input, grads[i]);
      }
    }
    if (!retain_graph) node.release();
  }
  if (tape_recording()) tape_backward_done();  // the end of a training step: may write the tape
}

void Tensor::retain_grad() {
  AG_CHECK(requires_grad(), "retain_grad: {} does not require grad", describe(*this));
  impl_->retains_grad = true;
}

}  // namespace ag
