/**
 * Following a kiosk scan (docs/api.md "Kiosk scans"): its progress as server-sent events and the camera preview.
 *
 * EventSource cannot send the key's Authorization header, so the event stream is read with fetch() and parsed
 * here (events `progress`, then one of `done`, `failed`, `cancelled`). If the stream breaks off while the scan
 * still runs, polling GET /v1/scans/{id} takes over; either way `follow` resolves with the finished scan, or with
 * null once `signal` is aborted (the kiosk session that followed it moved on: nothing of it is shown).
 *
 *   import { follow, CameraPreview } from "/web/kiosk/scanning.js";
 *   const scan = await follow(api, scanId, (scan) => showProgress(scan), controller.signal); // done | failed | ...
 *   const preview = new CameraPreview(api, imgElement); preview.start(scanId); preview.stop();
 */

import { ApiError, errorMessage } from "../shared/api.js";

const POLL_MS = 500;
const PREVIEW_MS = 400; // the service encodes at most a few frames a second

export async function follow(api, scanId, onScan, signal) {
  try {
    await streamEvents(api, scanId, onScan, signal);
  } catch (error) {
    if (signal.aborted) return null;
    if (error instanceof ApiError && error.status !== 0) throw error; // refused: polling would be refused too
  }
  for (;;) {
    if (signal.aborted) return null;
    const scan = await api.get(`/scans/${scanId}`);
    if (signal.aborted) return null;
    onScan(scan);
    if (scan.state !== "running") return scan;
    await sleep(POLL_MS);
  }
}

async function streamEvents(api, scanId, onScan, signal) {
  let response;
  try {
    response = await fetch(api.url(`/scans/${scanId}/events`),
      { headers: { Authorization: `Bearer ${api.key}`, Accept: "text/event-stream" }, signal });
  } catch {
    throw new ApiError(0, "The fit service cannot be reached: check the connection.");
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new ApiError(response.status, errorMessage(response.status, body), body);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const data = buffer.slice(0, end).split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
      buffer = buffer.slice(end + 2);
      if (data.length && !signal.aborted) onScan(JSON.parse(data.join("\n")));
    }
  }
}

/** The latest camera frame of a running scan in an <img>, fetched with the key (an <img src> could not send it). */
export class CameraPreview {
  constructor(api, img) {
    this.api = api;
    this.img = img;
    this.timer = null;
    this.busy = false;
  }

  start(scanId) {
    this.stop();
    this.timer = setInterval(() => this.refresh(scanId), PREVIEW_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  clear() {
    this.stop();
    if (this.img.src) URL.revokeObjectURL(this.img.src);
    this.img.removeAttribute("src");
    this.img.hidden = true;
  }

  async refresh(scanId) {
    if (this.busy) return;
    this.busy = true;
    try {
      const response = await fetch(this.api.url(`/scans/${scanId}/preview`),
        { headers: { Authorization: `Bearer ${this.api.key}` }, cache: "no-store" });
      if (response.ok && this.timer !== null) await this.show(await response.blob());
    } catch {
      // no frame this time (the camera is between frames, or the scan moved on): the next refresh tries again
    } finally {
      this.busy = false;
    }
  }

  /**
   * Shows a frame once it is decoded, so staff never see an empty box between frames: the frame is decoded off
   * screen first, and the visible image only takes its (by then decoded) address.
   */
  async show(blob) {
    const url = URL.createObjectURL(blob);
    const frame = new Image();
    frame.src = url;
    try {
      await frame.decode();
    } catch {
      URL.revokeObjectURL(url); // not a picture (the scan ended between fetch and decode): keep the last frame
      return;
    }
    if (this.timer === null) {
      URL.revokeObjectURL(url);
      return;
    }
    const previous = this.img.src;
    this.img.src = url;
    this.img.hidden = false;
    if (previous) URL.revokeObjectURL(previous);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
