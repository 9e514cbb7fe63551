# The chapter recipes of docs/debugging.md, run as tests (tools/gdb/check_printers.sh,
# run by `make test`). gdb, in batch mode, loads one chapter's debug build:
#
#   gdb -batch -x tools/gdb/check_recipes.py build/debug/tutorials/05_...   (AG_RECIPE=05)
#
# It starts the chapter as `make debug-05` does (reference mode, stopped on the
# first line of the function the chapter names), then runs the `(gdb)` commands
# of the section "Chapter 05" of docs/debugging.md one by one, and checks:
#   - a command the doc shows stopping at a line stops at the same source line
#     (compared by its text, so the check survives code moving up or down);
#   - a `print` the doc shows as a tensor prints a tensor of the same shape;
#   - the values the recipe is about (the CHECKS below): weights that sum to 1,
#     blocked scores that are -inf, tanh values inside (-1, 1), ...
# It exits gdb with status 1, naming each failed check, or 0.
import math
import os
import re

import gdb

failures = []
chapter = os.environ.get("AG_RECIPE", "")
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAILED: chapter %s: %s" % (chapter, message))


def values_of(expression):
    """Every element of the tensor `expression`, through the printer's children."""
    visualizer = gdb.default_visualizer(gdb.parse_and_eval(expression))
    return [float(v) for _, v in visualizer.children()]


def shape_of(expression):
    text = gdb.default_visualizer(gdb.parse_and_eval(expression)).to_string()
    match = re.match(r"tensor \(([\d,]*)\)", text)
    return [int(s) for s in match.group(1).split(",") if s] if match else None


def sums_to_one(expression, dim=-1):
    """Every slice of `expression` along dim sums to 1 (or to 0: a row blocked everywhere)."""
    values, shape = values_of(expression), shape_of(expression)
    dim %= len(shape)
    size, stride = shape[dim], math.prod(shape[dim + 1:])
    sums = []
    for start in range(len(values)):
        if (start // stride) % size == 0:
            sums.append(sum(values[start + k * stride] for k in range(size)))
    bad = [s for s in sums if abs(s - 1) > 1e-5 and s != 0]
    check(sums and not bad, "%s: slices along dim %d sum to %s, not 1" % (expression, dim, bad[:3]))


def inside_minus_one_one(expression):
    values = values_of(expression)
    check(values and all(-1 < v < 1 for v in values),
          "%s: values outside (-1, 1), as tanh cannot give" % expression)


def blocked_where_causal(expression):
    """Scores (..., T, T) after the causal mask: -inf above the diagonal, finite elsewhere."""
    values, shape = values_of(expression), shape_of(expression)
    t = shape[-1]
    for index, value in enumerate(values):
        i, j = (index // t) % t, index % t
        if (j > i) != (value == -math.inf):
            check(False, "%s: element (..., %d, %d) is %s" % (expression, i, j, value))
            return


def zero_where_causal(expression):
    """Weights (..., T, T) under the causal mask: exactly 0 above the diagonal."""
    values, shape = values_of(expression), shape_of(expression)
    t = shape[-1]
    wrong = [k for k, v in enumerate(values) if (k % t) > ((k // t) % t) and v != 0]
    check(not wrong, "%s: a weight above the diagonal is not 0 (first at %s)" % (expression, wrong[:1]))


def strictly_upper(expression):
    values, shape = values_of(expression), shape_of(expression)
    t = shape[-1]
    wrong = [k for k, v in enumerate(values) if v != (1.0 if k % t > k // t else 0.0)]
    check(not wrong, "%s: not the strict upper triangle of ones (first wrong at %s)"
          % (expression, wrong[:1]))


# What each recipe's prints must show, beyond the shape the doc prints: (chapter,
# the command as the doc writes it) -> check. A check whose command the recipe
# no longer has fails, so that the two stay together.
CHECKS = {
    ("03", "p a"): lambda: sums_to_one("a", dim=1),
    ("04", "p hidden"): lambda: inside_minus_one_one("hidden"),
    ("05", "p weights"): lambda: sums_to_one("weights"),
    ("05", "p g"): lambda: check(shape_of("g") == shape_of("y"), "g and y differ in shape"),
    ("06", "p mask"): lambda: strictly_upper("mask"),
    ("06", "p scores"): lambda: blocked_where_causal("scores"),
    ("06", "p y"): lambda: (sums_to_one("y"), zero_where_causal("y")),
    ("07", "p a"): lambda: sums_to_one("a"),
}


def recipe_of(number):
    """[(command, the output the doc shows for it)] of the section '### Chapter NN'."""
    with open(os.path.join(root, "docs/debugging.md"), encoding="utf-8") as doc:
        text = doc.read()
    section = re.search(r"^### Chapter %s\b.*?(?=^#{2,3} |\Z)" % number, text, re.S | re.M)
    if not section:
        return None
    steps = []
    for block in re.findall(r"^```\n(.*?)^```", section.group(0), re.S | re.M):
        for line in block.split("\n"):
            if line.startswith("(gdb) "):
                steps.append([line[len("(gdb) "):].strip(), []])
            elif steps and line:
                steps[-1][1].append(line)
    return steps


def source_lines(lines):
    """The source lines gdb shows when it stops ('76\\t    weights = ...'), as their text."""
    return [m.group(1).strip() for m in (re.match(r"^\d+\t(.*)$", l) for l in lines) if m]


def current_line():
    """The text of the source line the program is stopped at (None when it is not running)."""
    try:
        sal = gdb.selected_frame().find_sal()
    except gdb.error:
        return None
    if sal.symtab is None:
        return None
    with open(sal.symtab.fullname(), encoding="utf-8") as source:
        lines = source.read().split("\n")
    return lines[sal.line - 1].strip() if 0 < sal.line <= len(lines) else None


def printed_shape(lines):
    match = re.match(r"^\$\d+ = tensor \(([\d,]*)\)", lines[0]) if lines else None
    return match.group(1) if match else None


def start_as_make_debug():
    """What `make debug-NN` does: reference mode, break in the chapter's function, run, next."""
    binary = gdb.current_progspace().filename
    source = os.path.join(root, "tutorials", os.path.basename(binary) + ".cpp")
    with open(source, encoding="utf-8") as program:
        functions = re.findall(r"^// make debug-\d+ breaks in: *(.*)$", program.read(), re.M)
    check(functions, "%s names no function in a '// make debug-NN breaks in:' line" % source)
    gdb.execute("set environment AG_REFERENCE=1")
    for function in functions:
        output = gdb.execute("break " + function, to_string=True)
        check("locations" not in output, "make debug-%s's breakpoint %s has several locations: %s"
              % (chapter, function, output.strip()))
    gdb.execute("run", to_string=True)
    gdb.execute("next", to_string=True)


def run():
    gdb.execute("set pagination off")
    gdb.execute("set print elements 8")
    gdb.execute("set confirm off")
    steps = recipe_of(chapter)
    if not steps:
        check(False, "docs/debugging.md has no section '### Chapter %s' with (gdb) commands" % chapter)
        return
    start_as_make_debug()
    commands = [command for command, _ in steps]
    for key in CHECKS:
        if key[0] == chapter:
            check(key[1] in commands, "the recipe no longer runs %r, which a check needs" % key[1])
    for command, shown in steps:
        print("(gdb) " + command)
        output = gdb.execute(command, to_string=True)
        print(output.rstrip())
        expected_lines = source_lines(shown)
        if expected_lines:
            check(current_line() == expected_lines[-1],
                  "%r stopped at %r; the doc shows %r (did its breakpoint fire?)"
                  % (command, current_line(), expected_lines[-1]))
        if printed_shape(shown) is not None:
            check(printed_shape(output.split("\n")) == printed_shape(shown),
                  "%r printed a tensor of shape (%s); the doc shows (%s)"
                  % (command, printed_shape(output.split("\n")), printed_shape(shown)))
        if (chapter, command) in CHECKS:
            CHECKS[(chapter, command)]()


try:
    run()
except gdb.error as e:
    check(False, "gdb: %s" % e)

print("gdb recipe, chapter %s: %s" % (chapter, "%d check(s) failed" % len(failures)
                                     if failures else "all checks passed"))
gdb.execute("kill", to_string=True)
gdb.execute("quit %d" % (1 if failures else 0))
