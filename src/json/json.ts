/**
 * Lossless JSON. The API server speaks Go's JSON: int64 values beyond 2^53 and numbers whose
 * text a float64 cannot reproduce would be silently changed by a plain JSON.parse. Numbers whose
 * source text differs from what JavaScript would print are kept as JSON.rawJSON values, which
 * JSON.stringify writes back byte for byte.
 */

declare global {
  interface JSON {
    rawJSON(text: string): RawJSON;
    isRawJSON(value: unknown): value is RawJSON;
  }
}

export interface RawJSON {
  readonly rawJSON: string;
}

export type JsonValue =
  null | boolean | number | string | RawJSON | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

type ReviverContext = { source?: string };

function keepNumberText(_key: string, value: unknown, context?: ReviverContext): unknown {
  if (typeof value === "number" && context?.source !== undefined && String(value) !== context.source) {
    return JSON.rawJSON(context.source);
  }
  return value;
}

/**
 * Number texts a float64 may not reproduce: 16+ significant digits, on either side of the point
 * or across it (integers beyond 2^53, long fractions, 12345678.123456789), exponents, trailing
 * fractional zeros, tiny fixed-point values and negative zero. Matches inside strings are
 * harmless: they only send the text down the careful path.
 */
const RISKY_NUMBER = /\d(?:\.?\d){15}|\d[eE]|\.\d*0(?![\d.])|\.0{6}|-0(?![\d.])/;

export function parseJson(text: string): JsonValue {
  // the reviver costs several times a plain parse, and most pages have no number at risk
  if (!RISKY_NUMBER.test(text)) return JSON.parse(text) as JsonValue;
  return JSON.parse(text, keepNumberText as (key: string, value: unknown) => unknown) as JsonValue;
}

export function stringifyJson(value: JsonValue): string {
  return JSON.stringify(value);
}

export function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !JSON.isRawJSON(value);
}
