/**
 * RFC 3339 timestamps, as manifests store them and `--at` takes them (`2026-12-03T05:20:00Z`,
 * fractions and offsets allowed; `T` and `Z` in either case, as RFC 3339 section 5.6 permits).
 */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** Whether `value` is an RFC 3339 timestamp of a real instant. */
export function isRfc3339(value: unknown): value is string {
  return typeof value === "string" && RFC3339.test(value) && !Number.isNaN(Date.parse(value));
}
