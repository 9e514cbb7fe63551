#!/usr/bin/python3
"""Writes the optimizer and learning-rate-schedule trajectories that
tests/test_optim_trajectories.cpp compares attograd's with: 10 steps of PyTorch 1.13's
torch.optim and torch.optim.lr_scheduler on one small problem.

Only for regenerating them: the tests read the committed files and never run
Python. From the repository root (needs Debian's python3-torch):

    /usr/bin/python3 tests/data/pytorch/make_optim_fixtures.py [case ...]

The problem, the same for every case: a weight W (2,3) and a bias b (2),
    L(W, b) = sum((tanh(x W^T + b) - y)^2)       x (4,3), y (4,2) fixed
Each step is zero_grad, L.backward(), optimizer.step(), then scheduler.step()
when the case has a schedule. For every case NAME it writes
optim_NAME.safetensors (float64, so the file holds PyTorch's numbers exactly):

    x, y                    the data
    weight.0, bias.0        the start
    weight.k, bias.k        W and b after step k = 1..10
    lr.k                    the optimizer's lr during step k+1 (k = 0..10):
                            lr.0 is the lr of the first step, lr.10 the one
                            the schedule gives after the tenth
"""

import os
import sys

import torch
from torch.optim import lr_scheduler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import HERE, save_safetensors  # noqa: E402

STEPS = 10


def sgd(params):
    return torch.optim.SGD(params, lr=0.1)


# name: (make the optimizer, make the scheduler or None)
CASES = {
    "sgd_momentum": (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01), None),
    "adam": (lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=0.1), None),
    "adamw": (lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1), None),
    "rmsprop": (lambda p: torch.optim.RMSprop(p, lr=0.01), None),
    "rmsprop_centered_momentum": (
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1,
                                      momentum=0.5, centered=True), None),
    "step_lr": (sgd, lambda opt: lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)),
    # T_max 4 < 10 steps: the lr falls to eta_min at epoch 4, then rises again
    "cosine_annealing_lr": (sgd, lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=4,
                                                                           eta_min=0.01)),
    "linear_lr": (sgd, lambda opt: lr_scheduler.LinearLR(opt, start_factor=0.25, end_factor=1.0,
                                                         total_iters=4)),
    # a warm-up of 3 epochs, then a cosine over 5: the rest of the 10 steps rise again
    "sequential_lr": (sgd, lambda opt: lr_scheduler.SequentialLR(
        opt, [lr_scheduler.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=3),
              lr_scheduler.CosineAnnealingLR(opt, T_max=5, eta_min=0.001)], milestones=[3])),
}


def trajectory(name):
    make_optimizer, make_scheduler = CASES[name]
    torch.manual_seed(17)
    x, y = torch.randn(4, 3), torch.rand(4, 2) * 2 - 1
    weight = torch.randn(2, 3).requires_grad_()
    bias = torch.randn(2).requires_grad_()
    out = {"x": x, "y": y, "weight.0": weight.detach().clone(), "bias.0": bias.detach().clone()}
    optimizer = make_optimizer([weight, bias])
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    out["lr.0"] = torch.tensor(optimizer.param_groups[0]["lr"], dtype=torch.float64)
    for k in range(1, STEPS + 1):
        optimizer.zero_grad()
        loss = ((torch.tanh(x @ weight.T + bias) - y) ** 2).sum()
        loss.backward()
        optimizer.step()
        if scheduler:
            scheduler.step()
        out[f"weight.{k}"] = weight.detach().clone()
        out[f"bias.{k}"] = bias.detach().clone()
        out[f"lr.{k}"] = torch.tensor(optimizer.param_groups[0]["lr"], dtype=torch.float64)
    return {n: t.double() for n, t in out.items()}


def main(names):
    import warnings
    warnings.simplefilter("ignore")  # SequentialLR's step(0) warns that passing an epoch is deprecated
    for name in names or CASES:
        tensors = trajectory(name)
        save_safetensors(os.path.join(HERE, f"optim_{name}.safetensors"), tensors)
        lrs = [float(tensors[f"lr.{k}"]) for k in range(STEPS + 1)]
        print(f"optim_{name}: lr {', '.join(f'{lr:.6g}' for lr in lrs)}")


if __name__ == "__main__":
    main(sys.argv[1:])
