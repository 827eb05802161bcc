/**
 * Next-occupation scoring with a Llama: for every person-year, the log-probability the model gives to each
 * outcome's target text (" {title}\n") right after "{year} ({education}):" in the person's document.
 *
 * Prefix-shared path ({@link LlmScorer.scorePeople}): each document runs through the model once, filling a
 * KV cache. The target of year t starts at token s; its prefix is tokens [0, s), and the document after s
 * continues with the TRUE outcome, so only cache rows [0, s − 1) are reused — a key range, free to cut.
 * At each target the candidate trie's inner nodes (root = token s − 1, then every candidate token that has
 * a continuation) run as one block of query rows with tree attention: each row attends the prefix range plus
 * its trie ancestors and itself. Leaves (each candidate's line terminator) need no row: their log-probability
 * comes from the parent's output, and nothing attends them — 344 of the 2,567 Llama-2 trie nodes. Blocks of
 * several targets (from several documents) go through the layers together.
 *
 * Naive path ({@link LlmScorer.scorePeopleNaive}): one full causal forward of prefix + candidate per
 * (person-year, candidate), no cache reuse — the reference the prefix-shared path is checked against.
 *
 * Both return raw log-probabilities (the mass the model puts on exactly that text); normalising over the
 * valid set is {@link normaliseLogprobs}.
 */
import type { PersonRecord } from "../data/panel.js";
import { occupationTaxonomy, type OccupationTaxonomy } from "../data/taxonomy.js";
import type { KvCache, Llama } from "../model/llama.js";
import { forwardRows } from "../model/llama-rows.js";
import {
  candidateTokenizations,
  documentTemplate,
  renderDocument,
  TokenOffsets,
  tokenizeDocument,
  type DocumentTemplate,
  type TextTokenizer,
  type TokenizedDocument,
} from "../text/documents.js";
import { CandidateTrie } from "./trie.js";

export { normaliseLogprobs } from "./normalise.js";

export interface LlmScorerOptions {
  template?: DocumentTemplate;
  taxonomy?: OccupationTaxonomy;
  /** Query rows per pass through the layers (default 8192; at least one whole trie per pass). */
  maxRows?: number;
  /** Documents whose KV caches are held at once by the prefix-shared path (default 8). */
  documentsPerGroup?: number;
}

/** Called after each batch with the number of person-years finished so far. */
export type ScoringProgress = (personYearsDone: number) => void;

/** Per call: `signal` stops the scoring between passes through the model (rejecting with its reason). */
export interface ScoringCallOptions {
  signal?: AbortSignal;
}

export class LlmScorer {
  readonly template: DocumentTemplate;
  readonly taxonomy: OccupationTaxonomy;
  readonly trie: CandidateTrie;
  private readonly offsets: TokenOffsets;
  private readonly maxRows: number;
  private readonly documentsPerGroup: number;
  private readonly longestCandidate: number;
  /** The trie nodes that get a query row (those with children), in node order, and each node's row (−1: leaf). */
  private readonly innerNodes: Int32Array;
  private readonly rowOfNode: Int32Array;
  /** Per inner node: the rows of its trie ancestors (root first) and itself — the extra keys it attends in a block. */
  private readonly pathRows: Int32Array[];

  constructor(
    readonly model: Llama,
    readonly tokenizer: TextTokenizer,
    options: LlmScorerOptions = {},
  ) {
    this.template = options.template ?? documentTemplate("default");
    this.taxonomy = options.taxonomy ?? occupationTaxonomy();
    this.trie = new CandidateTrie(candidateTokenizations(this.template, tokenizer, this.taxonomy));
    this.offsets = new TokenOffsets(tokenizer);
    const inner: number[] = [];
    this.rowOfNode = new Int32Array(this.trie.nodeCount).fill(-1);
    this.trie.hasChildren.forEach((has, node) => {
      if (has) this.rowOfNode[node] = inner.push(node) - 1;
    });
    this.innerNodes = Int32Array.from(inner);
    // Ancestors of an inner node are inner nodes, so every path maps to rows.
    this.pathRows = inner.map((node) => {
      const path: number[] = [];
      for (let a = node; a >= 0; a = this.trie.parents[a]) path.push(this.rowOfNode[a]);
      return Int32Array.from(path.reverse());
    });
    this.maxRows = Math.max(options.maxRows ?? 8192, this.innerNodes.length);
    this.documentsPerGroup = Math.max(1, options.documentsPerGroup ?? 8);
    this.longestCandidate = Math.max(...this.trie.candidates.map((c) => c.ids.length));
  }

  /** The person's document, tokenized, with every target checked against its candidate's tokens. */
  tokenize(person: PersonRecord): TokenizedDocument {
    const document = tokenizeDocument(renderDocument(person, this.template, this.taxonomy), this.tokenizer, { offsets: this.offsets });
    const context = this.model.config.maxPositionEmbeddings;
    for (const target of document.targets) {
      const candidate = this.trie.candidates[this.taxonomy.indexOf(target.outcome)!];
      const ids = document.ids.slice(target.tokenStart, target.tokenEnd);
      if (ids.length !== candidate.ids.length || ids.some((id, i) => id !== candidate.ids[i])) {
        throw new Error(
          `person "${person.personId}", ${target.year}: the target tokens ${JSON.stringify(ids)} differ from outcome ${target.outcome}'s ` +
            `candidate tokens ${JSON.stringify(candidate.ids)} (the tokenizer merges across the target's edges)`,
        );
      }
      if (target.tokenStart + this.longestCandidate > context) {
        throw new Error(
          `person "${person.personId}", ${target.year}: prefix of ${target.tokenStart} tokens plus the longest candidate ` +
            `(${this.longestCandidate}) exceeds the model's context of ${context}`,
        );
      }
    }
    return document;
  }

  /** Raw log-probabilities [person][wave][candidate] by the prefix-shared path. */
  async scorePeople(people: readonly PersonRecord[], onProgress?: ScoringProgress, options: ScoringCallOptions = {}): Promise<Float64Array[][]> {
    const results: Float64Array[][] = [];
    await this.scorePeopleInGroups(people, (_first, scores) => void results.push(...scores), onProgress, options);
    return results;
  }

  /**
   * The prefix-shared path, handing over each group's results as it finishes: `onGroup(first, scores)` with
   * the index (in `people`) of the group's first person and [person][wave][candidate] for its
   * `documentsPerGroup` people (fewer in the last group). Groups start at multiples of documentsPerGroup, so
   * a call on people[k·documentsPerGroup…] runs exactly the batches that a call on all of them runs there
   * (what resumed and sharded scoring rely on).
   */
  async scorePeopleInGroups(
    people: readonly PersonRecord[], onGroup: (first: number, scores: Float64Array[][]) => void | Promise<void>, onProgress?: ScoringProgress,
    options: ScoringCallOptions = {},
  ): Promise<void> {
    const { signal } = options;
    let done = 0;
    // One KV cache for the whole call, grown when a group needs more rows: a fresh cache per group would
    // pay the page faults of first touching hundreds of MB again for every group.
    let cache: KvCache | undefined;
    const cacheWithRows = (rows: number): KvCache => {
      if (!cache || cache.keys[0].shape[0] < rows) {
        cache?.free();
        cache = undefined;
        cache = this.model.newCache([rows]);
      }
      return cache;
    };
    try {
      for (let start = 0; start < people.length; start += this.documentsPerGroup) {
        signal?.throwIfAborted();
        const documents = people.slice(start, start + this.documentsPerGroup).map((p) => this.tokenize(p));
        const scores = await this.scoreGroup(documents, cacheWithRows, (finished) => onProgress?.(done + finished), signal);
        await onGroup(start, scores);
        for (const s of scores) done += s.length;
        onProgress?.(done);
      }
    } finally {
      cache?.free();
    }
  }

  /** People per group of documents (their KV caches held at once; the unit that resumed and sharded runs keep whole). */
  get peoplePerGroup(): number {
    return this.documentsPerGroup;
  }

  /** Query rows per pass through the layers. */
  get rowsPerPass(): number {
    return this.maxRows;
  }

  private async scoreGroup(
    documents: TokenizedDocument[], cacheWithRows: (rows: number) => KvCache, onProgress: (finished: number) => void,
    signal?: AbortSignal,
  ): Promise<Float64Array[][]> {
    const { trie, innerNodes, rowOfNode, pathRows } = this;
    const nodes = trie.nodeCount;
    const blockRows = innerNodes.length;
    // Cache layout: document g's prefix rows at [base[g], base[g] + prefixLength[g]), then the scratch
    // blocks of the trie passes (one block of `blockRows` rows per target in a pass).
    const prefixLengths = documents.map((doc) => (doc.targets.length === 0 ? 0 : doc.targets[doc.targets.length - 1].tokenStart - 1));
    const bases: number[] = [];
    let prefixTotal = 0;
    for (const length of prefixLengths) {
      bases.push(prefixTotal);
      prefixTotal += length;
    }
    const targetsPerPass = Math.max(1, Math.floor(this.maxRows / blockRows));
    const scratchBase = prefixTotal;
    const cache = cacheWithRows(Math.max(1, prefixTotal + targetsPerPass * blockRows));
    await this.runPrefixes(cache, documents, prefixLengths, bases, signal);
    const jobs: { doc: number; target: number }[] = [];
    documents.forEach((doc, g) => doc.targets.forEach((_, t) => jobs.push({ doc: g, target: t })));
    const results = documents.map((doc) => doc.targets.map(() => new Float64Array(trie.candidates.length)));

    for (let first = 0; first < jobs.length; first += targetsPerPass) {
      signal?.throwIfAborted();
      const pass = jobs.slice(first, first + targetsPerPass);
      const rows = pass.length * blockRows;
      const ids = new Int32Array(rows);
      const positions = new Int32Array(rows);
      const cacheRows = new Int32Array(rows);
      const keyStart = new Int32Array(rows);
      const keyEnd = new Int32Array(rows);
      const extraOffsets = new Int32Array(rows + 1);
      const extraKeys: number[] = [];
      const gatherRows = new Int32Array(pass.length * (nodes - 1));
      const gatherTokens = new Int32Array(pass.length * (nodes - 1));
      pass.forEach(({ doc, target }, j) => {
        const document = documents[doc];
        const s = document.targets[target].tokenStart;
        const block = j * blockRows;
        innerNodes.forEach((n, i) => {
          const row = block + i;
          ids[row] = n === 0 ? document.ids[s - 1] : trie.tokens[n];
          positions[row] = s - 1 + trie.depths[n];
          cacheRows[row] = scratchBase + row;
          keyStart[row] = bases[doc];
          keyEnd[row] = bases[doc] + s - 1;
          for (const pathRow of pathRows[i]) extraKeys.push(scratchBase + block + pathRow);
          extraOffsets[row + 1] = extraKeys.length;
        });
        // Every non-root node's log-probability is read from its parent's row.
        for (let n = 1; n < nodes; n++) {
          const g = j * (nodes - 1) + n - 1;
          gatherRows[g] = block + rowOfNode[trie.parents[n]];
          gatherTokens[g] = trie.tokens[n];
        }
      });
      const logprobs = await forwardRows(this.model, cache, {
        ids,
        positions,
        cacheRows,
        keyStart,
        keyEnd,
        tree: { extraOffsets, extraKeys: Int32Array.from(extraKeys) },
        gatherRows,
        gatherTokens,
      });
      const nodeLogprobs = new Float64Array(nodes);
      pass.forEach(({ doc, target }, j) => {
        for (let n = 1; n < nodes; n++) nodeLogprobs[n] = logprobs[j * (nodes - 1) + n - 1];
        trie.candidateLogprobs(nodeLogprobs, results[doc][target]);
      });
      onProgress(first + pass.length);
    }
    return results;
  }

  /** The documents' prefix tokens through the model (causal, packed), filling their cache rows. */
  private async runPrefixes(cache: KvCache, documents: TokenizedDocument[], lengths: number[], bases: number[], signal?: AbortSignal): Promise<void> {
    // In pieces of at most maxRows rows (a piece never splits a document's causal order: later pieces see
    // the earlier pieces' cache rows).
    let pending: { doc: number; from: number; to: number }[] = [];
    let pendingRows = 0;
    const flush = async () => {
      if (pendingRows === 0) return;
      signal?.throwIfAborted();
      const ids = new Int32Array(pendingRows);
      const positions = new Int32Array(pendingRows);
      const cacheRows = new Int32Array(pendingRows);
      const keyStart = new Int32Array(pendingRows);
      const keyEnd = new Int32Array(pendingRows);
      let row = 0;
      for (const { doc, from, to } of pending) {
        for (let t = from; t < to; t++, row++) {
          ids[row] = documents[doc].ids[t];
          positions[row] = t;
          cacheRows[row] = bases[doc] + t;
          keyStart[row] = bases[doc];
          keyEnd[row] = bases[doc] + t + 1;
        }
      }
      await forwardRows(this.model, cache, { ids, positions, cacheRows, keyStart, keyEnd });
      pending = [];
      pendingRows = 0;
    };
    for (let g = 0; g < documents.length; g++) {
      for (let from = 0; from < lengths[g]; ) {
        const to = Math.min(lengths[g], from + this.maxRows - pendingRows);
        pending.push({ doc: g, from, to });
        pendingRows += to - from;
        from = to;
        if (pendingRows >= this.maxRows) await flush();
      }
    }
    await flush();
  }

  /** Raw log-probabilities [person][wave][candidate] by one full forward per (person-year, candidate). */
  async scorePeopleNaive(people: readonly PersonRecord[], onProgress?: ScoringProgress, options: ScoringCallOptions = {}): Promise<Float64Array[][]> {
    const candidates = this.trie.candidates;
    const results: Float64Array[][] = [];
    let done = 0;
    for (const person of people) {
      const document = this.tokenize(person);
      const personResults: Float64Array[] = [];
      for (const target of document.targets) {
        const prefix = document.ids.slice(0, target.tokenStart);
        const scores = new Float64Array(candidates.length);
        let batch: number[] = [];
        let batchRows = 0;
        const flush = async () => {
          if (batch.length === 0) return;
          options.signal?.throwIfAborted();
          const ids = new Int32Array(batchRows);
          const positions = new Int32Array(batchRows);
          const cacheRows = new Int32Array(batchRows);
          const keyStart = new Int32Array(batchRows);
          const keyEnd = new Int32Array(batchRows);
          const gatherRows: number[] = [];
          const gatherTokens: number[] = [];
          const gatherOwner: number[] = [];
          let row = 0;
          for (const c of batch) {
            const sequence = [...prefix, ...candidates[c].ids];
            const base = row;
            sequence.forEach((id, t) => {
              ids[row] = id;
              positions[row] = t;
              cacheRows[row] = row;
              keyStart[row] = base;
              keyEnd[row] = row + 1;
              // Row t predicts token t + 1: gather the candidate's tokens.
              if (t + 1 >= prefix.length && t + 1 < sequence.length) {
                gatherRows.push(row);
                gatherTokens.push(sequence[t + 1]);
                gatherOwner.push(c);
              }
              row++;
            });
          }
          const cache = this.model.newCache([batchRows]);
          try {
            const logprobs = await forwardRows(this.model, cache, {
              ids,
              positions,
              cacheRows,
              keyStart,
              keyEnd,
              gatherRows: Int32Array.from(gatherRows),
              gatherTokens: Int32Array.from(gatherTokens),
            });
            gatherOwner.forEach((c, i) => (scores[c] += logprobs[i]));
          } finally {
            cache.free();
          }
          batch = [];
          batchRows = 0;
        };
        for (let c = 0; c < candidates.length; c++) {
          const rows = prefix.length + candidates[c].ids.length;
          if (batchRows + rows > this.maxRows) await flush();
          batch.push(c);
          batchRows += rows;
        }
        await flush();
        personResults.push(scores);
        onProgress?.(++done);
      }
      results.push(personResults);
    }
    return results;
  }
}
