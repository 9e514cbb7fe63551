// Ops that change shapes or pick elements. Each backward puts the gradient
// back where the elements came from.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/kernels.hpp"
#include "core/mode.hpp"

namespace ag {

namespace {

// Every shape-only op (reshape, squeeze, unsqueeze) has the same backward:
// the gradient reshaped to the input's shape.
Tensor reshaped(const Tensor& a, const Shape& shape, const char* backward_name) {
  Tensor out = kernel::reshape(a, shape);
  record(backward_name, out, {a}, [in = a.shape()](const Tensor& g, const Tensor&) {
    return Grads{kernel::reshape(g, in)};
  });
  return out;
}

// a with its dims in `order` (checked by the caller), recorded under node_name, so
// that the trace names the function called (permute or transpose).
Tensor permuted(const Tensor& a, const std::vector<int64_t>& order, const char* node_name) {
  Tensor out = kernel::permute(a, order);
  // Moving elements is linear; its adjoint moves them back: out dim i came
  // from input dim order[i], so input dim order[i] comes from out dim i.
  record(node_name, out, {a}, [order](const Tensor& g, const Tensor&) {
    std::vector<int64_t> inverse(order.size());
    for (size_t i = 0; i < order.size(); ++i) inverse[order[i]] = static_cast<int64_t>(i);
    return Grads{kernel::permute(g, inverse)};
  });
  return out;
}

}  // namespace

// A copy, recorded as torch.clone's is: the identity, whose gradient is g itself.
Tensor Tensor::clone() const {
  check_defined(*this, "clone", "tensor");
  Tensor out = detach();
  // d(clone a)/da = 1
  record("CloneBackward", out, {*this}, [](const Tensor& g, const Tensor&) { return Grads{g}; });
  return out;
}

Tensor reshape(const Tensor& a, const Shape& shape) {
  check_defined(a, "reshape");
  Shape target = shape;
  int64_t known = 1, inferred = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      AG_CHECK(inferred < 0, "reshape: only one size may be -1 in {}", shape_str(shape));
      inferred = static_cast<int64_t>(i);
    } else {
      AG_CHECK(target[i] >= 0, "reshape: invalid size {} in {}", target[i], shape_str(shape));
      AG_CHECK(!__builtin_mul_overflow(known, target[i], &known),
               "reshape: shape {} has more elements than a 64-bit count holds (int64)",
               shape_str(shape));
    }
  }
  if (inferred >= 0) {
    AG_CHECK(known > 0 && a.numel() % known == 0,
             "reshape: cannot reshape {} ({} elements) into {}", describe(a), a.numel(),
             shape_str(shape));
    target[inferred] = a.numel() / known;
  }
  check_sizes(target, "reshape");  // the product of the sizes and the strides fit
  AG_CHECK(shape_numel(target) == a.numel(),
           "reshape: cannot reshape {} ({} elements) into {} ({})", describe(a), a.numel(),
           shape_str(shape), shape_numel(target));
  return reshaped(a, target, "ReshapeBackward");
}

Tensor permute(const Tensor& a, const std::vector<int64_t>& dims) {
  check_defined(a, "permute");
  AG_CHECK(static_cast<int64_t>(dims.size()) == a.dim(),
           "permute: {} has {} dims but the permutation ({}) has {}", describe(a), a.dim(),
           fmt::join(dims, ","), dims.size());
  std::vector<int64_t> order(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    order[i] = normalize_dim(dims[i], a.dim(), "permute", a.shape());
    AG_CHECK(!seen[order[i]], "permute: dim {} appears twice in ({})", order[i],
             fmt::join(dims, ","));
    seen[order[i]] = true;
  }
  return permuted(a, order, "PermuteBackward");
}

Tensor transpose(const Tensor& a, int64_t dim0, int64_t dim1) {
  check_defined(a, "transpose");
  int64_t d0 = normalize_dim(dim0, a.dim(), "transpose", a.shape());
  int64_t d1 = normalize_dim(dim1, a.dim(), "transpose", a.shape());
  std::vector<int64_t> dims(a.dim());
  std::iota(dims.begin(), dims.end(), 0);
  if (a.dim() > 0) std::swap(dims[d0], dims[d1]);  // a 0-dim tensor stays as it is
  return permuted(a, dims, "TransposeBackward");
}

Tensor unsqueeze(const Tensor& a, int64_t dim) {
  check_defined(a, "unsqueeze");
  // A new dim may go at any of dim()+1 places: -dim()-1 .. dim().
  dim = normalize_dim(dim, a.dim() + 1, "unsqueeze", a.shape());
  Shape shape = a.shape();
  shape.insert(shape.begin() + dim, 1);
  return reshaped(a, shape, "UnsqueezeBackward");
}

Tensor squeeze(const Tensor& a, int64_t dim) {
  check_defined(a, "squeeze");
  dim = normalize_dim(dim, a.dim(), "squeeze", a.shape());
  if (a.dim() == 0) return reshaped(a, {}, "SqueezeBackward");
  Shape shape = a.shape();
  if (shape[dim] == 1) shape.erase(shape.begin() + dim);  // as PyTorch: else unchanged
  return reshaped(a, shape, "SqueezeBackward");
}

Tensor squeeze(const Tensor& a) {
  check_defined(a, "squeeze");
  Shape shape;
  for (int64_t s : a.shape())
    if (s != 1) shape.push_back(s);
  return reshaped(a, shape, "SqueezeBackward");
}

Tensor cat(const std::vector<Tensor>& parts, int64_t dim) {
  AG_CHECK(!parts.empty(), "cat: needs at least one tensor");
  for (size_t i = 0; i < parts.size(); ++i)
    AG_CHECK(parts[i].defined(), "cat: tensor {} is an undefined tensor", i);
  const Tensor& first = parts[0];
  AG_CHECK(first.dim() > 0, "cat: cannot concatenate 0-dim tensors; unsqueeze them or use stack");
  dim = normalize_dim(dim, first.dim(), "cat", first.shape());
  for (size_t i = 1; i < parts.size(); ++i) {
    bool same = parts[i].dim() == first.dim();
    for (int64_t d = 0; same && d < first.dim(); ++d)
      same = d == dim || parts[i].shape()[d] == first.shape()[d];
    AG_CHECK(same,
             "cat: tensor {} has shape {} but tensor 0 has {}; all sizes must match except "
             "along dim {}",
             i, shape_str(parts[i].shape()), shape_str(first.shape()), dim);
  }
  // The result's size along dim, the sum of the parts' sizes, and its shape must fit int64.
  Shape shape = first.shape();
  for (size_t i = 1; i < parts.size(); ++i)
    shape[dim] = checked_add(shape[dim], parts[i].shape()[dim], "cat", "the result's size");
  check_sizes(shape, "cat");
  Tensor out = kernel::cat(parts, dim);
  // Each part's gradient is its own stretch of g along dim.
  std::vector<int64_t> sizes;
  for (const Tensor& p : parts) sizes.push_back(p.shape()[dim]);
  record("CatBackward", out, parts, [dim, sizes](const Tensor& g, const Tensor&) {
    Grads grads;
    int64_t start = 0;
    for (int64_t size : sizes) {
      grads.push_back(kernel::narrow(g, dim, start, size));
      start += size;
    }
    return grads;
  });
  return out;
}

Tensor stack(const std::vector<Tensor>& parts, int64_t dim) {
  AG_CHECK(!parts.empty(), "stack: needs at least one tensor");
  for (size_t i = 0; i < parts.size(); ++i)
    AG_CHECK(parts[i].defined(), "stack: tensor {} is an undefined tensor", i);
  for (size_t i = 1; i < parts.size(); ++i)
    AG_CHECK(parts[i].shape() == parts[0].shape(),
             "stack: tensor {} has shape {} but tensor 0 has {}; all must be equal", i,
             shape_str(parts[i].shape()), shape_str(parts[0].shape()));
  dim = normalize_dim(dim, parts[0].dim() + 1, "stack", parts[0].shape());
  // cat of the parts each unsqueezed at dim, in one copy: out[o, i, :] = part_i[o, :]
  Shape shape = parts[0].shape();
  shape.insert(shape.begin() + dim, static_cast<int64_t>(parts.size()));
  Tensor out = Tensor::empty(shape, "stack");
  const auto [outer, count, inner] = split_at(shape, dim);
  // (no elements: outer could still number 2^62 slabs of nothing)
  const int64_t slabs = out.numel() == 0 ? 0 : outer;
  for (int64_t i = 0; i < count; ++i)
    for (int64_t o = 0; o < slabs; ++o)
      std::copy_n(parts[i].data() + o * inner, inner, out.data() + (o * count + i) * inner);
  // Each part's gradient is its own slice of g along dim.
  record("StackBackward", out, parts,
         [part = parts[0].shape(), slabs, count, inner](const Tensor& g, const Tensor&) {
           Grads grads;
           for (int64_t i = 0; i < count; ++i) {
             Tensor gi = Tensor::empty(part, "stack");
             for (int64_t o = 0; o < slabs; ++o)
               std::copy_n(g.data() + (o * count + i) * inner, inner, gi.data() + o * inner);
             grads.push_back(gi);
           }
           return grads;
         });
  return out;
}

namespace {
// narrow's node. The taken elements get g; the others contributed nothing and
// get 0. In fast mode, when the input has gathered a gradient already
// (GradSums: an LSTM cell's h' and c' are two stretches of one output, each
// read by a narrow), g is added into its stretch there instead of padded with
// zeros to the full shape and added whole.
struct NarrowNode final : Node {
  NarrowNode(Edges inputs, uint32_t output_version, Shape shape, int64_t dim, int64_t start,
             bool plain)
      : Node("NarrowBackward", std::move(inputs), output_version),
        shape(std::move(shape)),
        dim(dim),
        start(start),
        plain(plain) {}
  Grads backward(const Tensor& g, const Tensor&) override {
    return Grads{kernel::unnarrow(g, shape, dim, start)};
  }
  Grads backward(const Tensor& g, const Tensor& output, const GradSums& sums) override {
    Tensor sum = plain ? Tensor() : sums.existing(0);
    if (!sum.defined()) return backward(g, output);
    kernel::unnarrow_add(g, sum, dim, start);
    return Grads{sum};
  }
  Shape shape;
  int64_t dim, start;
  bool plain;  // made in reference mode: the zero-padded gradient only
};
}  // namespace

Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length) {
  check_defined(a, "narrow");
  AG_CHECK(a.dim() > 0, "narrow: cannot narrow a 0-dim tensor");
  dim = normalize_dim(dim, a.dim(), "narrow", a.shape());
  int64_t size = a.shape()[dim];
  AG_CHECK(start >= 0 && length >= 0 && start <= size && length <= size - start,
           "narrow: [{}, {}) is outside dim {} of {} (size {})", start,
           double(start) + double(length), dim, describe(a), size);  // double: no overflow
  Tensor out = kernel::narrow(a, dim, start, length);
  check_anomaly(out, "NarrowBackward", &a, &a + 1);
  if (needs_record(&a, &a + 1))
    attach_node(out, std::allocate_shared<NarrowNode>(BufferAllocator<NarrowNode>(),
                                                      Node::Edges{{a, a.version()}}, out.version(),
                                                      a.shape(), dim, start, reference_mode()));
  return out;
}

Tensor slice(const Tensor& a, int64_t dim, int64_t start, int64_t end) {
  check_defined(a, "slice");
  AG_CHECK(a.dim() > 0, "slice: cannot slice a 0-dim tensor");
  int64_t size = a.shape()[normalize_dim(dim, a.dim(), "slice", a.shape())];
  // Python's rules: negative bounds count from the end, bounds are clamped.
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  return narrow(a, dim, start, end - start);
}

std::vector<int64_t> to_indices(const Tensor& index, const char* op) {
  check_defined(index, op, "index");
  AG_CHECK(index.dim() <= 1, "{}: indices must be a 0-D or 1-D tensor, got shape {}", op,
           shape_str(index.shape()));
  std::vector<int64_t> out(index.numel());
  for (int64_t i = 0; i < index.numel(); ++i) {
    real v = index.data()[i];
    AG_CHECK(std::isfinite(v) && v == std::floor(v),
             "{}: index {} at position {} is not an integer", op, v, i);
    AG_CHECK(std::abs(v) < 0x1p62, "{}: index {} at position {} is out of range", op, v, i);
    out[i] = static_cast<int64_t>(v);
  }
  return out;
}

Tensor index_select(const Tensor& a, int64_t dim, const std::vector<int64_t>& index) {
  check_defined(a, "index_select");
  AG_CHECK(a.dim() > 0, "index_select: cannot index a 0-dim tensor");
  dim = normalize_dim(dim, a.dim(), "index_select", a.shape());
  int64_t size = a.shape()[dim];
  for (size_t i = 0; i < index.size(); ++i)
    AG_CHECK(index[i] >= 0 && index[i] < size,
             "index_select: index {} at position {} is out of range for dim {} of {} (valid: "
             "0..{})",
             index[i], i, dim, describe(a), size - 1);
  Shape shape = a.shape();
  shape[dim] = static_cast<int64_t>(index.size());
  check_sizes(shape, "index_select");
  Tensor out = kernel::index_select(a, dim, index);
  // Each picked slice sends its gradient back to the row it came from;
  // a row picked twice receives the sum. In fast mode, when the gradient of a
  // has a sum already (an embedding read once per decoder step), the rows go
  // straight into it instead of into a zero-filled copy of a's shape.
  record("IndexSelectBackward", out, {a},
         [shape = a.shape(), dim, index, plain = reference_mode()](
             const Tensor& g, const Tensor&, const GradSums& sums) {
           Tensor sum = plain ? Tensor() : sums.existing(0);
           if (!sum.defined()) return Grads{kernel::index_add(shape, dim, index, g)};
           kernel::index_add_into(sum, dim, index, g);
           return Grads{sum};
         });
  return out;
}

Tensor index_select(const Tensor& a, int64_t dim, const Tensor& index) {
  check_defined(a, "index_select");
  check_defined(index, "index_select", "index");
  return index_select(a, dim, to_indices(index, "index_select"));
}

}  // namespace ag
