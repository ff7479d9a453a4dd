"""Seeded models are the same whatever other threads do (issue 19, item 5).

Every visitor runs in a thread of one Streamlit process. Model building used to seed torch's
process-wide generator, so two visitors building at once drew from each other's stream, got
models their seed does not make, and the wrong one stayed in the shared cache for everyone.
Now each build draws from a generator of its own (core.model.build_sequence_model); these tests
hold it to the weights the old global-seed code gave when run alone, and build in 8 threads at
once while other threads draw from the global generator.
"""

from __future__ import annotations

import itertools
import threading

import pytest
import torch

from core.cells import CELLS
from core.model import INITS, SequenceModel, build_sequence_model, initialise
from core.tasks import TASKS, get_task
from core.training.loop import model_spec
from core.views.lab import build_lab_model
from core.zoo import build_model


def old_global_seed_build(spec, seed, init="default", forget_bias=None, update_bias=None):
    """What build_sequence_model did before: seed torch's process-wide generator, construct,
    re-initialise, put the generator back. Right when nothing else runs; the reference here."""
    state = torch.random.get_rng_state()
    torch.manual_seed(int(seed))
    try:
        model = SequenceModel(spec)
        initialise(model.rnn, init=init, forget_bias=forget_bias, update_bias=update_bias)
    finally:
        torch.random.set_rng_state(state)
    return model


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("task,cell,init", list(itertools.product(TASKS, CELLS, INITS)))
def test_local_generator_gives_the_old_global_seed_weights_bit_for_bit(task, cell, init):
    """So every shipped recipe (and every link to a seeded random model) makes what it made."""
    for hidden, layers, seed in ((64, 1, 0), (16, 2, 7)):
        spec = model_spec(get_task(task), cell, hidden, layers)
        for forget_bias, update_bias in ((None, None), (1.0, 2.0)):
            old = old_global_seed_build(spec, seed, init, forget_bias, update_bias)
            new = build_sequence_model(spec, seed, init, forget_bias, update_bias)
            assert same_weights(old, new), (task, cell, init, hidden, layers, forget_bias)


def test_a_build_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    build_model("agreement", "lstm", seed=5)
    build_lab_model("gru", init="orthogonal", seed=2)
    build_lab_model("lstm", init="xavier", seed=3, forget_bias=1.0)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_a_module_without_a_written_initialisation_is_refused():
    from core.model import reset_like_pytorch
    with pytest.raises(TypeError, match="Conv1d"):
        reset_like_pytorch(torch.nn.Sequential(torch.nn.Conv1d(2, 2, 3)), torch.Generator())


# What each of the 8 threads builds, in turn: the zoo's builder and the lab's, every cell,
# every initialiser, several seeds.
RECIPES = [
    ("zoo", task, cell, seed) for task, cell, seed in
    itertools.product(("adding", "agreement", "names"), CELLS, (0, 1, 42))
] + [
    ("lab", cell, init, seed) for cell, init, seed in itertools.product(CELLS, INITS, (0, 9))
]


def build(recipe):
    kind, a, b, seed = recipe
    if kind == "zoo":
        return build_model(a, b, seed=seed)
    return build_lab_model(a, hidden_size=32, init=b, seed=seed,
                           forget_bias=1.0 if a == "lstm" else None,
                           nonlinearity="relu" if a == "rnn" and b == "xavier" else "tanh",
                           radius=1.5 if b == "orthogonal" else None)


def test_eight_threads_building_at_once_get_the_models_their_seeds_make():
    alone = {recipe: build(recipe).state_dict() for recipe in RECIPES}
    threads_n, rounds = 8, 3
    start = threading.Barrier(threads_n + 2)
    done = threading.Event()
    wrong: list[tuple] = []
    errors: list[BaseException] = []

    def builder(offset: int) -> None:
        try:
            start.wait()
            for r in range(rounds):
                # Each thread walks the recipes from its own place, so different builds overlap.
                for i in range(len(RECIPES)):
                    recipe = RECIPES[(i + offset * 5 + r) % len(RECIPES)]
                    state = build(recipe).state_dict()
                    if not all(torch.equal(state[k], alone[recipe][k]) for k in state):
                        wrong.append(recipe)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def global_drawer(seed: int) -> None:
        start.wait()
        while not done.is_set():  # what any other code in the process may do meanwhile
            torch.manual_seed(seed)
            torch.rand(64)
            torch.nn.Linear(8, 8)

    workers = [threading.Thread(target=builder, args=(i,)) for i in range(threads_n)]
    drawers = [threading.Thread(target=global_drawer, args=(s,)) for s in (1, 2)]
    for thread in workers + drawers:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    for thread in drawers:
        thread.join()
    assert not errors, errors
    assert not wrong, f"{len(wrong)} of {threads_n * rounds * len(RECIPES)} builds differed: {wrong[:5]}"


def test_a_build_imports_no_compiler_and_leaves_other_threads_drawing():
    """Built on the meta device, an embedding's first draw imported torch._dynamo (2.1 s of a
    server's first page). The drawing functions are skipped in the building thread only: a
    module another thread makes meanwhile is drawn as usual."""
    import subprocess
    import sys

    code = ("import sys, torch; from core.model import ModelSpec, build_sequence_model; "
            "build_sequence_model(ModelSpec('lstm', 'classification', 8, 16, 3, vocab_size=20), seed=1); "
            "print('torch._dynamo' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"

    from core.model import SkipDraws

    made = {}
    with SkipDraws():
        other = threading.Thread(target=lambda: made.setdefault("w", torch.nn.Linear(4, 4).weight))
        other.start()
        other.join()
        skipped = torch.nn.init.normal_(torch.zeros(3))
    assert torch.equal(skipped, torch.zeros(3))  # not drawn here
    assert made["w"].abs().sum() > 0 and made["w"].abs().max() <= 0.5  # drawn there: U(±1/2)
