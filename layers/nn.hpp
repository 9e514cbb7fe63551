// Everything of the layers floor: include this to build and train models.
//
// Where the seeds' formulas live in this floor:
//   [F0.1]-[F0.4] point attention         layers/point_attention.hpp
//   [F0.2]        softmax as a module      layers/activation.hpp
//   [F2.8]        token embedding          layers/embedding.hpp
//   [F3.6]        layer normalization      layers/layer_norm.hpp
//   [F4.10]       mean squared error       layers/loss.hpp
//   [F0.5]        RNN (Elman), LSTM        layers/rnn.hpp, layers/lstm.hpp
//   [F0.6]-[F0.7] attention over RNN states layers/sequence_attention.hpp
//   [F1.4] [F1.5] [F1.7] [F4.2] [F4.4]-[F4.7] scores  layers/attention_scores.hpp
//   [F1.2] [F1.9] [F4.1] [F4.9] Seq2Seq      layers/seq2seq.hpp
//   [F1.1] [F1.3] [F2.1] [F2.3]-[F2.5] [F3.4] [F4.8]
//                 scaled dot-product attention and masks   layers/scaled_dot_product.hpp
//   [F0.8]-[F0.10] [F2.2] [F2.6] [F3.2]
//                 multi-head attention     layers/multi_head_attention.hpp
//   [F3.5]        seed 003's SelfAttention layers/self_attention.hpp
//   [F3.1]        positional encoding      layers/positional_encoding.hpp
//   [F3.3]        feed-forward network     layers/feed_forward.hpp
//   [F2.8] [F3.3] [F3.6]
//                 encoder layer, tiny Transformer          layers/transformer.hpp
//   [F1.1] [F2.6] [F3.3] [F3.6]
//                 decoder layer (cross-attention)          layers/transformer_decoder.hpp
//   [F1.2]        nn::Transformer, the encoder-decoder     layers/encoder_decoder.hpp
//   [F2.8]        seed 002's TransformerModel              layers/transformer_model.hpp
//   [F4.8]        a Transformer layer's masks              layers/transformer_masks.hpp
//   [F4.9]        greedy, sampling, beam search            layers/decoding.hpp
//   [F2.2] [F2.6] the KV cache of generation               layers/kv_cache.hpp
// docs/formulas.md lists every formula with its file, line and test.
//
// Also here: save_safetensors / load_safetensors (named tensors in the format
// PyTorch and Hugging Face exchange) and save_npy / load_npy, for the data
// and results a program writes beside its model.
#pragma once

#include "autograd/attograd.hpp"
#include "core/npy.hpp"
#include "core/safetensors.hpp"
#include "layers/activation.hpp"
#include "layers/adamw.hpp"
#include "layers/attention_scores.hpp"
#include "layers/conv1d.hpp"
#include "layers/data.hpp"
#include "layers/decoding.hpp"
#include "layers/dropout.hpp"
#include "layers/embedding.hpp"
#include "layers/encoder_decoder.hpp"
#include "layers/feed_forward.hpp"
#include "layers/init.hpp"
#include "layers/kv_cache.hpp"
#include "layers/layer_norm.hpp"
#include "layers/linear.hpp"
#include "layers/loss.hpp"
#include "layers/lr_scheduler.hpp"
#include "layers/lstm.hpp"
#include "layers/module.hpp"
#include "layers/multi_head_attention.hpp"
#include "layers/optim.hpp"
#include "layers/point_attention.hpp"
#include "layers/positional_encoding.hpp"
#include "layers/rmsprop.hpp"
#include "layers/rnn.hpp"
#include "layers/scaled_dot_product.hpp"
#include "layers/self_attention.hpp"
#include "layers/seq2seq.hpp"
#include "layers/sequence_attention.hpp"
#include "layers/standard_scaler.hpp"
#include "layers/transformer.hpp"
#include "layers/transformer_decoder.hpp"
#include "layers/transformer_masks.hpp"
#include "layers/transformer_model.hpp"
