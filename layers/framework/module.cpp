// nn::Module: registration, traversal by dotted name, modes, printing, and
// saving/loading weights by name.
#include "layers/framework/module.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ostream>
#include <set>
#include <typeinfo>

#include "autograd/grad_mode.hpp"
#include "core/error.hpp"
#include "core/io/safetensors.hpp"
#include "layers/basic/activation.hpp"
#include "layers/basic/linear.hpp"

namespace ag::nn {

namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

}  // namespace

// --- registration ----------------------------------------------------------------------

void Module::check_new_name(const std::string& name, const char* what) const {
  AG_CHECK(!name.empty() && name.find('.') == std::string::npos,
           "{}: cannot register {} '{}': a name must be non-empty and contain no '.'", type_name_,
           what, name);
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
  };
  AG_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_),
           "{}: cannot register {} '{}': the name is already taken", type_name_, what, name);
}

Tensor Module::register_parameter(const std::string& name, Tensor tensor, bool requires_grad) {
  check_new_name(name, "parameter");
  AG_CHECK(tensor.defined(), "{}: parameter '{}' is an undefined tensor", type_name_, name);
  AG_CHECK(tensor.is_leaf(), "{}: parameter '{}' must be a leaf tensor (made outside any graph)",
           type_name_, name);
  tensor.requires_grad_(requires_grad);
  if (tensor.name().empty()) tensor.set_name(name);
  parameters_.emplace_back(name, tensor);
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor) {
  check_new_name(name, "buffer");
  AG_CHECK(tensor.defined(), "{}: buffer '{}' is an undefined tensor", type_name_, name);
  if (tensor.name().empty()) tensor.set_name(name);
  buffers_.emplace_back(name, tensor);
  return tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "submodule");
  AG_CHECK(module != nullptr, "{}: submodule '{}' is null", type_name_, name);
  children_.emplace_back(name, std::move(module));
}

// --- traversal ---------------------------------------------------------------------------

void Module::collect(const std::string& prefix, bool parameters,
                     std::vector<NamedTensor>& out) const {
  for (const auto& [name, tensor] : parameters ? parameters_ : buffers_)
    out.emplace_back(join(prefix, name), tensor);
  for (const auto& [name, child] : children_) child->collect(join(prefix, name), parameters, out);
}

std::vector<NamedTensor> Module::named_parameters() const {
  std::vector<NamedTensor> all, out;
  collect("", /*parameters=*/true, all);
  // A parameter reachable by two paths (a shared submodule, tied weights) is
  // listed once, under its first name, as PyTorch does: an optimizer must
  // update it once per step. state_dict() keeps every name.
  std::set<const TensorImpl*> seen;
  for (auto& entry : all)
    if (seen.insert(entry.second.impl()).second) out.push_back(std::move(entry));
  return out;
}

std::vector<NamedTensor> Module::named_buffers() const {
  std::vector<NamedTensor> out;
  collect("", /*parameters=*/false, out);
  return out;
}

std::vector<NamedTensor> Module::state_dict() const {
  std::vector<NamedTensor> out;
  collect("", /*parameters=*/true, out);
  collect("", /*parameters=*/false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_parameters()) out.push_back(tensor);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const {
  return children_;
}

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
  // Depth-first, the module itself first under the empty name, as PyTorch.
  std::vector<std::pair<std::string, const Module*>> out = {{"", this}};
  for (size_t i = 0; i < out.size(); ++i) {
    std::vector<std::pair<std::string, const Module*>> below;
    for (const auto& [name, child] : out[i].second->children_)
      below.emplace_back(join(out[i].first, name), child.get());
    out.insert(out.begin() + static_cast<std::ptrdiff_t>(i) + 1, below.begin(), below.end());
  }
  return out;
}

int64_t Module::num_parameters() const {
  int64_t total = 0;
  for (const Tensor& p : parameters()) total += p.numel();
  return total;
}

// --- modes and gradients -----------------------------------------------------------------

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.set_grad(Tensor());
}

// --- saving and loading ------------------------------------------------------------------

void Module::save(const std::string& path) const { save_safetensors(path, state_dict()); }

void Module::load(const std::string& path) {
  NamedTensors loaded = load_safetensors(path);
  std::vector<NamedTensor> own = state_dict();
  // Check everything before changing anything, so a bad file leaves the model as it was.
  std::set<std::string> in_file;
  for (const auto& [name, tensor] : loaded) in_file.insert(name);
  for (const auto& [name, tensor] : own)
    AG_CHECK(in_file.count(name),
             "load {}: the file has no tensor '{}' of shape {}, which {} needs", path, name,
             shape_str(tensor.shape()), type_name_);
  for (const auto& [name, tensor] : loaded) {
    auto it = std::find_if(own.begin(), own.end(), [&](const auto& e) { return e.first == name; });
    AG_CHECK(it != own.end(), "load {}: the file has a tensor '{}' that {} does not have", path,
             name, type_name_);
    AG_CHECK(it->second.shape() == tensor.shape(),
             "load {}: tensor '{}' has shape {} in the file but {} in {}", path, name,
             shape_str(tensor.shape()), shape_str(it->second.shape()), type_name_);
  }
  NoGradGuard no_grad;  // an in-place update of parameters, as an optimizer step
  for (const auto& [name, tensor] : loaded) {
    auto it = std::find_if(own.begin(), own.end(), [&](const auto& e) { return e.first == name; });
    it->second.copy_(tensor);
  }
}

// --- printing ----------------------------------------------------------------------------

void Module::print_lines(std::string& out, int indent) const {
  // PyTorch's layout: extra_repr() inside the parentheses when it is one line
  // and there are no children; otherwise each of its lines on a line of its
  // own, then (attograd's addition) the parameters, then the children.
  std::vector<std::string> extra_lines;
  const std::string extra = extra_repr();
  for (size_t begin = 0; !extra.empty() && begin <= extra.size();) {
    const size_t newline = std::min(extra.find('\n', begin), extra.size());
    extra_lines.push_back(extra.substr(begin, newline - begin));
    begin = newline + 1;
  }
  if (children_.empty() && extra_lines.size() <= 1) {
    out += type_name_ + "(" + extra + ")";
    for (const auto& [name, tensor] : parameters_)
      out += fmt::format("  {} {}", name, shape_str(tensor.shape()));
    return;
  }
  std::string pad(static_cast<size_t>(indent) + 2, ' ');
  out += type_name_ + "(\n";
  for (const std::string& line : extra_lines) out += pad + line + "\n";
  for (const auto& [name, tensor] : parameters_)
    out += fmt::format("{}{} {}\n", pad, name, shape_str(tensor.shape()));
  for (const auto& [name, child] : children_) {
    out += pad + "(" + name + "): ";
    child->print_lines(out, indent + 2);
    out += "\n";
  }
  out += std::string(static_cast<size_t>(indent), ' ') + ")";
}

std::string Module::to_string() const {
  std::string out;
  print_lines(out, 0);
  return out + fmt::format("\nparameters: {}", num_parameters());
}

std::ostream& operator<<(std::ostream& os, const Module& module) {
  return os << module.to_string();
}

// --- Sequential --------------------------------------------------------------------------

Sequential::Sequential(std::vector<std::shared_ptr<UnaryModule>> modules)
    : UnaryModule("Sequential"), modules_(std::move(modules)) {
  for (size_t i = 0; i < modules_.size(); ++i) register_module(std::to_string(i), modules_[i]);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (size_t i = 0; i < modules_.size(); ++i) {
    // A Linear followed by a ReLU (exactly those classes, not a subclass with
    // its own forward) runs as the one op linear_relu: the same values and
    // gradients, without storing the pre-activation (layers/basic/linear.hpp).
    const bool linear_then_relu = i + 1 < modules_.size() &&
                                  typeid(*modules_[i]) == typeid(Linear) &&
                                  typeid(*modules_[i + 1]) == typeid(ReLU);
    if (linear_then_relu) {
      const auto& layer = static_cast<const Linear&>(*modules_[i]);
      y = linear_relu(y, layer.weight, layer.bias);
      ++i;
    } else {
      y = modules_[i]->forward(y);
    }
  }
  return y;
}

const std::shared_ptr<UnaryModule>& Sequential::operator[](size_t i) const {
  AG_CHECK(i < modules_.size(), "Sequential: index {} is out of range for {} modules", i,
           modules_.size());
  return modules_[i];
}

}  // namespace ag::nn
