/**
 * Structured logs on stderr: one JSON object a line when stderr is not a terminal (CronJobs,
 * log shippers), short human lines when it is. Fields are names, counts and reasons only: never
 * credentials and never object contents.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | undefined>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export function createLogger(
  options: { level?: LogLevel; json?: boolean; write?: (line: string) => void } = {},
): Logger {
  const min = RANK[options.level ?? "info"];
  const json = options.json ?? !process.stderr.isTTY;
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const log = (level: LogLevel, msg: string, fields: LogFields = {}) => {
    if (RANK[level] < min) return;
    if (json) {
      write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }));
    } else {
      const extra = Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ");
      write(`${level === "info" ? "" : `${level}: `}${msg}${extra ? ` (${extra})` : ""}`);
    }
  };
  return {
    debug: (m, f) => log("debug", m, f),
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    error: (m, f) => log("error", m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
