// Everything below the layers floor in one include:
//   #include "autograd/attograd.hpp"
#pragma once

#include "autograd/dot.hpp"
#include "autograd/grad_mode.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "autograd/tape.hpp"
#include "autograd/trace.hpp"
#include "core/blas.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/generator.hpp"
#include "core/mode.hpp"
#include "core/print.hpp"
#include "core/tensor.hpp"
