// The approval page: post the form's answer to the API, show a refusal, go back to the run.
"use strict";

function collectInput(form) {
  const input = {};
  for (const el of form.querySelectorAll("[data-field]")) {
    const name = el.dataset.field;
    const kind = el.dataset.kind;
    if (kind === "boolean") {
      input[name] = el.checked;
      continue;
    }
    const text = el.value;
    if (text === "" && el.dataset.required !== "true") continue; // its default applies
    if (kind === "json") {
      try {
        input[name] = JSON.parse(text);
      } catch (e) {
        input[name] = text; // the model says what is wrong with it
      }
      continue;
    }
    input[name] = text; // numbers as typed: the flow's model coerces or names the field
  }
  return input;
}

async function answer(form, action, body) {
  const out = document.getElementById("approval-result");
  out.classList.remove("error");
  out.textContent = action === "approve" ? "approving…" : "rejecting…";
  let response;
  try {
    response = await fetch(form.dataset[action], {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  } catch (e) {
    out.textContent = "the server could not be reached";
    out.classList.add("error");
    return;
  }
  let data = {};
  try {
    data = await response.json();
  } catch (e) {
    data = {};
  }
  if (response.ok) {
    out.textContent = action === "approve" ? "approved" : "rejected";
    window.location.assign(form.dataset.back);
    return;
  }
  const detail = Array.isArray(data.detail)
    ? data.detail.map((d) => d.msg).join("; ")
    : data.detail || response.statusText;
  out.textContent = detail;
  out.classList.add("error");
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("approval-form");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = form.dataset.hasInput === "true" ? collectInput(form) : null;
    answer(form, "approve", { input });
  });
  document.getElementById("reject").addEventListener("click", (event) => {
    event.preventDefault();
    answer(form, "reject", { reason: document.getElementById("reject-reason").value });
  });
});
