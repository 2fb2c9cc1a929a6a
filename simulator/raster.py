"""The virtual camera's inner loops, compiled with numba (they release the GIL, so the stream keeps flowing).

Why compiled loops: a sweep renders 480 native frames and must keep up with the board's 53 fps triggers.
Drawing into a depth-buffered image costs a few milliseconds this way, where numpy needed tens for its
temporaries and open3d's ray casting needed 15-30 ms for the foot alone.

Image coordinates follow OpenCV (pixel centres on integers). Depth is the camera-frame z (mm), which is also the
ray parameter for rays written as (x/z, y/z, 1).
"""

from __future__ import annotations

import numpy as np

from core.jit import njit

STACKED_MM = 0.5  # a plane drawn later wins within this depth: the chessboard lying flat on the plate


@njit(cache=True, nogil=True)
def _lit(albedo: float, facing: float, light_dn: float, diffuse_share: float) -> float:
    """Lambertian light from a lamp beside the lens plus a diffuse share that ignores the surface's tilt."""
    return albedo * light_dn * (diffuse_share + (1.0 - diffuse_share) * facing)


@njit(cache=True, nogil=True, fastmath=True)
def _bilinear(texels, c, r):
    """Texture (rows, cols, 4) at texel coordinates (c, r), zero outside: (b, g, r, coverage)."""
    rows, cols = texels.shape[0], texels.shape[1]
    c0, r0 = int(np.floor(c)), int(np.floor(r))
    fc, fr = c - c0, r - r0
    b = g = red = coverage = 0.0
    for dr in range(2):
        for dc in range(2):
            rr, cc = r0 + dr, c0 + dc
            if 0 <= rr < rows and 0 <= cc < cols:
                weight = (fr if dr else 1.0 - fr) * (fc if dc else 1.0 - fc)
                b += weight * texels[rr, cc, 0]
                g += weight * texels[rr, cc, 1]
                red += weight * texels[rr, cc, 2]
                coverage += weight * texels[rr, cc, 3]
    return b, g, red, coverage


@njit(cache=True, nogil=True)
def _level(k, level0, level1, level2, level3):
    """Mipmap level k (separate arguments: indexing a tuple at run time costs numba a copy per pixel)."""
    return level0 if k == 0 else (level1 if k == 1 else (level2 if k == 2 else level3))


@njit(cache=True, nogil=True, fastmath=True)
def draw_plane(colour, depth, rays, ray_scale, to_texels, camera_height_mm, level0, level1, level2, level3, flat,
               texel_mm, sample_rad, light_dn, diffuse_share):
    """Composite a printed plane over the image where it is nearer than what is there (or lies on it).

    rays (h, w, 3): per pixel (x/z, y/z, 1) in the camera frame; ray_scale (h, w): 1 / |ray|; sample_rad: the
    angle between neighbouring pixels. to_texels (3, 3): maps a ray to homogeneous coordinates (column, row, w)
    in the finest texture level, where w is the ray's component along the plane normal; camera_height_mm: the
    camera's height above the plane along that normal, so the hit lies at depth -camera_height_mm / w.
    level0..level3: the print as a mipmap (`texel_mm` per texel in level0, each next level half the size, each
    texel the mean of 2 x 2 finer ones), texels (rows, cols, 4) holding albedo B, G, R and coverage (1 on the
    plane). Each pixel blends the two levels whose texels match its footprint on the plane (trilinear
    filtering), so printed edges and the outline are anti-aliased and keep their sub-pixel position.
    flat (rows / 8, cols / 8, 4): per block of 8 x 8 level0 texels, its value where the block and its
    neighbours are uniform (every level reads the same there), else coverage -1: most of the plate is plain.
    """
    h, w = depth.shape
    rows, cols = level0.shape[0], level0.shape[1]
    top = 3
    for i in range(h):
        for j in range(w):
            x, y = rays[i, j, 0], rays[i, j, 1]
            hw = to_texels[2, 0] * x + to_texels[2, 1] * y + to_texels[2, 2]
            if hw == 0.0:
                continue
            inv_hw = 1.0 / hw
            z = -camera_height_mm * inv_hw
            if z <= 0.0 or z >= depth[i, j] + STACKED_MM:
                continue
            c = (to_texels[0, 0] * x + to_texels[0, 1] * y + to_texels[0, 2]) * inv_hw
            r = (to_texels[1, 0] * x + to_texels[1, 1] * y + to_texels[1, 2]) * inv_hw
            if c <= -1.0 or r <= -1.0 or c >= cols or r >= rows:
                continue
            facing = abs(hw) * ray_scale[i, j]
            block_c, block_r = int(np.floor(c * 0.125)), int(np.floor(r * 0.125))
            if 0 <= block_r < flat.shape[0] and 0 <= block_c < flat.shape[1] and flat[block_r, block_c, 3] >= 0.0:
                b, g, red, coverage = flat[block_r, block_c, 0], flat[block_r, block_c, 1], \
                    flat[block_r, block_c, 2], flat[block_r, block_c, 3]
                blend = 0.0
            else:
                footprint_mm = z / ray_scale[i, j] * sample_rad / max(facing, 0.2)
                level = min(np.log2(max(footprint_mm / texel_mm, 1.0)), float(top))
                fine = min(int(level), top)
                blend = level - fine
                scale = 0.5 ** fine
                b, g, red, coverage = _bilinear(_level(fine, level0, level1, level2, level3),
                                                (c + 0.5) * scale - 0.5, (r + 0.5) * scale - 0.5)
            if blend > 1e-3:
                scale *= 0.5
                b1, g1, r1, a1 = _bilinear(_level(fine + 1, level0, level1, level2, level3),
                                           (c + 0.5) * scale - 0.5, (r + 0.5) * scale - 0.5)
                b, g, red, coverage = (b + blend * (b1 - b), g + blend * (g1 - g), red + blend * (r1 - red),
                                       coverage + blend * (a1 - coverage))
            if coverage <= 0.0:
                continue
            # Texels are albedo times coverage (coverage is 1 on the plane), so the colours are already weighted.
            light = _lit(1.0, facing, light_dn, diffuse_share)
            keep = 1.0 - coverage
            colour[i, j, 0] = b * light + keep * colour[i, j, 0]
            colour[i, j, 1] = g * light + keep * colour[i, j, 1]
            colour[i, j, 2] = red * light + keep * colour[i, j, 2]
            if coverage >= 0.5:
                depth[i, j] = z


@njit(cache=True, nogil=True)
def _distort(x, y, lens):
    """Normalised image coordinates through OpenCV's lens model (k1, k2, p1, p2, k3)."""
    k1, k2, p1, p2, k3 = lens[0], lens[1], lens[2], lens[3], lens[4]
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    return (x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x),
            y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y)


@njit(cache=True, nogil=True, fastmath=True)
def draw_mesh(colour, depth, rays, ray_scale, vertices_mm, triangles, normals, camera_from_mesh, camera_matrix,
              lens, albedo, light_dn, diffuse_share, cull_back_faces):
    """Rasterise a uniformly coloured triangle mesh with a depth test.

    The vertices are projected with lens distortion and the triangles filled straight between them, which is
    exact enough for triangles a few pixels across (no clipping either: triangles reaching behind the camera are
    skipped). normals (T, 3): unit triangle normals in the mesh frame, along the winding (a-b-c
    counter-clockwise seen from outside); `cull_back_faces` skips those facing away, for closed meshes wound
    that way. albedo (3,): B, G, R; camera_matrix: for this image's pixel grid.
    """
    h, w = depth.shape
    n_vertices = vertices_mm.shape[0]
    pixels = np.empty((n_vertices, 2))
    z_mm = np.empty(n_vertices)
    rotation, shift = camera_from_mesh[:3, :3], camera_from_mesh[:3, 3]
    for n in range(n_vertices):
        p0, p1, p2 = vertices_mm[n, 0], vertices_mm[n, 1], vertices_mm[n, 2]
        x = rotation[0, 0] * p0 + rotation[0, 1] * p1 + rotation[0, 2] * p2 + shift[0]
        y = rotation[1, 0] * p0 + rotation[1, 1] * p1 + rotation[1, 2] * p2 + shift[1]
        z = rotation[2, 0] * p0 + rotation[2, 1] * p1 + rotation[2, 2] * p2 + shift[2]
        z_mm[n] = z
        if z < 1.0:
            continue
        xd, yd = _distort(x / z, y / z, lens)
        pixels[n, 0] = camera_matrix[0, 0] * xd + camera_matrix[0, 1] * yd + camera_matrix[0, 2]
        pixels[n, 1] = camera_matrix[1, 1] * yd + camera_matrix[1, 2]
    for t in range(triangles.shape[0]):
        a, b, c = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        if z_mm[a] < 1.0 or z_mm[b] < 1.0 or z_mm[c] < 1.0:
            continue
        xa, ya, xb, yb, xc, yc = pixels[a, 0], pixels[a, 1], pixels[b, 0], pixels[b, 1], pixels[c, 0], pixels[c, 1]
        area = (xb - xa) * (yc - ya) - (xc - xa) * (yb - ya)
        # Image y points down: a triangle wound counter-clockwise seen from outside has a negative area here.
        if area == 0.0 or (cull_back_faces and area > 0.0):
            continue
        j0 = max(int(np.ceil(min(xa, xb, xc))), 0)
        j1 = min(int(np.floor(max(xa, xb, xc))), w - 1)
        i0 = max(int(np.ceil(min(ya, yb, yc))), 0)
        i1 = min(int(np.floor(max(ya, yb, yc))), h - 1)
        if j0 > j1 or i0 > i1:
            continue
        inv_area = 1.0 / area
        m0, m1, m2 = normals[t, 0], normals[t, 1], normals[t, 2]
        nx = rotation[0, 0] * m0 + rotation[0, 1] * m1 + rotation[0, 2] * m2
        ny = rotation[1, 0] * m0 + rotation[1, 1] * m1 + rotation[1, 2] * m2
        nz = rotation[2, 0] * m0 + rotation[2, 1] * m1 + rotation[2, 2] * m2
        for i in range(i0, i1 + 1):
            for j in range(j0, j1 + 1):
                wa = ((xb - j) * (yc - i) - (xc - j) * (yb - i)) * inv_area
                wb = ((xc - j) * (ya - i) - (xa - j) * (yc - i)) * inv_area
                wc = 1.0 - wa - wb
                if wa < 0.0 or wb < 0.0 or wc < 0.0:
                    continue
                z = wa * z_mm[a] + wb * z_mm[b] + wc * z_mm[c]
                if z >= depth[i, j]:
                    continue
                depth[i, j] = z
                facing = abs(nx * rays[i, j, 0] + ny * rays[i, j, 1] + nz) * ray_scale[i, j]
                for k in range(3):
                    colour[i, j, k] = _lit(albedo[k], facing, light_dn, diffuse_share)


@njit(cache=True, nogil=True)
def plane_cuts(distance_mm, vertices_mm, triangles):
    """Where a plane cuts a mesh: one segment (start, end) per triangle with vertices on both sides.

    distance_mm (V,): signed distance of each vertex to the plane (none exactly zero).
    Returns (starts (K, 3), ends (K, 3), triangle index (K,)).
    """
    n = triangles.shape[0]
    starts, ends = np.empty((n, 3)), np.empty((n, 3))
    index = np.empty(n, np.int64)
    k = 0
    for t in range(n):
        d0, d1, d2 = distance_mm[triangles[t, 0]], distance_mm[triangles[t, 1]], distance_mm[triangles[t, 2]]
        if (d0 > 0.0 and d1 > 0.0 and d2 > 0.0) or (d0 < 0.0 and d1 < 0.0 and d2 < 0.0):
            continue
        found = 0
        for e in range(3):
            a, b = triangles[t, e], triangles[t, (e + 1) % 3]
            da, db = distance_mm[a], distance_mm[b]
            if da * db < 0.0:
                s = da / (da - db)
                out = starts if found == 0 else ends
                for m in range(3):
                    out[k, m] = vertices_mm[a, m] + s * (vertices_mm[b, m] - vertices_mm[a, m])
                found += 1
                if found == 2:
                    break
        if found == 2:
            index[k] = t
            k += 1
    return starts[:k], ends[:k], index[:k]


@njit(cache=True, nogil=True)
def splat(dn, box, pixels, weight, sigma_px):
    """Add a normalised Gaussian spot of `weight` DN*px^2 at each sub-pixel position (cut at 2.5 sigma).

    box (4,) int64: y0, y1, x0, x1 of what has been drawn so far, grown in place.
    """
    h, w = dn.shape
    radius = int(np.ceil(2.5 * sigma_px))
    norm = 1.0 / (2.0 * np.pi * sigma_px * sigma_px)
    inv_two_var = 1.0 / (2.0 * sigma_px * sigma_px)
    for p in range(pixels.shape[0]):
        u, v = pixels[p, 0], pixels[p, 1]
        bu, bv = int(np.floor(u)), int(np.floor(v))
        peak = weight[p] * norm
        for y in range(bv - radius, bv + radius + 1):
            if y < 0 or y >= h:
                continue
            for x in range(bu - radius, bu + radius + 1):
                if x < 0 or x >= w:
                    continue
                dn[y, x] += peak * np.exp(-((x - u) ** 2 + (y - v) ** 2) * inv_two_var)
                box[0], box[1] = min(box[0], y), max(box[1], y + 1)
                box[2], box[3] = min(box[2], x), max(box[3], x + 1)
