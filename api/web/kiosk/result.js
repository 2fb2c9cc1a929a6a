/**
 * The kiosk's result screen for one passport (docs/kiosk.md): both feet in 3D with their measurements, the
 * standing pressure heat map with the arch types, sizes in the store's size system, the top three shoes (with
 * the store's filters), the foot-in-shoe view for any shoe and size, a try of the size on screen in one tap per
 * outcome (kept, or where it was wrong and which way), and the customer's choice.
 *
 *   import { Result } from "/web/kiosk/result.js";
 *   const result = new Result(api, { sizeSystem: "eu", report: (error) => ... });
 *   await result.show(passportId);
 */

import { fillCategories } from "../shared/categories.js";
import { FootView } from "../shared/footview.js";
import { drawPressure } from "./heatmap.js";
import { parsePly, thinned } from "./ply.js";

const SIDES = ["left", "right"];
const SIDE_NAMES = { left: "Left", right: "Right" };
const FEET_APART_MM = 180; // between the two feet's axes in the 3D view (they stand side by side)
// The feet are seen from behind the heels and above, as staff see a customer standing on the rig: in both feet's
// foot frames +x points to the toes and +y to the customer's left (docs/frames.md), so the left foot is on the left.
const FEET_SEEN_FROM = [-1, -0.3, 0.8];
const VIEW_POINTS = 6000; // per foot in the 3D view
const REGION_NAMES = { toe: "Toes", ball: "Ball", instep: "Instep", heel: "Heel" };
const MEASUREMENT_ROWS = [
  ["length_mm", "Length"], ["ball_width_mm", "Ball width"], ["ball_girth_mm", "Ball girth"],
  ["instep_girth_mm", "Instep girth"], ["heel_width_mm", "Heel width"], ["instep_height_mm", "Instep height"],
];
const ARCH_WORDS = { high: "high arch", normal: "normal arch", flat: "flat foot (low arch)" };
// What became of a tried size, one button each: kept, or not kept with the complaint's region and direction
// (core/vocabulary.py's REGIONS and FIT_DIRECTIONS); `said` ends the page's confirmation.
const TRY_OUTCOMES = [
  { label: "Kept: it fits", said: "kept it" },
  { label: "Toes hit (too short)", said: "toes hit", complaint: { region: "toe", direction: "tight" } },
  { label: "Too long", said: "too long", complaint: { region: "toe", direction: "loose" } },
  { label: "Ball pinches", said: "ball pinches", complaint: { region: "ball", direction: "tight" } },
  { label: "Ball loose", said: "ball loose", complaint: { region: "ball", direction: "loose" } },
  { label: "Instep presses", said: "instep presses", complaint: { region: "instep", direction: "tight" } },
  { label: "Instep loose", said: "instep loose", complaint: { region: "instep", direction: "loose" } },
  { label: "Heel pinches", said: "heel pinches", complaint: { region: "heel", direction: "tight" } },
  { label: "Heel slips", said: "heel slips", complaint: { region: "heel", direction: "loose" } },
];
const $ = (id) => document.getElementById(id);

/** A size from a passport's sizes (core/sizes.py) in one size system, as staff say it. */
export function sizeIn(sizes, system) {
  const half = (v) => String(Math.round(v * 2) / 2);
  return {
    eu: () => `EU ${half(sizes.eu)}`,
    uk: () => `UK ${half(sizes.uk)}`,
    us: () => `US ${half(sizes.us_men)} men / ${half(sizes.us_women)} women`,
    mondopoint: () => `Mondopoint ${sizes.mondopoint}`,
  }[system]();
}

export class Result {
  constructor(api, { sizeSystem, report }) {
    this.api = api;
    this.sizeSystem = sizeSystem;
    this.report = report; // shows an error without leaving the screen
    this.feetView = null;
    this.shoeView = null;
    this.passportId = null;
    this.advised = null; // the SKU of the best size of the shoe in the foot-in-shoe view: the advice given
    this.tried = null; // {label, sku, recommendedSku} of the shoe and size in the foot-in-shoe view
    fillCategories($("f-category"));
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      this.guard(() => this.showShoes());
    });
    $("any-shoe").addEventListener("submit", (event) => {
      event.preventDefault();
      this.guard(() => this.showAnyShoe(Number($("any-model").value)));
    });
    $("choose").addEventListener("click", () => this.guard(() => this.choose(this.tried)));
    $("try-outcomes").replaceChildren(...TRY_OUTCOMES.map((outcome) => {
      const b = button(outcome.label, () => this.guard(() => this.recordTry(this.tried, outcome)));
      b.className = outcome.complaint ? "kiosk-secondary" : "kiosk-try-kept";
      return b;
    }));
  }

  async show(passportId) {
    this.passportId = passportId;
    this.advised = null;
    this.tried = null;
    $("chosen").textContent = "";
    $("tried").textContent = "";
    $("choose").hidden = true;
    $("try").hidden = true;
    $("in-shoe-sizes").replaceChildren();
    $("in-shoe-name").textContent = "Choose a shoe below, or enter any product number.";
    $("in-shoe-regions").hidden = true;
    $("in-shoe-view").hidden = true;
    const passport = await this.api.get(`/passports/${passportId}`, { view: "staff" });
    this.showMeasurements(passport);
    await Promise.all([this.guard(() => this.showFeet(passport)), this.guard(() => this.showPressure()),
      this.guard(() => this.showShoes())]);
  }

  async guard(action) {
    try {
      await action();
    } catch (error) {
      this.report(error);
    }
  }

  showMeasurements(passport) {
    const feet = passport.feet;
    const rows = MEASUREMENT_ROWS.map(([field, name]) =>
      tableRow(name, SIDES.map((side) => feet[side].measurements[field].toFixed(1))));
    rows.push(tableRow("Toe shape", SIDES.map((side) => feet[side].toe_shape)));
    rows.push(tableRow("Size", SIDES.map((side) => sizeIn(feet[side].sizes, this.sizeSystem))));
    $("measurements").tBodies[0].replaceChildren(...rows);
    $("result-title").textContent =
      `Result for ${passport.customer}: shoe size ${sizeIn(passport.pair_sizes, this.sizeSystem)}`;
  }

  async showFeet(passport) {
    this.feetView = this.feetView || new FootView($("feet-view"),
      { label: "Both feet in 3D: drag to turn, scroll or pinch to zoom", legend: false, lookFrom: FEET_SEEN_FROM });
    const clouds = await Promise.all(SIDES.map((side) => this.points(passport.points[side])));
    const offset = { left: [0, FEET_APART_MM / 2, 0], right: [0, -FEET_APART_MM / 2, 0] };
    this.feetView.setClouds(SIDES.map((side, i) => ({ points: clouds[i], colour: "#0b5394", offset: offset[side] })));
    this.feetView.setMeasurements(SIDES.flatMap((side, i) =>
      measurementLines(clouds[i], passport.feet[side].measurements, offset[side], side)));
    $("feet-view").dataset.points = clouds[0].length + clouds[1].length;
  }

  async points(url) {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${this.api.key}` } });
    if (!response.ok) throw new Error(`The foot's points could not be loaded (${response.status}): sign in again.`);
    return thinned(parsePly(await response.arrayBuffer()), VIEW_POINTS);
  }

  async showPressure() {
    const canvas = $("heatmap");
    let map;
    try {
      map = await this.api.get(`/passports/${this.passportId}/pressure`);
    } catch (error) {
      if (error.status !== 404) throw error;
      canvas.hidden = true;
      $("heatmap-scale").textContent = "";
      $("arch").textContent = "No pressure picture: this passport was uploaded, not scanned here.";
      return;
    }
    canvas.hidden = false;
    drawPressure(canvas, map);
    $("heatmap-scale").textContent = `Colours: blue = light, red = the highest mean pressure (${Math.round(
      map.max_kpa)} kPa). Black lines: each foot's centre of pressure; purple: the whole body's.`;
    $("arch").textContent = SIDES.map((side) =>
      `${SIDE_NAMES[side]} foot: ${ARCH_WORDS[map[side].arch_type]} (arch index ${map[side].arch_index.toFixed(2)})`)
      .join(". ") + ".";
  }

  async showShoes() {
    const form = new FormData($("filters"));
    const shoes = await this.api.get(`/passports/${this.passportId}/recommendations`,
      { n: 3, ...Object.fromEntries(form.entries()) });
    const list = $("shoes");
    list.replaceChildren(...shoes.map((shoe) => this.shoeCard(shoe)));
    if (!shoes.length) {
      list.replaceChildren(Object.assign(document.createElement("li"), {
        textContent: "No shoe in stock here fits these feet with these filters: widen the filters." }));
    }
  }

  shoeCard(shoe) {
    const item = document.createElement("li");
    item.className = "kiosk-shoe";
    const title = Object.assign(document.createElement("h4"), { textContent: `${shoe.brand} ${shoe.model_name}` });
    const facts = Object.assign(document.createElement("p"), {
      textContent: `Size ${sizeName(shoe.fit)} · fit ${Math.round(shoe.fit.score)} of 100 · ${shoe.category} · ${
        shoe.price.toFixed(2)} ${shoe.currency}` });
    const say = Object.assign(document.createElement("blockquote"),
      { className: "kiosk-say", textContent: shoe.reason });
    const show = button("Show in the shoe", () => this.guard(() => this.showInShoe(
      `${shoe.brand} ${shoe.model_name}`, shoe.fit)));
    const choose = button("Customer chooses this", () => this.guard(() => this.choose(
      { label: `${shoe.brand} ${shoe.model_name}, size ${sizeName(shoe.fit)}`, sku: shoe.fit.sku,
        recommendedSku: shoe.fit.sku, advice: adviceOf(shoe.fit) })));
    const actions = document.createElement("div");
    actions.className = "ff-row";
    actions.append(show, choose);
    item.append(title, facts, verdictTable(shoe.fit), say, actions);
    return item;
  }

  async showAnyShoe(modelId) {
    const fit = await this.api.get(`/passports/${this.passportId}/sizes/${modelId}`);
    await this.showInShoe(`Product ${modelId}`, fit);
  }

  async showInShoe(name, fit) {
    this.advised = fit.sku;
    this.advice = adviceOf(fit);
    $("in-shoe-name").textContent = `${name}: best size ${sizeName(fit)}`;
    const sizes = [fit.size_down, fit, fit.size_up].filter(Boolean);
    $("in-shoe-sizes").replaceChildren(...sizes.map((size) => {
      const b = button(size === fit ? `${sizeName(size)} (best)` : sizeName(size),
        () => this.guard(() => this.tryOn(name, fit.model_id, size)));
      b.dataset.sizeId = size.size_id;
      return b;
    }));
    await this.tryOn(name, fit.model_id, fit);
    $("in-shoe-title").focus();
  }

  async tryOn(name, modelId, size) {
    const tried = await this.api.get(`/passports/${this.passportId}/tryon`,
      { model_id: modelId, size_id: size.size_id, drawing: true, per_point: false });
    for (const b of $("in-shoe-sizes").children) b.setAttribute("aria-pressed", b.dataset.sizeId == size.size_id);
    $("in-shoe-view").hidden = false;
    this.shoeView = this.shoeView || new FootView($("in-shoe-view"),
      { label: "Both feet inside the shoes, coloured by the room left" });
    this.shoeView.setTryOn(tried.drawing);
    const table = $("in-shoe-regions");
    table.tBodies[0].replaceChildren(...tried.size.left.regions.map((left, i) =>
      tableRow(REGION_NAMES[left.region], [left, tried.size.right.regions[i]].map(verdictText))));
    table.hidden = false;
    this.tried = { label: `${name}, size ${sizeName(tried.size)}`, sku: tried.size.sku,
      recommendedSku: this.advised, advice: this.advice };
    $("tried").textContent = ""; // a try recorded before was of another shoe or size
    $("try-title").textContent = `The customer tried size ${sizeName(tried.size)}: how did it fit?`;
    $("try").hidden = false;
    $("choose").hidden = false;
    $("in-shoe").dataset.sizeId = size.size_id;
  }

  async choose(shoe) {
    await this.api.post(`/passports/${this.passportId}/feedback`,
      { event: "chosen", sku: shoe.sku, recommended_sku: shoe.recommendedSku, ...shoe.advice });
    $("chosen").textContent = `Recorded: the customer chose ${shoe.label} (SKU ${shoe.sku}).`;
  }

  /** One tap records the try of the size on screen: kept, or not kept with where and which way (the tapped one
   * of TRY_OUTCOMES). Taps while one is being recorded are ignored, so a double tap records once; the buttons stay
   * enabled, so the focus stays where it was. */
  async recordTry(shoe, { said, complaint }) {
    const group = $("try");
    if (group.getAttribute("aria-busy") === "true") return;
    const outcome = complaint ? { kept: false, complaint } : { kept: true };
    group.setAttribute("aria-busy", "true");
    try {
      await this.api.post(`/passports/${this.passportId}/feedback`,
        { event: "tried", sku: shoe.sku, recommended_sku: shoe.recommendedSku, ...shoe.advice, ...outcome });
    } finally {
      group.removeAttribute("aria-busy");
    }
    if (this.tried !== shoe) return; // another shoe or customer came on screen meanwhile: the words would not hold
    $("tried").textContent = `Recorded: the customer tried ${shoe.label} (SKU ${shoe.sku}): ${said}.`;
  }
}

/** Length down the middle of the foot, ball width across its widest forefoot slice, instep height up its outer
 * side: three lines whose labels (at their middles) do not cover each other. In both foot frames +y points to the
 * customer's left, so the outer side is +y for the left foot and -y for the right one. */
function measurementLines(points, m, [dx, dy], side) {
  const at = ([x, y, z]) => [x + dx, y + dy, z];
  const ys = points.map((p) => p[1]);
  const middle = (Math.min(...ys) + Math.max(...ys)) / 2;
  const outer = side === "left" ? Math.max(...ys) : Math.min(...ys);
  const ball = widestSlice(points, 0.55 * m.length_mm, 0.85 * m.length_mm);
  const instepX = m.length_mm / 2;
  return [
    { from: at([0, middle, 0]), to: at([m.length_mm, middle, 0]),
      label: `${SIDE_NAMES[side]} length ${m.length_mm.toFixed(0)}` },
    { from: at([ball.x, ball.yMin, 10]), to: at([ball.x, ball.yMax, 10]), label: `ball ${m.ball_width_mm.toFixed(0)}` },
    { from: at([instepX, outer, 0]), to: at([instepX, outer, m.instep_height_mm]),
      label: `instep ${m.instep_height_mm.toFixed(0)}` },
  ];
}

function widestSlice(points, from, to, step = 5) {
  let best = { x: (from + to) / 2, yMin: 0, yMax: 0 };
  for (let x = from; x < to; x += step) {
    const ys = points.filter((p) => p[0] >= x && p[0] < x + step).map((p) => p[1]);
    if (ys.length && Math.max(...ys) - Math.min(...ys) > best.yMax - best.yMin) {
      best = { x: x + step / 2, yMin: Math.min(...ys), yMax: Math.max(...ys) };
    }
  }
  return best;
}

function verdictTable(fit) {
  const table = document.createElement("table");
  table.className = "kiosk-table kiosk-verdicts";
  const head = document.createElement("thead");
  head.append(tableRow("", ["Left", "Right"], "col"));
  const body = document.createElement("tbody");
  body.append(...fit.left.regions.map((left, i) =>
    tableRow(REGION_NAMES[left.region], [left, fit.right.regions[i]].map(verdictText))));
  table.append(head, body);
  return table;
}

function verdictText(region) {
  const span = Object.assign(document.createElement("span"),
    { className: `ff-verdict-${region.verdict}`, textContent: region.verdict });
  const room = region.region === "toe" ? "room in front" : "room";
  const cell = document.createDocumentFragment();
  const across = region.width_mm == null ? "" : `, across ${Math.round(region.width_mm) || 0} mm`;
  cell.append(span, ` (${room} ${Math.round(region.value_mm) || 0} mm${across})`); // || 0: no "-0"
  return cell;
}

function tableRow(name, cells, scope = "row") {
  const tr = document.createElement("tr");
  tr.append(Object.assign(document.createElement("th"), { scope, textContent: name }));
  for (const content of cells) {
    const cell = document.createElement(scope === "col" ? "th" : "td");
    if (scope === "col") cell.scope = "col";
    cell.append(content);
    tr.append(cell);
  }
  return tr;
}

function button(text, onClick) {
  const b = Object.assign(document.createElement("button"), { type: "button", textContent: text });
  b.addEventListener("click", onClick);
  return b;
}

function sizeName(size) {
  const width = size.width && size.width !== "standard" ? `, ${size.width} width` : "";
  return `${size.size_system.toUpperCase()} ${size.size_label}${width}`;
}

/** What advice the customer was given (the learned state's version and the A/B arm), posted back with their
 * feedback so that the learning's uplift over the holdout is measured (docs/learning.md). */
function adviceOf(fit) {
  return { learning_version: fit.learning_version ?? undefined, advice_arm: fit.advice_arm ?? undefined };
}
