/**
 * Edit requests, in EasyEdit's form: `prompt` holds "{}" where the subject goes, or contains the subject
 * verbatim (then its first occurrence becomes "{}"); `target_new` is the new object. ROME-style
 * requests (`requested_rewrite`: prompt, subject, target_new.str, target_true.str) are accepted too.
 */

export interface EditRequest {
  /** the prompt with "{}" where the subject goes, e.g. "{} is located in" */
  prompt: string;
  subject: string;
  /** the new target, e.g. "Rome" (a leading space is added when tokenised after the prompt, see targetText) */
  targetNew: string;
  targetTrue?: string;
  rephrase?: string[];
  locality?: { prompt: string; groundTruth: string }[];
  portability?: { prompt: string; groundTruth: string }[];
  /** an identifier carried into journals and results (case_id for CounterFact) */
  id?: string | number;
}

export class RequestError extends Error {}

/** Normalises a request: checks fields, puts "{}" for the subject. Errors name the request and field. */
export function normalizeRequest(r: EditRequest, where = "request"): EditRequest {
  for (const f of ["prompt", "subject", "targetNew"] as const) {
    const v = r[f];
    if (typeof v !== "string" || v.trim() === "")
      throw new RequestError(`${where}: field '${f}' must be a non-empty string, got ${JSON.stringify(v)}`);
  }
  let prompt = r.prompt;
  const holes = prompt.split("{}").length - 1;
  if (holes > 1)
    throw new RequestError(
      `${where}: prompt ${JSON.stringify(prompt)} has ${holes} "{}" placeholders; one is allowed`,
    );
  if (holes === 0) {
    const i = prompt.indexOf(r.subject);
    if (i < 0)
      throw new RequestError(
        `${where}: the subject ${JSON.stringify(r.subject)} does not occur in the prompt ${JSON.stringify(prompt)} ` +
          `(write "{}" where the subject goes, or include the subject verbatim)`,
      );
    prompt = prompt.slice(0, i) + "{}" + prompt.slice(i + r.subject.length);
  }
  return { ...r, prompt };
}

/** The prompt with the subject filled in. */
export function fillPrompt(r: EditRequest): string {
  return fill(r.prompt, r.subject);
}

/** Python's template.format(x) for a template with one "{}" (no "$" surprises of String.replace). */
export function fill(template: string, x: string): string {
  const i = template.indexOf("{}");
  return i < 0 ? template : template.slice(0, i) + x + template.slice(i + 2);
}

/**
 * The target as tokenised after a prompt: with a leading space unless it has one, as ROME's CounterFact
 * targets (" Rome") and EasyEdit's editor (which prepends " " to target_new) do.
 */
export function targetText(target: string): string {
  return target.startsWith(" ") ? target : " " + target;
}

/** Accepts EasyEdit-style (snake_case) or our camelCase objects, or ROME's requested_rewrite. */
export function requestFromJson(o: unknown, where = "request"): EditRequest {
  if (typeof o !== "object" || o === null) throw new RequestError(`${where}: expected an object`);
  const x = o as Record<string, unknown>;
  if (typeof x.requested_rewrite === "object" && x.requested_rewrite !== null) {
    const rr = x.requested_rewrite as Record<string, unknown>;
    const tn = rr.target_new as { str?: unknown } | undefined;
    const tt = rr.target_true as { str?: unknown } | undefined;
    return normalizeRequest(
      {
        prompt: rr.prompt as string,
        subject: rr.subject as string,
        targetNew: (tn?.str as string)?.trimStart(),
        targetTrue: typeof tt?.str === "string" ? tt.str.trimStart() : undefined,
        rephrase: Array.isArray(x.paraphrase_prompts) ? (x.paraphrase_prompts as string[]) : undefined,
        id: (x.case_id as number | undefined) ?? undefined,
      },
      where,
    );
  }
  const str = (k: string) => (typeof x[k] === "string" ? (x[k] as string) : undefined);
  const rephrase = x.rephrase ?? x.rephrase_prompt ?? x.rephrase_prompts;
  return normalizeRequest(
    {
      prompt: (str("prompt") ?? "") as string,
      subject: (str("subject") ?? "") as string,
      targetNew: (str("target_new") ?? str("targetNew") ?? "") as string,
      targetTrue: str("target_true") ?? str("targetTrue") ?? str("ground_truth"),
      rephrase:
        typeof rephrase === "string"
          ? [rephrase]
          : Array.isArray(rephrase)
            ? (rephrase as string[])
            : undefined,
      id: (x.id as string | number | undefined) ?? (x.case_id as number | undefined),
    },
    where,
  );
}
