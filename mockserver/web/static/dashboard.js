// The admin dashboard: reads and changes the mock through its admin API only (openapi/admin.yaml).
"use strict";

const ADMIN = "/__admin";
const POLL_MS = 1000;
// Reads the dashboard makes for itself carry this header: the mock leaves them out of its journal.
const POLL_HEADER = {"X-Mock-Dashboard": "poll"};
const $ = (id) => document.getElementById(id);

function headers(extra) {
  const token = sessionStorage.getItem("admin-token");
  return Object.assign({"Content-Type": "application/json"}, token ? {"X-Admin-Token": token} : {}, extra || {});
}

async function call(method, path, body, extra) {
  const response = await fetch(ADMIN + path, {method, headers: headers(extra), body: body && JSON.stringify(body)});
  const data = await response.json();
  if (response.status === 401) {
    $("token-form").hidden = false;
  }
  if (!response.ok) {
    throw new Error(`${method} ${ADMIN}${path}: ${data.detail || response.status}`);
  }
  return data;
}

const read = (path) => call("GET", path, undefined, POLL_HEADER);

function show(error) {
  $("error").hidden = !error;
  $("error").textContent = error ? String(error.message || error) : "";
}

function iso(seconds) {
  return seconds === null || seconds === undefined ? "" : new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
}

function row(cells, className) {
  const tr = document.createElement("tr");
  if (className) tr.className = className;
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell === null ? "" : String(cell);
    tr.appendChild(td);
  }
  return tr;
}

function fill(id, rows) {
  $(id).replaceChildren(...rows);
}

async function refresh() {
  try {
    const [clock, state, keys, history, faults, journal] = await Promise.all([
      read("/clock"), read("/state"), read("/keys"), read("/history?limit=200"), read("/faults"), read("/journal?limit=100"),
    ]);
    $("clock-now").textContent = `${clock.iso} (${clock.now.toFixed(0)})`;
    const sessions = new Map(state.keys.map((entry) => [entry.key, entry.session]));
    const prefixes = [...new Set([...keys.keys.map((key) => key.prefix), ...sessions.keys()])].sort();
    fill("keys", prefixes.map((prefix) => {
      const session = sessions.get(prefix);
      const ended = history.sessions.filter((s) => s.key === prefix).map((s) => `${s.session_id.slice(0, 10)}… ${s.close_reason}`);
      return row([
        prefix,
        session ? session.session_id.slice(0, 18) + "…" : "none",
        session ? session.requested : "",
        session ? iso(session.expires_at) + (session.expired ? " (expired)" : "") : "",
        ended.join(", "),
      ], session && session.expired ? "expired" : "");
    }));
    fill("faults", faults.faults.map((fault) => {
      const clear = document.createElement("button");
      clear.textContent = "clear";
      clear.className = "clear-fault";
      clear.onclick = () => act("DELETE", `/faults?kind=${fault.kind}` + (fault.key ? `&key=${fault.key}` : ""));
      return row([fault.kind, fault.key || "every key", fault.remaining === null ? "until cleared" : fault.remaining,
        fault.retries ? "yes" : "", iso(fault.until), clear]);
    }));
    fill("journal", journal.entries.map((entry) => {
      const tr = row([iso(entry.at), entry.method, entry.path + (entry.query ? "?" + entry.query : ""), entry.status, entry.key || ""]);
      tr.children[3].className = `status-${String(entry.status)[0]}`;
      return tr;
    }));
    show(null);
  } catch (error) {
    show(error);
  }
}

async function act(method, path, body) {
  try {
    await call(method, path, body);
    await refresh();
  } catch (error) {
    show(error);
  }
}

async function loadKinds() {
  const spec = await (await fetch(ADMIN + "/openapi.json")).json();
  const kinds = spec.components.schemas.FaultKind.enum;
  $("fault-kind").replaceChildren(...kinds.map((kind) => new Option(kind, kind)));
}

$("advance-form").onsubmit = (event) => {
  event.preventDefault();
  act("POST", "/clock/advance", {seconds: Number($("advance-seconds").value)});
};
$("set-form").onsubmit = (event) => {
  event.preventDefault();
  act("PUT", "/clock", {now: Number($("set-now").value)});
};
$("fault-form").onsubmit = (event) => {
  event.preventDefault();
  const body = {kind: $("fault-kind").value};
  if ($("fault-key").value.trim()) body.key = $("fault-key").value.trim();
  if ($("fault-count").value) body.count = Number($("fault-count").value);
  if ($("fault-retries").checked) body.retries = true;
  act("POST", "/faults", body);
};
$("clear-faults").onclick = () => act("DELETE", "/faults");
$("clear-journal").onclick = () => act("DELETE", "/journal");
$("token-form").onsubmit = (event) => {
  event.preventDefault();
  sessionStorage.setItem("admin-token", $("token").value);
  $("token-form").hidden = true;
  refresh();
};

loadKinds().catch(show);
refresh();
setInterval(refresh, POLL_MS);
