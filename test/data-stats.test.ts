import { describe, expect, it } from "vitest";
import { loadPanel } from "../src/data/load.js";
import { formatPanelStatistics, panelStatistics } from "../src/data/stats.js";

describe("panel statistics", () => {
  it("counts shares, stays, exits and moves on the fixture by hand", async () => {
    // A1: Cashiers → Not in labor force → Secretaries; B2: Managers n.e.c. → same → (2 years) Unemployed → (2) Financial managers.
    const stats = panelStatistics(await loadPanel("test/fixtures/data/panel-good.csv"));
    expect(stats).toMatchObject({ people: 2, personYears: 7, firstYear: 1979, lastYear: 2001, meanWavesPerPerson: 3.5 });
    expect(stats.shares).toEqual({ employed: 5 / 7, inEducation: 0, unemployed: 1 / 7, notInLaborForce: 1 / 7 });
    // Pairs starting in a job: 276→NILF (exit), 22→22 (stay, 1 year), 22→Unemployed (exit, 2 years).
    expect(stats.stayRate).toBeCloseTo(1 / 3, 15);
    expect(stats.stayRateOneYearGap).toBeCloseTo(1 / 2, 15);
    expect(stats.stayRateTwoYearGap).toBe(0);
    expect(stats.exitToNonWorkRate).toBeCloseTo(2 / 3, 15);
    expect(stats.moveRate).toBe(0);
    expect(Number.isNaN(stats.withinGroupMoveShare)).toBe(true);
    expect(stats.topOccupations[0]).toEqual({ code: 22, title: "Managers and administrators, n.e.c.", share: 2 / 5 });
    expect(stats.educationShares).toEqual([0, 2 / 7, 1 / 7, 3 / 7, 1 / 7]);
    const table = formatPanelStatistics(stats, "fixture");
    expect(table).toContain("| stay rate (same job next wave) | 33.3% |");
    expect(table).toContain("| moves within major group | – |");
  });
});
