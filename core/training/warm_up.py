"""Imported by the training processes' fork server only (core.training.session), never by the
server: the first optimiser step and the first backward pass import parts of torch lazily (an
optimiser's constructor imports torch._dynamo), about a second each in every training process
otherwise. Done once in the fork server, every process forked from it starts warm. In the
server, which never trains, the same warm-up had cost the first Train page 2 s."""

import torch

from core.tasks import TASKS, get_task

for name in TASKS:
    get_task(name)
_weight = torch.zeros(2, 2, requires_grad=True)
_optimizer = torch.optim.Adam([_weight])
torch.nn.GRU(2, 2)(_weight.unsqueeze(0))[0].sum().backward()
_optimizer.step()
