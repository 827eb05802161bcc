"""Reading a predictions file (`labor-llm score` / `baseline` JSON Lines) for the scripts in this folder."""
import json
import math


def load(path):
    """The file's records, each with `logp(code)`: the log-probability of an outcome code, normalised over the
    file's codes (as the report's perplexity is)."""
    lines = open(path).read().strip().split("\n")
    index = {code: i for i, code in enumerate(json.loads(lines[0])["codes"])}
    records = []
    for line in lines[1:]:
        record = json.loads(line)
        logps = record["log_probs"]
        top = max(logps)
        norm = top + math.log(sum(math.exp(x - top) for x in logps))
        record["logp"] = lambda code, logps=logps, norm=norm: logps[index[code]] - norm
        records.append(record)
    return records
