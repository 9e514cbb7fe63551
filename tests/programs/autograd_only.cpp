// autograd/ on the floor below it only: ops recorded, printed with their
// grad_fn, and backward, with nothing of layers/. tests/programs/check_floors.sh
// links it against libattograd_autograd.a and libattograd_core.a alone (every
// object of both) and checks what it prints.
#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/print.hpp"

using namespace ag;

int main() {
  Tensor x = tensor({{1, 2}, {3, 4}});  // (2,2)
  x.requires_grad_();
  Tensor w = tensor({{1}, {-1}});  // (2,1)
  w.requires_grad_();
  Tensor y = matmul(x, w);  // (2,1): [[1 - 2], [3 - 4]]
  fmt::print("{}\n", y);
  Tensor loss = sum(y * y);  // 1 + 1
  fmt::print("{}\n", loss);
  loss.backward();
  // dloss/dy = 2y = [[-2], [-2]]; dloss/dx = 2y w^T; dloss/dw = x^T 2y
  fmt::print("{}\n{}\n", x.grad(), w.grad());
}
