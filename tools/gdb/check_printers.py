# The pretty-printers' test, run by `make test` (tools/gdb/check_printers.sh):
# gdb, in batch mode, runs chapter 03's debug build to a breakpoint in
# PointAttention::forward, the printers having been auto-loaded from the
# binary's -gdb.py, and checks what `print` shows of the tensors there against
# the program's memory and against what the layer guarantees:
#   - x, the seed's input: "tensor (3,5,64) 'x' ...", its 960 elements as
#     children, equal to the raw std::vector the tensor holds;
#   - the returned weights: "tensor (3,5,1) requires_grad grad_fn=SoftmaxBackward#..",
#     15 children, each run of 5 summing to 1 ([F0.2]);
#   - the weights' grad_fn and its node: "SoftmaxBackward#.. inputs (3,5,1)".
# Exits gdb with status 1 and a message on the first failed check.
import gdb

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAILED: " + message)


def printed(expression):
    return gdb.execute("print " + expression, to_string=True)


def children_of(value):
    visualizer = gdb.default_visualizer(value)
    if visualizer is None:
        return None, None
    return visualizer.to_string(), [float(v) for _, v in visualizer.children()]


def run():
    gdb.execute("set pagination off")
    gdb.execute("set confirm off")
    gdb.execute("set print elements 20")
    check(
        any(p.name == "attograd" for p in gdb.current_progspace().objfiles()[0].pretty_printers),
        "the printers were not auto-loaded from the binary's -gdb.py",
    )
    gdb.execute("break ag::nn::PointAttention::forward")
    gdb.execute("run")
    gdb.execute("next")  # past the entry, so the arguments are set up

    # x, the argument: the printer against the raw memory of the same tensor.
    text = printed("x")
    print(text.strip()[:160])
    check(text.split("=", 1)[1].strip().startswith("tensor (3,5,64) 'x' ["),
          "x prints as %r, expected it to start with tensor (3,5,64) 'x' [" % text[:80])
    x = gdb.parse_and_eval("x")
    summary, values = children_of(x)
    check(values is not None and len(values) == 3 * 5 * 64,
          "x has %s children, expected 960" % (None if values is None else len(values)))
    raw = x["impl_"]["_M_ptr"]["data"]["_M_impl"]["_M_start"]
    if values:
        mismatched = [i for i in range(len(values)) if values[i] != float(raw[i])]
        check(not mismatched, "x's children differ from its data at %s" % mismatched[:5])
        first = "%.6g" % float(raw[0])
        check(("[" + first + ",") in summary,
              "x's summary %r does not start its values with %s" % (summary, first))

    # The weights the layer returns: shape, node, and each sequence's sum.
    gdb.execute("finish")
    result = gdb.history(0)
    weights = result["weights"]
    summary, values = children_of(weights)
    print(summary)
    check(summary is not None and summary.startswith("tensor (3,5,1) requires_grad grad_fn=SoftmaxBackward#"),
          "weights print as %r" % summary)
    check(values is not None and len(values) == 15, "weights have %s children, expected 15"
          % (None if values is None else len(values)))
    if values and len(values) == 15:
        for b in range(3):
            total = sum(values[5 * b:5 * b + 5])
            check(abs(total - 1) < 1e-5, "weights of sequence %d sum to %.7f, not 1" % (b, total))

    # grad_fn, the std::shared_ptr<ag::Node>, and the node itself.
    grad_fn = weights["impl_"]["_M_ptr"]["grad_fn"]
    pointer_text = gdb.default_visualizer(grad_fn).to_string()
    print(pointer_text)
    check(pointer_text.startswith("SoftmaxBackward#") and pointer_text.endswith("inputs (3,5,1)"),
          "the weights' grad_fn prints as %r" % pointer_text)
    node_text = gdb.default_visualizer(grad_fn["_M_ptr"].dereference()).to_string()
    check(node_text == pointer_text, "the node prints as %r, its pointer as %r" % (node_text, pointer_text))

try:
    run()
except gdb.error as e:
    failures.append("gdb: %s" % e)
    print("FAILED: gdb: %s" % e)

if failures:
    print("gdb printers: %d check(s) failed" % len(failures))
    gdb.execute("kill", to_string=True)
    gdb.execute("quit 1")
print("gdb printers: all checks passed")
gdb.execute("kill", to_string=True)
gdb.execute("quit 0")
