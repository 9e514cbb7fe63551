// Graphviz export of the graph behind a tensor. The walk follows the same links
// as backward() (tensor -> grad_fn -> inputs), but with its own bookkeeping:
// Node::visit_mark belongs to the engine, and a picture must not disturb it.
#include "autograd/dot.hpp"

#include <iterator>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "autograd/node.hpp"
#include "core/error.hpp"
#include "core/io/atomic_file.hpp"

namespace ag {

namespace {

// Puts a backslash before each character of `special` found in `text`.
std::string escape(std::string_view text, std::string_view special) {
  std::string out;
  for (char c : text) {
    if (special.find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// In a record label { } | split fields, < > name ports, " ends the label.
std::string escape_record(std::string_view text) { return escape(text, "{}|<>\"\\"); }

// The values as a nested list, "[[1, 2], [3, 4]]", each written with %.4g.
// A bracket opens before element i for every dim whose block starts at i, and
// closes after it for every dim whose block ends there.
std::string values_text(const real* values, const Shape& shape) {
  int64_t numel = shape_numel(shape);
  if (numel == 0) return "[]";
  std::vector<int64_t> block_sizes = contiguous_strides(shape);  // elements per block of dim d
  for (size_t d = 0; d < shape.size(); ++d) block_sizes[d] *= shape[d];
  std::string out;
  for (int64_t i = 0; i < numel; ++i) {
    for (int64_t block : block_sizes) out += i % block == 0 ? "[" : "";
    out += fmt::format("{:.4g}", values[i]);
    for (int64_t block : block_sizes) out += (i + 1) % block == 0 ? "]" : "";
    if (i + 1 < numel) out += ", ";
  }
  return out;
}

class DotWriter {
 public:
  explicit DotWriter(const DotOptions& options) : options_(options) {}

  std::string graph(const Tensor& root) {
    out_ = "digraph attograd {\n  rankdir=LR;\n";
    std::vector<Tensor> to_visit;  // an explicit stack: graphs can be 100,000 ops deep
    id_of(root, to_visit);
    while (!to_visit.empty()) {
      Tensor t = std::move(to_visit.back());
      to_visit.pop_back();
      const Node* node = t.grad_fn().get();
      if (!node) continue;  // a leaf: nothing made it
      std::string op = fmt::format("op{}", node->id);
      fmt::format_to(std::back_inserter(out_), "  {} [shape=ellipse, label=\"{}\\n#{}{}\"];\n", op,
                     escape(node->name, "\"\\"), node->id, node->released ? " (freed)" : "");
      fmt::format_to(std::back_inserter(out_), "  {} -> {};\n", op, tensor_ids_.at(t.impl()));
      // One arrow per input slot: b = a + a draws two arrows from a.
      for (const Node::Edge& input : node->inputs) {
        std::string input_id = id_of(input.tensor, to_visit);  // may draw its box first
        fmt::format_to(std::back_inserter(out_), "  {} -> {};\n", input_id, op);
      }
    }
    return out_ + "}\n";
  }

 private:
  // The dot id of t; the first time t is met, also draws its box and queues it.
  // Tensors are told apart by their TensorImpl: two handles, one box.
  std::string id_of(const Tensor& t, std::vector<Tensor>& to_visit) {
    auto seen = tensor_ids_.find(t.impl());
    if (seen != tensor_ids_.end()) return seen->second;
    std::string id = fmt::format("t{}", tensor_ids_.size());
    tensor_ids_.emplace(t.impl(), id);
    std::string label = escape_record(t.name().empty() ? id : t.name());
    label += " | " + shape_str(t.shape());
    if (t.numel() <= options_.max_values) {
      label += " | data " + values_text(t.data(), t.shape());
      Tensor grad = t.grad();
      if (grad.defined()) label += " | grad " + values_text(grad.data(), grad.shape());
    }
    fmt::format_to(std::back_inserter(out_), "  {} [shape=record, label=\"{{ {} }}\"];\n", id,
                   label);
    to_visit.push_back(t);
    return id;
  }

  const DotOptions& options_;
  std::unordered_map<const TensorImpl*, std::string> tensor_ids_;
  std::string out_;
};

}  // namespace

std::string to_dot(const Tensor& root, const DotOptions& options) {
  AG_CHECK(root.defined(), "to_dot: the root is an undefined tensor");
  return DotWriter(options).graph(root);
}

void write_dot(const Tensor& root, const std::string& path, const DotOptions& options) {
  // Atomically (core/io/atomic_file.hpp): a failed write leaves the old file.
  write_file_atomically("write_dot", path, to_dot(root, options));
}

}  // namespace ag
