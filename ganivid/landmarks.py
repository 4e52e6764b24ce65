"""dlib's 68-point shape predictor (an ensemble of regression trees, Kazemi & Sullivan 2014),
read from its own .dat file and run by numba-compiled loops: the same landmarks as
`dlib.shape_predictor`, ~5x faster (benchmarks/landmarks_speed.py).

A fit reads 7,500 of the model's 120,000 leaf vectors (4 MB scattered over 100 MB), so it waits
on memory, and the more so when other processes share the cache. dlib keeps each leaf in its
own heap block behind a pointer and reads them tree after tree. Here all leaves lie in one
array, each cascade finds all its trees' leaves before summing them, and the sum asks for
each leaf's cache lines a dozen trees ahead (a prefetch hint: 1.5-1.6x), so the reads overlap.
The arithmetic is dlib's own, in its order (float32 leaf sums tree by tree, the similarity
transform in double and its 2x2 part cast to float32, pixel positions rounded half up), so
the landmarks come out equal: `tests/test_landmarks.py` compares them with dlib's."""
from __future__ import annotations

import functools
import glob
import hashlib
import math
import os

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ganivid.errors import GanividError


@njit(cache=True, boundscheck=True)
def _int(buf, pos):
    """dlib's packed integer at `pos`: a byte with the length (low 4 bits) and sign (0x80),
    then that many little-endian bytes; (value, next position)."""
    head = buf[pos]
    n = head & 0x0F
    v = 0
    for i in range(n):
        v |= np.int64(buf[pos + 1 + i]) << (8 * i)
    return (-v if head & 0x80 else v), pos + 1 + n


@njit(cache=True, boundscheck=True)
def _float(buf, pos):
    """dlib's float: mantissa and exponent as packed integers (value = mantissa * 2**exponent)."""
    m, pos = _int(buf, pos)
    e, pos = _int(buf, pos)
    if e >= 32000:  # dlib's codes for inf and nan: a model never holds them
        return np.nan, pos
    return math.ldexp(m, e), pos


@njit(cache=True, boundscheck=True)
def _column(buf, pos, out):
    """A dlib matrix<float,0,1> into `out`; the next position, or -1 if its size differs."""
    nr, pos = _int(buf, pos)
    nc, pos = _int(buf, pos)
    if abs(nr) * abs(nc) != out.size:
        return -1
    for i in range(out.size):
        out[i], pos = _float(buf, pos)
    return pos


@njit(cache=True, boundscheck=True)
def _sizes(buf):
    """(format version, landmark coordinates, cascades, trees per cascade, splits per tree), the
    last two from the first tree."""
    version, pos = _int(buf, 0)
    nr, pos = _int(buf, pos)
    nc, pos = _int(buf, pos)
    coords = abs(nr) * abs(nc)
    for i in range(coords):
        _, pos = _float(buf, pos)
    cascades, pos = _int(buf, pos)
    trees, pos = _int(buf, pos)
    splits, pos = _int(buf, pos)
    return version, coords, cascades, trees, splits


@njit(cache=True, boundscheck=True)
def _forests(buf, initial, idx, thresh, leaves):
    """Fill the initial shape and the trees from a shape_predictor file; the position after
    them, or -1 where the file's layout differs from the arrays'."""
    _, pos = _int(buf, 0)
    pos = _column(buf, pos, initial)
    if pos < 0:
        return -1
    cascades, pos = _int(buf, pos)
    if cascades != idx.shape[0]:
        return -1
    for c in range(cascades):
        trees, pos = _int(buf, pos)
        if trees != idx.shape[1]:
            return -1
        for t in range(trees):
            splits, pos = _int(buf, pos)
            if splits != idx.shape[2]:
                return -1
            for s in range(splits):
                idx[c, t, s, 0], pos = _int(buf, pos)
                idx[c, t, s, 1], pos = _int(buf, pos)
                thresh[c, t, s], pos = _float(buf, pos)
            n, pos = _int(buf, pos)
            if n != leaves.shape[2]:
                return -1
            for k in range(n):
                pos = _column(buf, pos, leaves[c, t, k])
                if pos < 0:
                    return -1
    return pos


@njit(cache=True, boundscheck=True)
def _features(buf, pos, anchors, deltas):
    """Fill each cascade's feature pixels (anchor landmark, offset); the position after them,
    or -1 where the layout differs."""
    n, pos = _int(buf, pos)
    if n != anchors.shape[0]:
        return -1
    for c in range(n):
        m, pos = _int(buf, pos)
        if m != anchors.shape[1]:
            return -1
        for i in range(m):
            anchors[c, i], pos = _int(buf, pos)
    n, pos = _int(buf, pos)
    if n != deltas.shape[0]:
        return -1
    for c in range(n):
        m, pos = _int(buf, pos)
        if m != deltas.shape[1]:
            return -1
        for i in range(m):
            deltas[c, i, 0], pos = _float(buf, pos)
            deltas[c, i, 1], pos = _float(buf, pos)
    return pos


@intrinsic
def _prefetch(typingctx, vector, i):
    """Ask the CPU to start loading the cache line of vector[i] (1-d array): LLVM's prefetch, a
    hint that changes no value."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        at = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        byte = ir.IntType(8).as_pointer()  # "ptr" where LLVM's pointers are opaque, "i8*" where typed
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [byte] + [ir.IntType(32)] * 3),
                                            "llvm.prefetch.p0" if str(byte) == "ptr" else "llvm.prefetch.p0i8")
        read, keep, data = (ir.Constant(ir.IntType(32), v) for v in (0, 3, 1))
        builder.call(fn, [builder.bitcast(at, byte), read, keep, data])
        return context.get_dummy_value()

    return types.void(vector, i), codegen


class ShapePredictor:
    """A dlib shape predictor as flat arrays (`read` one from its .dat file)."""

    def __init__(self, initial, idx, thresh, leaves, anchors, deltas):
        self.initial, self.idx, self.thresh = initial, idx, thresh
        self.leaves, self.anchors, self.deltas = leaves, anchors, deltas
        cascades, trees, splits = thresh.shape
        coords, pixels = initial.size, anchors.shape[-1]
        shapes = (initial.shape == (coords,) and coords % 2 == 0 and idx.shape == (cascades, trees, splits, 2)
                  and leaves.shape == (cascades, trees, splits + 1, coords) and anchors.shape == (cascades, pixels)
                  and deltas.shape == (cascades, pixels, 2))
        types = [a.dtype for a in (initial, idx, thresh, leaves, anchors, deltas)] == [
            np.float32, np.int32, np.float32, np.float32, np.int32, np.float32]
        # numba checks no bounds in `_predict`: an index out of range would read past the arrays
        if not (shapes and types and 0 <= idx.min() and idx.max() < pixels and 0 <= anchors.min()
                and anchors.max() < coords // 2):
            raise GanividError("not a usable shape predictor")
        # numba loads (or, the first time, compiles) the fit on its first call: here, with the
        # model, not in the middle of the first video (~0.3-0.6 s from its cache)
        for shape in ((8, 8), (8, 8, 3)):
            self(np.zeros(shape, np.uint8), (0, 0, 7, 7))

    @classmethod
    def read(cls, path: str) -> ShapePredictor:
        """Parse a dlib shape_predictor .dat file (~0.6 s for the 100 MB 68-point model)."""
        buf = np.fromfile(path, np.uint8)
        bad = GanividError(f"{path}: not a dlib shape predictor file")
        try:
            version, coords, cascades, trees, splits = _sizes(buf)
            if version != 1 or coords < 2 or not 0 < cascades < 100 or not 0 < trees < 10**5 \
                    or not 0 < splits < 2**16:
                raise bad
            initial = np.empty(coords, np.float32)
            idx = np.empty((cascades, trees, splits, 2), np.int32)
            thresh = np.empty((cascades, trees, splits), np.float32)
            leaves = np.empty((cascades, trees, splits + 1, coords), np.float32)
            pos = _forests(buf, initial, idx, thresh, leaves)
            pixels = _int(buf, _int(buf, pos)[1])[0] if pos > 0 else -1
            if not 0 < pixels < 10**5:
                raise bad
            anchors = np.empty((cascades, pixels), np.int32)
            deltas = np.empty((cascades, pixels, 2), np.float32)
            if _features(buf, pos, anchors, deltas) != len(buf):
                raise bad
            return cls(initial, idx, thresh, leaves, anchors, deltas)
        except (IndexError, GanividError):  # a short file runs past the end (the parser checks bounds)
            raise bad from None

    def __call__(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """Landmarks (n, 2) float32 (whole pixels, as dlib's) of the face in `box` (left, top,
        right, bottom, integers) of a uint8 image, grey (h, w) or RGB (h, w, 3)."""
        image = np.ascontiguousarray(image)
        if image.dtype != np.uint8 or not (image.ndim == 2 or image.ndim == 3 and image.shape[2] == 3):
            raise ValueError(f"landmarks need a grey or RGB uint8 image, got {image.dtype} {image.shape}")
        out = np.empty((self.initial.size // 2, 2), np.float32)
        left, top, right, bottom = map(float, box)
        _predict(image if image.ndim == 3 else image[:, :, None], left, top, right, bottom,
                 self.initial, self.idx, self.thresh, self.leaves, self.anchors, self.deltas, out)
        return out


_AHEAD = 12  # leaves prefetched ahead of the sum (8-24 all gave 1.45-1.6x)


@njit(cache=True, nogil=True)
def _predict(img, left, top, right, bottom, initial, idx, thresh, leaves, anchors, deltas, out):
    """dlib::shape_predictor::operator() on an (h, w, 1) grey or (h, w, 3) RGB image; writes the
    landmarks to `out`. Only the feature pixels are read: an RGB pixel's intensity is dlib's
    (r + g + b) // 3."""
    n = initial.size // 2
    h, w, channels = img.shape
    shape = initial.copy()
    feats = np.empty(anchors.shape[1], np.float32)
    which = np.empty(idx.shape[1], np.int64)
    # unnormalizing_tform(rect): the unit square onto the box's corners
    sx, sy = right - left, bottom - top
    for c in range(idx.shape[0]):
        # find_tform_between_shapes(initial, shape): Umeyama's similarity, in double. In two
        # dimensions its c*R, with R kept a rotation, is [[a+d, b-c], [c-b, a+d]] / var(from) of
        # the covariance [[a, b], [c, d]], whatever the sign of its determinant.
        mfx = mfy = mtx = mty = 0.0
        for i in range(n):
            mfx += initial[2 * i]
            mfy += initial[2 * i + 1]
            mtx += shape[2 * i]
            mty += shape[2 * i + 1]
        mfx, mfy, mtx, mty = mfx / n, mfy / n, mtx / n, mty / n
        var = ca = cb = cc = cd = 0.0
        for i in range(n):
            fx, fy = initial[2 * i] - mfx, initial[2 * i + 1] - mfy
            tx, ty = shape[2 * i] - mtx, shape[2 * i + 1] - mty
            var += fx * fx + fy * fy
            ca += tx * fx
            cb += tx * fy
            cc += ty * fx
            cd += ty * fy
        m00 = np.float32((ca + cd) / var)
        m01 = np.float32((cb - cc) / var)
        m10 = np.float32((cc - cb) / var)
        m11 = m00
        for i in range(feats.size):
            a = anchors[c, i]
            dx, dy = deltas[c, i, 0], deltas[c, i, 1]
            px = np.float32(m00 * dx + m01 * dy) + shape[2 * a]
            py = np.float32(m10 * dx + m11 * dy) + shape[2 * a + 1]
            x = int(np.floor(left + sx * np.float64(px) + 0.5))
            y = int(np.floor(top + sy * np.float64(py) + 0.5))
            if not (0 <= x < w and 0 <= y < h):
                feats[i] = 0.0
            elif channels == 1:
                feats[i] = img[y, x, 0]
            else:
                feats[i] = (np.int32(img[y, x, 0]) + np.int32(img[y, x, 1]) + np.int32(img[y, x, 2])) // 3
        # Every tree's leaf first, then their sum: the leaves' addresses are all known before
        # the first is read, so the memory reads overlap (1.2-1.3x faster than tree by tree).
        splits = idx.shape[2]
        for t in range(idx.shape[1]):
            s = 0
            while s < splits:
                if feats[idx[c, t, s, 0]] - feats[idx[c, t, s, 1]] > thresh[c, t, s]:
                    s = 2 * s + 1
                else:
                    s = 2 * s + 2
            which[t] = s - splits
        for t in range(idx.shape[1]):  # in dlib's order: the same float32 sums
            if t + _AHEAD < which.size:  # a later leaf's lines are on their way meanwhile
                ahead = leaves[c, t + _AHEAD, which[t + _AHEAD]]
                for k in range(0, ahead.size, 16):
                    _prefetch(ahead, k)
                _prefetch(ahead, ahead.size - 1)
            leaf = leaves[c, t, which[t]]
            for k in range(shape.size):
                shape[k] += leaf[k]
    for i in range(n):
        out[i, 0] = np.floor(left + sx * np.float64(shape[2 * i]) + 0.5)
        out[i, 1] = np.floor(top + sy * np.float64(shape[2 * i + 1]) + 0.5)


_ARRAYS = ("initial", "idx", "thresh", "leaves", "anchors", "deltas")
_FORMAT = 1  # of the cached arrays


def _cache_file(path: str) -> str:
    """Where the arrays read from `path` are kept: the user's cache folder, named after the model
    file's name, size and a hash of its first, middle and last MiB (its content, not its path or
    time: every install of the same model shares one entry, a changed model gets its own)."""
    size = os.path.getsize(path)
    h = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as f:
        for at in (0, size // 2, max(size - 2**20, 0)):
            f.seek(at)
            h.update(f.read(2**20))
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "ganivid", f"{os.path.basename(path)}.{size}.{h.hexdigest()}.v{_FORMAT}.npz")


def load(path: str) -> ShapePredictor:
    """The predictor in `path`; its arrays are cached after the first read (0.6 s to parse the
    100 MB model, ~0.05 s to load them back; without a writable cache folder it parses each time).
    Writing an entry removes the model's older ones (67 MB each)."""
    cached = _cache_file(path)
    try:
        with np.load(cached) as z:
            return ShapePredictor(*(z[name] for name in _ARRAYS))
    except Exception:  # not cached yet, or damaged (any way): read the model again
        pass
    sp = ShapePredictor.read(path)
    try:
        from ganivid.fileio import atomic_path

        folder = os.path.dirname(cached)
        os.makedirs(folder, exist_ok=True)
        with atomic_path(cached) as tmp, open(tmp, "wb") as f:
            np.savez(f, **{name: getattr(sp, name) for name in _ARRAYS})
        stale = glob.glob(os.path.join(glob.escape(folder), glob.escape(os.path.basename(path)) + ".*.npz"))
        for old in stale:
            if old != cached:
                os.remove(old)
    except OSError:  # a read-only home: no cache, nothing else lost
        pass
    return sp


@functools.cache
def shape_predictor_68() -> ShapePredictor:
    """face_recognition_models' 68-point predictor, loaded once per process."""
    from ganivid.faces import models_dir

    return load(os.path.join(models_dir(), "shape_predictor_68_face_landmarks.dat"))
