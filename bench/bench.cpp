// attograd's benchmark: one JSON line per workload on stdout,
//   {"name": "linear_fwd_bwd", "median_ms": 8.10, "steps": 50, ...}
// with workload-specific figures after the median. Each workload warms up,
// then times many steps and reports the median (robust to a noisy machine).
// One thread by default; AG_NUM_THREADS=n to change. Run: make bench
// (or build/release/bench/bench [line names...] to run only the lines named,
// e.g. `bench seq2seq_step` for the fast mode only, `bench seq2seq_step
// seq2seq_step_reference` for both).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "layers/nn.hpp"

using namespace ag;

namespace {

using Clock = std::chrono::steady_clock;

struct Timing {
  double median_ms;
  int steps;
};

// Runs `step` warmup times untimed, then `steps` times, and returns the median.
Timing time_steps(const std::function<void()>& step, int warmup, int steps) {
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> ms;
  for (int i = 0; i < steps; ++i) {
    auto start = Clock::now();
    step();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::nth_element(ms.begin(), ms.begin() + steps / 2, ms.end());
  return {ms[steps / 2], steps};
}

void print_line(const char* name, const Timing& t, const std::string& extra) {
  std::printf("{\"name\": \"%s\", \"median_ms\": %.4f, \"steps\": %d%s}\n", name, t.median_ms,
              t.steps, extra.c_str());
  std::fflush(stdout);
}

// Times two steps taking turns (a, b, a, b, ...), so that both see the same
// load from other programs, and returns both medians.
std::pair<Timing, Timing> time_alternating(const std::function<void()>& a,
                                           const std::function<void()>& b, int warmup, int steps) {
  for (int i = 0; i < warmup; ++i) {
    a();
    b();
  }
  std::vector<double> ms_a, ms_b;
  for (int i = 0; i < steps; ++i)
    for (auto [step, ms] : {std::pair{&a, &ms_a}, std::pair{&b, &ms_b}}) {
      auto start = Clock::now();
      (*step)();
      ms->push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
  std::nth_element(ms_a.begin(), ms_a.begin() + steps / 2, ms_a.end());
  std::nth_element(ms_b.begin(), ms_b.begin() + steps / 2, ms_b.end());
  return {{ms_a[steps / 2], steps}, {ms_b[steps / 2], steps}};
}

// x (256,1024) @ W (1024,1024) + b, sum, backward: three GEMMs of 256x1024x1024
// (forward x W, then dL/dx = g W^T and dL/dW = x^T g). Compared with the same
// three GEMMs called directly, the two taking turns in the same run: the
// engine's overhead on top of BLAS is what the ratio shows.
void linear_fwd_bwd() {
  const int64_t batch = 256, in = 1024, out = 1024;
  Generator gen(0);
  Tensor x = randn({batch, in}, gen).requires_grad_();
  Tensor w = (randn({in, out}, gen) * real(0.03)).detach().requires_grad_();
  Tensor b = zeros({out}).requires_grad_();
  Tensor y = zeros({batch, out}), dx = zeros({batch, in}), dw = zeros({in, out});
  auto [engine, raw] = time_alternating(
      [&] {
        for (Tensor* p : {&x, &w, &b}) p->set_grad(Tensor());
        Tensor loss = sum(matmul(x, w) + b);
        loss.backward();
      },
      [&] {
        gemm(false, false, batch, out, in, 1, x.data(), w.data(), 0, y.data());
        gemm(false, true, batch, in, out, 1, y.data(), w.data(), 0, dx.data());
        gemm(true, false, in, out, batch, 1, x.data(), y.data(), 0, dw.data());
      },
      3, 100);

  const double flops = 3.0 * 2.0 * double(batch) * double(in) * double(out);
  double gflops = flops / (engine.median_ms * 1e6), blas_gflops = flops / (raw.median_ms * 1e6);
  print_line("linear_fwd_bwd", engine,
             fmt::format(", \"gflops\": {:.1f}, \"blas_gflops\": {:.1f}, \"ratio\": {:.3f}", gflops,
                         blas_gflops, gflops / blas_gflops));
}

// 10,000 iterations of x = x * w + b on 1-element tensors: 20,000 recorded
// ops, then backward through all of them. Almost no arithmetic, so the time is
// the engine's own per-op cost: allocation, graph recording, the backward walk.
void scalar_ops() {
  const int iterations = 10000;
  Tensor w = full({1}, real(0.999)).requires_grad_();
  Tensor b = full({1}, real(0.001)).requires_grad_();
  Timing t = time_steps(
      [&] {
        w.set_grad(Tensor());
        b.set_grad(Tensor());
        Tensor x = ones({1});
        for (int i = 0; i < iterations; ++i) x = x * w + b;
        x.backward();
      },
      3, 50);
  const double us_per_op = t.median_ms * 1000.0 / (2.0 * iterations);
  print_line("scalar_ops", t, fmt::format(", \"us_per_op\": {:.4f}", us_per_op));
}

// --- model workloads: one training step of the library's own models ---------------
// Each model is built from the layers the chapters use (layers/nn.hpp), so
// what is timed is what a user of the library gets. A step is: zero the
// gradients, forward, loss, backward, optimizer step; all float32, one thread,
// inputs and labels random and fixed for the whole run. Each workload runs in
// fast mode (the default) and again in reference mode (name_reference): the
// plain formula code, so the price of the readable path is a printed number.
//
//   mlp_step              Linear(2,128) ReLU Linear(128,3) on (300,2), cross-entropy, SGD 0.1
//   point_attention_step  PointAttention(64) over (32,16,64), Linear(64,10), cross-entropy, Adam
//   seq2seq_step          nn::Seq2Seq: LSTM, additive score, input feeding, vocab 16,
//                         embedding 32, hidden 64, attention 64; source and decoder input
//                         (32,12) random in 3..15; cross-entropy of (32,12,16); Adam 1e-3
//   transformer_step      nn::TinyTransformer: vocab 16, d_model 64, 4 heads, d_ff 256,
//                         2 layers, max_len 32, dropout 0, pre-norm; tokens (32,32), causal;
//                         cross-entropy against random (32,32) targets; Adam 1e-3
//   generate_step         not a training step: greedy generation with nn::TinyTransformer of
//                         transformer_step's sizes but max_len 64; a batch of 8 prompts of
//                         8 random tokens, 56 new tokens each (to 64), timed with the KV cache
//                         (generate_step), without it in fast mode (generate_step_no_cache: every
//                         step runs the whole sequence again) and in reference mode
//                         (generate_step_reference, no cache either); the median is one whole
//                         generation of 56 tokens
//
//   conv1d_small          nn::Conv1d(2, 32, 3, padding 1) on (50,2,30): chapter 07's CNN
//                         encoder; forward, sum, backward (no optimizer)
//   conv1d_large          nn::Conv1d(64, 64, 5, padding 2) on (32,64,128), the same
//
// seq2seq_step and transformer_step also give the step's GEMMs: their FLOP
// count, gemm_ms (the same GEMM calls, same shapes, transposes and beta
// (0, or 1 where the engine adds into C), forward and backward, recorded in
// one step and replayed through gemm_strided: straight through BLAS as fast
// mode calls it, the small A B^T from a transposed copy and the products just
// past OpenBLAS's small kernels in pieces, core/blas.hpp) and roofline =
// gemm_ms / median, the share of the step that is GEMM at BLAS speed.
//
// AG_BENCH_STEPS=n times n steps after 2 warm-up steps instead, for profiling
// under valgrind (the figures are then not the benchmark's).

// The GEMMs one step makes, replayed on scratch buffers: their FLOPs and median time.
struct GemmFigures {
  double gflop = 0, median_ms = 0;
};

GemmFigures time_gemms(const std::function<void()>& step) {
  std::vector<GemmCall> calls;
  record_gemm_calls(&calls);
  step();
  record_gemm_calls(nullptr);
  GemmFigures figures;
  int64_t a_size = 1, b_size = 1, c_size = 1;
  for (const GemmCall& g : calls) {
    figures.gflop += 2.0 * double(g.m) * double(g.n) * double(g.k) * 1e-9;
    a_size = std::max(a_size, (g.transpose_a ? g.k : g.m) * g.lda);
    b_size = std::max(b_size, (g.transpose_b ? g.n : g.k) * g.ldb);
    c_size = std::max(c_size, g.m * g.ldc);
  }
  Generator gen(9);
  Tensor a = randn({a_size}, gen), b = randn({b_size}, gen), c = zeros({c_size});
  figures.median_ms = time_steps(
                          [&] {
                            for (const GemmCall& g : calls)
                              gemm_strided(g.transpose_a, g.transpose_b, g.m, g.n, g.k, 1, a.data(),
                                           g.lda, b.data(), g.ldb, g.accumulate ? 1 : 0, c.data(),
                                           g.ldc);
                          },
                          3, 50)
                          .median_ms;
  return figures;
}

// The line names given on the command line (none: every line).
std::vector<std::string> wanted_lines;

bool wanted(const std::string& line) {
  return wanted_lines.empty() ||
         std::find(wanted_lines.begin(), wanted_lines.end(), line) != wanted_lines.end();
}

// Times `step` in fast mode, then in reference mode (each when its line is
// wanted); with_gemms adds the GEMM figures.
void model_step(const std::string& name, int steps, const std::function<void()>& step,
                bool with_gemms = false) {
  const char* forced = std::getenv("AG_BENCH_STEPS");
  const bool profiling = forced && std::atoi(forced) > 0;
  for (bool reference : {false, true}) {
    if (!wanted(name + (reference ? "_reference" : ""))) continue;
    ReferenceModeGuard mode(reference);
    const Timing t =
        profiling ? time_steps(step, 2, std::atoi(forced)) : time_steps(step, 10, steps);
    std::string extra;
    if (with_gemms && !profiling) {
      const GemmFigures gemms = time_gemms(step);
      extra = fmt::format(", \"gemm_gflop\": {:.3f}, \"gemm_ms\": {:.4f}, \"roofline\": {:.3f}",
                          gemms.gflop, gemms.median_ms, gemms.median_ms / t.median_ms);
    }
    print_line((name + (reference ? "_reference" : "")).c_str(), t, extra);
  }
}

void mlp_step() {
  Generator gen(1);
  manual_seed(1);
  nn::Sequential model({std::make_shared<nn::Linear>(2, 128), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::Linear>(128, 3)});
  Tensor x = randn({300, 2}, gen);
  Tensor labels = randint(0, 3, {300}, gen);
  optim::SGD opt(model.parameters(), real(0.1));
  model_step("mlp_step", 300, [&] {
    opt.zero_grad();
    Tensor loss = nn::cross_entropy(model.forward(x), labels);
    loss.backward();
    opt.step();
  });
}

void point_attention_step() {
  Generator gen(2);
  manual_seed(2);
  nn::PointAttention attention(64);
  nn::Linear classifier(64, 10);
  Tensor x = randn({32, 16, 64}, gen);
  Tensor labels = randint(0, 10, {32}, gen);
  std::vector<Tensor> parameters = attention.parameters();
  for (const Tensor& p : classifier.parameters()) parameters.push_back(p);
  optim::Adam opt(parameters, real(1e-3));
  model_step("point_attention_step", 300, [&] {
    opt.zero_grad();
    Tensor loss = nn::cross_entropy(classifier.forward(attention.forward(x).context), labels);
    loss.backward();
    opt.step();
  });
}

void seq2seq_step() {
  const int64_t B = 32, T = 12, vocab = 16;
  Generator gen(3);
  manual_seed(3);
  nn::Seq2SeqOptions options;
  options.source_vocab = options.target_vocab = vocab;
  options.embedding_dim = 32;
  options.hidden_size = 64;
  options.attention_size = 64;
  options.cell = nn::CellType::LSTM;
  options.score = nn::ScoreType::Additive;
  options.input_feeding = true;
  nn::Seq2Seq model(options);
  Tensor source = randint(3, vocab, {B, T}, gen);
  Tensor target_in = randint(3, vocab, {B, T}, gen);
  Tensor targets = randint(0, vocab, {B, T}, gen);
  optim::Adam opt(model.parameters(), real(1e-3));
  model_step(
      "seq2seq_step", 100,
      [&] {
        opt.zero_grad();
        Tensor logits = model.forward(source, {}, target_in).logits;  // (32,12,16)
        Tensor loss = nn::cross_entropy(logits, targets);             // mean over 12x32
        loss.backward();
        opt.step();
      },
      /*with_gemms=*/true);
}

void transformer_step() {
  const int64_t B = 32, T = 32;
  Generator gen(4);
  manual_seed(4);
  nn::TinyTransformerOptions options;
  options.vocab_size = 16;
  options.d_model = 64;
  options.heads = 4;
  options.d_ff = 256;
  options.num_layers = 2;
  options.max_len = T;
  options.dropout = 0;
  options.norm_first = true;
  nn::TinyTransformer model(options);
  Tensor tokens = randint(0, options.vocab_size, {B, T}, gen);
  Tensor targets = randint(0, options.vocab_size, {B, T}, gen);
  optim::Adam opt(model.parameters(), real(1e-3));
  model_step(
      "transformer_step", 100,
      [&] {
        opt.zero_grad();
        Tensor loss = nn::cross_entropy(model.forward(tokens), targets);  // mean over 32x32
        loss.backward();
        opt.step();
      },
      /*with_gemms=*/true);
}

// Conv1d forward and backward: the loops of the formula (reference) against im2col
// and GEMMs (fast).
void conv1d_fwd_bwd(const char* name, int64_t batch, int64_t in, int64_t out, int64_t kernel,
                    int64_t steps, int repeats) {
  Generator gen(5);
  manual_seed(5);
  nn::Conv1d conv(in, out, kernel, 1, (kernel - 1) / 2);
  Tensor x = randn({batch, in, steps}, gen);
  model_step(name, repeats, [&] {
    conv.zero_grad();
    sum(conv.forward(x)).backward();
  });
}

void conv1d_small() { conv1d_fwd_bwd("conv1d_small", 50, 2, 32, 3, 30, 300); }
void conv1d_large() { conv1d_fwd_bwd("conv1d_large", 32, 64, 64, 5, 128, 30); }

void generate_step() {
  const int64_t batch = 8, prompt_length = 8, new_tokens = 56;
  Generator gen(5);
  manual_seed(5);
  nn::TinyTransformerOptions options;
  options.vocab_size = 16;
  options.d_model = 64;
  options.heads = 4;
  options.d_ff = 256;
  options.num_layers = 2;
  options.max_len = prompt_length + new_tokens;  // 64
  options.dropout = 0;
  options.norm_first = true;
  nn::TinyTransformer model(options);
  model.eval();
  Tensor prompt = randint(0, options.vocab_size, {batch, prompt_length}, gen);
  auto run = [&](bool use_cache, bool reference) {
    ReferenceModeGuard mode(reference);
    return time_steps(
        [&] {
          auto decoder = model.start_decoding(prompt, use_cache);
          (void)nn::greedy_search(*decoder, new_tokens);
        },
        2, 20);
  };
  const Timing cached = run(true, false), uncached = run(false, false);
  const Timing reference = run(false, true);
  auto extra = [&](const Timing& t, bool cache) {
    std::string figures = fmt::format(
        ", \"cache\": {}, \"new_tokens\": {}, \"ms_per_token\": {:.4f}, "
        "\"tokens_per_s\": {:.0f}",
        cache, new_tokens, t.median_ms / double(new_tokens),
        double(batch * new_tokens) / (t.median_ms * 1e-3));
    if (cache)
      figures +=
          fmt::format(", \"speedup_over_no_cache\": {:.2f}", uncached.median_ms / cached.median_ms);
    return figures;
  };
  print_line("generate_step", cached, extra(cached, true));
  print_line("generate_step_no_cache", uncached, extra(uncached, false));
  print_line("generate_step_reference", reference, extra(reference, false));
}

struct Workload {
  const char* name;
  void (*run)();
  bool has_reference;  // also prints name_reference
};

const Workload workloads[] = {
    {"linear_fwd_bwd", linear_fwd_bwd, false},
    {"scalar_ops", scalar_ops, false},
    {"mlp_step", mlp_step, true},
    {"point_attention_step", point_attention_step, true},
    {"seq2seq_step", seq2seq_step, true},
    {"transformer_step", transformer_step, true},
    {"conv1d_small", conv1d_small, true},
    {"conv1d_large", conv1d_large, true},
    {"generate_step", generate_step, true},
};

}  // namespace

int main(int argc, char** argv) {
  std::fprintf(stderr,
               "# attograd bench (%s), BLAS: %s; model workloads in fast mode, then in reference "
               "mode (_reference)\n",
               real_name, blas_summary().c_str());
  wanted_lines.assign(argv + 1, argv + argc);
  for (const Workload& workload : workloads) {
    const std::string name = workload.name;
    if (wanted(name) || (workload.has_reference && wanted(name + "_reference"))) workload.run();
  }
  return 0;
}
