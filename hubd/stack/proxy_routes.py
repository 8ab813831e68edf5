"""The proxies' routing table: kept across restarts, shared by the proxy and its standby.

configurable-http-proxy keeps its routes in memory: a restarted proxy sends everyone to the
hub until the hub re-adds them, and a websocket that reconnects in that window fails (then
JupyterLab waits 10-30 s). CHP loads a storage class named by `--storage-backend`; hubd's
(ROUTES_STORE_JS) is CHP's own in-memory store that also writes the table to a file whenever a
route is added or removed, and reads it back when CHP starts.

The file is on a volume of the stack (`<stack>-proxy-routes`) that the proxy and its standby
(stack/proxy_standby.py) both mount. Only one of them gets the hub's API calls at a time (the
front sends them to the proxy, to the standby while the proxy is away), and each one, before
it looks a route up or changes the table, reloads the file when another wrote it since: so the
standby routes everyone the moment the front sends it a connection, and a restarted proxy
routes everyone the moment it listens. A new proxy (a planned switch) starts with the table.

`last_activity` updates (one per request) are not written: the hub keeps the newest it saw,
and a reload keeps a proxy's own newer value.
"""

from __future__ import annotations

import json

from hubd.stack.containers import TarEntry

# Inside the proxy containers: the shared volume's mount point.
ROUTES_DIR = "/var/lib/hubd-proxy"
ROUTES_FILE = f"{ROUTES_DIR}/routes.json"
ROUTES_STORE_IN_PROXY = "/etc/hubd-proxy/routes-store.js"

# CHP's store module is found relative to CHP's own executable (bin/configurable-http-proxy),
# wherever npm installed CHP: `require.main`, or, under the HTTPS wrapper (proxy_tls.py),
# the program the wrapper ran, which it leaves in `global.hubdChpProgram`. A file that does
# not parse at the start is a table lost, not a proxy that cannot start: the hub re-adds the
# routes (hubd asks it to). A stat per lookup costs microseconds; the file changes only when
# a server starts or stops.
ROUTES_STORE_JS = """"use strict";
// hubd: CHP's in-memory routing table, kept in a file shared with the other proxy
// (hubd/stack/proxy_routes.py).
const fs = require("fs");
const os = require("os");
const path = require("path");
const chpProgram = global.hubdChpProgram || require.main.filename;
const { MemoryStore } = require(path.join(path.dirname(chpProgram), "../lib/store.js"));
const FILE = "@FILE@";
const TMP = FILE + "." + os.hostname() + ".tmp";

function version() {
  try {
    const s = fs.statSync(FILE);
    return [s.ino, s.size, s.mtimeMs, s.ctimeMs].join(":");
  } catch (e) {
    return "";
  }
}

function newer(a, b) {
  return a && (!b || new Date(a) > new Date(b));
}

class HubdFileStore extends MemoryStore {
  constructor(options) {
    super(options);
    this.seen = null;
    this.sync();
  }
  // The file's table, if someone (the other proxy) wrote it since this one last read or
  // wrote it. A route's last_activity stays this proxy's own when that is newer.
  sync() {
    const now = version();
    if (now === this.seen) {
      return;
    }
    let saved = {};
    if (now !== "") {
      try {
        saved = JSON.parse(fs.readFileSync(FILE, "utf8"));
      } catch (e) {
        // Being written in place (hubd copies a table in for a planned switch): keep this
        // table and read again at the next look. At the start there is none to keep.
        if (this.seen !== null) {
          return;
        }
        saved = {};
      }
    }
    this.seen = now;
    const before = this.routes;
    for (const path of Object.keys(before)) {
      if (!(path in saved)) {
        super.remove(path);
      }
    }
    for (const path of Object.keys(saved)) {
      const data = saved[path];
      const mine = before[path];
      if (mine && newer(mine.last_activity, data.last_activity)) {
        data.last_activity = mine.last_activity;
      }
      super.add(path, data);
    }
  }
  get(path) {
    this.sync();
    return super.get(path);
  }
  getTarget(path) {
    this.sync();
    return super.getTarget(path);
  }
  getAll() {
    this.sync();
    return super.getAll();
  }
  add(path, data) {
    this.sync();
    return super.add(path, data).then((result) => {
      this.save();
      return result;
    });
  }
  update(path, data) {
    // last_activity, once per request: in memory only (see above).
    if (this.routes[this.cleanPath(path)]) {
      return super.update(path, data);
    }
  }
  remove(path) {
    this.sync();
    return super.remove(path).then((route) => {
      this.save();
      return route;
    });
  }
  save() {
    try {
      fs.writeFileSync(TMP, JSON.stringify(this.routes));
      fs.renameSync(TMP, FILE);
      this.seen = version();
    } catch (e) {
      console.error("hubd: could not save the routing table: " + e);
    }
  }
}

module.exports = HubdFileStore;
""".replace("@FILE@", ROUTES_FILE)

# Run with `node -e` inside a proxy container (CHP's image always has node): exit 0 once
# the public port accepts connections, 1 when it has not within the deadline (argv[1], ms).
# A TCP connect only, so that it holds whether CHP serves HTTP or TLS there.
LISTENING_JS = """
const net = require("net");
const end = Date.now() + Number(process.argv[1]);
(function attempt() {
  const s = net.connect(Number(process.argv[2]), "127.0.0.1");
  s.on("connect", () => process.exit(0));
  s.on("error", () => (Date.now() > end ? process.exit(1) : setTimeout(attempt, 50)));
})();
"""

# The same, for a proxy that may hang: any HTTP answer of its API (403 without the token)
# within the timeout (argv[1], ms) means CHP's event loop runs. argv[2]: the API's address.
ANSWERS_JS = """
const http = require("http");
const req = http.get(
  { host: process.argv[2], port: Number(process.argv[3]), path: "/api/routes",
    timeout: Number(process.argv[1]) },
  () => process.exit(0));
req.on("timeout", () => process.exit(1));
req.on("error", () => process.exit(1));
"""


def routes_entries(routes_json: str | None, owner: int) -> list[TarEntry]:
    """The folder CHP (running as `owner`) writes its table into, with a table in it."""
    folder = TarEntry(ROUTES_DIR, None, mode=0o700, owner=owner)
    if routes_json is None:
        return [folder]
    return [folder, TarEntry(ROUTES_FILE, routes_json, mode=0o600, owner=owner)]


def valid_table(text: str | None) -> str | None:
    """A routing table read from a proxy, if it is one (else None: start without)."""
    if not text:
        return None
    try:
        table = json.loads(text)
    except ValueError:
        return None
    return text if isinstance(table, dict) else None


__all__ = [
    "ANSWERS_JS",
    "LISTENING_JS",
    "ROUTES_FILE",
    "ROUTES_STORE_IN_PROXY",
    "ROUTES_STORE_JS",
    "routes_entries",
    "valid_table",
]
