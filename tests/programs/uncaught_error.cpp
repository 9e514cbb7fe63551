// A learner's mistake that nothing catches: the shapes of a matmul do not fit.
// tests/programs/check_uncaught.sh builds it as `make run` does, in the debug
// and the release build, and checks that the program's last words name the
// line below that made the call, not only "terminate called".
#include "layers/nn.hpp"

using namespace ag;

int main() {
  Tensor a = randn({2, 3});
  Tensor b = randn({2, 3});
  Tensor c = matmul(a, b);  // the mistake: (2,3) x (2,3)
  return static_cast<int>(c.numel());
}
