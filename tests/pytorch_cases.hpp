// The attograd side of the PyTorch fixtures in tests/data/pytorch/ (written by
// tests/data/pytorch/make_fixtures.py): for each case the attograd module with
// the PyTorch module's sizes, and how to run it on the fixture's inputs so
// that it gives the outputs the fixture holds, under the same names.
//
// Each case NAME has two files: NAME.safetensors, the PyTorch module's
// state_dict under attograd's names (nn::Module::load reads it as it is), and
// NAME.io.safetensors, the inputs and PyTorch's outputs. tests/test_pytorch_interop.cpp
// loads both and compares.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "autograd/grad_mode.hpp"
#include "core/error.hpp"
#include "core/io/safetensors.hpp"
#include "layers/nn.hpp"

namespace ag::testing {

// The tensors of an .io.safetensors file by name, remembering which ones the
// case read, so a test can tell the inputs from the outputs it must compare.
class FixtureTensors {
 public:
  explicit FixtureTensors(const NamedTensors& tensors) {
    for (const auto& [name, tensor] : tensors) tensors_[name] = tensor;
  }
  const Tensor& input(const std::string& name) {
    auto it = tensors_.find(name);
    AG_CHECK(it != tensors_.end(), "fixture: no tensor '{}'", name);
    read_.insert(name);
    return it->second;
  }
  // Token ids and lengths are stored as F32 (the format attograd loads).
  std::vector<int64_t> integers(const std::string& name) {
    return to_indices(reshape(input(name), {-1}), "fixture");
  }
  bool was_read(const std::string& name) const { return read_.count(name) > 0; }
  // Marks an input as one to differentiate (the fixture holds grad.NAME for it).
  void require_grad(const std::string& name) { tensors_.at(name).requires_grad_(); }
  const std::map<std::string, Tensor>& all() const { return tensors_; }

 private:
  std::map<std::string, Tensor> tensors_;
  std::set<std::string> read_;
};

struct PytorchCase {
  std::string name;
  std::function<std::shared_ptr<nn::Module>()> make;
  // Runs the module (in eval mode) on the fixture's inputs: the outputs by name.
  std::function<NamedTensors(nn::Module&, FixtureTensors&)> run;
};

namespace pytorch_runners {

template <typename M>
M& as(nn::Module& m) {
  return dynamic_cast<M&>(m);
}

inline NamedTensors unary(nn::Module& m, FixtureTensors& io) {
  return {{"output", as<nn::UnaryModule>(m).forward(io.input("input"))}};
}

// Records the graph even inside the test's NoGradGuard: for the cases that
// compare gradients with PyTorch's.
class GradEnabled {
 public:
  GradEnabled() : previous_(is_grad_enabled()) { set_grad_enabled(true); }
  ~GradEnabled() { set_grad_enabled(previous_); }
  GradEnabled(const GradEnabled&) = delete;
  GradEnabled& operator=(const GradEnabled&) = delete;

 private:
  bool previous_;
};

// RNN or LSTM, any layers and directions: the full sequences from the
// fixture's initial state, the padded ones from zeros, then the gradients of
// sum_name sum(output_name * upstream_name) with respect to the input, the
// initial state and every parameter, as make_fixtures.py computes them.
inline NamedTensors recurrent(nn::Module& m, FixtureTensors& io, bool lstm) {
  GradEnabled grad_enabled;
  auto leaf = [&](const std::string& name) {
    Tensor t = io.input(name).detach();
    t.requires_grad_();
    return t;
  };
  const Tensor x = leaf("input"), h0 = leaf("h0"), c0 = lstm ? leaf("c0") : Tensor();
  const std::vector<int64_t> lengths = io.integers("lengths");
  nn::SequenceOutput full, packed;
  if (lstm) {
    full = as<nn::LSTM>(m).forward(x, {}, {h0, c0});
    packed = as<nn::LSTM>(m).forward(x, lengths);
  } else {
    full = as<nn::RNN>(m).forward(x, {}, h0);
    packed = as<nn::RNN>(m).forward(x, lengths);
  }
  NamedTensors out = {{"output", full.output},
                      {"h_n", full.h_n},
                      {"packed_output", packed.output},
                      {"packed_h_n", packed.h_n}};
  if (lstm) {
    out.emplace_back("c_n", full.c_n);
    out.emplace_back("packed_c_n", packed.c_n);
  }
  m.zero_grad();
  Tensor loss;
  for (const auto& [name, t] : out) {
    const Tensor term = sum(t * io.input("upstream." + name));
    loss = loss.defined() ? loss + term : term;
  }
  loss.backward();
  for (auto& [name, t] : out) t = t.detach();
  out.emplace_back("grad.input", x.grad());
  out.emplace_back("grad.h0", h0.grad());
  if (lstm) out.emplace_back("grad.c0", c0.grad());
  for (const auto& [name, p] : m.named_parameters()) out.emplace_back("grad." + name, p.grad());
  return out;
}

// The output, and the gradients of sum(output * upstream) with respect to the
// input and every parameter (grad_weight, ...): grad mode on for this case.
inline NamedTensors unary_with_gradients(nn::Module& m, FixtureTensors& io) {
  const bool grad_was_enabled = is_grad_enabled();
  set_grad_enabled(true);
  Tensor x = io.input("input").clone().requires_grad_();
  m.zero_grad();
  Tensor y = as<nn::UnaryModule>(m).forward(x);
  sum(y * io.input("upstream")).backward();
  set_grad_enabled(grad_was_enabled);
  NamedTensors out = {{"output", y.detach()}, {"grad_input", x.grad()}};
  for (const auto& [name, p] : m.named_parameters()) out.emplace_back("grad_" + name, p.grad());
  return out;
}

inline NamedTensors sequence_attention(nn::Module& m, FixtureTensors& io) {
  nn::SequenceAttentionOutput out =
      as<nn::SequenceAttention>(m).forward(io.input("input"), io.integers("lengths"));
  return {{"output", out.output}, {"context", out.context}, {"weights", out.weights}};
}

inline NamedTensors score(nn::Module& m, FixtureTensors& io) {
  nn::AttentionOutput out =
      as<nn::AttentionScore>(m).forward(io.input("query"), io.input("keys"), io.input("mask"));
  return {{"context", out.context}, {"weights", out.weights}};
}

inline NamedTensors seq2seq(nn::Module& m, FixtureTensors& io) {
  nn::Seq2SeqOutput out =
      as<nn::Seq2Seq>(m).forward(io.input("source"), io.integers("lengths"), io.input("target_in"));
  return {{"logits", out.logits}, {"attention", out.attention}};
}

inline std::shared_ptr<nn::Module> make_seq2seq(nn::CellType cell, nn::ScoreType score,
                                                int64_t num_layers = 1,
                                                bool bidirectional = false) {
  nn::Seq2SeqOptions o;
  o.num_layers = num_layers;
  o.dropout = num_layers > 1 ? 0.5 : 0;  // eval mode: off, as in PyTorch
  o.bidirectional = bidirectional;
  o.source_vocab = 7;
  o.target_vocab = 9;
  o.embedding_dim = 4;
  o.hidden_size = 5;
  o.attention_size = 6;
  o.cell = cell;
  o.score = score;
  return std::make_shared<nn::Seq2Seq>(o);
}

}  // namespace pytorch_runners

// Sizes as in make_fixtures.py, case by case.
inline std::vector<PytorchCase> pytorch_cases() {
  using namespace pytorch_runners;
  using std::make_shared;
  auto encoder_layer = [](bool norm_first) {
    return PytorchCase{
        norm_first ? "transformer_encoder_layer" : "transformer_encoder_layer_post_norm",
        [=] { return make_shared<nn::TransformerEncoderLayer>(8, 2, 16, 0, norm_first); },
        [](nn::Module& m, FixtureTensors& io) -> NamedTensors {
          const Tensor& x = io.input("input");
          return {{"output",
                   as<nn::TransformerEncoderLayer>(m).forward(x, nn::causal_mask(x.size(1)))}};
        }};
  };
  // nn.RNN / nn.LSTM(3, 5, num_layers, dropout 0.5 between two layers, bidirectional)
  auto recurrent_case = [](const std::string& name, int64_t layers, bool bidirectional) {
    const bool lstm = name.rfind("lstm", 0) == 0;
    const real dropout = layers > 1 ? 0.5 : 0;
    return PytorchCase{name,
                       [=]() -> std::shared_ptr<nn::Module> {
                         if (lstm)
                           return make_shared<nn::LSTM>(3, 5, layers, dropout, bidirectional);
                         return make_shared<nn::RNN>(3, 5, layers, dropout, bidirectional);
                       },
                       [=](nn::Module& m, FixtureTensors& io) { return recurrent(m, io, lstm); }};
  };
  auto decoder_layer = [](bool norm_first) {
    return PytorchCase{
        norm_first ? "transformer_decoder_layer" : "transformer_decoder_layer_post_norm",
        [=] { return make_shared<nn::TransformerDecoderLayer>(8, 2, 16, 0, norm_first); },
        [](nn::Module& m, FixtureTensors& io) -> NamedTensors {
          const Tensor& tgt = io.input("tgt");
          return {{"output", as<nn::TransformerDecoderLayer>(m).forward(
                                 tgt, io.input("memory"), nn::causal_mask(tgt.size(1)),
                                 io.input("memory_mask"), io.input("tgt_key_padding"),
                                 io.input("memory_key_padding"))}};
        }};
  };
  auto transformer = [](bool norm_first) {
    return PytorchCase{
        norm_first ? "transformer" : "transformer_post_norm",
        [=] { return make_shared<nn::Transformer>(8, 2, 2, 2, 16, 0, norm_first); },
        [](nn::Module& m, FixtureTensors& io) -> NamedTensors {
          const Tensor& tgt = io.input("tgt");
          const Tensor& source_padding = io.input("src_key_padding");
          return {
              {"output", as<nn::Transformer>(m).forward(
                             io.input("src"), tgt, Tensor(), nn::causal_mask(tgt.size(1)), Tensor(),
                             source_padding, io.input("tgt_key_padding"), source_padding)}};
        }};
  };
  return {
      {"linear", [] { return make_shared<nn::Linear>(4, 3); }, unary},
      {"embedding", [] { return make_shared<nn::Embedding>(10, 4); }, unary},
      {"layer_norm", [] { return make_shared<nn::LayerNorm>(6); }, unary},
      {"conv1d", [] { return make_shared<nn::Conv1d>(3, 4, 3, 2, 2, 2); }, unary_with_gradients},
      {"conv1d_no_bias", [] { return make_shared<nn::Conv1d>(3, 4, 2, 1, 0, 1, false); },
       unary_with_gradients},
      {"rnn_cell", [] { return make_shared<nn::RNNCell>(3, 5); },
       [](nn::Module& m, FixtureTensors& io) -> NamedTensors {
         return {{"h_next", as<nn::RNNCell>(m).forward(io.input("input"), io.input("h"))}};
       }},
      {"lstm_cell", [] { return make_shared<nn::LSTMCell>(3, 5); },
       [](nn::Module& m, FixtureTensors& io) -> NamedTensors {
         nn::RecurrentState next =
             as<nn::LSTMCell>(m).forward(io.input("input"), {io.input("h"), io.input("c")});
         return {{"h_next", next.h}, {"c_next", next.c}};
       }},
      recurrent_case("rnn", 1, false),
      recurrent_case("lstm", 1, false),
      recurrent_case("rnn_2_layers", 2, false),
      recurrent_case("rnn_bidirectional", 1, true),
      recurrent_case("rnn_2_layers_bidirectional", 2, true),
      recurrent_case("lstm_2_layers", 2, false),
      recurrent_case("lstm_bidirectional", 1, true),
      recurrent_case("lstm_2_layers_bidirectional", 2, true),
      {"multi_head_attention", [] { return make_shared<nn::MultiHeadAttention>(8, 2); },
       [](nn::Module& m, FixtureTensors& io) -> NamedTensors {
         auto& mha = as<nn::MultiHeadAttention>(m);
         const Tensor& padding = io.input("key_padding");  // (B,Tk), 1 = padding
         nn::AttentionOutput cross =
             mha.forward(io.input("query"), io.input("key"), io.input("value"),
                         reshape(padding, {padding.size(0), 1, padding.size(1)}));
         const Tensor& x = io.input("x");
         nn::AttentionOutput self = mha.forward(x, nn::causal_mask(x.size(1)));
         return {{"output", cross.context},
                 {"weights", cross.weights},
                 {"self_output", self.context},
                 {"self_weights", self.weights}};
       }},
      encoder_layer(true),
      encoder_layer(false),
      decoder_layer(true),
      decoder_layer(false),
      transformer(true),
      transformer(false),
      {"tiny_transformer",
       [] {
         nn::TinyTransformerOptions o;
         o.vocab_size = 10;
         o.d_model = 8;
         o.heads = 2;
         o.d_ff = 16;
         o.num_layers = 2;
         o.max_len = 12;
         return make_shared<nn::TinyTransformer>(o);
       },
       [](nn::Module& m, FixtureTensors& io) -> NamedTensors {
         return {{"logits", as<nn::TinyTransformer>(m).forward(io.input("tokens"))}};
       }},
      {"point_attention", [] { return make_shared<nn::PointAttention>(6); },
       [](nn::Module& m, FixtureTensors& io) -> NamedTensors {
         nn::AttentionOutput out = as<nn::PointAttention>(m).forward(io.input("input"));
         return {{"context", out.context}, {"weights", out.weights}};
       }},
      {"self_attention", [] { return make_shared<nn::SelfAttention>(8); }, unary},
      {"sequence_attention", [] { return make_shared<nn::SequenceAttention>(3, 5); },
       sequence_attention},
      {"sequence_attention_lstm",
       [] { return make_shared<nn::SequenceAttention>(3, 5, nn::SequenceEncoder::LSTM); },
       sequence_attention},
      {"sequence_attention_conv",
       [] { return make_shared<nn::SequenceAttention>(3, 5, nn::SequenceEncoder::Conv1d, 3); },
       sequence_attention},
      {"dot_score", [] { return make_shared<nn::DotScore>(); }, score},
      {"general_score", [] { return make_shared<nn::GeneralScore>(3, 5, 6); }, score},
      {"additive_score", [] { return make_shared<nn::AdditiveScore>(3, 5, 6); }, score},
      {"seq2seq_lstm_additive",
       [] { return make_seq2seq(nn::CellType::LSTM, nn::ScoreType::Additive); }, seq2seq},
      {"seq2seq_rnn_general",
       [] { return make_seq2seq(nn::CellType::RNN, nn::ScoreType::General); }, seq2seq},
      {"seq2seq_lstm_dot_2_layers",
       [] { return make_seq2seq(nn::CellType::LSTM, nn::ScoreType::Dot, 2); }, seq2seq},
      {"seq2seq_rnn_general_bidirectional",
       [] { return make_seq2seq(nn::CellType::RNN, nn::ScoreType::General, 1, true); }, seq2seq},
      {"seq2seq_lstm_additive_2_layers_bidirectional",
       [] { return make_seq2seq(nn::CellType::LSTM, nn::ScoreType::Additive, 2, true); }, seq2seq},
      {"positional_encoding", [] { return make_shared<nn::PositionalEncoding>(6, 10); }, unary},
      {"feed_forward", [] { return make_shared<nn::FeedForward>(6, 12); }, unary},
  };
}

inline PytorchCase pytorch_case(const std::string& name) {
  for (PytorchCase& c : pytorch_cases())
    if (c.name == name) return c;
  AG_CHECK(false, "no PyTorch case '{}'", name);
  return {};
}

}  // namespace ag::testing
