// node run.js — C (200) closed-loop clients, each on a new keep-alive socket per round, 1,000 requests
// per round against server.js in its own process; prints client latency and the server's accept waits.
const { fork } = require('child_process');
const http = require('http');
const C = Number(process.env.C || 200);
const child = fork(__dirname + '/server.js');
child.once('message', async (port) => {
  for (let r = 0; r < 3; r++) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: C });
    const lat = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: C }, async () => {
        while (next++ < 1000) {
          const s = performance.now();
          await new Promise((done, fail) => {
            const q = http.request({ host: '127.0.0.1', port, agent, method: 'POST', path: '/', headers: { 'x-sent': String(performance.timeOrigin + performance.now()) } }, (rs) => (rs.resume(), rs.on('end', done)));
            q.on('error', fail);
            q.end('{}');
          });
          lat.push(performance.now() - s);
        }
      }),
    );
    lat.sort((a, b) => a - b);
    const w = await new Promise((res) => (child.once('message', res), child.send('q')));
    const at = (p) => Math.round(lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]);
    console.log(`round ${r}: ${Math.round(performance.now() - t0)} ms; latency p50 ${at(0.5)} p99 ${at(0.99)} max ${at(1)} ms; server accept wait ms`, JSON.stringify(w));
    agent.destroy();
  }
  child.kill();
});
