/**
 * Reads the point clouds the service serves (GET /v1/passports/{id}/points/{side}): binary little-endian PLY
 * with float32 vertex properties, x y z first (core.mesh.write_points). The vendored three.js has no PLY
 * loader, and this format needs none.
 *
 *   import { parsePly, thinned } from "/web/kiosk/ply.js";
 *   const points = parsePly(arrayBuffer);   // [[x, y, z], ...] mm
 *   thinned(points, 6000)                   // every k-th point, at most 6000
 */

export function parsePly(buffer) {
  const bytes = new Uint8Array(buffer);
  const end = findHeaderEnd(bytes);
  const header = new TextDecoder("ascii").decode(bytes.subarray(0, end)).split("\n");
  if (header[0].trim() !== "ply" || !header.some((l) => l.startsWith("format binary_little_endian"))) {
    throw new Error("The foot's point file is not a binary PLY: scan the customer again.");
  }
  const count = Number(header.find((l) => l.startsWith("element vertex")).split(/\s+/)[2]);
  const properties = header.filter((l) => l.startsWith("property "));
  if (properties.some((l) => l.split(/\s+/)[1] !== "float")) {
    throw new Error("The foot's point file has properties other than float: scan the customer again.");
  }
  const stride = properties.length;
  const values = new Float32Array(buffer.slice(end, end + count * stride * 4));
  const points = new Array(count);
  for (let i = 0; i < count; i++) points[i] = [values[i * stride], values[i * stride + 1], values[i * stride + 2]];
  return points;
}

export function thinned(points, most) {
  const step = Math.max(1, Math.ceil(points.length / most));
  return points.filter((_, i) => i % step === 0);
}

function findHeaderEnd(bytes) {
  const marker = new TextEncoder().encode("end_header\n");
  for (let i = 0; i + marker.length <= Math.min(bytes.length, 4096); i++) {
    if (marker.every((b, j) => bytes[i + j] === b)) return i + marker.length;
  }
  throw new Error("The foot's point file has no PLY header: scan the customer again.");
}
