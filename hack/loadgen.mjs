// Closed-loop HTTP load for hack/bench_proxy: CLIENTS keep-alive connections, each sending PER_CLIENT
// copies of one POST back to back. Node's HTTP client costs far less CPU per request than Python's
// threads, so on a 2-core machine shared with the servers under test it takes less of their CPU.
//
//   node hack/loadgen.mjs '{"url": ..., "body": ..., "headers": {...}, "expect": ..., "clients": 8, "perClient": 30}'
//
// Prints one JSON line: {"seconds", "calls", "errors", "firstError", "cpuUs"} (cpuUs: this process's CPU).
import http from "node:http";

const cfg = JSON.parse(process.argv[2]);
const target = new URL(cfg.url);
const body = Buffer.from(cfg.body, "utf8");
const headers = { ...cfg.headers, "Content-Length": body.length };
let errors = 0;
let firstError = null;

function post(agent) {
  return new Promise((resolve) => {
    const request = http.request(
      { host: target.hostname, port: target.port, path: target.pathname, method: "POST", headers, agent },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (response.statusCode !== 200 || !text.includes(cfg.expect)) {
            errors += 1;
            firstError ??= `${response.statusCode} ${text.slice(0, 200)}`;
          }
          resolve();
        });
      },
    );
    request.on("error", (error) => {
      errors += 1;
      firstError ??= String(error);
      resolve();
    });
    request.end(body);
  });
}

async function client() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < cfg.perClient; i += 1) {
    await post(agent);
  }
  agent.destroy();
}

const cpuStart = process.cpuUsage();
const start = process.hrtime.bigint();
await Promise.all(Array.from({ length: cfg.clients }, client));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const cpu = process.cpuUsage(cpuStart);
console.log(
  JSON.stringify({ seconds, calls: cfg.clients * cfg.perClient, errors, firstError, cpuUs: cpu.user + cpu.system }),
);
