"""ganivid: change facial expressions in videos with GANimation."""
from ganivid.animate import AnimateResult as AnimateResult
from ganivid.animate import animate as animate
from ganivid.aus import AU_NAMES as AU_NAMES
from ganivid.aus import expression as expression
from ganivid.errors import GanividError as GanividError
from ganivid.preview import preview_grid as preview_grid
from ganivid.preview import preview_interpolate as preview_interpolate
from ganivid.preview import preview_sample as preview_sample
from ganivid.previewframes import preview_frames as preview_frames
from ganivid.still import animate_image as animate_image

__version__ = "0.1.0"
