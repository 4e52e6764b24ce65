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
