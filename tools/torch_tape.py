#!/usr/bin/python3
"""One training step of a PyTorch model, written as an attograd tape.

attograd writes the tape of a training step with ag::record_tape(path) or
AG_TAPE=path (autograd/tape.hpp); this writes the same format from PyTorch,
so that build/release/tools/tape_diff names the first op where the two part
ways. Run it with a Python that has torch: on Debian, /usr/bin/python3 with
the package python3-torch (a python3 from pyenv or a venv usually has none).

    /usr/bin/python3 tools/torch_tape.py STATE.safetensors TAPE.safetensors

takes one step of chapter 03's model (seed 000's point attention, then a
Linear) from STATE, which holds its weights and a batch as
tests/programs/point_attention_step writes them, and writes TAPE. For a model
of your own:

    import sys; sys.path.insert(0, "tools")
    from torch_tape import TorchTape
    model.zero_grad(set_to_none=True)
    with TorchTape(model) as tape:        # records every torch op that needs a gradient
        loss = loss_fn(model(x), y)
        loss.backward()                   # hooks record each op's gradient
    tape.save("torch_tape.safetensors")

How: a TorchFunctionMode sees every torch function the step calls (F.linear,
torch.softmax, Tensor.__mul__, F.cross_entropy, ...) and records those whose
output requires grad, as attograd records an op; a hook on each output
records dL/d(output) when backward reaches it. An op's name is its function's
(__mul__ -> mul), as attograd's trace names its ops. A parameter read by one
op only gets that op's grad_input (its .grad after the step).
"""
import argparse
import json
import os
import struct
import sys

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

# torch's name -> attograd's, where they differ.
NAMES = {"__mul__": "mul", "__rmul__": "mul", "__add__": "add", "__radd__": "add",
         "__sub__": "sub", "__rsub__": "rsub", "__truediv__": "div", "__rtruediv__": "rdiv",
         "__matmul__": "matmul", "__neg__": "neg", "__pow__": "pow", "transpose": "permute",
         "t": "permute", "view": "reshape"}
DTYPES = {torch.float32: "F32", torch.float64: "F64"}


def save_safetensors(path, tensors, metadata):
    """tensors: name -> float tensor; metadata: str -> str. Written to path + '.tmp', then renamed."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)  # the data starts at a multiple of 8
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(path + ".tmp", path)


def load_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    out = {}
    for name, e in json.loads(raw[8:8 + n]).items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        dtype = {"F32": torch.float32, "F64": torch.float64}[e["dtype"]]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + begin:8 + n + end]),
                                     dtype=dtype).reshape(e["shape"])
    return out


def shape_str(t):
    return "(" + ",".join(str(d) for d in t.shape) + ")"


class TorchTape(TorchFunctionMode):
    def __init__(self, model=None):
        super().__init__()
        self.names = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
        self.ops = []
        self.reads = {}  # id(parameter) -> how many ops read it

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor) and out.requires_grad and out.grad_fn is not None:
            self._record(func, [*args, *kwargs.values()], out)
        return out

    def _record(self, func, args, out):
        name = getattr(func, "__name__", str(func))
        name = NAMES.get(name, name.strip("_"))
        inputs = [a for a in args if isinstance(a, torch.Tensor)]
        op = {"name": name, "output": out.detach().clone(), "inputs": {}, "params": {},
              "grad_output": None, "index": len(self.ops)}
        shown = []
        for i, t in enumerate(inputs):
            label = f"'{self.names[id(t)]}' " if id(t) in self.names else ""
            shown.append(label + shape_str(t))
            if t.grad_fn is None and t.is_floating_point():  # a leaf: a parameter or the data
                op["inputs"][i] = t.detach().clone()
                if t.requires_grad:
                    op["params"][i] = t
                    self.reads[id(t)] = self.reads.get(id(t), 0) + 1
        op["forward"] = (f"forward  #{op['index']:<4} {name:<24} {', '.join(shown) or 'nothing'}"
                         f" -> {shape_str(out)}")
        grad_fn = type(out.grad_fn).__name__

        def hook(g, op=op, grad_fn=grad_fn):
            op["grad_output"] = g.detach().clone()
            op["backward"] = f"backward #{op['index']:<4} {grad_fn:<24} grad {shape_str(g)}"
        out.register_hook(hook)
        self.ops.append(op)

    def save(self, path):
        """The ops backward reached, in the order they ran, as autograd/tape.hpp describes."""
        tensors, metadata = {}, {}
        reached = [op for op in self.ops if op["grad_output"] is not None]
        for k, op in enumerate(reached):
            prefix = f"{k:05}.{op['name']}"
            tensors[prefix + ".output"] = op["output"]
            tensors[prefix + ".grad_output"] = op["grad_output"]
            for i, t in op["inputs"].items():
                tensors[f"{prefix}.input.{i}"] = t
            for i, p in op["params"].items():
                if self.reads[id(p)] == 1 and p.grad is not None:
                    tensors[f"{prefix}.grad_input.{i}"] = p.grad.detach().clone()
            metadata[f"{k:05}.forward"] = op["forward"]
            metadata[f"{k:05}.backward"] = op["backward"]
        metadata.update({"format": "attograd tape", "source": "pytorch",
                         "mode": f"torch {torch.__version__}", "ops": str(len(reached)),
                         "step": "1"})
        save_safetensors(path, tensors, metadata)
        return len(reached)


# --- chapter 03's model, as the seed writes point attention ----------------------------

class PointAttention(nn.Module):  # seed 000's Attention class
    def __init__(self, hidden_size, softmax_dim=1):
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        self.softmax_dim = softmax_dim

    def forward(self, x):
        e = self.linear(x)                              # [F0.1] e_i = W_e x_i + b_e
        a = torch.softmax(e, dim=self.softmax_dim)      # [F0.2] over the sequence
        context = torch.sum(a * x, dim=1)               # [F0.4] sum_i a_i x_i
        return context, a


class AttentionClassifier(nn.Module):  # chapter 03's model
    def __init__(self, hidden_size, classes, softmax_dim=1):
        super().__init__()
        self.attention = PointAttention(hidden_size, softmax_dim)
        self.classifier = nn.Linear(hidden_size, classes)

    def forward(self, x):
        context, _ = self.attention(x)
        return self.classifier(context)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("state", help="weights and batch, from tests/programs/point_attention_step")
    parser.add_argument("tape", help="the tape to write")
    parser.add_argument("--softmax-dim", type=int, default=1,
                        help="a deliberate change: the softmax over another dim (default 1)")
    args = parser.parse_args()
    state = load_safetensors(args.state)
    x, y = state.pop("x"), state.pop("y").long()
    hidden, classes = state["classifier.weight"].shape[1], state["classifier.weight"].shape[0]
    model = AttentionClassifier(hidden, classes, args.softmax_dim)
    model.load_state_dict(state, strict=True)
    model.zero_grad(set_to_none=True)
    with TorchTape(model) as tape:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    ops = tape.save(args.tape)
    print(f"loss {loss.item():.6f} (torch {torch.__version__}); {ops} ops in {args.tape}")


if __name__ == "__main__":
    sys.exit(main())
