#!/usr/bin/python3
"""The chapters' trained models (build/tutorials/NN_model.safetensors, written by
each chapter) loaded into their PyTorch twins with load_state_dict(strict=True),
as docs/pytorch.md shows; then chapter 06's Transformer, run by PyTorch,
reverses digits as it did in attograd. Run from the repository root with a
Python that has torch (/usr/bin/python3 on Debian, package python3-torch):

    /usr/bin/python3 tests/programs/load_chapter_models.py

tests/programs/check_tape.sh runs it after the chapters. Exits 1 if a model
present does not load, or if PyTorch's generations are not the reversals.
"""
import os
import sys

import torch
from torch import nn

sys.path.insert(0, "tools")
sys.path.insert(0, "tests/data/pytorch")
import make_fixtures as fx  # noqa: E402  the PyTorch classes of attograd's layers
from torch_tape import AttentionClassifier, load_safetensors  # noqa: E402


class NeighbourModel(nn.Module):  # chapter 05's model, with nn.MultiheadAttention
    def __init__(self, vocab=6, d=32, heads=2, T=8, classes=49):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d)
        self.positional = fx.PositionalEncoding(d, T)
        self.attention = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm = nn.LayerNorm(d)
        self.classifier = nn.Linear(d, classes)


class AttentionRegressor(nn.Module):  # chapter 07's model
    def __init__(self, H=32):
        super().__init__()
        self.attention = fx.SequenceAttention(2, H)
        self.head = nn.Linear(H, 1)


# chapter: (its PyTorch twin, attograd's names -> PyTorch's)
TWINS = {
    "01": (lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)), fx.identity),
    "02": (lambda: nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 3)), fx.identity),
    "03": (lambda: AttentionClassifier(16, 4), fx.identity),
    "04": (lambda: fx.Seq2Seq(13, 13, 16, 64, 32, "lstm", "additive"), fx.identity),
    "05": (NeighbourModel, lambda sd: fx.mha_from_attograd(sd, "attention.")),
    "06": (lambda: fx.TinyTransformer(11, 32, 4, 64, 2, 13),
           fx.layers_mapping(fx.encoder_layer_from_attograd, 2)),
    "07": (AttentionRegressor, fx.identity),
}


def reversal_rate(model, n=200, L=6, sep=10):
    """Chapter 06's task: L digits and the separator in, L digits generated greedily."""
    torch.manual_seed(0)
    digits = torch.randint(0, 10, (n, L))
    tokens = torch.cat([digits, torch.full((n, 1), sep)], 1)
    model.eval()
    with torch.no_grad():
        for _ in range(L):
            next_token = model(tokens)[:, -1].argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, next_token], 1)
    return (tokens[:, L + 1:] == digits.flip(1)).all(1).float().mean().item()


def main():
    loaded, problems = [], []
    for chapter, (make, to_torch) in TWINS.items():
        path = f"build/tutorials/{chapter}_model.safetensors"
        if not os.path.exists(path):
            continue
        model = make()
        try:
            model.load_state_dict(to_torch(load_safetensors(path)), strict=True)
        except RuntimeError as e:
            problems.append(f"{path}: {e}")
            continue
        loaded.append(chapter)
        if chapter == "06":
            rate = reversal_rate(model)
            print(f"chapter 06's Transformer in PyTorch reverses {100 * rate:.1f}% of 200 digit "
                  f"sequences exactly")
            if rate < 0.9:
                problems.append(f"{path}: PyTorch reverses only {100 * rate:.1f}% of the sequences")
    for p in problems:
        print("problem:", p)
    print("loaded:", " ".join(loaded) or "none", f"({len(problems)} problems)")
    return 1 if problems or not loaded else 0


if __name__ == "__main__":
    sys.exit(main())
