"""core.tasks.charlm: the shipped Python text, its windows, typed text, bits per character and the
bigram baseline."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pytest
import torch

from core.limits import LIMITS
from core.model import ModelSpec, SequenceModel
from core.tasks.base import IGNORE, STREAM_HELDOUT, STREAM_SAMPLE, STREAM_TRAIN, rng_for
from core.tasks.charlm import (
    CHARACTERS, DATA_DIR, CharLMTask, char_label, char_name, decode, load_text, text_ids,
)

TASK = CharLMTask()
V = len(TASK.vocab)


def untrained(cell="lstm", hidden=8):
    spec = ModelSpec(cell, TASK.kind, TASK.input_size, hidden, TASK.output_size,
                     vocab_size=TASK.vocab_size)
    torch.manual_seed(0)
    return SequenceModel(spec).eval()


def certain_of(targets: torch.Tensor, right: bool = True) -> torch.Tensor:
    """Logits (..., V) that put nearly all probability on each target (or on another class)."""
    picked = targets if right else (targets + 1) % V
    logits = torch.full((*targets.shape, V), -30.0)
    logits.scatter_(-1, picked.clamp(min=0).unsqueeze(-1), 30.0)
    return logits


# -- the shipped text --------------------------------------------------------------------------

def test_text_is_ascii_python_with_its_licence_and_readme():
    train, heldout = load_text("train"), load_text("heldout")
    assert 300_000 <= len(train) + len(heldout) <= 600_000
    assert 40_000 <= len(heldout) <= len(train) / 4
    for text in (train, heldout):
        assert set(text) <= set(CHARACTERS)  # ASCII: newline and printable characters only
        compile(text, "<charlm>", "exec")  # real Python source, whole modules
    assert set(train) == set(CHARACTERS)  # every vocabulary character is seen in training
    licence = (DATA_DIR / "LICENSE.txt").read_text()
    assert "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" in licence
    readme = (DATA_DIR / "README.md").read_text()
    assert "Python Software Foundation" in readme and "LICENSE.txt" in readme


def test_heldout_modules_are_not_in_the_training_text():
    readme = (DATA_DIR / "README.md").read_text()
    parts = {}
    for part in ("train", "heldout"):
        line = next(line for line in readme.splitlines() if line.startswith(f"- `{part}.txt`"))
        parts[part] = re.findall(r"\b(\w+)\.py\b", line)
    assert len(parts["train"]) >= 15 and len(parts["heldout"]) >= 4
    assert not set(parts["train"]) & set(parts["heldout"])
    train = load_text("train")
    # a held-out module's distinctive definitions appear only in the held-out text
    for definition in ("class PrettyPrinter", "class TopologicalSorter", "class scheduler",
                       "class InteractiveConsole", "def fnmatchcase", "class netrc"):
        assert definition in load_text("heldout") and definition not in train


# -- vocabulary and labels ---------------------------------------------------------------------

def test_classes_are_the_vocabulary_shown_readably():
    assert TASK.kind == "tagging" and TASK.output_size == V == TASK.vocab_size == 98
    assert TASK.classes[:5] == ("<pad>", "<unk>", "↵", "␣", "!")
    for ch in CHARACTERS:  # a character's input id is its class index
        assert TASK.classes[TASK.vocab.index[ch]] == char_label(ch)
    assert char_label("\t") == "⇥" and char_label("a") == "a"
    assert char_name(" ") == "space" and char_name("\n") == "newline" and char_name("x") == "'x'"
    assert decode(TASK.vocab.ids(list("a (b)\n"))) == "a (b)\n"
    text = load_text("heldout")
    assert text_ids(text).tolist() == TASK.vocab.ids(list(text))
    assert text_ids("a\tb").tolist() == [TASK.vocab.index["a"], 1, TASK.vocab.index["b"]]


# -- windows -----------------------------------------------------------------------------------

def test_training_windows_are_the_text_with_the_next_character_as_target():
    batch = TASK.batch(rng_for(0, STREAM_TRAIN), 16, 50)
    assert batch.inputs.shape == batch.targets.shape == (16, 50)
    assert batch.lengths.tolist() == [50] * 16
    assert torch.equal(batch.targets[:, :-1], batch.inputs[:, 1:])
    assert (batch.info["part"] == 0).all()
    train = load_text("train")
    for row, start in zip(batch.inputs, batch.info["start"].tolist()):
        assert decode(row) == train[start: start + 50]
    again = TASK.batch(rng_for(0, STREAM_TRAIN), 16, 50)
    assert torch.equal(again.inputs, batch.inputs)
    other = TASK.batch(rng_for(1, STREAM_TRAIN), 16, 50)
    assert not torch.equal(other.inputs, batch.inputs)


def test_heldout_windows_come_from_the_heldout_text_only():
    batch = TASK.heldout(3, 200)
    assert batch.inputs.shape == (200, TASK.seq_len.default)
    assert (batch.info["part"] == 1).all()
    heldout = load_text("heldout")
    starts = batch.info["start"].tolist()
    for row, target, start in zip(batch.inputs, batch.targets, starts):
        assert decode(row) == heldout[start: start + 100]
        assert decode(target) == heldout[start + 1: start + 101]
    # the held-out stream is not the training one, and reaches across the whole text
    assert max(starts) > len(heldout) * 0.9 and min(starts) < len(heldout) * 0.1
    assert torch.equal(TASK.heldout(3, 200).inputs, batch.inputs)
    same_seed = TASK._batch("heldout", rng_for(3, STREAM_TRAIN), 200, None)
    assert not torch.equal(same_seed.inputs, batch.inputs)


def test_a_window_can_end_at_the_last_character_but_not_past_it():
    heldout = load_text("heldout")
    last = len(heldout) - 11
    batch = TASK.windows("heldout", np.array([last]), 10)
    assert decode(batch.targets[0])[-1] == heldout[-1]
    with pytest.raises(ValueError, match="must end inside the heldout text"):
        TASK.windows("heldout", np.array([last + 1]), 10)


def test_lengths_outside_the_range_are_refused():
    with pytest.raises(ValueError, match="whole number of characters from 1 to 1000, got 1001"):
        TASK.heldout(0, 2, 1001)
    assert TASK.heldout(0, 2, 1).inputs.shape == (2, 1)


def test_sample_is_a_seeded_heldout_window_from_the_start_of_a_line():
    a, b = TASK.sample(7, 60), TASK.sample(7, 60)
    assert torch.equal(a.inputs, b.inputs) and a.tokens == b.tokens
    heldout = load_text("heldout")
    start = a.info["start"]
    assert a.info["part"] == "heldout" and (start == 0 or heldout[start - 1] == "\n")
    assert decode(a.inputs) == heldout[start: start + 60]
    assert decode(a.target) == heldout[start + 1: start + 61]
    assert a.tokens == [char_label(ch) for ch in heldout[start: start + 60]]
    starts = {TASK.sample(seed).info["start"] for seed in range(20)}
    assert len(starts) > 10


# -- typed text --------------------------------------------------------------------------------

def test_typed_code_reads_all_but_the_last_character():
    ex = TASK.encode("def f(x):\r\n    return x")
    text = "def f(x):\n    return x"
    assert decode(ex.inputs) == text[:-1] and decode(ex.target) == text[1:]
    assert ex.tokens[:10] == ["d", "e", "f", "␣", "f", "(", "x", ")", ":", "↵"]
    assert ex.unknown == []
    assert TASK.fed_note(ex) == ("The model reads the first 21 characters; the last one typed, "
                                 "'x', is the answer to the last step (it is not read).")


def test_typed_characters_outside_the_vocabulary_are_reported():
    ex = TASK.encode("if x:\n\treturn 'café'")
    assert ex.unknown == ["⇥", "é"]
    assert ex.tokens[6] == "⇥" and ex.inputs[6] == 1  # fed as <unk>, shown as typed
    assert ex.target[5] == 1  # the answer after the newline is <unk> too


@pytest.mark.parametrize("text, message", [
    ("", "type some code"), ("   \n", "type some code"), ("x", "at least two characters"),
    ("x" * (LIMITS.max_text_chars + 1), "too long"),
])
def test_unusable_text_gets_a_message(text, message):
    with pytest.raises(ValueError, match=message):
        TASK.encode(text)


# -- metric, baseline, objective ---------------------------------------------------------------

def test_bits_per_character_is_the_cross_entropy_in_bits():
    batch = TASK.heldout(0, 20, 30)
    assert TASK.score(certain_of(batch.targets), batch) < 1e-6
    assert TASK.score(certain_of(batch.targets, right=False), batch) > 80
    uniform = torch.zeros(20, 30, V)
    assert TASK.score(uniform, batch) == pytest.approx(math.log2(V))
    logits = torch.randn(20, 30, V, generator=torch.Generator().manual_seed(0))
    assert TASK.score(logits, batch) == pytest.approx(
        float(TASK.loss(logits, batch.targets)) / math.log(2), rel=1e-6)


def test_padded_steps_do_not_count():
    batch = TASK.heldout(0, 4, 30)
    targets = batch.targets.clone()
    targets[:, 20:] = IGNORE
    logits = certain_of(batch.targets)
    logits[:, 20:] = certain_of(batch.targets[:, 20:], right=False)  # wrong where padded
    padded = type(batch)(batch.inputs, targets, batch.lengths, batch.info)
    assert TASK.score(logits, padded) < 1e-6


def test_baseline_is_the_bigram_of_the_training_text():
    train = load_text("train")
    pairs = Counter(zip(train, train[1:]))
    firsts = Counter(train[:-1])
    batch = TASK.heldout(1, 40, 25)
    bits = []
    for row, target in zip(batch.inputs.tolist(), batch.targets.tolist()):
        for a, b in zip(decode(row), decode(target)):
            # add-one over the 97 classes a target can be (the characters and <unk>)
            bits.append(-math.log2((pairs[a, b] + 1) / (firsts[a] + V - 1)))
    assert TASK.baseline(batch) == pytest.approx(np.mean(bits), rel=1e-9)
    counts = Counter(train)
    unigram = [-math.log2((counts[b] + 1) / (len(train) + V - 1))
               for target in batch.targets.tolist() for b in decode(target)]
    assert TASK.unigram_bpc(batch) == pytest.approx(np.mean(unigram), rel=1e-9)


def test_baseline_on_the_heldout_text_beats_frequencies_alone():
    batch = TASK.heldout(2_000_003, 2000)
    bigram, unigram = TASK.baseline(batch), TASK.unigram_bpc(batch)
    assert 3.2 < bigram < 3.5 and 4.2 < unigram < 4.45
    untrained_score = TASK.score_on(untrained(), batch)
    assert untrained_score.metric == "bits per character" and not untrained_score.higher_is_better
    assert untrained_score.value > math.log2(V) - 0.1 and untrained_score.verdict == "worse"
    assert untrained_score.extra["unigram_bpc"] == pytest.approx(unigram)
    assert 0 <= untrained_score.extra["accuracy"] < 0.1


def test_objective_has_a_gradient_at_every_step():
    model = untrained()
    example = TASK.sample(0, 40)
    out, _ = model.rnn(model.features(example.inputs))
    out = out.detach().requires_grad_(True)
    for target in (example.target, None):
        value = TASK.objective(model, target)(out)
        assert value.dim() == 0 and torch.isfinite(value)
        (grad,) = torch.autograd.grad(value, out)
        assert (grad.abs().sum(-1) > 0).all()


# -- one sequence in words ---------------------------------------------------------------------

def test_describe_names_the_likeliest_next_character_and_the_runner_up():
    ex = TASK.encode("return x\n")
    logits = torch.zeros(len(ex), V)
    logits[-1, TASK.vocab.index["\n"]] = 5.0
    logits[-1, TASK.vocab.index[" "]] = 4.0
    logits[-1, TASK.vocab.index["("]] = 3.0
    said = TASK.describe(logits, ex)
    assert re.fullmatch(r"“↵” \(p = 0\.\d\d\), then “␣” \(0\.\d\d\)", said), said
    assert TASK.describe(logits) == said  # the answer alone: the page shows the text beside it


def test_the_target_is_the_character_that_came_next():
    long = TASK.sample(0, 40)
    assert TASK.target_text(long) == f"“{TASK.classes[int(long.target[-1])]}”"
    assert TASK.target_text(TASK.encode("return x\n")) == "“↵”"
    assert TASK.target_text(type(long)(long.inputs, None, long.tokens)) == "—"


def test_judge_counts_the_characters_guessed_and_gives_no_verdict():
    ex = TASK.encode("abcdef")
    logits = certain_of(ex.target)
    logits[:2] = certain_of(ex.target[:2], right=False)
    words, right = TASK.judge(logits, ex)
    assert right is None and words.startswith("3 of 5 next characters right, ")
    assert re.search(r"\d+\.\d\d bits per character$", words)
    assert TASK.judge(logits, type(ex)(ex.inputs, None, ex.tokens)) == ("", None)


def test_heldout_and_samples_draw_from_their_own_streams():
    # held-out windows and samples each come from their own stream of the seed
    sample_start = TASK.sample(5).info["start"]
    heldout_starts = TASK.heldout(5, 1).info["start"].tolist()
    fits = TASK.line_starts[TASK.line_starts + 101 <= len(load_text("heldout"))]
    assert sample_start == int(fits[rng_for(5, STREAM_SAMPLE).integers(len(fits))])
    assert heldout_starts == rng_for(5, STREAM_HELDOUT).integers(
        0, len(load_text("heldout")) - 100, size=1).tolist()
