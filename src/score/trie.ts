/**
 * The candidate token trie: every outcome's target tokens (space, title, line terminator — exactly as inside
 * documents) merged on common prefixes, so a scorer evaluates each shared token once per target position.
 *
 * Node 0 is the root: it stands for the last token of the document prefix (the ":" before the target), whose
 * output predicts every candidate's first token. Node n > 0 holds one token; its parent comes earlier in
 * the numbering (parents[n] < n), so a single forward sweep accumulates log-probabilities along paths:
 *   log P(candidate c) = Σ over the nodes n on c's path of log P(tokens[n] | prefix, tokens of n's ancestors).
 */
import type { CandidateTokens } from "../text/documents.js";

export class CandidateTrie {
  /** Token id of each node (−1 at the root). */
  readonly tokens: Int32Array;
  /** Parent of each node (−1 at the root); parents[n] < n. */
  readonly parents: Int32Array;
  /** Depth of each node: 0 at the root, 1 for a candidate's first token. */
  readonly depths: Int32Array;
  /** Node of each candidate's last token (index = candidate index). */
  readonly leafOf: Int32Array;
  /** True for nodes with at least one child (their output is needed to score the children). */
  readonly hasChildren: Uint8Array;
  /** The candidates, in the order given (taxonomy order). */
  readonly candidates: readonly CandidateTokens[];

  constructor(candidates: readonly CandidateTokens[]) {
    if (candidates.length === 0) throw new Error("candidate trie: no candidates");
    const tokens: number[] = [-1];
    const parents: number[] = [-1];
    const depths: number[] = [0];
    const children: Map<number, number>[] = [new Map()];
    const leafOf = new Int32Array(candidates.length);
    candidates.forEach((candidate, index) => {
      if (candidate.ids.length === 0) throw new Error(`candidate trie: outcome ${candidate.code} has no tokens`);
      let node = 0;
      for (const id of candidate.ids) {
        let child = children[node].get(id);
        if (child === undefined) {
          child = tokens.length;
          tokens.push(id);
          parents.push(node);
          depths.push(depths[node] + 1);
          children.push(new Map());
          children[node].set(id, child);
        }
        node = child;
      }
      leafOf[index] = node;
    });
    // Prefix-free: no candidate's token sequence may end inside (or at the end of) another's, or the
    // candidates would not be disjoint events and could not form a distribution.
    const owner = new Map<number, number>();
    candidates.forEach((candidate, index) => {
      const leaf = leafOf[index];
      const other = owner.get(leaf);
      if (other !== undefined) {
        throw new Error(`candidate trie: outcomes ${candidates[other].code} and ${candidate.code} have the same tokens ${JSON.stringify(candidate.ids)}`);
      }
      owner.set(leaf, index);
      if (children[leaf].size > 0) {
        throw new Error(
          `candidate trie: the tokens of outcome ${candidate.code} (${JSON.stringify(candidate.text)}) are a prefix of another outcome's; ` +
            "targets must end with the line terminator so no title is a prefix of another",
        );
      }
    });
    this.tokens = Int32Array.from(tokens);
    this.parents = Int32Array.from(parents);
    this.depths = Int32Array.from(depths);
    this.leafOf = leafOf;
    this.hasChildren = Uint8Array.from(children, (c) => (c.size > 0 ? 1 : 0));
    this.candidates = candidates;
  }

  /** Number of nodes including the root. */
  get nodeCount(): number {
    return this.tokens.length;
  }

  /** Total candidate tokens before sharing (what a per-candidate scorer evaluates). */
  get unsharedTokenCount(): number {
    return this.candidates.reduce((sum, c) => sum + c.ids.length, 0);
  }

  /**
   * Log-probability of every candidate from per-node conditional log-probabilities
   * (nodeLogprobs[n] = log P(tokens[n] | its ancestors); the root's entry is ignored).
   */
  candidateLogprobs(nodeLogprobs: ArrayLike<number>, out: Float64Array = new Float64Array(this.candidates.length)): Float64Array {
    const cumulative = new Float64Array(this.nodeCount);
    for (let n = 1; n < this.nodeCount; n++) cumulative[n] = cumulative[this.parents[n]] + nodeLogprobs[n];
    for (let c = 0; c < this.leafOf.length; c++) out[c] = cumulative[this.leafOf[c]];
    return out;
  }
}
