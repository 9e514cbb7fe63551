// torch.nn.init's formulas, drawing from an ag::Generator.
#include "layers/framework/init.hpp"

#include <cmath>

#include "autograd/grad_mode.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/shape.hpp"

namespace ag::nn::init {

namespace {

int64_t receptive_field(const Tensor& t) {
  int64_t k = 1;
  for (int64_t d = 2; d < t.dim(); ++d) k *= t.shape()[d];
  return k;
}

void check_fans(const Tensor& t, const char* op) {
  AG_CHECK(t.dim() >= 2, "{}: needs a tensor of at least 2 dims to compute fan in/out, got {}", op,
           describe(t));
}

// Through copy_, so the version bump tells any graph that saw the old values.
void overwrite(Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  t.copy_(values);
}

}  // namespace

int64_t fan_in(const Tensor& t) {
  check_fans(t, "fan_in");
  return t.shape()[1] * receptive_field(t);
}

int64_t fan_out(const Tensor& t) {
  check_fans(t, "fan_out");
  return t.shape()[0] * receptive_field(t);
}

void uniform_(Tensor& t, real low, real high, Generator& gen) {
  check_uniform_bounds(low, high, "uniform_");
  Tensor values = Tensor::empty(t.shape());
  real* p = values.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<real>(low + (high - low) * gen.uniform());
  overwrite(t, values);
}

void normal_(Tensor& t, real mean, real std, Generator& gen) {
  AG_CHECK(std::isfinite(mean) && std::isfinite(std) && std >= 0,
           "normal_: mean {} and std {} must be finite, and std >= 0", mean, std);
  Tensor values = Tensor::empty(t.shape());
  real* p = values.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<real>(mean + std * gen.normal());
  overwrite(t, values);
}

void constant_(Tensor& t, real value) {
  NoGradGuard no_grad;
  t.fill_(value);
}

void zeros_(Tensor& t) { constant_(t, 0); }
void ones_(Tensor& t) { constant_(t, 1); }

void xavier_uniform_(Tensor& t, real gain, Generator& gen) {
  check_fans(t, "xavier_uniform_");
  AG_CHECK(std::isfinite(gain), "xavier_uniform_: gain {} must be finite", gain);
  real bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in(t) + fan_out(t)));
  uniform_(t, -bound, bound, gen);
}

void kaiming_uniform_(Tensor& t, real a, Generator& gen) {
  check_fans(t, "kaiming_uniform_");
  AG_CHECK(std::isfinite(a), "kaiming_uniform_: a {} (the negative slope) must be finite", a);
  real bound = std::sqrt(6.0 / ((1.0 + double(a) * a) * static_cast<double>(fan_in(t))));
  uniform_(t, -bound, bound, gen);
}

}  // namespace ag::nn::init
