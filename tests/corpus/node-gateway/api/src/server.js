// gateway-api: answers with its version and the V8 heap limit it was started with (NODE_OPTIONS).
const http = require("http");
const v8 = require("v8");
const pkg = require("../package.json");

const port = Number(process.env.PORT || 3000);
const heapMiB = Math.round(v8.getHeapStatistics().heap_size_limit / 1048576);

http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, {"Content-Type": "text/plain"});
    res.end("ok\n");
    return;
  }
  res.writeHead(200, {"Content-Type": "application/json"});
  res.end(JSON.stringify({service: pkg.name, version: pkg.version, heapLimitMiB: heapMiB}) + "\n");
}).listen(port, "0.0.0.0", () => console.log(`gateway-api listening on ${port}`));
