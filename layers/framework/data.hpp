// Data for training, as torch.utils.data has it: a random order, a random
// split into training, validation and test parts, and shuffled mini-batches.
// Every draw comes from an ag::Generator, so a seeded run splits and batches
// the same way every time.
//
//   Generator gen(0);
//   auto parts = data::random_split(x.size(0), {0.7, 0.15, 0.15}, gen);   // index lists
//   Tensor x_train = index_select(x, 0, parts[0]), y_train = index_select(y, 0, parts[0]);
//   data::DataLoader loader({x_train, y_train}, /*batch_size=*/32, /*shuffle=*/true, gen);
//   for (int epoch = 0; epoch < 100; ++epoch)
//     for (const std::vector<Tensor>& batch : loader) {   // a new order every epoch
//       Tensor loss = nn::mse_loss(model.forward(batch[0]), batch[1]);
//       ...
//     }
//
// Standardization fitted on the training part is data::StandardScaler
// (layers/framework/standard_scaler.hpp); reading a CSV file, ag::read_csv (core/io/csv.hpp).
// (No formula ID: data handling, not a formula of the articles.)
#pragma once

#include <cstdint>
#include <vector>

#include "core/generator.hpp"
#include "core/io/csv.hpp"  // read_csv: a file of numbers into a tensor, for the split below
#include "core/tensor.hpp"

namespace ag::data {

// torch.randperm(n): 0, 1, ..., n-1 in a random order (Fisher-Yates: every
// order equally likely).
std::vector<int64_t> randperm(int64_t n, Generator& gen = default_generator());

// torch.utils.data.random_split over n items: disjoint lists of indices that
// together hold each of 0..n-1 once, in random order. `sizes` are either the
// lengths of the parts (whole numbers summing to n) or fractions summing to 1;
// as PyTorch does, each fraction becomes floor(f * n) items and the few left
// over go one each to the first parts. {0.7, 0.15, 0.15} of 506 gives 355, 76, 75.
std::vector<std::vector<int64_t>> random_split(int64_t n, const std::vector<double>& sizes,
                                               Generator& gen = default_generator());

// torch.utils.data.DataLoader(TensorDataset(tensors...), batch_size, shuffle,
// generator, drop_last): the rows of the tensors (the same row of each; all
// share their first dim) in batches of batch_size. Iterating it is one epoch;
// with shuffle every epoch draws a new order from the generator, otherwise the
// rows come in order. The last batch is smaller when batch_size does not divide
// the rows, or dropped with drop_last. The generator must outlive the loader.
class DataLoader {
 public:
  using Batch = std::vector<Tensor>;  // batch[i]: the rows of tensors[i]

  DataLoader(std::vector<Tensor> tensors, int64_t batch_size, bool shuffle = true,
             Generator& gen = default_generator(), bool drop_last = false);

  class Iterator {
   public:
    Batch operator*() const;
    Iterator& operator++() {
      ++batch_;
      return *this;
    }
    bool operator!=(const Iterator& other) const { return batch_ != other.batch_; }

   private:
    friend class DataLoader;
    Iterator(const DataLoader* loader, int64_t batch) : loader_(loader), batch_(batch) {}
    const DataLoader* loader_;
    int64_t batch_;
  };

  Iterator begin();  // starts an epoch: draws its order when shuffling
  Iterator end() const { return Iterator(this, size()); }

  int64_t size() const;  // batches per epoch
  int64_t num_rows() const { return rows_; }
  int64_t batch_size() const { return batch_size_; }
  // The rows of the current epoch in their order (set by begin()).
  const std::vector<int64_t>& order() const { return order_; }

 private:
  std::vector<Tensor> tensors_;
  int64_t rows_, batch_size_;
  bool shuffle_, drop_last_;
  Generator* gen_;
  std::vector<int64_t> order_;
};

}  // namespace ag::data
