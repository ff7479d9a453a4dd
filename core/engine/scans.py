"""Elementwise linear recurrences along time, the one loop over timesteps left in the engine.

The LSTM's cell state c_t = f_t c_{t-1} + i_t g_t, its gradient d c_t and the GRU's direct
z_t h_{t-1} path are all s_t = a_t s_{t-1} + b_t, one number per unit. Step by step that is two
numpy calls per step, nearly all dispatch; `chain_in_place` picks the cheapest schedule for the
shape at hand (doubling for short narrow chains, blocks for long ones).
"""

from __future__ import annotations

import math

import numpy as np


def forward_scan(decay: np.ndarray, source: np.ndarray) -> np.ndarray:
    """s_t = decay_t * s_{t-1} + source_t with s_{-1} = 0, over axis 0. Overwrites `source`."""
    chain_in_place(source, decay[1:], reverse=False)
    return source


def reverse_scan(decay: np.ndarray, source: np.ndarray) -> np.ndarray:
    """s_t = source_t + decay_{t+1} * s_{t+1} with s_{T-1} = source_{T-1}, over axis 0.
    Overwrites `source`."""
    chain_in_place(source, decay[1:], reverse=True)
    return source


def chain_in_place(states: np.ndarray, links: np.ndarray, reverse: bool) -> None:
    """A linear recurrence along axis 0 of (T, H) arrays, in place: links[k] joins rows k and k+1.

    Forward, states[k+1] += links[k] * states[k] for k = 0, 1, ...; reverse, states[k] +=
    links[k] * states[k+1] for k = T-2, T-3, ... The one loop over time left in the engine.
    Step by step it costs two ufunc calls per step on rows of H numbers, nearly all of it
    dispatch, so it is cut down by the shape at hand: a short chain of narrow rows by doubling
    (`_chain_by_doubling`), a long one in blocks (`_chain_in_blocks`); what is left is
    cheapest step by step.
    """
    if links.size <= 4096:
        _chain_by_doubling(states, links, reverse)
        return
    if reverse:  # the forward recurrence on reversed views
        states, links = states[::-1], links[::-1]
    if len(links) >= 108:
        _chain_in_blocks(states, links)
    else:
        _chain_step_by_step(states, links)


def _chain_by_doubling(states: np.ndarray, links: np.ndarray, reverse: bool) -> None:
    """`chain_in_place` in log2(T) passes over whole arrays (Hillis and Steele's scan).

    After the pass with stride k, each row holds its chain over 2k rows; `span[j]` holds the
    product of the k links from row j + 1 (forward: into row j + k; reverse: from row j + k),
    then of 2k. Kept in natural order either way, since numpy is slower on reversed views.
    Links are gates in [0, 1], so a product can only underflow, to the exact limit 0.
    """
    count = len(states)
    span = links.copy()
    carried = np.empty_like(states)
    stride = 1
    while stride < count:
        reach = count - stride
        if reverse:
            np.multiply(span[:reach], states[stride:], out=carried[:reach])
            np.add(states[:reach], carried[:reach], out=states[:reach])
        else:
            np.multiply(span[stride - 1 :], states[:reach], out=carried[:reach])
            np.add(states[stride:], carried[:reach], out=states[stride:])
        if 2 * stride < count:  # numpy copies where the two sides of an in-place call overlap
            if reverse:
                np.multiply(span[: reach - stride], span[stride:reach], out=span[: reach - stride])
            else:
                np.multiply(span[2 * stride - 1 :], span[stride - 1 : reach - 1], out=span[2 * stride - 1 :])
        stride *= 2


def _chain_in_blocks(states: np.ndarray, links: np.ndarray) -> None:
    """`chain_in_place` in blocks of about sqrt(T/3) steps (k = block length, m = blocks):

    1. every block runs its own chain from a zero start, all blocks at once (k steps);
    2. a chain over the blocks finds the true state entering each one (m steps), from each
       block's end value and the product of its links;
    3. the entering state, multiplied through each block's links, is added in (k steps).
    About 6k + 2m calls instead of 2T, on arrays m times larger. The links are gates in [0, 1],
    so a block's product can only underflow, to the exact limit 0.
    """
    steps = len(links)
    block = math.isqrt(steps // 3)
    blocks = steps // block
    shape = (blocks, block) + states.shape[1:]
    body = np.reshape(states[1 : 1 + blocks * block], shape, copy=False)  # views: writes land in `states`
    factors = np.reshape(links[: blocks * block], shape, copy=False)
    multiply, add = np.multiply, np.add
    carried = np.empty_like(body[:, 0])
    for j in range(1, block):
        multiply(factors[:, j], body[:, j - 1], out=carried)
        add(body[:, j], carried, out=body[:, j])
    through = factors.prod(axis=1)
    entering = np.empty_like(carried)
    entering[0] = states[0]
    for k in range(1, blocks):
        multiply(through[k - 1], entering[k - 1], out=entering[k])
        add(entering[k], body[k - 1, -1], out=entering[k])
    for j in range(block):
        multiply(factors[:, j], entering, out=entering)
        add(body[:, j], entering, out=body[:, j])
    done = blocks * block
    _chain_step_by_step(states[done:], links[done:])


def _chain_step_by_step(states: np.ndarray, links: np.ndarray) -> None:
    """`chain_in_place` one step at a time, on row views made up front (a list built in C)."""
    rows = list(states)
    multiply, add = np.multiply, np.add
    product = np.empty_like(rows[0]) if rows else None
    for previous, row, link in zip(rows, rows[1:], list(links)):
        multiply(link, previous, out=product)
        add(row, product, out=row)
