// Everything of the layers floor: include this to build and train models.
//
// Where the seeds' formulas live in this floor:
//   [F0.1]-[F0.4] point attention         layers/point_attention.hpp
//   [F0.2]        softmax as a module      layers/activation.hpp
//   [F2.8]        token embedding          layers/embedding.hpp
//   [F3.6]        layer normalization      layers/layer_norm.hpp
//   [F4.10]       mean squared error       layers/loss.hpp
// docs/formulas.md lists every formula with its file, line and test.
#pragma once

#include "autograd/attograd.hpp"
#include "layers/activation.hpp"
#include "layers/dropout.hpp"
#include "layers/embedding.hpp"
#include "layers/init.hpp"
#include "layers/layer_norm.hpp"
#include "layers/linear.hpp"
#include "layers/loss.hpp"
#include "layers/module.hpp"
#include "layers/optim.hpp"
#include "layers/point_attention.hpp"
#include "layers/scaled_dot_product.hpp"
