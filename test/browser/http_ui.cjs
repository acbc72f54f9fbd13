// The http service's web UI in a real browser: Debian's chromium
// driven by puppeteer-core. Starts bin/fileserver with one http listener on
// a free port and a temporary root, then: load /, see the list, upload a
// file through the page's file input and see it listed, download it with
// the page's link and compare bytes, delete it through the page (confirm
// dialog accepted) and see it gone. Then the same page over HTTPS (a
// second server with `http=0,tls` and make certs' pair from $FSRV_CERTS,
// the browser told to accept the self-signed certificate): load, list,
// upload through the page. Then accounts (a third server with `--users` and
// `http=0,auth=write`): logged in as a `read` user (page.authenticate, GET
// /login) the page says who is logged in and hides upload and delete, and
// the server refuses a delete sent anyway; as `admin` (its own browser
// context) both show and a delete through the page works; a page on another
// origin, in the admin's context, POSTs an upload and sends a DELETE to the
// server: refused, nothing changes on disk. Screenshots go to $SHOT_DIR.
//   FSRV_BIN=bin SHOT_DIR=build/browser NODE_PATH=.../node_modules node test/browser/http_ui.cjs
"use strict";
const { execFileSync, spawn } = require("child_process");
const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");
const puppeteer = require("puppeteer-core");

const BIN = process.env.FSRV_BIN || "bin";
const SHOT_DIR = process.env.SHOT_DIR || "build/browser";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CERTS = process.env.FSRV_CERTS || "build/certs";
const TIMEOUT_MS = 30000;

let passed = 0;
let failed = 0;
function check(what, ok, detail) {
  if (ok) {
    passed++;
    console.log("ok   " + what);
  } else {
    failed++;
    console.log("FAIL " + what + (detail ? ": " + detail : ""));
  }
}

function startServer(root, tls, extra) {
  const listen = extra || (tls
    ? ["--listen", "http=0,tls", "--tls-cert", path.join(CERTS, "cert.pem"),
      "--tls-key", path.join(CERTS, "key.pem")]
    : ["--listen", "http=0"]);
  return new Promise((resolve, reject) => {
    const proc = spawn(path.join(BIN, "fileserver"),
      ["--host", "127.0.0.1", "--root", root, "--log-level", "warn", ...listen],
      { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    proc.stdout.on("data", (d) => {
      out += d.toString();
      const m = out.match(/listening http on 127\.0\.0\.1:(\d+)/);
      if (m) resolve({ proc, port: Number(m[1]) });
    });
    proc.on("exit", (code) => reject(new Error("server exited with " + code + ": " + out)));
  });
}

async function waitFor(fn, what) {
  const end = Date.now() + TIMEOUT_MS;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("timed out waiting for " + what);
}

// One --users line from `fileserver hash-password NAME ROLE` (password on stdin).
function usersLine(name, role, password) {
  return execFileSync(path.join(BIN, "fileserver"), ["hash-password", name, role],
    { input: password + "\n", timeout: TIMEOUT_MS }).toString();
}

const sha = (buf) => crypto.createHash("sha256").update(buf).digest("hex");

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fsrv-browser-"));
  const root = path.join(tmp, "root");
  const local = path.join(tmp, "local");
  const downloads = path.join(tmp, "downloads");
  for (const d of [root, local, downloads]) fs.mkdirSync(d);
  fs.mkdirSync(SHOT_DIR, { recursive: true });
  fs.writeFileSync(path.join(root, "hello.txt"), "Halo dari server berkas!\n");
  const upName = "unggah data.bin";  // a space: percent-encoded by the page
  const upBytes = crypto.randomBytes(3 * 1024 * 1024 + 17);
  fs.writeFileSync(path.join(local, upName), upBytes);

  const { proc, port } = await startServer(root, false);
  const base = "http://127.0.0.1:" + port;
  const tlsRoot = path.join(tmp, "tls-root");
  fs.mkdirSync(tlsRoot);
  fs.writeFileSync(path.join(tlsRoot, "hello.txt"), "Halo dari server berkas!\n");
  let tlsServer = null;
  let authServer = null;
  let browser;
  try {
    tlsServer = await startServer(tlsRoot, true);
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: path.join(tmp, "profile"),
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--ignore-certificate-errors", "--user-data-dir=" + path.join(tmp, "profile")],
    });
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    await page.setViewport({ width: 1000, height: 700 });
    const rowSel = (name) => `tr[data-name="${name}"]`;

    // 1. Load / and see the list.
    const resp = await page.goto(base + "/", { waitUntil: "load" });
    check("GET / is 200", resp.status() === 200, String(resp.status()));
    check("heading is SERVER HTTP",
      (await page.$eval("h1", (h) => h.outerHTML)) === "<h1>SERVER HTTP</h1>");
    await page.waitForSelector(rowSel("hello.txt"));
    check("hello.txt listed with its size",
      (await page.$eval(rowSel("hello.txt"), (r) => r.cells[1].textContent)) === "25 B");

    // 2. Upload through the page's file input; see it listed.
    const input = await page.$("#file");
    await input.uploadFile(path.join(local, upName));
    await page.waitForSelector(rowSel(upName));
    const stored = fs.readFileSync(path.join(root, upName));
    check("uploaded file stored byte for byte", Buffer.compare(stored, upBytes) === 0);
    await page.screenshot({ path: path.join(SHOT_DIR, "http-ui.png"), fullPage: true });

    // 3. Download with the page's link; compare bytes.
    const cdp = await page.createCDPSession();
    await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: downloads });
    await page.click(rowSel(upName) + " a.dl");
    const dl = path.join(downloads, upName);
    await waitFor(() => fs.existsSync(dl) && fs.statSync(dl).size === upBytes.length, "the download");
    check("downloaded bytes equal the uploaded ones", sha(fs.readFileSync(dl)) === sha(upBytes));

    // 4. Delete through the page (confirm dialog accepted); see it gone.
    let dialog = "";
    page.on("dialog", async (d) => {
      dialog = d.message();
      await d.accept();
    });
    await page.click(rowSel(upName) + " button.del");
    await waitFor(async () => (await page.$(rowSel(upName))) === null, "the row to go");
    check("delete asked for confirmation", dialog === "Delete " + upName + "?", dialog);
    check("file removed from the root", !fs.existsSync(path.join(root, upName)));
    check("other file still listed", (await page.$(rowSel("hello.txt"))) !== null);

    // 5. The phone layout renders too.
    await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
    await page.reload({ waitUntil: "load" });
    await page.waitForSelector(rowSel("hello.txt"));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > innerWidth);
    check("no horizontal scrolling at 390 px", !overflow);
    await page.screenshot({ path: path.join(SHOT_DIR, "http-ui-phone.png"), fullPage: true });

    // 6. The same page over HTTPS: load, list, upload through the page.
    const tlsPage = await browser.newPage();
    tlsPage.setDefaultTimeout(TIMEOUT_MS);
    await tlsPage.setViewport({ width: 1000, height: 700 });
    const tlsResp = await tlsPage.goto("https://127.0.0.1:" + tlsServer.port + "/",
      { waitUntil: "load" });
    check("GET / over HTTPS is 200", tlsResp.status() === 200, String(tlsResp.status()));
    check("the page came over TLS", tlsResp.securityDetails() !== null &&
      /^TLS 1\.[23]$/.test(tlsResp.securityDetails().protocol()),
      tlsResp.securityDetails() ? tlsResp.securityDetails().protocol() : "no security details");
    await tlsPage.waitForSelector(rowSel("hello.txt"));
    check("hello.txt listed over HTTPS", true);
    const tlsInput = await tlsPage.$("#file");
    await tlsInput.uploadFile(path.join(local, upName));
    await tlsPage.waitForSelector(rowSel(upName));
    check("uploaded over HTTPS byte for byte",
      Buffer.compare(fs.readFileSync(path.join(tlsRoot, upName)), upBytes) === 0);
    await tlsPage.screenshot({ path: path.join(SHOT_DIR, "https-ui.png"), fullPage: true });

    // 7. Accounts: http=0,auth=write with a read and an admin user.
    const authRoot = path.join(tmp, "auth-root");
    fs.mkdirSync(authRoot);
    fs.writeFileSync(path.join(authRoot, "hello.txt"), "Halo dari server berkas!\n");
    fs.writeFileSync(path.join(authRoot, "victim.txt"), "keep me\n");
    const users = path.join(tmp, "users");
    fs.writeFileSync(users, usersLine("reader", "read", "pw-reader") +
      usersLine("boss", "admin", "pw-boss"));
    authServer = await startServer(authRoot, false,
      ["--users", users, "--listen", "http=0,auth=write"]);
    const authBase = "http://127.0.0.1:" + authServer.port;
    const shown = (p, sel) => p.$eval(sel, (e) => getComputedStyle(e).display !== "none");
    const rootNames = () => fs.readdirSync(authRoot).sort().join(",");

    // 7a. A read user: logged in, no upload or delete controls.
    const readCtx = await browser.createBrowserContext();
    const readPage = await readCtx.newPage();
    readPage.setDefaultTimeout(TIMEOUT_MS);
    await readPage.setViewport({ width: 1000, height: 700 });
    await readPage.authenticate({ username: "reader", password: "pw-reader" });
    await readPage.goto(authBase + "/login", { waitUntil: "load" });  // 401, then 303 to /
    await readPage.waitForFunction(() => document.getElementById("who").textContent !== "");
    const readWho = await readPage.$eval("#who", (e) => e.textContent);
    check("read user: the page says who is logged in", readWho === "Logged in as reader (read)",
      readWho);
    await readPage.waitForSelector(rowSel("victim.txt"));
    check("read user: upload control hidden", !(await shown(readPage, "#drop")));
    check("read user: delete buttons hidden",
      !(await shown(readPage, rowSel("victim.txt") + " button.del")));
    const readDelete = await readPage.evaluate(async () =>
      (await fetch("/victim.txt", { method: "DELETE" })).status);
    check("read user: a delete sent anyway is 403", readDelete === 403, String(readDelete));
    check("read user: nothing changed on disk", rootNames() === "hello.txt,victim.txt",
      rootNames());
    await readPage.screenshot({ path: path.join(SHOT_DIR, "http-ui-read-user.png"),
      fullPage: true });

    // 7b. An admin: controls shown, a delete through the page works.
    const adminCtx = await browser.createBrowserContext();
    const adminPage = await adminCtx.newPage();
    adminPage.setDefaultTimeout(TIMEOUT_MS);
    await adminPage.setViewport({ width: 1000, height: 700 });
    await adminPage.authenticate({ username: "boss", password: "pw-boss" });
    await adminPage.goto(authBase + "/login", { waitUntil: "load" });
    await adminPage.waitForFunction(() => document.getElementById("who").textContent !== "");
    const adminWho = await adminPage.$eval("#who", (e) => e.textContent);
    check("admin: the page says who is logged in", adminWho === "Logged in as boss (admin)",
      adminWho);
    await adminPage.waitForSelector(rowSel("victim.txt"));
    check("admin: upload control shown", await shown(adminPage, "#drop"));
    check("admin: delete buttons shown",
      await shown(adminPage, rowSel("victim.txt") + " button.del"));
    adminPage.on("dialog", (d) => d.accept());
    await adminPage.click(rowSel("victim.txt") + " button.del");
    await waitFor(async () => (await adminPage.$(rowSel("victim.txt"))) === null,
      "the deleted row to go");
    check("admin: delete through the page removed the file", rootNames() === "hello.txt",
      rootNames());
    await adminPage.screenshot({ path: path.join(SHOT_DIR, "http-ui-admin.png"),
      fullPage: true });

    // 7c. Cross-origin writes from another origin's page (the first
    // server, another port), in the admin's context whose browser holds
    // the account: refused by the Origin check; nothing changes on disk.
    const evilPage = await adminCtx.newPage();
    evilPage.setDefaultTimeout(TIMEOUT_MS);
    await evilPage.goto(base + "/", { waitUntil: "load" });
    const cross = await evilPage.evaluate(async (target) => {
      const out = {};
      // A simple request: sent, the reply unreadable (no-cors).
      try {
        const r = await fetch(target + "/upload/evil.txt", { method: "POST", body: "pwned",
          mode: "no-cors", credentials: "include" });
        out.post = "sent (" + r.type + ")";
      } catch (e) { out.post = "error " + e.message; }
      try {
        const r = await fetch(target + "/hello.txt", { method: "DELETE", credentials: "include" });
        out.del = "status " + r.status;
      } catch (e) { out.del = "error " + e.message; }
      return out;
    }, authBase);
    // The POST is sent and stores nothing; the DELETE needs a CORS
    // preflight the server never grants.
    console.log("     cross-origin POST: " + cross.post + "; DELETE: " + cross.del);
    check("cross-origin DELETE not allowed", cross.del.startsWith("error") ||
      cross.del === "status 403", cross.del);
    await new Promise((r) => setTimeout(r, 500));
    check("cross-origin writes changed nothing on disk", rootNames() === "hello.txt",
      rootNames() + " post: " + cross.post + ", delete: " + cross.del);
    const evilStatus = await (async () => {
      // The same POST as the browser sends it (Origin of the other page),
      // so its status can be read: the server's answer to such a request.
      const res = await fetch(authBase + "/upload/evil.txt", { method: "POST", body: "pwned",
        headers: { Origin: base, Authorization: "Basic " +
          Buffer.from("boss:pw-boss").toString("base64") } });
      return res.status;
    })();
    check("cross-origin POST with the admin's account is 403", evilStatus === 403,
      String(evilStatus));
    check("still nothing changed on disk", rootNames() === "hello.txt", rootNames());
  } catch (e) {
    check("browser session", false, e.stack || String(e));
  } finally {
    if (browser) await browser.close();
    proc.kill("SIGTERM");
    if (tlsServer) tlsServer.proc.kill("SIGTERM");
    if (authServer) authServer.proc.kill("SIGTERM");
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`browser: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main();
