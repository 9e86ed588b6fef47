"""Benchmark: training throughput, Trainer overhead, memory and the offline default run, on
this CPU with 2 threads; every ratio is measured side by side in one run.

Models: ``tiny`` (:func:`deepfake_lib.modeling.models.load_model` ``"tiny"``, the offline default,
feature encoder trained) and ``base`` (the wav2vec2-base architecture, ``Wav2Vec2Config()``
defaults with a 2-class head, random weights, feature encoder frozen with
``freeze_feature_encoder()``; random weights cost the same as trained ones). Batch 8, fp32,
forward + backward + optimizer step. Clips are Gaussian noise of uniform 1.5-10 s at 16 kHz
(the first one exactly 10 s), written as WAV bytes in the project's schema so that
:class:`deepfake_lib.modeling.training.ClipDataset` decodes them as it decodes real data.

Parts:

* **A. Padding strategy**: samples/s of (1) dynamic padding of random 4 s crops
  (``ClipDataset(max_samples=64000)`` + ``AudioCollator``, what ``fine_tune``
  does) against (2) whole clips padded to the longest clip of the dataset
  (``AudioCollator(pad_to_samples=max_len)``), alternating step by step on one model. Also
  the padded batch length and the share of real audio in a batch.
* **B. Trainer overhead**: the same initial weights and the same fixed crops (3 s tiny, 4 s
  base) in the same order through (1) ``train.DetectorTrainer`` with the
  ``TrainingArguments`` of ``fine_tune`` (eval/save off, ``max_steps``, sequential sampler)
  and (2) a plain loop (AdamW, same lr and weight decay, same collator) on a copy of the
  model, one plain step right after each Trainer step (from a callback, outside the Trainer
  step's timing) so both see the same host load. Target: Trainer >= 0.85 of plain, checked on
  the median per-pair ratio. Warm-up steps are excluded on both sides; the Trainer's set-up
  time is reported separately.
* **C. Peak memory** of a base training step (batch 8 of 4 s) with and without gradient
  checkpointing, each in its own subprocess (peak RSS from ``resource.getrusage`` there).
* **D. The offline default end to end**: ``prepare_data`` (corpus generation, timed in its
  own subprocess, with ``DEEPFAKE_LIB_HOME`` pointed at a temporary folder so the corpus is
  generated cold), then ``fine_tune(ExperimentConfig(run_dir=...))`` in a second
  subprocess: train seconds, peak RSS, test EER with 95% CI, shortcut-control EER, best
  epoch, epochs run, and PASS/FAIL lines for the targets (never asserted). Repeated for
  seeds 1 and 2 (``--seeds``), each with its own corpus, split and initialisation, because
  one 90-clip test split moves by 1.1 points per clip and the same seed trains differently on
  AVX2 and AVX-512 CPUs.
* **GPU**: with CUDA, A(1) for base under fp16 autocast, next to the study's 2.8 samples/s
  on a T4; otherwise the JSON says the GPU is not available.

A 0.3 s fp32 matmul probe (GFLOP/s) brackets every timed section, because the shared host's
speed varies for minutes at a time.

Usage: ``python benchmarks/bench_training.py [--quick] [--skip-default-run | --only-default-run]
[--seeds 0,1,2]``. ``--quick`` runs the tiny model only with few steps (and a small corpus in
part D) as a smoke run; ``--only-default-run`` reruns part D into the saved results.
Prints a table and writes ``benchmarks/results/training.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gauges import RESULTS_DIR, matmul_probe_gflops, peak_rss_mb, results_path

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE

THREADS = 2
BATCH = 8
CROP_SAMPLES = 64_000  # 4 s at 16 kHz: the crop of parts A(1), B (base) and C
TINY_B_CROP_SAMPLES = 48_000  # 3 s: the tiny default's max_duration_s, for part B
CLIP_RANGE_S = (1.5, 10.0)
N_CLIPS = 64
T4_STUDY_SAMPLES_PER_S = 2.8
TARGETS = {
    "test_eer_max": 0.10,
    "train_seconds_max": 180.0,
    "peak_rss_mb_max": 3 * 1024.0,
}
TRAINER_RATIO_TARGET = 0.85
LR = {
    "tiny": 5e-4,
    "base": 3e-5,
}  # tiny: the ExperimentConfig default; base: params/colab_t4.yaml (no effect on speed)
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


# ------------------------------------------------------------------------------ gauges
def vm_hwm_mb() -> float:
    """Peak resident memory of this process image (``VmHWM``), MiB: unlike ``ru_maxrss`` it
    never includes the parent's high-water mark, which Linux carries across fork/exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def current_rss_mb() -> float:
    """Resident memory of this process now, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ------------------------------------------------------------------------------ data and models
def make_noise_dataset(n_clips: int = N_CLIPS, *, seed: int = 0) -> Any:
    """Gaussian-noise clips of uniform 1.5-10 s at 16 kHz (clip 0 exactly 10 s), as a
    ``datasets.Dataset`` with ``clip_id``, ``label`` and ``audio`` (WAV bytes), alternating labels."""
    import datasets
    import soundfile as sf

    rng = np.random.default_rng(seed)
    durations = rng.uniform(*CLIP_RANGE_S, size=n_clips)
    durations[0] = CLIP_RANGE_S[1]
    audio, ids = [], []
    for i, d in enumerate(durations):
        wave = (0.1 * rng.standard_normal(int(round(d * TARGET_SAMPLE_RATE)))).astype(np.float32)
        buf = io.BytesIO()
        sf.write(buf, wave, TARGET_SAMPLE_RATE, format="WAV", subtype="FLOAT")
        audio.append({"bytes": buf.getvalue(), "path": f"noise_{i:03d}.wav"})
        ids.append(f"noise_{i:03d}")
    return datasets.Dataset.from_dict(
        {"clip_id": ids, "label": [i % 2 for i in range(n_clips)], "audio": audio}
    )


def build_model(name: str, *, seed: int = 0) -> tuple[Any, Any]:
    """``(model, feature_extractor)`` for ``"tiny"`` (the offline default as ``fine_tune`` loads
    it) or ``"base"`` (wav2vec2-base architecture, random weights, feature encoder frozen)."""
    if name == "tiny":
        from deepfake_lib.modeling.models import load_model

        loaded = load_model("tiny", seed=seed)
        return loaded.model, loaded.feature_extractor
    if name == "base":
        from transformers import AutoModelForAudioClassification, Wav2Vec2Config, Wav2Vec2FeatureExtractor

        torch.manual_seed(seed)
        cfg = Wav2Vec2Config(
            num_labels=len(LABEL_NAMES),
            id2label=dict(enumerate(LABEL_NAMES)),
            label2id={n: i for i, n in enumerate(LABEL_NAMES)},
        )
        model = AutoModelForAudioClassification.from_config(cfg)
        model.freeze_feature_encoder()
        return model, Wav2Vec2FeatureExtractor()  # wav2vec2-base: group norm, no attention mask
    raise ValueError(f"unknown model {name!r}; expected tiny or base")


def count_trainable(model: torch.nn.Module) -> tuple[int, int]:
    return (
        sum(p.numel() for p in model.parameters()),
        sum(p.numel() for p in model.parameters() if p.requires_grad),
    )


class RecordingCollator:
    """Wraps a collator and records, per batch, the padded length and the real (unpadded) samples."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.padded: list[int] = []
        self.real: list[int] = []

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        out = self.inner(features)
        self.padded.append(int(out["input_values"].shape[1]) * len(features))
        self.real.append(sum(min(len(f["input_values"]), out["input_values"].shape[1]) for f in features))
        return out

    def summary(self) -> dict[str, float]:
        if not self.padded:
            return {}
        return {
            "mean_padded_s": float(np.mean(self.padded)) / BATCH / TARGET_SAMPLE_RATE,
            "real_audio_fraction": float(np.sum(self.real) / np.sum(self.padded)),
        }


def cycle(loader: Any) -> Iterator[dict[str, torch.Tensor]]:
    """Endless batches: the loader again and again (a training dataset re-crops every pass)."""
    while True:
        yield from loader


class FixedItems(torch.utils.data.Dataset):
    """Pre-built items (fixed equal-length crops): every consumer sees the same tensors."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def fixed_crops(
    waves: list[np.ndarray], labels: np.ndarray, n_items: int, n_samples: int, *, seed: int = 0
) -> FixedItems:
    """``n_items`` random crops (repeat-padded when short) of ``n_samples`` samples, cycling over the clips."""
    from deepfake_lib.audio.signal import crop_or_pad

    rng = np.random.default_rng(seed)
    items = [
        {
            "input_values": crop_or_pad(waves[i % len(waves)], n_samples, rng=rng),
            "labels": int(labels[i % len(waves)]),
        }
        for i in range(n_items)
    ]
    return FixedItems(items)


# ------------------------------------------------------------------------------ training loops
class PlainStepper:
    """A plain PyTorch training step: fetch a batch, forward, cross-entropy, backward, AdamW step."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        lr: float,
        weight_decay: float = 0.01,
        device: str = "cpu",
        amp_dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model.to(device)
        self.model.train()
        self.device = device
        self.amp_dtype = amp_dtype
        self.opt = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay
        )
        self.scaler = torch.amp.GradScaler(device) if amp_dtype == torch.float16 else None
        self.last_loss = float("nan")

    def step(self, batches: Iterator[dict[str, torch.Tensor]]) -> float:
        """One training step on ``next(batches)``; its seconds, data fetch included."""
        t0 = time.perf_counter()
        batch = {k: v.to(self.device) for k, v in next(batches).items()}
        labels = batch.pop("labels")
        autocast = (
            torch.autocast(self.device, dtype=self.amp_dtype) if self.amp_dtype else contextlib.nullcontext()
        )
        with autocast:
            logits = self.model(**batch).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.last_loss = float(loss.detach())
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0


def rate_from_steps(step_s: list[float], warmup: int) -> dict[str, Any]:
    """samples/s from step durations, skipping the first ``warmup`` steps: over their sum
    (``samples_per_s``) and from the median step (``samples_per_s_median``, robust to bursts
    of load from other processes on the shared host)."""
    warmup = max(0, min(warmup, len(step_s) - 1))
    timed = np.asarray(step_s[warmup:], dtype=float)
    return {
        "samples_per_s": BATCH * len(timed) / float(timed.sum()),
        "samples_per_s_median": BATCH / float(np.median(timed)),
        "s_per_step": float(timed.mean()),
        "step_s": [round(float(x), 3) for x in step_s],
        "steps": len(step_s),
        "steps_timed": len(timed),
    }


def trainer_arguments(
    output_dir: str, *, max_steps: int, lr: float, weight_decay: float = 0.01, seed: int = 0
) -> Any:
    """``fine_tune``'s TrainingArguments on CPU, with evaluation and saving off, ``max_steps``
    steps and a sequential sampler (so the batches come in the plain loop's order)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=BATCH,
        gradient_accumulation_steps=1,
        learning_rate=lr,
        weight_decay=weight_decay,
        max_steps=max_steps,
        lr_scheduler_type="linear",
        warmup_steps=int(0.1 * max_steps),
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="epoch",
        seed=seed,
        data_seed=seed,
        use_cpu=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,
        max_grad_norm=1.0,
        ddp_find_unused_parameters=True,
        train_sampling_strategy="sequential",
    )


def make_paired_clock(plain: PlainStepper, plain_batches: Iterator[dict[str, torch.Tensor]]) -> Any:
    """A TrainerCallback that times every Trainer step (``on_step_end`` to ``on_step_end``)
    and, right after it, runs and times one plain step, so both see the same host load."""
    from transformers import TrainerCallback

    class PairedClock(TrainerCallback):
        def __init__(self) -> None:
            self.begin = self.resume = 0.0
            self.trainer_s: list[float] = []
            self.plain_s: list[float] = []

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.begin = self.resume = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.trainer_s.append(time.perf_counter() - self.resume)
            self.plain_s.append(plain.step(plain_batches))
            self.resume = time.perf_counter()

    return PairedClock()


def train_with_trainer(
    model: torch.nn.Module, fe: Any, dataset: FixedItems, *, n_steps: int, lr: float, tmp: Path, clock: Any
) -> dict[str, Any]:
    """The project's DetectorTrainer (``train.DetectorTrainer``) over ``dataset`` for
    ``n_steps`` steps, with ``clock`` as a callback; set-up and call times."""
    from transformers.trainer_callback import PrinterCallback

    from deepfake_lib.modeling.training import AudioCollator, DetectorTrainer

    t0 = time.perf_counter()
    trainer = DetectorTrainer(
        model=model,
        args=trainer_arguments(str(tmp / "trainer"), max_steps=n_steps, lr=lr),
        train_dataset=dataset,
        data_collator=AudioCollator(fe),
        processing_class=fe,
        callbacks=[clock],
    )
    trainer.remove_callback(PrinterCallback)
    t1 = time.perf_counter()
    out = trainer.train()
    t2 = time.perf_counter()
    result = {
        "construct_s": t1 - t0,
        "train_call_s": t2 - t1,
        "setup_s": (t1 - t0) + (clock.begin - t1),
        "final_loss": float(out.training_loss),
        "threads_after": torch.get_num_threads(),
    }
    del trainer
    gc.collect()
    return result


# ------------------------------------------------------------------------------ parts
def probed(fn: Any, probe_s: float) -> dict[str, Any]:
    """Run ``fn()`` between two matmul probes; its dict gains ``probe_gflops`` (before, after)
    and ``loadavg_1min`` (before, after: above 2 means other processes competed for the 2 cores)."""
    load = os.getloadavg()[0]
    before = matmul_probe_gflops(probe_s)
    result = fn()
    result["probe_gflops"] = [round(before, 1), round(matmul_probe_gflops(probe_s), 1)]
    result["loadavg_1min"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    return result


def part_padding(
    name: str,
    model: Any,
    fe: Any,
    ds: Any,
    steps: int,
    warmup: int,
    probe_s: float,
    *,
    device: str = "cpu",
    amp_dtype: torch.dtype | None = None,
    only_dynamic: bool = False,
) -> dict[str, Any]:
    """A: dynamic padding of 4 s crops against padding every batch to the dataset's longest
    clip. One model and optimizer; the two strategies alternate step by step (the order
    flips every round) so that both see the same host load."""
    from deepfake_lib.modeling.training import AudioCollator, ClipDataset

    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    plans = [("dynamic_crop_4s", CROP_SAMPLES, False)] + (
        [] if only_dynamic else [("pad_to_longest", None, True)]
    )
    batches, collators, pad_to = {}, {}, {}
    for label, max_samples, pad in plans:
        clips = ClipDataset(ds, max_samples=max_samples, seed=0)
        for i in range(len(clips)):
            clips.load(i)  # decode outside the timed section
        pad_to[label] = max(len(clips.load(i)) for i in range(len(clips))) if pad else None
        collators[label] = RecordingCollator(AudioCollator(fe, pad_to_samples=pad_to[label]))
        loader = torch.utils.data.DataLoader(
            clips,
            batch_size=BATCH,
            shuffle=True,
            collate_fn=collators[label],
            generator=torch.Generator().manual_seed(0),
        )
        batches[label] = cycle(loader)
    torch.manual_seed(0)
    stepper = PlainStepper(model, lr=LR[name], device=device, amp_dtype=amp_dtype)
    times: dict[str, list[float]] = {label: [] for label, _, _ in plans}

    def run() -> dict[str, Any]:
        for k in range(steps):
            for label, _, _ in plans if k % 2 == 0 else plans[::-1]:
                times[label].append(stepper.step(batches[label]))  # noqa: F821 - called before the del below
        return {}

    shared = probed(run, probe_s)
    out: dict[str, Any] = {}
    for label, _, _ in plans:
        res = rate_from_steps(times[label], warmup) | collators[label].summary()
        res.update(pad_to_samples=pad_to[label], **shared)
        res["samples_per_s_per_100_gflops"] = (
            res["samples_per_s"] * 100.0 / float(np.mean(shared["probe_gflops"]))
        )
        out[label] = res
        print(
            f"  A {name:4s} {label:16s} {res['samples_per_s']:7.2f} samples/s (median step {res['samples_per_s_median']:6.2f})  "
            f"padded {res['mean_padded_s']:.1f} s  probe {res['probe_gflops']}  load {res['loadavg_1min']}",
            flush=True,
        )
    model.load_state_dict(init)
    del stepper
    gc.collect()
    if not only_dynamic:
        d, p = out["dynamic_crop_4s"], out["pad_to_longest"]
        out["speedup_dynamic_over_padded"] = d["samples_per_s"] / p["samples_per_s"]
        out["speedup_median"] = d["samples_per_s_median"] / p["samples_per_s_median"]
    return out


def part_trainer(
    name: str, model: Any, fe: Any, ds: Any, steps: int, warmup: int, probe_s: float, tmp: Path
) -> dict[str, Any]:
    """B: the project's Trainer against a plain loop on the same fixed crops in the same order.

    The plain loop runs on a copy of the model (same initial weights) with its own AdamW, one
    step right after each Trainer step (from a callback, outside the Trainer step's timing),
    so the pair sees the same host load. Ratios: of the summed steps, of the median steps,
    and the median of the per-pair ratios (the one checked against the target)."""
    import copy

    from deepfake_lib.modeling.training import AudioCollator
    from deepfake_lib.scoring import EvalClips

    clips = EvalClips.from_split(ds)
    waves = [clips.load(i) for i in range(len(clips))]
    n_samples = TINY_B_CROP_SAMPLES if name == "tiny" else CROP_SAMPLES
    items = fixed_crops(waves, clips.labels, steps * BATCH, n_samples)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    plain_model = copy.deepcopy(model)
    plain = PlainStepper(plain_model, lr=LR[name])
    plain_batches = iter(
        torch.utils.data.DataLoader(items, batch_size=BATCH, shuffle=False, collate_fn=AudioCollator(fe))
    )
    clock = make_paired_clock(plain, plain_batches)
    torch.manual_seed(0)
    run = probed(
        lambda: train_with_trainer(model, fe, items, n_steps=steps, lr=LR[name], tmp=tmp, clock=clock),  # noqa: F821
        probe_s,
    )
    model.load_state_dict(init)
    out: dict[str, Any] = {
        "crop_s": n_samples / TARGET_SAMPLE_RATE,
        "trainer": rate_from_steps(clock.trainer_s, warmup),
        "plain": rate_from_steps(clock.plain_s, warmup),
        **run,
        "plain_final_loss": plain.last_loss,
    }
    pairs = np.asarray(clock.plain_s[warmup:]) / np.asarray(clock.trainer_s[warmup:])
    out["ratio_trainer_over_plain"] = out["trainer"]["samples_per_s"] / out["plain"]["samples_per_s"]
    out["ratio_median_steps"] = out["trainer"]["samples_per_s_median"] / out["plain"]["samples_per_s_median"]
    out["ratio_paired_median"] = float(np.median(pairs))
    out["target"] = TRAINER_RATIO_TARGET
    out["meets_target"] = bool(out["ratio_paired_median"] >= TRAINER_RATIO_TARGET)
    print(
        f"  B {name:4s} plain {out['plain']['samples_per_s']:7.2f}  trainer {out['trainer']['samples_per_s']:7.2f} samples/s  "
        f"ratio {out['ratio_trainer_over_plain']:.2f} (paired median {out['ratio_paired_median']:.2f})  "
        f"probe {out['probe_gflops']}  load {out['loadavg_1min']}",
        flush=True,
    )
    del plain, plain_model, clock
    gc.collect()
    return out


def run_child(
    kind: str, payload: dict[str, Any], *, env: dict[str, str] | None = None, timeout: float = 1800
) -> dict[str, Any]:
    """Run this script as ``--child kind`` in a fresh process; its JSON result (or the error).

    The child is started through a small launcher process: on Linux a process's
    ``ru_maxrss`` starts at the high-water mark of the process that spawned it (kept across
    fork/exec), so a child spawned straight from this (large) process would report at least
    this process's peak."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out_path = f.name
    cmd = [
        sys.executable,
        "-c",
        LAUNCHER,
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        "--child-args",
        json.dumps(payload),
        "--child-out",
        out_path,
    ]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-2000:]
            return {"error": f"child {kind} exited {proc.returncode}", "output_tail": tail, "wall_s": wall}
        result = json.loads(Path(out_path).read_text())
        result["child_wall_s"] = wall
        return result
    except subprocess.TimeoutExpired:
        return {"error": f"child {kind} ran past {timeout:.0f} s"}
    finally:
        with contextlib.suppress(OSError):
            os.unlink(out_path)


def part_memory(name: str, steps: int, warmup: int) -> dict[str, Any]:
    """C: peak RSS and samples/s of a training step, without and with gradient checkpointing."""
    out: dict[str, Any] = {}
    for label, ckpt in (("no_checkpointing", False), ("checkpointing", True)):
        res = run_child("memory", {"model": name, "checkpointing": ckpt, "steps": steps, "warmup": warmup})
        out[label] = res
        if "error" in res:
            print(f"  C {name:4s} {label:16s} ERROR {res['error']}\n{res.get('output_tail', '')}", flush=True)
        else:
            print(
                f"  C {name:4s} {label:16s} peak {res['peak_rss_mb']:7.0f} MB  {res['samples_per_s']:6.2f} samples/s  "
                f"probe {res['probe_gflops']}",
                flush=True,
            )
    if all("peak_rss_mb" in v for v in out.values()):
        out["peak_ratio_checkpointing"] = (
            out["checkpointing"]["peak_rss_mb"] / out["no_checkpointing"]["peak_rss_mb"]
        )
        out["speed_ratio_checkpointing"] = (
            out["checkpointing"]["samples_per_s"] / out["no_checkpointing"]["samples_per_s"]
        )
    return out


def child_memory(args: dict[str, Any]) -> dict[str, Any]:
    """One model, batch 8 of 4 s noise: peak RSS (getrusage) after ``steps`` training steps."""
    from deepfake_lib.modeling.training import AudioCollator

    rss_start = current_rss_mb()
    model, fe = build_model(args["model"])
    method = None
    if args["checkpointing"]:
        # transformers 5.x deprecates gradient_checkpointing_enable in favour of activation_checkpointing_enable
        method = (
            "activation_checkpointing_enable"
            if hasattr(model, "activation_checkpointing_enable")
            else "gradient_checkpointing_enable"
        )
        getattr(model, method)()
    rss_model = current_rss_mb()
    rng = np.random.default_rng(0)
    feats = [
        {"input_values": (0.1 * rng.standard_normal(CROP_SAMPLES)).astype(np.float32), "labels": i % 2}
        for i in range(BATCH)
    ]
    batch = AudioCollator(fe)(feats)
    torch.manual_seed(0)
    stepper = PlainStepper(model, lr=LR[args["model"]])
    res = probed(
        lambda: rate_from_steps(
            [stepper.step(iter([dict(batch)])) for _ in range(args["steps"])], args["warmup"]
        ),
        0.3,
    )
    res["final_loss"] = stepper.last_loss
    res["peak_rss_mb_after_steps"] = peak_rss_mb()
    # a gradient checkpointing mistake shows as transformer layers without gradients
    model.zero_grad(set_to_none=False)
    b = dict(batch)
    labels = b.pop("labels")
    torch.nn.functional.cross_entropy(model(**b).logits, labels).backward()
    layer0 = next(p for n, p in model.named_parameters() if "encoder.layers.0." in n and p.requires_grad)
    res.update(
        peak_rss_mb=peak_rss_mb(),
        vm_hwm_mb=vm_hwm_mb(),
        rss_at_start_mb=rss_start,
        rss_after_model_mb=rss_model,
        checkpointing_method=method,
        checkpointing_active=bool(
            model.is_activation_checkpointing
            if hasattr(type(model), "is_activation_checkpointing")
            else model.is_gradient_checkpointing
        ),
        layer0_grad_nonzero=bool(layer0.grad is not None and float(layer0.grad.abs().sum()) > 0),
    )
    return res


def part_default_run(quick: bool, tmp: Path, seeds: Sequence[int] = (0,)) -> dict[str, Any]:
    """D: prepare_data (cold, own process) then fine_tune on the default config (own process).

    The first seed is the default run (``fine_tune``); each further seed repeats it on its own
    corpus, split and initialisation (``other_seeds``), so the spread of the test EER shows."""
    cfg_kwargs: dict[str, Any] = {"run_dir": str(tmp / "default_run")}
    if quick:
        cfg_kwargs.update(n_utterances=24, epochs=2, patience=1, n_bootstrap=50)
    env = dict(os.environ, DEEPFAKE_LIB_HOME=str(tmp / "home"))
    out: dict[str, Any] = {
        "config_overrides": {k: v for k, v in cfg_kwargs.items() if k != "run_dir"},
        "corpus_home": "a fresh temporary DEEPFAKE_LIB_HOME (corpus generated cold)",
        "seed": seeds[0],
    }
    before = matmul_probe_gflops()
    out["prepare"] = run_child("prepare", {**cfg_kwargs, "seed": seeds[0]}, env=env)
    out["fine_tune"] = run_child("default_run", {**cfg_kwargs, "seed": seeds[0]}, env=env)
    out["other_seeds"] = []
    for seed in seeds[1:]:
        print(f"D: seed {seed} ...", flush=True)
        r = run_child(
            "default_run",
            {**cfg_kwargs, "seed": seed, "run_dir": str(tmp / f"default_run_seed{seed}")},
            env=env,
        )
        out["other_seeds"].append(
            {
                "seed": seed,
                **{
                    k: r.get(k)
                    for k in (
                        "test_eer",
                        "test_eer_ci95",
                        "test_auc",
                        "validation_eer",
                        "shortcut_eer",
                        "train_seconds",
                        "peak_rss_mb",
                        "best_epoch",
                        "epochs_run",
                        "error",
                    )
                },
            }
        )
    runs = [out["fine_tune"], *out["other_seeds"]]
    eers = [r.get("test_eer") for r in runs if r.get("test_eer") is not None]
    if eers:
        out["seed_summary"] = {
            "seeds": list(seeds),
            "test_eer": eers,
            "mean": float(np.mean(eers)),
            "min": min(eers),
            "max": max(eers),
            "n_at_or_below_target": sum(e <= TARGETS["test_eer_max"] for e in eers),
        }
    out["probe_gflops"] = [round(before, 1), round(matmul_probe_gflops(), 1)]
    for part in ("prepare", "fine_tune"):
        if "error" in out[part]:
            print(f"  D {part} ERROR {out[part]['error']}\n{out[part].get('output_tail', '')}", flush=True)
    ft = out["fine_tune"]
    if "error" not in ft:
        checks = {
            "test_eer": (
                ft["test_eer"],
                ft["test_eer"] <= TARGETS["test_eer_max"],
                f"<= {TARGETS['test_eer_max']}",
            ),
            "train_seconds": (
                ft["train_seconds"],
                ft["train_seconds"] < TARGETS["train_seconds_max"],
                f"< {TARGETS['train_seconds_max']:.0f}",
            ),
            "peak_rss_mb": (
                ft["peak_rss_mb"],
                ft["peak_rss_mb"] < TARGETS["peak_rss_mb_max"],
                f"< {TARGETS['peak_rss_mb_max']:.0f} (3 GiB)",
            ),
        }
        out["targets"] = {k: {"value": v, "target": t, "pass": bool(ok)} for k, (v, ok, t) in checks.items()}
        if quick:
            out["targets_note"] = (
                "quick run on a reduced config: the targets apply to the default config only"
            )
    return out


def child_prepare(args: dict[str, Any]) -> dict[str, Any]:
    """Generate (cold) and split the corpus of the config; seconds and clip counts."""
    from deepfake_lib.config import ExperimentConfig
    from deepfake_lib.corpora.experiment_data import prepare_data

    cfg = ExperimentConfig(**args)
    t0 = time.perf_counter()
    splits, report = prepare_data(cfg)
    seconds = time.perf_counter() - t0
    return {
        "prepare_seconds": seconds,
        "n_clips": {k: len(v) for k, v in splits.items()},
        "peak_rss_mb": peak_rss_mb(),
        "vm_hwm_mb": vm_hwm_mb(),
    }


def child_default_run(args: dict[str, Any]) -> dict[str, Any]:
    """fine_tune on the (now cached) corpus of the config; the figures part D reports."""
    from deepfake_lib.config import ExperimentConfig
    from deepfake_lib.corpora.experiment_data import prepare_data
    from deepfake_lib.modeling.training import fine_tune

    cfg = ExperimentConfig(**args)
    t0 = time.perf_counter()
    splits, _ = prepare_data(cfg)
    t1 = time.perf_counter()
    result = fine_tune(cfg, data=splits)
    t2 = time.perf_counter()
    m = result.metrics
    test_ci = (m["test"].get("ci") or {}).get("eer")
    sc = m.get("shortcut_control") or {}
    return {
        "load_cached_corpus_seconds": t1 - t0,
        "train_seconds": m["train_seconds"],
        "fine_tune_call_seconds": t2 - t1,
        "peak_rss_mb": peak_rss_mb(),
        "vm_hwm_mb": vm_hwm_mb(),
        "fine_tune_reported_peak_rss_mb": m["peak_rss_mb"],
        "test_eer": m["test"]["eer"],
        "test_eer_ci95": list(test_ci) if test_ci else None,
        "test_auc": m["test"]["auc"],
        "test_accuracy": m["test"]["accuracy"],
        # ASVspoof 5 costs and calibration (deepfake_lib.evaluation.metrics; absent from runs before they existed)
        **{f"test_{k}": m["test"][k] for k in ("min_dcf", "act_dcf", "cllr", "min_cllr") if k in m["test"]},
        "validation_eer": m["validation"]["eer"],
        "shortcut_eer": sc.get("eer"),
        "shortcut_features": list(sc.get("features") or []),
        "shortcut_eer_ci95": list((sc.get("ci") or {}).get("eer") or []) or None,
        "shortcut_auc": sc.get("auc"),
        "best_epoch": m["best_epoch"],
        "epochs_run": m["epochs_run"],
        "n_clips": m["n_clips"],
        "n_parameters": m["n_parameters"],
        "history": result.history.round(4).to_dict(orient="records"),
    }


def part_gpu(probe_s: float) -> Any:
    """A(1) for base on CUDA under fp16 autocast, next to the study's T4 figure."""
    if not torch.cuda.is_available():
        return "not available on this machine"
    model, fe = build_model("base")
    ds = make_noise_dataset()
    res = part_padding(
        "base",
        model,
        fe,
        ds,
        steps=23,
        warmup=3,
        probe_s=probe_s,
        device="cuda",
        amp_dtype=torch.float16,
        only_dynamic=True,
    )["dynamic_crop_4s"]
    res.update(
        device_name=torch.cuda.get_device_name(0),
        precision="fp16 autocast",
        study_t4_samples_per_s=T4_STUDY_SAMPLES_PER_S,
        ratio_to_study_t4=res["samples_per_s"] / T4_STUDY_SAMPLES_PER_S,
        note="probe_gflops is the CPU probe",
    )
    del model
    torch.cuda.empty_cache()
    return res


def machine_facts() -> dict[str, Any]:
    """CPU, cores and library versions of this machine (the same seed trains differently on AVX2 and AVX-512)."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def save_report(report: dict[str, Any], out: Path) -> None:
    """Write the results JSON atomically (a temporary file, then a rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(out.suffix + ".tmp")
    tmp_out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    os.replace(tmp_out, out)


def update_default_run(out: Path, quick: bool, seeds: Sequence[int], started: float) -> None:
    """``--only-default-run``: rerun part D and replace it in the saved results, noting this machine."""
    if not out.exists():
        raise SystemExit(f"{out}: no saved results to update; run the whole benchmark first")
    report = json.loads(out.read_text())
    print("D: prepare_data, then fine_tune (subprocesses) ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmpdir:
        report["default_run"] = part_default_run(quick, Path(tmpdir), seeds)
    report["default_run_machine"] = machine_facts()
    report["default_run_wall_s"] = time.perf_counter() - started
    print_table(report)
    save_report(report, out)
    print(f"\nupdated part D in {out} ({report['default_run_wall_s']:.0f} s)")


# ------------------------------------------------------------------------------ report
def fmt(x: Any, spec: str = ".2f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "-"


def print_table(report: dict[str, Any]) -> None:
    print("\nA. padding strategy (batch 8, fp32, forward+backward+AdamW step)")
    print(
        f"{'model':6s} {'strategy':18s} {'samples/s':>10s} {'median':>8s} {'s/step':>8s} {'padded s':>9s} {'real audio':>11s} "
        f"{'probe GFLOP/s':>15s} {'load':>12s}"
    )
    for name, r in report["padding"].items():
        for label in ("dynamic_crop_4s", "pad_to_longest"):
            x = r[label]
            print(
                f"{name:6s} {label:18s} {fmt(x['samples_per_s']):>10s} {fmt(x['samples_per_s_median']):>8s} "
                f"{fmt(x['s_per_step']):>8s} {fmt(x['mean_padded_s'], '.1f'):>9s} {fmt(x['real_audio_fraction'], '.0%'):>11s} "
                f"{str(x['probe_gflops']):>15s} {str(x['loadavg_1min']):>12s}"
            )
        print(
            f"{name:6s} {'dynamic / padded':18s} {fmt(r['speedup_dynamic_over_padded']):>10s}x "
            f"(median steps {fmt(r['speedup_median'])}x)"
        )
    print("\nB. Trainer overhead (same fixed crops, same order; a plain step after every Trainer step)")
    print(
        f"{'model':6s} {'crop s':>6s} {'plain/s':>8s} {'trainer/s':>10s} {'ratio':>6s} {'median':>7s} {'paired':>7s} "
        f"{'target':>7s} {'setup s':>8s} {'probe GFLOP/s':>15s}"
    )
    for name, r in report["trainer_overhead"].items():
        print(
            f"{name:6s} {r['crop_s']:6.1f} {r['plain']['samples_per_s']:8.2f} {r['trainer']['samples_per_s']:10.2f} "
            f"{r['ratio_trainer_over_plain']:6.2f} {r['ratio_median_steps']:7.2f} {r['ratio_paired_median']:7.2f} "
            f"{'PASS' if r['meets_target'] else 'FAIL':>7s} {r['setup_s']:8.2f} {str(r['probe_gflops']):>15s}"
        )
    print("\nC. peak memory of a training step (batch 8 of 4 s, own subprocess each)")
    print(
        f"{'model':6s} {'variant':18s} {'peak RSS MB':>12s} {'after model MB':>15s} {'samples/s':>10s} {'grads ok':>9s} {'probe':>15s}"
    )
    for name, r in report["memory"].items():
        for label in ("no_checkpointing", "checkpointing"):
            x = r[label]
            print(
                f"{name:6s} {label:18s} {fmt(x.get('peak_rss_mb'), '.0f'):>12s} {fmt(x.get('rss_after_model_mb'), '.0f'):>15s} "
                f"{fmt(x.get('samples_per_s')):>10s} {str(x.get('layer0_grad_nonzero', '-')):>9s} {str(x.get('probe_gflops', '-')):>15s}"
            )
    d = report.get("default_run")
    print("\nD. offline default end to end")
    if not isinstance(d, dict):
        print(f"  {d}")
    else:
        p, ft = d["prepare"], d["fine_tune"]
        if "error" not in p:
            print(f"  prepare_data (cold corpus): {p['prepare_seconds']:.1f} s, clips {p['n_clips']}")
        if "error" not in ft:
            ci = ft["test_eer_ci95"]
            print(
                f"  train {ft['train_seconds']:.1f} s (fine_tune call {ft['fine_tune_call_seconds']:.1f} s), "
                f"peak RSS {ft['peak_rss_mb']:.0f} MB, epochs run {ft['epochs_run']}, best epoch {ft['best_epoch']}"
            )
            print(
                f"  test EER {ft['test_eer']:.3f} [{fmt(ci[0] if ci else None, '.3f')}, {fmt(ci[1] if ci else None, '.3f')}]"
                f"  AUC {ft['test_auc']:.3f}  shortcut-control EER {fmt(ft['shortcut_eer'], '.3f')}"
            )
            summary = d.get("seed_summary")
            if summary and len(summary["seeds"]) > 1:
                print(
                    f"  test EER over seeds {summary['seeds']}: {[round(e, 3) for e in summary['test_eer']]} "
                    f"(mean {summary['mean']:.3f}; {summary['n_at_or_below_target']} of {len(summary['seeds'])} "
                    f"at or below {TARGETS['test_eer_max']})"
                )
            for k, t in d["targets"].items():
                print(
                    f"  {'PASS' if t['pass'] else 'FAIL'}: {k} = {fmt(t['value'], '.3f')} (target {t['target']})"
                )
            if "targets_note" in d:
                print(f"  ({d['targets_note']})")
    gpu = report["gpu"]
    print(
        "\nGPU: "
        + (
            gpu
            if isinstance(gpu, str)
            else f"{gpu['device_name']} base fp16 {gpu['samples_per_s']:.1f} samples/s "
            f"(study T4 {T4_STUDY_SAMPLES_PER_S}; x{gpu['ratio_to_study_t4']:.1f})"
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke mode: tiny model only, few steps, small corpus in D"
    )
    parser.add_argument(
        "--skip-default-run", action="store_true", help="skip part D (the default fine_tune run)"
    )
    parser.add_argument(
        "--only-default-run",
        action="store_true",
        help="run part D only and replace its figures in the existing results file (--out)",
    )
    parser.add_argument(
        "--seeds",
        default=None,
        help="comma-separated seeds for part D; the first is the default run (default 0,1,2; --quick: 0)",
    )
    parser.add_argument(
        "--out", default=None, help="results JSON (default results/training.json; --quick: none)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-args", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    from deepfake_lib.config import quiet_libraries
    from deepfake_lib.torch_settings import set_seed

    quiet_libraries()
    if args.child:
        set_seed(0)
        fn = {"memory": child_memory, "prepare": child_prepare, "default_run": child_default_run}[args.child]
        result = fn(json.loads(args.child_args))
        Path(args.child_out).write_text(json.dumps(result, default=float))
        return

    set_seed(0)  # as fine_tune does (deterministic algorithms on), for every section alike
    started = time.perf_counter()
    seeds = [int(x) for x in (args.seeds or ("0" if args.quick else "0,1,2")).split(",")]
    if args.only_default_run:
        update_default_run(
            Path(args.out) if args.out else RESULTS_DIR / "training.json", args.quick, seeds, started
        )
        return
    probe_s = 0.2 if args.quick else 0.3
    models = ["tiny"] if args.quick else ["tiny", "base"]
    steps = {  # (steps, warm-up steps) per part and model
        "A": {"tiny": (4, 1) if args.quick else (32, 2), "base": (4, 1)},
        "B": {"tiny": (6, 2) if args.quick else (40, 4), "base": (6, 1)},
        "C": {"tiny": (2, 1) if args.quick else (3, 1), "base": (3, 1)},
    }
    print(
        f"threads {torch.get_num_threads()}; batch {BATCH}; probe {matmul_probe_gflops(probe_s):.0f} GFLOP/s",
        flush=True,
    )
    ds = make_noise_dataset(16 if args.quick else N_CLIPS)
    report: dict[str, Any] = {"padding": {}, "trainer_overhead": {}, "memory": {}}
    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmpdir:
        tmp = Path(tmpdir)
        for name in models:
            model, fe = build_model(name)
            total, trainable = count_trainable(model)
            print(f"{name}: {total:,} parameters, {trainable:,} trainable", flush=True)
            report.setdefault("models", {})[name] = {
                "parameters": total,
                "trainable": trainable,
                "lr": LR[name],
            }
            report["padding"][name] = part_padding(name, model, fe, ds, *steps["A"][name], probe_s)
            gc.collect()
            report["trainer_overhead"][name] = part_trainer(
                name, model, fe, ds, *steps["B"][name], probe_s, tmp
            )
            del model
            gc.collect()
        for name in models:
            report["memory"][name] = part_memory(name, *steps["C"][name])
        if args.skip_default_run:
            report["default_run"] = "skipped (--skip-default-run)"
        else:
            print("D: prepare_data, then fine_tune (subprocesses) ...", flush=True)
            report["default_run"] = part_default_run(args.quick, tmp, seeds)
    report["gpu"] = part_gpu(probe_s)
    report = {
        "benchmark": "training",
        "quick": bool(args.quick),
        "threads": THREADS,
        "batch_size": BATCH,
        "clips": {
            "kind": "Gaussian noise, WAV bytes through ClipDataset",
            "n": len(ds),
            "duration_range_s": list(CLIP_RANGE_S),
            "sample_rate_hz": TARGET_SAMPLE_RATE,
        },
        "machine": machine_facts(),
        "notes": [
            "base = Wav2Vec2Config() defaults (layerdrop 0.1, mask_time_prob 0.05 active in training), random weights, "
            "feature encoder frozen; tiny = load_model('tiny'), feature encoder trained",
            "plain loop: AdamW (lr, weight decay 0.01), no grad clipping, no scheduler; the Trainer adds clipping "
            "(max_grad_norm 1.0), a linear schedule with warm-up, logging and callbacks",
            "samples/s exclude the warm-up steps on both sides; Trainer set-up time is 'setup_s'; the Trainer target "
            "is checked on the median of per-step ratios (plain step time / the Trainer step time just before it)",
            "A alternates the two padding strategies step by step on one model and optimizer",
            "peak RSS: ru_maxrss (getrusage) in children started through a small launcher, because Linux carries the "
            "spawning process's high-water mark into a child's ru_maxrss; vm_hwm_mb (/proc VmHWM) cross-checks it",
            "every process here starts at about 0.9 GB RSS after importing torch (CUDA build), transformers and datasets",
            "torch.use_deterministic_algorithms(True, warn_only=True) is on, as in fine_tune",
        ],
        **report,
        "wall_s": time.perf_counter() - started,
    }
    print_table(report)
    out = results_path("training", args.out, args.quick)
    if out is not None:
        save_report(report, out)
    print(
        f"\nsaved {out} ({report['wall_s']:.0f} s)"
        if out is not None
        else f"\n({report['wall_s']:.0f} s; quick run, not saved)"
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
