"""URL values of bound number inputs: what a page must drop before Streamlit reads them."""

from core.query import non_finite_numbers, number_binds


def test_non_finite_url_numbers_are_dropped_and_their_widgets_drawn_unbound():
    params = {"seed": "inf", "steps": "-inf", "layers": "1e400", "seconds": "nan", "lr": "inf",
              "T": "50"}
    keys = ("seed", "steps", "layers", "seconds", "T", "absent")
    assert non_finite_numbers(params, keys) == ["seed", "steps", "layers", "seconds"]
    assert non_finite_numbers({"seed": ["3", "inf"]}, ["seed"]) == ["seed"]
    binds = number_binds(params, keys)
    assert binds["seed"] == {"bind": None} and binds["T"] == {"bind": "query-params"}
    assert binds["absent"] == {"bind": "query-params"}  # lr: not a number input, not ours
