/**
 * A 3D view of foot point clouds (three.js, vendored) in a <canvas>: drag to rotate, wheel or pinch to zoom.
 * Points are coloured by a per-point value (by default the clearance in mm: red = the shoe presses, green =
 * good, blue = roomy; a legend says so), optionally inside a shoe interior drawn as translucent rings, with
 * labelled measurement lines. Coordinates are millimetres in one frame with z up (the foot frame or the shoe
 * frame, docs/frames.md); the view draws what it is given and converts nothing.
 *
 *   import { FootView, CLEARANCE_BANDS } from "/web/shared/footview.js";
 *   const view = new FootView(container, { label: "Your foot in the shoe" });  // creates canvas + legend
 *                     // more options: legend: false, lookFrom: [x, y, z] (camera direction from the centre,
 *                     // default in front of, right of and above the toes), bands (value -> colour, see CLEARANCE_BANDS)
 *   view.setClouds([{ points, values, inside }]);   // points: [[x, y, z], ...] mm; values: mm per point (optional);
 *                                                   // inside: bool per point, false = drawn grey (the leg);
 *                                                   // colour: one CSS colour instead of values; offset: [x, y, z] mm
 *   view.setShoe(rings);                            // [{ x_mm, points_mm: [[y, z], ...] }]: closed cross-sections
 *   view.setTryOn(drawing);                         // a try-on's drawing: both feet in their shoes, side by side
 *   view.setMeasurements([{ from: [x, y, z], to: [x, y, z], label: "ball width 98 mm" }]);
 *   view.frame();                                   // aim the camera at everything drawn (set* calls do it)
 *   view.available                                  // false when the browser has no WebGL (a message is shown)
 *   view.canvas                                     // the <canvas> (drawn with preserveDrawingBuffer, for tests)
 *   view.dispose();
 *
 * Rendering happens on demand (after a change or a camera move), so an idle page costs nothing.
 */

import * as THREE from "../vendor/three/three.module.js";
import { OrbitControls } from "../vendor/three/OrbitControls.js";

/** Clearance bands (mm), in order: a value belongs to the first band whose `below` it is under. */
export const CLEARANCE_BANDS = [
  { below: 0, colour: "#d7191c", label: "presses (below 0 mm)" },
  { below: 6, colour: "#1a9641", label: "good (0 to 6 mm room)" },
  { below: Infinity, colour: "#2c7bb6", label: "roomy (6 mm or more)" },
];
export const OUTSIDE_COLOUR = "#9a9a9a"; // points outside the shoe (the leg above its opening)
const BACKGROUND = "#ffffff";
const POINT_SIZE_PX = 3;
const FRAME_MARGIN = 1.08; // room around the scene when the camera frames it
const SHOES_APART_MM = 30; // between the two shoes of a try-on

export function bandOf(value, bands = CLEARANCE_BANDS) {
  return bands.find((band) => value < band.below) || bands[bands.length - 1];
}

export class FootView {
  constructor(container, { label = "3D view of the foot", bands = CLEARANCE_BANDS, legend = true,
    lookFrom = [1, -0.6, 0.9] } = {}) {
    this.container = container;
    this.bands = bands;
    this.lookFrom = new THREE.Vector3(...lookFrom).normalize();
    this.container.classList.add("ff-view");
    this.canvas = document.createElement("canvas");
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", label);
    this.labels = document.createElement("div");
    this.labels.className = "ff-view-labels";
    this.container.append(this.canvas, this.labels);
    if (legend) this.container.append(legendElement(bands));
    try {
      this.renderer = new THREE.WebGLRenderer({ canvas: this.canvas, antialias: true, preserveDrawingBuffer: true });
    } catch {
      this.available = false;
      this.container.append(messageElement("The 3D view needs WebGL, which this browser does not offer."));
      return;
    }
    this.available = true;
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.renderer.setClearColor(BACKGROUND);
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(35, 1, 1, 5000);
    this.camera.up.set(0, 0, 1); // the frames are z up
    this.controls = new OrbitControls(this.camera, this.canvas);
    this.controls.addEventListener("change", () => this.render());
    this.groups = { clouds: new THREE.Group(), shoe: new THREE.Group(), lines: new THREE.Group() };
    Object.values(this.groups).forEach((group) => this.scene.add(group));
    this.measurements = [];
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(this.container);
    this.resize();
  }

  setClouds(clouds) {
    if (!this.available) return;
    replace(this.groups.clouds, clouds.map((cloud) => this.cloudObject(cloud)));
    this.frame();
  }

  setShoe(rings) {
    if (!this.available) return;
    const vertices = [];
    for (const ring of rings || []) {
      ring.points_mm.forEach(([y, z], j) => {
        const [y2, z2] = ring.points_mm[(j + 1) % ring.points_mm.length];
        vertices.push(ring.x_mm, y, z, ring.x_mm, y2, z2);
      });
    }
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute("position", new THREE.Float32BufferAttribute(vertices, 3));
    const material = new THREE.LineBasicMaterial({ color: "#5a5a5a", transparent: true, opacity: 0.35 });
    replace(this.groups.shoe, vertices.length ? [new THREE.LineSegments(geometry, material)] : []);
    this.frame();
  }

  /** A try-on's `drawing` (GET .../tryon?drawing=true): both feet in their shoes, side by side, the left as the
   * shoe frame has it and the right mirrored back (y -> -y), `gapMm` apart. */
  setTryOn(drawing, gapMm = SHOES_APART_MM) {
    const halfWidth = Math.max(...drawing.shoe.flatMap((ring) => ring.points_mm.map(([y]) => Math.abs(y))));
    const shift = halfWidth + gapMm / 2;
    const placed = { left: ([x, y, z]) => [x, y + shift, z], right: ([x, y, z]) => [x, -y - shift, z] };
    const sides = ["left", "right"];
    this.setShoe(sides.flatMap((side) => drawing.shoe.map((ring) => ({
      x_mm: ring.x_mm, points_mm: ring.points_mm.map(([y, z]) => placed[side]([ring.x_mm, y, z]).slice(1)) }))));
    this.setClouds(sides.map((side) => ({ points: drawing[side].points_mm.map(placed[side]),
      values: drawing[side].clearance_mm, inside: drawing[side].in_shoe })));
  }

  setMeasurements(lines) {
    if (!this.available) return;
    this.labels.replaceChildren();
    this.measurements = (lines || []).map((line) => {
      const tag = document.createElement("span");
      tag.className = "ff-view-label";
      tag.textContent = line.label;
      this.labels.append(tag);
      return { ...line, tag };
    });
    const vertices = this.measurements.flatMap((line) => [...line.from, ...line.to]);
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute("position", new THREE.Float32BufferAttribute(vertices, 3));
    const material = new THREE.LineBasicMaterial({ color: "#000000", depthTest: false });
    replace(this.groups.lines, vertices.length ? [new THREE.LineSegments(geometry, material)] : []);
    this.render();
  }

  /** Aim the camera at everything drawn, from `lookFrom`, as near as lets every corner of the scene's box show. */
  frame() {
    const box = new THREE.Box3().setFromObject(this.scene);
    if (box.isEmpty()) return this.render();
    const centre = box.getCenter(new THREE.Vector3());
    this.camera.position.copy(centre).add(this.lookFrom);
    this.camera.lookAt(centre);
    this.camera.updateMatrixWorld();
    const [right, up, back] = [0, 1, 2].map((i) => new THREE.Vector3().setFromMatrixColumn(this.camera.matrixWorld, i));
    const tanV = Math.tan(THREE.MathUtils.degToRad(this.camera.fov / 2));
    const tanH = tanV * this.camera.aspect;
    let distance = 0;
    for (const corner of boxCorners(box)) {
      const d = corner.sub(centre);
      const toward = d.dot(back);
      distance = Math.max(distance, toward + Math.abs(d.dot(right)) / tanH, toward + Math.abs(d.dot(up)) / tanV);
    }
    distance *= FRAME_MARGIN;
    this.camera.position.copy(centre).add(this.lookFrom.clone().multiplyScalar(distance));
    this.camera.near = distance / 20;
    this.camera.far = distance * 20;
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(centre);
    this.controls.update();
    this.render();
  }

  render() {
    if (!this.available) return;
    this.renderer.render(this.scene, this.camera);
    this.placeLabels();
  }

  resize() {
    const width = Math.max(1, this.container.clientWidth);
    const height = Math.max(1, this.container.clientHeight);
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.render();
  }

  dispose() {
    if (!this.available) return;
    this.resizer.disconnect();
    this.controls.dispose();
    this.renderer.dispose();
  }

  cloudObject({ points, values, inside, colour, offset = [0, 0, 0] }) {
    const positions = new Float32Array(points.length * 3);
    const colours = new Float32Array(points.length * 3);
    const single = new THREE.Color(colour || OUTSIDE_COLOUR);
    const outside = new THREE.Color(OUTSIDE_COLOUR);
    const perBand = this.bands.map((band) => new THREE.Color(band.colour));
    points.forEach((p, i) => {
      positions.set([p[0] + offset[0], p[1] + offset[1], p[2] + offset[2]], i * 3);
      let c = single;
      if (inside && !inside[i]) c = outside;
      else if (values && !colour) c = perBand[this.bands.indexOf(bandOf(values[i], this.bands))];
      colours.set([c.r, c.g, c.b], i * 3);
    });
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute("position", new THREE.BufferAttribute(positions, 3));
    geometry.setAttribute("color", new THREE.BufferAttribute(colours, 3));
    const material = new THREE.PointsMaterial({ size: POINT_SIZE_PX, sizeAttenuation: false, vertexColors: true });
    return new THREE.Points(geometry, material);
  }

  placeLabels() {
    const width = this.container.clientWidth;
    const height = this.container.clientHeight;
    for (const line of this.measurements) {
      const mid = new THREE.Vector3(...line.from).add(new THREE.Vector3(...line.to)).multiplyScalar(0.5);
      mid.project(this.camera);
      line.tag.hidden = mid.z > 1;
      line.tag.style.left = `${((mid.x + 1) / 2) * width}px`;
      line.tag.style.top = `${((1 - mid.y) / 2) * height}px`;
    }
  }
}

function boxCorners(box) {
  const { min, max } = box;
  return [0, 1, 2, 3, 4, 5, 6, 7].map((i) => new THREE.Vector3(
    i & 1 ? max.x : min.x, i & 2 ? max.y : min.y, i & 4 ? max.z : min.z));
}

function replace(group, objects) {
  for (const child of [...group.children]) {
    child.geometry.dispose();
    child.material.dispose();
    group.remove(child);
  }
  objects.forEach((object) => group.add(object));
}

function legendElement(bands) {
  const list = document.createElement("ul");
  list.className = "ff-legend";
  list.setAttribute("aria-label", "Colours");
  for (const band of [...bands, { colour: OUTSIDE_COLOUR, label: "outside the shoe" }]) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "ff-swatch";
    swatch.style.backgroundColor = band.colour;
    item.append(swatch, document.createTextNode(band.label));
    list.append(item);
  }
  return list;
}

function messageElement(text) {
  const p = document.createElement("p");
  p.className = "ff-message ff-error";
  p.setAttribute("role", "alert");
  p.textContent = text;
  return p;
}
