// nn::Module: registration, dotted names, modes, zero_grad, the printed
// summary, Sequential, and saving/loading weights by name.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "core/io/safetensors.hpp"
#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

using namespace ag;
using ag::testing::check_error;
using ag::testing::check_values;
using ag::testing::temp_path;

namespace {

// A model nested three deep, so names have several dots.
struct Encoder : nn::Module {
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::Sequential> rnn;
  Encoder() : Module("Encoder") {
    embed = register_module("embed", std::make_shared<nn::Embedding>(10, 4));
    rnn = register_module(
        "rnn", std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::UnaryModule>>{
                   std::make_shared<nn::Linear>(4, 3), std::make_shared<nn::Tanh>()}));
  }
};

struct Model : nn::Module {
  std::shared_ptr<Encoder> encoder;
  std::shared_ptr<nn::Dropout> drop;
  std::shared_ptr<nn::Linear> head;
  Tensor scale, steps;
  Model() : Module("Model") {
    scale = register_parameter("scale", ones({3}));
    steps = register_buffer("steps", zeros({1}));
    encoder = register_module("encoder", std::make_shared<Encoder>());
    drop = register_module("drop", std::make_shared<nn::Dropout>(0.1));
    head = register_module("head", std::make_shared<nn::Linear>(3, 2, /*bias=*/false));
  }
  Tensor forward(const Tensor& ids) {
    return head->forward(
        drop->forward(encoder->rnn->forward(encoder->embed->forward(ids)) * scale));
  }
};

}  // namespace

TEST_CASE("module: named_parameters with dotted names, in registration order") {
  Model model;
  std::vector<std::string> names;
  for (auto& [name, p] : model.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"scale", "encoder.embed.weight", "encoder.rnn.0.weight",
                                          "encoder.rnn.0.bias", "head.weight"});
  CHECK(model.parameters().size() == 5);
  CHECK(model.parameters()[1].is_same(model.encoder->embed->weight));
  for (const Tensor& p : model.parameters()) CHECK(p.requires_grad());
  // 3 + 10*4 + 3*4 + 3 + 2*3
  CHECK(model.num_parameters() == 3 + 40 + 12 + 3 + 6);
  auto buffers = model.named_buffers();
  REQUIRE(buffers.size() == 1);
  CHECK(buffers[0].first == "steps");
  CHECK_FALSE(buffers[0].second.requires_grad());
  CHECK(model.state_dict().size() == 6);
  std::vector<std::string> modules;
  for (auto& [name, m] : model.named_modules()) modules.push_back(name + ":" + m->type_name());
  CHECK(modules == std::vector<std::string>{":Model", "encoder:Encoder", "encoder.embed:Embedding",
                                            "encoder.rnn:Sequential", "encoder.rnn.0:Linear",
                                            "encoder.rnn.1:Tanh", "drop:Dropout", "head:Linear"});
  CHECK(model.named_children().size() == 3);
}

TEST_CASE("module: train() and eval() reach every submodule") {
  Model model;
  CHECK(model.is_training());
  model.eval();
  for (auto& [name, m] : model.named_modules()) CHECK_FALSE(m->is_training());
  model.train();
  for (auto& [name, m] : model.named_modules()) CHECK(m->is_training());
}

TEST_CASE("module: zero_grad clears every parameter's gradient") {
  Model model;
  sum(model.forward(tensor({1, 2}))).backward();
  for (const Tensor& p : model.parameters()) CHECK(p.grad().defined());
  model.zero_grad();
  for (const Tensor& p : model.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("module: the printed summary, one line per layer with its parameter shapes") {
  Model model;
  const std::string expected =
      "Model(\n"
      "  scale (3)\n"
      "  (encoder): Encoder(\n"
      "    (embed): Embedding(10, 4)  weight (10,4)\n"
      "    (rnn): Sequential(\n"
      "      (0): Linear(in_features=4, out_features=3, bias=true)  weight (3,4)  bias (3)\n"
      "      (1): Tanh()\n"
      "    )\n"
      "  )\n"
      "  (drop): Dropout(p=0.1)\n"
      "  (head): Linear(in_features=3, out_features=2, bias=false)  weight (2,3)\n"
      ")\n"
      "parameters: 64";
  CHECK(model.to_string() == expected);
  std::ostringstream os;
  os << model;
  CHECK(os.str() == expected);
}

TEST_CASE("module: with children, extra_repr gets a line of its own, as PyTorch prints it") {
  // A module with settings, a parameter of its own and children; a leaf whose
  // extra_repr has two lines.
  struct TwoLines : nn::Module {
    TwoLines() : Module("TwoLines") { register_parameter("w", zeros({2})); }
    std::string extra_repr() const override { return "first=1\nsecond=2"; }
  };
  struct Block : nn::Module {
    Block() : Module("Block") {
      register_parameter("gain", ones({4}));
      register_module("fc", std::make_shared<nn::Linear>(4, 4, /*bias=*/false));
      register_module("two", std::make_shared<TwoLines>());
    }
    std::string extra_repr() const override { return "width=4"; }
  };
  Block block;
  CHECK(block.to_string() ==
        "Block(\n"
        "  width=4\n"
        "  gain (4)\n"
        "  (fc): Linear(in_features=4, out_features=4, bias=false)  weight (4,4)\n"
        "  (two): TwoLines(\n"
        "    first=1\n"
        "    second=2\n"
        "    w (2)\n"
        "  )\n"
        ")\n"
        "parameters: 22");
  // Without children a one-line extra_repr stays inside the parentheses.
  CHECK(nn::Linear(2, 3).to_string() ==
        "Linear(in_features=2, out_features=3, bias=true)  weight (3,2)  bias (3)\nparameters: 9");
}

TEST_CASE("module: registration errors") {
  struct Bad : nn::Module {
    Bad() : Module("Bad") {}
    void add(const std::string& name) { register_parameter(name, zeros({1})); }
    void add_child(const std::string& name) { register_module(name, std::make_shared<nn::ReLU>()); }
  };
  Bad bad;
  bad.add("w");
  check_error([&] { bad.add("w"); }, {"Bad:", "'w'", "already taken"});
  check_error([&] { bad.add_child("w"); }, {"Bad:", "submodule 'w'", "already taken"});
  check_error([&] { bad.add("a.b"); }, {"Bad:", "'a.b'", "no '.'"});
  check_error([&] { bad.add(""); }, {"Bad:", "non-empty"});
}

TEST_CASE("module: Sequential chains its modules, named 0, 1, ...") {
  manual_seed(5);
  auto fc = std::make_shared<nn::Linear>(2, 3);
  nn::Sequential seq({fc, std::make_shared<nn::ReLU>()});
  Tensor x = tensor({{1, -2}, {0.5, 3}});
  Tensor expected = relu(fc->forward(x));
  check_values(seq.forward(x), {expected.data(), expected.data() + expected.numel()});
  CHECK(seq.size() == 2);
  CHECK(seq[0].get() == fc.get());
  CHECK(seq.named_parameters()[0].first == "0.weight");
  check_error([&] { (void)seq[2]; }, {"Sequential:", "index 2", "2 modules"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE("module: gradcheck of a Sequential w.r.t. its input and every parameter") {
  manual_seed(6);
  nn::Sequential mlp({std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::Tanh>(),
                      std::make_shared<nn::Linear>(4, 2)});
  Tensor x = randn({5, 3});
  x.requires_grad_();
  ag::testing::check_gradients([&](const std::vector<Tensor>& in) { return mlp.forward(in[0]); },
                               {x});
  ag::testing::check_module_gradients(mlp, [&] { return mlp.forward(x); }, {x});
}
#endif

TEST_CASE("module: save and load give bit-identical outputs") {
  const std::string path = temp_path("module", "roundtrip.safetensors");
  manual_seed(11);
  Model a;
  {
    NoGradGuard no_grad;
    a.steps.fill_(42);
  }
  a.save(path);
  manual_seed(12);  // different initial weights
  Model b;
  a.eval();
  b.eval();
  Tensor ids = tensor({{1, 2, 3}, {4, 5, 6}});
  CHECK(a.forward(ids).to_vector() != b.forward(ids).to_vector());
  b.load(path);
  CHECK(a.forward(ids).to_vector() == b.forward(ids).to_vector());
  CHECK(b.steps.item() == 42);
  // The parameters are the same tensors as before, loaded in place: an
  // optimizer holding them keeps working.
  CHECK(b.parameters()[0].is_same(b.scale));
  // The file holds the state_dict's names.
  std::vector<std::string> names;
  for (auto& [name, t] : load_safetensors(path)) names.push_back(name);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"encoder.embed.weight", "encoder.rnn.0.bias",
                                          "encoder.rnn.0.weight", "head.weight", "scale", "steps"});
  std::filesystem::remove(path);
}

TEST_CASE("module: load refuses files that do not match the model, and changes nothing") {
  const std::string path = temp_path("module", "mismatch.safetensors");
  Model model;
  const std::vector<real> before = model.head->weight.to_vector();

  NamedTensors tensors = model.state_dict();
  tensors.pop_back();  // no "steps"
  save_safetensors(path, tensors);
  check_error([&] { model.load(path); }, {"load", path, "no tensor 'steps'"});

  tensors = model.state_dict();
  tensors.emplace_back("extra.weight", zeros({2}));
  save_safetensors(path, tensors);
  check_error([&] { model.load(path); }, {"load", path, "'extra.weight'", "does not have"});

  tensors = model.state_dict();
  for (auto& [name, t] : tensors)
    if (name == "head.weight") t = zeros({3, 2});
  save_safetensors(path, tensors);
  check_error([&] { model.load(path); }, {"load", path, "'head.weight'", "(3,2)", "(2,3)"});
  CHECK(model.head->weight.to_vector() == before);

  std::filesystem::remove(path);
  check_error([&] { model.load(path); }, {path});
}

TEST_CASE("module: the README's example trains, prints and saves") {
  ag::manual_seed(0);
  auto model = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::UnaryModule>>{
      std::make_shared<nn::Linear>(2, 64), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(64, 3)});
  optim::Adam optimizer(model->parameters(), /*lr=*/1e-2);
  Tensor x = randn({300, 2});
  Tensor labels = randint(0, 3, {300});
  real first_loss = 0, last_loss = 0;
  for (int step = 0; step < 100; ++step) {
    optimizer.zero_grad();
    Tensor loss = nn::cross_entropy(model->forward(x), labels);
    loss.backward();
    optimizer.step();
    (step == 0 ? first_loss : last_loss) = loss.item();
  }
  // Random labels: the model can only memorise, but the loss must fall.
  CHECK(last_loss < first_loss);
  std::ostringstream os;
  os << *model;
  CHECK(os.str().find("(0): Linear(in_features=2, out_features=64, bias=true)") !=
        std::string::npos);
  const std::string path = temp_path("module", "readme.safetensors");
  model->save(path);
  CHECK(load_safetensors(path).size() == 4);
  std::filesystem::remove(path);
}

TEST_CASE("module: a submodule registered twice is one set of parameters, as in PyTorch") {
  struct Tied : nn::Module {
    std::shared_ptr<nn::Linear> encoder, decoder;
    Tied() : Module("Tied") {
      auto shared = std::make_shared<nn::Linear>(2, 2);
      encoder = register_module("encoder", shared);
      decoder = register_module("decoder", shared);
    }
  };
  Tied model;
  auto named = model.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "encoder.weight");
  CHECK(named[1].first == "encoder.bias");
  CHECK(model.num_parameters() == 6);
  CHECK(model.state_dict().size() == 4);  // every name is saved
  // An optimizer accepts the list (it refuses a tensor listed twice).
  optim::SGD opt(model.parameters(), 0.1);
  sum(model.decoder->forward(model.encoder->forward(ones({1, 2})))).backward();
  opt.step();
  const std::string path = temp_path("module", "tied.safetensors");
  model.save(path);
  model.load(path);
  std::filesystem::remove(path);
}
