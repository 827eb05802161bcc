import { describe, expect, it } from "vitest";
import { relabelledCopies, renameOccupation } from "../src/data/relabel.js";
import type { PersonRecord } from "../src/data/panel.js";
import { generateSyntheticPanel } from "../src/data/synthetic.js";
import { occupationTaxonomy } from "../src/data/taxonomy.js";
import { relabelledSequences } from "../src/experiment/stages.js";
import { documentTemplate, renderDocument, tokenizeDocument } from "../src/text/documents.js";
import { buildLlama2TokenizerConfig, buildLlama2TokenizerJson } from "../src/text/llama2-tokenizer.js";
import { Tokenizer } from "../src/text/tokenizer.js";

const taxonomy = occupationTaxonomy();
const people = generateSyntheticPanel({ profile: "nlsy79", people: 40, seed: 3 }).panel.people;
const isWork = (code: number) => !taxonomy.byCode(code).isNonWork;

describe("relabelled careers", () => {
  it("renames every wave of one occupation and nothing else, leaving the input alone", () => {
    const person: PersonRecord = {
      personId: "p", dataset: "NLSY79", birthYear: 1960, sex: "female", race: "white", region: "south",
      waves: [
        { year: 1990, occupation: 4, education: 1 },
        { year: 1991, occupation: 4, education: 1 },
        { year: 1992, occupation: 993, education: 1 },
        { year: 1993, occupation: 7, education: 2 },
        { year: 1994, occupation: 4, education: 2 },
      ],
    };
    const before = JSON.stringify(person);
    const renamed = renameOccupation(person, 4, 22, "p~1");
    expect(renamed.waves.map((w) => w.occupation)).toEqual([22, 22, 993, 7, 22]);
    expect(renamed.waves.map((w) => [w.year, w.education])).toEqual(person.waves.map((w) => [w.year, w.education]));
    expect(renamed.personId).toBe("p~1");
    expect(JSON.stringify(person)).toBe(before);
  });

  it("each copy is a training career with exactly one occupation renamed to one the person never held", () => {
    const copies = relabelledCopies(people, 60, 11, taxonomy);
    expect(copies).toHaveLength(60);
    const byId = new Map(people.map((p) => [p.personId, p]));
    for (const { person: copy, from: renamedFrom, to: renamedTo } of copies) {
      const source = byId.get(copy.personId.replace(/~relabelled\d+$/, ""))!;
      expect(source).toBeDefined();
      const held = new Set(source.waves.map((w) => w.occupation));
      const pairs = new Map<number, number>();
      copy.waves.forEach((wave, i) => {
        const from = source.waves[i].occupation;
        if (wave.occupation !== from) pairs.set(from, wave.occupation);
      });
      expect(pairs.size).toBe(1);
      const [[from, to]] = [...pairs];
      expect([renamedFrom, renamedTo]).toEqual([from, to]);
      expect(isWork(from) && isWork(to)).toBe(true);
      expect(held.has(to)).toBe(false);
      // Every wave of `from` was renamed (not some of them).
      expect(copy.waves.some((w) => w.occupation === from)).toBe(false);
    }
  });

  it("is deterministic in the seed, draws widely, and adds nothing for a count of 0", () => {
    const a = relabelledCopies(people, 200, 5, taxonomy).map((c) => c.person);
    expect(relabelledCopies(people, 200, 5, taxonomy).map((c) => c.person)).toEqual(a);
    expect(relabelledCopies(people, 200, 6, taxonomy).map((c) => c.person)).not.toEqual(a);
    const renamedTo = new Set(a.flatMap((copy) => copy.waves.map((w) => w.occupation)).filter(isWork));
    expect(renamedTo.size).toBeGreaterThan(150);
    expect(relabelledCopies(people, 0, 5, taxonomy)).toEqual([]);
  });

  it("refuses people who hold no occupation", () => {
    const idle = people.map((p) => ({ ...p, waves: p.waves.map((w) => ({ ...w, occupation: 993 })) }));
    expect(() => relabelledCopies(idle, 1, 1, taxonomy)).toThrow(/no training person holds an occupation/);
  });

  it.each(["after-renamed", "copy-decision", "stays", "stays-leave"] as const)("%s puts the loss only on the lines its mode names, each after one holding the renamed title", (mode) => {
    const tokenizer = new Tokenizer(buildLlama2TokenizerJson(), buildLlama2TokenizerConfig(), "llama2 tokenizer.json");
    const template = documentTemplate("default");
    const share = 0.5;
    const copies = relabelledCopies(people, Math.round(share * people.length), 9, taxonomy);
    const plain = relabelledSequences(people, share, "targets", 9, tokenizer, template, "targets");
    const masked = relabelledSequences(people, share, mode, 9, tokenizer, template, "targets");
    expect(masked).toHaveLength(copies.length);
    let stays = 0;
    let leaves = 0;
    let avoided = 0;
    copies.forEach(({ person, to }, i) => {
      const document = tokenizeDocument(renderDocument(person, template), tokenizer);
      expect(Array.from(masked[i].ids)).toEqual(document.ids);
      const expected = new Uint8Array(document.ids.length);
      const expectedAvoid = new Int32Array(document.ids.length).fill(-1);
      document.targets.forEach((target, t) => {
        if (t === 0 || person.waves[t - 1].occupation !== to) return;
        const stayed = person.waves[t].occupation === to;
        if (stayed) stays++;
        else leaves++;
        // stays-leave: a line that leaves the renamed title must not start with the renamed title's first token
        // (unless it does); copy-decision keeps only its first token; stays none of it.
        const renamedFirst = document.ids[document.targets[t - 1].tokenStart];
        if (!stayed && mode === "stays-leave" && document.ids[target.tokenStart] !== renamedFirst) {
          expectedAvoid[target.tokenStart] = renamedFirst;
          avoided++;
        }
        if (!stayed && (mode === "stays" || mode === "stays-leave")) return;
        expected.fill(1, target.tokenStart, stayed || mode === "after-renamed" ? target.tokenEnd : target.tokenStart + 1);
      });
      expect(masked[i].lossMask).toEqual(expected);
      if (mode === "stays-leave" && expectedAvoid.some((v) => v >= 0)) expect(masked[i].avoid).toEqual(expectedAvoid);
      else expect(masked[i].avoid).toBeUndefined();
      // A subset of the plain copy's target mask.
      masked[i].lossMask.forEach((bit, k) => expect(bit <= plain[i].lossMask[k]).toBe(true));
    });
    expect(stays).toBeGreaterThan(0);
    expect(leaves).toBeGreaterThan(0);
    if (mode === "stays-leave") expect(avoided).toBeGreaterThan(0);
    expect(relabelledSequences(people, 0, mode, 9, tokenizer, template, "targets")).toEqual([]);
  });
});
