"""Speed of `ganivid animate` on a generated 10 s 640x360 (or --size) one-face clip; prints one JSON line.

Measured in one run: per-stage ms/frame of the real pipeline, end-to-end fps, generator-only
fps (the same engine on the pipeline's own crops and targets), a naive loop (detect every frame,
batch 1, sequential), the pipeline with a zero-cost generator, and peak RSS of a 60 s vs the 10 s
clip (each in its own process). The headline figures give the generator one torch thread;
`default_threads` repeats end to end, generator alone and RSS at torch's default (one thread per
core), what `ganivid animate` runs: one generator thread per torch thread. The pipeline, the
pipeline without the generator and the generator alone run in interleaved rounds (`--rounds`,
default 3; the generator alone just before and just after each pipeline run) and the medians
are reported, each round's figures too: this VM's speed drifts from minute to minute. The same
ratios come from CPU time as well, and x264's default preset is compared with medium (CPU,
size, PSNR). `two_pass_bound` is the e2e/generator a run could reach with its own analysis
time, were the render pass exactly as fast as the generator alone: the generator cannot start
before the analysis ends (the smoothing runs both ways, each actor's neutral is a percentile
over the whole track), so this is the ceiling of the two-pass design on that run's machine.
Model: models/ganivid.safetensors if present, else a randomly initialised generator with the
architecture of training/ship.toml (the shipped model's), or of training/cpu.toml, or 128 px
width 32 with 4 blocks; the JSON says which.

    python benchmarks/animate_speed.py [--workdir DIR] [--rounds 3] [--model FILE] [--size 1280x720]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
W, H, FPS = 640, 360, 25


def make_clip(path: Path, seconds: float) -> Path:
    """The astronaut travelling, zooming and turning over a textured background (10 s cycle)."""
    import av
    from skimage import data

    from ganivid.align import Alignment
    from ganivid.testclips import background, render, sprite

    face, bg = sprite(data.astronaut()), background(W, H)
    out = av.open(str(path), "w")
    v = out.add_stream("libx264", rate=FPS, options={"crf": "18", "preset": "veryfast"})
    v.width, v.height, v.pix_fmt = W, H, "yuv420p"
    cycle: dict[int, np.ndarray] = {}  # the motion repeats every 10 s: render each pose once
    for i in range(round(seconds * FPS)):
        k = i % (10 * FPS)
        if k not in cycle:
            u = k / (10 * FPS)
            pose = Alignment(W * (0.35 + 0.3 * np.sin(np.pi * u)), H * (0.5 + 0.08 * np.sin(2 * np.pi * u)),
                             220 * H / 360 * (1 + 0.25 * np.sin(2 * np.pi * u)), 12 * np.sin(2 * np.pi * u))
            cycle[k] = render(bg, [(face, pose)])[0]
        f = av.VideoFrame.from_ndarray(cycle[k], format="rgb24")
        f.pts = i
        out.mux(v.encode(f))
    out.mux(v.encode())
    out.close()
    return path


def model_file(work: Path) -> tuple[Path, str]:
    """The model to measure and how it was chosen."""
    shipped = ROOT / "models" / "ganivid.safetensors"
    if shipped.is_file():
        return shipped, f"shipped {shipped.relative_to(ROOT)}"
    from dataclasses import asdict

    from ganivid.checkpoint import save_inference
    from ganivid.config import ModelConfig, load_config
    from ganivid.networks import Generator

    cfg, how = ModelConfig(image_size=128, conv_dim=32, repeat_num=4), "random init, 128 px width 32, 4 blocks"
    for preset in ("ship", "cpu"):  # the shipped model's architecture first: speed depends only on it
        try:
            cfg, how = load_config(preset)[0], f"random init, training/{preset}.toml model config"
            break
        except Exception:  # preset not there (yet): try the next
            continue
    torch.manual_seed(0)
    path = save_inference(work / "random.safetensors", Generator(cfg), cfg)
    return path, f"{how} {asdict(cfg)}"


class NullGenerator(torch.nn.Module):
    """Costs nothing but still edits: colour = the negated input, attention 0.8."""

    def forward(self, x: torch.Tensor, aus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return -x, torch.full_like(x[:, :1], 0.8)


def child(clip: str, out: str, model: str, null: bool, threads: int) -> None:
    """One animate run in this process; prints its timings and peak RSS as JSON."""
    torch.set_num_threads(threads)
    from ganivid.animate import animate
    from ganivid.engine import Engine

    from ganivid.faces import DlibDetector

    engine = Engine(NullGenerator(), Engine.from_checkpoint(model, "cpu").image_size, "cpu") if null else model
    DlibDetector()  # load the face models before the CPU clock starts (setup_s still counts them once)
    pauses, started = [0.0, 0], [0.0]

    def gc_clock(phase: str, info: dict) -> None:  # the garbage collector's pauses during the call
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[0] += time.perf_counter() - started[0]
            pauses[1] += info["generation"] == 2

    gc.callbacks.append(gc_clock)
    t, cpu = time.perf_counter(), time.process_time()
    r = animate(clip, out, expression="smile:0.8", model=engine, overwrite=True)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    gc.callbacks.remove(gc_clock)
    r.track_cache.unlink(missing_ok=True)
    print(json.dumps({"frames": r.frames, "wall": wall, "cpu": cpu, "times": r.times.__dict__,
                      "rss_mb": peak_rss_mb(), "gc_pause_ms": round(1000 * pauses[0], 1), "gc_full_runs": pauses[1]}))


def peak_rss_mb() -> float:
    """This process's peak RSS. Linux's ru_maxrss is carried over an exec from the process that
    spawned it (it read the benchmark's own ~800 MB for every child), VmHWM is not."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def busy_cpu_s() -> float | None:
    """CPU seconds all processes have used since boot (Linux /proc/stat), else None."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds of this process and its finished children."""
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def two_pass_bound(r: dict, gen_fps: float) -> float:
    """Highest e2e/generator a two-pass run `r` could reach with the analysis it had: the render
    pass exactly as fast as the generator alone (`gen_fps`), after the analysis."""
    return 1 / (1 + r["times"]["analyse_wall"] / r["frames"] * gen_fps)


def run_child(*args: str) -> dict:
    p = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if p.returncode:
        raise SystemExit(p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def pipeline_work(model: str, clip: Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """The crops, target AUs, the actor's own AUs and the crops' landmarks `animate` feeds its
    generator on `clip` (same analysis, smoothed alignments and targets; crops cut from PyAV's RGB frames)."""
    from ganivid.align import Alignment, crop_face, crop_landmarks
    from ganivid.analysis import analyse_video, plan_edits
    from ganivid.animate import AnimateOptions
    from ganivid.curves import build_program
    from ganivid.engine import Engine
    from ganivid.tracking import TrackConfig
    from ganivid.video import probe, read_frames

    n = Engine.from_checkpoint(model, "cpu").image_size
    info = probe(clip)
    raw = analyse_video(info, TrackConfig(detect_every=AnimateOptions().detect_every), None, lambda: None)[0]
    table, chosen, actor, targets = plan_edits(raw, build_program(None, (), "smile:0.8"), "largest", "estimate", info)
    rows: dict[int, list[int]] = {}
    for i in np.flatnonzero(chosen):
        rows.setdefault(int(table.frame[i]), []).append(int(i))
    crops, aus, own, marks = [], [], [], []
    for f in read_frames(clip):
        for i in rows.get(f.index, []):
            al = Alignment(*map(float, table.params[i]))
            crops.append(crop_face(f.image, al, n))
            aus.append(targets[i])
            own.append(actor[i])
            marks.append(crop_landmarks(table.landmarks[i], al, n))
    return crops, np.stack(aus), np.stack(own), np.stack(marks)


def generator_only(model: str, work: tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray],
                   workers: int = 1) -> tuple[float, float]:
    """(crops/s, CPU ms per crop) of the engine alone, in its batches, on the pipeline's own crops
    and targets (`pipeline_work`): the very work the pipeline's generator does. `workers` > 1 runs
    that many batches at once on one torch thread each, as `animate` does on a CPU with that many
    torch threads."""
    from concurrent.futures import ThreadPoolExecutor

    from ganivid.engine import Engine

    eng = Engine.from_checkpoint(model, "cpu")
    crops, targets, own, marks = work
    b = eng.batch_size
    eng.edit(crops[:b], targets[:b] * 0.5, own[:b], marks[:b])  # warm-up (allocations), not cached
    batches = [(crops[i:i + b], targets[i:i + b], own[i:i + b], marks[i:i + b]) for i in range(0, len(crops), b)]
    threads = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(1)
    t, cpu = time.perf_counter(), time.process_time()
    if workers == 1:  # on the calling thread, as `animate` runs it
        for b in batches:
            eng.edit(*b)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda b: eng.edit(*b), batches))
    rate, ms = len(crops) / (time.perf_counter() - t), 1000 * (time.process_time() - cpu) / len(crops)
    torch.set_num_threads(threads)
    return rate, ms


def naive(model: str, clip: Path, out: Path) -> tuple[float, float]:
    """(fps, CPU ms per frame) of the obvious loop: decode, detect + landmarks every frame, estimate, crop, generator
    on one crop, paste, encode, one frame after the other."""
    from ganivid.align import alignment_from_landmarks, crop_face, crop_landmarks, paste_back
    from ganivid.aus import expression
    from ganivid.engine import Engine
    from ganivid.estimate import estimate_aus
    from ganivid.faces import DlibDetector
    from ganivid.video import Frame, probe, read_frames
    from ganivid.videowriter import VideoWriter

    eng = Engine.from_checkpoint(model, "cpu", batch_size=1)
    det = DlibDetector()
    smile = expression("smile", 0.8)
    t, cpu = time.perf_counter(), time.process_time()
    n = 0
    with VideoWriter(out, probe(clip), overwrite=True) as w:
        for f in read_frames(clip):
            image = f.image
            for d in det.detect(image)[:1]:
                own = np.nan_to_num(estimate_aus(d.landmarks))
                target = np.where(smile > 0, smile, own)
                al = alignment_from_landmarks(d.landmarks)
                crop = crop_face(image, al, eng.image_size)
                e = eng.edit([crop], target[None], own[None], crop_landmarks(d.landmarks, al, eng.image_size)[None])[0]
                image = paste_back(image, crop, e.image, al, flow=e.flow, warped_crop=e.warped)
            w.write(Frame(f.index, f.pts, f.time_s, f.duration, image))
            n += 1
    return n / (time.perf_counter() - t), 1000 * (time.process_time() - cpu) / n


def presets(clip: Path, work: Path, names: tuple[str, ...] = ("medium", "veryfast")) -> dict:
    """x264 at CRF 18 with each preset through VideoWriter: CPU ms per frame of writing (RGB->YUV
    conversion and the encoder's flush included), file size and PSNR of the output against the input."""
    from ganivid.video import probe, read_frames
    from ganivid.videowriter import EncodeOptions, VideoWriter

    frames = list(read_frames(clip))  # decoded beforehand: decoder threads would run on the clock
    out = {}
    for name in names:
        path = work / f"preset-{name}.mp4"
        cpu = time.process_time()
        with VideoWriter(path, probe(clip), EncodeOptions(preset=name), overwrite=True) as w:
            for f in frames:
                w.write(f)
        cpu = time.process_time() - cpu
        sq = [np.mean((a.image.astype(np.float32) - b.image) ** 2) for a, b in zip(frames, read_frames(path))]
        out[name] = {"cpu_ms_per_frame": round(1000 * cpu / len(frames), 2), "kB": path.stat().st_size // 1024,
                     "psnr_db": round(float(10 * np.log10(255 ** 2 / np.mean(sq))), 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--child", nargs=5)
    ap.add_argument("--model", type=Path, help="any inference or training checkpoint (default: see above)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the speed measurements")
    ap.add_argument("--size", default="640x360", help="clip size WxH (the face scales with the height)")
    args = ap.parse_args()
    global W, H
    W, H = (int(v) for v in args.size.lower().split("x"))
    default_threads = torch.get_num_threads()  # what `ganivid animate` runs the generator with
    torch.set_num_threads(1)
    if args.child:
        clip, out, model, null, threads = args.child
        return child(clip, out, model, null == "null", int(threads))
    from ganivid.videowriter import DEFAULT_PRESET

    work = args.workdir or Path(tempfile.mkdtemp(prefix="ganivid-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    model, how = (args.model, f"given: {args.model}") if args.model else model_file(work)
    clip10 = make_clip(work / "clip10.mp4", 10)
    clip60 = make_clip(work / "clip60.mp4", 60)
    # Other processes' share of the cores while measuring: wall-clock rates mean little above ~5%.
    busy0, own0, wall0 = busy_cpu_s(), own_cpu_s(), time.perf_counter()
    # This VM's speed drifts by 10-30 % from minute to minute (other tenants on the host), so
    # the pipeline, the pipeline without the generator and the generator alone are measured in
    # interleaved rounds: each ratio is taken within a round, and the medians are reported.
    # Each pipeline run is bracketed by two generator-only runs of the same work (same length,
    # ~7 s each), and compared with their mean: a steady drift of the VM's speed cancels.
    gen_work = pipeline_work(str(model), clip10)
    rounds, defaults = [], []
    for k in range(args.rounds):
        before = generator_only(str(model), gen_work)
        e2e = run_child(str(clip10), str(work / "out10.mp4"), str(model), "real", "1")
        after = generator_only(str(model), gen_work)
        nogen = run_child(str(clip10), str(work / "nogen10.mp4"), str(model), "null", "1")
        gen_fps = 2 / (1 / before[0] + 1 / after[0])  # the mean time per crop, as a rate
        rounds.append((e2e, nogen, gen_fps, (before[1] + after[1]) / 2, (before[0], after[0])))
        # The CLI's own setting: torch's default thread count (one per core). `animate` then runs
        # one batch per thread at once, each on one thread; so does the generator alone here.
        before = generator_only(str(model), gen_work, default_threads)
        e2e_d = run_child(str(clip10), str(work / "out10d.mp4"), str(model), "real", str(default_threads))
        after = generator_only(str(model), gen_work, default_threads)
        defaults.append((e2e_d, 2 / (1 / before[0] + 1 / after[0])))
    long = run_child(str(clip60), str(work / "out60.mp4"), str(model), "real", "1")
    long_d = run_child(str(clip60), str(work / "out60d.mp4"), str(model), "real", str(default_threads))
    # For comparison: the generator alone with one batch at a time on all of torch's threads.
    torch.set_num_threads(default_threads)
    gen_intra_fps, _ = generator_only(str(model), gen_work)
    torch.set_num_threads(1)
    naive_fps, naive_cpu = naive(str(model), clip10, work / "naive10.mp4")
    foreign = None if busy0 is None else max(0.0, (busy_cpu_s() - busy0) - (own_cpu_s() - own0)) / (
        (time.perf_counter() - wall0) * (os.cpu_count() or 1))
    encoder = presets(clip10, work)
    # Steady-state rates leave out loading the generator and the dlib models (~1-2 s once per
    # call), as generator-only and naive do; the whole call's rate is reported too.
    steady = lambda r: r["frames"] / (r["times"]["analyse_wall"] + r["times"]["render_wall"])  # noqa: E731
    per_round = [{"end_to_end_fps": round(steady(e), 2), "generator_only_fps": round(g, 2),
                  "generator_only_fps_before_after": [round(x, 2) for x in ba],
                  "pipeline_no_generator_fps": round(steady(z), 1), "e2e_over_generator": round(steady(e) / g, 3),
                  "two_pass_bound": round(two_pass_bound(e, g), 3)}
                 for e, z, g, _, ba in rounds]
    # The round with the median e2e/generator ratio supplies the per-stage breakdown.
    order = sorted(range(len(rounds)), key=lambda i: per_round[i]["e2e_over_generator"])
    e2e, nogen, gen_fps, gen_cpu, _ = rounds[order[len(order) // 2]]
    median = lambda key: float(np.median([r[key] for r in per_round]))  # noqa: E731
    e2e_fps, nogen_fps, gen_fps = median("end_to_end_fps"), median("pipeline_no_generator_fps"), median("generator_only_fps")
    n = e2e["frames"]
    t = e2e["times"]

    def bound(r: dict, gen_ms: float) -> float:
        a, b = (1000 * r["times"][k] / r["frames"] for k in ("analyse_cpu", "render_cpu"))
        return 1000 / (a / 2 + max(b / 2, gen_ms))
    result = {
        "benchmark": "animate_speed", "model": how, "clip": f"{W}x{H} {FPS} fps 10 s, one face", "frames": n,
        "cpu_threads": torch.get_num_threads(), "cores": os.cpu_count(),
        "load_avg_1min_at_end": round(os.getloadavg()[0], 1),
        "other_processes_core_share": None if foreign is None else round(foreign, 3),
        "ms_per_frame": {k: round(1000 * t[v] / n, 2) for k, v in (
            ("decode", "decode"), ("detect_track", "track"), ("estimate", "estimate"), ("crop", "crop"),
            ("generator", "generator"), ("paste", "paste"), ("encode", "encode"))},
        # The generator's own thread CPU inside the pipeline, against generator_only's CPU: CPU
        # inflation (shared caches) if higher; if only `generator` (wall) is higher, its core
        # was taken by other threads.
        "generator_thread_cpu_ms_per_frame": round(1000 * t.get("generator_cpu", 0.0) / n, 2),
        "setup_s": round(t["setup"], 2), "end_to_end_fps_with_setup": round(n / e2e["wall"], 2),
        "rounds": per_round,
        # Medians over the rounds; e2e_over_generator is the median of the rounds' own ratios.
        "end_to_end_fps": round(e2e_fps, 2), "generator_only_fps": round(gen_fps, 2), "naive_fps": round(naive_fps, 2),
        "pipeline_no_generator_fps": round(nogen_fps, 1),
        "no_generator_ms_per_frame": {"analyse": round(1000 * nogen["times"]["analyse_wall"] / n, 2),
                                      "render": round(1000 * nogen["times"]["render_wall"] / n, 2)},
        "e2e_over_generator": median("e2e_over_generator"), "e2e_over_naive": round(e2e_fps / naive_fps, 3),
        "two_pass_bound": median("two_pass_bound"),
        # CPU time (all threads) per frame does not depend on how busy the machine is: with 2
        # free cores the overlapped pipeline approaches 2000 / cpu_ms fps.
        "cpu_ms_per_frame": {"end_to_end": round(1000 * e2e["cpu"] / n, 1), "generator_only": round(gen_cpu, 1),
                             "naive": round(naive_cpu, 1), "no_generator": round(1000 * nogen["cpu"] / n, 1)},
        # The same ratios from CPU time. With 2 free cores a pass takes at least its CPU time / 2,
        # and the render at least the generator's time (one torch thread): an upper bound on fps.
        "cpu_ratios": {"e2e_over_generator": round(gen_cpu / (1000 * e2e["cpu"] / n), 3),
                       "e2e_over_naive": round(naive_cpu / (1000 * e2e["cpu"] / n), 3)},
        "cpu_ms_per_frame_by_pass": {k: {"analyse": round(1000 * r["times"]["analyse_cpu"] / n, 1),
                                         "render": round(1000 * r["times"]["render_cpu"] / n, 1)}
                                     for k, r in (("end_to_end", e2e), ("no_generator", nogen))},
        "two_free_cores_bound": {"end_to_end_fps": round(bound(e2e, gen_cpu), 1),
                                 "e2e_over_generator": round(bound(e2e, gen_cpu) * gen_cpu / 1000, 3),
                                 "e2e_over_naive": round(bound(e2e, gen_cpu) * naive_cpu / 1000, 3),
                                 "no_generator_fps": round(bound(nogen, 0.0), 1)},
        "encoder_crf18": {"default_preset": DEFAULT_PRESET, **encoder},
        "rss_10s_mb": round(e2e["rss_mb"], 1), "rss_60s_mb": round(long["rss_mb"], 1),
        "rss_ratio": round(long["rss_mb"] / e2e["rss_mb"], 3),
        # The figures above give the generator one torch thread, which leaves a core to the other
        # stages; `ganivid animate` itself runs torch's default (one thread per core), as one
        # generator thread per torch thread. Medians over the same rounds.
        "default_threads": {"threads": default_threads,
                            "end_to_end_fps": round(float(np.median([steady(e) for e, _ in defaults])), 2),
                            "generator_only_fps": round(float(np.median([g for _, g in defaults])), 2),
                            "e2e_over_generator": round(float(np.median([steady(e) / g for e, g in defaults])), 3),
                            "rounds_e2e_over_generator": [round(steady(e) / g, 3) for e, g in defaults],
                            "generator_only_one_batch_at_a_time_fps": round(gen_intra_fps, 2),
                            "rss_ratio": round(long_d["rss_mb"] / max(e["rss_mb"] for e, _ in defaults), 3)},
    }
    result["goals_met"] = {"e2e>=0.85*generator": result["e2e_over_generator"] >= 0.85,
                           "e2e>=1.5*naive": result["e2e_over_naive"] >= 1.5,
                           "no_generator>=150fps": nogen_fps >= 150, "rss_ratio<=1.1": result["rss_ratio"] <= 1.1}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
