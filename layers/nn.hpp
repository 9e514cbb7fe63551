// Everything of the layers floor: include this to build and train models.
//
// Where the seeds' formulas live in this floor:
//   [F0.1]-[F0.4] point attention         layers/attention/point_attention.hpp
//   [F0.2]        softmax as a module      layers/basic/activation.hpp
//   [F2.8]        token embedding          layers/basic/embedding.hpp
//   [F3.6]        layer normalization      layers/basic/layer_norm.hpp
//   [F4.10]       mean squared error       layers/framework/loss.hpp
//   [F0.5]        RNN (Elman), LSTM        layers/recurrent/rnn.hpp, layers/recurrent/lstm.hpp
//   [F0.6]-[F0.7] attention over RNN states layers/recurrent/sequence_attention.hpp
//   [F1.4] [F1.5] [F1.7] [F4.2] [F4.4]-[F4.7] scores  layers/attention/attention_scores.hpp
//   [F1.2] [F1.9] [F4.1] [F4.9] Seq2Seq      layers/recurrent/seq2seq.hpp
//   [F1.1] [F1.3] [F2.1] [F2.3]-[F2.5] [F3.4] [F4.8]
//                 scaled dot-product attention and masks   layers/attention/scaled_dot_product.hpp
//   [F0.8]-[F0.10] [F2.2] [F2.6] [F3.2]
//                 multi-head attention     layers/attention/multi_head_attention.hpp
//   [F3.5]        seed 003's SelfAttention layers/attention/self_attention.hpp
//   [F3.1]        positional encoding      layers/basic/positional_encoding.hpp
//   [F3.3]        feed-forward network     layers/basic/feed_forward.hpp
//   [F2.8] [F3.3] [F3.6]
//                 encoder layer, tiny Transformer          layers/transformer/transformer.hpp
//   [F1.1] [F2.6] [F3.3] [F3.6]
//                 decoder layer (cross-attention)    layers/transformer/transformer_decoder.hpp
//   [F1.2]        nn::Transformer, the encoder-decoder     layers/transformer/encoder_decoder.hpp
//   [F2.8]        seed 002's TransformerModel              layers/transformer/transformer_model.hpp
//   [F4.8]        a Transformer layer's masks              layers/transformer/transformer_masks.hpp
//   [F4.9]        greedy, sampling, beam search            layers/transformer/decoding.hpp
//   [F2.2] [F2.6] the KV cache of generation               layers/transformer/kv_cache.hpp
// docs/formulas.md lists every formula with its file, line and test.
//
// Also here: save_safetensors / load_safetensors (named tensors in the format
// PyTorch and Hugging Face exchange) and save_npy / load_npy, for the data
// and results a program writes beside its model.
#pragma once

#include "autograd/attograd.hpp"
#include "core/io/npy.hpp"
#include "core/io/safetensors.hpp"
#include "layers/attention/attention_scores.hpp"
#include "layers/attention/multi_head_attention.hpp"
#include "layers/attention/point_attention.hpp"
#include "layers/attention/scaled_dot_product.hpp"
#include "layers/attention/self_attention.hpp"
#include "layers/basic/activation.hpp"
#include "layers/basic/conv1d.hpp"
#include "layers/basic/dropout.hpp"
#include "layers/basic/embedding.hpp"
#include "layers/basic/feed_forward.hpp"
#include "layers/basic/layer_norm.hpp"
#include "layers/basic/linear.hpp"
#include "layers/basic/positional_encoding.hpp"
#include "layers/framework/adamw.hpp"
#include "layers/framework/data.hpp"
#include "layers/framework/init.hpp"
#include "layers/framework/loss.hpp"
#include "layers/framework/lr_scheduler.hpp"
#include "layers/framework/module.hpp"
#include "layers/framework/optim.hpp"
#include "layers/framework/rmsprop.hpp"
#include "layers/framework/standard_scaler.hpp"
#include "layers/recurrent/lstm.hpp"
#include "layers/recurrent/rnn.hpp"
#include "layers/recurrent/seq2seq.hpp"
#include "layers/recurrent/sequence_attention.hpp"
#include "layers/transformer/decoding.hpp"
#include "layers/transformer/encoder_decoder.hpp"
#include "layers/transformer/kv_cache.hpp"
#include "layers/transformer/transformer.hpp"
#include "layers/transformer/transformer_decoder.hpp"
#include "layers/transformer/transformer_masks.hpp"
#include "layers/transformer/transformer_model.hpp"
