/**
 * The index fields of an entry body (archive/records.ts BodyFields) found by the byte scanner of
 * json/scan.ts instead of JSON.parse, for a re-read of an archive whose every body was parsed whole
 * when it was first verified (source/verified.ts): parsing each body again was a third of a
 * re-read's CPU. The same values JSON.parse gives: the last of duplicate keys, escapes decoded.
 */
import { CrdBackupError } from "../errors.ts";
import { MemberCursor, parseAt } from "../json/scan.ts";
import { archiveInvalid, quote } from "./format.ts";
import type { BodyFields } from "./records.ts";

type Span = [number, number] | undefined;

export function scannedFields(entry: string, body: Buffer): BodyFields {
  try {
    return scan(body);
  } catch (e) {
    // a body that changed since it was verified: the archive's, not the API server's, fault
    if (e instanceof CrdBackupError || e instanceof SyntaxError)
      throw archiveInvalid(`archive entry ${quote(entry)}: the body is not valid JSON`, { entry });
    throw e;
  }
}

function scan(body: Buffer): BodyFields {
  let apiVersion: Span;
  let kind: Span;
  let metadata: Span;
  const top = new MemberCursor(body, 0);
  while (top.next()) {
    const span: Span = [top.valueStart, top.end];
    if (top.keyIs("apiVersion")) apiVersion = span;
    else if (top.keyIs("kind")) kind = span;
    else if (top.keyIs("metadata")) metadata = span;
  }
  if (top.objectEnd !== body.length) throw new SyntaxError("bytes after the object");
  const value = (span: Span): unknown => (span ? parseAt(body, span[0], span[1]) : undefined);
  const fields: BodyFields = { name: undefined, apiVersion: value(apiVersion), kind: value(kind) };
  // as describeEntry: a metadata that is not an object has none of its fields
  if (!metadata || body[metadata[0]] !== 0x7b) return fields;
  let name: Span;
  let uid: Span;
  let namespace: Span;
  let owners: Span;
  const md = new MemberCursor(body, metadata[0]);
  while (md.next()) {
    const span: Span = [md.valueStart, md.end];
    if (md.keyIs("name")) name = span;
    else if (md.keyIs("uid")) uid = span;
    else if (md.keyIs("namespace")) namespace = span;
    else if (md.keyIs("ownerReferences")) owners = span;
  }
  const uidValue = value(uid);
  return {
    ...fields,
    name: value(name),
    uid: typeof uidValue === "string" ? uidValue : undefined,
    namespace: value(namespace),
    ownerReferences: value(owners),
  };
}
