# gdb pretty-printers for attograd.
#
# With them, `print x` on an ag::Tensor shows what a learner wants to see:
#
#   (gdb) p e
#   $1 = tensor (3,5,1) requires_grad grad_fn=AddmmBackward#7 [0.12, -0.3, ...] = {0.12, -0.3, ...}
#
# the shape, the name (when it has one), requires_grad, the op that made it
# (grad_fn, with the node's id), the first values, and then every element as
# an array child (`set print elements N` limits how many). An autograd node
# (ag::Node, the target of grad_fn) prints as its op name, id and the shapes of
# its inputs, with the input tensors as children.
#
# Loading: `make MODE=debug` writes <binary>-gdb.py beside each program, which
# gdb runs when it loads the binary, once the build directory is on gdb's
# auto-load safe path (docs/debugging.md). By hand, in any gdb session:
#   (gdb) source tools/gdb/attograd.py
#
# The printers read the engine's own layout: TensorImpl's `data` and `shape`
# are std::vectors (libstdc++: _M_impl._M_start .. _M_finish), the handles are
# std::shared_ptr (_M_ptr). They only read memory; a printer never calls a
# function of the program, so printing is safe at any breakpoint.

import os
import re

import gdb
import gdb.printing

# How many values the one-line summary shows before "...".
SUMMARY_VALUES = 6


def _vector(vec):
    """(pointer to the first element, element count) of a libstdc++ std::vector."""
    impl = vec["_M_impl"]
    start = impl["_M_start"]
    count = int(impl["_M_finish"] - start)
    return start, count


def _shared_get(ptr):
    """The raw pointer held by a std::shared_ptr (null when empty)."""
    return ptr["_M_ptr"]


def _string(value):
    """The text of a libstdc++ std::string (read directly, needing no other printer)."""
    return value["_M_dataplus"]["_M_p"].string(length=int(value["_M_string_length"]))


def _shape(impl):
    start, count = _vector(impl["shape"])
    return [int(start[i]) for i in range(count)]


def shape_str(shape):
    """The engine's own spelling of a shape, as in its error messages: (2,3)."""
    return "(" + ",".join(str(s) for s in shape) + ")"


def _describe(impl):
    """'x' (3,5,64), or (3,5,64) for a tensor without a name, as describe() in errors."""
    name = _string(impl["name"])
    shape = shape_str(_shape(impl))
    return "'%s' %s" % (name, shape) if name else shape


def _number(value):
    text = "%.6g" % float(value)
    return text


def _node_field(node_ptr, field_name):
    """A field of the ag::Node that node_ptr points to, read at its offset.

    Dereferencing a pointer to a polymorphic class makes gdb look up its dynamic
    type, and for the LambdaNode<lambda> types ops record it cannot (it warns
    "RTTI symbol not found"). Reading the field through its offset in the base
    class avoids that lookup.
    """
    node_type = gdb.lookup_type("ag::Node")
    for field in node_type.fields():
        if field.name == field_name:
            address = node_ptr.cast(gdb.lookup_type("char").pointer()) + field.bitpos // 8
            return address.cast(field.type.pointer()).dereference()
    raise gdb.GdbError("ag::Node has no field " + field_name)


def _node_label(node_ptr):
    if int(node_ptr) == 0:
        return None
    name = _node_field(node_ptr, "name")
    label = name.string() if int(name) != 0 else "?"
    return "%s#%d" % (label, int(_node_field(node_ptr, "id")))


def _impl_summary(impl):
    parts = ["tensor", shape_str(_shape(impl))]
    name = _string(impl["name"])
    if name:
        parts.append("'%s'" % name)
    if bool(impl["requires_grad"]):
        parts.append("requires_grad")
    node = _node_label(_shared_get(impl["grad_fn"]))
    if node:
        parts.append("grad_fn=" + node)
    if int(_shared_get(impl["grad"])) != 0:
        parts.append("has_grad")
    start, count = _vector(impl["data"])
    shown = [_number(start[i]) for i in range(min(count, SUMMARY_VALUES))]
    if count > SUMMARY_VALUES:
        shown.append("...")
    parts.append("[" + ", ".join(shown) + "]")
    return " ".join(parts)


def _elements(impl):
    """Every element of a TensorImpl, as (label, value) children of an array."""
    start, count = _vector(impl["data"])
    for i in range(count):
        yield "[%d]" % i, start[i]


class TensorImplPrinter:
    """ag::TensorImpl: the summary line, then the elements as an array."""

    def __init__(self, impl):
        self.impl = impl

    def to_string(self):
        return _impl_summary(self.impl)

    def children(self):
        return _elements(self.impl)

    def display_hint(self):
        return "array"


class ImplPointerPrinter:
    """A std::shared_ptr<ag::TensorImpl> (a tensor's .grad), and through it the
    ag::Tensor handle, whose one member is such a pointer: the tensor it points to."""

    def __init__(self, ptr, empty="tensor (none)"):
        self.ptr = _shared_get(ptr)
        self.empty = empty

    def to_string(self):
        if int(self.ptr) == 0:
            return self.empty
        return _impl_summary(self.ptr.dereference())

    def children(self):
        if int(self.ptr) == 0:
            return iter(())
        return _elements(self.ptr.dereference())

    def display_hint(self):
        return "array"


def TensorPrinter(tensor):
    """ag::Tensor, the handle: prints the tensor it points to."""
    return ImplPointerPrinter(tensor["impl_"], empty="tensor (undefined)")


class NodePointerPrinter:
    """An ag::Node* (a tensor's grad_fn once unwrapped): op, id, input shapes."""

    def __init__(self, node_ptr):
        self.ptr = node_ptr

    def _inputs(self):
        if int(self.ptr) == 0:
            return []
        start, count = _vector(_node_field(self.ptr, "inputs"))
        return [start[i]["tensor"] for i in range(count)]

    def to_string(self):
        if int(self.ptr) == 0:
            return "grad_fn none (a leaf)"
        shapes = []
        for tensor in self._inputs():
            impl = _shared_get(tensor["impl_"])
            shapes.append("released" if int(impl) == 0 else _describe(impl.dereference()))
        text = "%s inputs %s" % (_node_label(self.ptr), ", ".join(shapes) or "none")
        if bool(_node_field(self.ptr, "released")):
            text += " (released)"
        return text

    def children(self):
        for i, tensor in enumerate(self._inputs()):
            yield "input %d" % i, tensor


def NodePrinter(node):
    """ag::Node (and the LambdaNode<...> that ops record), printed by value."""
    return NodePointerPrinter(node.address.cast(gdb.lookup_type("ag::Node").pointer()))


def GradFnPrinter(ptr):
    """std::shared_ptr<ag::Node>, a tensor's grad_fn: the node it points to."""
    return NodePointerPrinter(_shared_get(ptr))


def build_printer():
    printer = gdb.printing.RegexpCollectionPrettyPrinter("attograd")
    printer.add_printer("Tensor", "^ag::Tensor$", TensorPrinter)
    printer.add_printer("TensorImpl", "^ag::TensorImpl$", TensorImplPrinter)
    printer.add_printer("Node", "^ag::Node$", NodePrinter)
    printer.add_printer("LambdaNode", "^ag::LambdaNode<.*>$", NodePrinter)
    printer.add_printer("grad_fn", "^std::shared_ptr<ag::Node>$", GradFnPrinter)
    printer.add_printer("TensorImpl pointer", "^std::shared_ptr<ag::TensorImpl>$", ImplPointerPrinter)
    return printer


# --- stepping: what `step` skips, and breakpoints on formula lines ------------------

# The repository root: this file is tools/gdb/attograd.py.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# `step` goes into attograd's functions and skips the rest: the standard library
# and fmt (every header under /usr/include, any depth), and the accessors of a
# Tensor handle, which only read a field. `finish` still leaves any function.
SKIPS = ["-gfi /usr/include/" + "*/" * depth + "*" for depth in range(6)] + [
    "-rfu ^std::",
    "-rfu ^fmt::",
    "-rfu ^ag::Tensor::(Tensor|~Tensor|operator=|impl|shape|size|dim|numel|data|defined|name|"
    "requires_grad|grad_fn|item)$",
    "-rfu ^ag::shape_numel$",
]
_skips_set = False


def set_skips():
    global _skips_set
    if _skips_set:
        return
    _skips_set = True
    for skip in SKIPS:
        gdb.execute("skip " + skip, to_string=True)


# A line computes the formulas whose tags open the comment above it,
# `// [F2.3] [F2.4] H_i = softmax(A_i / sqrt(d_k))`; a tag later in a comment only
# mentions a formula (docs/formulas.md; tools/check_formulas.cpp, the same rule).
_LEADING_TAGS = re.compile(r"^\s*//\s*((?:\[F\d\.\d+\]\s*)+)")


def formula_lines(formula):
    """[(file, line)] of the code lines that compute `formula` (e.g. "F2.4"): the first
    line that is not a comment below each comment line whose opening tags name it. Library files and chapters, sorted."""
    tag = "[" + formula + "]"
    found = []
    for folder in ("core", "autograd", "layers", "tutorials"):
        for directory, _, files in sorted(os.walk(os.path.join(ROOT, folder))):
            for name in sorted(files):
                if not name.endswith(".cpp"):
                    continue
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as source:
                    lines = source.read().split("\n")
                for i, text in enumerate(lines):
                    leading = _LEADING_TAGS.match(text)
                    if not leading or tag not in leading.group(1):
                        continue
                    code = i + 1
                    while code < len(lines) and lines[code].strip().startswith("//"):
                        code += 1
                    found.append((os.path.relpath(path, ROOT), code + 1))
    return sorted(set(found))


class BreakFormula(gdb.Command):
    """Stop on every line that computes a formula of the articles.

Usage: break-formula ID     e.g.  break-formula F2.4

Sets a breakpoint on each code line below a `// [ID] ...` comment in core/,
autograd/, layers/ and tutorials/: the plain formula code that reference mode
(AG_REFERENCE=1, what make debug-NN runs) executes, and the fast twin where a
formula has one. docs/formulas.md lists the same lines."""

    def __init__(self):
        super().__init__("break-formula", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, argument, from_tty):
        formula = argument.strip().upper()
        if not re.fullmatch(r"F\d\.\d+", formula):
            raise gdb.GdbError("break-formula: give a formula ID such as F2.4, not %r" % argument)
        lines = formula_lines(formula)
        if not lines:
            raise gdb.GdbError("break-formula: no line computes [%s]" % formula)
        known = []
        for path, line in lines:
            try:  # only files of this program: a layer it does not link has no code here
                gdb.decode_line("%s:%d" % (path, line))
                known.append((path, line))
            except gdb.error:
                pass
        if not known:
            raise gdb.GdbError("break-formula: no line of this program computes [%s]" % formula)
        for path, line in known:
            gdb.execute("break %s:%d" % (path, line))


def register(objfile=None):
    """Registers the printers for one binary (objfile) or, with None, globally,
    the break-formula command, and the functions `step` skips."""
    gdb.printing.register_pretty_printer(objfile, build_printer(), replace=True)
    global _command
    if _command is None:
        _command = BreakFormula()
    set_skips()


_command = None


# `source tools/gdb/attograd.py` registers them for the whole session.
if __name__ == "__main__":
    register(None)
