/** Errors raised by the tokenizer layer. */

/** A checkpoint directory has no usable tokenizer files, or a file could not be read. */
export class TokenizerLoadError extends Error {
  override name = "TokenizerLoadError";
}

/**
 * A tokenizer file is malformed or uses a feature this implementation does not support.
 * The message names the file and the JSON field (e.g. `model.merges[12]`).
 */
export class TokenizerFormatError extends Error {
  override name = "TokenizerFormatError";
  /**
   * @param file the file (or other source) the value came from
   * @param field the JSON path of the offending field, e.g. `pre_tokenizer.pretokenizers[0].pattern`
   * @param problem what is wrong with it
   */
  constructor(
    readonly file: string,
    readonly field: string,
    problem: string,
  ) {
    super(`${file}: field ${field}: ${problem}`);
  }
}
