// busignal dashboard: polls /api/overview and draws it. Every text that comes
// from Redis goes in through textContent, never as HTML.
"use strict";

const state = { refresh: 2, actions: false, last: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

function table(headers, rows, empty) {
  if (!rows.length) return el("p", { class: "empty" }, empty);
  const head = el("tr", {}, headers.map(([label, num]) =>
    el("th", num ? { class: "num" } : {}, label)));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, rows));
}

function num(value, cls) {
  return el("td", { class: "num " + (cls || "") }, value);
}

function ago(seconds) {
  if (seconds < 60) return seconds.toFixed(1) + "s ago";
  if (seconds < 3600) return Math.floor(seconds / 60) + "m" +
    String(Math.floor(seconds % 60)).padStart(2, "0") + "s ago";
  return Math.floor(seconds / 3600) + "h" +
    String(Math.floor(seconds % 3600 / 60)).padStart(2, "0") + "m ago";
}

function rate(value) {
  if (value === null || value === undefined) return "–";
  return value < 10 ? value.toFixed(1) : Math.round(value).toString();
}

function token() {
  return document.getElementById("token").value.trim();
}

function say(text, failed) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = failed ? "failed" : "";
  box.hidden = false;
}

async function act(action, signal, ids) {
  const body = ids ? { signal, ids } : { signal, all: true };
  let answer;
  try {
    const response = await fetch("/api/dead/" + action, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token() },
      body: JSON.stringify(body),
    });
    answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
  } catch (error) {
    say(action + " refused: " + error.message, true);
    return;
  }
  say(answer.done, false);
  poll(false);
}

function actionButtons(signal, ids) {
  if (!state.actions) return null;
  const purge = () => {
    const what = ids ? ids.join(", ") : "every dead letter of " + signal;
    if (window.confirm("Delete " + what + "? This cannot be undone.")) act("purge", signal, ids);
  };
  return [
    el("button", { type: "button", class: "replay", onclick: () => act("replay", signal, ids) },
      ids ? "replay" : "replay all"),
    el("button", { type: "button", class: "purge danger", onclick: purge },
      ids ? "purge" : "purge all"),
  ];
}

function signalCard(sig) {
  const services = sig.services.map((s) => el("tr", { "data-service": s.name },
    el("td", {}, s.name),
    num(s.lag === null ? "?" : s.lag, "lag"),
    num(s.pending, "pending"),
    num(rate(s.rate), "rate"),
    num(s.live_workers, "live"),
    num(s.lost_workers, s.lost_workers ? "lost warn" : "lost"),
    el("td", { class: "last" }, s.last_delivered_id || "–"),
  ));
  const letters = sig.dead_letters.map((d) => el("tr", { "data-letter": d.ref },
    el("td", {}, sig.partitions > 1 ? d.ref : d.id),
    el("td", {}, d.service || "–"),
    num(d.attempts),
    el("td", { class: "reason" }, d.reason),
    state.actions ? el("td", {}, actionButtons(sig.name, [d.ref])) : null,
  ));
  const deadFacts = el("span", { class: sig.dead ? "dead has-dead" : "dead" }, sig.dead);
  return el("article", { class: "card signal", "data-signal": sig.name },
    el("h2", {}, sig.name),
    el("div", { class: "facts" },
      "events in stream ", el("b", { class: "length" }, sig.length),
      " · dead letters ", el("b", {}, deadFacts),
      sig.partitions > 1 ? [" · partitions ", el("b", {}, sig.partitions)] : null),
    table([["service"], ["lag", 1], ["pending", 1], ["events/s", 1], ["live workers", 1],
      ["lost workers", 1], ["last delivered"]], services, "no service has joined this signal yet"),
    sig.dead ? [
      el("h3", {}, "newest dead letters", state.actions ? [" ", actionButtons(sig.name, null)] : null),
      table([["id"], ["service"], ["attempts", 1], ["reason"]].concat(
        state.actions ? [["actions"]] : []), letters, ""),
    ] : null,
  );
}

function workerRows(workers, lost) {
  return workers.map((w) => el("tr", { class: lost ? "lost" : "live", "data-worker": w.name },
    el("td", {}, w.name),
    el("td", {}, w.service),
    el("td", {}, w.signals.join(", ")),
    el("td", {}, w.host + ":" + w.pid),
    num(ago(w.age), "heartbeat"),
    num(w.handled),
  ));
}

function render(data) {
  document.getElementById("where").textContent =
    "namespace " + data.namespace + " on " + data.url;
  const signals = document.getElementById("signals");
  signals.replaceChildren(...(data.signals.length
    ? data.signals.map(signalCard)
    : [el("p", { class: "card empty" }, "no signal has been sent in this namespace yet")]));
  const headers = [["worker"], ["service"], ["signals"], ["host:pid"], ["last heartbeat", 1],
    ["handled", 1]];
  document.getElementById("workers").replaceChildren(...[
    el("article", { class: "card", id: "live-workers" },
      el("h2", {}, "live workers (" + data.workers.length + ")"),
      table(headers, workerRows(data.workers, false), "no worker is running")),
    data.lost.length ? el("article", { class: "card", id: "lost-workers" },
      el("h2", { class: "warn" }, "lost workers (" + data.lost.length + "): no heartbeat for " +
        data.lapse_intervals + " intervals"),
      table(headers, workerRows(data.lost, true), "")) : null,
  ].filter(Boolean));
}

function trouble(text) {
  const problem = document.getElementById("problem");
  problem.textContent = text + " Retrying every " + state.refresh + " s.";
  problem.hidden = false;
  const status = document.getElementById("status");
  status.textContent = "unreachable";
  status.className = "down";
  for (const card of document.querySelectorAll(".card")) card.classList.add("stale");
}

let timer = null;

async function poll(again = true) {
  try {
    const response = await fetch("/api/overview", { cache: "no-store" });
    const data = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) {
      trouble(data.error || "the dashboard answered " + response.status + ".");
    } else {
      render(data);
      document.getElementById("problem").hidden = true;
      const status = document.getElementById("status");
      status.textContent = "updated " + new Date(data.at * 1000).toLocaleTimeString();
      status.className = "ok";
    }
  } catch (error) {
    trouble("The dashboard server does not answer (" + error.message + ").");
  }
  if (again) {
    clearTimeout(timer);
    timer = setTimeout(poll, state.refresh * 1000);
  }
}

// The link printed at start carries the token as #token=...: kept for this
// tab only, and taken out of the address bar (a fragment never reaches a server).
function tokenFromLink() {
  const given = new URLSearchParams(location.hash.slice(1)).get("token");
  if (given) {
    sessionStorage.setItem("busignal-token", given);
    history.replaceState(null, "", location.pathname);
  }
  document.getElementById("token").value = sessionStorage.getItem("busignal-token") || "";
}

async function start() {
  try {
    const settings = await (await fetch("/api/settings", { cache: "no-store" })).json();
    state.refresh = settings.refresh;
    state.actions = settings.actions;
  } catch (error) {
    setTimeout(start, state.refresh * 1000);
    trouble("The dashboard server does not answer (" + error.message + ").");
    return;
  }
  const input = document.getElementById("token");
  tokenFromLink();
  window.addEventListener("hashchange", tokenFromLink);
  input.addEventListener("change", () => sessionStorage.setItem("busignal-token", token()));
  document.getElementById("token-box").hidden = !state.actions;
  poll();
}

start();
