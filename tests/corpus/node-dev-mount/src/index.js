const http = require("http");
http.createServer((q, r) => r.end("todo\n")).listen(3000);
