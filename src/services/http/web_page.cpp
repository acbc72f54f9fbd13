// The HTTP service's pages, embedded in the binary: the web UI of GET /
// and the course's form of GET /sending.html (tugas 8). No CDN, no
// framework: plain HTML, CSS and JS that work on a phone (viewport meta,
// one column under 600 px, large touch targets).

#include <cstdio>
#include <ctime>
#include <iterator>

#include "fsrv/services/http/http_service.hpp"
#include "fsrv/services/http/http_util.hpp"

namespace fsrv::services::http {

namespace {

// The server writes the file list into the page (kFilesSlot, kStatusSlot):
// names HTML-escaped, links percent-encoded, so clients that run no
// JavaScript (sockets, requests, a student's Java browser) see it. The
// script refreshes the list from GET /listdir after an upload or a delete,
// writing names with textContent, never innerHTML, and encodeURIComponent
// for links: a file name cannot inject markup either way. Other routes it
// uses: POST /upload/{name} (raw body; XMLHttpRequest for upload
// progress), DELETE /{name}, GET /{name} (download).
constexpr std::string_view kWebPage = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SERVER HTTP</title>
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #2e6be6; --bad: #c62828; }
  * { box-sizing: border-box; }
  body { font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
         margin: 0; background: #f6f7f9; }
  main { max-width: 920px; margin: 0 auto; padding: 16px; }
  h1 { font-size: 1.6rem; margin: 8px 0 16px; }
  #drop { display: block; border: 2px dashed #b7c0cf; border-radius: 12px; padding: 20px; text-align: center;
          background: #fff; cursor: pointer; }
  #drop.over { border-color: var(--accent); background: #eef3fd; }
  #drop input { display: none; }
  button, .btn { font: inherit; border: 0; border-radius: 8px; padding: 10px 14px; cursor: pointer;
                 min-height: 44px; }
  .pick { background: var(--accent); color: #fff; }
  .del { background: #fdecec; color: var(--bad); }
  .dl { background: #eef3fd; color: var(--accent); text-decoration: none; display: inline-block; }
  #uploads { margin: 12px 0; }
  .up { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px;
        margin-bottom: 6px; }
  .up .n { word-break: break-all; }
  progress { width: 100%; height: 10px; }
  table { width: 100%; border-collapse: collapse; background: #fff; border-radius: 12px;
          overflow: hidden; }
  th, td { text-align: left; padding: 10px 12px; border-bottom: 1px solid var(--line); }
  th { font-size: .85rem; color: var(--muted); font-weight: 600; }
  td.name { word-break: break-all; }
  td.num { white-space: nowrap; }
  td.act { white-space: nowrap; text-align: right; }
  #status { color: var(--muted); margin: 8px 0; min-height: 1.4em; }
  body[data-upload="no"] #drop, body[data-delete="no"] button.del { display: none; }
  #who { color: var(--muted); }
  .err { color: var(--bad); }
  @media (max-width: 600px) {
    thead { display: none; }
    table, tbody, tr, td { display: block; width: 100%; }
    tr { border-bottom: 1px solid var(--line); padding: 6px 0; }
    td { border: 0; padding: 4px 12px; }
    td.act { text-align: left; }
  }
</style>
</head>
<body>
<main>
<h1>SERVER HTTP</h1>
<p id="who" hidden></p>
<label id="drop">
  <input id="file" type="file" multiple>
  <span>Drop files here, or <span class="btn pick">choose files</span></span>
</label>
<div id="uploads"></div>
<div id="status"><!--STATUS--></div>
<table>
  <thead><tr><th>Name</th><th>Size</th><th>Modified</th><th></th></tr></thead>
  <tbody id="files"><!--FILES--></tbody>
</table>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const statusLine = (text, bad) => { const s = $("status"); s.textContent = text; s.className = bad ? "err" : ""; };
function human(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
// The same text the server writes: "2026-11-21 15:20 UTC".
const when = (s) => new Date(s * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; }
async function refresh() {
  try {
    const r = await fetch("/listdir", { cache: "no-store" });
    if (!r.ok) throw new Error(r.status + " " + r.statusText);
    const files = await r.json();
    const body = $("files"); body.textContent = "";
    for (const f of files) {
      const row = body.insertRow(); row.dataset.name = f.name;
      cell(row, f.name, "name");
      cell(row, human(f.size), "num");
      cell(row, when(f.modified), "num");
      const act = cell(row, "", "act");
      const a = document.createElement("a");
      a.className = "btn dl"; a.textContent = "Download";
      a.href = "/" + encodeURIComponent(f.name); a.download = f.name;
      const d = document.createElement("button");
      d.className = "del"; d.textContent = "Delete";
      act.append(a, " ", d);
    }
    statusLine(files.length + (files.length === 1 ? " file" : " files"));
  } catch (e) { statusLine("could not list files: " + e.message, true); }
}
async function remove(name) {
  if (!confirm("Delete " + name + "?")) return;
  const r = await fetch("/" + encodeURIComponent(name), { method: "DELETE" });
  if (!r.ok) statusLine("delete failed: " + (await r.text()), true);
  await refresh();
}
function upload(file) {
  return new Promise((resolve) => {
    const box = document.createElement("div"); box.className = "up";
    const n = document.createElement("div"); n.className = "n"; n.textContent = file.name;
    const bar = document.createElement("progress"); bar.max = file.size || 1; bar.value = 0;
    box.append(n, bar); $("uploads").append(box);
    const x = new XMLHttpRequest();
    x.open("POST", "/upload/" + encodeURIComponent(file.name));
    x.upload.onprogress = (e) => { if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; } };
    x.onload = () => {
      if (x.status === 200 || x.status === 201) { box.remove(); } else { n.textContent = file.name + ": " + x.status + " " + x.responseText; n.className = "n err"; }
      resolve();
    };
    x.onerror = () => { n.textContent = file.name + ": upload failed"; n.className = "n err"; resolve(); };
    x.send(file);
  });
}
async function uploadAll(list) {
  for (const f of list) await upload(f);
  await refresh();
}
// The account (GET /whoami): what it may not do is hidden (the server
// refuses it anyway); on a listener with accounts, a login link (GET
// /login makes the browser ask; it then sends the account with every
// same-origin request).
async function whoami() {
  try {
    const r = await fetch("/whoami", { cache: "no-store" });
    if (!r.ok) return;
    const w = await r.json();
    document.body.dataset.upload = w.upload ? "yes" : "no";
    document.body.dataset.delete = w.delete ? "yes" : "no";
    if (!w.accounts) return;
    const p = $("who"); p.hidden = false; p.textContent = "";
    if (w.user) { p.textContent = "Logged in as " + w.user + " (" + w.role + ")"; return; }
    const a = document.createElement("a"); a.href = "/login"; a.textContent = "Log in";
    p.append("Not logged in: ", a, " to upload or delete");
  } catch (e) { /* an older server: show everything */ }
}
whoami();
$("file").onchange = (e) => { uploadAll([...e.target.files]); e.target.value = ""; };
const drop = $("drop");
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (e) => uploadAll([...e.dataTransfer.files]));
// Delete buttons, the server's rows and refresh()'s alike.
$("files").addEventListener("click", (e) => {
  const b = e.target.closest("button.del");
  if (b) remove(b.closest("tr").dataset.name);
});
</script>
</body>
</html>
)HTML";

// tugas 8: the form posts field `kirim` back to this path; the server echoes
// the decoded fields and the request's header lines as text/plain.
constexpr std::string_view kSendingPage = R"HTML(<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>sending</title></head>
<body>
<form method="post" action="/sending.html">
<input type="text" name="kirim" value="">
<input type="submit" value="kirim">
</form>
</body>
</html>
)HTML";

// A path segment for an href keeps RFC 3986 section 2.3's unreserved bytes
// (what encodeURIComponent does to UTF-8).
constexpr std::string_view kUnreserved = "-._~";

constexpr std::string_view kFilesSlot = "<!--FILES-->";
constexpr std::string_view kStatusSlot = "<!--STATUS-->";

// Same units as the script's human(): bytes below 1 KiB, then one decimal.
std::string human_size(uint64_t n) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (n < 1024) return std::to_string(n) + " B";
  double v = static_cast<double>(n);
  size_t i = 0;
  while (v >= 1024 && i < std::size(kUnits) - 1) {
    v /= 1024;
    ++i;
  }
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[i]);
  return buf;
}

std::string utc_minute(int64_t mtime_ns) {
  time_t t = static_cast<time_t>(mtime_ns / 1000000000);
  tm parts{};
  gmtime_r(&t, &parts);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &parts);
  return buf;
}

}  // namespace

std::string web_page(const std::vector<ListedFile>& files) {
  std::string rows;
  for (const ListedFile& f : files) {
    const std::string name = html_escape(f.name);
    rows += "<tr data-name=\"" + name + "\"><td class=\"name\">" + name +
            "</td><td class=\"num\">" + human_size(f.size) + "</td><td class=\"num\">" +
            utc_minute(f.mtime_ns) + "</td><td class=\"act\"><a class=\"btn dl\" href=\"/" +
            percent_encode(f.name, kUnreserved) + "\" download=\"" + name +
            "\">Download</a> <button class=\"del\">Delete</button></td></tr>\n";
  }
  std::string status = std::to_string(files.size()) + (files.size() == 1 ? " file" : " files");
  std::string page(kWebPage);
  page.replace(page.find(kFilesSlot), kFilesSlot.size(), rows);
  page.replace(page.find(kStatusSlot), kStatusSlot.size(), status);
  return page;
}
std::string_view sending_page() { return kSendingPage; }

}  // namespace fsrv::services::http
