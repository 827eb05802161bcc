/**
 * Descriptive statistics of a panel (what `labor-llm data stats` prints): size, non-work shares,
 * year-to-year persistence, where moves go by major group, and the most common occupations.
 */
import { EDUCATION_LEVELS, type Panel } from "./panel.js";
import { IN_EDUCATION_CODE, MAJOR_GROUPS, NOT_IN_LABOR_FORCE_CODE, UNEMPLOYED_CODE, occupationTaxonomy, type OccupationTaxonomy } from "./taxonomy.js";

/** Per major group: how much of employment it holds, how sticky it is, where its movers go. */
export interface GroupStatistics {
  name: string;
  /** Share of employed person-years in the group. */
  employmentShare: number;
  /** Consecutive-wave pairs starting in a job of this group. */
  transitionsFrom: number;
  /** Share of those pairs with the same occupation at the next wave. */
  stayRate: number;
  /** Moves to a different occupation from this group. */
  moves: number;
  /** Share of those moves that stay inside the group. */
  withinGroupMoveShare: number;
}

export interface PanelStatistics {
  people: number;
  personYears: number;
  firstYear: number;
  lastYear: number;
  meanWavesPerPerson: number;
  /** Share of person-years per non-work state and in work. */
  shares: { employed: number; inEducation: number; unemployed: number; notInLaborForce: number };
  /** Share of person-years by education level (index = level). */
  educationShares: number[];
  /** P(same occupation at the next wave | in an occupation now), all consecutive pairs. */
  stayRate: number;
  /** Same, restricted to pairs one year apart and two years apart. */
  stayRateOneYearGap: number;
  stayRateTwoYearGap: number;
  /** From a job: share of next waves in another job / in a non-work state. */
  moveRate: number;
  exitToNonWorkRate: number;
  /** Of moves between occupations, share within the origin's major group. */
  withinGroupMoveShare: number;
  groups: GroupStatistics[];
  /** Most common occupations by share of employed person-years. */
  topOccupations: { code: number; title: string; share: number }[];
}

/** Compute {@link PanelStatistics}; `topCount` occupations are listed (default 10). */
export function panelStatistics(panel: Panel, taxonomy: OccupationTaxonomy = occupationTaxonomy(), topCount = 10): PanelStatistics {
  const outcomeCounts = new Float64Array(taxonomy.size);
  const educationCounts = new Float64Array(EDUCATION_LEVELS.length);
  const groupCount = MAJOR_GROUPS.length;
  const groupTransitions = new Float64Array(groupCount);
  const groupStays = new Float64Array(groupCount);
  const groupMoves = new Float64Array(groupCount);
  const groupWithinMoves = new Float64Array(groupCount);
  const stayByGap = new Float64Array(3);
  const pairsByGap = new Float64Array(3);
  let exits = 0;
  let personYears = 0;
  let firstYear = Infinity;
  let lastYear = -Infinity;
  for (const person of panel.people) {
    for (let i = 0; i < person.waves.length; i++) {
      const wave = person.waves[i];
      personYears += 1;
      outcomeCounts[taxonomy.indexOf(wave.occupation) as number] += 1;
      educationCounts[wave.education] += 1;
      firstYear = Math.min(firstYear, wave.year);
      lastYear = Math.max(lastYear, wave.year);
      if (i === 0) continue;
      const previous = taxonomy.byCode(person.waves[i - 1].occupation);
      if (previous.isNonWork) continue;
      const current = taxonomy.byCode(wave.occupation);
      const gapBucket = Math.min(2, wave.year - person.waves[i - 1].year);
      pairsByGap[gapBucket] += 1;
      groupTransitions[previous.group] += 1;
      if (current.code === previous.code) {
        groupStays[previous.group] += 1;
        stayByGap[gapBucket] += 1;
      } else if (current.isNonWork) {
        exits += 1;
      } else {
        groupMoves[previous.group] += 1;
        if (current.group === previous.group) groupWithinMoves[previous.group] += 1;
      }
    }
  }
  const ratio = (a: number, b: number) => (b > 0 ? a / b : NaN);
  const sum = (values: Float64Array) => values.reduce((a, b) => a + b, 0);
  const countOf = (code: number) => outcomeCounts[taxonomy.indexOf(code) as number];
  const nonWork = countOf(IN_EDUCATION_CODE) + countOf(UNEMPLOYED_CODE) + countOf(NOT_IN_LABOR_FORCE_CODE);
  const employed = personYears - nonWork;
  const employmentByGroup = new Float64Array(groupCount);
  for (let index = 0; index < taxonomy.occupationCount; index++) employmentByGroup[taxonomy.outcomes[index].group] += outcomeCounts[index];
  const transitions = sum(pairsByGap);
  const moves = sum(groupMoves);
  const topOccupations = taxonomy.outcomes
    .slice(0, taxonomy.occupationCount)
    .map((outcome, index) => ({ code: outcome.code, title: outcome.title, share: ratio(outcomeCounts[index], employed) }))
    .filter((entry) => entry.share > 0)
    .sort((a, b) => b.share - a.share || a.code - b.code)
    .slice(0, topCount);
  return {
    people: panel.people.length,
    personYears,
    firstYear,
    lastYear,
    meanWavesPerPerson: ratio(personYears, panel.people.length),
    shares: {
      employed: ratio(employed, personYears),
      inEducation: ratio(countOf(IN_EDUCATION_CODE), personYears),
      unemployed: ratio(countOf(UNEMPLOYED_CODE), personYears),
      notInLaborForce: ratio(countOf(NOT_IN_LABOR_FORCE_CODE), personYears),
    },
    educationShares: Array.from(educationCounts, (count) => ratio(count, personYears)),
    stayRate: ratio(sum(stayByGap), transitions),
    stayRateOneYearGap: ratio(stayByGap[1], pairsByGap[1]),
    stayRateTwoYearGap: ratio(stayByGap[2], pairsByGap[2]),
    moveRate: ratio(moves, transitions),
    exitToNonWorkRate: ratio(exits, transitions),
    withinGroupMoveShare: ratio(sum(groupWithinMoves), moves),
    groups: MAJOR_GROUPS.map((group, g) => ({
      name: group.name,
      employmentShare: ratio(employmentByGroup[g], employed),
      transitionsFrom: groupTransitions[g],
      stayRate: ratio(groupStays[g], groupTransitions[g]),
      moves: groupMoves[g],
      withinGroupMoveShare: ratio(groupWithinMoves[g], groupMoves[g]),
    })),
    topOccupations,
  };
}

const percent = (value: number) => (Number.isNaN(value) ? "–" : `${(100 * value).toFixed(1)}%`);

/** {@link PanelStatistics} as markdown tables. */
export function formatPanelStatistics(stats: PanelStatistics, title = "panel"): string {
  const lines: string[] = [];
  lines.push(`## ${title}`, "");
  lines.push("| measure | value |", "|---|---|");
  lines.push(`| people | ${stats.people} |`);
  lines.push(`| person-years | ${stats.personYears} |`);
  lines.push(`| years | ${stats.firstYear}–${stats.lastYear} |`);
  lines.push(`| waves per person (mean) | ${stats.meanWavesPerPerson.toFixed(1)} |`);
  lines.push(`| employed | ${percent(stats.shares.employed)} |`);
  lines.push(`| in education | ${percent(stats.shares.inEducation)} |`);
  lines.push(`| unemployed | ${percent(stats.shares.unemployed)} |`);
  lines.push(`| not in labor force | ${percent(stats.shares.notInLaborForce)} |`);
  lines.push(`| stay rate (same job next wave) | ${percent(stats.stayRate)} |`);
  lines.push(`| stay rate, 1-year gap | ${percent(stats.stayRateOneYearGap)} |`);
  lines.push(`| stay rate, 2-year gap | ${percent(stats.stayRateTwoYearGap)} |`);
  lines.push(`| job to other job | ${percent(stats.moveRate)} |`);
  lines.push(`| job to non-work | ${percent(stats.exitToNonWorkRate)} |`);
  lines.push(`| moves within major group | ${percent(stats.withinGroupMoveShare)} |`);
  lines.push(`| education (${EDUCATION_LEVELS.map((level) => level.key).join(" / ")}) | ${stats.educationShares.map(percent).join(" / ")} |`);
  lines.push("", "| major group | employment | stay rate | moves | within group |", "|---|---:|---:|---:|---:|");
  for (const group of stats.groups) {
    lines.push(`| ${group.name} | ${percent(group.employmentShare)} | ${percent(group.stayRate)} | ${group.moves} | ${percent(group.withinGroupMoveShare)} |`);
  }
  lines.push("", "| top occupation | code | share of employment |", "|---|---:|---:|");
  for (const occupation of stats.topOccupations) lines.push(`| ${occupation.title} | ${occupation.code} | ${percent(occupation.share)} |`);
  return lines.join("\n");
}
