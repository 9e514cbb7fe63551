// StandardScaler: column means and standard deviations, accumulated in double.
// (No formula ID: preprocessing, not a formula of the articles.)
#include "layers/framework/standard_scaler.hpp"

#include <cmath>
#include <vector>

#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"

namespace ag::data {

namespace {

// The number of features of x as the scaler sees it: its columns, or 1 for a 1-D x.
int64_t features_of(const Tensor& x) { return x.dim() == 2 ? x.size(1) : 1; }

void check_input(const Tensor& x, const char* op) {
  AG_CHECK(x.defined() && (x.dim() == 1 || x.dim() == 2),
           "{}: x {} must be (rows, features) or (rows)", op, describe(x));
}

void check_fitted(const StandardScaler& s, const Tensor& x, const char* op) {
  check_input(x, op);
  AG_CHECK(s.fitted(), "{}: the scaler is not fitted; call fit(x_train) first", op);
  const bool one_dim_fit = s.mean.shape() == Shape{1} && x.dim() == 1;
  AG_CHECK(one_dim_fit || (x.dim() == 2 && features_of(x) == s.mean.size(0)),
           "{}: x {} has {} features; the scaler was fitted on {}", op, describe(x), features_of(x),
           s.mean.size(0));
}

// x as check_input takes it, with at least one row and only finite values.
void check_fit(const Tensor& x) {
  check_input(x, "StandardScaler.fit");
  const int64_t features = features_of(x);
  AG_CHECK(x.size(0) >= 1, "StandardScaler.fit: x {} has no rows", describe(x));
  for (int64_t i = 0; i < x.numel(); ++i)
    AG_CHECK(std::isfinite(x.data()[i]), "StandardScaler.fit: x {} holds {} at row {}, column {}",
             describe(x), x.data()[i], i / features, i % features);
}

}  // namespace

StandardScaler& StandardScaler::fit(const Tensor& x) {
  check_fit(x);
  const int64_t rows = x.size(0), features = features_of(x);
  const real* v = x.data();
  std::vector<real> mean_values, scale_values;
  for (int64_t j = 0; j < features; ++j) {
    // mean_j = 1/n sum_i x[i,j]
    double sum = 0;
    for (int64_t i = 0; i < rows; ++i) sum += v[i * features + j];
    const double m = sum / double(rows);
    // scale_j = sqrt(1/n sum_i (x[i,j] - mean_j)^2), or 1 for a constant column
    double squares = 0;
    for (int64_t i = 0; i < rows; ++i)
      squares += (v[i * features + j] - m) * (v[i * features + j] - m);
    const double sd = std::sqrt(squares / double(rows));
    mean_values.push_back(static_cast<real>(m));
    scale_values.push_back(static_cast<real>(sd > 0 ? sd : 1));
  }
  mean = from_vector(mean_values, {features});
  scale = from_vector(scale_values, {features});
  return *this;
}

Tensor StandardScaler::transform(const Tensor& x) const {
  check_fitted(*this, x, "StandardScaler.transform");
  // z = (x - mean) / scale, broadcast over the rows
  return (x - mean) / scale;
}

Tensor StandardScaler::inverse_transform(const Tensor& z) const {
  check_fitted(*this, z, "StandardScaler.inverse_transform");
  // x = z * scale + mean
  return z * scale + mean;
}

}  // namespace ag::data
