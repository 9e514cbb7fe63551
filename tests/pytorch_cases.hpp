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

#include "core/error.hpp"
#include "core/safetensors.hpp"
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

inline NamedTensors recurrent(nn::Module& m, FixtureTensors& io, bool lstm) {
  const Tensor& x = io.input("input");
  const std::vector<int64_t> lengths = io.integers("lengths");
  nn::SequenceOutput full, packed;
  if (lstm) {
    full = as<nn::LSTM>(m).forward(x, {}, {io.input("h0"), io.input("c0")});
    packed = as<nn::LSTM>(m).forward(x, lengths);
  } else {
    full = as<nn::RNN>(m).forward(x, {}, io.input("h0"));
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
  return out;
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

inline std::shared_ptr<nn::Module> make_seq2seq(nn::CellType cell, nn::ScoreType score) {
  nn::Seq2SeqOptions o;
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
      {"rnn", [] { return make_shared<nn::RNN>(3, 5); },
       [](nn::Module& m, FixtureTensors& io) { return recurrent(m, io, false); }},
      {"lstm", [] { return make_shared<nn::LSTM>(3, 5); },
       [](nn::Module& m, FixtureTensors& io) { return recurrent(m, io, true); }},
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
       [](nn::Module& m, FixtureTensors& io) -> NamedTensors {
         nn::SequenceAttentionOutput out =
             as<nn::SequenceAttention>(m).forward(io.input("input"), io.integers("lengths"));
         return {{"output", out.output}, {"context", out.context}, {"weights", out.weights}};
       }},
      {"dot_score", [] { return make_shared<nn::DotScore>(); }, score},
      {"general_score", [] { return make_shared<nn::GeneralScore>(3, 5, 6); }, score},
      {"additive_score", [] { return make_shared<nn::AdditiveScore>(3, 5, 6); }, score},
      {"seq2seq_lstm_additive",
       [] { return make_seq2seq(nn::CellType::LSTM, nn::ScoreType::Additive); }, seq2seq},
      {"seq2seq_rnn_general",
       [] { return make_seq2seq(nn::CellType::RNN, nn::ScoreType::General); }, seq2seq},
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
