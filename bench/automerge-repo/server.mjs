// A sync server built the way the official automerge-repo-sync-server is: an HTTP
// server whose upgrades go to a `ws` WebSocketServer, a Repo with the
// NodeWSServerAdapter and NodeFSStorageAdapter, and a share policy that announces
// nothing (it only answers peers). Express served a static page there; plain
// node:http does the same job here without another dependency.
//
// For the benchmark it also counts the bytes of every websocket message in both
// directions, and answers GET /stats (counters, documents held), POST /have (which documents it
// holds at given heads) and POST /flush
// (repo.flush(): everything held written to its storage).
//
// node server.mjs --dir DATA_DIR [--port 0]   (prints `LISTENING <port>`)

import http from "node:http"
import { mkdirSync } from "node:fs"
import { hostname } from "node:os"
import WebSocket, { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { intArg, parseArgs } from "./lib.mjs"

const args = parseArgs()
const dir = args.dir ?? ".amrg"
mkdirSync(dir, { recursive: true })

const stats = { bytes_in: 0, bytes_out: 0, messages_in: 0, messages_out: 0, connections: 0, closes: 0 }
const size = data => (Array.isArray(data) ? data.reduce((n, d) => n + d.byteLength, 0) : (data.byteLength ?? data.length ?? 0))

// Every send of this process goes through ws's WebSocket.prototype.send.
const send = WebSocket.prototype.send
WebSocket.prototype.send = function (data, ...rest) {
  stats.bytes_out += size(data)
  stats.messages_out += 1
  return send.call(this, data, ...rest)
}

const socket = new WebSocketServer({ noServer: true })
socket.on("connection", ws => {
  stats.connections += 1
  ws.on("message", data => {
    stats.bytes_in += size(data)
    stats.messages_in += 1
  })
  ws.on("close", () => (stats.closes += 1))
})

const repo = new Repo({
  network: [new NodeWSServerAdapter(socket)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: `storage-server-${hostname()}`,
  sharePolicy: async () => false,
})

const sameHeads = (a, b) => a.length === b.length && [...a].sort().join() === [...b].sort().join()
/** A request body, at most 64 MiB. */
async function body(req) {
  const parts = []
  let len = 0
  for await (const chunk of req) {
    len += chunk.length
    if (len > 64 << 20) throw new Error("request body over 64 MiB")
    parts.push(chunk)
  }
  return Buffer.concat(parts).toString("utf8")
}

const server = http.createServer(async (req, res) => {
  if (req.method === "GET" && req.url === "/stats") {
    const body = { ...stats, documents: Object.keys(repo.handles).length, rss: process.memoryUsage().rss }
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify(body))
  } else if (req.method === "POST" && req.url === "/have") {
    // Body: [[documentId, [head, ...]], ...]. Answer: the ids the server holds at
    // exactly those heads (in memory: its storage follows, throttled, or on /flush).
    const asked = JSON.parse(await body(req))
    const held = []
    for (const [id, heads] of asked) {
      const handle = repo.handles[id]
      if (handle?.isReady() && sameHeads(handle.heads(), heads)) held.push(id)
    }
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ held }))
  } else if (req.method === "POST" && req.url === "/flush") {
    const t = performance.now()
    await repo.flush()
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ secs: (performance.now() - t) / 1e3 }))
  } else {
    res.writeHead(200, { "content-type": "text/plain" })
    res.end("👍 automerge-repo sync server (tessera-bench) is running\n")
  }
})
server.on("upgrade", (request, sock, head) => {
  socket.handleUpgrade(request, sock, head, ws => socket.emit("connection", ws, request))
})
server.listen(intArg(args, "port", 0), "127.0.0.1", () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`)
})
process.on("SIGTERM", () => process.exit(0))
