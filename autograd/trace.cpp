#include "autograd/trace.hpp"

#include <fmt/core.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "autograd/node.hpp"
#include "core/error.hpp"
#include "core/mode.hpp"

namespace ag {

namespace {
bool env_flag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
}

// "'x' (3,5,64)" or "(3,5,64)", as in error messages.
template <typename Tensors>
std::string tensors_str(const Tensors& tensors) {
  std::string out;
  for (const Tensor& t : tensors) {
    if (!out.empty()) out += ", ";
    out += t.defined() ? describe(t) : "none";
  }
  return out.empty() ? "nothing" : out;
}
}  // namespace

bool trace_flag = env_flag("AG_TRACE");
namespace {
std::FILE* trace_sink = stderr;
// The mode named by the last line written, so that a change of mode gets a
// line of its own; null: say it with the next line (a new trace, a new sink).
const char* mode_announced = nullptr;
}  // namespace

void set_trace(bool enabled, std::FILE* sink) {
  AG_CHECK(sink != nullptr,
           "set_trace: the sink is a null FILE*; pass stderr, stdout or a file opened for "
           "writing");
  trace_flag = enabled;
  trace_sink = sink;
  mode_announced = nullptr;
}

std::string forward_name(const std::string& node_name) {
  // "LayerNormBackward" -> "layer_norm": the function a reader finds in the source
  std::string name = node_name;
  const std::string suffix = "Backward";
  if (name.size() > suffix.size() && name.ends_with(suffix))
    name.resize(name.size() - suffix.size());
  std::string snake;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (i > 0) snake += '_';
      snake += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      snake += c;
    }
  }
  return snake;
}

void trace_forward(const Node& node, const Tensor& output) {
  if (mode_announced != mode_name()) {
    mode_announced = mode_name();
    fmt::print(trace_sink, "[trace] mode: {} ({})\n", mode_announced,
               reference_mode() ? "the plain formula code"
                                : "fused kernels; AG_REFERENCE=1 runs the plain formula code");
  }
  fmt::print(trace_sink, "[trace] {}\n", forward_line(node, output));
}

void trace_backward(const Node& node, const Tensor& grad_output, const Grads& grads) {
  fmt::print(trace_sink, "[trace] {}\n", backward_line(node, grad_output, grads));
}

std::string forward_line(const Node& node, const Tensor& output) {
  std::vector<Tensor> inputs;
  for (const Node::Edge& edge : node.inputs) inputs.push_back(edge.tensor);
  return fmt::format("forward  #{:<4} {:<24} {} -> {}", node.id, forward_name(node.name),
                     tensors_str(inputs), describe(output));
}

std::string backward_line(const Node& node, const Tensor& grad_output,
                          const Grads& grads) {
  // Each input's gradient, labelled with the input's name when it has one.
  std::string out;
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!out.empty()) out += ", ";
    const Tensor& input = i < node.inputs.size() ? node.inputs[i].tensor : Tensor();
    if (!grads[i].defined() || !input.defined() || !input.requires_grad()) {
      out += "none";
      continue;
    }
    out += input.name().empty() ? shape_str(grads[i].shape())
                                : fmt::format("'{}' {}", input.name(), shape_str(grads[i].shape()));
  }
  return fmt::format("backward #{:<4} {:<24} grad {} -> {}", node.id, node.name,
                     shape_str(grad_output.shape()), out.empty() ? "nothing" : out);
}

}  // namespace ag
