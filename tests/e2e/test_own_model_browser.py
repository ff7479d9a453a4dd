"""A practitioner's own whole model in real Chromium (issue 15): a character-level language model
(embedding -> 2-layer LSTM -> linear head) uploaded with its vocabulary, fed typed text, traced
with the gradients of the head's loss; the page shows the head's prediction and each character's
saliency, and both are the numbers PyTorch gives for the user's own model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from harness import choose_option, shot, wait_for_app, wait_until

pytestmark = pytest.mark.e2e

CHART = ".js-plotly-plot"
TEXT = "the gate opens"
CORPUS = "the gate opens, the gate closes; the cell keeps what the gate lets in.\n" * 40
SALIENCY = """() => { const gd = document.querySelector('.js-plotly-plot');
                      const input = gd._fullData.find(t => t.name === 'input');
                      return input ? Array.from(input.marker.color) : null; }"""


class CharLM(nn.Module):
    """As a practitioner writes one: their own names, batch_first, a head on every step."""

    def __init__(self, vocabulary: int):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, 12)
        self.lstm = nn.LSTM(12, 24, num_layers=2, batch_first=True)
        self.fc = nn.Linear(24, vocabulary)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(self.embed(ids))[0])


@pytest.fixture(scope="module")
def char_lm(tmp_path_factory):
    """A char LM trained for a few seconds on CORPUS, saved as a whole-model state_dict with
    a JSON list vocabulary beside it."""
    vocab = sorted(set(CORPUS))
    ids = torch.tensor([vocab.index(c) for c in CORPUS])
    torch.manual_seed(0)
    model = CharLM(len(vocab))
    optimiser = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(120):
        starts = torch.randint(0, len(ids) - 33, (16,))
        batch = torch.stack([ids[s:s + 33] for s in starts])
        loss = nn.functional.cross_entropy(model(batch[:, :-1]).flatten(0, 1),
                                           batch[:, 1:].flatten())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    folder = tmp_path_factory.mktemp("charlm")
    torch.save(model.state_dict(), folder / "charlm.pt")
    (folder / "vocab.json").write_text(json.dumps(vocab))
    return model.eval(), vocab, folder


def reference(model: CharLM, vocab: list[str], target: int):
    """What PyTorch says for the user's own model: the head's likeliest next character after
    TEXT, and ‖∂ loss / ∂ embedding(x_t)‖ per character for the cross-entropy at the last step
    against `target`."""
    ids = torch.tensor([[vocab.index(c) for c in TEXT]])
    embedded = model.embed(ids).detach().requires_grad_(True)
    scores = model.fc(model.lstm(embedded)[0])[0]
    loss = nn.functional.cross_entropy(scores[-1:], torch.tensor([target]))
    (grad,) = torch.autograd.grad(loss, embedded)
    probabilities = torch.softmax(scores[-1], 0)
    return vocab[int(probabilities.argmax())], float(probabilities.max()), \
        grad[0].norm(dim=1).numpy()


def test_a_char_lm_with_its_vocabulary_shows_its_heads_prediction_and_saliency(
        page, app_url, artifacts, char_lm):
    model, vocab, folder = char_lm
    page.goto(f"{app_url}/?source=upload")
    wait_for_app(page)
    uploaders = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploaders.nth(0).set_input_files(str(folder / "charlm.pt"))  # the weights
    wait_for_app(page)
    uploaders.nth(1).set_input_files(str(folder / "vocab.json"))  # beside them
    wait_for_app(page)
    page.get_by_text("text, through my vocabulary").click()  # offered once the vocabulary is in
    wait_for_app(page)
    wait_until(page, "() => document.body.innerText.includes('Type some text for your model')",
               "the page asks for text: the model has an embedding and a vocabulary")
    page.get_by_label("Your text").fill(TEXT)
    page.get_by_label("Your text").press("Control+Enter")
    wait_for_app(page)
    page.wait_for_selector(CHART)
    # The objective: the cross-entropy loss at the last step against the class of "s"
    choose_option(page, page.locator('[data-testid="stSelectbox"]')
                  .filter(has_text="Gradients of"), "loss against my target")
    wait_for_app(page)
    target = vocab.index("s")
    class_box = page.get_by_label("Class / output")
    class_box.fill(str(target))
    class_box.press("Enter")
    wait_for_app(page)
    wait_until(page, f"() => document.body.innerText.includes('against the class {target}')",
               "the caption says what the gradients are of")
    body = page.inner_text("body")
    assert f"cross-entropy loss at step {len(TEXT) - 1}" in body
    assert f"against the class {target} (“s”)" in body

    want_token, want_p, want_saliency = reference(model, vocab, target)
    assert "Your head's answer" in body and "Target" not in body.split("Your head's answer")[1][:80]
    assert f"“{want_token}” (p = {want_p:.2f}) at step {len(TEXT) - 1}" in body
    saliency = np.array(page.evaluate(SALIENCY), dtype=float)
    assert saliency.shape == (len(TEXT),)  # one square per character
    np.testing.assert_allclose(saliency, want_saliency, rtol=1e-4, atol=1e-7)
    assert saliency.max() > 0
    page.set_viewport_size({"width": 1280, "height": 720})
    shot(page, artifacts, "own-model-char-lm")
