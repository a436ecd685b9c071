// The tokenizer contract shared by tokenizer.json tokenizers and GGUF-embedded vocabularies.

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  /** Every id that ends generation (eos, eot, end-of-turn …). */
  readonly eosTokenIds: readonly number[];
  /** Whether encode() prepends BOS by default (tokenizer_config / GGUF add_bos_token). */
  readonly addBosToken: boolean;
  /** Jinja chat template, if the checkpoint ships one. */
  readonly chatTemplate: string | null;
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string;
  /** The token string for an id (for display and debugging). */
  idToToken(id: number): string | undefined;
}
