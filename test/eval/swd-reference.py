# An independent reference for src/eval/swd.ts: a NumPy port of ProGAN's
# metrics/sliced_wasserstein.py (Karras et al. 2018), written from that file, not from ours.
# Two changes only, both needed to compare numbers: the patch positions and the projection
# directions are read from files (the original draws them from numpy's global state), and
# scipy.ndimage.convolve(mode='mirror') is done with numpy.pad(mode='reflect') (the same
# border: d c b | a b c d | c b a), since scipy is not installed here.
#
# usage: python3 swd-reference.py DIR   (DIR holds meta.json, a.u8, b.u8, pos_L.i32, dirs_L_R.f32)
# prints a JSON list: SWD x1e3 per level.
import json
import os
import sys

import numpy as np

gaussian_filter = np.float32([
    [1, 4, 6, 4, 1],
    [4, 16, 24, 16, 4],
    [6, 24, 36, 24, 6],
    [4, 16, 24, 16, 4],
    [1, 4, 6, 4, 1]]) / 256.0


def convolve_mirror(minibatch, kernel):
    # scipy.ndimage.convolve(minibatch, kernel[None, None], mode='mirror'); the kernel is symmetric.
    n, c, h, w = minibatch.shape
    p = np.pad(minibatch.astype(np.float64), ((0, 0), (0, 0), (2, 2), (2, 2)), mode='reflect')
    out = np.zeros((n, c, h, w), np.float64)
    for dy in range(5):
        for dx in range(5):
            out += kernel[dy, dx] * p[:, :, dy:dy + h, dx:dx + w]
    return out.astype(minibatch.dtype)


def pyr_down(minibatch):  # matches cv2.pyrDown()
    return convolve_mirror(minibatch, gaussian_filter)[:, :, ::2, ::2]


def pyr_up(minibatch):  # matches cv2.pyrUp()
    S = minibatch.shape
    res = np.zeros((S[0], S[1], S[2] * 2, S[3] * 2), minibatch.dtype)
    res[:, :, ::2, ::2] = minibatch
    return convolve_mirror(res, gaussian_filter * 4.0)


def generate_laplacian_pyramid(minibatch, num_levels):
    pyramid = [np.float32(minibatch)]
    for i in range(1, num_levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] -= pyr_up(pyramid[-1])
    return pyramid


def get_descriptors_for_minibatch(minibatch, nhood_size, nhoods_per_image, corners):
    S = minibatch.shape  # (minibatch, channel, height, width)
    assert len(S) == 4 and S[1] == 3
    N = nhoods_per_image * S[0]
    H = nhood_size // 2
    nhood, chan, x, y = np.ogrid[0:N, 0:3, -H:H + 1, -H:H + 1]
    img = nhood // nhoods_per_image
    # The original: x + np.random.randint(H, S[3] - H, size=(N, 1, 1, 1)), likewise y.
    x = x + (corners[:, 0] + H).reshape(N, 1, 1, 1)
    y = y + (corners[:, 1] + H).reshape(N, 1, 1, 1)
    idx = ((img * S[1] + chan) * S[2] + y) * S[3] + x
    return minibatch.flat[idx]


def finalize_descriptors(desc):
    if isinstance(desc, list):
        desc = np.concatenate(desc, axis=0)
    assert desc.ndim == 4  # (neighborhood, channel, height, width)
    desc -= np.mean(desc, axis=(0, 2, 3), keepdims=True)
    desc /= np.std(desc, axis=(0, 2, 3), keepdims=True)
    desc = desc.reshape(desc.shape[0], -1)
    return desc


def sliced_wasserstein(A, B, dirs_list):
    assert A.ndim == 2 and A.shape == B.shape  # (neighborhood, descriptor_component)
    results = []
    for dirs in dirs_list:
        # The original: np.random.randn(A.shape[1], dirs_per_repeat), normalised per column.
        dirs = dirs.astype(np.float32)
        projA = np.matmul(A, dirs)  # (neighborhood, direction)
        projB = np.matmul(B, dirs)
        projA = np.sort(projA, axis=0)
        projB = np.sort(projB, axis=0)
        dists = np.abs(projA - projB)
        results.append(np.mean(dists))
    return np.mean(results)


def main(folder):
    meta = json.load(open(os.path.join(folder, 'meta.json')))
    n, h, w, levels = meta['n'], meta['height'], meta['width'], meta['levels']
    per, patch, repeats, m = meta['patchesPerImage'], meta['patchSize'], meta['repeats'], meta['directionsPerRepeat']
    dim = 3 * patch * patch

    def images(name):
        a = np.fromfile(os.path.join(folder, name), dtype=np.uint8).reshape(n, h, w, 3)
        return np.ascontiguousarray(a.transpose(0, 3, 1, 2))  # NCHW, as ProGAN feeds them

    pa = generate_laplacian_pyramid(images('a.u8'), levels)
    pb = generate_laplacian_pyramid(images('b.u8'), levels)
    out = []
    for lod in range(levels):
        corners = np.fromfile(os.path.join(folder, 'pos_%d.i32' % lod), dtype='<i4').reshape(-1, 2)
        da = finalize_descriptors(get_descriptors_for_minibatch(pa[lod], patch, per, corners))
        db = finalize_descriptors(get_descriptors_for_minibatch(pb[lod], patch, per, corners))
        dirs = [np.fromfile(os.path.join(folder, 'dirs_%d_%d.f32' % (lod, r)), dtype='<f4').reshape(m, dim).T for r in range(repeats)]
        out.append(float(sliced_wasserstein(da, db, dirs)) * 1e3)
    print(json.dumps(out))


main(sys.argv[1])
