// The model workloads of `make bench`: one training step of each tutorial
// model, defined exactly (sizes, layers, loss, optimizer) so that the same
// model can be written in PyTorch and timed against attograd. A step is:
// zero the gradients, forward, loss, backward, optimizer step. All float32,
// one thread. Inputs and labels are random and fixed for the whole run.
//
//   mlp_step              Linear(2,128) ReLU Linear(128,3), cross-entropy, SGD
//   point_attention_step  point attention over (32,16,64), Linear(64,10), Adam
//   rnn_attention_step    tanh RNN encoder + Bahdanau-attention decoder, Adam
//   transformer_step      2 pre-norm causal Transformer layers, Adam
#pragma once

#include <cmath>
#include <memory>
#include <vector>

#include "layers/nn.hpp"

namespace bench_models {

using namespace ag;

// --- mlp_step ----------------------------------------------------------------------
// x (300,2) random, labels in 0..2; Linear(2,128), ReLU, Linear(128,3);
// cross-entropy; SGD lr 0.1.
struct Mlp : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  Mlp() : Module("Mlp") {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(2, 128));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(128, 3));
  }
  Tensor forward(const Tensor& x) { return fc2->forward(relu(fc1->forward(x))); }
};

// --- point_attention_step --------------------------------------------------------------
// x (32,16,64); e = Linear(64,1)(x); a = softmax over the 16 positions;
// context = sum_i a_i x_i (32,64); Linear(64,10); cross-entropy on (32,) labels; Adam.
struct PointAttentionClassifier : nn::Module {
  std::shared_ptr<nn::PointAttention> attention;
  std::shared_ptr<nn::Linear> classifier;
  PointAttentionClassifier() : Module("PointAttentionClassifier") {
    attention = register_module("attention", std::make_shared<nn::PointAttention>(64));
    classifier = register_module("classifier", std::make_shared<nn::Linear>(64, 10));
  }
  Tensor forward(const Tensor& x) { return classifier->forward(attention->forward(x).context); }
};

// --- rnn_attention_step -------------------------------------------------------------------
// Vocabulary 16, embedding 32, hidden 64, source and target length 12, batch 32.
//   encoder  h_t = tanh(W_xh e_t + b + W_hh h_{t-1}),  h_0 = 0
//   decoder  s_0 = h_12; for t = 1..12:
//            score_j = v^T tanh(W_q s_{t-1} + W_k h_j)    (W_k h_j once for all j)
//            alpha = softmax_j(score),  c_t = sum_j alpha_j h_j
//            s_t = tanh(W_in [emb(y_{t-1}); c_t] + b + W_ss s_{t-1})
//            logits_t = W_out [s_t; c_t] + b_out
//   mean cross-entropy over all 12x32 targets (teacher forcing); Adam lr 1e-3.
struct RnnAttention : nn::Module {
  static constexpr int64_t vocab = 16, emb = 32, hidden = 64;
  std::shared_ptr<nn::Embedding> src_embedding, tgt_embedding;
  std::shared_ptr<nn::Linear> w_xh, w_hh;         // encoder
  std::shared_ptr<nn::Linear> w_q, w_k, v;        // additive attention, no biases
  std::shared_ptr<nn::Linear> w_in, w_ss, w_out;  // decoder
  RnnAttention() : Module("RnnAttention") {
    src_embedding = register_module("src_embedding", std::make_shared<nn::Embedding>(vocab, emb));
    tgt_embedding = register_module("tgt_embedding", std::make_shared<nn::Embedding>(vocab, emb));
    w_xh = register_module("w_xh", std::make_shared<nn::Linear>(emb, hidden));
    w_hh = register_module("w_hh", std::make_shared<nn::Linear>(hidden, hidden, false));
    w_q = register_module("w_q", std::make_shared<nn::Linear>(hidden, hidden, false));
    w_k = register_module("w_k", std::make_shared<nn::Linear>(hidden, hidden, false));
    v = register_module("v", std::make_shared<nn::Linear>(hidden, 1, false));
    w_in = register_module("w_in", std::make_shared<nn::Linear>(emb + hidden, hidden));
    w_ss = register_module("w_ss", std::make_shared<nn::Linear>(hidden, hidden, false));
    w_out = register_module("w_out", std::make_shared<nn::Linear>(2 * hidden, vocab));
  }

  // src, tgt_in: (T,B) token ids, time first so that step t is a contiguous (B,.) slice.
  // Returns logits (T,B,vocab).
  Tensor forward(const Tensor& src, const Tensor& tgt_in) {
    const int64_t T = src.size(0), B = src.size(1);
    // W_xh e_t + b for every t at once                      (T,B,emb) -> (T,B,hidden)
    Tensor xw = w_xh->forward(src_embedding->forward(src));
    Tensor h = zeros({B, hidden});
    std::vector<Tensor> states;
    for (int64_t t = 0; t < T; ++t) {
      Tensor x_t = reshape(narrow(xw, 0, t, 1), {B, hidden});
      h = tanh(x_t + w_hh->forward(h));  // (B,hidden)
      states.push_back(h);
    }
    Tensor enc = stack(states, 1);               // (B,T,hidden)
    Tensor keys = w_k->forward(enc);             // W_k h_j, once   (B,T,hidden)
    Tensor ye = tgt_embedding->forward(tgt_in);  // (T,B,emb)
    Tensor s = h;
    std::vector<Tensor> outputs;
    for (int64_t t = 0; t < T; ++t) {
      // v^T tanh(W_q s + W_k h_j) in one fused op, the same as
      // v->forward(tanh(unsqueeze(w_q->forward(s), 1) + keys))
      Tensor score = nn::additive_score_fused(w_q->forward(s), keys, v->weight);  // (B,T,1)
      Tensor alpha = softmax(score, 1);                                           // over j
      Tensor c = nn::attention_context_fused(alpha, enc);  // sum(alpha * enc, 1) // (B,hidden)
      Tensor y_t = reshape(narrow(ye, 0, t, 1), {B, emb});
      s = tanh(w_in->forward(cat({y_t, c}, 1)) + w_ss->forward(s));  // (B,hidden)
      outputs.push_back(cat({s, c}, 1));                             // (B,2 hidden)
    }
    return w_out->forward(stack(outputs, 0));  // (T,B,vocab)
  }
};

// --- transformer_step ---------------------------------------------------------------------
// Vocabulary 16, d_model 64, 4 heads, feed-forward 256, sequence 32, batch 32;
// embedding plus sinusoidal positions; 2 pre-norm layers
//   x = x + out_proj(attention(LN(x))) with a causal mask (q, k, v: three Linear(64,64))
//   x = x + W2 relu(W1 LN(x))
// final LayerNorm; Linear(64,16); cross-entropy over all positions; Adam; no dropout.
struct Block : nn::Module {
  int64_t d_model, heads;
  std::shared_ptr<nn::LayerNorm> ln1, ln2;
  std::shared_ptr<nn::Linear> q_proj, k_proj, v_proj, out_proj, w1, w2;
  Block(int64_t d_model, int64_t heads, int64_t d_ff)
      : Module("Block"), d_model(d_model), heads(heads) {
    ln1 = register_module("ln1", std::make_shared<nn::LayerNorm>(d_model));
    q_proj = register_module("q_proj", std::make_shared<nn::Linear>(d_model, d_model));
    k_proj = register_module("k_proj", std::make_shared<nn::Linear>(d_model, d_model));
    v_proj = register_module("v_proj", std::make_shared<nn::Linear>(d_model, d_model));
    out_proj = register_module("out_proj", std::make_shared<nn::Linear>(d_model, d_model));
    ln2 = register_module("ln2", std::make_shared<nn::LayerNorm>(d_model));
    w1 = register_module("w1", std::make_shared<nn::Linear>(d_model, d_ff));
    w2 = register_module("w2", std::make_shared<nn::Linear>(d_ff, d_model));
  }
  Tensor forward(const Tensor& x, const Tensor& mask) {
    Tensor normed = ln1->forward(x);
    // All heads at once on the (B,T,d) projections (head h = columns h d_h .. (h+1) d_h),
    // the same as merge_heads(scaled_dot_product_attention(split_heads(q), ...).context)
    Tensor merged =
        nn::multi_head_attention_fused(q_proj->forward(normed), k_proj->forward(normed),
                                       v_proj->forward(normed), heads, mask);  // (B,T,d)
    Tensor h = x + out_proj->forward(merged);
    return h + w2->forward(relu(w1->forward(ln2->forward(h))));
  }
};

struct TinyTransformer : nn::Module {
  static constexpr int64_t vocab = 16, d_model = 64, heads = 4, d_ff = 256, layers = 2;
  std::shared_ptr<nn::Embedding> embedding;
  std::vector<std::shared_ptr<Block>> blocks;
  std::shared_ptr<nn::LayerNorm> ln_f;
  std::shared_ptr<nn::Linear> head;
  Tensor positions;  // (T, d_model) sinusoidal, constant
  Tensor mask;       // (T, T) causal

  explicit TinyTransformer(int64_t T) : Module("TinyTransformer") {
    embedding = register_module("embedding", std::make_shared<nn::Embedding>(vocab, d_model));
    for (int64_t l = 0; l < layers; ++l)
      blocks.push_back(register_module(fmt::format("block{}", l),
                                       std::make_shared<Block>(d_model, heads, d_ff)));
    ln_f = register_module("ln_f", std::make_shared<nn::LayerNorm>(d_model));
    head = register_module("head", std::make_shared<nn::Linear>(d_model, vocab));
    // PE(pos, 2i) = sin(pos / 10000^(2i/d)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/d))
    std::vector<real> pe(static_cast<size_t>(T * d_model));
    for (int64_t pos = 0; pos < T; ++pos)
      for (int64_t i = 0; i < d_model; i += 2) {
        double angle = double(pos) / std::pow(10000.0, double(i) / double(d_model));
        pe[size_t(pos * d_model + i)] = real(std::sin(angle));
        pe[size_t(pos * d_model + i + 1)] = real(std::cos(angle));
      }
    positions = from_vector(pe, {T, d_model});
    mask = nn::causal_mask(T);
  }

  Tensor forward(const Tensor& tokens) {  // (B,T) -> logits (B,T,vocab)
    Tensor x = embedding->forward(tokens) + positions;
    for (auto& block : blocks) x = block->forward(x, mask);
    return head->forward(ln_f->forward(x));
  }
};

}  // namespace bench_models
