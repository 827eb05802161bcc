import { describe, expect, it } from "vitest";
import {
  CAREER_PROCESS_PARAMETERS,
  type HistoryContext,
  titleKeywords,
} from "../src/data/career-process.js";
import { countPersonYears, type PersonRecord } from "../src/data/panel.js";
import { PROFILE_NAMES, SYNTHETIC_PROFILES } from "../src/data/profiles.js";
import { DEFAULT_SPLIT_FRACTIONS, assignSplits, splitOfPerson } from "../src/data/splits.js";
import { careerProcessFor, generateSyntheticPanel } from "../src/data/synthetic.js";
import { MAJOR_GROUPS, NOT_IN_LABOR_FORCE_CODE, UNEMPLOYED_CODE, occupationTaxonomy } from "../src/data/taxonomy.js";

const taxonomy = occupationTaxonomy();

describe("synthetic generator", () => {
  it("is deterministic by seed, and a person's career does not depend on how many people are drawn", () => {
    const a = generateSyntheticPanel({ profile: "nlsy79", people: 60, seed: 7 });
    const b = generateSyntheticPanel({ profile: "nlsy79", people: 60, seed: 7 });
    const fewer = generateSyntheticPanel({ profile: "nlsy79", people: 25, seed: 7 });
    const other = generateSyntheticPanel({ profile: "nlsy79", people: 60, seed: 8 });
    expect(b.panel).toEqual(a.panel);
    expect(b.outcomeProbabilities).toEqual(a.outcomeProbabilities);
    expect(fewer.panel.people).toEqual(a.panel.people.slice(0, 25));
    expect(other.panel).not.toEqual(a.panel);
  });

  it.each(PROFILE_NAMES)("%s: people follow the profile's calendar, ages and schooling rules", (name) => {
    const profile = SYNTHETIC_PROFILES[name];
    const { panel, outcomeProbabilities } = generateSyntheticPanel({ profile: name, people: 400, seed: 1 });
    expect(outcomeProbabilities.length).toBe(countPersonYears(panel));
    const violations: string[] = [];
    const check = (ok: boolean, what: string, person: PersonRecord) => {
      if (!ok && violations.length < 10) violations.push(`person ${person.personId}: ${what}`);
    };
    for (const person of panel.people) {
      check(person.dataset === profile.dataset, "dataset", person);
      check(person.waves.length >= profile.minimumWaves, "too few waves", person);
      let previousIndex = -1;
      person.waves.forEach((wave, i) => {
        const index = profile.waveYears.indexOf(wave.year);
        // Calendar waves in order, none skipped once a person is in the panel.
        check(index >= 0 && (i === 0 || index === previousIndex + 1), `wave ${wave.year} out of calendar order`, person);
        previousIndex = index;
        check(wave.year - person.birthYear <= profile.maximumAge, `age above maximum in ${wave.year}`, person);
        const step = i > 0 ? wave.education - person.waves[i - 1].education : 0;
        check(step === 0 || step === 1, `education step ${step} in ${wave.year}`, person);
        check(taxonomy.has(wave.occupation), `unknown outcome ${wave.occupation}`, person);
        if (!profile.hasNonWorkSpells) check(!taxonomy.byCode(wave.occupation).isNonWork, `non-work spell in ${wave.year}`, person);
      });
    }
    expect(violations).toEqual([]);
    if (name === "nlsy79") expect(panel.people.every((p) => p.waves[0].year === 1979)).toBe(true);
    if (name === "psid") {
      const gaps = panel.people.flatMap((p) => p.waves.slice(1).map((w, i) => [w.year, w.year - p.waves[i].year]));
      expect(gaps.filter(([year]) => year > 1997).every(([, gap]) => gap === 2)).toBe(true);
      expect(gaps.filter(([year]) => year <= 1997).every(([, gap]) => gap === 1)).toBe(true);
    }
  });

  it.each(PROFILE_NAMES)("%s: the oracle sums to 1 at every person-year and matches the recorded probability", (name) => {
    const process = careerProcessFor(name);
    const { panel, outcomeProbabilities } = generateSyntheticPanel({ profile: name, people: 300, seed: 3 });
    const distribution = new Float64Array(process.outcomeCount);
    let row = 0;
    let worstSumError = 0;
    let negatives = 0;
    let worstRecordedError = 0;
    let worstPointError = 0;
    let smallestRecorded = 1;
    for (const person of panel.people) {
      for (let i = 0; i < person.waves.length; i++) {
        const context = process.contextAt(person, i);
        process.distribution(context, distribution);
        let sum = 0;
        for (const p of distribution) {
          if (p < 0) negatives += 1;
          sum += p;
        }
        worstSumError = Math.max(worstSumError, Math.abs(sum - 1));
        const outcome = taxonomy.indexOf(person.waves[i].occupation) as number;
        smallestRecorded = Math.min(smallestRecorded, outcomeProbabilities[row]);
        worstRecordedError = Math.max(worstRecordedError, Math.abs(outcomeProbabilities[row] - distribution[outcome]));
        worstPointError = Math.max(worstPointError, Math.abs(process.probabilityOf(context, outcome) - distribution[outcome]));
        row += 1;
      }
    }
    expect(row).toBe(outcomeProbabilities.length);
    expect(negatives).toBe(0);
    expect(worstSumError).toBeLessThan(1e-12);
    expect(smallestRecorded).toBeGreaterThan(0);
    expect(worstRecordedError).toBeLessThan(1e-15);
    expect(worstPointError).toBeLessThan(1e-15);
  });

  it("channel probabilities equal the SYNTHETIC.md formulas recomputed by hand (yearly and over a 2-year gap)", () => {
    const process = careerProcessFor("nlsy79");
    const cashiers = taxonomy.indexOf(276) as number;
    const context: HistoryContext = {
      previous: cashiers,
      tenureYears: 3,
      lastOccupation: cashiers,
      gapYears: 1,
      age: 25,
      education: 1,
      sex: "female",
      race: "black",
      region: "south",
    };
    const U = 0.3 + 0.6 - 0.1; // u_edu[1] + u_race[black] + u_region[south]
    const move = Math.exp(-1.2 - 0.45 * Math.log(3) - 0.25 * ((25 - 30) / 10));
    const school = Math.exp(-2.5 - 0.35 * 5);
    const unemployed = Math.exp(-3.0 + U - 0.3 * Math.log(3));
    const inactive = Math.exp(-3.4 + (0.4 + 0.8));
    const total = 1 + move + school + unemployed + inactive;
    const yearly = process.distribution(context);
    expect(yearly[cashiers]).toBeCloseTo(1 / total, 14);
    expect(yearly[taxonomy.indexOf(UNEMPLOYED_CODE) as number]).toBeCloseTo(unemployed / total, 14);
    const twoYear = process.distribution({ ...context, gapYears: 2 });
    const stay = 1 / total;
    expect(twoYear[cashiers]).toBeCloseTo(stay ** 2, 14);
    expect(twoYear[taxonomy.indexOf(NOT_IN_LABOR_FORCE_CODE) as number]).toBeCloseTo(((1 - stay ** 2) * (inactive / total)) / (1 - stay), 14);

    // One move-kernel entry, Cashiers → Sales counter clerks, recomputed from the destination formula.
    const { kernel, sexSign } = CAREER_PROCESS_PARAMETERS;
    const occupations = taxonomy.outcomes.slice(0, taxonomy.occupationCount);
    const origin = occupations[cashiers];
    const weight = (j: number) => {
      if (j === cashiers) return 0;
      const target = occupations[j];
      const group = MAJOR_GROUPS[target.group];
      let shared = 0;
      const originWords = titleKeywords(origin.title);
      for (const word of titleKeywords(target.title)) if (originWords.has(word)) shared++;
      return (
        target.employmentWeight *
        Math.exp(
          kernel.educationFit * -Math.abs(group.skillLevel - 1) +
            kernel.sexTilt * group.femaleTilt * sexSign.female +
            kernel.sameGroup * (target.group === origin.group ? 1 : 0) +
            kernel.sharedWord * Math.min(shared, kernel.maxSharedWords),
        )
      );
    };
    let normaliser = 0;
    for (let j = 0; j < occupations.length; j++) normaliser += weight(j);
    const counterClerks = taxonomy.indexOf(275) as number;
    expect(yearly[counterClerks]).toBeCloseTo((move / total) * (weight(counterClerks) / normaliser), 14);
    expect(titleKeywords("Sales counter clerks")).toEqual(new Set(["sale", "counter", "clerk"]));
  });

  it("a return to work recalls the last occupation with probability ρ plus its move-kernel share", () => {
    const process = careerProcessFor("nlsy79");
    const person: PersonRecord = {
      personId: "x",
      dataset: "NLSY79",
      birthYear: 1960,
      sex: "male",
      race: "white",
      region: "west",
      waves: [
        { year: 1985, occupation: 276, education: 1 },
        { year: 1986, occupation: UNEMPLOYED_CODE, education: 1 },
        { year: 1987, occupation: 276, education: 1 },
      ],
    };
    const context = process.contextAt(person, 2);
    expect(context).toMatchObject({ previous: taxonomy.indexOf(UNEMPLOYED_CODE), lastOccupation: taxonomy.indexOf(276), gapYears: 1, age: 27 });
    const distribution = process.distribution(context);
    const work = Math.exp(0.6 + 0.15 * 0 - 0);
    const inactive = Math.exp(-1.5);
    const school = Math.exp(-2.0 - 0.3 * 5);
    const pWork = work / (1 + work + inactive + school);
    expect(distribution[taxonomy.indexOf(276) as number]).toBeCloseTo(pWork * CAREER_PROCESS_PARAMETERS.recall, 14);
  });

  it("empirical frequencies match the oracle in a large sample (|z| < 4.5 per event)", () => {
    const groupOf = taxonomy.outcomes.map((o) => o.group);
    const events: { name: string; observed: number; expected: number; variance: number }[] = [];
    const event = (name: string) => {
      let entry = events.find((e) => e.name === name);
      if (!entry) events.push((entry = { name, observed: 0, expected: 0, variance: 0 }));
      return entry;
    };
    const add = (name: string, probability: number, happened: boolean) => {
      const entry = event(name);
      entry.expected += probability;
      entry.variance += probability * (1 - probability);
      if (happened) entry.observed += 1;
    };
    const largest = taxonomy.outcomes
      .map((o, index) => ({ index, weight: o.employmentWeight }))
      .sort((a, b) => b.weight - a.weight)
      .slice(0, 20)
      .map((o) => o.index);
    for (const name of ["nlsy79", "psid"] as const) {
      const process = careerProcessFor(name);
      const { panel } = generateSyntheticPanel({ profile: name, people: 12_000, seed: 11 });
      const distribution = new Float64Array(process.outcomeCount);
      const groupMass = new Float64Array(MAJOR_GROUPS.length + 1);
      for (const person of panel.people) {
        for (let i = 0; i < person.waves.length; i++) {
          const context = process.contextAt(person, i);
          process.distribution(context, distribution);
          const outcome = taxonomy.indexOf(person.waves[i].occupation) as number;
          groupMass.fill(0);
          for (let k = 0; k < process.occupationCount; k++) groupMass[groupOf[k]] += distribution[k];
          for (let g = 0; g < MAJOR_GROUPS.length; g++) add(`${name} group ${g}`, groupMass[g], outcome < process.occupationCount && groupOf[outcome] === g);
          for (const k of [process.educationIndex, process.unemployedIndex, process.notInLaborForceIndex]) add(`${name} outcome ${k}`, distribution[k], outcome === k);
          for (const k of largest) add(`${name} occupation ${k}`, distribution[k], outcome === k);
          if (context.previous >= 0 && context.previous < process.occupationCount) {
            const stay = distribution[context.previous];
            add(`${name} stay`, stay, outcome === context.previous);
            add(`${name} stay, decile ${Math.min(9, Math.floor(stay * 10))}`, stay, outcome === context.previous);
            let within = 0;
            for (let k = 0; k < process.occupationCount; k++) if (k !== context.previous && groupOf[k] === groupOf[context.previous]) within += distribution[k];
            add(`${name} move within group`, within, outcome !== context.previous && outcome < process.occupationCount && groupOf[outcome] === groupOf[context.previous]);
          }
        }
      }
    }
    const checked = events.filter((e) => e.variance >= 25);
    expect(checked.length).toBeGreaterThan(60);
    const failures = checked
      .map((e) => ({ ...e, z: (e.observed - e.expected) / Math.sqrt(e.variance) }))
      .filter((e) => Math.abs(e.z) >= 4.5)
      .map((e) => `${e.name}: observed ${e.observed}, expected ${e.expected.toFixed(1)}, z ${e.z.toFixed(2)}`);
    expect(failures).toEqual([]);
  });

  it("rejects bad options with a message", () => {
    expect(() => generateSyntheticPanel({ profile: "nlsy80" as "nlsy79", people: 1, seed: 1 })).toThrow(
      'unknown synthetic profile "nlsy80" (expected one of nlsy79, nlsy97, psid, resumes)',
    );
    expect(() => generateSyntheticPanel({ profile: "psid", people: -1, seed: 1 })).toThrow("people must be a non-negative integer");
  });
});

describe("splits", () => {
  it("are deterministic from seed and person id, whatever the order, with the requested fractions", () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `person-${i}`);
    const forward = assignSplits(ids, 5);
    const backward = assignSplits([...ids].reverse(), 5);
    for (const id of ids) expect(backward.get(id)).toBe(forward.get(id));
    const counts = { train: 0, valid: 0, test: 0 };
    for (const split of forward.values()) counts[split] += 1;
    // Binomial standard deviation for 20,000 draws at 0.1 is 42; allow 5 of them.
    expect(Math.abs(counts.train - 20_000 * DEFAULT_SPLIT_FRACTIONS.train)).toBeLessThan(5 * 57);
    expect(Math.abs(counts.valid - 2000)).toBeLessThan(5 * 42);
    expect(Math.abs(counts.test - 2000)).toBeLessThan(5 * 42);
    const reseeded = assignSplits(ids, 6);
    expect(ids.filter((id) => reseeded.get(id) !== forward.get(id)).length).toBeGreaterThan(3000);
    expect(splitOfPerson("person-1", 5, { train: 0, valid: 0, test: 1 })).toBe("test");
    expect(() => splitOfPerson("a", 1, { train: 0.5, valid: 0.1, test: 0.1 })).toThrow("split fractions must be non-negative and sum to 1");
  });
});
