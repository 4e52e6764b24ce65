from pathlib import Path

import numpy as np
import pytest
import torch

# Tests run on 2 CPU cores beside other work: one thread each keeps timings predictable.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """skimage's public-domain astronaut portrait, RGB uint8 512x512."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """matplotlib's public-domain Grace Hopper portrait, RGB uint8 600x512."""
    import matplotlib.cbook as cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


@pytest.fixture(scope="session")
def model(tmp_path_factory) -> Path:
    """A tiny untrained generator (32 px, width 8) saved as an inference checkpoint."""
    from ganivid.checkpoint import save_inference
    from ganivid.config import ModelConfig
    from ganivid.networks import Generator

    cfg = ModelConfig(image_size=32, conv_dim=8, repeat_num=1, critic_dim=8)
    torch.manual_seed(0)
    return save_inference(tmp_path_factory.mktemp("model") / "tiny.safetensors", Generator(cfg), cfg)


@pytest.fixture(scope="session")
def photo(tmp_path_factory, astronaut) -> Path:
    """The astronaut as a PNG file."""
    from PIL import Image

    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return path
