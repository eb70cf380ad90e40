import { rename, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * Prometheus metrics in the text exposition format: written to a file for node_exporter's
 * textfile collector (CronJob runs), or served on /metrics (schedule mode).
 */
export interface Sample {
  /** Appended to the metric's name: a histogram's `_bucket`, `_sum` and `_count`. */
  suffix?: string;
  labels?: Record<string, string>;
  value: number;
}

export interface Metric {
  name: string;
  help: string;
  type: "gauge" | "counter" | "histogram";
  samples: Sample[];
}

/** A cumulative histogram of observations (seconds, usually), as Prometheus reads one. */
export class Histogram {
  private readonly buckets: readonly number[];
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(buckets: readonly number[]) {
    this.buckets = buckets;
    this.counts = new Array<number>(buckets.length).fill(0);
  }

  observe(value: number): void {
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  metric(name: string, help: string): Metric {
    return {
      name,
      help,
      type: "histogram",
      samples: [
        ...this.buckets.map((le, i) => ({
          suffix: "_bucket",
          labels: { le: String(le) },
          value: this.counts[i]!,
        })),
        { suffix: "_bucket", labels: { le: "+Inf" }, value: this.count },
        { suffix: "_sum", value: this.sum },
        { suffix: "_count", value: this.count },
      ],
    };
  }
}

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

export function formatMetrics(metrics: Metric[]): string {
  const lines: string[] = [];
  for (const m of metrics) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(m.name)) throw new Error(`invalid metric name ${m.name}`);
    lines.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`);
    for (const s of m.samples) {
      const labels = Object.entries(s.labels ?? {})
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(",");
      lines.push(`${m.name}${s.suffix ?? ""}${labels ? `{${labels}}` : ""} ${formatValue(s.value)}`);
    }
  }
  return lines.join("\n") + "\n";
}

/**
 * Replaces the file atomically (temp file in the same directory, then rename): the textfile
 * collector must never read a half-written file, or it drops every metric in it.
 */
export async function writeMetricsFile(file: string, metrics: Metric[]): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await writeFile(tmp, formatMetrics(metrics));
  await rename(tmp, file);
}

export const gauge = (name: string, help: string, samples: Sample[] | number): Metric => ({
  name,
  help,
  type: "gauge",
  samples: typeof samples === "number" ? [{ value: samples }] : samples,
});
