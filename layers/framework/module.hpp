// nn::Module: the base of every layer and model, as torch.nn.Module.
//
// A module owns named parameters (tensors the optimizer trains), buffers
// (tensors that are saved with the model but not trained) and submodules.
// Registering them by name is what lets the base class list every parameter
// of a whole model with its dotted path ("encoder.rnn.weight_hh"), switch
// train/eval mode everywhere, clear gradients, print a summary, and save or
// load all weights by name.
//
//   struct MLP : nn::Module {
//     std::shared_ptr<nn::Linear> fc1, fc2;
//     MLP() : Module("MLP") {
//       fc1 = register_module("fc1", std::make_shared<nn::Linear>(2, 128));
//       fc2 = register_module("fc2", std::make_shared<nn::Linear>(128, 3));
//     }
//     Tensor forward(const Tensor& x) { return fc2->forward(relu(fc1->forward(x))); }
//   };
//
// Submodules are held by std::shared_ptr (LibTorch's `torch::nn::Linear` is a
// shared holder too), so `model.fc1->weight` reads the way it does in PyTorch.
// Each module declares its own forward with the arguments it needs; the base
// class has none (see UnaryModule for the one-tensor kind).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace ag::nn {

using NamedTensor = std::pair<std::string, Tensor>;

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  // A copy would share the parameters while looking independent: refused.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // "Linear", "MultiHeadAttention", ...: what printing shows.
  const std::string& type_name() const { return type_name_; }

  // --- what the module holds, this module first, then submodules in
  // registration order (the order PyTorch's state_dict() uses) ----------------
  std::vector<Tensor> parameters() const;
  // "fc1.weight", "fc1.bias", ...; a parameter shared by two submodules once.
  std::vector<NamedTensor> named_parameters() const;
  std::vector<NamedTensor> named_buffers() const;
  // Parameters then buffers, every path of a shared one: everything save() writes.
  std::vector<NamedTensor> state_dict() const;
  // Direct submodules, and all modules below this one with their paths.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  std::vector<std::pair<std::string, const Module*>> named_modules() const;
  int64_t num_parameters() const;  // total number of trainable numbers

  // --- modes and gradients --------------------------------------------------------
  // Training mode changes what some layers do (Dropout drops only in training).
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Clears every parameter's .grad (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

  // --- weights on disk (.safetensors, names as named_parameters()) ----------------
  void save(const std::string& path) const;
  // Copies every tensor of the file into the parameter or buffer of that name.
  // Names missing from the file, names the model lacks, and shapes that differ
  // are errors naming the file and the tensor: a model is loaded completely
  // or not at all.
  void load(const std::string& path);

  // --- printing ------------------------------------------------------------------------
  // The layer's settings between the parentheses of its summary line, like
  // PyTorch's extra_repr(): "in_features=2, out_features=3, bias=true".
  virtual std::string extra_repr() const { return {}; }
  // PyTorch's print(model), with each layer's parameter shapes at the end of
  // its line and the total count at the bottom:
  //   MLP(
  //     (fc1): Linear(in_features=2, out_features=128, bias=true)  weight (128,2)  bias (128)
  //     (fc2): Linear(in_features=128, out_features=3, bias=true)  weight (3,128)  bias (3)
  //   )
  //   parameters: 771
  // A module with children shows its extra_repr() on a line of its own after
  // the opening parenthesis, as PyTorch does, then its own parameters, then
  // the children:
  //   TransformerEncoderLayer(
  //     norm_first=true
  //     (self_attn): MultiHeadAttention(
  //       d_model=4, heads=2, head_dim=2, bias=true
  //       (q_proj): Linear(in_features=4, out_features=4, bias=true)  weight (4,4)  bias (4)
  //       ...
  std::string to_string() const;

 protected:
  // Registration, done once in the constructor. The returned handle shares
  // its data with the registered one, so keep it as a member.
  Tensor register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
  Tensor register_buffer(const std::string& name, Tensor tensor);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name, const char* what) const;
  void collect(const std::string& prefix, bool parameters, std::vector<NamedTensor>& out) const;
  void print_lines(std::string& out, int indent) const;

  std::string type_name_;
  bool training_ = true;
  std::vector<NamedTensor> parameters_;
  std::vector<NamedTensor> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

std::ostream& operator<<(std::ostream& os, const Module& module);

// A module that maps one tensor to one tensor (Linear, ReLU, LayerNorm, ...):
// the kind nn::Sequential chains.
class UnaryModule : public Module {
 public:
  using Module::Module;
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

// Runs its modules one after the other, each on the previous one's output, as
// torch.nn.Sequential; they are named "0", "1", ... like PyTorch's.
//   auto mlp = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::UnaryModule>>{
//       std::make_shared<nn::Linear>(2, 64), std::make_shared<nn::ReLU>(),
//       std::make_shared<nn::Linear>(64, 3)});
class Sequential : public UnaryModule {
 public:
  explicit Sequential(std::vector<std::shared_ptr<UnaryModule>> modules);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return modules_.size(); }
  const std::shared_ptr<UnaryModule>& operator[](size_t i) const;

 private:
  std::vector<std::shared_ptr<UnaryModule>> modules_;
};

}  // namespace ag::nn
