/**
 * The kiosk: what store staff see on the touch screen beside the scanner (docs/kiosk.md). One task per screen:
 * sign in -> customer -> consent -> scan -> result. Every datum comes from the fit API (/v1) with the store's
 * kiosk key, which stays in this tab's sessionStorage until "Sign out". Errors are shown in the message line
 * with what to do; nothing typed is cleared by an error. The result screen's module (and with it three.js) is
 * loaded at sign-in, not with the page, so the page itself loads fast.
 */

import { FitApi } from "../shared/api.js";
import { CameraPreview, follow } from "./scanning.js";

const KEY_STORAGE = "footfit.kiosk.key";
const NEEDED_SCOPES = ["customers:write", "passports:read", "scans:write", "scans:read", "recommendations:read",
  "feedback:write"];
const SCREENS = ["signin", "customer", "consent", "scan", "result"];
const PHASE_NAMES = { connect: "getting ready", zero: "zeroing the plate", stand: "standing", left: "left foot",
  right: "right foot", measure: "measuring", store: "saving", done: "done" };
const CAMERA_PHASES = ["stand", "left", "right"];
const DEVICE_NAMES = { plate: "Pressure plate", camera: "Camera", board: "Scanner arm" };
const KEPT_NAMES = { plate: "the standing pressure", left: "the left foot", right: "the right foot" };
const $ = (id) => document.getElementById(id);

const kiosk = { api: null, me: null, store: null, customer: null, scan: null, preview: null, result: null,
  following: null }; // following: the AbortController of the scan this session follows

function show(screen) {
  for (const name of SCREENS) $(`screen-${name}`).hidden = name !== screen;
  $("sign-out").hidden = screen === "signin";
  $("new-customer").hidden = ["signin", "customer"].includes(screen) || kiosk.scan?.state === "running";
  $(`${screen}-title`).focus();
}

function say(text, kind = "") {
  $("message").textContent = text;
  $("message").className = `ff-message kiosk-message ${kind}`;
}

async function guarded(action) {
  say("");
  try {
    await action();
  } catch (error) {
    say(error.message, "ff-error");
  }
}

// --- sign-in ---

async function signIn(key) {
  const api = new FitApi(key);
  const me = await api.get("/me");
  if (!me.store) {
    throw new Error("This key belongs to no store: sign in with the kiosk key of this store (footfit keys create "
      + "--store ...).");
  }
  const missing = NEEDED_SCOPES.filter((scope) => !me.scopes.includes(scope));
  if (missing.length) throw new Error(`This kiosk key lacks ${missing.join(", ")}: ask for a kiosk key with them.`);
  const store = (await api.get("/stores")).find((s) => s.code === me.store);
  const { Result } = await import("./result.js"); // the 3D library loads after the page, while staff sign in
  sessionStorage.setItem(KEY_STORAGE, key);
  Object.assign(kiosk, { api, me, store, preview: new CameraPreview(api, $("preview")),
    result: new Result(api, { sizeSystem: store.size_system, report: (error) => say(error.message, "ff-error") }) });
  $("who").textContent = `Store ${store.code} · ${me.tenant}`;
  $("retention").textContent = `${me.retention_days} days`;
  $("rig").replaceChildren(...store.kiosks.map((rig) => new Option(rig, rig)));
  $("rig-row").hidden = store.kiosks.length < 2;
  newCustomer();
}

async function signOut() {
  if (kiosk.scan?.state === "running") {
    const who = kiosk.customer ? `customer ${kiosk.customer.loyalty_id}` : "a customer";
    if (!window.confirm(`A scan of ${who} is running. Cancel the scan and sign out?`)) return;
    await kiosk.api.post(`/scans/${kiosk.scan.id}/cancel`);
  }
  stopFollowing();
  sessionStorage.removeItem(KEY_STORAGE);
  kiosk.preview?.clear();
  Object.assign(kiosk, { api: null, me: null, store: null, customer: null, scan: null });
  $("key").value = "";
  $("who").textContent = "";
  say("Signed out.");
  show("signin");
}

// --- customer ---

function stopFollowing() {
  kiosk.following?.abort();
  kiosk.following = null;
}

function newCustomer() {
  stopFollowing();
  kiosk.customer = null;
  kiosk.scan = null;
  kiosk.preview?.clear();
  $("loyalty").value = "";
  $("register").hidden = true;
  $("known").hidden = true;
  show("customer");
}

async function lookUp(loyaltyId) {
  $("register").hidden = true;
  $("known").hidden = true;
  try {
    kiosk.customer = await kiosk.api.get(`/customers/${encodeURIComponent(loyaltyId)}`);
  } catch (error) {
    if (error.status !== 404) throw error;
    $("register-text").textContent = `No customer with loyalty number ${loyaltyId} yet.`;
    $("register").hidden = false;
    $("register-button").focus();
    return;
  }
  showKnown();
}

function showKnown() {
  const c = kiosk.customer;
  const scans = c.passports === 1 ? "1 scan" : `${c.passports} scans`;
  const consent = c.consent.scan_storage ? "agreed to store scans" : "has not agreed to store scans yet";
  $("known-text").textContent = `Customer ${c.loyalty_id}: ${scans}; ${consent}.`;
  $("last-result").hidden = c.passports === 0;
  $("known").hidden = false;
  $("to-scan").focus();
}

async function register() {
  const loyaltyId = $("loyalty").value.trim();
  kiosk.customer = await kiosk.api.post("/customers", { loyalty_id: loyaltyId });
  say(`Customer ${loyaltyId} registered.`, "ff-ok");
  toConsent();
}

async function lastResult() {
  const passports = await kiosk.api.get(`/customers/${encodeURIComponent(kiosk.customer.loyalty_id)}/passports`);
  show("result");
  await kiosk.result.show(passports[0].id);
}

// --- consent ---

function toConsent() {
  $("consent-scan").checked = kiosk.customer.consent.scan_storage;
  $("consent-webshop").checked = kiosk.customer.consent.webshop;
  show("consent");
}

async function recordConsent() {
  if (!$("consent-scan").checked) {
    throw new Error("Without consent to store the scan we cannot scan: tick the first box if the customer agrees, "
      + "or go back.");
  }
  const path = `/customers/${encodeURIComponent(kiosk.customer.loyalty_id)}/consents`;
  const wanted = { scan_storage: true, webshop: $("consent-webshop").checked };
  for (const [purpose, granted] of Object.entries(wanted)) {
    if (kiosk.customer.consent[purpose] !== granted) {
      await kiosk.api.post(path, { purpose, granted, source: "kiosk" });
      kiosk.customer.consent[purpose] = granted;
    }
  }
  say("Consent recorded.", "ff-ok");
  toScan();
}

// --- scan ---

function toScan() {
  if (!kiosk.customer.consent.scan_storage) return toConsent();
  resetScanScreen();
  $("start").disabled = !kiosk.store.kiosks.length;
  if (!kiosk.store.kiosks.length) {
    say("This store has no scanner registered: ask for one to be added (footfit kiosks add).", "ff-error");
  }
  show("scan");
}

function resetScanScreen() {
  showProgress({ fraction: 0, phase: "connect", arm_angle_deg: null, eta_s: null, message: "" }, "Not started");
  $("failure").hidden = true;
  $("start").hidden = false;
  $("retry").hidden = true;
  $("cancel").hidden = true;
  kiosk.preview.clear();
}

async function startScan() {
  const rig = $("rig").value;
  const scan = await kiosk.api.post(`/rigs/${encodeURIComponent(rig)}/scans`,
    { loyalty_id: kiosk.customer.loyalty_id });
  await runScan(scan);
}

async function retryScan() {
  await runScan(await kiosk.api.post(`/scans/${kiosk.scan.id}/retry`));
}

async function runScan(scan) {
  kiosk.scan = scan;
  $("failure").hidden = true;
  $("start").hidden = true;
  $("retry").hidden = true;
  $("cancel").hidden = false;
  $("new-customer").hidden = true;
  $("cancel").focus();
  const following = new AbortController();
  kiosk.following = following;
  const finished = await follow(kiosk.api, scan.id, onScan, following.signal);
  if (finished === null) return; // this kiosk session moved on (signed out, next customer): not its to show
  kiosk.following = null;
  kiosk.preview.clear();
  $("cancel").hidden = true;
  $("new-customer").hidden = false;
  if (finished.state === "done") {
    say("Scan complete.", "ff-ok");
    show("result");
    await kiosk.result.show(finished.passport_id);
  } else if (finished.state === "failed") {
    showFailure(finished);
  } else {
    say("Scan cancelled; nothing was kept. Press Start scan when the customer is ready.");
    $("start").hidden = false;
    $("start").focus();
  }
}

function onScan(scan) {
  kiosk.scan = scan;
  showProgress(scan);
  const camera = scan.state === "running" && CAMERA_PHASES.includes(scan.phase);
  if (camera && kiosk.preview.timer === null) kiosk.preview.start(scan.id);
  if (!camera) kiosk.preview.stop();
}

function showProgress(scan, text) {
  const percent = Math.round(100 * scan.fraction);
  $("progress-fill").style.width = `${percent}%`;
  $("progress").setAttribute("aria-valuenow", percent);
  const angle = scan.arm_angle_deg === null ? "" : ` · arm at ${Math.round(scan.arm_angle_deg)}°`;
  const left = scan.eta_s ? ` · about ${Math.ceil(scan.eta_s)} s left` : "";
  $("progress-text").textContent = text || `${percent}% · ${PHASE_NAMES[scan.phase]}${angle}${left}`;
  $("rig-message").textContent = scan.state === "running" ? scan.message : "";
  for (const step of $("steps").children) {
    const current = step.dataset.phases.split(" ").includes(scan.phase);
    step.classList.toggle("kiosk-step-now", current);
    if (current) step.setAttribute("aria-current", "step");
    else step.removeAttribute("aria-current");
  }
}

function showFailure(scan) {
  const device = DEVICE_NAMES[scan.failed_device];
  $("failure-text").textContent = device
    ? `${device} disconnected: check the cable, then press Retry.`
    : `The scan did not succeed: ${scan.message.split(". POST")[0]}. Fix that, then press Retry.`;
  const kept = scan.kept.map((part) => KEPT_NAMES[part]);
  $("failure-kept").textContent = kept.length
    ? `Already scanned and kept: ${kept.join(", ")}. Retry scans only the rest; the customer stays on the scanner.`
    : "Nothing was kept: Retry scans everything again.";
  $("failure").hidden = false;
  $("retry").hidden = false;
  $("cancel").hidden = false;
  $("retry").focus();
}

async function cancelScan() {
  await kiosk.api.post(`/scans/${kiosk.scan.id}/cancel`);
  if (kiosk.scan.state === "failed") { // no stream is following a failed scan: show the outcome here
    kiosk.scan = await kiosk.api.get(`/scans/${kiosk.scan.id}`);
    $("failure").hidden = true;
    resetScanScreen();
    say("Scan given up; nothing was kept. Press Start scan to begin again.");
  }
}

// --- wiring ---

function onSubmit(id, action) {
  $(id).addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(action);
  });
}

function onClick(id, action) {
  $(id).addEventListener("click", () => guarded(action));
}

async function start() {
  onSubmit("signin-form", () => signIn($("key").value.trim()));
  onSubmit("lookup-form", () => lookUp($("loyalty").value.trim()));
  onSubmit("consent-form", recordConsent);
  onClick("register-button", register);
  onClick("to-scan", async () => toScan());
  onClick("to-consent", async () => toConsent());
  onClick("last-result", lastResult);
  onClick("consent-back", async () => show("customer"));
  onClick("start", startScan);
  onClick("retry", retryScan);
  onClick("cancel", cancelScan);
  onClick("sign-out", async () => signOut());
  onClick("new-customer", async () => newCustomer());
  const key = sessionStorage.getItem(KEY_STORAGE);
  show("signin");
  if (key) {
    $("key").value = key;
    await guarded(() => signIn(key));
  }
}

start();
