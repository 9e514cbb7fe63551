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


def register(objfile=None):
    """Registers the printers for one binary (objfile) or, with None, globally."""
    gdb.printing.register_pretty_printer(objfile, build_printer(), replace=True)


# `source tools/gdb/attograd.py` registers them for the whole session.
if __name__ == "__main__":
    register(None)
