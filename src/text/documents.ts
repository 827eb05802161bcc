/**
 * Panel → text documents (one resume-like document per person), the ablations of the template, and the
 * bookkeeping that turns a language model into an estimator: where each person-year's prediction target
 * sits in the text and in the token sequence, loss masks, and the token sequence of every candidate.
 *
 * The target of a person-year is the text after "{year} ({education}):" — the space, the title and the line
 * terminator. The space belongs to the target because SentencePiece/BPE vocabularies attach a word's
 * leading space to its first token ("▁Cash"); the terminator belongs to it so that "Managers" cannot also
 * count every longer title that starts with "Managers" (the candidates must form a probability distribution).
 */
import { EDUCATION_LEVELS, type PersonRecord } from "../data/panel.js";
import { occupationTaxonomy, type OccupationTaxonomy } from "../data/taxonomy.js";

/** Names of the built-in templates (the default of MISSION.md and its three ablations). */
export const TEMPLATE_NAMES = ["default", "code", "no-birth-year", "no-education"] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

/** Everything that varies between templates. */
export interface DocumentTemplate {
  /** Write each outcome as its English title, or as its numeric code (occ1990dd; 991–993 for non-work). */
  outcomeText: "title" | "code";
  /** Include the line "The worker was born in {year}." */
  includeBirthYear: boolean;
  /** Write "{year} ({education}): …" (true) or "{year}: …" (false). */
  includeEducation: boolean;
  /** Ends every line, including each target. */
  lineTerminator: string;
  /** Last line of every document (no terminator after it). */
  endOfData: string;
}

const DEFAULT_TEMPLATE: DocumentTemplate = {
  outcomeText: "title",
  includeBirthYear: true,
  includeEducation: true,
  lineTerminator: "\n",
  endOfData: "<END OF DATA>",
};

/** A built-in template, with optional overrides of any part. */
export function documentTemplate(name: TemplateName = "default", overrides: Partial<DocumentTemplate> = {}): DocumentTemplate {
  const ablation: Record<TemplateName, Partial<DocumentTemplate>> = {
    default: {},
    code: { outcomeText: "code" },
    "no-birth-year": { includeBirthYear: false },
    "no-education": { includeEducation: false },
  };
  if (!(name in ablation)) throw new Error(`unknown template "${name}" (expected one of ${TEMPLATE_NAMES.join(", ")})`);
  const template = { ...DEFAULT_TEMPLATE, ...ablation[name], ...overrides };
  if (template.lineTerminator.length === 0) throw new Error("template lineTerminator must not be empty (it ends every target)");
  return template;
}

/** One person-year's prediction target inside a document's text. */
export interface DocumentTarget {
  year: number;
  /** Outcome code (occ1990dd or 991–993). */
  outcome: number;
  /** Character span [charStart, charEnd) of " {title}{terminator}" in the text (UTF-16 code units). */
  charStart: number;
  charEnd: number;
}

export interface RenderedDocument {
  personId: string;
  dataset: string;
  text: string;
  /** One target per wave, in wave order. */
  targets: DocumentTarget[];
}

/** The text written for an outcome under a template (without the leading space and terminator). */
export function outcomeText(code: number, template: DocumentTemplate, taxonomy: OccupationTaxonomy = occupationTaxonomy()): string {
  return template.outcomeText === "code" ? String(taxonomy.byCode(code).code) : taxonomy.byCode(code).title;
}

/** The target text of an outcome: what follows "{year} ({education}):" on its line. */
export function targetText(code: number, template: DocumentTemplate, taxonomy: OccupationTaxonomy = occupationTaxonomy()): string {
  return ` ${outcomeText(code, template, taxonomy)}${template.lineTerminator}`;
}

/** Render a person's document and record each target's character span. */
export function renderDocument(person: PersonRecord, template: DocumentTemplate, taxonomy: OccupationTaxonomy = occupationTaxonomy()): RenderedDocument {
  const end = template.lineTerminator;
  const what = template.outcomeText === "code" ? "the occupation code" : "the job title";
  const fields = template.includeEducation ? `year, education level, and ${what}` : `year and ${what}`;
  let text =
    `<A worker from the ${person.dataset} dataset>${end}` +
    `The following information is available about the work history of a ${person.sex} ${person.race} US worker residing in the ${person.region} region.${end}` +
    (template.includeBirthYear ? `The worker was born in ${person.birthYear}.${end}` : "") +
    `The worker has the following records of work experience, one entry per line, including ${fields}:${end}`;
  const targets: DocumentTarget[] = [];
  for (const wave of person.waves) {
    text += template.includeEducation ? `${wave.year} (${EDUCATION_LEVELS[wave.education].label}):` : `${wave.year}:`;
    const charStart = text.length;
    text += targetText(wave.occupation, template, taxonomy);
    targets.push({ year: wave.year, outcome: wave.occupation, charStart, charEnd: text.length });
  }
  text += template.endOfData;
  return { personId: person.personId, dataset: person.dataset, text, targets };
}

/**
 * A document that lists every outcome's title once, one per line, in the given order: the kind of text a real
 * foundation model has read (the Census occupation index is public) and a model pretrained here only on
 * resumes has not — without it, titles that no resume holds keep their tokens' random embeddings and get
 * log-probabilities near −100 after training. Each line's " {title}{terminator}" is a target, spelled
 * exactly as in the survey documents, so the same loss masks apply.
 *
 * With `repeatGroupsOf` = k > 0 the list is written in groups of k titles, each group twice in a row: the
 * second pass can only be predicted by copying from the lines just above it. A real foundation model has read
 * plenty of text that repeats itself and copies any title it has been shown (induction heads); a small model
 * pretrained here on careers alone learns which title usually follows a token instead, and cannot repeat the
 * titles its corpus rarely repeats (experiments/recipe/README.md, runs L–N).
 */
export function occupationListDocument(
  order: readonly number[],
  template: DocumentTemplate,
  taxonomy: OccupationTaxonomy = occupationTaxonomy(),
  name = "occupation-list",
  repeatGroupsOf = 0,
): RenderedDocument {
  if (!Number.isInteger(repeatGroupsOf) || repeatGroupsOf < 0) throw new Error(`occupation list: repeatGroupsOf must be a non-negative integer, got ${repeatGroupsOf}`);
  const end = template.lineTerminator;
  let text = repeatGroupsOf > 0
    ? `Occupations of the US Census classification, one per line, in groups of ${repeatGroupsOf} each written twice:${end}`
    : `Occupations of the US Census classification, one per line:${end}`;
  const targets: DocumentTarget[] = [];
  const writeLine = (code: number) => {
    text += "Occupation:";
    const charStart = text.length;
    text += targetText(code, template, taxonomy);
    targets.push({ year: 0, outcome: code, charStart, charEnd: text.length });
  };
  const group = repeatGroupsOf > 0 ? repeatGroupsOf : order.length;
  for (let start = 0; start < order.length; start += group) {
    const codes = order.slice(start, start + group);
    codes.forEach(writeLine);
    if (repeatGroupsOf > 0) codes.forEach(writeLine);
  }
  text += template.endOfData;
  return { personId: name, dataset: "", text, targets };
}

/** The two tokenizer operations documents need (implemented by text/tokenizer.ts's Tokenizer). */
export interface TextTokenizer {
  encode(text: string, options?: { addBos?: boolean }): number[];
  decode(ids: readonly number[]): string;
}

/** A target with its token span: tokens [tokenStart, tokenEnd) of the document are exactly the target. */
export interface TokenizedTarget extends DocumentTarget {
  tokenStart: number;
  tokenEnd: number;
}

export interface TokenizedDocument extends RenderedDocument {
  ids: number[];
  targets: TokenizedTarget[];
}

/**
 * Maps token ids to the characters they stand for, so token boundaries can be placed in the original text.
 * A token's text is measured in context — decode([anchor, id]) minus decode([anchor]) — because decoders
 * strip or add a leading space at the start of a sequence (SentencePiece "▁"). Cached per id. When the
 * pieces do not spell the text (e.g. byte tokens of a multi-byte character), falls back to decoding every
 * prefix, which is exact for any tokenizer whose decode inverts encode.
 */
export class TokenOffsets {
  private readonly pieceCache = new Map<number, string>();
  private readonly anchor: number[];
  private readonly anchorText: string;

  constructor(private readonly tokenizer: TextTokenizer) {
    this.anchor = tokenizer.encode("a", { addBos: false }).slice(0, 1);
    this.anchorText = tokenizer.decode(this.anchor);
  }

  private piece(id: number): string {
    let piece = this.pieceCache.get(id);
    if (piece === undefined) {
      const decoded = this.tokenizer.decode([...this.anchor, id]);
      piece = decoded.startsWith(this.anchorText) ? decoded.slice(this.anchorText.length) : "\u0000";
      this.pieceCache.set(id, piece);
    }
    return piece;
  }

  /** End offset in `text` of each token (start of token i = end of token i−1, or 0). */
  tokenEnds(ids: readonly number[], text: string): Int32Array {
    const ends = new Int32Array(ids.length);
    let spelled = "";
    for (let i = 0; i < ids.length; i++) {
      spelled += this.piece(ids[i]);
      ends[i] = spelled.length;
    }
    // A tokenizer may prepend text (SentencePiece's "▁" before the first word): allow leading whitespace.
    const shift = spelled.length - text.length;
    if (shift >= 0 && spelled.endsWith(text) && spelled.slice(0, shift).trim() === "") {
      for (let i = 0; i < ends.length; i++) ends[i] = Math.max(0, ends[i] - shift);
      return ends;
    }
    return this.tokenEndsByPrefixDecoding(ids, text);
  }

  private tokenEndsByPrefixDecoding(ids: readonly number[], text: string): Int32Array {
    if (this.tokenizer.decode(ids) !== text) {
      throw new Error("tokenizer does not round-trip the document text (decode(encode(text)) differs), so token spans cannot be placed");
    }
    const ends = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) ends[i] = this.tokenizer.decode(ids.slice(0, i + 1)).length;
    return ends;
  }
}

/**
 * Tokenize a rendered document and find each target's token span, computed from the tokenization of the
 * whole document (a prefix's tokenization need not be a prefix of the document's). Throws when a target
 * does not start and end on token boundaries: then no token sequence is "the target" and the template
 * does not suit the tokenizer.
 */
export function tokenizeDocument(
  document: RenderedDocument,
  tokenizer: TextTokenizer,
  options: { addBos?: boolean; offsets?: TokenOffsets } = {},
): TokenizedDocument {
  const ids = tokenizer.encode(document.text, { addBos: options.addBos ?? true });
  const ends = (options.offsets ?? new TokenOffsets(tokenizer)).tokenEnds(ids, document.text);
  const targets: TokenizedTarget[] = [];
  let token = 0;
  for (const target of document.targets) {
    // First token starting at or after charStart; tokens that decode to nothing (BOS) are skipped.
    while (token < ids.length && (token > 0 ? ends[token - 1] : 0) < target.charStart) token++;
    const tokenStart = token;
    const startsOnBoundary = tokenStart < ids.length && (tokenStart > 0 ? ends[tokenStart - 1] : 0) === target.charStart;
    while (token < ids.length && ends[token] < target.charEnd) token++;
    const tokenEnd = token + 1;
    if (!startsOnBoundary || token >= ids.length || ends[token] !== target.charEnd) {
      throw new Error(
        `document of person "${document.personId}": the target of ${target.year} (characters ${target.charStart}–${target.charEnd}, ` +
          `${JSON.stringify(document.text.slice(target.charStart, target.charEnd))}) does not fall on token boundaries`,
      );
    }
    targets.push({ ...target, tokenStart, tokenEnd });
    token = tokenEnd;
  }
  return { ...document, ids, targets };
}

export const LOSS_MASK_MODES = ["all", "targets"] as const;
export type LossMaskMode = (typeof LOSS_MASK_MODES)[number];

/**
 * Token-level loss mask: mask[i] = 1 when the training loss includes −log P(ids[i] | ids[<i]).
 * "all": every token but the first (nothing predicts it); "targets": only tokens inside target spans.
 */
export function lossMask(document: TokenizedDocument, mode: LossMaskMode): Uint8Array {
  const mask = new Uint8Array(document.ids.length);
  if (mode === "all") {
    mask.fill(1, 1);
    return mask;
  }
  for (const target of document.targets) mask.fill(1, Math.max(1, target.tokenStart), target.tokenEnd);
  return mask;
}

/** The token sequence of one outcome's target (space, title or code, terminator). */
export interface CandidateTokens {
  code: number;
  text: string;
  ids: number[];
}

/**
 * Token sequence of every outcome's target, in taxonomy order — what a scorer appends after
 * "{year} ({education}):" to get P(outcome). Taken from a tokenized probe document with the outcome on a
 * middle line, i.e. exactly as the outcome appears inside documents; for BPE tokenizers a target on token
 * boundaries tokenizes the same wherever it sits (merges only join, so none crossed its edges), and
 * {@link tokenizeDocument} checks those boundaries for every document.
 */
export function candidateTokenizations(
  template: DocumentTemplate,
  tokenizer: TextTokenizer,
  taxonomy: OccupationTaxonomy = occupationTaxonomy(),
): CandidateTokens[] {
  const offsets = new TokenOffsets(tokenizer);
  const neighbour = taxonomy.outcomes[0].code;
  return taxonomy.outcomes.map((outcome) => {
    const probe: PersonRecord = {
      personId: `candidate ${outcome.code}`,
      dataset: "PROBE",
      birthYear: 1960,
      sex: "female",
      race: "white",
      region: "south",
      waves: [
        { year: 1990, occupation: neighbour, education: 1 },
        { year: 1991, occupation: outcome.code, education: 1 },
        { year: 1992, occupation: neighbour, education: 1 },
      ],
    };
    const tokenized = tokenizeDocument(renderDocument(probe, template, taxonomy), tokenizer, { offsets });
    const target = tokenized.targets[1];
    return { code: outcome.code, text: targetText(outcome.code, template, taxonomy), ids: tokenized.ids.slice(target.tokenStart, target.tokenEnd) };
  });
}
