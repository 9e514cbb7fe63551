// Seq2Seq's sampling and beam search: its TokenDecoder, one decoder step per token.
#include "autograd/grad_mode.hpp"
#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "layers/recurrent/seq2seq.hpp"

namespace ag::nn {

// The decoder's state is all an RNN keeps between steps (it reads one token a
// step anyway): the recurrent state s_t and the context c_t, per row.
class Seq2Seq::Decoding : public TokenDecoder {
 public:
  Decoding(Seq2Seq& model, const Tensor& source, const std::vector<int64_t>& lengths)
      : model_(model) {
    NoGradGuard no_grad;
    encoded_ = model.encode(source, lengths);
    state_ = encoded_.start;
    const int64_t batch = source.size(0);
    // c_0: zeros with attention (nothing attended yet); the encoder's last state(s) without
    context_ = model.attention ? zeros({batch, model.key_size()}) : encoded_.summary;
    pending_.assign(static_cast<size_t>(batch), model.options.bos_id);
  }

  // The state is (B,H) for one layer, (L,B,H) for L layers: the batch is its dim -2.
  int64_t rows() const override { return state_.h.size(-2); }

  Tensor next_logits() override {
    if (logits_.defined()) return logits_;
    NoGradGuard no_grad;
    // one decoder step (decode_step, [F1.9] [F4.9]) on the token appended last (bos_id at first)
    const Step step =
        model_.decode_step(encoded_, model_.decoder_embedding->forward(pending_), state_, context_);
    logits_ = model_.logits_of(step.readout);
    return logits_;
  }

  void append(const std::vector<int64_t>& tokens) override {
    AG_CHECK(static_cast<int64_t>(tokens.size()) == rows(),
             "Seq2Seq decoding: {} tokens appended to {} rows", tokens.size(), rows());
    AG_CHECK(logits_.defined(),
             "Seq2Seq decoding: append before next_logits (each step reads one token)");
    pending_ = tokens;
    logits_ = Tensor();
  }

  void reorder(const std::vector<int64_t>& rows) override {
    NoGradGuard no_grad;
    auto pick = [&rows](Tensor& t, int64_t batch_dim) {
      if (t.defined()) t = index_select(t, batch_dim, rows);
    };
    for (Tensor* t : {&state_.h, &state_.c}) pick(*t, t->defined() ? t->dim() - 2 : 0);
    for (Tensor* t : {&context_, &logits_, &encoded_.states, &encoded_.projected_keys,
                      &encoded_.mask, &encoded_.summary})
      pick(*t, 0);
    std::vector<int64_t> pending;
    for (int64_t r : rows) pending.push_back(pending_[size_t(r)]);
    pending_ = pending;
  }

 private:
  Seq2Seq& model_;
  Encoded encoded_;
  RecurrentState state_;
  Tensor context_;
  std::vector<int64_t> pending_;  // the token each row reads at its next step
  Tensor logits_;                 // the last next_logits(), until the next append
};

namespace {

void check_max_length(const char* who, int64_t max_length) {
  AG_CHECK(max_length >= 1, "{}: max_length must be >= 1, got {}", who, max_length);
}

}  // namespace

std::unique_ptr<TokenDecoder> Seq2Seq::start_decoding(const Tensor& source,
                                                      const std::vector<int64_t>& source_lengths) {
  check_source("Seq2Seq::start_decoding", source, source_lengths);
  return std::make_unique<Decoding>(*this, source, source_lengths);
}

std::vector<std::vector<int64_t>> Seq2Seq::sample(const Tensor& source,
                                                  const std::vector<int64_t>& source_lengths,
                                                  int64_t max_length, const SamplingOptions& opt,
                                                  Generator& gen) {
  check_max_length("Seq2Seq::sample", max_length);
  check_sampling_options("Seq2Seq::sample", opt, options.target_vocab);
  check_source("Seq2Seq::sample", source, source_lengths);
  Decoding decoder(*this, source, source_lengths);
  return nn::sample(decoder, max_length, opt, gen, options.eos_id);
}

std::vector<std::vector<Beam>> Seq2Seq::beam_search(const Tensor& source,
                                                    const std::vector<int64_t>& source_lengths,
                                                    int64_t max_length,
                                                    const BeamSearchOptions& opt) {
  check_max_length("Seq2Seq::beam_search", max_length);
  check_beam_options("Seq2Seq::beam_search", opt);
  check_source("Seq2Seq::beam_search", source, source_lengths);
  Decoding decoder(*this, source, source_lengths);
  return nn::beam_search(decoder, max_length, opt, options.eos_id);
}

}  // namespace ag::nn
