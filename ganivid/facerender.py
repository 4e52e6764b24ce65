"""The synthetic face renderer: parametric faces with exact AU ground truth.

`render(identity, aus, size)` draws one face crop framed like `align.crop_face` frames real
faces (eye-centre distance = size / CROP_SIDE, crop centre CENTRE_DOWN of the eye-mouth
distance below the eyes). Identity (face shape, skin, hair, eyes, brows, background,
lighting) and the 17 AU intensities are independent, so for any identity the image at any
other AU vector is known exactly: the evaluation truth for the generator's edits."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ganivid.align import CENTRE_DOWN, CROP_SIDE
from ganivid.aus import AU_NAMES, NUM_AUS
from ganivid.errors import DataError

_SS = 4  # supersampling of polygon masks: anti-aliased edges at any output size
_SHIFT = 4  # fixed-point bits for sub-pixel polygon vertices
D = 1.0 / CROP_SIDE  # eye-centre distance in crop units (the crop is 1 x 1)
EYE_Y = 0.5 - CENTRE_DOWN * 1.1 * D  # align frames the eye-mouth distance as 1.1 d

SKIN_TONES = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 132], [198, 140, 100],
                       [160, 106, 70], [120, 78, 50], [90, 58, 40]], np.float32) / 255
HAIR_COLOURS = np.array([[25, 20, 18], [60, 40, 28], [105, 70, 40], [170, 130, 80],
                         [215, 185, 130], [150, 60, 30], [150, 150, 150], [235, 235, 230]],
                        np.float32) / 255
EYE_COLOURS = np.array([[70, 45, 25], [110, 75, 40], [60, 110, 150], [80, 120, 80],
                        [120, 110, 70], [90, 95, 110]], np.float32) / 255
HAIR_STYLES = ("bald", "short", "long", "fringe", "bun")


@dataclass(frozen=True)
class Identity:
    """Everything about a synthetic face except its expression; build with `random_identity`."""

    seed: int
    dx: float  # face offset from the canonical centre (alignment jitter), crop units
    dy: float
    roll: float  # residual in-plane rotation, radians
    eye_dist: float  # relative to D
    face_w: float  # cheek half-width in units of D
    jaw: float  # how much the jaw narrows towards the chin, 0..1
    chin: float  # chin distance below the eyes in units of D
    skin: tuple[float, float, float]
    lip: tuple[float, float, float]
    hair: tuple[float, float, float]
    hair_style: str
    hairline: float  # forehead hairline height above the eyes in units of D
    eye_colour: tuple[float, float, float]
    eye_size: float
    brow_thick: float  # in units of D
    brow_arch: float
    lip_thick: float
    mouth_w: float  # half-width in units of D
    nose_w: float
    bg: tuple[float, float, float]
    bg2: tuple[float, float, float]
    bg_angle: float
    bg_texture: float
    clothes: tuple[float, float, float]
    light: tuple[float, float, float]  # unit vector towards the light (x right, y down, z out)
    ambient: float
    warmth: float


def _col(rng: np.random.Generator, base: np.ndarray, jitter: float) -> tuple[float, float, float]:
    c = np.clip(base * rng.uniform(1 - jitter, 1 + jitter, 3), 0, 1)
    return tuple(float(v) for v in c)


def random_identity(seed: int) -> Identity:
    """A random identity, fully determined by `seed`."""
    rng = np.random.default_rng([int(seed), 0x5EED])
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    i = int(t)
    skin = SKIN_TONES[i] + (SKIN_TONES[min(i + 1, len(SKIN_TONES) - 1)] - SKIN_TONES[i]) * (t - i)
    lip = skin * np.array([0.85, 0.55, 0.55]) + np.array([0.1, 0.0, 0.02])
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]
    if rng.random() < 0.04:  # rare dyed hair: colour must not be a cue for anything
        hair = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    # Backgrounds of real portraits are mostly muted: mix a random colour with a grey.
    bg = 0.5 * rng.uniform(0.05, 0.95, 3) + 0.5 * rng.uniform(0.1, 0.9)
    bg2 = np.clip(bg + rng.normal(0, 0.25, 3), 0, 1)
    az, el = rng.uniform(-1.0, 1.0), rng.uniform(-0.7, 0.3)
    light = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    return Identity(
        seed=int(seed), dx=float(rng.normal(0, 0.012)), dy=float(rng.normal(0, 0.012)),
        roll=float(rng.normal(0, 0.03)), eye_dist=float(rng.uniform(0.95, 1.05)),
        face_w=float(rng.uniform(0.95, 1.15)), jaw=float(rng.uniform(0.25, 0.6)),
        chin=float(rng.uniform(1.75, 1.95)), skin=_col(rng, skin, 0.04), lip=_col(rng, lip, 0.08),
        hair=_col(rng, hair, 0.1), hair_style=HAIR_STYLES[rng.integers(len(HAIR_STYLES))],
        hairline=float(rng.uniform(0.75, 1.05)),
        eye_colour=_col(rng, EYE_COLOURS[rng.integers(len(EYE_COLOURS))], 0.1),
        eye_size=float(rng.uniform(0.9, 1.12)), brow_thick=float(rng.uniform(0.07, 0.15)),
        brow_arch=float(rng.uniform(0.04, 0.12)), lip_thick=float(rng.uniform(0.8, 1.2)),
        mouth_w=float(rng.uniform(0.38, 0.46)), nose_w=float(rng.uniform(0.85, 1.15)),
        bg=_col(rng, bg, 0), bg2=_col(rng, bg2, 0), bg_angle=float(rng.uniform(0, 2 * np.pi)),
        bg_texture=float(rng.uniform(0, 0.12)), clothes=_col(rng, rng.uniform(0.05, 0.9, 3), 0),
        light=tuple(float(v) for v in light / np.linalg.norm(light)),
        ambient=float(rng.uniform(0.45, 0.65)), warmth=float(rng.normal(0, 0.03)))


class _Canvas:
    """Float RGB image in [0, 1] with anti-aliased painting of shapes given in crop units."""

    def __init__(self, ident: Identity, size: int):
        self.size = size
        self.img = np.zeros((size, size, 3), np.float32)
        self.fg = np.zeros((size, size), np.float32)  # coverage of everything but the background
        # Face frame -> crop: small roll and offset around the crop centre.
        c, s = np.cos(ident.roll), np.sin(ident.roll)
        self.rot = np.array([[c, -s], [s, c]])
        self.off = np.array([0.5 + ident.dx, 0.5 + ident.dy])
        self.scale = ident.eye_dist

    def to_px(self, pts: np.ndarray) -> np.ndarray:
        """Face-frame points (crop units, centred at 0) -> supersampled fixed-point pixels."""
        p = (np.asarray(pts, np.float64) * self.scale) @ self.rot.T + self.off
        # cv2 puts integer coordinates at pixel centres; crop units put 0 at the pixel edge.
        return np.round((p * self.size * _SS - 0.5) * (1 << _SHIFT)).astype(np.int32)

    def _down(self, m: np.ndarray, blur: float) -> np.ndarray:
        m = cv2.resize(m, (self.size, self.size), interpolation=cv2.INTER_AREA)
        m = m.astype(np.float32) / 255
        if blur > 0:
            m = cv2.GaussianBlur(m, (0, 0), blur * self.size * self.scale)
            m[m < 0.02] = 0  # cut the far tails: an AU must not tint the whole image
        return m

    def poly(self, *polys: np.ndarray, blur: float = 0.0) -> np.ndarray:
        """Coverage (size, size) of the union of filled polygons."""
        m = np.zeros((self.size * _SS,) * 2, np.uint8)
        cv2.fillPoly(m, [self.to_px(p) for p in polys], 255, cv2.LINE_8, _SHIFT)
        return self._down(m, blur)

    def line(self, pts: np.ndarray, width: float, blur: float = 0.0) -> np.ndarray:
        """Coverage of a polyline `width` crop units thick."""
        m = np.zeros((self.size * _SS,) * 2, np.uint8)
        w = max(1, int(round(width * self.scale * self.size * _SS)))
        cv2.polylines(m, [self.to_px(pts)], False, 255, w, cv2.LINE_8, _SHIFT)
        return self._down(m, blur)

    def paint(self, mask: np.ndarray, colour, alpha: float = 1.0) -> None:
        a = mask * alpha
        self.img += a[..., None] * (np.asarray(colour, np.float32) - self.img)
        self.fg += a * (1 - self.fg)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Face-frame coordinates (x, y) of every pixel centre."""
        t = (np.arange(self.size, dtype=np.float64) + 0.5) / self.size
        p = np.stack(np.meshgrid(t, t), -1) - self.off
        q = p @ self.rot / self.scale  # inverse of to_px's rotation
        return q[..., 0].astype(np.float32), q[..., 1].astype(np.float32)


def _ellipse(cx: float, cy: float, a: float, b: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + a * np.cos(t), cy + b * np.sin(t)], 1)


def _curve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([x, y], 1)


def _mirror(p: np.ndarray) -> np.ndarray:
    return p * np.array([-1.0, 1.0])


def _shade(c, k: float) -> np.ndarray:
    return np.clip(np.asarray(c, np.float32) * k, 0, 1)


def key_points(identity: Identity, size: int = 128) -> np.ndarray:
    """Pixel positions (4, 2) of the neutral face's eye centres and mouth corners (image left
    first), as align.alignment_from_landmarks would see them: the framing check of `render`."""
    cv = _Canvas(identity, size)
    ey, mw = EYE_Y - 0.5, identity.mouth_w * D
    pts = np.array([[-0.5 * D, ey], [0.5 * D, ey], [-mw, ey + 1.1 * D], [mw, ey + 1.1 * D]])
    return (pts * cv.scale) @ cv.rot.T * size + cv.off * size - 0.5


def render(identity: Identity, aus: np.ndarray, size: int = 128) -> np.ndarray:
    """RGB uint8 (size, size, 3) image of `identity` showing AU intensities `aus` (17,) in 0..1."""
    a = np.clip(np.asarray(aus, np.float64).reshape(-1), 0, 1)
    if a.shape != (NUM_AUS,):
        raise DataError(f"expected {NUM_AUS} AU intensities ({', '.join(AU_NAMES)}), got {a.size}")
    u = {name: float(a[i]) for i, name in enumerate(AU_NAMES)}
    idn = identity
    cv = _Canvas(idn, size)
    x, y = cv.grid()
    d = D
    ey = EYE_Y - 0.5  # eye line in the face frame (origin at crop centre)
    skin = np.asarray(idn.skin, np.float32)
    dark = _shade(skin, 0.62)

    # Background: two-colour gradient plus smooth texture seeded by the identity only.
    g = np.cos(idn.bg_angle) * x + np.sin(idn.bg_angle) * y
    g = np.clip(g + 0.5, 0, 1)[..., None]
    cv.img[:] = np.asarray(idn.bg) * (1 - g) + np.asarray(idn.bg2) * g
    noise = np.random.default_rng([idn.seed, 7]).normal(0, 1, (6, 6, 3)).astype(np.float32)
    cv.img += idn.bg_texture * cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)

    # Face outline; the jaw drop (AU26) lowers the chin and the lower jaw smoothly.
    fw = idn.face_w * d
    cy = ey + 0.45 * d
    top, bot = cy - ey + 1.6 * d, idn.chin * d - (cy - ey) + 0.25 * d * u["AU26"]
    t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    st = np.sin(t)
    low = np.clip(st, 0, 1)
    fx = fw * np.cos(t) * (1 - idn.jaw * low ** 2 * 0.55)
    fy = cy + np.where(st < 0, top, bot) * st
    face = _curve(fx, fy)
    chin_y = cy + bot

    hc = np.asarray(idn.hair, np.float32)
    long_hair = idn.hair_style == "long"
    if long_hair:  # behind the head and down to the shoulders
        back = np.concatenate([_ellipse(0, cy - 0.4 * d, fw * 1.3, 1.9 * d)[:25],
                               [[fw * 1.45, 1.0], [-fw * 1.45, 1.0]]])
        cv.paint(cv.poly(back, _ellipse(0, cy - 0.4 * d, fw * 1.3, 1.9 * d), blur=0.01), _shade(hc, 0.8))
    # Neck, shoulders, ears.
    neck = np.array([[-0.55 * fw, cy], [0.55 * fw, cy], [0.6 * fw, 0.8], [-0.6 * fw, 0.8]])
    cv.paint(cv.poly(neck, blur=0.006), _shade(skin, 0.85))
    cv.paint(cv.poly(_ellipse(0, chin_y + 0.05 * d, 0.5 * fw, 0.12 * d), blur=0.03), _shade(skin, 0.6), 0.7)
    cv.paint(cv.poly(_ellipse(0, 0.62, 2.2 * fw, 0.22), blur=0.008), idn.clothes)
    for sgn in (-1, 1):
        cv.paint(cv.poly(_ellipse(sgn * fw * 0.98, ey + 0.35 * d, 0.16 * d, 0.32 * d), blur=0.006),
                 _shade(skin, 0.9))

    # Face skin.
    cv.paint(cv.poly(face, blur=0.004), skin)

    # Eye sockets and cheeks (AU6 lifts and rounds the cheeks).
    ex = 0.5 * d
    for sgn in (-1, 1):
        cv.paint(cv.poly(_ellipse(sgn * ex, ey - 0.02 * d, 0.33 * d, 0.22 * d), blur=0.05), dark, 0.25)
        ch = cv.poly(_ellipse(sgn * 0.62 * d, ey + (0.62 - 0.14 * u["AU6"]) * d, 0.26 * d,
                              (0.18 + 0.04 * u["AU6"]) * d), blur=0.05)
        cv.paint(ch, _shade(skin, 1.12) * np.array([1.04, 0.95, 0.95]), 0.45 + 0.4 * u["AU6"])
        # Crow's feet (AU6) at the outer eye corners.
        for k in (-1, 0, 1):
            p = _curve(sgn * (ex + np.array([0.3, 0.42]) * d), ey + np.array([0.02 * k, 0.07 * k]) * d)
            cv.paint(cv.line(p, 0.025 * d, blur=0.006), dark, 0.6 * u["AU6"])

    # Forehead wrinkles (AU1/AU2) and the frown lines between the brows (AU4).
    fore = max(u["AU1"], u["AU2"])
    for k in range(3):
        xs = np.linspace(-0.45, 0.45, 9) * d
        p = _curve(xs, ey - (0.8 + 0.13 * k) * d + 0.04 * d * (xs / d) ** 2)
        cv.paint(cv.line(p, 0.03 * d, blur=0.008), dark, 0.55 * fore)
    for sgn in (-1, 1):
        p = _curve(np.array([sgn * 0.07, sgn * 0.09]) * d, ey + np.array([-0.2, -0.45]) * d)
        cv.paint(cv.line(p, 0.035 * d, blur=0.006), dark, 0.7 * u["AU4"])

    # Nose: side shadow, tip, wrinkles (AU9), nostrils (AU9 lifts and widens them).
    nw = idn.nose_w * d
    lx = float(np.sign(idn.light[0]) or 1.0)
    side = _curve(np.array([-0.1, -0.12, -0.2, -0.16]) * nw * lx,
                  ey + np.array([0.05, 0.45, 0.72, 0.8]) * d)
    cv.paint(cv.line(side, 0.08 * d, blur=0.03), dark, 0.5)
    cv.paint(cv.poly(_ellipse(0, ey + 0.7 * d, 0.13 * nw, 0.1 * d), blur=0.02), _shade(skin, 1.1), 0.6)
    for k in range(3):
        p = _curve(np.array([-0.1, 0.1]) * nw, ey + np.array([0.12, 0.12]) * d + 0.07 * k * d)
        cv.paint(cv.line(p, 0.03 * d, blur=0.006), dark, 0.7 * u["AU9"])
    ny = ey + (0.8 - 0.06 * u["AU9"] - 0.02 * u["AU10"]) * d
    for sgn in (-1, 1):
        cv.paint(cv.poly(_ellipse(sgn * 0.17 * nw, ny - 0.03 * d, 0.11 * nw * (1 + 0.25 * u["AU9"]),
                                  0.09 * d), blur=0.015), dark, 0.4)
        cv.paint(cv.poly(_ellipse(sgn * 0.1 * nw, ny, 0.06 * nw * (1 + 0.3 * u["AU9"]), 0.03 * d),
                         blur=0.006), _shade(skin, 0.3), 0.9)

    # Mouth geometry, s in -1..1 from the subject's right corner to the left one.
    jaw = 0.22 * d * u["AU26"]
    my = ey + 1.1 * d + 0.3 * jaw - 0.04 * d * u["AU17"]
    mw = idn.mouth_w * d * (1 + 0.22 * u["AU20"] + 0.12 * u["AU12"] - 0.14 * u["AU23"]
                            - 0.08 * u["AU14"] - 0.05 * u["AU17"])
    lift = (0.2 * u["AU12"] + 0.05 * u["AU14"] - 0.18 * u["AU15"]
            + 0.02 * u["AU20"] - 0.05 * u["AU17"]) * d
    s = np.linspace(-1, 1, 41)
    bell = 1 - s ** 2
    mid = my - lift * np.abs(s) ** 2.2
    gap = (0.06 * u["AU25"] + 0.2 * u["AU26"]) * d * np.clip(1 - 0.6 * u["AU23"], 0, 1)
    thin = idn.lip_thick * (1 - 0.5 * u["AU23"] - 0.25 * u["AU20"])
    up_raise = (0.1 * u["AU10"] + 0.03 * u["AU9"]) * d
    iu = mid - 0.2 * gap * bell ** 0.7 - up_raise * bell ** 0.5
    il = mid + gap * bell ** 0.7 + 0.8 * jaw * bell - 0.05 * d * u["AU17"] * bell
    bow = 1 - 0.25 * np.exp(-(s / 0.12) ** 2)
    ou = iu - 0.12 * d * thin * bell ** 0.55 * bow - 0.3 * up_raise * bell ** 0.5
    ol = il + 0.15 * d * thin * (1 + 0.4 * u["AU17"]) * bell ** 0.6
    xs = s * mw

    # Nasolabial folds follow the mouth corners; deeper with AU12, AU10, AU9.
    fold = 0.15 + 0.45 * u["AU12"] + 0.45 * u["AU10"] + 0.25 * u["AU9"]
    for sgn in (-1, 1):
        p = _curve(sgn * np.array([0.28 * nw, mw + 0.14 * d, mw + 0.18 * d]),
                   np.array([ny - 0.02 * d, mid[-1] - 0.06 * d, mid[-1] + 0.25 * d + 0.5 * jaw]))
        cv.paint(cv.line(p, 0.04 * d, blur=0.012), dark, min(fold, 1.0) * 0.6)
        # Dimples (AU14) just outside the corners.
        cv.paint(cv.poly(_ellipse(sgn * (mw + 0.07 * d), mid[-1], 0.035 * d, 0.06 * d), blur=0.01),
                 dark, 0.8 * u["AU14"])
    # Chin: the mentolabial crease rises and deepens with AU17; a chin boss highlight.
    crease_y = ol.max() + (0.16 - 0.05 * u["AU17"]) * d
    p = _curve(np.array([-0.2, 0, 0.2]) * d, crease_y + np.array([0.02, -0.02, 0.02]) * d)
    cv.paint(cv.line(p, 0.05 * d, blur=0.015), dark, 0.25 + 0.5 * u["AU17"])
    cv.paint(cv.poly(_ellipse(0, chin_y - (0.22 + 0.06 * u["AU17"]) * d, 0.22 * d, 0.12 * d), blur=0.04),
             _shade(skin, 1.08), 0.4 + 0.4 * u["AU17"])

    # Lips and mouth interior (teeth show when the lips part).
    inner = np.concatenate([_curve(xs, iu), _curve(xs[::-1], il[::-1])])
    if gap > 1e-4 or up_raise > 1e-4:
        cavity = cv.poly(inner)
        cv.paint(cavity, (0.18, 0.06, 0.07))
        teeth = _curve(np.concatenate([xs * 0.85, xs[::-1] * 0.85]),
                       np.concatenate([iu - 0.02 * d, (iu + 0.06 * d + 0.3 * gap * bell)[::-1]]))
        cv.paint(cv.poly(teeth) * cavity, (0.93, 0.91, 0.86))
    lipc = np.asarray(idn.lip, np.float32)
    cv.paint(cv.poly(np.concatenate([_curve(xs, ou), _curve(xs[::-1], iu[::-1])]), blur=0.004),
             _shade(lipc, 0.9))
    cv.paint(cv.poly(np.concatenate([_curve(xs, il), _curve(xs[::-1], ol[::-1])]), blur=0.004), lipc)
    cv.paint(cv.line(_curve(xs, (iu + il) / 2 if gap < 0.01 * d else iu), 0.018 * d, blur=0.003),
             _shade(lipc, 0.45), 0.8)

    # Hair in front: a cap above the hairline, with a fringe or a bun for some styles.
    if idn.hair_style != "bald":
        hl = ey - idn.hairline * d
        xs_h = np.linspace(-fw * 1.15, fw * 1.15, 25)
        dip = 0.35 * d if idn.hair_style == "fringe" else 0.0
        edge = hl + dip * np.cos(xs_h / fw * 1.3) ** 2 + 0.25 * d * (xs_h / fw) ** 4
        cap = np.concatenate([_curve(xs_h, edge), [[fw * 1.15, -0.6], [-fw * 1.15, -0.6]]])
        head = _ellipse(0, cy - 0.1 * d, fw * 1.12, 2.3 * d, 64)
        m = cv.poly(cap, blur=0.006) * cv.poly(head, blur=0.004)
        cv.paint(m, hc)
        if idn.hair_style == "bun":
            cv.paint(cv.poly(_ellipse(0, -0.5, 0.5 * fw, 0.1), blur=0.006), _shade(hc, 0.85))
        # Strands for texture: fixed per identity.
        hr = np.random.default_rng([idn.seed, 11])
        for _ in range(6):
            x0 = hr.uniform(-fw, fw)
            p = _curve(np.array([x0, x0 + hr.uniform(-0.1, 0.1)]), np.array([-0.55, hl - 0.05 * d]))
            cv.paint(cv.line(p, 0.02 * d, blur=0.004) * m, _shade(hc, 1.3 if hc.mean() < 0.4 else 0.75), 0.5)

    # Brows: AU1 lifts the inner ends, AU2 the outer ends, AU4 lowers them and pulls them together.
    bt = idn.brow_thick * d
    bc = _shade(hc, 0.75) if hc.mean() < 0.6 else _shade(hc, 0.5)
    for sgn in (-1, 1):
        r = np.linspace(-1, 1, 13)  # -1 inner end, +1 outer end
        bx = ex + r * 0.46 * d + (0.1 * d * u["AU4"]) * (1 - r) / 2 * -1
        by = (ey - 0.42 * d - idn.brow_arch * d * (1 - ((r - 0.15) / 1.15) ** 2)
              - 0.24 * d * u["AU1"] * ((1 - r) / 2) ** 1.5
              - 0.22 * d * u["AU2"] * ((1 + r) / 2) ** 1.5
              + 0.13 * d * u["AU4"] * (0.5 + 0.5 * (1 - r) / 2))
        half = bt * (0.55 - 0.3 * r) / 1.1
        top = _curve(sgn * bx, by - half)
        botm = _curve(sgn * bx[::-1], (by + half)[::-1])
        cv.paint(cv.poly(np.concatenate([top, botm]), blur=0.01), bc, 0.92)

    # Eyes: AU5 raises the upper lid, AU7 tightens both lids, AU6 lifts the lower lid, AU45 closes.
    ew = 0.24 * d * idn.eye_size
    eh = 0.13 * d * idn.eye_size
    q = np.linspace(-1, 1, 25)
    qb = 1 - q ** 2
    lower_h = eh * 0.8 * (1 - 0.4 * u["AU7"] - 0.3 * u["AU6"])
    openness = max(0.0, 1 + 0.55 * u["AU5"] - 0.35 * u["AU7"] - 0.15 * u["AU6"] - 0.1 * u["AU4"])
    openness *= 1 - u["AU45"]
    for sgn in (-1, 1):
        cx_e = sgn * ex
        lo = ey + lower_h * qb ** 0.8
        upl = lo - (eh + eh * 0.8) * openness * qb ** 0.7
        xe = cx_e + q * ew
        # Upper-lid crease: hidden by the raised lid (AU5), darker when lids tighten.
        crease = ey - (eh * 1.9 - 0.3 * eh * u["AU5"]) * qb ** 0.6 - 0.01 * d
        cv.paint(cv.line(_curve(xe, crease), 0.03 * d, blur=0.008), dark, 0.5 * (1 - 0.7 * u["AU5"]))
        opening = np.concatenate([_curve(xe, upl), _curve(xe[::-1], lo[::-1])])
        if openness > 1e-3:
            white = cv.poly(opening)
            cv.paint(white, (0.94, 0.93, 0.9))
            ir = 0.105 * d * idn.eye_size
            iris = cv.poly(_ellipse(cx_e, ey + 0.02 * d, ir, ir))
            cv.paint(iris * white, idn.eye_colour)
            cv.paint(cv.poly(_ellipse(cx_e, ey + 0.02 * d, ir * 0.45, ir * 0.45)) * white, (0.03, 0.03, 0.03))
            cv.paint(cv.poly(_ellipse(cx_e + 0.03 * d, ey - 0.02 * d, ir * 0.2, ir * 0.2)) * white,
                     (1, 1, 1), 0.8)
        # Lash line on the upper lid (sits on the lower lid when closed), lower lid line.
        cv.paint(cv.line(_curve(xe, upl), 0.045 * d, blur=0.003), (0.08, 0.06, 0.05), 0.9)
        cv.paint(cv.line(_curve(xe, lo), 0.015 * d, blur=0.004), dark, 0.5)

    # Lighting: Lambert shading on a head ellipsoid, applied to everything in front of the
    # background (the background keeps its own gradient).
    nx = np.clip(x / (fw * 1.3), -1, 1)
    ny_ = np.clip((y - cy) / (2.4 * d), -1, 1)
    nz = np.sqrt(np.clip(1 - nx ** 2 - ny_ ** 2, 0.05, 1))
    lam = np.clip(nx * idn.light[0] + ny_ * idn.light[1] + nz * idn.light[2], 0, 1)
    shade = idn.ambient + (1 - idn.ambient) * 1.25 * lam
    tint = np.array([1 + idn.warmth, 1.0, 1 - idn.warmth], np.float32)
    fg = cv.fg[..., None]
    out = cv.img * (1 - fg + fg * shade[..., None] * tint)
    return np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)
