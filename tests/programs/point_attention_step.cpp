// One training step of chapter 03's model, taped, with everything PyTorch
// needs to take the same step: its weights and its batch.
//
//   point_attention_step STATE.safetensors TAPE.safetensors
//
// writes the model's state_dict (attention.linear.weight, .bias,
// classifier.weight, .bias) and the batch (x, y) to STATE, then records the
// step (forward, cross-entropy, backward) into TAPE with ag::record_tape.
// tools/torch_tape.py takes the same step in PyTorch from STATE, and
// tools/tape_diff compares the two tapes (tests/programs/check_tape.sh). Made
// to be copied: a model of yours is diffed against PyTorch the same way.
#include <fmt/format.h>

#include "layers/nn.hpp"

using namespace ag;

namespace {

constexpr int64_t B = 8, T = 10, H = 16, C = 4;

// Chapter 03's AttentionClassifier: point attention [F0.1]-[F0.4], then a
// linear read-out of the context.
struct AttentionClassifier : nn::Module {
  std::shared_ptr<nn::PointAttention> attention;
  std::shared_ptr<nn::Linear> classifier;
  AttentionClassifier() : Module("AttentionClassifier") {
    attention = register_module("attention", std::make_shared<nn::PointAttention>(H));
    classifier = register_module("classifier", std::make_shared<nn::Linear>(H, C));
  }
  Tensor forward(const Tensor& x) { return classifier->forward(attention->forward(x).context); }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fmt::print(stderr, "usage: {} STATE.safetensors TAPE.safetensors\n", argv[0]);
    return 2;
  }
  manual_seed(0);
  AttentionClassifier model;
  Generator data(3);
  const Tensor x = randn({B, T, H}, data).set_name("x");
  const Tensor y = randint(0, C, {B}, data).set_name("y");
  NamedTensors state;
  for (const auto& [name, t] : model.state_dict()) state.push_back({name, t});
  state.push_back({"x", x});
  state.push_back({"y", y});
  save_safetensors(argv[1], state);

  record_tape(argv[2]);
  model.zero_grad();
  Tensor loss = nn::cross_entropy(model.forward(x), y);
  loss.backward();
  fmt::print("loss {:.6f} ({} mode); the state in {}, the step's tape in {}\n", loss.item(),
             mode_name(), argv[1], argv[2]);
  return 0;
}
