// btbuild report: builds the grid, the cell panel, the filters and the timings from the
// JSON in #report-data. No network, no library: it runs from file:// as well.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const marks = data.marks;
  const COMPONENTS = ["epoch", "code", "layers", "infra", "declaration"];
  const state = { pkg: "", status: "", target: "" };

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function esc(text) {
    return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  }
  function time(seconds) {
    return seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "";
  }

  // colours: one rule per mark
  const style = el("style");
  style.textContent = Object.entries(marks)
    .map(([m, s]) => `.cell[data-m="${m === '"' ? '\\"' : m}"]{background:${s.colour}}`)
    .join("\n");
  document.head.appendChild(style);

  // summary and legend
  document.getElementById("summary").textContent =
    `${data.targets.length} targets x ${data.dates.length} dates; ` +
    Object.entries(data.summary).map(([k, v]) => `${v} ${k}`).join(", ");
  const legend = document.getElementById("legend");
  const present = new Set(data.grid.join(""));
  for (const [m, s] of Object.entries(marks)) {
    if (!present.has(m)) continue;
    const item = el("span", { class: "legend-item", "data-mark": m });
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = s.colour;
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(`${m === " " ? "(blank)" : m} ${s.name}`));
    legend.appendChild(item);
  }

  // filters
  const packages = [...new Set(data.targets.map((t) => t.package))].sort();
  const pkgSelect = document.getElementById("filter-package");
  for (const p of packages) pkgSelect.appendChild(el("option", { value: p }, "//" + p));
  const statusSelect = document.getElementById("filter-status");
  for (const m of Object.keys(marks)) {
    if (present.has(m)) statusSelect.appendChild(el("option", { value: m }, `${marks[m].name} (${m === " " ? "blank" : m})`));
  }

  // grid
  const grid = document.getElementById("grid");
  const head = el("div", { class: "row head" });
  head.appendChild(el("div", { class: "label" }, "target \\ date"));
  let heads = "";
  data.dates.forEach((d, j) => {
    const day = d.slice(8, 10);
    const first = j === 0 || day === "01";
    heads += `<div class="day${first ? " month" : ""}" title="${d}">${first ? d.slice(5, 7) + "<br>" : "<br>"}${day}</div>`;
  });
  head.insertAdjacentHTML("beforeend", heads);
  grid.appendChild(head);
  const rows = [];
  data.targets.forEach((t, i) => {
    const row = el("div", { class: "row", "data-label": t.label, "data-package": t.package });
    row.appendChild(el("div", { class: "label", title: t.label }, t.label));
    const line = data.grid[i];
    let cells = "";
    for (let j = 0; j < line.length; j++) {
      const m = line[j];
      cells += `<span class="cell" data-i="${i}" data-j="${j}" data-m="${m === '"' ? "&quot;" : esc(m)}" title="${esc(t.label)} ${data.dates[j]}">${m === " " ? "" : esc(m)}</span>`;
    }
    row.insertAdjacentHTML("beforeend", cells);
    grid.appendChild(row);
    rows.push(row);
  });

  function applyFilters() {
    rows.forEach((row, i) => {
      const t = data.targets[i];
      let visible = (!state.pkg || t.package === state.pkg) && (!state.target || t.label === state.target);
      if (visible && state.status) visible = data.grid[i].includes(state.status);
      row.classList.toggle("hidden", !visible);
      if (visible) {
        for (const cell of row.querySelectorAll(".cell")) {
          cell.classList.toggle("dim", !!state.status && cell.dataset.m !== state.status);
        }
      }
    });
    const flag = document.getElementById("filter-target");
    flag.hidden = !state.target;
    document.getElementById("filter-target-label").textContent = state.target;
    for (const node of document.querySelectorAll("#graph-svg .node")) {
      node.classList.toggle("active", node.dataset.label === state.target);
    }
  }
  pkgSelect.addEventListener("change", () => { state.pkg = pkgSelect.value; applyFilters(); });
  statusSelect.addEventListener("change", () => { state.status = statusSelect.value; applyFilters(); });
  document.getElementById("clear-target").addEventListener("click", () => { state.target = ""; applyFilters(); });
  for (const node of document.querySelectorAll("#graph-svg .node")) {
    node.addEventListener("click", () => {
      state.target = state.target === node.dataset.label ? "" : node.dataset.label;
      applyFilters();
      document.getElementById("grid-section").scrollIntoView({ block: "start" });
    });
  }

  // the cell panel
  const panel = document.getElementById("panel");
  const body = document.getElementById("panel-body");
  let selected = null;
  document.getElementById("close-panel").addEventListener("click", () => {
    panel.hidden = true;
    if (selected) selected.classList.remove("selected");
  });
  grid.addEventListener("click", (event) => {
    const cell = event.target.closest(".cell");
    if (!cell) return;
    if (selected) selected.classList.remove("selected");
    selected = cell;
    cell.classList.add("selected");
    showCell(+cell.dataset.i, +cell.dataset.j);
  });

  const S = data.strings;
  function str(index) { return index == null ? null : S[index]; }
  // one cell's facts, unpacked from the payload's compact arrays (see btbuild/readers/report.py)
  function cellInfo(i, j) {
    const raw = data.cells[`${i},${j}`] || {};
    const info = {};
    if (raw.d) info.decision = { status: str(raw.d[0]), reason: str(raw.d[1]), detail: raw.d[2], changes: raw.d[3] };
    if (raw.r) {
      const r = raw.r;
      info.record = { status: str(r[0]), result_hash: r[1], items: r[2], shards: r[3], kind: str(r[4]), attempts: r[5], error: r[6], updated: r[7] };
    }
    info.runs = (raw.u || []).map((u) => ({
      run: str(u[0]), status: str(u[1]), trigger: str(u[2]), changed: u[3].map(str), started: u[4],
      duration: u[5], worker: str(u[6]), users: u[7], error: u[8],
    }));
    return info;
  }

  function explainRows(t, info) {
    const changes = {};
    for (const [component, old, now] of (info.decision && info.decision.changes) || []) changes[component] = [old, now];
    const rowsOut = [];
    for (const name of COMPONENTS) {
      const current = t.components[name];
      if (name in changes) rowsOut.push([name, changes[name][0], changes[name][1], true]);
      else rowsOut.push([name, info.record ? current : null, current, false]);
    }
    for (const [name, pair] of Object.entries(changes)) {
      if (!COMPONENTS.includes(name)) rowsOut.push([name, pair[0], pair[1], true]);
    }
    return rowsOut;
  }

  function showCell(i, j) {
    const t = data.targets[i];
    const date = data.dates[j];
    const m = data.grid[i][j];
    const info = cellInfo(i, j);
    const decision = info.decision || { status: "skipped", reason: m === " " ? "not_scheduled" : "up_to_date" };
    let out = `<h3>${esc(t.label)} ${date}</h3>`;
    out += `<p class="verdict"><b>${esc(marks[m] ? marks[m].name : m)}</b>`;
    out += ` &mdash; ${esc(decision.status)} (${esc(decision.reason)})</p>`;
    if (decision.detail) out += `<p class="detail">${esc(decision.detail)}</p>`;
    out += `<h4>Inputs, hash by hash</h4><table class="explain"><tr><th></th><th>component</th><th>recorded</th><th>current</th></tr>`;
    for (const [name, old, now, changed] of explainRows(t, info)) {
      out += `<tr class="${changed ? "changed" : "same"}" data-component="${esc(name)}"><td>${changed ? "CHANGED" : "same"}</td>` +
        `<td>${esc(name)}</td><td class="hash">${esc(old == null ? "(none)" : old)}</td><td class="hash">${esc(now == null ? "(none)" : now)}</td></tr>`;
    }
    out += `</table>`;
    const r = info.record;
    if (!r) {
      out += `<p>No cache record: this cell never ran.</p>`;
    } else {
      out += `<h4>Result</h4><table class="result">` +
        `<tr><td>record</td><td>${esc(r.status)}, ${r.attempts} attempt(s)</td></tr>` +
        `<tr><td>result hash</td><td class="hash">${esc(r.result_hash || "(no result)")}</td></tr>` +
        `<tr><td>${r.kind === "per_date" ? "items" : "users"}</td><td>${r.items}</td></tr>` +
        `<tr><td>shards</td><td>${r.shards}</td></tr>` +
        `<tr><td>updated</td><td>${esc(time(r.updated))}</td></tr></table>`;
      if (r.error) out += `<h4>Error</h4><p class="error">${esc(r.error)}</p>`;
    }
    out += `<h4>Last runs</h4>`;
    if (!info.runs.length) out += `<p>None in the run log.</p>`;
    else {
      out += `<table class="runs"><tr><th>started</th><th>run</th><th>status</th><th>trigger</th><th>s</th><th>users</th><th>worker</th></tr>`;
      for (const run of info.runs) {
        const trigger = run.trigger + (run.changed.length ? ` (${run.changed.join(", ")})` : "");
        out += `<tr><td>${esc(time(run.started))}</td><td>${esc(run.run.slice(0, 12))}</td><td>${esc(run.status)}</td>` +
          `<td>${esc(trigger)}</td><td>${run.duration}</td><td>${run.users}</td><td>${esc(run.worker)}</td></tr>`;
        if (run.error) out += `<tr><td colspan="7" class="error">${esc(run.error)}</td></tr>`;
      }
      out += `</table>`;
    }
    body.innerHTML = out;
    panel.hidden = false;
  }

  // timings of the newest builds
  const timings = document.getElementById("timings");
  if (!data.builds.length) timings.textContent = "No runs in the run log for these targets.";
  for (const build of data.builds) {
    const box = el("div", { class: "build", "data-run": build.run });
    box.appendChild(el("div", {}, `${time(build.started)} run ${build.run.slice(0, 12)}: ${build.cells} cells` +
      (build.failed ? `, ${build.failed} not committed` : "")));
    const longest = Math.max(...build.passes.map((p) => p.seconds), 1e-9);
    const height = build.passes.length * 16 + 4;
    let svg = `<svg width="340" height="${height}" xmlns="http://www.w3.org/2000/svg">`;
    build.passes.forEach((p, k) => {
      const w = Math.max(1, Math.round((p.seconds / longest) * 150));
      const rate = p.users_per_second == null ? "" : `, ${p.users_per_second} users/s`;
      svg += `<text x="0" y="${k * 16 + 12}">pass ${p.pass}</text>` +
        `<rect class="bar" x="48" y="${k * 16 + 3}" width="${w}" height="11"><title>${p.cells} cells, ${p.seconds} s (wall ${p.wall} s)${rate}</title></rect>` +
        `<text x="${52 + w}" y="${k * 16 + 12}">${p.seconds}s${rate}</text>`;
    });
    svg += `</svg>`;
    box.insertAdjacentHTML("beforeend", svg);
    timings.appendChild(box);
  }
  document.body.dataset.ready = "true";
})();
