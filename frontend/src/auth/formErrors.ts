import { ApiError, errorMessage } from "../api/errors";

export interface FormErrors {
  /** Message not tied to a field (wrong credentials, rate limit, network). */
  form?: string;
  fields: Record<string, string>;
}

/** Codes that belong to a specific field even though the body names none. */
const CODE_FIELDS: Record<string, string> = {
  email_taken: "email",
};

/**
 * Split an API error into per-field messages (from `errors[].loc`) and a
 * form-level message, keeping only fields the form actually shows.
 */
export function formErrorsFrom(err: unknown, knownFields: readonly string[]): FormErrors {
  if (!(err instanceof ApiError)) return { form: errorMessage(err), fields: {} };
  const fields: Record<string, string> = {};
  const leftovers: string[] = [];
  for (const [name, msg] of Object.entries(err.fieldErrors)) {
    if (knownFields.includes(name)) fields[name] = msg;
    else leftovers.push(`${name}: ${msg}`);
  }
  const codeField = CODE_FIELDS[err.code];
  if (codeField && knownFields.includes(codeField) && !fields[codeField]) {
    fields[codeField] = err.detail;
  }
  const anyField = Object.keys(fields).length > 0;
  let form: string | undefined;
  if (leftovers.length) form = leftovers.join("; ");
  else if (!anyField) form = err.detail;
  return form === undefined ? { fields } : { form, fields };
}

/** Only same-site paths are accepted as a post-sign-in destination. */
export function safeNext(next: string | null): string {
  if (next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\")) return next;
  return "/health";
}
