/**
 * The webshop try-on page, and an example of the public fit API with a webshop key (docs/webshop-tryon.md).
 *
 *   /tryon?passport=<passport id>&model=<model id>[&category=running]#key=ff_...
 *
 * It makes three calls, all with the key as "Authorization: Bearer":
 *   GET /v1/passports/{id}/sizes/{model}                               the recommended size and one down and up
 *   GET /v1/passports/{id}/tryon?model_id=&size_id=&drawing=true&per_point=false   verdicts + the feet in the shoe
 *   GET /v1/passports/{id}/recommendations?n=3&category=               shoes that fit, each in its best size
 * The key comes from the URL fragment (never sent to a server) or the key field; a webshop should rather proxy
 * these calls and keep its key on its server.
 */

import { FitApi, keyFromFragment } from "../shared/api.js";
import { fillCategories } from "../shared/categories.js";
import { FootView } from "../shared/footview.js";

const REGION_NAMES = { toe: "Toes", ball: "Ball of the foot", instep: "Instep", heel: "Heel" };
const $ = (id) => document.getElementById(id);
const page = { api: null, passport: "", view: null };

function start() {
  const query = new URLSearchParams(window.location.search);
  $("passport").value = query.get("passport") || "";
  $("model").value = query.get("model") || "";
  fillCategories($("category"));
  $("category").value = query.get("category") || "";
  const key = keyFromFragment();
  if (key) {
    $("key").value = key;
    history.replaceState(null, "", window.location.pathname + window.location.search); // not left in the address bar
  }
  $("setup").addEventListener("submit", (event) => {
    event.preventDefault();
    showProduct();
  });
  $("browse").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(showShoes);
  });
  if ($("setup").checkValidity()) showProduct();
}

function showProduct(modelId = Number($("model").value)) {
  page.api = new FitApi($("key").value.trim());
  page.passport = $("passport").value.trim();
  $("model").value = modelId;
  return guarded(async () => {
    const fit = await page.api.get(`/passports/${page.passport}/sizes/${modelId}`);
    showRecommended(fit);
    await tryOn(fit.model_id, fit.size_id);
  });
}

function showRecommended(fit) {
  $("product").textContent = `Product ${fit.model_id} (${fit.sku})`;
  $("recommended").textContent = fit.fits
    ? `Your size: ${sizeName(fit)}, fits with ${Math.round(fit.score)} of 100`
    : `No size of this shoe fits you well; the closest is ${sizeName(fit)} (${Math.round(fit.score)} of 100)`;
  const sizes = $("sizes");
  sizes.replaceChildren(...[fit.size_down, fit, fit.size_up].filter(Boolean).map((size) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.sizeId = size.size_id;
    button.textContent = size === fit ? `${sizeName(size)} (your size)` : sizeName(size);
    button.addEventListener("click", () => guarded(() => tryOn(fit.model_id, size.size_id)));
    return button;
  }));
}

async function tryOn(modelId, sizeId) {
  const tried = await page.api.get(`/passports/${page.passport}/tryon`,
    { model_id: modelId, size_id: sizeId, drawing: true, per_point: false });
  const section = $("tryon");
  section.hidden = false;
  for (const button of $("sizes").children) button.setAttribute("aria-pressed", button.dataset.sizeId == sizeId);
  $("size-label").textContent = sizeName(tried.size);
  $("regions").tBodies[0].replaceChildren(...tried.size.left.regions.map((left, i) =>
    row(REGION_NAMES[left.region], [left, tried.size.right.regions[i]])));
  page.view = page.view || new FootView($("view"), { label: "Both feet inside the shoes, coloured by the room left" });
  page.view.setTryOn(tried.drawing);
  section.dataset.sizeId = sizeId; // tells a test (or an embedding shop) that this size is on screen
}

async function showShoes() {
  if (!page.api) throw new Error("Enter your key and passport above first.");
  const shoes = await page.api.get(`/passports/${page.passport}/recommendations`,
    { n: 3, category: $("category").value });
  $("shoes").replaceChildren(...shoes.map((shoe) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Try on";
    button.addEventListener("click", () => showProduct(shoe.fit.model_id));
    item.append(`${shoe.brand} ${shoe.model_name}: ${sizeName(shoe.fit)}, ${shoe.reason}`, button);
    return item;
  }));
  if (!shoes.length) $("shoes").replaceChildren(Object.assign(document.createElement("li"),
    { textContent: "No shoe in this category fits you well." }));
}

function row(name, fits) {
  const tr = document.createElement("tr");
  const th = Object.assign(document.createElement("th"), { scope: "row", textContent: name });
  tr.append(th, ...fits.map((fit) => {
    const td = document.createElement("td");
    const verdict = Object.assign(document.createElement("span"),
      { className: `ff-verdict-${fit.verdict}`, textContent: fit.verdict });
    const across = fit.width_mm == null ? "" : `, across ${fit.width_mm.toFixed(0)} mm`;
    td.append(verdict, ` (${fit.value_mm.toFixed(0)} mm${across})`);
    return td;
  }));
  return tr;
}

function sizeName(size) {
  const width = size.width && size.width !== "standard" ? `, ${size.width} width` : "";
  return `${size.size_system.toUpperCase()} ${size.size_label}${width}`;
}

async function guarded(action) {
  const message = $("message");
  message.textContent = "";
  message.className = "ff-message";
  try {
    await action();
  } catch (error) {
    message.textContent = error.message;
    message.className = "ff-message ff-error";
  }
}

start();
