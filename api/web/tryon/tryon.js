/**
 * The webshop try-on page, and an example of the public fit API from a shopper's browser (docs/webshop-tryon.md).
 *
 *   /tryon?passport=<passport id>[&model=<model id>][&category=running]#session=ffs_...
 *
 * The shop's server opens a customer session for its logged-in customer with its own key (POST
 * /v1/customers/{loyalty_id}/sessions) and puts the answer's passport id and token into this address; the token
 * reads that customer's fit answers only, for minutes. The browser never holds a key: the page sends nothing but
 * a session token (ffs_...). It makes three calls, each with "Authorization: Bearer <session token>":
 *   GET /v1/passports/{id}/sizes/{model}                               the recommended size and one down and up
 *   GET /v1/passports/{id}/tryon?model_id=&size_id=&drawing=true&per_point=false   verdicts + the feet in the shoe
 *   GET /v1/passports/{id}/recommendations?n=3&category=               shoes that fit, each in its best size
 */

import { FitApi, fromFragment } from "../shared/api.js";
import { fillCategories } from "../shared/categories.js";
import { FootView } from "../shared/footview.js";

const REGION_NAMES = { toe: "Toes", ball: "Ball of the foot", instep: "Instep", heel: "Heel" };
const SESSION_PREFIX = "ffs_";
// What a refusal means to a shopper (the service's reason follows).
const SHOPPER_HINTS = { 401: "Your try-on session has ended", 403: "This is not possible here", 404: "Not found" };
const $ = (id) => document.getElementById(id);
const page = { api: null, passport: "", view: null };

function start() {
  const query = new URLSearchParams(window.location.search);
  const token = fromFragment("session") || "";
  history.replaceState(null, "", window.location.pathname + window.location.search); // not left in the address bar
  page.passport = query.get("passport") || "";
  if (!token.startsWith(SESSION_PREFIX) || !page.passport) {
    showError("Open the try-on from the shop's product page: it gives this page your session. "
      + "(The page takes only a customer session token, never an API key.)");
    return;
  }
  page.api = new FitApi(token, { hints: SHOPPER_HINTS });
  fillCategories($("category"));
  $("category").value = query.get("category") || "";
  $("fitting").hidden = false;
  $("browse").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(showShoes);
  });
  const model = Number(query.get("model"));
  if (model) showProduct(model);
}

function showProduct(modelId) {
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
  section.dataset.modelId = modelId;
  section.dataset.sizeId = sizeId; // tells a test (or an embedding shop) that this size is on screen
}

async function showShoes() {
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

function showError(text) {
  const message = $("message");
  message.textContent = text;
  message.className = "ff-message ff-error";
}

async function guarded(action) {
  $("message").textContent = "";
  $("message").className = "ff-message";
  try {
    await action();
  } catch (error) {
    showError(error.message);
  }
}

start();
