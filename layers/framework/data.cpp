// randperm, random_split and DataLoader: index bookkeeping, and index_select
// to cut each batch out of the tensors.
// (No formula ID: data handling, not a formula of the articles.)
#include "layers/framework/data.hpp"

#include <cmath>
#include <numeric>
#include <utility>

#include "autograd/ops.hpp"
#include "core/error.hpp"

namespace ag::data {

std::vector<int64_t> randperm(int64_t n, Generator& gen) {
  AG_CHECK(n >= 0, "randperm: n must be >= 0, got {}", n);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  // Fisher-Yates: position i takes one of the items not yet placed, i..n-1
  for (int64_t i = 0; i + 1 < n; ++i) std::swap(order[i], order[gen.randint(i, n)]);
  return order;
}

std::vector<std::vector<int64_t>> random_split(int64_t n, const std::vector<double>& sizes,
                                               Generator& gen) {
  AG_CHECK(n >= 0 && !sizes.empty(),
           "random_split: needs n >= 0 items and at least one part, got "
           "n = {} and {} parts",
           n, sizes.size());
  double total = 0;
  for (double s : sizes) total += s;
  std::string listed;
  for (double s : sizes) listed += (listed.empty() ? "" : ", ") + fmt::format("{}", s);
  std::vector<int64_t> lengths;
  if (std::abs(total - 1) <= 1e-9 && total <= double(n)) {
    // fractions: floor(f n) each, the remainder one by one to the first parts (PyTorch's rule)
    int64_t given = 0;
    for (double f : sizes) {
      AG_CHECK(f >= 0 && f <= 1, "random_split: fraction {} is outside [0, 1] (sizes {})", f,
               listed);
      lengths.push_back(static_cast<int64_t>(std::floor(f * double(n))));
      given += lengths.back();
    }
    for (int64_t i = 0; i < n - given; ++i) ++lengths[static_cast<size_t>(i) % lengths.size()];
  } else {
    for (double s : sizes) {
      AG_CHECK(s >= 0 && s == std::floor(s),
               "random_split: sizes {} are neither fractions summing to 1 nor lengths (whole "
               "numbers >= 0)",
               listed);
      lengths.push_back(static_cast<int64_t>(s));
    }
    AG_CHECK(std::accumulate(lengths.begin(), lengths.end(), int64_t{0}) == n,
             "random_split: lengths {} sum to {}, not to the {} items (fractions must sum to 1)",
             listed, total, n);
  }
  const std::vector<int64_t> order = randperm(n, gen);
  std::vector<std::vector<int64_t>> parts;
  int64_t start = 0;
  for (int64_t length : lengths) {
    parts.emplace_back(order.begin() + start, order.begin() + start + length);
    start += length;
  }
  return parts;
}

DataLoader::DataLoader(std::vector<Tensor> tensors, int64_t batch_size, bool shuffle,
                       Generator& gen, bool drop_last)
    : tensors_(std::move(tensors)),
      rows_(0),
      batch_size_(batch_size),
      shuffle_(shuffle),
      drop_last_(drop_last),
      gen_(&gen) {
  AG_CHECK(!tensors_.empty(), "DataLoader: got no tensors");
  AG_CHECK(batch_size >= 1, "DataLoader: batch_size must be >= 1, got {}", batch_size);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    AG_CHECK(tensors_[i].defined() && tensors_[i].dim() >= 1,
             "DataLoader: tensor {} is {}; every tensor needs a first dim of rows", i,
             describe(tensors_[i]));
    AG_CHECK(tensors_[i].size(0) == tensors_[0].size(0),
             "DataLoader: tensor {} {} has {} rows, tensor 0 {} has {}", i, describe(tensors_[i]),
             tensors_[i].size(0), describe(tensors_[0]), tensors_[0].size(0));
  }
  rows_ = tensors_[0].size(0);
  order_.resize(static_cast<size_t>(rows_));
  std::iota(order_.begin(), order_.end(), int64_t{0});
}

int64_t DataLoader::size() const {
  return drop_last_ ? rows_ / batch_size_ : (rows_ + batch_size_ - 1) / batch_size_;
}

DataLoader::Iterator DataLoader::begin() {
  if (shuffle_) order_ = randperm(rows_, *gen_);
  return Iterator(this, 0);
}

DataLoader::Batch DataLoader::Iterator::operator*() const {
  const DataLoader& l = *loader_;
  const int64_t start = batch_ * l.batch_size_, end = std::min(start + l.batch_size_, l.rows_);
  const std::vector<int64_t> rows(l.order_.begin() + start, l.order_.begin() + end);
  Batch batch;
  for (const Tensor& t : l.tensors_) batch.push_back(index_select(t, 0, rows));
  return batch;
}

}  // namespace ag::data
