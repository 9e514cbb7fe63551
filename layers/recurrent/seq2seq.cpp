// Seq2Seq: encoder, one decoder step, the teacher-forced loop and the greedy one.
#include "layers/recurrent/seq2seq.hpp"

#include "autograd/grad_mode.hpp"
#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "layers/attention/scaled_dot_product.hpp"

namespace ag::nn {

const char* to_string(CellType cell) { return cell == CellType::RNN ? "RNN" : "LSTM"; }

const char* to_string(ScoreType score) {
  switch (score) {
    case ScoreType::None:
      return "none";
    case ScoreType::Dot:
      return "dot";
    case ScoreType::General:
      return "general";
    case ScoreType::Additive:
      return "additive";
  }
  return "?";
}

Seq2Seq::Seq2Seq(const Seq2SeqOptions& o) : Module("Seq2Seq"), options(o) {
  AG_CHECK(o.source_vocab > 0 && o.target_vocab > 0 && o.embedding_dim > 0 && o.hidden_size > 0 &&
               o.attention_size > 0,
           "Seq2Seq: vocabularies ({}, {}), embedding_dim {}, hidden_size {} and "
           "attention_size {} must be positive",
           o.source_vocab, o.target_vocab, o.embedding_dim, o.hidden_size, o.attention_size);
  for (int64_t id : {o.pad_id, o.bos_id, o.eos_id})
    AG_CHECK(id >= 0 && id < o.target_vocab,
             "Seq2Seq: special token id {} is outside the target vocabulary 0..{}", id,
             o.target_vocab - 1);
  AG_CHECK(o.num_layers >= 1, "Seq2Seq: num_layers must be >= 1, got {}", o.num_layers);
  AG_CHECK(o.dropout >= 0 && o.dropout < 1, "Seq2Seq: dropout must be in [0, 1), got {}",
           o.dropout);
  const int64_t E = o.embedding_dim, H = o.hidden_size, L = o.num_layers, K = key_size();
  AG_CHECK(!(o.score == ScoreType::Dot && o.bidirectional),
           "Seq2Seq: the dot score compares the decoder state (hidden_size {}) with keys of the "
           "same size, but a bidirectional encoder's keys have 2 * hidden_size = {}: use the "
           "general or additive score",
           H, K);
  encoder_embedding =
      register_module("encoder_embedding", std::make_shared<Embedding>(o.source_vocab, E));
  if (o.cell == CellType::RNN)
    encoder_rnn =
        register_module("encoder", std::make_shared<RNN>(E, H, L, o.dropout, o.bidirectional));
  else
    encoder_lstm =
        register_module("encoder", std::make_shared<LSTM>(E, H, L, o.dropout, o.bidirectional));
  decoder_embedding =
      register_module("decoder_embedding", std::make_shared<Embedding>(o.target_vocab, E));
  // [F1.9] the decoder's input is [embedding; context]: E + K features
  if (L == 1 && o.cell == CellType::RNN)
    decoder_rnn = register_module("decoder", std::make_shared<RNNCell>(E + K, H));
  else if (L == 1)
    decoder_lstm = register_module("decoder", std::make_shared<LSTMCell>(E + K, H));
  else if (o.cell == CellType::RNN)
    decoder_rnn_layers = register_module("decoder", std::make_shared<RNN>(E + K, H, L, o.dropout));
  else
    decoder_lstm_layers =
        register_module("decoder", std::make_shared<LSTM>(E + K, H, L, o.dropout));
  if (o.bidirectional)
    decoder_init = register_module("decoder_init", std::make_shared<Linear>(H, H));
  switch (o.score) {
    case ScoreType::None:
      break;
    case ScoreType::Dot:
      attention = register_module("attention", std::make_shared<DotScore>());
      break;
    case ScoreType::General:
      attention =
          register_module("attention", std::make_shared<GeneralScore>(H, K, o.attention_size));
      break;
    case ScoreType::Additive:
      attention =
          register_module("attention", std::make_shared<AdditiveScore>(H, K, o.attention_size));
      break;
  }
  output = register_module("output", std::make_shared<Linear>(H + K, o.target_vocab));
}

int64_t Seq2Seq::key_size() const { return (options.bidirectional ? 2 : 1) * options.hidden_size; }

void Seq2Seq::check_source(const char* who, const Tensor& source,
                           const std::vector<int64_t>& lengths) const {
  check_defined(source, who, "source");
  AG_CHECK(source.dim() == 2 && source.size(1) >= 1,
           "{}: source {} must be token ids (batch, source length >= 1)", who, describe(source));
  check_tokens(source, options.source_vocab, who, "source ", "source ");
  check_lengths(lengths, source, who);
}

void Seq2Seq::check_teacher_forcing(const Tensor& source, const std::vector<int64_t>& lengths,
                                    const Tensor& target_in) const {
  check_source("Seq2Seq", source, lengths);
  check_defined(target_in, "Seq2Seq", "target_in");
  AG_CHECK(target_in.dim() == 2 && target_in.size(0) == source.size(0) && target_in.size(1) >= 1,
           "Seq2Seq: target_in {} must be (batch = {}, target length >= 1)", describe(target_in),
           source.size(0));
  check_tokens(target_in, options.target_vocab, "Seq2Seq", "target_in ", "target ");
}

namespace {

// The top layer's h (B,H) of a decoder state: (B,H) already for one layer, (L,B,H) above.
Tensor top_layer(const Tensor& h) {
  return h.dim() == 2 ? h : squeeze(narrow(h, 0, h.size(0) - 1, 1), 0);
}

}  // namespace

Seq2Seq::Encoded Seq2Seq::encode(const Tensor& source, const std::vector<int64_t>& lengths) {
  // [F1.2] [F4.1] h_1..h_S = Encoder(x_1..x_S)          (B,S) -> (B,S,E) -> (B,S,K)
  const Tensor embedded = encoder_embedding->forward(source);
  SequenceOutput out = encoder_rnn ? encoder_rnn->forward(embedded, lengths)
                                   : encoder_lstm->forward(embedded, lengths);
  const int64_t L = options.num_layers, B = source.size(0), H = options.hidden_size;
  Encoded e;
  e.states = out.output;
  if (!options.bidirectional) {
    // decoder layer l starts from encoder layer l's last state    (L,B,H)
    e.start = {out.h_n, out.c_n};
    e.summary = squeeze(narrow(out.h_n, 0, L - 1, 1), 0);
  } else {
    // h_n's rows are (layer, direction): (2L,B,H) -> (L,2,B,H); direction 1 is
    // the backward one, whose last state is <-h_1, at the first source token
    auto direction = [&](const Tensor& last, int64_t d) {
      return reshape(narrow(reshape(last, {L, 2, B, H}), 1, d, 1), {L, B, H});
    };
    // Bahdanau's s_0 = tanh(W_s <-h_1 + b_s), every layer    (L,B,H) -> (L,B,H)
    e.start.h = tanh(decoder_init->forward(direction(out.h_n, 1)));
    if (out.c_n.defined()) e.start.c = direction(out.c_n, 1);
    // without attention: [->h_S; <-h_1] of the top layer    (B,H) ++ (B,H) -> (B,2H)
    e.summary = cat({top_layer(direction(out.h_n, 0)), top_layer(direction(out.h_n, 1))}, 1);
  }
  if (L == 1) {  // a one-layer decoder is a cell: (1,B,H) -> (B,H)
    e.start.h = squeeze(e.start.h, 0);
    if (e.start.c.defined()) e.start.c = squeeze(e.start.c, 0);
  }
  if (attention) {
    e.projected_keys = attention->project_keys(e.states);
    // [F4.8] padding: positions past a source's length get no attention
    if (!lengths.empty()) e.mask = padding_mask(lengths, source.size(1));
  }
  return e;
}

Seq2Seq::Step Seq2Seq::decode_step(const Encoded& encoded, const Tensor& embedded,
                                   RecurrentState& state, Tensor& context) {
  // [F1.9] input feeding: u_t = [embed(y_{t-1}); c_{t-1}]       (B,E) ++ (B,K) -> (B,E+K)
  const Tensor input = cat({embedded, options.input_feeding ? context : zeros_like(context)}, 1);
  // [F4.9] [F1.2] s_t = Decoder(y_{t-1}, s_{t-1}, c_{t-1})      (B,E+K) -> (B,H)
  if (decoder_rnn) {
    state.h = decoder_rnn->forward(input, state.h);
  } else if (decoder_lstm) {
    state = decoder_lstm->forward(input, state);
  } else {  // L layers, one time step: (B,1,E+K), state (L,B,H) each
    const SequenceOutput out = decoder_rnn_layers
                                   ? decoder_rnn_layers->forward(unsqueeze(input, 1), {}, state.h)
                                   : decoder_lstm_layers->forward(unsqueeze(input, 1), {}, state);
    state = {out.h_n, out.c_n};
  }
  const Tensor s_t = top_layer(state.h);  // (B,H)
  Tensor weights;
  if (attention) {
    // [F4.2] [F4.4] [F4.5] e_t(j) = score(s_t, h_j), [F4.6] a_t = softmax_j e_t(j),
    // [F4.7] c_t = sum_j a_t(j) h_j; the query is s_t itself ([F4.3] not adopted)
    AttentionOutput att =
        attention->attend(s_t, encoded.states, encoded.projected_keys, encoded.mask);
    context = att.context;
    weights = att.weights;
  }
  return {cat({s_t, context}, 1), weights};
}

Tensor Seq2Seq::logits_of(const Tensor& readout) {
  // [F4.9] logits of y_t = W_out [s_t; c_t] + b_out            (..., H+K) -> (..., V)
  return output->forward(readout);
}

Seq2SeqOutput Seq2Seq::forward(const Tensor& source, const std::vector<int64_t>& source_lengths,
                               const Tensor& target_in) {
  check_teacher_forcing(source, source_lengths, target_in);
  const Encoded encoded = encode(source, source_lengths);
  const int64_t B = source.size(0), T = target_in.size(1);
  RecurrentState state = encoded.start;
  // c_0: zeros with attention (nothing attended yet); the encoder's last state(s) without
  Tensor context = attention ? zeros({B, key_size()}) : encoded.summary;
  std::vector<Tensor> readouts, weights;
  for (int64_t t = 0; t < T; ++t) {
    // [F4.9] teacher forcing: the decoder reads the true previous token y_{t-1}   (B) -> (B,E)
    const Tensor embedded = decoder_embedding->forward(squeeze(narrow(target_in, 1, t, 1), 1));
    Step step = decode_step(encoded, embedded, state, context);
    readouts.push_back(step.readout);
    if (attention) weights.push_back(step.weights);
  }
  // Every step's logits at once, (B,T,H+K) -> (B,T,V): the output layer is
  // one product over all B*T rows instead of T small ones.
  return {logits_of(stack(readouts, 1)), attention ? stack(weights, 1) : Tensor()};
}

GreedyDecoding Seq2Seq::greedy_decode(const Tensor& source,
                                      const std::vector<int64_t>& source_lengths,
                                      int64_t max_length) {
  check_source("Seq2Seq::greedy_decode", source, source_lengths);
  AG_CHECK(max_length >= 1, "Seq2Seq::greedy_decode: max_length must be >= 1, got {}", max_length);
  NoGradGuard no_grad;
  const Encoded encoded = encode(source, source_lengths);
  const int64_t B = source.size(0);
  RecurrentState state = encoded.start;
  Tensor context = attention ? zeros({B, key_size()}) : encoded.summary;
  std::vector<int64_t> previous(static_cast<size_t>(B), options.bos_id);
  std::vector<bool> finished(static_cast<size_t>(B), false);
  GreedyDecoding result;
  result.tokens.resize(static_cast<size_t>(B));
  std::vector<Tensor> weights;
  for (int64_t t = 0; t < max_length; ++t) {
    Step step = decode_step(encoded, decoder_embedding->forward(previous), state, context);
    if (attention) weights.push_back(step.weights);
    // [F4.9] greedy decoding: y_t = argmax p(y_t | y_<t, x), fed back as the next input
    const std::vector<int64_t> best =
        to_indices(argmax(logits_of(step.readout), 1), "greedy_decode");
    bool all_finished = true;
    for (int64_t b = 0; b < B; ++b) {
      if (!finished[b]) {
        if (best[b] == options.eos_id)
          finished[b] = true;
        else
          result.tokens[b].push_back(best[b]);
      }
      all_finished = all_finished && finished[b];
    }
    previous = best;
    if (all_finished) break;
  }
  if (attention) result.attention = stack(weights, 1);
  return result;
}

std::string Seq2Seq::extra_repr() const {
  std::string s = fmt::format("cell={}, score={}, embedding_dim={}, hidden_size={}",
                              nn::to_string(options.cell), nn::to_string(options.score),
                              options.embedding_dim, options.hidden_size);
  if (options.num_layers != 1) s += fmt::format(", num_layers={}", options.num_layers);
  if (options.dropout != 0) s += fmt::format(", dropout={}", options.dropout);
  if (options.bidirectional) s += ", bidirectional=true";
  return s;
}

}  // namespace ag::nn
