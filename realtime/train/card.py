"""The model card (MODEL_CARD.md) `twostream train` writes beside a checkpoint: what it is, its data, how to
reproduce it, its figures."""

from __future__ import annotations

from pathlib import Path

from ..nets.checkpoint import ModelConfig
from .datasets import VideoDataset


def write_model_card(out: Path, config: ModelConfig, ds: VideoDataset, metrics: dict) -> None:
    prov = config.provenance
    lines = [
        f"# Model card: {out.name}",
        "",
        f"Two-stream action recognizer ({config.spatial_arch} spatial + {config.temporal_arch} temporal at {config.input_size} px, "
        f"L={config.clip_length} flow fields, flow {config.flow.algorithm}/{config.flow.preset} at {config.flow.width}x{config.flow.height}, "
        f"bound {config.flow.bound:g} px). Trained by `twostream train` on {prov.get('date', '?')} with torch {prov.get('torch', '?')}.",
        "",
        f"## Classes ({config.num_classes})",
        "",
        ", ".join(config.labels),
        "",
        "## Data",
        "",
        f"{ds.name} at `{ds.root}`: {prov.get('train_clips')} training clips, {prov.get('test_clips')} held-out test clips."
        + (f" Notes: {'; '.join(ds.notes)}." if ds.notes else ""),
        "",
        "## Reproduce",
        "",
        "```",
        prov.get("command", "?"),
        "```",
        "",
    ]
    timings = prov.get("timings", {})
    if timings:
        lines += ["Time taken (this run): " + ", ".join(f"{k.replace('_s', '')} {v:.0f} s" for k, v in timings.items()), ""]
    if metrics:
        lines += [
            "## Held-out metrics",
            "",
            f"Test protocol: {metrics['protocol']['samples_per_video']} equally spaced frames / flow stacks per video, "
            f"{metrics['protocol']['crops']} crop(s), scores averaged; {metrics['videos']} videos.",
            "",
            "| | top-1 | top-5 | mean class |",
            "|---|---|---|---|",
        ]
        dep = metrics.get("deployed", {})
        for key, name in (
            ("spatial", "spatial stream"),
            ("temporal", "temporal stream"),
            ("fusion_avg", "fused (average)"),
            ("fusion_svm", "fused (SVM, fitted on the validation clips)"),
            ("deployed", f"**deployed: what `twostream run` outputs** ({dep.get('mode')}, spatial weight {dep.get('spatial_weight', 0):.1f})"),
        ):
            m = metrics.get(key, {})
            if m.get("top1") is not None:
                lines.append(f"| {name} | {m['top1']:.3f} | {m['top5']:.3f} | {m['mean_class']:.3f} |")
        choice = prov.get("fusion_choice", {})
        if choice.get("why"):
            lines += [
                "",
                f"Fusion: {choice.get('why', '')}"
                + (
                    f" (validation top-1 on {choice['clips']} clips: spatial {choice['spatial']:.3f}, temporal {choice['temporal']:.3f}, "
                    f"best mix {choice['best_mixed']:.3f} at spatial weight {choice['best_mixed_weight']:.1f})."
                    if "clips" in choice
                    else "."
                ),
            ]
        fam = choice.get("familiarity", {})
        if fam.get("threshold") is not None:
            lines += [
                "",
                f"Familiarity: a frame whose spatial features are less like every class's prototype (cosine) than "
                f"{fam['threshold']:.3f} is also no known action: the model has seen nothing like it "
                f"(calibrated on {fam['frames']} {fam['on']} and frames of the procedural world).",
            ]
        unk = choice.get("unknown", {})
        if unk.get("threshold") is not None:
            lines += [
                "",
                f'"No known action": a frame whose fused top score is below {unk["threshold"]:.2f} is shown as no known action '
                f"(calibrated on {unk['frames']} validation frames: {unk['correct_frames_below']:.0%} of the correctly recognised ones fall below it; "
                "`--min-score` changes it).",
            ]
        scored = "the fused scores" if config.trained else f"the {metrics['streams'][0]} stream's scores"
        if not config.trained:
            lines += [
                "",
                f"Only the {metrics['streams'][0]} stream is trained so far; fused figures come once both are "
                f"(`twostream train --stream {'spatial' if metrics['streams'][0] == 'temporal' else 'temporal'} --out {out}`).",
            ]
        lines += ["", f"Confusion matrix of {scored}: `confusion.png`; everything in `metrics.json`.", ""]
    else:
        lines += ["## Metrics", "", "Not evaluated (`--no-eval`, or no test clips).", ""]
    inits = prov.get("init", {})
    if inits:
        from ..nets.imagenet import SOURCE

        lines += (
            ["## Weights", ""]
            + [
                f"- {st}: "
                + (
                    f"initialised from {SOURCE}, then fine-tuned"
                    if src == "imagenet"
                    else "trained from scratch"
                    if src == "none"
                    else f"initialised from `{src}`"
                )
                for st, src in inits.items()
            ]
            + [""]
        )
    lines += [
        "## Intended use and limits",
        "",
        "Recognises the classes above from a live camera, stream or file with `twostream run --model " + str(out) + "`. "
        "It has only seen the training data described here; expect it to be wrong on anything else.",
        "",
    ]
    (out / "MODEL_CARD.md").write_text("\n".join(lines))


INT8_HEADING = "## int8 nets for the CPU"


def add_int8_to_card(model_dir: Path, meta: dict, command: str) -> None:
    """`twostream quantize` records its nets and their check in the model card (its section replaced on a rerun)
    and its command under "Reproduce"."""
    card = model_dir / "MODEL_CARD.md"
    if not card.is_file():
        return
    text = card.read_text()
    h, nets = meta["held_out"], meta["nets"]
    v = meta["variant"]
    dep, right = h["deployed_top1"], h["frames_named_right"]
    files = ", ".join(f"`int8/{n}.onnx`" for n in nets)
    section = [
        INT8_HEADING,
        "",
        f"{files}: the {' and '.join(nets)} net{'s' if len(nets) > 1 else ''} in int8 (`twostream quantize`: ONNX Runtime {meta['quantisation']}, "
        f"calibrated on {meta['calibration']['clips']} training clips). On the {h['clips']} held-out clips: deployed top-1 "
        f"{dep[v]:.3f} (fp32 {dep['fp32']:.3f}), frames named and right {right[v]:.1%} (fp32 {right['fp32']:.1%}); "
        + ("so `auto` runs it on a CPU." if meta["auto_uses_it"] else "it loses too much there, so `auto` keeps fp32 (`--engine onnxruntime-int8` runs it)."),
        "",
    ]
    if INT8_HEADING in text:  # a rerun: drop the old section (up to the next heading)
        head, _, rest = text.partition(INT8_HEADING)
        nxt = rest.find("\n## ")
        text = head + (rest[nxt + 1 :] if nxt >= 0 else "")
    marker = "## Intended use and limits"
    text = text.replace(marker, "\n".join(section) + "\n" + marker, 1) if marker in text else text + "\n" + "\n".join(section)
    start = text.find("## Reproduce")
    block_end = text.find("```", text.find("```", start) + 3) if start >= 0 else -1
    if block_end >= 0 and command not in text[start:block_end]:
        text = text[:block_end] + command + "\n" + text[block_end:]
    card.write_text(text)
