import { beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { loadPanel } from "../src/data/load.js";
import type { PersonRecord } from "../src/data/panel.js";
import { generateSyntheticPanel } from "../src/data/synthetic.js";
import { occupationTaxonomy } from "../src/data/taxonomy.js";
import {
  TEMPLATE_NAMES,
  TokenOffsets,
  candidateTokenizations,
  documentTemplate,
  lossMask,
  occupationListDocument,
  renderDocument,
  tokenizeDocument,
  type CandidateTokens,
  type TextTokenizer,
} from "../src/text/documents.js";
import { buildLlama2TokenizerConfig, buildLlama2TokenizerJson } from "../src/text/llama2-tokenizer.js";
import { Tokenizer } from "../src/text/tokenizer.js";

const taxonomy = occupationTaxonomy();

async function fixturePerson(): Promise<PersonRecord> {
  return (await loadPanel("test/fixtures/data/panel-good.csv")).people[0];
}

describe("document templates", () => {
  it.each(TEMPLATE_NAMES)("renders the fixture person byte for byte: %s", async (name) => {
    const expected = readFileSync(`test/fixtures/data/document-${name}.txt`, "utf8");
    const document = renderDocument(await fixturePerson(), documentTemplate(name));
    expect(document.text).toBe(expected);
    expect(document.personId).toBe("A1");
  });

  it("records each target's character span: the space, the title and the line terminator", async () => {
    const document = renderDocument(await fixturePerson(), documentTemplate("default"));
    expect(document.targets.map((t) => [t.year, t.outcome, document.text.slice(t.charStart, t.charEnd)])).toEqual([
      [1979, 276, " Cashiers\n"],
      [1980, 993, " Not in labor force\n"],
      [1981, 313, " Secretaries and administrative assistants\n"],
    ]);
    for (const target of document.targets) expect(document.text.slice(target.charStart - 1, target.charStart)).toBe(":");
    const code = renderDocument(await fixturePerson(), documentTemplate("code"));
    expect(code.targets.map((t) => code.text.slice(t.charStart, t.charEnd))).toEqual([" 276\n", " 993\n", " 313\n"]);
  });

  it("accepts overrides and rejects unknown templates", async () => {
    const template = documentTemplate("no-education", { lineTerminator: "\r\n", endOfData: "<END>" });
    const document = renderDocument(await fixturePerson(), template);
    expect(document.text.endsWith("1981: Secretaries and administrative assistants\r\n<END>")).toBe(true);
    expect(document.text.slice(document.targets[0].charStart, document.targets[0].charEnd)).toBe(" Cashiers\r\n");
    expect(() => documentTemplate("fancy" as "default")).toThrow('unknown template "fancy" (expected one of default, code, no-birth-year, no-education)');
    expect(() => documentTemplate("default", { lineTerminator: "" })).toThrow("lineTerminator must not be empty");
  });
});

describe("occupation-list documents", () => {
  const order = [276, 993, 313, 4, 7];
  const lines = (text: string) => text.split("\n").slice(1, -1);

  it("lists every title once, each line a target spelled as in the survey documents", () => {
    const document = occupationListDocument(order, documentTemplate("default"), taxonomy);
    expect(lines(document.text)).toEqual(order.map((code) => `Occupation: ${taxonomy.byCode(code).title}`));
    expect(document.targets.map((t) => [t.outcome, document.text.slice(t.charStart, t.charEnd)])).toEqual(
      order.map((code) => [code, ` ${taxonomy.byCode(code).title}\n`]),
    );
    expect(document.text.endsWith(`\n${documentTemplate("default").endOfData}`)).toBe(true);
  });

  it("in groups of k, writes each group twice in a row (the last group may be shorter)", () => {
    const document = occupationListDocument(order, documentTemplate("default"), taxonomy, "list", 2);
    const expected = [276, 993, 276, 993, 313, 4, 313, 4, 7, 7];
    expect(document.text.split("\n")[0]).toBe("Occupations of the US Census classification, one per line, in groups of 2 each written twice:");
    expect(document.targets.map((t) => t.outcome)).toEqual(expected);
    expect(lines(document.text)).toEqual(expected.map((code) => `Occupation: ${taxonomy.byCode(code).title}`));
    expect(() => occupationListDocument(order, documentTemplate("default"), taxonomy, "list", -1)).toThrow("repeatGroupsOf must be a non-negative integer, got -1");
  });
});

/** Character-level toy tokenizer; `mergeColonSpace` makes ": " one token to break target boundaries. */
function toyTokenizer(mergeColonSpace: boolean): TextTokenizer {
  const pieces = new Map<number, string>();
  const idOf = (piece: string) => {
    const id = 10 + (piece.length === 1 ? piece.charCodeAt(0) : 100_000);
    pieces.set(id, piece);
    return id;
  };
  return {
    encode(text, options) {
      const ids = options?.addBos === false ? [] : [1];
      for (let i = 0; i < text.length; i++) {
        if (mergeColonSpace && text[i] === ":" && text[i + 1] === " ") {
          ids.push(idOf(": "));
          i++;
        } else {
          ids.push(idOf(text[i]));
        }
      }
      return ids;
    },
    decode(ids) {
      return ids.map((id) => (id === 1 ? "" : (pieces.get(id) ?? "?"))).join("");
    },
  };
}

describe("token spans, loss masks and candidates", () => {
  let llama2: Tokenizer;
  beforeAll(() => {
    llama2 = new Tokenizer(buildLlama2TokenizerJson(), buildLlama2TokenizerConfig(), "llama2 tokenizer.json");
  });

  it("places token spans from the tokenized document itself (Llama-2)", async () => {
    const document = renderDocument(await fixturePerson(), documentTemplate("default"));
    const tokenized = tokenizeDocument(document, llama2);
    expect(tokenized.ids).toEqual(llama2.encode(document.text, { addBos: true }));
    expect(tokenized.ids[0]).toBe(llama2.bosId);
    const spans = tokenized.targets.map((t) => tokenized.ids.slice(t.tokenStart, t.tokenEnd).map((id) => llama2.idToToken(id)));
    expect(spans).toEqual([
      ["▁C", "ash", "iers", "<0x0A>"],
      ["▁Not", "▁in", "▁labor", "▁force", "<0x0A>"],
      expect.arrayContaining(["<0x0A>"]),
    ]);
    // The tokens before and after every span spell the rest of the document exactly.
    for (const target of tokenized.targets) {
      const before = llama2.decode(tokenized.ids.slice(0, target.tokenStart));
      const through = llama2.decode(tokenized.ids.slice(0, target.tokenEnd));
      expect(before).toBe(document.text.slice(0, target.charStart));
      expect(through).toBe(document.text.slice(0, target.charEnd));
    }
  });

  it("loss masks: every token but the first, or exactly the target tokens", async () => {
    const tokenized = tokenizeDocument(renderDocument(await fixturePerson(), documentTemplate("default")), llama2);
    const all = lossMask(tokenized, "all");
    expect(all[0]).toBe(0);
    expect(all.slice(1).every((v) => v === 1)).toBe(true);
    const targets = lossMask(tokenized, "targets");
    const expected = new Uint8Array(tokenized.ids.length);
    for (const t of tokenized.targets) expected.fill(1, t.tokenStart, t.tokenEnd);
    expect(targets).toEqual(expected);
    expect(targets.reduce((a, b) => a + b, 0)).toBe(tokenized.targets.reduce((a, t) => a + t.tokenEnd - t.tokenStart, 0));
  });

  for (const name of ["default", "code"] as const) {
    it(`every outcome's candidate tokens are exactly what appears inside tokenized documents (${name}, Llama-2)`, () => {
      const template = documentTemplate(name);
      const candidates = candidateTokenizations(template, llama2);
      expect(candidates.map((c) => c.code)).toEqual(taxonomy.outcomes.map((o) => o.code));
      const offsets = new TokenOffsets(llama2);
      const mismatches: string[] = [];
      const outcomes = taxonomy.outcomes;
      outcomes.forEach((outcome, index) => {
        // The outcome first, between two others (one of them a long title), and last before <END OF DATA>.
        const other = outcomes[(index * 7 + 3) % outcomes.length].code;
        const person: PersonRecord = {
          personId: `p${outcome.code}`,
          dataset: "NLSY97",
          birthYear: 1982,
          sex: "male",
          race: "hispanic",
          region: "north central",
          waves: [
            { year: 1999, occupation: outcome.code, education: 0 },
            { year: 2000, occupation: other, education: 2 },
            { year: 2001, occupation: outcome.code, education: 3 },
            { year: 2003, occupation: 376, education: 4 },
            { year: 2005, occupation: outcome.code, education: 4 },
          ],
        };
        const tokenized = tokenizeDocument(renderDocument(person, template), llama2, { offsets });
        for (const waveIndex of [0, 2, 4]) {
          const target = tokenized.targets[waveIndex];
          const ids = tokenized.ids.slice(target.tokenStart, target.tokenEnd);
          if (JSON.stringify(ids) !== JSON.stringify(candidates[index].ids)) {
            mismatches.push(`${outcome.code} wave ${waveIndex}: ${JSON.stringify(ids)} vs candidate ${JSON.stringify(candidates[index].ids)}`);
          }
        }
      });
      expect(mismatches).toEqual([]);
      // Candidates spell their target text and end with the terminator token; no candidate is a prefix of
      // another (the terminator makes the candidate set a proper distribution).
      const newline = llama2.tokenToId("<0x0A>");
      for (const candidate of candidates) {
        expect(llama2.decode([llama2.tokenToId("▁a") as number, ...candidate.ids])).toBe(`a${candidate.text}`);
        expect(candidate.ids[candidate.ids.length - 1]).toBe(newline);
      }
      expect(prefixPairs(candidates)).toEqual([]);
    });
  }

  it("tokenizes synthetic documents of every profile with all targets on token boundaries", () => {
    const offsets = new TokenOffsets(llama2);
    for (const profile of ["nlsy79", "psid", "resumes"] as const) {
      const { panel } = generateSyntheticPanel({ profile, people: 40, seed: 2 });
      for (const person of panel.people) {
        for (const name of TEMPLATE_NAMES) {
          const tokenized = tokenizeDocument(renderDocument(person, documentTemplate(name)), llama2, { offsets });
          expect(tokenized.targets).toHaveLength(person.waves.length);
        }
      }
    }
  });

  it("works with any tokenizer that round-trips; reports straddled targets and tokenizers that do not round-trip", async () => {
    const person = await fixturePerson();
    const document = renderDocument(person, documentTemplate("default"));
    const toy = tokenizeDocument(document, toyTokenizer(false));
    expect(toy.targets.map((t) => [t.tokenStart, t.tokenEnd])).toEqual(document.targets.map((t) => [t.charStart + 1, t.charEnd + 1]));
    expect(() => tokenizeDocument(document, toyTokenizer(true))).toThrow(
      'document of person "A1": the target of 1979 (characters 340–350, " Cashiers\\n") does not fall on token boundaries',
    );
    const lossy: TextTokenizer = { encode: (text) => [1, ...Array.from(text, () => 5)], decode: (ids) => "x".repeat(ids.length) };
    expect(() => tokenizeDocument(document, lossy)).toThrow("tokenizer does not round-trip the document text");
  });
});

function prefixPairs(candidates: CandidateTokens[]): string[] {
  const found: string[] = [];
  const keys = new Map(candidates.map((c) => [c.ids.join(","), c.code]));
  for (const candidate of candidates) {
    for (let length = 1; length < candidate.ids.length; length++) {
      const other = keys.get(candidate.ids.slice(0, length).join(","));
      if (other !== undefined) found.push(`${other} is a prefix of ${candidate.code}`);
    }
  }
  if (keys.size !== candidates.length) found.push("two candidates share a token sequence");
  return found;
}
