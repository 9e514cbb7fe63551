// attograd's benchmark: one JSON line per workload on stdout,
//   {"name": "linear_fwd_bwd", "median_ms": 8.10, "steps": 50, ...}
// with workload-specific figures after the median. Each workload warms up,
// then times many steps and reports the median (robust to a noisy machine).
// One thread by default; AG_NUM_THREADS=n to change. Run: make bench
// (or build/release/bench/bench [workload names...] to run only some).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "autograd/attograd.hpp"
#include "bench/models.hpp"

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

// x (256,1024) @ W (1024,1024) + b, sum, backward: three GEMMs of 256x1024x1024
// (forward x W, then dL/dx = g W^T and dL/dW = x^T g). Compared with the same
// three GEMMs called directly, in the same run: the engine's overhead on top
// of BLAS is what the ratio shows.
void linear_fwd_bwd() {
  const int64_t batch = 256, in = 1024, out = 1024;
  Generator gen(0);
  Tensor x = randn({batch, in}, gen).requires_grad_();
  Tensor w = (randn({in, out}, gen) * real(0.03)).detach().requires_grad_();
  Tensor b = zeros({out}).requires_grad_();
  Timing engine = time_steps(
      [&] {
        for (Tensor* p : {&x, &w, &b}) p->set_grad(Tensor());
        Tensor loss = sum(matmul(x, w) + b);
        loss.backward();
      },
      3, 40);

  Tensor y = zeros({batch, out}), dx = zeros({batch, in}), dw = zeros({in, out});
  Timing raw = time_steps(
      [&] {
        gemm(false, false, batch, out, in, 1, x.data(), w.data(), 0, y.data());
        gemm(false, true, batch, in, out, 1, y.data(), w.data(), 0, dx.data());
        gemm(true, false, in, out, batch, 1, x.data(), y.data(), 0, dw.data());
      },
      3, 40);

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

// --- model workloads (bench/models.hpp): one training step each -------------------
// Warm-up, then the median over `steps` steps of: zero_grad, forward, loss,
// backward, optimizer step.
// AG_BENCH_STEPS=n times n steps after 2 warm-up steps instead, for profiling
// under valgrind (the figures are then not the benchmark's).
template <typename Step>
void model_step(const char* name, int steps, Step step) {
  const char* forced = std::getenv("AG_BENCH_STEPS");
  if (forced && std::atoi(forced) > 0)
    print_line(name, time_steps(step, 2, std::atoi(forced)), "");
  else
    print_line(name, time_steps(step, 10, steps), "");
}

void mlp_step() {
  Generator gen(1);
  bench_models::Mlp model;
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
  bench_models::PointAttentionClassifier model;
  Tensor x = randn({32, 16, 64}, gen);
  Tensor labels = randint(0, 10, {32}, gen);
  optim::Adam opt(model.parameters(), real(1e-3));
  model_step("point_attention_step", 300, [&] {
    opt.zero_grad();
    Tensor loss = nn::cross_entropy(model.forward(x), labels);
    loss.backward();
    opt.step();
  });
}

void rnn_attention_step() {
  const int64_t T = 12, B = 32;
  Generator gen(3);
  bench_models::RnnAttention model;
  // Time-first (T,B) tokens: source, decoder inputs y_{t-1}, and targets y_t.
  Tensor src = randint(0, model.vocab, {T, B}, gen);
  Tensor tgt_in = randint(0, model.vocab, {T, B}, gen);
  Tensor targets = randint(0, model.vocab, {T, B}, gen);
  optim::Adam opt(model.parameters(), real(1e-3));
  model_step("rnn_attention_step", 100, [&] {
    opt.zero_grad();
    Tensor loss = nn::cross_entropy(model.forward(src, tgt_in), targets);  // mean over 12x32
    loss.backward();
    opt.step();
  });
}

void transformer_step() {
  const int64_t T = 32, B = 32;
  Generator gen(4);
  bench_models::TinyTransformer model(T);
  Tensor tokens = randint(0, model.vocab, {B, T}, gen);
  Tensor targets = randint(0, model.vocab, {B, T}, gen);
  optim::Adam opt(model.parameters(), real(1e-3));
  model_step("transformer_step", 100, [&] {
    opt.zero_grad();
    Tensor loss = nn::cross_entropy(model.forward(tokens), targets);  // mean over 32x32
    loss.backward();
    opt.step();
  });
}

struct Workload {
  const char* name;
  void (*run)();
};

const Workload workloads[] = {
    {"linear_fwd_bwd", linear_fwd_bwd},
    {"scalar_ops", scalar_ops},
    {"mlp_step", mlp_step},
    {"point_attention_step", point_attention_step},
    {"rnn_attention_step", rnn_attention_step},
    {"transformer_step", transformer_step},
};

}  // namespace

int main(int argc, char** argv) {
  std::fprintf(stderr, "# attograd bench (%s), BLAS: %s\n", real_name, blas_summary().c_str());
  std::vector<std::string> wanted(argv + 1, argv + argc);
  for (const Workload& workload : workloads) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), workload.name) == wanted.end())
      continue;
    workload.run();
  }
  return 0;
}
