/** Hand-written resume documents in the default template of MISSION.md (verification texts). */
export const EXAMPLE_DOCUMENTS = [
  [
    "<A worker from the NLSY79 dataset>",
    "The following information is available about the work history of a female black US worker residing in the south region.",
    "The worker was born in 1961.",
    "The worker has the following records of work experience, one entry per line, including year, education level, and the job title:",
    "1979 (high school diploma): Cashiers",
    "1980 (high school diploma): Not in labor force",
    "1981 (some college): Secretaries",
    "<END OF DATA>",
  ].join("\n"),
  [
    "<A worker from the NLSY97 dataset>",
    "The following information is available about the work history of a male hispanic US worker residing in the west region.",
    "The worker was born in 1982.",
    "The worker has the following records of work experience, one entry per line, including year, education level, and the job title:",
    "2000 (high school diploma): Cooks",
    "2001 (some college): Cooks",
    "2002 (some college): Unemployed",
    "2003 (bachelor's degree): Accountants and auditors",
    "<END OF DATA>",
  ].join("\n"),
];

