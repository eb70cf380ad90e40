/**
 * Every failure crd-backup reports carries a stable code and the context it happened in
 * (which resource, which object, which call). The CLI maps codes to exit codes and prints
 * `message` as one line; nothing here ever holds credentials or object contents.
 */
export type ErrorCode =
  | "USAGE" // a wrong flag or argument
  | "CONFIG" // kubeconfig or storage settings that cannot be used
  | "KUBE_API" // the Kubernetes API answered with an error
  | "KUBE_UNREACHABLE" // no answer from the Kubernetes API
  | "STORAGE" // the storage backend failed
  | "NOT_FOUND" // a snapshot or storage object that does not exist
  | "ALREADY_EXISTS" // a create-only write found the key taken
  | "CONFLICT" // the target cluster holds something a restore may not touch
  | "ARCHIVE_INVALID" // corrupt, truncated, tampered or unknown-version archive
  | "DECRYPT" // an encrypted snapshot, and no identity given that decrypts it
  | "LOCKED" // storage refused a delete: the object is under S3 Object Lock retention
  | "ABORTED"; // cancelled by a signal

export class CrdBackupError extends Error {
  readonly code: ErrorCode;
  readonly context: Readonly<Record<string, string | number | undefined>>;

  constructor(
    code: ErrorCode,
    message: string,
    context: Record<string, string | number | undefined> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CrdBackupError";
    this.code = code;
    this.context = context;
  }
}

/** The Kubernetes API answered with a non-2xx status. */
export class KubeApiError extends CrdBackupError {
  readonly status: number;
  readonly reason: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  /** metadata.continue of a 410 Status: the server's inconsistent continuation of an expired list. */
  readonly continueToken: string | undefined;

  constructor(
    status: number,
    message: string,
    context: {
      method: string;
      path: string;
      reason?: string;
      retryAfterSeconds?: number;
      continueToken?: string;
    },
  ) {
    super("KUBE_API", message, { method: context.method, path: context.path, reason: context.reason });
    this.name = "KubeApiError";
    this.status = status;
    this.reason = context.reason;
    this.retryAfterSeconds = context.retryAfterSeconds;
    this.continueToken = context.continueToken;
  }
}

/** What a SourceRefusedError refused: a stored snapshot, or a journal segment a point in time needs. */
export type RefusedSource = { snapshot: string } | { segment: string };

/**
 * The source a command reads was refused before any of it was used: a stored snapshot that failed
 * verification (damaged, truncated, tampered), a journal segment that did, or a chain broken before
 * the point in time asked for. The message names what and why; what the command therefore did not
 * do ("nothing was restored") is for the command to say: only it knows what it was about to do.
 */
export class SourceRefusedError extends CrdBackupError {
  readonly refused: RefusedSource;

  constructor(
    refused: RefusedSource,
    message: string,
    context: Record<string, string | number | undefined>,
    options?: { cause?: unknown },
  ) {
    super("ARCHIVE_INVALID", message, context, options);
    this.name = "SourceRefusedError";
    this.refused = refused;
  }

  /** This refusal, its message followed by what the command did not do: `...; nothing was restored`. */
  saying(consequence: string): SourceRefusedError {
    const message = `${this.message}; ${consequence}`;
    return new SourceRefusedError(this.refused, message, { ...this.context }, { cause: this });
  }
}

/** `e` with the command's consequence said after it when it refused the command's source; else `e`. */
export function refusalSaying(e: unknown, consequence: string): unknown {
  return e instanceof SourceRefusedError ? e.saying(consequence) : e;
}

export function isCrdBackupError(e: unknown): e is CrdBackupError {
  return e instanceof CrdBackupError;
}
