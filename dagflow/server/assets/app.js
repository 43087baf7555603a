// dagflow pages: refresh live parts, embed Bokeh charts, post actions, sign in from a link.
// Loaded as an external file (the Content-Security-Policy allows no inline script); every
// behaviour is driven by data-* attributes that the server's templates set.
"use strict";

const REFRESH_MS = 2000;
// After an action (cancel, resume, pause) the page keeps refreshing a while even if the server
// says nothing is live: a resumed run is claimed by a serving process before it runs again.
const AFTER_ACTION_MS = 20000;
let keepLiveUntil = 0;

function keptLive() {
  return Date.now() < keepLiveUntil;
}

function live() {
  return document.body.dataset.live === "true";
}

async function refreshPart(el) {
  const response = await fetch(el.dataset.refresh, { credentials: "same-origin" });
  if (!response.ok) return;
  // The server renders these parts with the page's templates (everything escaped).
  el.innerHTML = await response.text();
  if (response.headers.get("X-Dagflow-Live") === "0" && !keptLive()) {
    document.body.dataset.live = "false";
  }
}

async function embedPlot(el) {
  if (typeof Bokeh === "undefined") return;
  const response = await fetch(el.dataset.plot, { credentials: "same-origin" });
  if (!response.ok) {
    el.textContent = "The chart could not be loaded (" + response.status + ").";
    return;
  }
  const item = await response.json();
  const stillLive = response.headers.get("X-Dagflow-Live") === "1";
  el.replaceChildren();
  await Bokeh.embed.embed_item(item, el.id);
  el.dataset.rendered = "true";
  el.dataset.live = stillLive || keptLive() ? "true" : "false";
}

async function tick() {
  if (!live()) return;
  const parts = [...document.querySelectorAll("[data-refresh]")].map(refreshPart);
  const plots = [...document.querySelectorAll("[data-plot]")]
    .filter((el) => el.dataset.live !== "false")
    .map(embedPlot);
  await Promise.allSettled([...parts, ...plots]);
}

async function postAction(button) {
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  const out = document.getElementById("action-result");
  button.disabled = true;
  const response = await fetch(button.dataset.post, {
    method: "POST",
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  const body = await response.json().catch(() => ({}));
  if (out) {
    // textContent: whatever the server said is shown as text
    out.textContent = response.ok
      ? button.dataset.done || "Requested: the run is " + (body.state || "updated") + "."
      : "Refused: " + (typeof body.detail === "string" ? body.detail : response.statusText);
  }
  button.disabled = false;
  if (response.ok) {
    // what was asked may bring the run back to life (a resume): charts follow it again
    keepLiveUntil = Date.now() + AFTER_ACTION_MS;
    for (const el of document.querySelectorAll("[data-plot]")) el.dataset.live = "true";
  }
  document.body.dataset.live = "true";
  await tick();
}

function signInFromLink() {
  // `/login#token=...` (the link `dagflow server start` prints) signs in without pasting.
  const form = document.getElementById("login-form");
  const match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (!form || !match || document.getElementById("login-error")) return;
  document.getElementById("token").value = decodeURIComponent(match[1]);
  history.replaceState(null, "", window.location.pathname + window.location.search);
  form.submit();
}

function swagger() {
  const el = document.getElementById("swagger-ui");
  if (!el || typeof SwaggerUIBundle === "undefined") return;
  SwaggerUIBundle({ url: el.dataset.openapi, dom_id: "#swagger-ui", deepLinking: true });
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-post]");
  if (button) {
    event.preventDefault();
    postAction(button);
  }
});

window.addEventListener("load", () => {
  signInFromLink();
  swagger();
  for (const el of document.querySelectorAll("[data-plot]")) embedPlot(el);
  window.setInterval(tick, REFRESH_MS);
});
