// Errors name the function the user called: each public function checks its
// arguments at its entry, before it delegates, so a mistake is reported as
// "relu: ...", "Seq2Seq: ...", "TransformerEncoderLayer: ...", never as the
// internal op it would have reached ("max:", "LSTM:", "MultiHeadAttention:")
// or as a bare "undefined tensor".
#include <doctest/doctest.h>

#include <climits>
#include <cstring>
#include <limits>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/io/npy.hpp"
#include "core/io/safetensors.hpp"
#include "layers/nn.hpp"
#include "tests/helpers.hpp"

using namespace ag;
using ag::testing::check_error;

namespace {
using Call = std::pair<std::string, std::function<void()>>;

void check_all(const std::vector<Call>& calls, const std::string& fragment) {
  for (const auto& [op, call] : calls) {
    INFO("calling " << op);
    check_error(call, {op + ":", fragment});
  }
}
}  // namespace

TEST_CASE("errors: an undefined tensor argument is named by the op it was given to") {
  const Tensor u, x = ones({2, 3});
  check_all(
      {
          {"neg", [&] { (void)neg(u); }},
          {"add", [&] { (void)add(u, real(1)); }},
          {"mul", [&] { (void)mul(u, real(2)); }},
          {"div", [&] { (void)div(u, real(2)); }},
          {"rsub", [&] { (void)rsub(u, real(2)); }},
          {"rdiv", [&] { (void)rdiv(u, real(2)); }},
          {"pow", [&] { (void)pow(u, 2); }},
          {"exp", [&] { (void)exp(u); }},
          {"log", [&] { (void)log(u); }},
          {"sqrt", [&] { (void)sqrt(u); }},
          {"tanh", [&] { (void)tanh(u); }},
          {"sigmoid", [&] { (void)sigmoid(u); }},
          {"relu", [&] { (void)relu(u); }},
          {"sum", [&] { (void)sum(u); }},
          {"sum", [&] { (void)sum(u, 0); }},
          {"mean", [&] { (void)mean(u); }},
          {"mean", [&] { (void)mean(u, 0); }},
          {"max", [&] { (void)max(u); }},
          {"max", [&] { (void)max(u, 0); }},
          {"argmax", [&] { (void)argmax(u, 0); }},
          {"softmax", [&] { (void)softmax(u, 0); }},
          {"log_softmax", [&] { (void)log_softmax(u, 0); }},
          {"reshape", [&] { (void)reshape(u, {1}); }},
          {"transpose", [&] { (void)transpose(u, 0, 1); }},
          {"permute", [&] { (void)permute(u, {0}); }},
          {"unsqueeze", [&] { (void)unsqueeze(u, 0); }},
          {"squeeze", [&] { (void)squeeze(u); }},
          {"squeeze", [&] { (void)squeeze(u, 0); }},
          {"cat",
           [&] {
             (void)cat({x, u}, 0);
           }},
          {"stack", [&] { (void)stack({u}, 0); }},
          {"narrow", [&] { (void)narrow(u, 0, 0, 1); }},
          {"slice", [&] { (void)slice(u, 0, 0, 1); }},
          {"index_select", [&] { (void)index_select(u, 0, std::vector<int64_t>{0}); }},
          {"index_select", [&] { (void)index_select(x, 0, u); }},
          {"masked_fill", [&] { (void)masked_fill(u, x, 0); }},
          {"masked_fill", [&] { (void)masked_fill(x, u, 0); }},
          {"where", [&] { (void)where(u, x, x); }},
          {"where", [&] { (void)where(x, x, u); }},
          {"clone", [&] { (void)u.clone(); }},
          {"detach", [&] { (void)u.detach(); }},
      },
      "undefined");
}

TEST_CASE("errors: an undefined input to a layer is named by the layer") {
  const Tensor u;
  nn::Seq2SeqOptions s2s;
  s2s.source_vocab = s2s.target_vocab = 6;
  nn::Seq2Seq seq2seq(s2s);
  check_all(
      {
          {"Embedding", [&] { (void)nn::Embedding(3, 2).forward(u); }},
          {"LayerNorm", [&] { (void)nn::LayerNorm(3).forward(u); }},
          {"PointAttention", [&] { (void)nn::PointAttention(3).forward(u); }},
          {"RNN", [&] { (void)nn::RNN(3, 2).forward(u); }},
          {"LSTM", [&] { (void)nn::LSTM(3, 2).forward(u); }},
          {"RNNCell", [&] { (void)nn::RNNCell(3, 2).forward(u); }},
          {"LSTMCell", [&] { (void)nn::LSTMCell(3, 2).forward(u); }},
          {"SequenceAttention", [&] { (void)nn::SequenceAttention(3, 2).forward(u); }},
          {"Dropout", [&] { (void)nn::Dropout(0.5).forward(u); }},
          {"ReLU", [&] { (void)nn::ReLU().forward(u); }},
          {"Tanh", [&] { (void)nn::Tanh().forward(u); }},
          {"Sigmoid", [&] { (void)nn::Sigmoid().forward(u); }},
          {"Softmax", [&] { (void)nn::Softmax(1).forward(u); }},
          {"Seq2Seq",
           [&] {
             (void)seq2seq.forward(u, {}, ones({1, 2}));
           }},
          {"Seq2Seq",
           [&] {
             (void)seq2seq.forward(ones({1, 2}), {}, u);
           }},
          {"Seq2Seq::greedy_decode", [&] { (void)seq2seq.greedy_decode(u, {}, 3); }},
          {"attention_weights", [&] { (void)nn::attention_weights(u); }},
          {"weighted_context",
           [&] {
             (void)nn::weighted_context(u, ones({2, 3, 4}));
           }},
          {"hard_attention",
           [&] {
             (void)nn::hard_attention(ones({2, 3}), u);
           }},
          {"DotScore",
           [&] {
             (void)nn::DotScore().forward(u, ones({2, 3, 4}));
           }},
          {"add_context",
           [&] {
             (void)nn::add_context(u, ones({2, 3}));
           }},
      },
      "undefined");
}

TEST_CASE("errors: argmax over an empty dim names argmax") {
  check_error([] { (void)argmax(zeros({2, 0}), 1); }, {"argmax:", "empty dim 1", "(2,0)"});
}

TEST_CASE("errors: Seq2Seq and SequenceAttention check lengths and tokens at their entry") {
  nn::Seq2SeqOptions o;
  o.source_vocab = 5;
  o.target_vocab = 7;
  nn::Seq2Seq model(o);
  const Tensor source = tensor({{3, 4}}), target_in = tensor({{1, 2}});
  check_error([&] { (void)model.forward(source, {5}, target_in); },
              {"Seq2Seq: length 5 of sequence 0 is outside 1..2"});
  check_error(
      [&] {
        (void)model.forward(source, {1, 2}, target_in);
      },
      {"Seq2Seq: 2 lengths given for a batch of 1"});
  check_error(
      [&] {
        (void)model.forward(tensor({{3, 9}}), {}, target_in);
      },
      {"Seq2Seq: source token 9", "outside the source vocabulary 0..4"});
  check_error(
      [&] {
        (void)model.forward(source, {}, tensor({{1, 7}}));
      },
      {"Seq2Seq: target_in token 7", "outside the target vocabulary 0..6"});
  check_error([&] { (void)model.greedy_decode(source, {3}, 4); },
              {"Seq2Seq::greedy_decode: length 3 of sequence 0"});
  check_error(
      [&] {
        (void)nn::SequenceAttention(2, 3).forward(ones({2, 4, 2}), {1, 5});
      },
      {"SequenceAttention: length 5 of sequence 1 is outside 1..4"});
}

TEST_CASE("errors: the Transformer layers check their masks and tokens under their own names") {
  const Tensor x = randn({2, 3, 8});
  nn::TransformerEncoderLayer layer(8, 2, 16);
  nn::TransformerEncoder encoder(2, 8, 2, 16);
  check_error(
      [&] {
        (void)layer.forward(x, ones({3, 2}));
      },
      {"TransformerEncoderLayer: mask (3,2) must be (T,T) = (3,3)"});
  check_error(
      [&] {
        (void)layer.forward(x, Tensor(), ones({3, 3}));
      },
      {"TransformerEncoderLayer: key_padding_mask (3,3) must be (B,T) = (2,3)"});
  check_error(
      [&] {
        (void)encoder.forward(x, ones({4, 4}));
      },
      {"TransformerEncoder: mask (4,4) must be (T,T) = (3,3)"});
  nn::TinyTransformerOptions o;
  o.vocab_size = 5;
  o.d_model = 8;
  o.heads = 2;
  o.d_ff = 16;
  nn::TinyTransformer model(o);
  check_error(
      [&] {
        (void)model.forward(tensor({{1, 5}}));
      },
      {"TinyTransformer: token 5 at position 1 is outside the vocabulary 0..4"});
  check_error(
      [&] {
        (void)model.forward(tensor({{1, 2}}), true, ones({1, 3}));
      },
      {"TinyTransformer: key_padding_mask (1,3) must be (B,T) = (1,2)"});
  check_error(
      [&] {
        (void)model.generate(tensor({{1, -1}}), 2);
      },
      {"TinyTransformer::generate: token -1 at position 1"});
}

TEST_CASE("errors: an attention score module checks its mask under its own name") {
  nn::AdditiveScore score(3, 3, 4);
  const Tensor query = ones({2, 3}), keys = ones({2, 5, 3});
  check_error(
      [&] {
        (void)score.forward(query, keys, ones({5, 2}));
      },
      {"AdditiveScore: mask (5,2) must be (B,S) or (B,1,S)"});
  nn::DotScore dot;
  check_error(
      [&] {
        (void)dot.attend_hard(query, keys, keys, ones({2, 4}));
      },
      {"DotScore: mask (2,4) must be (B,S) or (B,1,S)"});
}

TEST_CASE("errors: a NUL byte in a file's text is shown as \\0, not cut short at it") {
  // '<f\0x' as dtype: the message went up to "dtype '<f" and stopped there.
  constexpr char dict[] = "{'descr': '<f\0x', 'fortran_order': False, 'shape': (1,), }\n";
  const std::string header(dict, sizeof dict - 1);
  std::string npy = std::string("\x93NUMPY\x01\x00", 8);
  npy += static_cast<char>(header.size());
  npy += '\0';
  npy += header + std::string(4, '\0');
  try {
    (void)parse_npy(npy, "nul.npy");
    FAIL("expected an ag::Error");
  } catch (const Error& e) {
    const std::string message(e.what());  // up to the first NUL, as a C string
    INFO(message);
    CHECK(message.find("dtype '<f\\0x' is not supported") != std::string::npos);
  }
  const std::string st_header = R"({"a\u0000b":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}})";
  std::string st;
  for (int k = 0; k < 8; ++k) st += static_cast<char>((st_header.size() >> (8 * k)) & 0xFF);
  st += st_header + "x";
  try {
    (void)parse_safetensors(st, "nul.safetensors");
    FAIL("expected an ag::Error");
  } catch (const Error& e) {
    const std::string message(e.what());
    INFO(message);
    CHECK(message.find("tensor 'a\\0b' has dtype 'I8'") != std::string::npos);
  }
}

TEST_CASE(
    "layers/transformer [F4.8]: TinyTransformer takes a key padding mask; padding changes "
    "nothing") {
  nn::TinyTransformerOptions o;
  o.vocab_size = 6;
  o.d_model = 8;
  o.heads = 2;
  o.d_ff = 16;
  o.max_len = 8;
  manual_seed(3);
  nn::TinyTransformer model(o);
  const Tensor alone = tensor({{1, 4, 2}});
  const Tensor padded = tensor({{1, 4, 2, 0, 0}, {3, 3, 3, 3, 3}});
  const Tensor padding = tensor({{0, 0, 0, 1, 1}, {0, 0, 0, 0, 0}});
  // Without the causal mask every position would see the padding but for the key padding mask.
  const Tensor expected = model.forward(alone, /*causal=*/false);
  const Tensor got = narrow(narrow(model.forward(padded, false, padding), 0, 0, 1), 1, 0, 3);
  CHECK(ag::testing::max_abs_diff(got, expected) <= 1e-5);
  const Tensor unmasked = narrow(narrow(model.forward(padded, false), 0, 0, 1), 1, 0, 3);
  CHECK(ag::testing::max_abs_diff(unmasked, expected) > 1e-3);  // the padding was seen
}

TEST_CASE("errors: generate with a number of steps past int64, gradcheck and bernoulli options") {
  nn::TinyTransformerOptions o;
  o.vocab_size = 5;
  o.d_model = 8;
  o.heads = 2;
  o.d_ff = 16;
  o.max_len = 6;
  nn::TinyTransformer model(o);
  // 2 + (2^63 - 1) overflowed, so the check passed and generation ran into max_len later.
  check_error([&] { (void)model.generate(tensor({{1, 2}}), INT64_MAX); },
              {"TinyTransformer::generate: 2 prompt tokens + 9223372036854775807 steps exceed "
               "max_len 6"});
  Tensor x = ones({2});
  x.requires_grad_();
  auto f = [](const std::vector<Tensor>& in) { return in[0] * in[0]; };
  GradcheckOptions zero_step;
  zero_step.eps = 0;
  check_error([&] { (void)gradcheck(f, {x}, zero_step); }, {"gradcheck:", "eps 0"});
  GradcheckOptions nan_tolerance;
  nan_tolerance.rtol = std::numeric_limits<double>::quiet_NaN();
  check_error([&] { (void)gradcheck(f, {x}, nan_tolerance); }, {"gradcheck:", "rtol nan"});
  Generator gen(1);
  check_error([&] { (void)gen.bernoulli(std::numeric_limits<double>::quiet_NaN()); },
              {"bernoulli: probability nan"});
  check_error([&] { (void)gen.bernoulli(1.5); }, {"bernoulli: probability 1.5"});
}
