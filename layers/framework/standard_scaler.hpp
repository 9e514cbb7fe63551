// Standardization, as scikit-learn's preprocessing.StandardScaler (which seed
// 004 applies to the Boston housing features): every column shifted to mean 0
// and scaled to standard deviation 1,
//
//   z[i,j] = (x[i,j] - mean_j) / scale_j
//   mean_j = 1/n sum_i x[i,j],   scale_j = sqrt(1/n sum_i (x[i,j] - mean_j)^2)
//
// (the population standard deviation, as scikit-learn's; a constant column
// keeps scale 1, so it becomes 0 rather than NaN). The mean and scale are
// fitted on the training rows only and then applied, unchanged, to the
// validation and test rows: fitting on all the data would let the held-out
// rows leak into training. (Seed 004's snippet fits on everything, then splits.)
//
//   data::StandardScaler scaler;
//   Tensor x_train_std = scaler.fit_transform(x_train);
//   Tensor x_test_std = scaler.transform(x_test);
// (No formula ID: preprocessing, not a formula of the articles.)
#pragma once

#include "core/tensor.hpp"

namespace ag::data {

class StandardScaler {
 public:
  // x (n, features), or (n) for one feature; n >= 1 rows, all finite.
  StandardScaler& fit(const Tensor& x);
  // (x - mean) / scale, with ag ops (so it is differentiable); x has the
  // fitted number of features.
  Tensor transform(const Tensor& x) const;
  Tensor fit_transform(const Tensor& x) { return fit(x).transform(x); }
  // z * scale + mean: standardized values (a prediction) back in the data's units.
  Tensor inverse_transform(const Tensor& z) const;

  bool fitted() const { return mean.defined(); }
  Tensor mean;   // (features), or (1) for a 1-D x
  Tensor scale;  // (features): the standard deviations, 1 where a column is constant
};

}  // namespace ag::data
