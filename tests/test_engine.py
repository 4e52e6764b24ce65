import threading

import numpy as np
import pytest
import torch

from ganivid.align import CROP_SPEC
from ganivid.aus import AU_NAMES, expression
from ganivid.checkpoint import save_inference
from ganivid.config import ModelConfig
from ganivid.data import to_images as to_image
from ganivid.data import to_tensor
from ganivid.engine import Engine, check_compatible, resolve_device
from ganivid.errors import CheckpointError, ConfigError
from ganivid.networks import Generator
from gates import Gate

CFG = ModelConfig(image_size=32, conv_dim=8, repeat_num=1, critic_dim=8)


@pytest.fixture(scope="module")
def generator() -> Generator:
    torch.manual_seed(0)
    return Generator(CFG).eval()


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)


def test_tensor_image_round_trip_is_exact(crops):
    t = to_tensor(crops)
    assert t.shape == (5, 3, 32, 32) and t.min() >= -1 and t.max() <= 1
    assert np.array_equal(to_image(t), crops)


def test_devices():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("CPU") == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:1")
        with pytest.raises(ConfigError, match="half precision"):
            Engine(Generator(CFG), 32, "cpu", half=True)


def test_edit_composites_attention_and_colour(generator, crops):
    eng = Engine(generator, 32, "cpu", batch_size=2)
    targets = np.stack([expression("smile", 0.2 * i) for i in range(5)])
    out = eng.edit(list(crops), targets)
    assert len(out) == 5 and eng.forward_calls == 3  # 5 crops in batches of 2
    with torch.no_grad():
        color, att = generator(to_tensor(crops), torch.from_numpy(targets))
    want = to_image(att * to_tensor(crops) + (1 - att) * color)
    for i, e in enumerate(out):
        assert e.image.dtype == np.uint8 and e.image.shape == (32, 32, 3)
        assert e.attention.shape == (32, 32) and 0 <= e.attention.min() <= e.attention.max() <= 1
        assert np.abs(e.image.astype(int) - want[i]).max() <= 1  # batching may change the last bit
        assert np.allclose(e.attention, att[i, 0].numpy(), atol=1e-5)
        assert np.abs(e.color.astype(int) - to_image(color)[i]).max() <= 1


def test_edit_later_finished_on_another_thread_is_edit(generator, crops):
    targets = np.stack([expression("smile", 0.2 * i) for i in range(5)])
    now = Engine(generator, 32, "cpu", batch_size=2).edit(list(crops), targets)
    eng = Engine(generator, 32, "cpu", batch_size=2)
    pending = eng.edit_later(list(crops), targets)
    assert eng.forward_calls == 3 and eng.images_computed == 5  # the network has run
    later: list = [None] * 5
    workers = [threading.Thread(target=lambda i=i: later.__setitem__(i, pending[i].get())) for i in range(5)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for a, b in zip(now, later):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.color, b.color)
        assert np.array_equal(a.attention, b.attention)
    assert later[0] is pending[0].get() and eng.forward_calls == 3  # composited once per batch


def test_identical_targets_run_once(generator, crops):
    """A still image under a constant curve: 100 frames, one generator run."""
    eng = Engine(generator, 32, "cpu", batch_size=8)
    target = expression("smile", 0.7)
    results = []
    for start in range(0, 100, 8):
        n = min(8, 100 - start)
        results += eng.edit([crops[0]] * n, np.tile(target, (n, 1)))
    assert len(results) == 100 and eng.images_computed == 1
    assert all(r.image is results[0].image for r in results)
    # Two alternating targets: two runs; another crop: one more.
    other = expression("surprise", 0.5)
    eng.edit([crops[0]] * 4, np.stack([target, other, target, other]))
    eng.edit([crops[1]], target[None])
    assert eng.images_computed == 3


def test_cache_stays_small(generator, crops):
    eng = Engine(generator, 32, "cpu", batch_size=4, cache_size=3)
    for i in range(5):
        eng.edit([crops[i]], expression("smile")[None])
    assert len(eng._cache) == 3 and eng.images_computed == 5


def test_bad_shapes(generator, crops):
    eng = Engine(generator, 32, "cpu")
    with pytest.raises(ConfigError, match="crop of shape"):
        eng.edit([np.zeros((16, 16, 3), np.uint8)], np.zeros((1, 17)))
    with pytest.raises(ConfigError, match="17 AUs"):
        eng.edit([crops[0]], np.zeros((1, 5)))
    with pytest.raises(ConfigError, match="batch-size"):
        Engine(generator, 32, "cpu", batch_size=0)


def test_checkpoint_compatibility(tmp_path, generator, crops):
    good = save_inference(tmp_path / "good.safetensors", generator, CFG)
    eng = Engine.from_checkpoint(str(good), "cpu")
    assert eng.image_size == 32 and eng.batch_size == 8
    assert eng.edit([crops[0]], np.zeros((1, 17)))[0].image.shape == (32, 32, 3)
    other = save_inference(tmp_path / "other.safetensors", generator, CFG, crop_spec="ffhq:1024")
    with pytest.raises(CheckpointError, match="trained on crops 'ffhq:1024'"):
        Engine.from_checkpoint(str(other), "cpu")
    with pytest.raises(CheckpointError, match="conditioned on 12 AUs"):
        check_compatible(CROP_SPEC, AU_NAMES[:12])
    with pytest.raises(CheckpointError, match="does not exist"):
        Engine.from_checkpoint(str(tmp_path / "missing.safetensors"), "cpu")


def test_warm_up_changes_nothing_a_caller_sees(generator, crops):
    eng = Engine(generator, 32, "cpu", batch_size=3)
    eng.warm_up()
    assert eng.images_computed == 0 and eng.forward_calls == 0
    targets = np.stack([expression("smile", 0.5)] * 2)
    out = eng.edit(list(crops[:2]), targets)
    fresh = Engine(generator, 32, "cpu", batch_size=3).edit(list(crops[:2]), targets)
    assert eng.images_computed == 2 and all(np.array_equal(a.image, b.image) for a, b in zip(out, fresh))


@pytest.mark.skipif(not hasattr(__import__("resource"), "RUSAGE_THREAD"), reason="needs Linux")
def test_freed_memory_is_reused_without_page_faults():
    import resource

    from ganivid.engine import keep_freed_memory

    if not keep_freed_memory():
        pytest.skip("not glibc")
    faults = []
    for _ in range(4):  # a batch's activations: many blocks of MBs, all freed at the end
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        blocks = [np.ones(1 << 20, np.float32) for _ in range(16)]
        del blocks
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
    # glibc's defaults, and a 32 MiB trim threshold, give the 64 MiB back each time: ~16,000
    # fresh pages every round.
    assert max(faults[1:]) < 100, faults


@pytest.mark.parametrize("fail", [False, True])
def test_concurrent_calls_compute_a_shared_crop_once(generator, crops, fail):
    from ganivid.errors import GanividError

    gate = Gate(generator, fail)
    eng = Engine(gate, 32, "cpu", batch_size=4)
    target = expression("smile", 0.6)[None]
    first: list = []

    def run() -> None:
        try:
            first.append(eng.edit([crops[0]], target)[0])
        except RuntimeError as ex:
            first.append(ex)

    t = threading.Thread(target=run)
    t.start()
    assert gate.entered.wait(10)
    # The first call is inside the network: a second call with the same crop and target waits
    # for its result instead of computing it again; another crop is computed at once.
    shared, other = eng.edit_later([crops[0], crops[1]], np.concatenate([target, target]))
    assert other.get().image.shape == (32, 32, 3) and eng.images_computed == 1
    gate.open.set()
    t.join()
    if fail:
        assert isinstance(first[0], RuntimeError)
        with pytest.raises(GanividError, match="generator broke"):
            shared.get()
        eng.edit([crops[0]], target)  # not cached as failed: computed afresh
        assert eng.images_computed == 2
    else:
        assert shared.get() is first[0] and eng.images_computed == 2 and eng.forward_calls == 2
