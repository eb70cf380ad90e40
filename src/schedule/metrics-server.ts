import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CrdBackupError } from "../errors.ts";
import { formatMetrics, type Metric } from "../report/metrics.ts";

/** host:port, [ipv6]:port or :port (all interfaces). */
export function parseListenAddress(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new CrdBackupError(
      "USAGE",
      `--metrics-addr "${addr}": use HOST:PORT, e.g. 0.0.0.0:9464 or 127.0.0.1:9464`,
    );
  }
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** Serves GET /metrics (Prometheus text format) and GET /healthz; nothing else. */
export async function serveMetrics(
  addr: string,
  metrics: () => Metric[],
): Promise<{ server: Server; address: string; close: () => Promise<void> }> {
  const { host, port } = parseListenAddress(addr);
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(formatMetrics(metrics()));
    } else if (req.method === "GET" && path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
    } else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) =>
      reject(new CrdBackupError("USAGE", `--metrics-addr ${addr}: cannot listen: ${(e as Error).message}`)),
    );
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    server,
    address: `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
