// Node: one recorded op of the graph, and how ops record themselves.
//
// A tensor made by an op under grad mode points (grad_fn) to a Node that
// holds the op's inputs and a backward function: given the gradient of the
// root with respect to the op's output, it returns the gradient with respect
// to each input (the chain rule, one link). The engine (engine.cpp) walks
// these links from the root back to the leaves.
#pragma once

#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#include "autograd/grad_mode.hpp"
#include "core/tensor.hpp"

namespace ag {

// One gradient per input, in the order the inputs were recorded; an undefined
// Tensor means "no gradient flows to this input". (Its memory, like the
// nodes', comes from the engine's small-block lists: core/allocator.hpp.)
using Grads = std::vector<Tensor, BufferAllocator<Tensor>>;

struct Node;

// Where the gradient of t gathers during backward(): its .grad when t is a
// leaf, else the grad_of_output of the node that made it.
std::shared_ptr<TensorImpl>& gradient_slot(const Tensor& t);

// The aliasing rule of the gradient sums, decided here and nowhere else.
// A .grad (a leaf's, or one kept by retain_grad) is the user's: once a node
// has returned its gradients, backward adds them into it in place even while
// the user holds it (Tensor g = w.grad() then sees the sum, as in PyTorch),
// and each such change counts as one in-place change of it (its version).
// Any other sum, and any sum a node adds into while it runs (GradSums), may
// be changed in place only while the engine alone holds it: a gradient can
// also have been handed to another input (add's backward gives both inputs
// the same g), and a .grad the user holds may be the very gradient or input
// the node is reading (y.backward(w.grad()) of y = linear(x, w)).
bool may_add_in_place(const std::shared_ptr<TensorImpl>& sum, bool users_grad);
// The sum a first gradient g starts: g itself, or for a .grad a copy of a g
// someone else also holds (the user may change their .grad in place).
std::shared_ptr<TensorImpl> first_sum(const Tensor& g, bool users_grad);

// What a backward may add its gradients into, instead of returning new
// tensors for the engine to add: for input i, existing(i) is the gradient the
// input has gathered so far from its other users (its .grad for a leaf), when
// it exists and only the engine holds it (may_add_in_place); otherwise
// undefined. Off under anomaly detection (each gradient is checked on its
// own) and while a tape records (it keeps each op's own gradient). A backward that
// adds its gradient for input i into existing(i) (a GEMM with beta = 1, a loop
// of +=) returns existing(i) itself as that input's gradient, and the engine,
// seeing the sum it holds, adds nothing more. The weight gradient of a layer
// used at every step of an RNN sums one term per step: each step then adds
// its term where the sum is, without a temporary and a second pass.
class GradSums {
 public:
  GradSums(const Node& node, bool enabled) : node_(node), enabled_(enabled) {}
  Tensor existing(size_t input) const;
  // existing(input) when there is one (adding = true: add into it), else a
  // new tensor of `shape` (adding = false: write it).
  Tensor existing_or_new(size_t input, const Shape& shape, bool& adding) const;
  // Where a node may write a tensor of g's shape that it computes from
  // g = dL/d(output), each element of g read before its own result is
  // written (ReLU's mask, layer norm's dL/dx, the softmax's backward): g
  // itself when the engine alone holds g (the node then owns it: it may
  // return it as an input's gradient); else a new tensor. g is shared while
  // another input still has it as its gradient (add's backward hands the same
  // g to both), while the output keeps it as .grad (retain_grad), and while a
  // trace or a tape will show it after the node has run. Writing in place
  // spares a pass into a new, uncached buffer.
  Tensor output_gradient_or_new(const Tensor& g) const;
  // Whether `grad`, returned for `input`, is the sum existing(input) handed
  // out: the node has added its gradient there already (for the engine).
  bool handed_out(size_t input, const Tensor& grad) const {
    return input < max_inputs && handed_[input] != nullptr && grad.impl() == handed_[input];
  }

 private:
  static constexpr size_t max_inputs = 8;  // the fused recurrent cells have 7
  const Node& node_;
  bool enabled_;
  mutable const TensorImpl* handed_[max_inputs] = {};  // what existing(i) returned
};

struct Node {
  // An input the op read, and its version then (so backward can tell when it
  // was changed in place afterwards, which would make the saved values stale).
  struct Edge {
    Tensor tensor;
    uint32_t version;
  };
  using Edges = std::vector<Edge, BufferAllocator<Edge>>;

  Node(const char* name, Edges inputs, uint32_t output_version);
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // grad_output is d(root)/d(output); output is the tensor this node made.
  virtual Grads backward(const Tensor& grad_output, const Tensor& output) = 0;
  // What the engine calls: the same, for a node that may add its gradients
  // into `sums` (see GradSums). By default, backward above.
  virtual Grads backward(const Tensor& grad_output, const Tensor& output, const GradSums& sums);

  // Frees what backward needed (inputs and saved tensors); backward through a
  // released node is an error. Called by the engine unless retain_graph.
  virtual void release();

  const char* name;  // "MulBackward", as PyTorch names its grad_fn
  Edges inputs;
  uint32_t output_version;
  uint64_t id;  // creation order, for tracing and graph pictures
  bool released = false;
  uint64_t visit_mark = 0;  // the engine's "seen in this backward" flag
  // During one backward(): the sum so far of the gradients flowing into this
  // node's output from the ops that used it. Kept here, not in the output's
  // .grad, so that .grad only ever holds what the user asked to keep.
  std::shared_ptr<TensorImpl> grad_of_output;

  static int64_t live_count();  // Nodes alive now: to check graphs get freed
};

// A Node whose backward is a lambda written next to the op's forward; mul's
// (autograd/ops_elementwise.cpp), in reference mode:
//   record("MulBackward", out, {a, b}, [a, b, plain](const Tensor& g, const Tensor&) {
//     if (plain)
//       return Grads{a.requires_grad() ? sum_to(g * b, a.shape()) : Tensor(),
//                    b.requires_grad() ? sum_to(g * a, b.shape()) : Tensor()};
//     ...  // fast mode: the same sums in one pass each (kernel::mul_sum_to)
//   });
// The lambda's captures are the op's saved tensors; release() drops them.
// A lambda that also takes a `const GradSums&` may add into the inputs'
// gradients (linear's weight gradient does).
template <typename Backward>
struct LambdaNode final : Node {
  LambdaNode(const char* name, Edges inputs, uint32_t output_version, Backward fn)
      : Node(name, std::move(inputs), output_version), fn(std::move(fn)) {}
  static constexpr bool adds_into_sums =
      std::is_invocable_v<Backward&, const Tensor&, const Tensor&, const GradSums&>;
  Grads backward(const Tensor& grad_output, const Tensor& output) override {
    if constexpr (adds_into_sums)
      return (*fn)(grad_output, output, GradSums(*this, /*enabled=*/false));
    else
      return (*fn)(grad_output, output);
  }
  Grads backward(const Tensor& grad_output, const Tensor& output, const GradSums& sums) override {
    if constexpr (adds_into_sums)
      return (*fn)(grad_output, output, sums);
    else
      return (*fn)(grad_output, output);
  }
  void release() override {
    fn.reset();
    Node::release();
  }
  std::optional<Backward> fn;
};

// Whether an op must record a node: grad mode is on and at least one input
// requires grad.
inline bool needs_record(const Tensor* first, const Tensor* last) {
  if (!is_grad_enabled()) return false;
  for (const Tensor* t = first; t != last; ++t)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

// Makes `output` the result of `node` (sets grad_fn and requires_grad).
void attach_node(Tensor& output, std::shared_ptr<Node> node);

// Under set_detect_anomaly(true): throws, naming the op, if `output` holds a
// NaN, or an infinity this op made: one that none of its inputs [first, last)
// holds. An infinity passed on is not reported again where it goes next, so
// the -inf masked_fill writes on purpose (infinity_given: the op was asked to
// write an infinite value) flows through a softmax or a log_softmax; an exp
// that overflows, a log(0) or an x / 0 are reported where they happen. NaN
// always is.
void check_anomaly(const Tensor& output, const char* op, const Tensor* first = nullptr,
                   const Tensor* last = nullptr, bool infinity_given = false);

// record() without its anomaly check: for an op that checks its output itself
// (masked_fill, whose fill value may be an infinity on purpose).
template <typename Backward>
void record_unchecked(const char* name, Tensor& output, const Tensor* first, const Tensor* last,
                      Backward&& fn) {
  if (!needs_record(first, last)) return;
  Node::Edges edges;
  edges.reserve(last - first);
  for (const Tensor* t = first; t != last; ++t) edges.push_back({*t, t->version()});
  using Lambda = std::decay_t<Backward>;
  attach_node(output, std::allocate_shared<LambdaNode<Lambda>>(
                          BufferAllocator<LambdaNode<Lambda>>(), name, std::move(edges),
                          output.version(), std::forward<Backward>(fn)));
}

// Records op `name` on `inputs` with gradient rule `fn` as output's grad_fn,
// when needs_record; a no-op otherwise (under NoGradGuard, or on constants).
// Under anomaly detection, checks the output first (check_anomaly).
template <typename Backward>
void record(const char* name, Tensor& output, const Tensor* first, const Tensor* last,
            Backward&& fn) {
  if (is_anomaly_enabled()) check_anomaly(output, name, first, last);
  record_unchecked(name, output, first, last, std::forward<Backward>(fn));
}

template <typename Backward>
void record(const char* name, Tensor& output, std::initializer_list<Tensor> inputs, Backward&& fn) {
  record(name, output, inputs.begin(), inputs.end(), std::forward<Backward>(fn));
}

template <typename Backward>
void record(const char* name, Tensor& output, const std::vector<Tensor>& inputs, Backward&& fn) {
  record(name, output, inputs.data(), inputs.data() + inputs.size(), std::forward<Backward>(fn));
}

}  // namespace ag
