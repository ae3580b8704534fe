// A bare Node HTTP server: each request costs WORK × ~0.2M loop iterations of CPU, then answers after
// DELAY ms. It records, per connection, how long after the client built its first request the server
// accepted the connection ('connection' event), and reports on an IPC message.
const http = require('http');
const waits = [];
const srv = http.createServer((req, res) => {
  const s = req.socket;
  if (!s.seen) (s.seen = true), waits.push(Math.round(s.at - Number(req.headers['x-sent'])));
  req.resume();
  req.on('end', () => {
    let x = 0;
    for (let i = 0; i < 2e5 * Number(process.env.WORK ?? 1); i++) x += i;
    setTimeout(() => res.end(String(x > 0)), Number(process.env.DELAY || 150));
  });
});
srv.on('connection', (s) => (s.at = performance.timeOrigin + performance.now()));
srv.listen(0, '127.0.0.1', () => process.send(srv.address().port));
process.on('message', () => {
  waits.sort((a, b) => a - b);
  process.send({ n: waits.length, p50: waits[waits.length >> 1], p90: waits[Math.floor(waits.length * 0.9)], max: waits[waits.length - 1] });
  waits.length = 0;
});
