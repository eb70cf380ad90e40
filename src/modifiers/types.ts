/**
 * Resource modifiers: rules that change objects on their way from a snapshot into a cluster (or
 * an export). The file format is Velero's (`version: v1`), read strictly; `version:
 * crd-backup.io/v1` adds the extensions `replaceRegex` and `drop` (README, "Resource modifiers").
 */
import type { JsonValue } from "../json/json.ts";

export const VELERO_VERSION = "v1";
export const EXTENDED_VERSION = "crd-backup.io/v1";

export type JsonPatchOp = "add" | "remove" | "replace" | "move" | "copy" | "test";

export interface JsonPatchOperation {
  op: JsonPatchOp;
  /** Parsed JSON pointer: the reference tokens, unescaped. */
  path: string[];
  from?: string[];
  value?: JsonValue;
}

export interface LabelRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values: string[];
}

export interface Conditions {
  /** `plural.group` glob: `*` stays within a dot-separated part, `**` crosses them. */
  groupResource: RegExp;
  resourceNameRegex?: RegExp;
  /** Globs on the namespace as stored; empty means every namespace. */
  namespaces: RegExp[];
  labelSelector?: { matchLabels: Record<string, string>; matchExpressions: LabelRequirement[] };
  /** Every one must hold (a JSON Patch `test`); a missing path does not match. */
  matches: { path: string[]; value: JsonValue }[];
}

export interface ReplaceRegex {
  /** A JSON pointer: the string there, or every string below it. */
  path?: string[];
  /** Globs over JSON pointers of string values (`*` one segment, `**` any number). */
  paths?: RegExp[];
  pattern: RegExp;
  replacement: string;
}

export type RuleAction =
  | { kind: "patches"; ops: JsonPatchOperation[] }
  | { kind: "mergePatches"; patches: JsonValue[] }
  | { kind: "strategicPatches"; patches: JsonValue[] }
  | { kind: "replaceRegex"; replacements: ReplaceRegex[] }
  | { kind: "drop" };

export interface ModifierRule {
  /** Position across all files, from 0: what reports name. */
  index: number;
  /** `file:line` of the rule, for messages. */
  source: string;
  conditions: Conditions;
  action: RuleAction;
  /**
   * What a JSON Patch `test` that does not hold means: false (Velero's v1) skips the rule and the
   * object goes on unchanged by it; true (crd-backup.io/v1) fails the object.
   */
  strictTest: boolean;
}

export interface ModifierSet {
  files: string[];
  rules: ModifierRule[];
}
