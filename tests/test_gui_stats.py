"""The Stats panel's text, without Qt: gui/stats.py is plain Python (the window only places the rows)."""

from __future__ import annotations

from types import SimpleNamespace

from gui.stats import WARN, model_title, stats_rows, threshold_text


def _info(**kw: object) -> SimpleNamespace:
    base = dict(
        trained=True,
        model_name="default",
        min_score=0.23,
        model_min_score=0.23,
        min_score_set=False,
        familiarity=True,
        source_fps=30.0,
        engine="onnxruntime-int8 on cpu",
        precision="fp32",
        device="cpu",
        labels=["a", "b"],
        accuracy="",
        source_name="rtsp://***@cam/1",
    )
    return SimpleNamespace(**{**base, **kw})


def test_stats_rows_say_rates_latency_drops_and_the_unknown_gate() -> None:
    st = {"info": _info(), "latency_p50": 9.4, "latency_p95": 13.1, "dropped": {"capture": 2, "infer": 1, "output": 0}, "status": "running"}
    rows = {r: (t, c) for r, t, c in stats_rows(st, (29.9, 29.8, 29.8), 30.0, 0.25, 10.0)}
    assert rows["capture"][0] == " 29.9 of 30" and rows["latency"][0] == "  9.4 /  13.1 ms"
    assert rows["dropped"] == ("3  (capture 2, infer 1, output 0)", WARN)
    assert rows["unknown"][0] == "below 0.23 or unlike its training frames (model) · 25% of the last 10 s"
    assert rows["source"][0] == "rtsp://***@cam/1  [running]" and rows["model"] == ("default, 2 classes", None)
    quiet = {
        r: (t, c)
        for r, t, c in stats_rows(
            {
                **st,
                "latency_p50": float("nan"),
                "dropped": {"capture": 0, "infer": 0, "output": 0},
                "info": _info(trained=False, min_score=0.0, familiarity=False),
            },
            (0, 0, 0),
            0,
            0,
            10,
        )
    }
    assert quiet["latency"][0] == "–" and quiet["dropped"] == ("0", None)
    assert quiet["model"] == ("default (UNTRAINED), 2 classes", WARN) and quiet["unknown"][0] == "never: threshold 0 (model)"


def test_threshold_and_title_say_whose_threshold_and_mark_an_untrained_model_once() -> None:
    assert threshold_text(_info(min_score=0.9, min_score_set=True, familiarity=False)) == "below 0.90 (yours; model 0.23)"
    assert threshold_text(_info(min_score=0.0)) == "unlike its training frames (model; score threshold 0)"
    assert model_title(_info(trained=False, model_name="UNTRAINED (random weights)")) == "UNTRAINED (random weights)"


def test_the_formatter_needs_no_qt() -> None:
    import ast
    from pathlib import Path

    import gui.stats

    tree = ast.parse(Path(gui.stats.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(m.startswith(("PyQt6", "pyqtgraph")) for m in imported), imported
