// core/ on its own, as a program that never touches autograd/ or layers/ uses
// it: tensors from the creation functions, a matrix product through the
// kernels, printing. tests/programs/check_floors.sh links it against
// libattograd_core.a alone (every object of it) and checks what it prints.
#include <fmt/format.h>

#include "core/creation.hpp"
#include "core/kernels.hpp"
#include "core/print.hpp"

using namespace ag;

int main() {
  Tensor a = tensor({{1, 2, 3}, {4, 5, 6}});      // (2,3)
  Tensor b = kernel::reshape(arange(6), {3, 2});  // (3,2): [[0, 1], [2, 3], [4, 5]]
  // c = a b, (2,3) x (3,2) -> (2,2): [[0+4+12, 1+6+15], [0+10+24, 4+15+30]]
  Tensor c = kernel::matmul(a, b, /*transpose_a=*/false, /*transpose_b=*/false);
  fmt::print("{}\n", c);
  fmt::print("sum {}\n", kernel::sum_all(c));  // 16 + 22 + 34 + 49
  // A leaf's autograd fields live in core/: its flag prints without autograd/.
  Tensor w = ones({2});
  w.set_name("w").requires_grad_();
  fmt::print("{}\n", w);
}
