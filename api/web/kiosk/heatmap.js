/**
 * The standing pressure as a heat map on a 2D canvas (GET /v1/passports/{id}/pressure, docs/api.md): the plate
 * seen from above with the customer's toes at the top, so their left foot is on the left of the picture (plate
 * +x points up, plate +y points left). Each sensel is a square coloured from blue (light) to red (the highest
 * mean pressure); unloaded sensels stay white. Over it: each footprint's outline (grey), each foot's centre of
 * pressure path (black) and the whole body's (purple).
 *
 *   import { drawPressure, pressureColour } from "/web/kiosk/heatmap.js";
 *   drawPressure(canvas, map);   // map: the /pressure answer
 */

const BODY_PATH = "#6a1b9a";
const FOOT_PATH = "#000000";
const OUTLINE = "#6b6b6b";
const MARGIN_PX = 24;

/** The colour of a mean pressure: white when unloaded, then blue (low) through green and yellow to red (max). */
export function pressureColour(kpa, maxKpa) {
  if (kpa <= 0) return "#ffffff";
  const t = Math.min(1, kpa / maxKpa);
  return `hsl(${Math.round(240 * (1 - t))}, 85%, ${Math.round(55 - 10 * t)}%)`;
}

export function drawPressure(canvas, map) {
  const rows = map.mean_kpa.length;
  const cols = map.mean_kpa[0].length;
  const ctx = canvas.getContext("2d");
  const cell = Math.min((canvas.width - 2 * MARGIN_PX) / cols, (canvas.height - 2 * MARGIN_PX) / rows);
  const left = (canvas.width - cols * cell) / 2;
  const top = (canvas.height - rows * cell) / 2;
  // plate (x, y) mm -> canvas pixels: +x up, +y left; row i is x0 + i * pitch, column j is y0 + j * pitch
  const toPx = ([x, y]) => [left + (cols - 1 - (y - map.y0_mm) / map.pitch_mm + 0.5) * cell,
                            top + (rows - 1 - (x - map.x0_mm) / map.pitch_mm + 0.5) * cell];
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  map.mean_kpa.forEach((row, i) => row.forEach((kpa, j) => {
    if (kpa <= 0) return;
    ctx.fillStyle = pressureColour(kpa, map.max_kpa);
    ctx.fillRect(left + (cols - 1 - j) * cell, top + (rows - 1 - i) * cell, Math.ceil(cell), Math.ceil(cell));
  }));
  for (const side of ["left", "right"]) {
    for (const outline of map[side].outlines_mm) polyline(ctx, outline.map(toPx), OUTLINE, 1.5, true);
    polyline(ctx, map[side].cop_path_mm.map(toPx), FOOT_PATH, 2, false);
  }
  polyline(ctx, map.cop_path_mm.map(toPx), BODY_PATH, 3, false);
  ctx.fillStyle = "#1b1b1b";
  ctx.font = "bold 16px system-ui, sans-serif";
  ctx.fillText("L", 6, 20);
  ctx.fillText("R", canvas.width - 18, 20);
}

function polyline(ctx, points, colour, width, closed) {
  if (points.length < 2) return;
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.beginPath();
  points.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  if (closed) ctx.closePath();
  ctx.stroke();
}
