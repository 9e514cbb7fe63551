// Loss functions, as PyTorch's torch.nn.functional ones: mse_loss, cross_entropy,
// nll_loss, binary_cross_entropy_with_logits.
//
// Formulas served: [F4.10] MSE = 1/n sum (y - y_hat)^2, the regression loss of the
// sequence-regression tutorial; [F2.8] the tutorials' tiny Transformer trains with
// cross-entropy (and Adam, layers/framework/optim.hpp).
//
// Each loss is ONE fused op: a forward loop over the elements and a closed-form
// backward written next to it (loss.cpp), not a graph of exp, log, sum and div
// nodes. That is faster, and a vocabulary-sized log-softmax never has to be
// stored: cross_entropy saves only one logsumexp per row.
//
// Differences from PyTorch, on purpose:
//   - The class dimension is the LAST one: logits are (..., C) and targets (...),
//     e.g. (B,T,V) logits of a sequence model with (B,T) targets, no transpose
//     needed. PyTorch's cross_entropy/nll_loss want the class dim at 1: (N,C,d1,..).
//     For 2-D (N,C) logits the two conventions agree.
//   - Class indices are tensors of whole numbers stored as reals (attograd has one
//     element type); each is checked: an integer in 0..C-1, or ignore_index.
//   - Reduction::Mean over zero counted targets (every one equal to ignore_index,
//     e.g. a batch of pure padding) gives 0 with a zero gradient; PyTorch gives NaN.
//     mse_loss and binary_cross_entropy_with_logits have no ignored elements, so a
//     Mean over an empty input is an error there, as ag::mean.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "core/tensor.hpp"

namespace ag::nn {

// How the per-element losses become the result:
//   Mean  their average (over the counted targets for cross_entropy/nll_loss), shape ()
//   Sum   their sum, shape ()
//   None  the per-element losses themselves, shape of the targets, still differentiable
enum class Reduction { Mean, Sum, None };

// Mean squared error, torch.nn.functional.mse_loss:
//   loss_i = (input_i - target_i)^2          input, target: same shape (...)
// Differentiable with respect to both (d/d input = 2 (input - target) / n for Mean).
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

// Cross-entropy of logits with class indices, torch.nn.functional.cross_entropy
// (log_softmax and nll_loss fused, max subtracted for stability):
//   loss_i = -log softmax(x_i)[y_i] = logsumexp(x_i) - x_i[y_i]
//   logits x: (..., C), CLASS DIM LAST;  targets y: (...) whole numbers in 0..C-1
//   d loss_i / d x_i = softmax(x_i) - onehot(y_i)    (times g, divided by n for Mean)
// Targets equal to ignore_index contribute 0 to the loss and to the gradient, and
// Mean divides by the number of the others (0 if there are none, see above).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     Reduction reduction = Reduction::Mean);
// The same for 2-D logits (N,C) and one class index per row.
Tensor cross_entropy(const Tensor& logits, const std::vector<int64_t>& targets,
                     int64_t ignore_index = -100, Reduction reduction = Reduction::Mean);
// So that cross_entropy(logits, {0}) picks the list of indices: without it, {0}
// could also mean a Tensor (0 converts to a null shared pointer) and is ambiguous.
inline Tensor cross_entropy(const Tensor& logits, std::initializer_list<int64_t> targets,
                            int64_t ignore_index = -100, Reduction reduction = Reduction::Mean) {
  return cross_entropy(logits, std::vector<int64_t>(targets), ignore_index, reduction);
}

// Negative log-likelihood of log-probabilities, torch.nn.functional.nll_loss:
//   loss_i = -log_probs_i[y_i]      log_probs: (..., C), class dim last; targets: (...)
// cross_entropy(x, y) equals nll_loss(log_softmax(x, -1), y).
Tensor nll_loss(const Tensor& log_probs, const Tensor& targets, int64_t ignore_index = -100,
                Reduction reduction = Reduction::Mean);

// Binary cross-entropy on logits, torch.nn.functional.binary_cross_entropy_with_logits:
//   loss_i = -(y_i log sigmoid(x_i) + (1 - y_i) log(1 - sigmoid(x_i)))
//          = max(x_i, 0) - x_i y_i + log(1 + exp(-|x_i|))    (the stable form used)
//   logits x, targets y (probabilities in [0,1], soft labels allowed): same shape
//   d/dx_i = sigmoid(x_i) - y_i,  d/dy_i = -x_i            (times g, / n for Mean)
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction reduction = Reduction::Mean);

}  // namespace ag::nn
