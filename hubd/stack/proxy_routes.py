"""The proxy's routing table kept across its restarts, and looks at the proxy past the front.

configurable-http-proxy keeps its routes in memory: a restarted proxy sends everyone to the
hub until the hub re-adds them, and a websocket that reconnects in that window fails (then
JupyterLab waits 10-30 s). CHP loads a storage class named by `--storage-backend`; hubd's
(ROUTES_STORE_JS) is CHP's own in-memory store that also writes the table to a file in the
container's own layer whenever a route is added or removed, and reads it back when CHP
starts. So a proxy restarted after a crash or a hang routes everyone again the moment it
listens, and a new proxy (a planned switch) starts with the running one's table.

`last_activity` updates (one per request) are not written: the hub keeps the newest it saw.
"""

from __future__ import annotations

import io
import json
import tarfile
import time

# Inside the proxy container. Not on a tmpfs: the file must outlive a restart of the same
# container (a new container gets a copy, see proxy_switch.py).
ROUTES_DIR = "/var/lib/hubd-proxy"
ROUTES_FILE = f"{ROUTES_DIR}/routes.json"
ROUTES_STORE_IN_PROXY = "/etc/hubd-proxy/routes-store.js"

# CHP's store module is found relative to CHP's own executable (bin/configurable-http-proxy),
# wherever npm installed CHP: `require.main`, or, under the HTTPS wrapper (proxy_tls.py),
# the program the wrapper ran, which it leaves in `global.hubdChpProgram`. A file that does
# not parse is a table lost, not a proxy that cannot start: the hub re-adds the routes (hubd
# asks it to).
ROUTES_STORE_JS = """"use strict";
// hubd: CHP's in-memory routing table, also kept in a file (hubd/stack/proxy_routes.py).
const fs = require("fs");
const path = require("path");
const chpProgram = global.hubdChpProgram || require.main.filename;
const { MemoryStore } = require(path.join(path.dirname(chpProgram), "../lib/store.js"));
const FILE = "@FILE@";

class HubdFileStore extends MemoryStore {
  constructor(options) {
    super(options);
    let saved = {};
    try {
      saved = JSON.parse(fs.readFileSync(FILE, "utf8"));
    } catch (e) {
      saved = {};
    }
    for (const path of Object.keys(saved)) {
      super.add(path, saved[path]);
    }
  }
  add(path, data) {
    return super.add(path, data).then((result) => {
      this.save();
      return result;
    });
  }
  remove(path) {
    return super.remove(path).then((route) => {
      this.save();
      return route;
    });
  }
  save() {
    try {
      fs.writeFileSync(FILE + ".tmp", JSON.stringify(this.routes));
      fs.renameSync(FILE + ".tmp", FILE);
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


def routes_tar(routes_json: str | None, owner: int) -> bytes:
    """The folder CHP (running as `owner`) writes its table into, with a table in it."""
    buffer = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        folder = tarfile.TarInfo(ROUTES_DIR.lstrip("/"))
        folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o700, now
        folder.uid = folder.gid = owner
        archive.addfile(folder)
        if routes_json is not None:
            data = routes_json.encode()
            info = tarfile.TarInfo(ROUTES_FILE.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o600, now
            info.uid = info.gid = owner
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


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
    "routes_tar",
    "valid_table",
]
