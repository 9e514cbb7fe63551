// Weights move between PyTorch and attograd by name: each layer loads a
// state_dict that PyTorch wrote (tests/data/pytorch/NAME.safetensors, made by
// make_fixtures.py with PyTorch 1.13) with nn::Module::load, runs on the
// fixture's inputs and must give PyTorch's outputs (NAME.io.safetensors).
// PyTorch is not needed here: the files are committed. The cases (sizes, how
// each layer is called) are in tests/pytorch_cases.hpp; the table of
// equivalent PyTorch modules and name mappings in docs/pytorch.md.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "autograd/grad_mode.hpp"
#include "core/creation.hpp"
#include "core/io/safetensors.hpp"
#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/pytorch_cases.hpp"

using namespace ag;
using ag::testing::check_error;
using ag::testing::FixtureTensors;
using ag::testing::max_abs_diff;
using ag::testing::temp_path;

namespace {

namespace fs = std::filesystem;

// PyTorch computed the outputs in float32; attograd's differ from them by
// float rounding (at most 5e-7 on these sizes, measured in both flavors).
constexpr double interop_tol = 1e-5;

// tests/data/pytorch of the repository: from the working directory (make test
// runs in the repository root), else from the test binary's place
// (build/<flavor>/tests/attograd_tests).
fs::path fixture_dir() {
  const fs::path relative = fs::path("tests") / "data" / "pytorch";
  if (fs::exists(relative)) return relative;
  const fs::path from_binary = fs::canonical("/proc/self/exe").parent_path() / ".." / ".." / "..";
  return from_binary / relative;
}

std::string fixture_path(const std::string& name) { return (fixture_dir() / name).string(); }

// Loads NAME.safetensors into the case's module, runs it on NAME.io's inputs
// and compares every output with PyTorch's. Then checks the other direction:
// what attograd saves is the file PyTorch wrote, name for name, value for value.
void check_case(const std::string& name) {
  INFO("case " << name);
  testing::PytorchCase c = testing::pytorch_case(name);
  std::shared_ptr<nn::Module> module = c.make();
  module->eval();
  const std::string weights = fixture_path(name + ".safetensors");
  // load() refuses a missing, extra or misshapen tensor: success means the
  // names and shapes are exactly PyTorch's (through the mapping of docs/pytorch.md)
  module->load(weights);

  FixtureTensors io(load_safetensors(fixture_path(name + ".io.safetensors")));
  // A fixture with grad_output also holds the gradients of sum(grad_output * output):
  // grad.INPUT for the inputs to differentiate, grad.PARAMETER for every parameter.
  const bool with_gradients = io.all().count("grad_output") == 1;
  const std::string grad_prefix = "grad.";
  if (with_gradients)
    for (const auto& [tensor_name, tensor] : io.all())
      if (tensor_name.rfind(grad_prefix, 0) == 0 &&
          io.all().count(tensor_name.substr(grad_prefix.size())) == 1)
        io.require_grad(tensor_name.substr(grad_prefix.size()));
  NamedTensors outputs;
  if (with_gradients) {
    outputs = c.run(*module, io);
  } else {
    NoGradGuard no_grad;
    outputs = c.run(*module, io);
  }
  std::set<std::string> compared;
  for (const auto& [output, tensor] : outputs) {
    INFO("output " << output);
    REQUIRE(io.all().count(output) == 1);
    CHECK(max_abs_diff(tensor, io.all().at(output)) < interop_tol);
    compared.insert(output);
  }
  if (with_gradients) {
    REQUIRE(outputs.size() == 1);
    sum(outputs[0].second * io.input("grad_output")).backward();
    const std::vector<nn::NamedTensor> parameters = module->named_parameters();
    for (const auto& [tensor_name, expected] : io.all()) {
      if (tensor_name.rfind(grad_prefix, 0) != 0) continue;
      INFO("gradient " << tensor_name);
      const std::string of = tensor_name.substr(grad_prefix.size());
      Tensor grad;
      if (io.all().count(of) == 1) {
        grad = io.all().at(of).grad();
      } else {
        auto it = std::find_if(parameters.begin(), parameters.end(),
                               [&](const auto& p) { return p.first == of; });
        REQUIRE(it != parameters.end());
        grad = it->second.grad();
      }
      REQUIRE(grad.defined());
      // relative to the gradient's size: float rounding over a longer chain
      double scale = 1;
      for (int64_t i = 0; i < expected.numel(); ++i)
        scale = std::max(scale, std::abs(double(expected.data()[i])));
      CHECK(max_abs_diff(grad, expected) < interop_tol * scale);
      compared.insert(tensor_name);
    }
    // every parameter's gradient was compared
    for (const auto& [param_name, param] : parameters) {
      INFO("parameter " << param_name);
      CHECK(compared.count(grad_prefix + param_name) == 1);
    }
  }
  // Every tensor of the fixture is an input the case read or an output it compared.
  for (const auto& [tensor_name, tensor] : io.all()) {
    INFO("fixture tensor " << tensor_name);
    CHECK((io.was_read(tensor_name) || compared.count(tensor_name) == 1));
  }

  const std::string saved = temp_path("pytorch", name + ".safetensors");
  module->save(saved);
  const NamedTensors ours = load_safetensors(saved), theirs = load_safetensors(weights);
  fs::remove(saved);
  REQUIRE(ours.size() == theirs.size());
  for (const auto& [tensor_name, tensor] : theirs) {
    INFO("tensor " << tensor_name);
    auto it = std::find_if(ours.begin(), ours.end(),
                           [&](const auto& e) { return e.first == tensor_name; });
    REQUIRE(it != ours.end());
    CHECK(max_abs_diff(it->second, tensor) == 0);
  }
}

}  // namespace

TEST_CASE("interop/pytorch: Linear loads nn.Linear's weight and bias") { check_case("linear"); }

TEST_CASE("interop/pytorch: Embedding loads nn.Embedding's weight") { check_case("embedding"); }

TEST_CASE("interop/pytorch: LayerNorm loads nn.LayerNorm's weight and bias") {
  check_case("layer_norm");
}

TEST_CASE("interop/pytorch: Conv1d matches nn.Conv1d, outputs and gradients") {
  check_case("conv1d");          // stride 2, padding 2, dilation 2
  check_case("conv1d_no_bias");  // the defaults, bias=False
}

TEST_CASE("interop/pytorch: RNNCell loads nn.RNNCell") { check_case("rnn_cell"); }

TEST_CASE("interop/pytorch: LSTMCell loads nn.LSTMCell (gates i, f, g, o)") {
  check_case("lstm_cell");
}

TEST_CASE("interop/pytorch: RNN loads nn.RNN(batch_first=True), full and packed sequences") {
  check_case("rnn");
}

TEST_CASE("interop/pytorch: LSTM loads nn.LSTM(batch_first=True), full and packed sequences") {
  check_case("lstm");
}

TEST_CASE(
    "interop/pytorch: RNN with 2 layers, bidirectional, and both: outputs, h_n and gradients "
    "as nn.RNN's") {
  check_case("rnn_2_layers");
  check_case("rnn_bidirectional");
  check_case("rnn_2_layers_bidirectional");
}

TEST_CASE(
    "interop/pytorch: LSTM with 2 layers, bidirectional, and both: outputs, h_n, c_n and "
    "gradients as nn.LSTM's") {
  check_case("lstm_2_layers");
  check_case("lstm_bidirectional");
  check_case("lstm_2_layers_bidirectional");
}

TEST_CASE("interop/pytorch: MultiHeadAttention loads nn.MultiheadAttention via in_proj split") {
  check_case("multi_head_attention");
}

TEST_CASE("interop/pytorch: MultiHeadAttention refuses PyTorch's fused in_proj names") {
  // nn.MultiheadAttention's own state_dict, unmapped: load names what is missing.
  const NamedTensors pytorch_names = {{"in_proj_weight", zeros({24, 8})},
                                      {"in_proj_bias", zeros({24})},
                                      {"out_proj.weight", zeros({8, 8})},
                                      {"out_proj.bias", zeros({8})}};
  const std::string path = temp_path("pytorch", "fused.safetensors");
  save_safetensors(path, pytorch_names);
  nn::MultiHeadAttention mha(8, 2);
  check_error([&] { mha.load(path); },
              {"the file has no tensor 'q_proj.weight' of shape (8,8)", "MultiHeadAttention"});
  fs::remove(path);
}

TEST_CASE(
    "interop/pytorch: TransformerEncoderLayer loads nn.TransformerEncoderLayer "
    "(norm_first=True, batch_first=True)") {
  check_case("transformer_encoder_layer");
}

TEST_CASE(
    "interop/pytorch: TransformerEncoderLayer(norm_first=false) loads PyTorch's post-norm "
    "layer") {
  check_case("transformer_encoder_layer_post_norm");
}

TEST_CASE(
    "interop/pytorch: TransformerDecoderLayer loads nn.TransformerDecoderLayer (norm_first=True): "
    "outputs and gradients, with every kind of mask") {
  check_case("transformer_decoder_layer");
}

TEST_CASE(
    "interop/pytorch: TransformerDecoderLayer(norm_first=false) loads PyTorch's post-norm "
    "decoder layer: outputs and gradients") {
  check_case("transformer_decoder_layer_post_norm");
}

TEST_CASE(
    "interop/pytorch: Transformer loads nn.Transformer (norm_first=True, final norms): outputs "
    "and gradients w.r.t. src, tgt and every parameter") {
  check_case("transformer");
}

TEST_CASE(
    "interop/pytorch: Transformer(norm_first=false) loads PyTorch's default post-norm "
    "nn.Transformer: outputs and gradients") {
  check_case("transformer_post_norm");
}

TEST_CASE("interop/pytorch: TinyTransformer loads a model of nn.TransformerEncoderLayers") {
  check_case("tiny_transformer");
}

TEST_CASE("interop/pytorch: PointAttention loads seed 000's Attention class") {
  check_case("point_attention");
}

TEST_CASE("interop/pytorch: SelfAttention loads seed 003's SelfAttention class") {
  check_case("self_attention");
}

TEST_CASE("interop/pytorch: SequenceAttention loads an nn.RNN plus nn.Linear score") {
  check_case("sequence_attention");
}

TEST_CASE("interop/pytorch: SequenceAttention over nn.LSTM states or tanh(nn.Conv1d) features") {
  check_case("sequence_attention_lstm");
  check_case("sequence_attention_conv");
}

TEST_CASE("interop/pytorch: DotScore, GeneralScore and AdditiveScore match PyTorch classes") {
  check_case("dot_score");
  check_case("general_score");
  check_case("additive_score");
}

TEST_CASE("interop/pytorch: Seq2Seq (LSTM, additive; RNN, general) matches a PyTorch model") {
  check_case("seq2seq_lstm_additive");
  check_case("seq2seq_rnn_general");
}

TEST_CASE(
    "interop/pytorch: Seq2Seq with 2 layers and a bidirectional encoder matches a PyTorch "
    "model") {
  check_case("seq2seq_lstm_dot_2_layers");
  check_case("seq2seq_rnn_general_bidirectional");
  check_case("seq2seq_lstm_additive_2_layers_bidirectional");
}

TEST_CASE("interop/pytorch: PositionalEncoding's table is the one PyTorch computes") {
  check_case("positional_encoding");
  // Without loading: attograd's own table against the buffer PyTorch wrote.
  nn::PositionalEncoding own(6, 10);
  const NamedTensors theirs = load_safetensors(fixture_path("positional_encoding.safetensors"));
  REQUIRE(theirs.size() == 1);
  CHECK(theirs[0].first == "pe");
  CHECK(max_abs_diff(own.pe, theirs[0].second) < 1e-6);
}

TEST_CASE("interop/pytorch: FeedForward loads linear1 and linear2") { check_case("feed_forward"); }
