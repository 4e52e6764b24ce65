"""ganivid: change facial expressions in videos with GANimation."""
from ganivid.animate import AnimateResult as AnimateResult
from ganivid.animate import animate as animate
from ganivid.aus import AU_NAMES as AU_NAMES
from ganivid.aus import expression as expression
from ganivid.errors import GanividError as GanividError

__version__ = "0.1.0"
